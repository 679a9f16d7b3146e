"""Training throughput of the same in-batch two-tower in contrastrec and in Keras-RS, measured in one run; by hand.

The model on both sides: a user-id and an item-id embedding of `--dim` (64), cosine similarity over a temperature of
0.2, each (user, item) pair of a batch of 1,024 against the batch's other items, the logits logQ-corrected by the
items' pair frequencies and accidental hits (the same item twice in a batch) removed, learning rate 1e-3. contrastrec
trains it with its own `fit` (`TrainConfig(objective="in_batch", user_history=False, user_ids=True, dim=64,
sparse_updates=True)`: LazyAdam, which updates only the embedding rows a batch reaches); the peer is a
`keras.Model` built from Keras-RS's `SamplingProbabilityCorrection` and `RemoveAccidentalHits` layers, fed in two ways:
as Keras-RS's retrieval examples feed one (`from_tensor_slices` of the pairs, `shuffle` over all of them, `batch`,
`prefetch(AUTOTUNE)`), and the way contrastrec feeds itself (each pass one shuffle of all pairs, cut into batches,
two batches prefetched, tf.data's autotuning off), so that the ratio against the second compares the training steps
alone; with Keras' Adam, its usual optimiser, and with contrastrec's LazyAdam, to show what the optimiser accounts for.
Each system trains `--epochs` epochs per round (the first epoch of a round, which traces the
step, is not counted); the rounds alternate between the systems, so that both see the same machine load. Reports
examples/s per round and the ratio of the medians.

    pip install keras-rs   # the peer; not a dependency of contrastrec
    source tools/env.sh && .venv/bin/python benchmarks/peer_throughput.py [yelp2018] [--rounds 2 --epochs 2]
"""
import argparse
import dataclasses

import keras
import keras_rs
import numpy as np
import tensorflow as tf
from epoch_times import EpochTimes  # benchmarks/epoch_times.py, beside this script
from keras import ops

from contrastrec.data import encode, item_frequencies, load_benchmark_split
from contrastrec.training import LazyAdam, TrainConfig, fit

BATCH, TEMPERATURE, LEARNING_RATE = 1024, 0.2, 1e-3


class KerasRSRetrieval(keras.Model):
    "The in-batch two-tower with Keras-RS's logQ correction and accidental-hit removal."
    def __init__(self, n_users: int, n_items: int, dim: int, item_probability: np.ndarray):
        super().__init__()
        self.users, self.items = keras.layers.Embedding(n_users, dim), keras.layers.Embedding(n_items, dim)
        self.correction = keras_rs.layers.SamplingProbabilityCorrection()
        self.remove_hits = keras_rs.layers.RemoveAccidentalHits()
        self.item_probability = ops.convert_to_tensor(item_probability)

    def build(self, input_shape):
        self.users.build((None,))
        self.items.build((None,))

    def call(self, x):
        return (ops.normalize(self.users(x["user"]), axis=-1), ops.normalize(self.items(x["item"]), axis=-1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        users, items = y_pred
        logits = ops.matmul(users, ops.transpose(items)) / TEMPERATURE
        logits = self.correction(logits, ops.take(self.item_probability, x["item"]))
        labels = ops.eye(ops.shape(logits)[0])
        logits = self.remove_hits(logits, labels, x["item"])
        return ops.mean(keras.losses.categorical_crossentropy(labels, logits, from_logits=True))


def examples_pipeline(pairs: np.ndarray, seed: int) -> tf.data.Dataset:
    "Pair batches as Keras-RS's examples build them: a shuffle buffer over every pair."
    return (tf.data.Dataset.from_tensor_slices({"user": pairs[:, 0], "item": pairs[:, 1]})
            .shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
            .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def cut_pipeline(pairs: np.ndarray, seed: int) -> tf.data.Dataset:
    "Pair batches as contrastrec builds them: one shuffle of all pairs per pass, cut into batches."
    table, k = tf.constant(pairs), len(pairs) // BATCH
    def batches(key):
        order = tf.random.experimental.stateless_shuffle(tf.range(len(pairs)), seed=tf.stack([seed, key]))
        return tf.reshape(tf.gather(table, order[:k * BATCH]), (k, BATCH, 2))
    options = tf.data.Options()
    options.autotune.enabled = False
    return (tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).map(batches).unbatch()
            .map(lambda b: {"user": b[:, 0], "item": b[:, 1]}).prefetch(2).with_options(options))


def keras_rs_run(data, dim: int, epochs: int, seed: int, pipeline, optimizer=keras.optimizers.Adam) -> list[float]:
    "Epoch times of the Keras-RS model fed by `pipeline`, trained with `optimizer`."
    keras.utils.set_random_seed(seed)
    ds = pipeline(data.train.astype("int32"), seed)
    model = KerasRSRetrieval(data.n_users, data.n_items, dim, item_frequencies(data))
    model.compile(optimizer=optimizer(LEARNING_RATE))
    clock = EpochTimes()
    model.fit(ds, epochs=epochs, callbacks=[clock], verbose=0, shuffle=False)
    return clock.seconds


def contrastrec_run(data, dim: int, epochs: int, seed: int) -> list[float]:
    "Epoch times of contrastrec's in-batch configuration, trained by its own `fit` (no validation)."
    config = TrainConfig(objective="in_batch", user_history=False, user_ids=True, dim=dim, batch_size=BATCH,
                         temperature=TEMPERATURE, learning_rate=LEARNING_RATE, sparse_updates=True, epochs=epochs,
                         seed=seed)
    clock = EpochTimes()
    fit(dataclasses.replace(data, valid=None), config, callbacks=[clock], verbose=0)
    return clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="yelp2018")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = encode(load_benchmark_split(args.name))
    examples = len(data.train) // BATCH * BATCH
    print(f"{args.name}: {len(data.train):,} train pairs, {examples:,} examples per epoch in batches of {BATCH}; "
          f"dim {args.dim}; Keras {keras.__version__}, Keras-RS {keras_rs.__version__}, TensorFlow {tf.__version__}")
    systems = {"contrastrec": contrastrec_run,
               "Keras-RS, examples' pipeline": lambda *a, **k: keras_rs_run(*a, **k, pipeline=examples_pipeline),
               "Keras-RS, cut pipeline": lambda *a, **k: keras_rs_run(*a, **k, pipeline=cut_pipeline),
               "Keras-RS, cut pipeline, LazyAdam": lambda *a, **k: keras_rs_run(*a, **k, pipeline=cut_pipeline,
                                                                                 optimizer=LazyAdam)}
    rates = {name: [] for name in systems}
    for round_ in range(args.rounds):
        for name, run in systems.items():
            seconds = run(data, args.dim, args.epochs, seed=round_)
            rate = examples * (len(seconds) - 1) / sum(seconds[1:])
            rates[name].append(rate)
            print(f"round {round_ + 1} {name:33s} epochs {', '.join(f'{s:.1f}' for s in seconds)} s  "
                  f"-> {rate:,.0f} examples/s (after the first epoch)", flush=True)
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"median {name:33s} {rate:9,.0f} examples/s  contrastrec / this: {medians['contrastrec'] / rate:.2f}x")


if __name__ == "__main__":
    main()
