"""Benchmark serving and training speed (chapter 6); run by hand, not in CI.

Each step runs in its own process so that its peak memory (VmHWM) is its own:
- train-nojit / train-jit: steady-state training throughput of the default `TrainConfig()` on ml100k-v1
  (users/s and train interactions/s per epoch, first epoch excluded; validation switched off);
- ml100k-topk: top-50 with seen items excluded for all 943 users, `Recommender.recommend` (exact and
  ann) against a naive baseline (one full score matrix and a full `argsort` per user);
- synthetic-exact / synthetic-ann: top-50 for 10,000 users over 1,000,000 clustered unit vectors of 64
  dimensions (20 seen items per user excluded), users between clusters like pooled histories, `ExactIndex`
  against `FaissIndex` (build time, search time and recall@50 against the exact lists, for several
  numbers of probed cells).

    source tools/env.sh && nice .venv/bin/python benchmarks/recommend_bench.py \\
        [--epochs 6] [--out results.json] [--steps ...]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_ITEMS, N_USERS, DIM, K, SEEN, CLUSTERS = 1_000_000, 10_000, 64, 50, 20, 1_000


def reset_peak() -> None:
    "Reset this process's peak resident memory (VmHWM) to its current size, so the next peak is the measured work's."
    Path("/proc/self/clear_refs").write_text("5")


def memory() -> dict:
    "Current and peak resident memory of this process in MiB (from /proc/self/status)."
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(status[key].split()[0]) / 1024 for k, key in (("rss_mib", "VmRSS"), ("peak_mib", "VmHWM"))}


def ml100k():
    from contrastrec.data import encode, load_benchmark_split
    return encode(load_benchmark_split("ml100k-v1"))


def train(jit: bool, epochs: int) -> dict:
    import keras

    from contrastrec.training import TrainConfig, fit
    data = ml100k()
    times = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: times.append(time.perf_counter()),
                                           on_epoch_end=lambda e, logs: times.append(time.perf_counter() - times.pop()))
    before = memory()
    reset_peak()
    fit(data, TrainConfig(epochs=epochs, patience=epochs, jit_compile=jit), evaluate=lambda model: {"ndcg@20": 0.0},
        callbacks=[timer])
    users = len(np.unique(data.train[:, 0]))
    steady = float(np.median(times[1:]))
    return {"first_epoch_s": times[0], "epoch_s": steady, "users_per_s": users / steady,
            "interactions_per_s": len(data.train) / steady, "epochs_timed": len(times) - 1, **memory(),
            "rss_before_mib": before["rss_mib"]}


def naive_top_k(user_vectors, item_vectors, known, k):
    "The baseline: one full score matrix, seen items and OOV set to -inf, a full argsort of every row."
    scores = user_vectors @ item_vectors.T
    scores[:, 0] = -np.inf
    scores[known.nonzero()] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


def ml100k_topk() -> dict:
    from contrastrec.recommend import Recommender
    from contrastrec.training import TrainConfig, fit
    data, config = ml100k(), TrainConfig(epochs=8, patience=8)
    model, _ = fit(data, config)  # briefly trained: speed does not depend on it, the ann recall does
    before = memory()
    reset_peak()
    start = time.perf_counter()
    rec = Recommender(model, data, config)
    vectors_s = time.perf_counter() - start

    def timed(f):
        return min(_time(f) for _ in range(3))

    exact_s = timed(lambda: rec.recommend(k=K))
    users = np.arange(1, data.n_users)
    search_s = timed(lambda: rec.index.search(rec.user_vectors[users], K, rec.known[users]))
    naive_s = timed(lambda: naive_top_k(rec.user_vectors[users], rec.item_vectors, rec.known[users], K))
    out = {"user_and_item_vectors_s": vectors_s, "recommend_exact_s": exact_s, "exact_search_only_s": search_s,
           "naive_full_sort_s": naive_s, "exact_over_naive": exact_s / naive_s, **memory(),
           "rss_before_mib": before["rss_mib"]}
    start = time.perf_counter()
    ann = Recommender(model, data, config, index="ann")
    out["ann_build_s"] = time.perf_counter() - start
    out["recommend_ann_s"] = timed(lambda: ann.recommend(k=K))
    exact, approx = rec.recommend(k=K), ann.recommend(k=K)
    out["ann_recall_vs_exact"] = len(exact.merge(approx, on=["user_id", "item_id"])) / len(exact)
    out["ann_cells"], out["ann_probe"] = ann.index.n_lists, ann.index.n_probe
    return out


def _time(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def synthetic(seed: int = 0):
    """1,000,000 clustered unit item vectors (row 0: OOV); 10,000 users, each the mean of 5 random cluster centres plus
    noise (as a history-pooling tower makes them: between clusters, not inside one); 20 seen items per user."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM), dtype=np.float32)
    def around(n):
        x = centres[rng.integers(0, CLUSTERS, n)]
        x += 0.6 * rng.standard_normal((n, DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x
    items = np.vstack([np.zeros((1, DIM), np.float32), around(N_ITEMS)])
    users = centres[rng.integers(0, CLUSTERS, (N_USERS, 5))].mean(1)
    users += 0.6 * rng.standard_normal((N_USERS, DIM), dtype=np.float32)
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    seen = sp.csr_matrix((np.ones(N_USERS * SEEN, np.float32), (np.repeat(np.arange(N_USERS), SEEN),
                          rng.integers(1, N_ITEMS + 1, N_USERS * SEEN))), shape=(N_USERS, N_ITEMS + 1))
    return items, users, seen


def synthetic_exact(exact_path: str) -> dict:
    from contrastrec.recommend import ExactIndex
    items, users, seen = synthetic()
    before = memory()
    reset_peak()
    index = ExactIndex(items)
    start = time.perf_counter()
    ids, _ = index.search(users, K, seen)
    search_s = time.perf_counter() - start
    np.save(exact_path, ids)
    return {"search_s": search_s, "users_per_s": N_USERS / search_s, "batch_size": index.batch_size, **memory(),
            "rss_before_mib": before["rss_mib"]}


def synthetic_ann(exact_path: str) -> dict:
    from contrastrec.recommend import FaissIndex
    items, users, seen = synthetic()
    exact = np.load(exact_path)
    before = memory()
    reset_peak()
    start = time.perf_counter()
    index = FaissIndex(items)
    out = {"build_s": time.perf_counter() - start, "cells": index.n_lists, "default_probe": index.n_probe, "probes": {}}
    for n_probe in sorted({16, 64, index.n_probe, 256}):
        index.n_probe = n_probe
        start = time.perf_counter()
        ids, _ = index.search(users, K, seen)
        search_s = time.perf_counter() - start
        recall = float(np.mean([len(np.intersect1d(a, e)) / K for a, e in zip(ids, exact)]))
        out["probes"][n_probe] = {"search_s": search_s, "users_per_s": N_USERS / search_s, "recall_vs_exact": recall}
    return {**out, **memory(), "rss_before_mib": before["rss_mib"]}


STEPS = {"train-nojit": lambda a: train(False, a.epochs), "train-jit": lambda a: train(True, a.epochs),
         "ml100k-topk": lambda a: ml100k_topk(), "synthetic-exact": lambda a: synthetic_exact(a.exact_path),
         "synthetic-ann": lambda a: synthetic_ann(a.exact_path)}


def run_step(step: str, args) -> dict:
    "Run one step in a fresh interpreter and return its JSON result."
    cmd = [sys.executable, __file__, "--step", step, "--epochs", str(args.epochs), "--exact-path", args.exact_path]
    print(f"running {step} ...", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode: raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict) -> str:
    "The results as markdown, with ratios against each section's baseline."
    nojit, jit = results["train-nojit"], results["train-jit"]
    ml, ex, ann = results["ml100k-topk"], results["synthetic-exact"], results["synthetic-ann"]
    lines = ["| measurement | time | throughput | ratio vs baseline | peak RSS (MiB) |", "|---|---|---|---|---|",
             f"| train default model, no XLA (baseline) | {nojit['epoch_s']:.2f} s/epoch | "
             f"{nojit['users_per_s']:.0f} users/s, {nojit['interactions_per_s']:.0f} interactions/s | 1.00 | "
             f"{nojit['peak_mib']:.0f} |",
             f"| train default model, `jit_compile=True` | {jit['epoch_s']:.2f} s/epoch | "
             f"{jit['users_per_s']:.0f} users/s, {jit['interactions_per_s']:.0f} interactions/s | "
             f"{nojit['epoch_s'] / jit['epoch_s']:.2f}× speed | {jit['peak_mib']:.0f} |",
             f"| ML-100K top-50, all 943 users: naive full score matrix + argsort (baseline) | "
             f"{ml['naive_full_sort_s'] * 1e3:.0f} ms | | 1.00 | |",
             f"| ML-100K top-50, `Recommender.recommend` exact | {ml['recommend_exact_s'] * 1e3:.0f} ms | | "
             f"{ml['naive_full_sort_s'] / ml['recommend_exact_s']:.2f}× speed | "
             f"{ml['peak_mib']:.0f} (exact, naive and ann) |",
             f"| ML-100K top-50, `ExactIndex.search` alone (no id mapping, no frame) | "
             f"{ml['exact_search_only_s'] * 1e3:.0f} ms | | "
             f"{ml['naive_full_sort_s'] / ml['exact_search_only_s']:.2f}× speed | |",
             f"| ML-100K top-50, ann ({ml['ann_cells']} cells, {ml['ann_probe']} probed; "
             f"build {ml['ann_build_s']:.2f} s) | "
             f"{ml['recommend_ann_s'] * 1e3:.0f} ms | recall@50 vs exact {ml['ann_recall_vs_exact']:.3f} | "
             f"{ml['naive_full_sort_s'] / ml['recommend_ann_s']:.2f}× speed | |",
             f"| 1M × 64 items, 10k users, top-50: exact (baseline) | {ex['search_s']:.1f} s | "
             f"{ex['users_per_s']:.0f} users/s | 1.00 | {ex['peak_mib']:.0f} |"]
    for n_probe, p in ann["probes"].items():
        lines.append(f"| 1M × 64, ann, {ann['cells']} cells, {n_probe} probed (build {ann['build_s']:.1f} s) | "
                     f"{p['search_s']:.1f} s | "
                     f"{p['users_per_s']:.0f} users/s, recall@50 vs exact {p['recall_vs_exact']:.3f} | "
                     f"{ex['search_s'] / p['search_s']:.1f}× speed | {ann['peak_mib']:.0f} |")
    lines.append(f"\nFirst epoch (tracing, excluded above): {nojit['first_epoch_s']:.1f} s without XLA, "
                 f"{jit['first_epoch_s']:.1f} s with. "
                 f"Peak RSS is the step's process during the measured work (peak reset after loading TensorFlow "
                 f"and the data); before it, it held "
                 f"{nojit['rss_before_mib']:.0f} / {jit['rss_before_mib']:.0f} / {ml['rss_before_mib']:.0f} / "
                 f"{ex['rss_before_mib']:.0f} / {ann['rss_before_mib']:.0f} MiB "
                 f"(train no XLA / XLA / ML-100K / exact / ann). Machine: {results['machine']}.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--step", choices=list(STEPS), help="run one step only and print its JSON (used internally)")
    p.add_argument("--epochs", type=int, default=6, help="training epochs per throughput run (the first is excluded)")
    p.add_argument("--exact-path", default=str(Path(tempfile.gettempdir()) / "recommend_bench_exact.npy"))
    p.add_argument("--out", help="also write the results as JSON here (steps not rerun are kept from it)")
    p.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS),
                   help="steps to (re)run (default: all)")
    args = p.parse_args()
    if args.step:
        print(json.dumps(STEPS[args.step](args)))
        return
    results = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    results |= {step: run_step(step, args) for step in args.steps}
    results["machine"] = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"load average {os.getloadavg()[0]:.1f}")
    if args.out: Path(args.out).write_text(json.dumps(results, indent=1))
    print(report(results))


if __name__ == "__main__":
    main()
