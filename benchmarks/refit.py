"""Refit every system on train + valid with its valid-selected configuration and report test (run by hand, not in CI).

The benchmark README allows refitting a final model on train + valid only when every compared system is
refitted the same way; this measures what the refit buys each. Configurations come from
benchmarks/results/baselines.json (baselines) and the default run in ablations.json (its best epoch);
writes benchmarks/results/refit.json.

    source tools/env.sh && .venv/bin/python benchmarks/refit.py                      # every system
    source tools/env.sh && .venv/bin/python benchmarks/refit.py EASE "contrastive (default)"
"""
import json
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import BPRMF, EASE, ItemKNN, MostPopular, evaluate
from contrastrec.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = {"MostPopular": MostPopular, "ItemKNN": ItemKNN, "BPRMF": BPRMF, "EASE": EASE}
METRICS = dict(ks=(10, 20, 50), metrics=("ndcg", "recall"))


def timed(make):
    start = time.time()
    out = make()
    return out, round(time.time() - start, 1)


# refit name -> its valid-selected run in ablations.json
CONTRASTIVE = {"contrastive (default)": "default", "contrastive (default), seed 1": "default_seed1",
               "contrastive (default), seed 2": "default_seed2"}


def refit_baseline(data, name: str, config: dict) -> dict:
    model, seconds = timed(lambda: MODELS[name](**config).fit(data))
    test = evaluate(model.score_fn(data, "test"), data, "test", **METRICS)
    return {"config": config, "fit_seconds": seconds, "test": test}


def refit_contrastive(data, run: dict) -> dict:
    "Train the run's configuration on train + valid for the number of epochs it selected on valid."
    config = TrainConfig.from_dict({**run["config"], "epochs": run["best_epoch"]})
    (model, _), seconds = timed(lambda: fit(data, config))
    score = model.score_fn(data, "test")  # the refit data has no valid part: histories are train (= train + valid)
    return {"config": config.to_dict(), "fit_seconds": seconds, "test": evaluate(score, data, "test", **METRICS)}


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    data = encode(load_benchmark_split("ml100k-v1").for_refit())
    baselines = json.loads((RESULTS / "baselines.json").read_text())["models"]
    ablations = json.loads((RESULTS / "ablations.json").read_text())
    for name in sys.argv[1:] or [*baselines, *CONTRASTIVE]:
        before = baselines[name] if name in baselines else ablations[CONTRASTIVE[name]]
        result = refit_baseline(data, name, before["config"]) if name in baselines else refit_contrastive(data, before)
        result["test_without_refit"] = {k: before["test"][k] for k in ("ndcg@20", "recall@20")}
        out = RESULTS / "refit.json"
        models = json.loads(out.read_text())["models"] if out.exists() else {}  # re-read: keep the others' results
        refit = {"split": "ml100k-v1, train + valid refit", "models": {**models, name: result}}
        out.write_text(json.dumps(refit, indent=1))
        print(name, round(result["test"]["ndcg@20"], 4), flush=True)
