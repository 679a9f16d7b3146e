"""Refit every system on train + valid with its valid-selected configuration and report test (run by hand, not in CI).

The benchmark README allows refitting a final model on train + valid only when every compared system is
refitted the same way; this measures what the refit buys each. Configurations come from
benchmarks/results/baselines.json (baselines) and the default run in ablations.json (its best epoch);
writes benchmarks/results/refit.json.

    source tools/env.sh && .venv/bin/python benchmarks/refit.py
"""
import json
import os
import time
from pathlib import Path

import keras
import tensorflow as tf

from contrastrec.data import encode, load_split
from contrastrec.evaluation import BPRMF, EASE, ItemKNN, MostPopular, evaluate
from contrastrec.training import TrainConfig, feature_tables, fit, score_function, user_inputs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BENCH = Path(os.environ.get("CONTRASTREC_BENCHMARKS", ROOT.parent / "shared" / "benchmarks")) / "ml100k-v1"
MODELS = {"MostPopular": MostPopular, "ItemKNN": ItemKNN, "BPRMF": BPRMF, "EASE": EASE}
METRICS = dict(ks=(10, 20, 50), metrics=("ndcg", "recall"))


def timed(make):
    start = time.time()
    out = make()
    return out, round(time.time() - start, 1)


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    data = encode(load_split(BENCH).for_refit())
    baselines = json.loads((RESULTS / "baselines.json").read_text())["models"]
    default = json.loads((RESULTS / "ablations.json").read_text())["default"]
    out = {}
    for name, selected in baselines.items():
        model, seconds = timed(lambda: MODELS[name](**selected["config"]).fit(data))
        out[name] = {"config": selected["config"], "fit_seconds": seconds, "test": evaluate(model.score_fn(data, "test"), data, "test", **METRICS),
                     "test_without_refit": {k: selected["test"][k] for k in ("ndcg@20", "recall@20")}}
        print(name, out[name]["test"]["ndcg@20"], flush=True)
    config = TrainConfig.from_dict({**default["config"], "epochs": default["best_epoch"]})
    (model, _), seconds = timed(lambda: fit(data, config))
    score = score_function(model, user_inputs(data, ("train",)), feature_tables(data, "item"))
    out["contrastive (default)"] = {"config": config.to_dict(), "fit_seconds": seconds, "test": evaluate(score, data, "test", **METRICS),
                                    "test_without_refit": {k: default["test"][k] for k in ("ndcg@20", "recall@20")}}
    print("contrastive", out["contrastive (default)"]["test"]["ndcg@20"], flush=True)
    (RESULTS / "refit.json").write_text(json.dumps({"split": "ml100k-v1, train + valid refit", "models": out}, indent=1))
