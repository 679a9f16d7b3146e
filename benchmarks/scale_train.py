"""Training cost of a configuration (default: `TrainConfig()`) on a LightGCN-format benchmark split; run by hand.

Trains `--epochs` epochs with the library's `fit` on train (no validation, so no early stopping),
prints each epoch's wall time and the process's peak resident memory, then scores the final model on valid and
test with the `Evaluator` (Recall@20, NDCG@20, timed). A cost probe, not a tuned result: the default stops early
on valid and may train for many more epochs.

    source tools/env.sh && .venv/bin/python benchmarks/scale_train.py yelp2018 --epochs 3 [--config '{"dim": 256}']
"""
import argparse
import dataclasses
import json
import resource
import time

import keras

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import Evaluator
from contrastrec.training import FullSoftmax, TrainConfig, batch_size_for, fit


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None): self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1}: {time.perf_counter() - self.start:.1f} s, loss {logs['loss']:.2f}, "
              f"peak memory {peak_gib():.2f} GiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args()
    data = encode(load_benchmark_split(args.name))
    config = TrainConfig.from_dict({**json.loads(args.config), "epochs": args.epochs})
    print(f"{args.name}: {data.n_users - 1:,} users, {data.n_items - 1:,} items, {len(data.train):,} train pairs; "
          f"batch {batch_size_for(config, data, FullSoftmax())} users, negatives {config.negatives}, dim {config.dim}")
    start = time.perf_counter()
    model, _ = fit(dataclasses.replace(data, valid=None), config, callbacks=[EpochClock()], verbose=0)  # no validation
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.0f} s")
    for part in ("valid", "test"):
        start = time.perf_counter()
        metrics = Evaluator(data, part, ks=(20,), metrics=("recall", "ndcg"))(model.score_fn(data, part))
        print(f"{part}: recall@20 {metrics['recall@20']:.4f}  ndcg@20 {metrics['ndcg@20']:.4f}  "
              f"({time.perf_counter() - start:.1f} s)  peak memory {peak_gib():.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
