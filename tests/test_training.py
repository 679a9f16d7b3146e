"Training end to end on a slice of ml100k-v1: resume after interrupt, distribution strategies, configs."
import json
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from contrastrec.data import Split, encode, load_benchmark_split
from contrastrec.evaluation import Evaluator
from contrastrec.training import ContrastiveModel, TrainConfig, fit, model_from_config

SMALL = TrainConfig(dim=16, epochs=4, patience=10, batch_size=16)


def small_split() -> Split:
    "ml100k-v1 restricted to its first 80 users."
    split = load_benchmark_split("ml100k-v1")
    def keep(df): return df[df.user_id <= 80].reset_index(drop=True)
    return Split(keep(split.train), keep(split.valid), keep(split.test))


@pytest.fixture(scope="module")
def small():
    return encode(small_split())


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch: raise KeyboardInterrupt("simulated crash")


@pytest.mark.parametrize("objective", ["full_softmax", "in_batch"])
def test_resume_after_interrupt_matches_uninterrupted_run(small, tmp_path, objective):
    batch_size = 64 if objective == "in_batch" else 16
    config = TrainConfig(**{**SMALL.to_dict(), "objective": objective, "batch_size": batch_size})
    straight, h1 = fit(small, config, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(small, config, checkpoint_dir=tmp_path / "b", callbacks=[Interrupt(1)])
    resumed, h2 = fit(small, config, checkpoint_dir=tmp_path / "b")
    assert len(h2.history["loss"]) == config.epochs - 2, "the resumed run must continue from the last checkpoint"
    np.testing.assert_allclose(h1.history["loss"][2:], h2.history["loss"], rtol=1e-5)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_same_seed_same_result_other_seed_differs(small):
    a, ha = fit(small, SMALL)
    b, hb = fit(small, SMALL)
    c, hc = fit(small, TrainConfig(**{**SMALL.to_dict(), "seed": 1}))
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    assert not np.allclose(ha.history["loss"], hc.history["loss"])


def test_validation_metrics_logged_and_best_epoch_restored(small):
    model, history = fit(small, TrainConfig(**{**SMALL.to_dict(), "epochs": 5}))
    ndcg = history.history["val_ndcg@20"]
    assert len(ndcg) == 5 and all(0 <= v <= 1 for v in ndcg)
    now = Evaluator(small, "valid", ks=(20,), metrics=("ndcg",))(model.score_fn(small, "valid"))
    assert now["ndcg@20"] == pytest.approx(max(ndcg), abs=1e-6), "the best epoch's weights must be restored"


def test_mirrored_strategy_over_cpu_trains_like_the_default(small):
    config = TrainConfig(**{**SMALL.to_dict(), "epochs": 2})
    _, plain = fit(small, config)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model, mirrored = fit(small, config)
    assert isinstance(model, ContrastiveModel)
    np.testing.assert_allclose(plain.history["loss"], mirrored.history["loss"], rtol=1e-4)


@pytest.mark.parametrize("overrides", [
    {"objective": "in_batch", "extra_negatives": 32, "symmetric": True, "batch_size": 64},
    {"user_features": True, "item_features": True, "hidden_units": [32], "ssl_weight": 0.1, "lr_schedule": "cosine",
     "weight_decay": 1e-4},
    {"objective": "in_batch", "graph_layers": 2, "user_history": False, "user_ids": True, "ssl_weight": 0.1,
     "batch_size": 64},
    {"objective": "in_batch", "user_history": False, "user_ids": True, "sparse_updates": True, "batch_size": 64},
    {"sparse_updates": True, "negatives": 50, "history_dropout": 0.2},
])
def test_every_configuration_trains_to_finite_losses(small, overrides):
    config = TrainConfig(**{**SMALL.to_dict(), "epochs": 2, **overrides})
    model, history = fit(small, config)
    assert np.isfinite(history.history["loss"]).all()
    assert 0 <= history.history["val_ndcg@20"][-1] <= 1


def test_config_round_trips_and_rejects_bad_values():
    c = TrainConfig(hidden_units=[8, 4], temperature=0.1)
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    bad_values = [{"objective": "pointwise"}, {"temperature": -0.1}, {"dim": -1}, {"patience": -2},
                  {"user_history": False}]
    for bad in [*bad_values, {"tau": 1}]:
        with pytest.raises(ValueError):
            TrainConfig.from_dict(bad) if "tau" in bad else TrainConfig(**bad)


def test_refit_without_valid_trains_every_epoch_and_keeps_the_last_weights():
    split = small_split()
    refit = encode(split.for_refit())
    assert refit.valid is None
    model, history = fit(refit, TrainConfig(dim=16, epochs=3, patience=1, batch_size=16))
    assert len(history.history["loss"]) == 3 and not any(k.startswith("val_") for k in history.history)
    with pytest.raises(ValueError, match="no valid part"): Split(split.train, None).for_refit()


def test_items_without_train_interactions_are_not_softmax_candidates(small):
    gone = np.unique(small.train[:, 1])[:5]
    data = replace(small, train=small.train[~np.isin(small.train[:, 1], gone)])
    model = model_from_config(TrainConfig(dim=8), data)
    candidates = keras.ops.convert_to_numpy(model.task.candidates)
    assert not np.isin(gone, candidates).any() and 0 not in candidates
    assert len(candidates) == (data.item_counts()[1:] > 0).sum()


def test_the_model_saves_with_its_tasks_and_shared_graph(small, tmp_path):
    "A training model round-trips through keras.saving: towers, tasks and the LightGCN they share stay one object."
    config = TrainConfig(objective="in_batch", dim=8, graph_layers=2, user_history=False, user_ids=True, ssl_weight=0.1,
                         epochs=1, batch_size=64)
    model, _ = fit(small, config, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert [type(t).__name__ for t in loaded.tasks] == ["InBatchSoftmax", "GraphViews"]
    graph = loaded.auxiliary_tasks[0].graph
    assert graph is loaded.item_tower.encoder.id_encoder.graph is loaded.user_tower.encoder.id_encoder.graph
    assert (loaded.task.get_config(), loaded.auxiliary_tasks[0].weight) == (model.task.get_config(), 0.1)
    for a, b in zip(loaded.score_fn(small, "test")(np.arange(1, 9)), model.score_fn(small, "test")(np.arange(1, 9))):
        np.testing.assert_array_equal(a, b)


def test_a_new_task_needs_one_class(small):
    from contrastrec.training import Task

    class PullPairs(Task):
        batches = "pairs"
        def embed(self, model, batch, training=False):
            return model.user_tower(batch["user"]), model.item_tower(batch["item"])

        def loss(self, batch, outputs): return -keras.ops.mean(keras.ops.sum(outputs[0] * outputs[1], axis=1))

    towers = model_from_config(TrainConfig(dim=8, user_history=False, user_ids=True), small)
    model = ContrastiveModel(towers.user_tower, towers.item_tower, PullPairs())
    model, history = fit(small, TrainConfig(epochs=2, batch_size=64, patience=5), model=model, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
