"""Ablations and robustness of the contrastive model on ml100k-v1 (run by hand, not in CI).

Each named run trains `contrastrec.training.fit` with early stopping on valid NDCG@20 and reports test
metrics under the benchmark protocol, plus alignment/uniformity of the learned vectors and wall time.
Results are appended to benchmarks/results/ablations.json (one entry per run name, re-runs replace).

    python benchmarks/ablations.py                 # every run
    python benchmarks/ablations.py default tau_0.1 # some runs
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from contrastrec.data import encode, load_benchmark_split, load_movielens_100k, split_random
from contrastrec.evaluation import evaluate
from contrastrec.losses import alignment, uniformity
from contrastrec.training import TrainConfig, feature_tables, fit, sized_config, user_inputs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ablations.json"

ID_TOWERS = dict(objective="in_batch", user_history=False, user_ids=True, batch_size=1024, temperature=0.1,
                 dim=64, learning_rate=3e-3, patience=10, epochs=60)
RUNS = {
    "default": {},
    "default_seed1": {"seed": 1},
    "default_seed2": {"seed": 2},
    "default_split_seed1": {"_split_seed": 1},
    "history_dropout_0.25": {"history_dropout": 0.25},
    "history_dropout_0.25_seed1": {"history_dropout": 0.25, "seed": 1},
    "history_dropout_0.5": {"history_dropout": 0.5},
    "history_dropout_0.5_seed1": {"history_dropout": 0.5, "seed": 1},
    "history_dropout_0.5_seed2": {"history_dropout": 0.5, "seed": 2},
    "tau_0.05": {"temperature": 0.05},
    "tau_0.1": {"temperature": 0.1},
    "tau_0.5": {"temperature": 0.5},
    "mean_over_positives": {"positive_weighting": "mean"},
    "batch_128": {"batch_size": 128},
    "history+user_ids": {"user_ids": True},
    "history+features": {"user_features": True, "item_features": True},
    "with_user_view_ssl": {"history_dropout": 0.5, "ssl_weight": 0.1},  # two dropout views need dropout
    "ids_in_batch_logq": ID_TOWERS,
    "ids_in_batch_no_logq": {**ID_TOWERS, "logq": False},
    "ids_in_batch_logq_mixed_negatives": {**ID_TOWERS, "extra_negatives": 1024},
    "ids_in_batch_logq_batch_256": {**ID_TOWERS, "batch_size": 256},
    "features_only_in_batch": {**ID_TOWERS, "user_ids": False, "user_features": True,
                               "item_ids": False, "item_features": True},
    "ids+features_in_batch": {**ID_TOWERS, "user_features": True, "item_features": True},
    "lightgcn_in_batch": {**ID_TOWERS, "graph_layers": 2},
    "simgcl_in_batch": {**ID_TOWERS, "graph_layers": 2, "ssl_weight": 0.1, "ssl_noise": 0.1, "ssl_temperature": 0.2},
}


def load(split_seed=None):
    ml = load_movielens_100k()
    split = load_benchmark_split("ml100k-v1") if split_seed is None else split_random(ml.interactions, seed=split_seed)
    from contrastrec.data import MOVIELENS_ITEM_FEATURES, MOVIELENS_USER_FEATURES
    return encode(split, ml.users, ml.items, MOVIELENS_USER_FEATURES, MOVIELENS_ITEM_FEATURES)


def run(name, overrides):
    overrides = dict(overrides)
    split_seed = overrides.pop("_split_seed", None)
    data = load(split_seed)
    config = sized_config(TrainConfig(**overrides), data)  # stored with the data-size rules applied
    start = time.time()
    model, history = fit(data, config)
    seconds = time.time() - start
    items = feature_tables(data, "item")
    test_scores = model.score_fn(data, "test")
    test = evaluate(test_scores, data, "test")
    curve = evaluate(test_scores, data, "test", ks=tuple(range(1, 101)), metrics=("recall",))
    valid = evaluate(model.score_fn(data, "valid"), data, "valid", ks=(20,), metrics=("ndcg", "recall"))
    u = model.user_vectors({k: v[data.test[:, 0]] for k, v in user_inputs(data, ("train", "valid")).items()})
    v = model.item_vectors({k: v[data.test[:, 1]] for k, v in items.items()})
    all_items = model.item_vectors(items)
    ndcg = history.history["val_ndcg@20"]
    split = "ml100k-v1" if split_seed is None else f"per-user random 80/10/10, seed {split_seed}"
    return {"name": name, "split": split,
            "config": config.to_dict(), "epochs_run": len(ndcg), "best_epoch": int(np.argmax(ndcg)) + 1,
            "train_seconds": round(seconds, 1), "valid": {k: round(x, 4) for k, x in valid.items()},
            "test": {k: round(x, 4) for k, x in test.items()},
            "alignment": round(float(alignment(u, v)), 4), "uniformity": round(float(uniformity(all_items[1:])), 4),
            "valid_curve": [round(x, 4) for x in ndcg],
            "recall_curve": [round(curve[f"recall@{k}"], 4) for k in range(1, 101)]}


if __name__ == "__main__":
    for name in sys.argv[1:] or list(RUNS):
        r = run(name, RUNS[name])
        results = json.loads(OUT.read_text()) if OUT.exists() else {}  # re-read: several runs may share the file
        OUT.write_text(json.dumps({**results, name: r}, indent=1))
        print(f"{name}: valid ndcg@20 {r['valid']['ndcg@20']}  test ndcg@20 {r['test']['ndcg@20']}  "
              f"recall@20 {r['test']['recall@20']}  epochs {r['epochs_run']} ({r['train_seconds']} s)", flush=True)
