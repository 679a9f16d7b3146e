"Properties of the ranking metrics, the evaluator's protocol and the baselines (the evaluation chapter)."
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from contrastrec.data import Split, encode
from contrastrec.evaluation import (
    BPRMF,
    EASE,
    RANKING_METRICS,
    ContentKNN,
    Evaluator,
    ItemKNN,
    MatrixFactorization,
    MostPopular,
    average_precision_at_k,
    cosine_item_similarity,
    coverage_at_k,
    ease_weights,
    evaluate,
    hit_at_k,
    hit_matrix,
    hold_out_items,
    item_knn_weights,
    keep_top_neighbours,
    known_interactions,
    mrr_at_k,
    multi_hot_matrix,
    ndcg_at_k,
    popularity_percentiles,
    precision_at_k,
    recall_at_k,
    restrict_candidates,
    spd_inverse_in_place,
    top_k_items,
)

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def hit_matrices(draw):
    "A boolean `[users, width]` hit matrix and per-user held-out counts consistent with it (≥ the hits, ≥ 1)."
    users, width = draw(st.integers(1, 6)), draw(st.integers(1, 12))
    hits = draw(arrays(bool, (users, width)))
    extra = draw(arrays(np.int64, users, elements=st.integers(0, 5)))
    return hits, np.maximum(hits.sum(1) + extra, 1)


def all_metrics(hits, n_rel, k):
    return {name: fn(hits, n_rel, k) for name, fn in RANKING_METRICS.items()}


@SETTINGS
@given(hit_matrices(), st.integers(1, 15))
def test_metrics_are_bounded(case, k):
    hits, n_rel = case
    for name, values in all_metrics(hits, n_rel, k).items():
        assert values.shape == (len(hits),)
        assert ((values >= -1e-12) & (values <= 1 + 1e-12)).all(), name


@SETTINGS
@given(hit_matrices())
def test_recall_hit_and_hit_count_grow_with_k(case):
    hits, n_rel = case
    for k in range(1, hits.shape[1]):
        for fn in (lambda k: recall_at_k(hits, n_rel, k), lambda k: hit_at_k(hits, k),
                   lambda k: precision_at_k(hits, k) * k):
            assert (fn(k + 1) >= fn(k) - 1e-12).all()


@SETTINGS
@given(hit_matrices(), st.integers(1, 15))
def test_precision_times_k_counts_hits_and_orderings_between_metrics(case, k):
    hits, n_rel = case
    m = all_metrics(hits, n_rel, k)
    assert np.allclose(m["precision"] * k, hits[:, :k].sum(1))
    assert (m["mrr"] <= m["hit"] + 1e-12).all() and (m["recall"] <= m["hit"] + 1e-12).all()
    assert (m["precision"] <= m["hit"] + 1e-12).all()
    assert np.array_equal(m["hit"] > 0, hits[:, :k].any(1))


@SETTINGS
@given(hit_matrices(), st.integers(1, 15))
def test_precision_is_bounded_by_min_of_relevant_and_k_over_k(case, k):
    hits, n_rel = case
    assert (precision_at_k(hits, k) <= np.minimum(n_rel, k) / k + 1e-12).all()


@SETTINGS
@given(arrays(np.float32, (5, 9), elements=st.sampled_from([0.0, 1.0, 2.0])), st.integers(0, 2**16), st.integers(1, 8))
def test_hit_matrix_reads_the_listed_entries_of_the_heldout_matrix(heldout, seed, k):
    "The sparse look-up agrees with indexing the dense matrix at the listed items."
    rng = np.random.default_rng(seed)
    users = rng.permutation(5)[: rng.integers(1, 6)]
    top = np.stack([rng.permutation(np.arange(1, 9))[:k] for _ in users])
    expected = np.take_along_axis(heldout[users] > 0, top, axis=1)
    assert np.array_equal(hit_matrix(top, users, sp.csr_matrix(heldout)), expected)


@SETTINGS
@given(hit_matrices())
def test_at_one_every_ranking_metric_but_recall_is_the_first_hit(case):
    hits, n_rel = case
    m = all_metrics(hits, n_rel, 1)
    for name in ("ndcg", "hit", "mrr", "precision", "map"):
        assert np.allclose(m[name], hits[:, 0]), name
    assert np.allclose(m["recall"], hits[:, 0] / n_rel)


@SETTINGS
@given(st.integers(1, 10), st.integers(1, 15), st.integers(0, 5))
def test_perfect_ranking(n_rel, k, tail):
    hits = np.zeros((1, n_rel + tail), bool)
    hits[0, :n_rel] = True
    n = np.array([n_rel])
    for fn in (ndcg_at_k, average_precision_at_k):
        assert np.isclose(fn(hits, n, k)[0], 1.0)
    assert hit_at_k(hits, k)[0] == 1 and mrr_at_k(hits, k)[0] == 1
    assert np.isclose(recall_at_k(hits, n, k)[0], min(k, n_rel) / n_rel)
    assert np.isclose(precision_at_k(hits, k)[0], min(k, n_rel, hits.shape[1]) / k)


@SETTINGS
@given(arrays(np.int64, st.integers(1, 30), elements=st.integers(0, 100)))
def test_popularity_percentiles_are_monotone_in_counts(counts):
    counts = np.concatenate([[0], counts])
    pct = popularity_percentiles(counts)
    assert pct[0] == 0 and ((pct[1:] > 0) & (pct[1:] <= 1)).all()
    order = np.argsort(counts[1:], kind="stable")
    assert (np.diff(pct[1:][order]) >= -1e-12).all()
    assert np.isclose(pct[1:].mean(), (len(counts) - 1 + 1) / (2 * (len(counts) - 1)))


@SETTINGS
@given(st.integers(2, 20), st.integers(1, 8), st.integers(0, 2**16))
def test_coverage_bounds_and_growth(n_items, n_users, seed):
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(np.arange(1, n_items))[: n_items - 1] for _ in range(n_users)])
    values = [coverage_at_k(top, n_items, k) for k in range(1, n_items)]
    assert all(0 < v <= 1 for v in values) and values == sorted(values) and values[-1] == 1.0


# --- the evaluator on a small random dataset ---------------------------------------------------------

def random_split(seed: int, n_users: int = 30, n_items: int = 40, per_user: int = 10) -> Split:
    "Every user has `per_user` distinct items: 6 in train, 2 in valid, 2 in test."
    rng = np.random.default_rng(seed)
    rows = [(u, i) for u in range(n_users) for i in rng.choice(n_items, per_user, replace=False)]
    rows = pd.DataFrame(rows, columns=["user_id", "item_id"])
    parts = rows.groupby("user_id").cumcount() % 5
    return Split(rows[parts < 3], rows[parts == 3], rows[parts == 4])


@pytest.fixture(scope="module")
def split():
    return random_split(0)


@pytest.fixture(scope="module")
def data(split):
    data = encode(split)
    assert data.report["valid"]["oov_items"] == data.report["test"]["oov_items"] == 0
    return data


def oracle(data, part):
    "Scores the user's held-out items of `part` above everything else."
    pairs = getattr(data, part)
    rel = sp.csr_matrix((np.ones(len(pairs)), tuple(pairs.T)), shape=(data.n_users, data.n_items))
    return lambda users: rel[users].toarray() + np.linspace(0, 0.5, data.n_items)


@pytest.mark.parametrize("part", ["valid", "test"])
def test_oracle_scores_one(data, part):
    got = evaluate(oracle(data, part), data, part, ks=(5, 10), metrics=("ndcg", "hit", "mrr", "map"))
    assert all(np.isclose(v, 1.0) for v in got.values()), got


@pytest.mark.parametrize("part", ["valid", "test"])
def test_known_items_are_never_recommended(data, part):
    known = known_interactions(data, part)

    def loves_known(users):  # the known items first, if they were allowed
        return known[users].toarray() * 10.0

    top = Evaluator(data, part, ks=(10,)).top_k(loves_known)
    users = Evaluator(data, part).users
    assert not np.take_along_axis(known[users].toarray(), top, 1).any() and (top != 0).all()
    assert known.nnz == (len(data.train) if part == "valid" else len(data.train) + len(data.valid))


def test_valid_keeps_test_items_as_candidates(data):
    "On valid the user's test items are candidates (not excluded); on test the valid items are."
    valid_top = Evaluator(data, "valid", ks=(5,)).top_k(oracle(data, "test"))
    test_users = set(map(int, data.test[:, 0]))
    first = {int(u): int(t[0]) for u, t in zip(Evaluator(data, "valid").users, valid_top)}
    assert all(first[u] in set(data.test[data.test[:, 0] == u, 1]) for u in test_users)


def test_only_users_with_heldout_items_are_averaged(split):
    smaller = encode(Split(split.train, split.valid, split.test[split.test.user_id != 0]))
    ev = Evaluator(smaller, "test")
    assert len(ev.users) == split.test.user_id.nunique() - 1 and smaller.user_vocab.lookup([0])[0] not in ev.users
    means, table = ev(MostPopular().fit(smaller).score_fn(smaller, "test"), per_user=True)
    assert len(table) == len(ev.users) and np.isclose(means["ndcg@20"], table["ndcg@20"].mean())


def test_evaluator_output_names_and_ranges(data):
    means, table = evaluate(EASE(10.0).fit(data).score_fn(data, "test"), data, ks=(1, 5), per_user=True)
    names = ("recall", "ndcg", "hit", "mrr", "precision", "map", "coverage", "popularity", "novelty")
    expected = {f"{m}@{k}" for m in names for k in (1, 5)}
    assert set(means) == expected and set(table.columns) == expected - {"coverage@1", "coverage@5"}
    assert all(0 <= means[k] <= 1 for k in expected if not k.startswith("novelty")) and means["novelty@5"] >= 0


def test_bad_arguments_fail_early(data):
    for bad in (dict(part="train"), dict(metrics=("auc",)), dict(ks=())):
        with pytest.raises(ValueError):
            Evaluator(data, **bad)
    with pytest.raises(ValueError, match="not fitted"):
        EASE().score_fn(data, "test")
    with pytest.raises(ValueError, match="lam"):
        ease_weights(sp.csr_matrix(np.eye(3)), 0.0)


# --- baselines -----------------------------------------------------------------------------------------

@SETTINGS
@given(arrays(np.float32, (6, 5), elements=st.sampled_from([0.0, 1.0])), st.floats(0.1, 100.0))
def test_ease_is_the_constrained_least_squares_optimum(x, lam):
    b = ease_weights(sp.csr_matrix(x), lam)
    gram = x.T.astype("float64") @ x
    residual = (gram + lam * np.eye(5)) @ b - gram  # gradient of the Lagrangian: diagonal only
    assert np.allclose(np.diag(b), 0)
    assert np.allclose(residual - np.diag(np.diag(residual)), 0, atol=1e-4 * (1 + np.abs(gram).max()))


@SETTINGS
@given(arrays(np.float32, (6, 5), elements=st.sampled_from([0.0, 1.0])), st.floats(0.1, 100.0))
def test_ease_columns_are_ridge_regressions_on_the_other_items(x, lam):
    "diag(B) = 0 splits EASE into one ridge regression per item, on the other items' columns."
    b, x = ease_weights(sp.csr_matrix(x), lam), x.astype("float64")
    for j in range(5):
        others = np.delete(np.arange(5), j)
        ridge = np.linalg.solve(x[:, others].T @ x[:, others] + lam * np.eye(4), x[:, others].T @ x[:, j])
        assert np.allclose(b[others, j], ridge, rtol=1e-5, atol=1e-5)  # b is float32


@SETTINGS
@given(arrays(np.float64, (9, 9), elements=st.floats(-3, 3)), st.integers(1, 10), st.booleans())
def test_spd_inverse_in_place_is_the_inverse_whatever_the_block_and_layout(g, block, fortran):
    spd = np.array(g @ g.T + np.eye(9), order="F" if fortran else "C")
    expected = np.linalg.inv(spd)
    inverse = spd_inverse_in_place(spd, block)
    assert inverse is spd and np.allclose(inverse, inverse.T, rtol=0, atol=0)  # overwritten, exactly symmetric
    assert np.allclose(inverse, expected, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(arrays(np.float32, (8, 7), elements=st.sampled_from([0.0, 1.0])), st.integers(1, 8))
def test_itemknn_keeps_k_neighbours_per_item(x, k):
    sim = cosine_item_similarity(sp.csr_matrix(x)).toarray()
    assert np.allclose(sim, sim.T, atol=1e-6) and np.allclose(np.diag(sim), 0) and (sim <= 1 + 1e-6).all()
    w = keep_top_neighbours(sim, k).toarray()
    assert ((w != 0).sum(0) <= k).all()
    kept = np.where(w != 0, sim, np.inf).min(0)
    dropped = np.where((w == 0) & ~np.eye(7, dtype=bool), sim, -np.inf).max(0)
    assert (kept >= dropped - 1e-6).all()  # nothing dropped is more similar than anything kept


def dense_item_knn(x, k):
    "The dense reference: the full similarity matrix, then a stable argsort of each column (ties: lower row first)."
    cooc = (x.T @ x).toarray().astype("float32")
    norms = np.sqrt(np.diag(cooc))
    sim = cooc / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(sim, 0.0)
    np.put_along_axis(sim, np.argsort(-sim.copy(), axis=0, kind="stable")[k:], 0.0, axis=0)
    return sim


@SETTINGS
@given(arrays(np.float32, (10, 9), elements=st.sampled_from([0.0, 0.0, 1.0, 2.0])), st.integers(1, 12),
       st.sampled_from([1, 2, 4, 9, None]))
def test_blocked_sparse_itemknn_is_the_dense_rule_exactly(x, k, block_size):
    "Same weights bit for bit, whatever the block size, including ties at the k-th place and k ≥ n_items."
    x = sp.csr_matrix(x)
    w = item_knn_weights(x, k, block_size)
    assert sp.issparse(w) and w.dtype == np.float32 and w.nnz <= 9 * k
    assert np.array_equal(w.toarray(), dense_item_knn(x, k))


def test_itemknn_weights_do_not_depend_on_the_block_size(data):
    x = data.matrix(["train"])
    one = item_knn_weights(x, 5)  # ~40 items: a single block by default
    assert one.nnz <= data.n_items * 5 and abs(one - item_knn_weights(x, 5, block_size=7)).max() == 0
    assert np.array_equal(one.toarray(), dense_item_knn(x, 5))


def test_history_is_the_protocols_known_interactions(data):
    knn = ItemKNN(k=5).fit(data)
    users = np.arange(1, data.n_users)
    for part in ("valid", "test"):
        expected = known_interactions(data, part)[users] @ knn.weights.toarray()  # sparse @ dense, as EASE scores
        assert np.array_equal(knn.score_fn(data, part)(users), expected)
    own = sp.csr_matrix((data.n_users, data.n_items))
    assert np.allclose(knn.score_fn(data, "test", history=own)(users), 0)


def test_baselines_beat_random_and_popularity_is_the_same_for_everyone(data):
    pop = MostPopular().fit(data).score_fn(data, "test")(np.array([1, 2]))
    assert pop.shape == (2, data.n_items) and np.array_equal(pop[0], pop[1])
    for model in (ItemKNN(k=10), EASE(5.0)):
        assert model.fit(data).score_fn(data, "test")(np.array([1, 2, 3])).shape == (3, data.n_items)
        assert model.config() in ({"k": 10}, {"lam": 5.0, "dtype": "float64"})


def test_ease_in_single_precision_matches_double(data):
    double, single = EASE(5.0).fit(data).weights, EASE(5.0, "float32").fit(data).weights
    assert single.dtype == double.dtype == np.float32
    assert np.allclose(single, double, rtol=0, atol=1e-4)  # float32 rounding of a well-conditioned inverse


def test_bprmf_is_seeded_and_learns(data):

    def fit():
        return BPRMF(dim=8, epochs=3, batch_size=64, learning_rate=0.05).fit(data)

    a, b = fit(), fit()
    users = np.arange(1, data.n_users)
    assert np.allclose(a.score_fn(data, "test")(users), b.score_fn(data, "test")(users))
    assert a.model.history.history["loss"][-1] < a.model.history.history["loss"][0]
    clone = MatrixFactorization.from_config(a.model.get_config())
    assert (clone.n_users, clone.n_items, clone.dim, clone.reg) == (data.n_users, data.n_items, 8, a.reg)


# --- item cold start --------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 0.9))
def test_hold_out_items_removes_every_trace_of_the_cold_items(seed, fraction):
    data = encode(random_split(seed % 7))
    cold_data, cold = hold_out_items(data, fraction, seed)
    assert len(cold) == max(1, round(fraction * (data.item_counts() > 0).sum())) and 0 not in cold
    for part in ("train", "valid"):
        kept = getattr(cold_data, part)
        assert not np.isin(kept[:, 1], cold).any()
        original = getattr(data, part)
        assert len(kept) == (~np.isin(original[:, 1], cold)).sum()
    assert np.isin(cold_data.test[:, 1], cold).all()
    assert len(cold_data.test) == np.isin(data.test[:, 1], cold).sum()
    assert np.array_equal(hold_out_items(data, fraction, seed)[1], cold)


def test_hold_out_items_rejects_bad_input(data):
    with pytest.raises(ValueError, match="between 0 and 1"): hold_out_items(data, 1.0)
    with pytest.raises(ValueError, match="test part"): hold_out_items(replace(data, test=None))


def test_restricted_scores_only_recommend_the_candidates(data):
    candidates = np.array([3, 5, 7, 11, 13])
    score = restrict_candidates(MostPopular().fit(data).score_fn(data, "test"), candidates)
    top = top_k_items(score, np.arange(1, data.n_users), 5)
    assert np.array_equal(np.sort(top, axis=1), np.tile(candidates, (data.n_users - 1, 1)))


@SETTINGS
@given(arrays(np.int64, (5, 3), elements=st.integers(0, 6)))
def test_multi_hot_matrix_marks_exactly_the_listed_indices(indices):
    hot = multi_hot_matrix(indices, width=7)
    for row, listed in zip(hot, indices):
        assert set(np.flatnonzero(row)) == set(listed) - {0}


def test_content_knn_scores_by_feature_overlap_and_explains_missing_features(data):
    genres = np.zeros((data.n_items, 2), "int32")
    genres[1:, 0] = 1 + np.arange(data.n_items - 1) % 3  # three genres, one per item
    featured = replace(data, item_features={"genres": genres})
    model = ContentKNN(("genres",)).fit(featured)
    same = genres[:, 0][:, None] == genres[:, 0][None, :]
    assert np.allclose(model.weights[1:, 1:], same[1:, 1:])
    with pytest.raises(ValueError, match="not encoded"): ContentKNN(("title",)).fit(featured)
    with pytest.raises(ValueError, match="integer"): multi_hot_matrix(np.array([0.5, 1.0]))
