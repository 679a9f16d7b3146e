"""One optimiser step on an embedding table, looked up with `ops.take` or with chapter 2's `embedding_rows`.

A step gathers 20,000 random rows of a `rows × 512` table, sums their squares and applies `LazyAdam` (sparse
updates). After the first sparse update TensorFlow keeps the table in copy-on-read mode, so a dense read
(`ops.take`) copies the whole table at every step; `embedding_rows` reads only the rows. Median seconds per step
over `--steps` steps after one warm-up step, each lookup in its own process (fresh memory, same seed).

    source tools/env.sh && .venv/bin/python benchmarks/row_reads.py [--rows 38042 1000000] [--steps 5]
"""
import argparse
import subprocess
import sys
import time

import numpy as np


def measure(lookup: str, rows: int, steps: int) -> float:
    import keras
    import tensorflow as tf
    from keras import ops

    from contrastrec.towers import embedding_rows
    from contrastrec.training import LazyAdam

    keras.utils.set_random_seed(0)
    table = keras.layers.Embedding(rows, 512)
    table.build((None,))
    optimizer = LazyAdam(1e-3)
    ids = tf.constant(np.random.default_rng(0).integers(1, rows, 20_000).astype("int32"))
    read = (lambda: ops.take(table.embeddings, ids, axis=0)) if lookup == "ops.take" else (
        lambda: embedding_rows(table.embeddings, ids))

    @tf.function
    def step():
        with tf.GradientTape() as tape: loss = ops.sum(ops.square(read()))
        optimizer.apply(tape.gradient(loss, [table.embeddings]), [table.embeddings])
        return loss

    step().numpy()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step().numpy()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", type=int, default=[38_042, 1_000_000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: lookup and rows, in this process
    args = parser.parse_args()
    if args.one: return print(measure(args.one[0], int(args.one[1]), args.steps))
    for rows in args.rows:
        times = {}
        for lookup in ("ops.take", "embedding_rows"):
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", lookup, str(rows)],
                                 capture_output=True, text=True, check=True)
            times[lookup] = float(out.stdout.split()[-1])
        print(f"{rows:>9,} rows × 512: ops.take {times['ops.take']:.3f} s/step, embedding_rows "
              f"{times['embedding_rows']:.3f} s/step ({times['ops.take'] / times['embedding_rows']:.1f}×)", flush=True)


if __name__ == "__main__":
    main()
