"""Benchmark the baselines of chapter 4 on ml100k-v1 and write benchmarks/results/baselines.json.

Protocol (the benchmark README's): hyper-parameters selected on valid NDCG@20 over small grids, the
selected configuration refitted on train and reported on test, full ranking with known items excluded.

    source tools/env.sh && .venv/bin/python benchmarks/baselines.py [--out PATH] [--only EASE ItemKNN]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import keras
import tensorflow as tf

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import BPRMF, EASE, Evaluator, ItemKNN, MostPopular, activity_buckets, metrics_by_bucket

GRIDS = {
    "MostPopular": [{}],
    "ItemKNN": [{"k": k} for k in (25, 50, 100, 200, 400, 800)],
    # BPR-MF: one run per regularisation, validated every EPOCH_STEP epochs; the epoch count is selected too.
    "BPRMF": [{"reg": reg, "epochs": 100} for reg in (5e-3, 1e-2, 2e-2)],
    "EASE": [{"lam": lam} for lam in (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)],
}
MODELS = {"MostPopular": MostPopular, "ItemKNN": ItemKNN, "BPRMF": BPRMF, "EASE": EASE}
EPOCH_STEP = 5
SELECT_ON = "ndcg@20"


def seed_everything(seed: int = 0) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def valid_grid(name: str, data, valid_eval: Evaluator) -> list[dict]:
    "Valid metrics of every grid point; for BPR-MF every EPOCH_STEP epochs of each run is a grid point."
    points = []
    for config in GRIDS[name]:
        seed_everything()
        model = MODELS[name](**config)
        if name != "BPRMF":
            points.append({"config": config, "valid": valid_eval(model.fit(data).score_fn(data, "valid"))})
            continue
        def checkpoint(epoch, logs, model=model, config=config):
            if (epoch + 1) % EPOCH_STEP == 0:
                points.append({"config": {**config, "epochs": epoch + 1},
                               "valid": valid_eval(model.score_fn(data, "valid"))})
        model.fit(data, callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=checkpoint)])
    for p in points: print(f"  {name} {p['config']}: valid {SELECT_ON} {p['valid'][SELECT_ON]:.4f}", flush=True)
    return points


def benchmark(name: str, data, buckets) -> dict:
    "Select on valid, refit the selected configuration, report valid and test."
    valid_eval = Evaluator(data, "valid", ks=(20,), metrics=("ndcg", "recall"))
    grid = valid_grid(name, data, valid_eval)
    config = max(grid, key=lambda p: p["valid"][SELECT_ON])["config"]
    seed_everything()
    start = time.perf_counter()
    model = MODELS[name](**config).fit(data)
    fit_seconds = time.perf_counter() - start
    valid = Evaluator(data, "valid")(model.score_fn(data, "valid"))
    test, per_user = Evaluator(data, "test")(model.score_fn(data, "test"), per_user=True)
    curve = Evaluator(data, "test", ks=range(1, 101), metrics=("recall",))(model.score_fn(data, "test"))
    by_activity = metrics_by_bucket(per_user[["ndcg@20"]], buckets)["ndcg@20"]
    print(f"{name} {config}: valid {SELECT_ON} {valid[SELECT_ON]:.4f}, test {SELECT_ON} {test[SELECT_ON]:.4f}, "
          f"recall@20 {test['recall@20']:.4f}, fit {fit_seconds:.1f} s", flush=True)
    return {"config": config, "grid": grid, "valid": valid, "test": test, "fit_seconds": round(fit_seconds, 2),
            "recall_curve": [curve[f"recall@{k}"] for k in range(1, 101)],
            "ndcg20_by_activity": {str(k): float(v) for k, v in by_activity.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "baselines.json")
    parser.add_argument("--only", nargs="*", choices=list(MODELS),
                        help="re-run these models, keep the others from --out")
    args = parser.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]  # fit times are wall-clock: a busy machine inflates them
    data = encode(load_benchmark_split("ml100k-v1"))
    buckets = activity_buckets(data)
    rerun = args.only or list(MODELS)
    previous = json.loads(args.out.read_text())["models"] if args.out.exists() else {}
    models = {name: benchmark(name, data, buckets) if name in rerun else previous[name]
              for name in MODELS if name in rerun or name in previous}
    results = {"dataset": "ml100k-v1", "selected_on": f"valid {SELECT_ON}", "reported_on": "test",
               "grids": GRIDS, "epoch_step": EPOCH_STEP,
               "machine": {"cpus": os.cpu_count(), "load_average_at_start": load, "python": platform.python_version(),
                           "tensorflow": tf.__version__, "keras": keras.__version__},
               "models": models}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
