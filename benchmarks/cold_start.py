"""Item cold start on ml100k-v1 (run by hand, not in CI; chapter 7 reads the result).

20% of the items (seed 0) lose every train and valid interaction (`hold_out_items`); the default
configuration is trained on the rest with an id item tower, a feature item tower, or both, selected on
the (warm) valid split, and scored on the held-out items' test interactions, ranking only those items.
Writes benchmarks/results/cold_start.json.

    source tools/env.sh && .venv/bin/python benchmarks/cold_start.py
"""
import json
import time
from pathlib import Path

from contrastrec.data import (
    MOVIELENS_ITEM_FEATURES,
    MOVIELENS_USER_FEATURES,
    encode,
    load_benchmark_split,
    load_movielens_100k,
)
from contrastrec.evaluation import evaluate, hold_out_items, restrict_candidates
from contrastrec.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "cold_start.json"
TOWERS = {"ids": dict(item_ids=True, item_features=False), "features": dict(item_ids=False, item_features=True),
          "ids + features": dict(item_ids=True, item_features=True)}

if __name__ == "__main__":
    ml = load_movielens_100k()
    data = encode(load_benchmark_split("ml100k-v1"), ml.users, ml.items,
                  MOVIELENS_USER_FEATURES, MOVIELENS_ITEM_FEATURES)
    cold_data, cold_items = hold_out_items(data, 0.2, seed=0)
    runs = {}
    for name, towers in TOWERS.items():
        config = TrainConfig(**towers)
        start = time.time()
        model, history = fit(cold_data, config)
        seconds = time.time() - start
        score = model.score_fn(cold_data, "test")
        test = evaluate(restrict_candidates(score, cold_items), cold_data, "test", ks=(20,), metrics=("ndcg", "recall"))
        runs[name] = {"item_tower": name, "config": config.to_dict(), "epochs_run": len(history.history["val_ndcg@20"]),
                      "valid": {"ndcg@20": round(max(history.history["val_ndcg@20"]), 4)},
                      "test": {k: round(v, 4) for k, v in test.items()}, "train_seconds": round(seconds, 1)}
        print(name, runs[name]["valid"], runs[name]["test"], runs[name]["epochs_run"], "epochs", flush=True)
    OUT.write_text(json.dumps({"split": "ml100k-v1", "fraction": 0.2, "seed": 0, "n_cold_items": len(cold_items),
                               "cold_items": cold_items.tolist(), "runs": runs}, indent=1))
