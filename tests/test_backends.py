"""The library under every Keras backend it supports: TensorFlow and JAX.

A process has one Keras backend, fixed when Keras is first imported, so each check runs its backends in subprocesses
(`KERAS_BACKEND=...`). TensorFlow stays installed under JAX: the input pipeline (`tf.data`) and the sparse matrix
products of the graph encoder are TensorFlow at the edges, and Keras' JAX trainer reads `tf.data` batches as NumPy.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("jax", reason="JAX is a dev dependency; without it only the TensorFlow backend can be tested")

from contrastrec.data import encode  # noqa: E402
from contrastrec.evaluation import Evaluator, MostPopular  # noqa: E402

SCRIPT = Path(sys.executable).parent / "contrastrec"
BACKENDS = ("tensorflow", "jax")
# float32 losses computed by two backends differ by summation order only: a few ulps of the largest term
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-5


def under(backend: str, argv: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    "Run `argv` with Keras on `backend`; fail with its stderr if it does not exit cleanly."
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{backend}: {' '.join(map(str, argv))}\n{done.stderr[-3000:]}"
    return done


LOSSES = """
import json, keras, numpy as np
from keras import ops
from contrastrec.losses import (candidate_mask, full_softmax_loss, in_batch_softmax_loss, info_nce_views,
                                sampled_multi_positive_loss)
rng = np.random.default_rng(0)
f32 = lambda *shape: rng.normal(size=shape).astype("float32")
user, item, extra, catalogue = f32(6, 8), f32(6, 8), f32(4, 8), f32(12, 8)
ids = np.array([3, 5, 3, 7, 1, 9], "int32")  # item 3 twice: an accidental hit
extra_ids = np.array([5, 11, 2, 4], "int32")
positives = (rng.random((6, 12)) < 0.3).astype("float32")
positive_ids = np.array([[3, 5, 0], [7, 0, 0], [1, 2, 4], [9, 0, 0], [11, 6, 0], [0, 0, 0]], "int32")
drawn = np.array([5, 2, 8, 5, 10], "int32")  # item 5 drawn twice
out = {
    "in_batch": in_batch_softmax_loss(user, item, 0.1, item_logq=np.log(rng.random(6) + 0.1).astype("float32"),
                                      item_ids=ids, extra_items=extra, extra_logq=np.full(4, -2.0, "float32"),
                                      extra_ids=extra_ids, symmetric=True),
    "full_softmax": full_softmax_loss(user, catalogue, positives, 0.2, mask=np.arange(12) > 0),
    "sampled": sampled_multi_positive_loss(f32(6, 3), positive_ids > 0, f32(6, 5),
                                           candidate_mask(positive_ids, drawn, 12), np.log(12 / 5)),
    "candidate_mask": candidate_mask(positive_ids, drawn, 12),
    "views": info_nce_views(user, item, 0.2, ids=ids),
}
print(json.dumps({k: ops.convert_to_numpy(v).astype(float).tolist() for k, v in out.items()}))
"""


def numpy_full_softmax(user, catalogue, positives, temperature, mask):
    "The multi-positive softmax over the catalogue, written out in NumPy (float64)."
    def unit(x): return x / np.linalg.norm(x, axis=1, keepdims=True)
    logits = unit(user.astype("float64")) @ unit(catalogue.astype("float64")).T / temperature
    logits = np.where(mask, logits, -np.inf)
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    positives = positives * mask
    return np.array([(lse[b] - logits[b, positives[b] > 0]).mean() if positives[b].any() else 0.0
                     for b in range(len(user))])


def test_losses_agree_across_backends_and_with_numpy():
    results = {b: json.loads(under(b, [sys.executable, "-c", LOSSES]).stdout.splitlines()[-1]) for b in BACKENDS}
    tf_out, jax_out = results["tensorflow"], results["jax"]
    assert set(tf_out) == set(jax_out) == {"in_batch", "full_softmax", "sampled", "candidate_mask", "views"}
    for name in tf_out:
        np.testing.assert_allclose(jax_out[name], tf_out[name], rtol=LOSS_RTOL, atol=LOSS_ATOL, err_msg=name)
    assert np.all(np.isfinite(jax_out["in_batch"]))
    assert np.all(np.array(jax_out["sampled"][:5]) > 0) and jax_out["sampled"][5] == 0  # the last row has no positive
    assert jax_out["candidate_mask"][0] == [0, 1, 1, 0, 1]  # row 0's positive 5 was drawn twice: both copies masked
    rng = np.random.default_rng(0)  # the same draws as the script, in the same order
    def f32(*shape): return rng.normal(size=shape).astype("float32")
    user, _, _, catalogue = f32(6, 8), f32(6, 8), f32(4, 8), f32(12, 8)
    positives = (rng.random((6, 12)) < 0.3).astype("float32")
    expected = numpy_full_softmax(user, catalogue, positives, 0.2, np.arange(12) > 0)
    np.testing.assert_allclose(jax_out["full_softmax"], expected, rtol=LOSS_RTOL, atol=LOSS_ATOL)


@pytest.fixture(scope="module")
def models(ml150_split_folder):
    "A model trained through the command line under each backend, and the training log of each."
    root, _ = ml150_split_folder
    config = json.dumps({"dim": 32, "epochs": 12, "patience": 12})
    logs = {b: under(b, [str(SCRIPT), "train", "--split", str(root / "split"), "--config", config,
                         "--out", str(root / f"model_{b}")]) for b in BACKENDS}
    return {b: root / f"model_{b}" for b in BACKENDS}, {b: done.stdout + done.stderr for b, done in logs.items()}


def recommend(backend: str, model: Path, out: Path) -> pd.DataFrame:
    under(backend, [str(SCRIPT), "recommend", "--model", str(model), "--k", "10", "--out", str(out)])
    return pd.read_csv(out, sep="\t")


def best_valid_ndcg(log: str) -> float:
    line = next(line for line in log.splitlines() if line.startswith("trained "))
    return float(line.split("best valid ndcg@20 ")[1].split()[0])


def test_training_learns_under_jax(models, ml150_split_folder):
    "Twelve epochs under JAX reach a valid NDCG@20 above the most popular items', as they do under TensorFlow."
    _, split = ml150_split_folder
    _, logs = models
    data = encode(split)
    popular = Evaluator(data, "valid", (20,), metrics=("ndcg",))(MostPopular().fit(data).score_fn(data, "valid"))
    for backend in BACKENDS: assert best_valid_ndcg(logs[backend]) > popular["ndcg@20"], (backend, logs[backend])


@pytest.mark.parametrize("trained, served", [("jax", "tensorflow"), ("tensorflow", "jax")])
def test_a_model_saved_under_one_backend_serves_the_same_under_the_other(models, tmp_path, trained, served):
    "The saved model is backend-neutral: the other backend recommends the same items, scores within float32 noise."
    folders, _ = models
    own = recommend(trained, folders[trained], tmp_path / "own.tsv")
    other = recommend(served, folders[trained], tmp_path / "other.tsv")
    assert len(own) == 150 * 10
    np.testing.assert_allclose(other.score, own.score, rtol=1e-5, atol=1e-6)
    # ranks may swap only between items whose scores tie to float32 precision
    swapped = (own.item_id != other.item_id).to_numpy()
    assert not swapped.any() or np.allclose(own.score[swapped], other.score[swapped], atol=1e-6)


ALIGNED = """
import json, numpy as np
from keras import ops
from contrastrec.data import encode, feature_tables, load_movielens_100k, split_random
from contrastrec.evaluation import evaluate, hold_out_items, restrict_candidates
from contrastrec.training import TrainConfig, fit
ml = load_movielens_100k()
data = encode(split_random(ml.interactions[ml.interactions.user_id <= 150], seed=0), ml.users, ml.items,
              item_features={"genres": "multi_hot"})
cold, items = hold_out_items(data, 0.2, seed=0)
out = {}
runs = {"features": dict(item_ids=False, item_features=True), "aligned": dict(content_alignment=1.0)}
for name, settings in runs.items():
    model, history = fit(cold, TrainConfig(dim=16, epochs=3, patience=3, **settings), verbose=0)
    vectors = ops.convert_to_numpy(model.item_vectors(feature_tables(cold, "item")))
    ndcg = evaluate(restrict_candidates(model.score_fn(cold, "test"), items), cold, "test", ks=(20,), metrics=("ndcg",))
    out[name] = {"loss": history.history["loss"], "finite": bool(np.isfinite(vectors).all()), "cold": ndcg["ndcg@20"]}
print(json.dumps(out))
"""


def test_feature_and_aligned_towers_train_under_every_backend():
    "A feature tower's unknown item is an all-zero vector: unit length must keep its gradient finite (JAX too)."
    outputs = {b: under(b, [sys.executable, "-c", ALIGNED]).stdout for b in BACKENDS}
    results = {b: json.loads(out.strip().splitlines()[-1]) for b, out in outputs.items()}
    for backend, runs in results.items():
        for name, run in runs.items():
            assert np.isfinite(run["loss"]).all() and run["finite"] and run["cold"] > 0, (backend, name, run)
