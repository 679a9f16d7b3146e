"Properties of the towers: pooling, history dropout, encoders, LightGCN, and save/load round trips."
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from keras import ops

from contrastrec.data import (
    encode,
    feature_tables,
    from_frames,
    history_table,
    pair_dataset,
    spec_to_config,
    split_random,
)
from contrastrec.towers import (
    FeatureEncoder,
    HistoryEncoder,
    LightGCN,
    LightGCNEncoder,
    Tower,
    TwoTowerModel,
    first_label,
    graph_adjacency,
    pca_2d,
    pool_embeddings,
)

GENRES = ["action", "comedy", "drama", "horror"]
WORDS = ["the", "big", "night", "day", "love", "war", "star", "dark"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    pairs = {(u, i) for u, i in zip(rng.integers(1, n_users + 1, 600), rng.integers(1, n_items + 1, 600))}
    inter = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"])
    users = pd.DataFrame({"user_id": range(1, n_users + 1), "age": rng.integers(15, 70, n_users),
                          "job": rng.choice(["a", "b", "c"], n_users)})
    items = pd.DataFrame({"item_id": range(1, n_items + 1), "year": rng.integers(1950, 2000, n_items).astype(float),
                          "genres": [list(rng.choice(GENRES, rng.integers(0, 3), replace=False))
                                     for _ in range(n_items)],
                          "title": [" ".join(rng.choice(WORDS, 3)) for _ in range(n_items)]})
    rec = from_frames(inter, users, items)
    return encode(split_random(rec.interactions, seed=0), rec.users, rec.items,
                  {"age": "bucket", "job": "categorical"}, {"year": "numeric", "genres": "multi_hot", "title": "text"})


def inputs(data):
    return {**feature_tables(data, "user"), "history": history_table(data)}, feature_tables(data, "item")


def numpy_mean(table, indices, keep):
    out = np.zeros((len(indices), table.shape[1]), "float64")
    for b, (row, k) in enumerate(zip(indices, keep)):
        chosen = row[(row > 0) & k]
        if len(chosen): out[b] = table[chosen].mean(0)
    return out


@settings(max_examples=30, deadline=None)
@given(arrays(np.int32, st.tuples(st.integers(1, 6), st.integers(1, 7)), elements=st.integers(0, 5)),
       st.integers(0, 2**16), st.booleans())
def test_pool_embeddings_is_the_masked_mean(indices, seed, with_keep):
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(6, 3)).astype("float32")
    keep = rng.random(indices.shape) < 0.6 if with_keep else np.ones(indices.shape, bool)
    got = ops.convert_to_numpy(pool_embeddings(table, indices, keep if with_keep else None))
    assert np.allclose(got, numpy_mean(table, indices, keep), atol=1e-5)


def test_history_dropout_keeps_a_renormalised_subset(data):
    hist = history_table(data)[1:].padded()
    keras.utils.set_random_seed(0)
    onehot = keras.layers.Embedding(data.n_items, data.n_items, embeddings_initializer="identity")
    weights = ops.convert_to_numpy(HistoryEncoder(onehot, dropout=0.4, seed=3)(hist, training=True))
    kept = 0
    for row, w in zip(hist, weights):
        on = w[row[row > 0]]
        assert set(np.flatnonzero(w)) <= set(row[row > 0]) and w[0] == 0
        if (on > 0).any(): assert np.allclose(on[on > 0], 1 / (on > 0).sum()) and np.isclose(w.sum(), 1)
        kept += (on > 0).sum()
    assert abs(1 - kept / (hist > 0).sum() - 0.4) < 0.08
    plain = HistoryEncoder(onehot)
    assert np.allclose(plain(hist, training=True), plain(hist))
    assert np.allclose(plain(hist), numpy_mean(np.eye(data.n_items), hist, hist > 0))


@pytest.mark.parametrize("use_ids,use_features", [(True, True), (True, False), (False, True)])
def test_feature_encoder_width_and_parts(data, use_ids, use_features):
    specs = [spec_to_config(s) for s in data.item_specs]
    enc = FeatureEncoder(specs, data.n_items, id_dim=8, feature_dim=4, use_ids=use_ids, use_features=use_features)
    items = feature_tables(data, "item")
    x = ops.convert_to_numpy(enc(items))
    assert x.shape == (data.n_items, enc.output_width) == (data.n_items, 8 * use_ids + (4 + 4 + 1) * use_features)
    if use_ids: assert np.allclose(x[:, :8], enc.id_encoder.embeddings.numpy())
    if use_features: assert np.allclose(x[:, -1], items["year"])


def test_tower_is_dense_relu_and_normalises(data):
    enc = FeatureEncoder([spec_to_config(s) for s in data.item_specs], data.n_items)
    items = feature_tables(data, "item")
    tower = Tower(enc, hidden_units=[16])
    layer = tower.hidden[0]
    expected = np.maximum(ops.convert_to_numpy(enc(items)) @ layer.kernel.numpy() + layer.bias.numpy(), 0)
    assert np.allclose(tower(items), expected, atol=1e-6)
    deep = Tower(enc, [16, 8], output_dim=5, norm="batch", dropout=0.5, normalize=True)
    assert deep.output_width == 5 and np.allclose(np.linalg.norm(deep(items), axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="norm"): Tower(enc, norm="group")


def test_tower_over_a_graph_encoder(data):
    graph = LightGCN(data.n_users, data.n_items, dim=6, adjacency=graph_adjacency(data))
    tower = Tower(LightGCNEncoder(graph, "user"), hidden_units=[4], dropout=0.5, normalize=True)
    users = feature_tables(data, "user")
    assert tower.input_keys == ["id"] and tower(users, training=True).shape == (data.n_users, 4)
    clone = Tower.from_config(tower.get_config())
    clone.set_weights(tower.get_weights())
    assert np.array_equal(clone(users), tower(users))


def test_graph_adjacency_is_the_normalised_bipartite_graph(data):
    adj = graph_adjacency(data)
    r = data.matrix().toarray()
    a = np.block([[np.zeros((data.n_users,) * 2), r], [r.T, np.zeros((data.n_items,) * 2)]])
    deg = a.sum(1)
    inv = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1)), 0)
    assert np.allclose(adj.toarray(), inv[:, None] * a * inv[None, :], atol=1e-6)
    assert np.isclose(np.abs(np.linalg.eigvalsh(adj.toarray())).max(), 1, atol=1e-4)


@pytest.mark.parametrize("include_input", [True, False])
def test_lightgcn_propagation_and_noise(data, include_input):
    adj = graph_adjacency(data)
    graph = LightGCN(data.n_users, data.n_items, dim=4, n_layers=3, adjacency=adj, include_input=include_input, seed=0)
    e = [graph.embeddings.numpy()]
    for _ in range(3): e.append(adj @ e[-1])
    expected = np.mean(e if include_input else e[1:], axis=0)
    users, items = graph.propagate()
    assert np.allclose(np.concatenate([users, items]), expected, atol=1e-5)
    ids = np.array([1, 2, 3], "int32")
    assert np.allclose(LightGCNEncoder(graph, "item")({"id": ids}), expected[data.n_users + ids], atol=1e-5)
    noisy = [ops.convert_to_numpy(t) for t in graph.propagate_layers(eps=0.2)]
    delta = noisy[1] - adj @ e[0]
    connected = np.diff(adj.indptr) > 0
    assert np.allclose(np.linalg.norm(delta[connected], axis=1), 0.2, atol=1e-5) and np.allclose(delta[~connected], 0)


def two_towers(user_encoder, item_encoder, **head) -> TwoTowerModel:
    return TwoTowerModel(Tower(user_encoder, output_dim=8, normalize=True, name="user_tower", **head),
                         Tower(item_encoder, output_dim=8, normalize=True, name="item_tower", **head))


def ids_and_features_mlp(data):
    return two_towers(FeatureEncoder(data.user_specs, data.n_users, 8),
                      FeatureEncoder(data.item_specs, data.n_items, 8),
                      hidden_units=[16], norm="batch", dropout=0.2, seed=1)


def shared_history(data):
    table = keras.layers.Embedding(data.n_items, 8, name="item_ids")
    return two_towers(FeatureEncoder(use_ids=False, history=HistoryEncoder(table, 0.5, seed=1)),
                      FeatureEncoder(id_encoder=table))


def history_and_features(data):
    history = HistoryEncoder(keras.layers.Embedding(data.n_items, 8, name="history_table"), 0.3, seed=1)
    return two_towers(FeatureEncoder(data.user_specs, use_ids=False, history=history),
                      FeatureEncoder(data.item_specs, data.n_items, 8),
                      norm="layer", hidden_units=[8])


def graph(data):
    gcn = LightGCN(data.n_users, data.n_items, 8, 2, graph_adjacency(data), include_input=False, seed=1)
    return two_towers(FeatureEncoder(id_encoder=LightGCNEncoder(gcn, "user")),
                      FeatureEncoder(id_encoder=LightGCNEncoder(gcn, "item")))


CONFIGS = {"id+features, MLP": ids_and_features_mlp, "shared history": shared_history,
           "history + features": history_and_features, "graph": graph}


@pytest.mark.parametrize("name", CONFIGS)
def test_save_and_load_give_identical_vectors(data, tmp_path, name):
    keras.utils.set_random_seed(0)
    model = CONFIGS[name](data)
    users, items = inputs(data)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is TwoTowerModel and loaded.get_config() == model.get_config()
    assert np.array_equal(loaded.user_vectors(users), model.user_vectors(users))
    assert np.array_equal(loaded.item_vectors(items), model.item_vectors(items))
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    user_encoder, item_encoder = loaded.user_tower.encoder, loaded.item_tower.encoder
    if name == "shared history": assert user_encoder.history.embedding is item_encoder.id_encoder
    if name == "graph": assert loaded.user_tower.encoder.id_encoder.graph is loaded.item_tower.encoder.id_encoder.graph
    first = {k: v[:5].padded() if k == "history" else v[:5] for k, v in users.items()}  # a model call reads padded rows
    u, i = model({"user": first, "item": {k: v[:5] for k, v in items.items()}})
    assert u.shape == i.shape == (5, 8)


def test_tower_projects_only_where_the_width_differs(data):
    ids = FeatureEncoder(id_cardinality=data.n_items, id_dim=8)
    assert Tower(ids, output_dim=8).projection is None and Tower(ids, output_dim=4).projection is not None
    assert Tower(ids, [8], output_dim=8).projection is not None  # an MLP always ends with the projection


def test_encoder_errors(data):
    with pytest.raises(ValueError, match="no inputs"): FeatureEncoder(use_ids=False)
    with pytest.raises(ValueError, match="id_cardinality"): FeatureEncoder(data.item_specs)
    with pytest.raises(ValueError, match="graph"): LightGCN(data.n_users, data.n_items, 8, 2)
    with pytest.raises(ValueError, match="history"): shared_history(data).user_vectors(feature_tables(data, "user"))
    with pytest.raises(ValueError, match="dropout"):
        HistoryEncoder(keras.layers.Embedding(data.n_items, 8), dropout=1.0)


@keras.saving.register_keras_serializable(package="test_towers")
class InBatchSoftmaxModel(TwoTowerModel):
    "The plain Keras way to add an objective: a subclass with its own argument and `compute_loss`."
    def __init__(self, user_tower, item_tower, temperature: float = 0.1, **kwargs):
        super().__init__(user_tower, item_tower, **kwargs)
        self.temperature = temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        u, i = y_pred
        logits = ops.matmul(u, ops.transpose(i)) / self.temperature
        labels = ops.arange(ops.shape(u)[0])
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def get_config(self): return {**super().get_config(), "temperature": self.temperature}


@pytest.mark.parametrize("name", ["id+features, MLP", "graph"])
def test_subclass_trains_and_round_trips(data, tmp_path, name):
    keras.utils.set_random_seed(0)
    towers = CONFIGS[name](data)
    model = InBatchSoftmaxModel(towers.user_tower, towers.item_tower, temperature=0.2)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(pair_dataset(data, batch_size=64, seed=0), epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras")
    users, items = inputs(data)
    assert type(loaded) is InBatchSoftmaxModel and loaded.temperature == 0.2
    assert np.array_equal(loaded.item_vectors(items), model.item_vectors(items))


def test_history_dropout_step_is_traceable(data):
    "The denoising tower inside a compiled function: new draws each step, no retracing."
    keras.utils.set_random_seed(0)
    model = shared_history(data)
    hist = tf.constant(history_table(data)[1:].padded())
    step = tf.function(lambda h: model.user_vectors({"history": h}, training=True))
    a, b = step(hist), step(hist)
    assert not np.allclose(a, b) and step.experimental_get_tracing_count() == 1


def test_pca_and_first_label(data):
    x = np.random.default_rng(0).normal(size=(50, 5)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1])
    p = pca_2d(x)
    assert p.shape == (50, 2) and np.allclose(p.mean(0), 0) and p[:, 0].var() >= p[:, 1].var()
    assert np.allclose(np.abs(p), np.abs((x - x.mean(0)) @ np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:2].T))
    labels = first_label(data, "genres")
    assert len(labels) == data.n_items and labels[0] == "none" and set(labels) <= set(GENRES) | {"none"}
    with pytest.raises(ValueError, match="multi-hot"): first_label(data, "year")
