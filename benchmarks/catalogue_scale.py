"""How training and serving cost grow with the catalogue: synthetic power-law data at 10^4, 10^5 and 10^6 items.

Each scale has 10 interactions per item (10^5, 10^6 and 10^7 in all) and one user per 20 interactions. Item
popularity follows a Zipf law (exponent 0.8) and user activity a flatter one (0.3), both drawn with a fixed seed;
repeated (user, item) draws are merged, so the counts printed are those trained on. Each scale runs in its own
process, so that its peak resident memory (VmHWM) is its own. Per scale:
- training: the first `--epochs` epochs of the library's `fit` with `TrainConfig(**--config)` on train only (no
  validation; the width is set to 256 by default so that the scales differ only in size), the learning rate following
  the data-size rule's schedule over its full length (`decay_epochs`), as the first epochs of a default run would;
  wall time of each epoch and train interactions per second of the last one (the first includes tracing);
- serving (the largest scale, or those named by --serve): top-50 with seen items excluded, first for
  `--exact-users` users with the exact index and with the faiss index (recall@50 of the faiss lists against
  the exact ones, and the speed-up), then for `--ann-users` users with faiss alone.

    source tools/env.sh && nice .venv/bin/python benchmarks/catalogue_scale.py [--scales 10000 100000 1000000] \\
        [--epochs 2] [--config '{"dim": 256}'] [--out benchmarks/results/catalogue_scale.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

INTERACTIONS_PER_ITEM, INTERACTIONS_PER_USER, ITEM_EXPONENT, USER_EXPONENT, K = 10, 20, 0.8, 0.3, 50


def memory_gib() -> dict:
    "Current and peak resident memory of this process in GiB (from /proc/self/status)."
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: round(int(status[key].split()[0]) / 2**20, 3)
            for k, key in (("rss_gib", "VmRSS"), ("peak_gib", "VmHWM"))}


def zipf_draws(n: int, exponent: float, size: int, rng: np.random.Generator) -> np.ndarray:
    "`size` draws from {0, …, n-1} with P(k) ∝ (k + 1)^-exponent."
    p = np.arange(1, n + 1, dtype="float64") ** -exponent
    return rng.choice(n, size=size, p=p / p.sum())


def synthetic_interactions(n_items: int, seed: int = 0) -> pd.DataFrame:
    "Distinct (user_id, item_id) pairs: Zipf item popularity, Zipf user activity; ids shuffled so rank ≠ id."
    rng = np.random.default_rng(seed)
    n = INTERACTIONS_PER_ITEM * n_items
    n_users = n // INTERACTIONS_PER_USER
    users = rng.permutation(n_users)[zipf_draws(n_users, USER_EXPONENT, n, rng)]
    items = rng.permutation(n_items)[zipf_draws(n_items, ITEM_EXPONENT, n, rng)]
    pairs = np.unique(users.astype("int64") * n_items + items)
    return pd.DataFrame({"user_id": pairs // n_items, "item_id": pairs % n_items})


def train(n_items: int, epochs: int, config: dict) -> tuple[dict, object, object, object]:
    import keras

    from contrastrec.data import Split, encode
    from contrastrec.training import TrainConfig, decay_length, fit, sized_config

    start = time.perf_counter()
    data = encode(Split(synthetic_interactions(n_items), None))
    out = {"n_users": data.n_users - 1, "n_items": data.n_items - 1, "train_pairs": len(data.train),
           "longest_history": int(np.diff(data.matrix(["train"]).indptr).max()),
           "data_seconds": round(time.perf_counter() - start, 1)}
    rule = sized_config(TrainConfig.from_dict(config), data)  # the data-size rules, the schedule's length among them
    c = dataclasses.replace(rule, epochs=epochs, decay_epochs=max(epochs, decay_length(rule)))
    out["config"] = c.to_dict()  # as trained
    out["batch_users"] = out["config"]["batch_size"]
    print(f"{n_items:,} items: {out['n_users']:,} users, {out['train_pairs']:,} pairs (longest history "
          f"{out['longest_history']:,}), batch {out['batch_users']:,} users, built in {out['data_seconds']} s",
          flush=True)
    seconds = []
    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seconds.append(time.perf_counter()),
        on_epoch_end=lambda e, logs: (seconds.append(round(time.perf_counter() - seconds.pop(), 1)),
                                      print(f"  epoch {e + 1}: {seconds[-1]} s, loss {logs['loss']:.3f}, "
                                            f"memory {memory_gib()}", flush=True)))
    model, _ = fit(data, c, callbacks=[clock], verbose=0)
    out.update(epoch_seconds=seconds, interactions_per_second=round(len(data.train) / seconds[-1]),
               train_memory_gib=memory_gib())
    return out, model, data, c


def top_k_overlap(a: np.ndarray, b: np.ndarray) -> float:
    "Mean over rows of |a_row ∩ b_row| / k: recall@k of the lists `b` against the reference lists `a`."
    return float(np.mean([len(np.intersect1d(x, y)) / len(x) for x, y in zip(a, b)]))


def timed_search(index, vectors: np.ndarray, known) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    ids, _ = index.search(vectors, K, known)
    return ids, round(time.perf_counter() - start, 2)


def serve(model, data, config, exact_users: int, ann_users: int) -> dict:
    from contrastrec.recommend import Recommender, make_index

    start = time.perf_counter()
    rec = Recommender(model, data, config)  # embeds every user and item, exact index
    out = {"embed_seconds": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    ann = make_index(rec.item_vectors, "ann")
    out["ann_build_seconds"] = round(time.perf_counter() - start, 1)
    users = np.random.default_rng(1).choice(np.arange(1, data.n_users), size=max(exact_users, ann_users), replace=False)
    few = users[:exact_users]
    exact_ids, out["exact_seconds"] = timed_search(rec.index, rec.user_vectors[few], rec.known[few])
    ann_ids, out["ann_seconds_same_users"] = timed_search(ann, rec.user_vectors[few], rec.known[few])
    out.update(exact_users=len(few), ann_recall_at_50=round(top_k_overlap(exact_ids, ann_ids), 4),
               speed_up=round(out["exact_seconds"] / out["ann_seconds_same_users"], 1),
               ann_n_lists=ann.n_lists, ann_n_probe=ann.n_probe)
    print(f"  serving so far: {out}", flush=True)  # kept in the log if the larger search below is interrupted
    _, out["ann_seconds"] = timed_search(ann, rec.user_vectors[users], rec.known[users])
    out.update(ann_users=len(users), serve_memory_gib=memory_gib())
    print(f"  serving: exact {out['exact_seconds']} s for {len(few):,} users, faiss {out['ann_seconds_same_users']} s "
          f"(recall@50 {out['ann_recall_at_50']}, {out['speed_up']}x), faiss {out['ann_seconds']} s for "
          f"{len(users):,} users", flush=True)
    return out


def run_scale(args) -> None:
    "One scale, in this process: print its results as the last line of stdout (JSON)."
    out, model, data, config = train(args.one, args.epochs, json.loads(args.config))
    if args.one in args.serve: out["serving"] = serve(model, data, config, args.exact_users, args.ann_users)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", type=int, default=[10_000, 100_000, 1_000_000], help="catalogue sizes")
    parser.add_argument("--serve", nargs="*", type=int, help="scales to serve (default: the largest)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--config", default='{"dim": 256}', help="TrainConfig fields, as JSON")
    parser.add_argument("--exact-users", type=int, default=10_000)
    parser.add_argument("--ann-users", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "catalogue_scale.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one scale in this process
    args = parser.parse_args()
    args.serve = args.serve if args.serve is not None else [max(args.scales)]
    if args.one: return run_scale(args)
    results = {"command": "nice .venv/bin/python benchmarks/catalogue_scale.py " + " ".join(sys.argv[1:]),
               "machine": {"cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                           "python": platform.python_version()},
               "data": {"interactions_per_item": INTERACTIONS_PER_ITEM, "interactions_per_user": INTERACTIONS_PER_USER,
                        "item_zipf_exponent": ITEM_EXPONENT, "user_zipf_exponent": USER_EXPONENT, "seed": 0},
               "scales": {}}
    for n in args.scales:
        with subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--one", str(n)], stdout=subprocess.PIPE,
                              text=True) as child:
            lines = []
            for line in child.stdout:  # progress as it comes; the last line is the scale's JSON
                if lines: print(lines[-1], end="", flush=True)
                lines.append(line)
        results["scales"][str(n)] = json.loads(lines[-1]) if child.returncode == 0 else {
            "failed": f"exit status {child.returncode}", "output": lines[-5:]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
