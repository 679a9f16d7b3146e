"""Training cost of a configuration (default: `TrainConfig()`) on a LightGCN-format benchmark split; run by hand.

Trains `--epochs` epochs with the library's `fit` on train (no validation, so no early stopping),
prints each epoch's wall time and the process's peak resident memory, then scores the final model on valid and
test with the `Evaluator` (Recall@20, NDCG@20, timed). A cost probe, not a tuned result: the default stops early
on valid and may train for many more epochs.

    source tools/env.sh && .venv/bin/python benchmarks/scale_train.py yelp2018 --epochs 3 [--config '{"dim": 256}']

Each run is also recorded in benchmarks/results/scale_train.json under "<name> <config JSON>" (earlier runs kept).
"""
import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import keras

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import Evaluator
from contrastrec.training import FullSoftmax, TrainConfig, batch_size_for, fit


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class EpochClock(keras.callbacks.Callback):
    "Prints and keeps each epoch's wall time, loss and the peak memory so far."
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None): self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"seconds": round(time.perf_counter() - self.start, 1), "loss": round(logs["loss"], 2),
                            "peak_gib": round(peak_gib(), 2)})
        print(f"epoch {epoch + 1}: {self.epochs[-1]['seconds']} s, loss {logs['loss']:.2f}, "
              f"peak memory {peak_gib():.2f} GiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale_train.json")
    args = parser.parse_args()
    data = encode(load_benchmark_split(args.name))
    config = TrainConfig.from_dict({**json.loads(args.config), "epochs": args.epochs})
    print(f"{args.name}: {data.n_users - 1:,} users, {data.n_items - 1:,} items, {len(data.train):,} train pairs; "
          f"batch {batch_size_for(config, data, FullSoftmax())} users, negatives {config.negatives}, dim {config.dim}")
    run = {"command": ".venv/bin/python benchmarks/scale_train.py " + " ".join(sys.argv[1:]),
           "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "config": config.to_dict(),
           "batch_users": batch_size_for(config, data, FullSoftmax()), "train_pairs": len(data.train)}
    start, clock = time.perf_counter(), EpochClock()
    model, _ = fit(dataclasses.replace(data, valid=None), config, callbacks=[clock], verbose=0)  # no validation
    run.update(epochs=clock.epochs, train_seconds=round(time.perf_counter() - start, 1))
    print(f"trained {args.epochs} epochs in {run['train_seconds']:.0f} s")
    for part in ("valid", "test"):
        start = time.perf_counter()
        metrics = Evaluator(data, part, ks=(20,), metrics=("recall", "ndcg"))(model.score_fn(data, part))
        run[part] = {**metrics, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{part}: recall@20 {metrics['recall@20']:.4f}  ndcg@20 {metrics['ndcg@20']:.4f}  "
              f"({run[part]['seconds']} s)  peak memory {peak_gib():.2f} GiB", flush=True)
    run["peak_gib"] = round(peak_gib(), 2)
    runs = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs[f"{args.name} {json.dumps(json.loads(args.config), sort_keys=True)}"] = run
    args.out.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
