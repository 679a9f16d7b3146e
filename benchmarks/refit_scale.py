"""Refit the Yelp2018 / Gowalla baselines on train + valid with their valid-selected configuration (run by hand).

The contrastive default's refit is `train --refit` through the command line (`REFIT=1 bash benchmarks/scale_cli.sh`);
this gives the baselines the same treatment, so that a comparison under the refit protocol refits every system.
Configurations come from benchmarks/results/baselines_scale.json (the entries `baselines_scale.py` chose on valid);
each is fitted once on `Split.for_refit()` and scored on test (full ranking, train and valid items excluded).
Records the fit's wall-clock seconds and peak traced allocation, the process's peak resident memory, and the test
scores without the refit. Writes benchmarks/results/refit_scale.json, keeping the entries not re-run.

    source tools/env.sh && OPENBLAS_NUM_THREADS=1 nice .venv/bin/python benchmarks/refit_scale.py yelp2018 \
        --models ItemKNN "EASE float32"
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from baselines_scale import METRICS, peak_rss_gib, timed_eval, timed_fit
from machine import code_version, cpu_model

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import EASE, Evaluator, ItemKNN, MostPopular

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {"MostPopular": MostPopular, "ItemKNN": ItemKNN, "EASE": EASE, "EASE float32": EASE}


def refit(data, name: str, chosen: dict) -> dict:
    "Fit `name` with the configuration of its stored entry `chosen` on `data` (train + valid) and score test."
    model, cost = timed_fit(MODELS[name](**chosen["config"]), data)
    test, test_s = timed_eval(Evaluator(data, "test", ks=(20,), metrics=METRICS), model, data, "test")
    print(f"  {name} {chosen['config']}: fit {cost['fit_seconds']} s, refit test recall@20 {test['recall@20']:.4f} "
          f"ndcg@20 {test['ndcg@20']:.4f} (without the refit {chosen['test']['recall@20']:.4f} / "
          f"{chosen['test']['ndcg@20']:.4f})", flush=True)
    return {"config": chosen["config"], **cost, "test": test, "test_eval_seconds": test_s,
            "test_without_refit": chosen["test"], "peak_rss_gib_so_far": peak_rss_gib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["yelp2018", "gowalla"])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=["MostPopular", "ItemKNN", "EASE float32"])
    parser.add_argument("--note", default="", help="stored with the run, e.g. that other jobs shared the cores")
    args = parser.parse_args()
    stored = json.loads((RESULTS / "baselines_scale.json").read_text())["datasets"][args.name]
    if missing := [m for m in args.models if m not in stored]:
        raise SystemExit(f"baselines_scale.json has no {', '.join(missing)} on {args.name}: "
                         "run baselines_scale.py for it first.")
    run = {"command": "nice .venv/bin/python benchmarks/refit_scale.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "code": code_version(),
                       "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
           **({"note": args.note} if args.note else {})}
    data = encode(load_benchmark_split(args.name).for_refit())
    fitted = {name: {"run": run, **refit(data, name, stored[name])} for name in args.models}
    out = RESULTS / "refit_scale.json"
    previous = json.loads(out.read_text()) if out.exists() else {}  # read last: runs on two datasets may overlap
    out.write_text(json.dumps({**previous, args.name: {**previous.get(args.name, {}), **fitted}}, indent=1) + "\n")
    print("wrote", out, f"(peak resident memory {peak_rss_gib()} GiB)")


if __name__ == "__main__":
    main()
