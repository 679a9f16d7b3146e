"""Item cold start on ml100k-v1: id, feature and aligned item towers, with and without pretrained text vectors.

Run by hand, not in CI; chapter 7 reads the result. 20% of the items (seed 0) lose every train and valid
interaction (`hold_out_items`). Each run trains the default configuration with the settings below on the rest,
early-stopped on the warm valid split. It is scored on the held-out items' valid interactions ("cold valid", the
selection set) and test interactions ("cold test", reported), ranking only the held-out items. The aligned
model with text vectors is also trained on the whole ml100k-v1 split (the warm protocol), next to the default.

The text vectors are WordLlama's (`pip install "contrastrec[text]"`), cached in the contrastrec cache folder.
Writes benchmarks/results/cold_start.json; `--only NAME ...` reruns those runs and keeps the others.

    source tools/env.sh && .venv/bin/python benchmarks/cold_start.py [--only NAME ...]
"""
import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from contrastrec.data import (
    MOVIELENS_ITEM_FEATURES,
    MOVIELENS_USER_FEATURES,
    default_cache_dir,
    encode,
    load_benchmark_split,
    load_movielens_100k,
)
from contrastrec.evaluation import evaluate, hold_out_items, restrict_candidates
from contrastrec.towers import encode_texts, movielens_item_texts, wordllama_encoder
from contrastrec.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "cold_start.json"
WORDS = MOVIELENS_ITEM_FEATURES  # genres (multi-hot), title words (text), release year
TEXT = {**MOVIELENS_ITEM_FEATURES, "text": "vectors"}  # the same plus the pretrained vector of title + genres
TEXT_NO_WORDS = {"genres": "multi_hot", "release_year": "numeric", "text": "vectors"}  # no per-word embeddings
TEXT_ONLY = {"text": "vectors"}
RUNS = {  # name: (settings on top of the default configuration, item features)
    "ids": (dict(item_ids=True, item_features=False), WORDS),
    "features": (dict(item_ids=False, item_features=True), WORDS),
    "ids + features": (dict(item_ids=True, item_features=True), WORDS),
    "features + text vectors": (dict(item_ids=False, item_features=True), TEXT),
    "features + text vectors, no title words": (dict(item_ids=False, item_features=True), TEXT_NO_WORDS),
    "aligned, words": (dict(content_alignment=1.0), WORDS),
    "aligned, text vectors": (dict(content_alignment=1.0), TEXT),
    "aligned, text vectors, weight 0.1": (dict(content_alignment=0.1), TEXT),
    "aligned, text vectors, τ 0.5": (dict(content_alignment=1.0, ssl_temperature=0.5), TEXT),
    "aligned, text vectors, no title words": (dict(content_alignment=1.0), TEXT_NO_WORDS),
    "aligned, text vectors only": (dict(content_alignment=1.0), TEXT_ONLY),
}
WARM = {"default": (TrainConfig(), None), "aligned, text vectors": (TrainConfig(content_alignment=1.0), TEXT)}


def cold_scores(model, data, cold_items, valid_pairs) -> dict:
    "NDCG/Recall@20 among the held-out items, on their valid interactions and on their test interactions."
    def among_cold(part, d):
        score = restrict_candidates(model.score_fn(d, part), cold_items)
        return {k: round(v, 4) for k, v in evaluate(score, d, part, ks=(20,), metrics=("ndcg", "recall")).items()}
    return {"cold valid": among_cold("valid", replace(data, valid=valid_pairs)), "cold test": among_cold("test", data)}


def train(data, config):
    start = time.time()
    model, history = fit(data, config)
    curve = history.history["val_ndcg@20"]
    return model, {"config": config.to_dict(), "epochs_run": len(curve), "best_epoch": int(np.argmax(curve)) + 1,
                   "valid ndcg@20": round(max(curve), 4), "train_seconds": round(time.time() - start, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=[*RUNS, *(f"warm: {k}" for k in WARM)])
    args = parser.parse_args()
    ml = load_movielens_100k()
    texts = movielens_item_texts(ml.items)
    items = ml.items.assign(text=encode_texts(texts, wordllama_encoder(), default_cache_dir() / "ml100k_wordllama.npz"))
    split = load_benchmark_split("ml100k-v1")
    result = json.loads(OUT.read_text()) if OUT.exists() and args.only else {}
    result.update({"split": "ml100k-v1", "fraction": 0.2, "seed": 0, "text_encoder": "wordllama l2_supercat 256-d"})
    cold, warm = result.setdefault("runs", {}), result.setdefault("warm", {})
    for name, (settings, kinds) in RUNS.items():
        if args.only and name not in args.only: continue
        data = encode(split, ml.users, items, MOVIELENS_USER_FEATURES, kinds)
        cold_data, cold_items = hold_out_items(data, 0.2, seed=0)
        valid_pairs = data.valid[np.isin(data.valid[:, 1], cold_items)]
        model, run = train(cold_data, TrainConfig(**settings))
        cold[name] = {**run, "item_features": list(kinds), **cold_scores(model, cold_data, cold_items, valid_pairs)}
        result["n_cold_items"], result["n_cold_valid_pairs"] = len(cold_items), len(valid_pairs)
        print(name, {k: v for k, v in cold[name].items() if k != "config"}, flush=True)
        OUT.write_text(json.dumps(result, indent=1))
    for name, (config, kinds) in WARM.items():
        if args.only and f"warm: {name}" not in args.only: continue
        data = encode(split, ml.users, items, MOVIELENS_USER_FEATURES, kinds)
        model, run = train(data, config)
        test = evaluate(model.score_fn(data, "test"), data, "test", ks=(20,), metrics=("ndcg", "recall"))
        warm[name] = {**run, "item_features": list(kinds or {}), "test": {k: round(v, 4) for k, v in test.items()}}
        print("warm", name, {k: v for k, v in warm[name].items() if k != "config"}, flush=True)
        OUT.write_text(json.dumps(result, indent=1))
