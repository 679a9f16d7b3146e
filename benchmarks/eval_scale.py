"""Full-ranking evaluation at benchmark scale (chapter 4's `Evaluator`); run by hand, not in CI.

On Yelp2018 / Gowalla (every user with valid items × every item, train items excluded), times one `Evaluator`
call for two scorers: most popular (a broadcast row) and a random `dim`-wide embedding model scored by a
matrix product, the cost of validating a two-tower model once. Prints seconds, users/s and the process's peak
resident memory (`ru_maxrss`), which includes TensorFlow's start-up.

    source tools/env.sh && nice .venv/bin/python benchmarks/eval_scale.py [yelp2018 gowalla] [--dim 64]
"""
import argparse
import resource
import time

import numpy as np

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import Evaluator, MostPopular


def embedding_scorer(n_users: int, n_items: int, dim: int, seed: int = 0):
    "Scores `users × items` of random unit vectors: the work a trained two-tower model's validation does."
    rng = np.random.default_rng(seed)
    u, v = (rng.standard_normal((n, dim)).astype("float32") for n in (n_users, n_items))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return lambda users: u[users] @ v.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["yelp2018", "gowalla"])
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    for name in args.names:
        data = encode(load_benchmark_split(name))
        start = time.perf_counter()
        evaluator = Evaluator(data, "valid", ks=(20,), metrics=("recall", "ndcg"))
        setup = time.perf_counter() - start
        print(f"{name}: {len(evaluator.users):,} valid users × {data.n_items - 1:,} items; "
              f"Evaluator built in {setup:.2f} s")
        scorers = {"most popular": MostPopular().fit(data).score_fn(data, "valid"),
                   f"random {args.dim}-d embeddings": embedding_scorer(data.n_users, data.n_items, args.dim)}
        for label, score_fn in scorers.items():
            start = time.perf_counter()
            metrics = evaluator(score_fn)
            seconds = time.perf_counter() - start
            print(f"  {label:<26} {seconds:6.2f} s  ({len(evaluator.users) / seconds:,.0f} users/s)  "
                  f"ndcg@20 {metrics['ndcg@20']:.4f}")
    print(f"peak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
