"""Contrastive losses against NumPy references.

Also their gradients, limits (BPR = InfoNCE with one negative, τ → 0), logQ correction, masking and stability.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from keras import ops

from contrastrec.losses import (
    InBatchSoftmaxLoss,
    MultiPositiveSoftmaxLoss,
    alignment,
    bpr_loss,
    directau_loss,
    full_softmax_loss,
    in_batch_softmax_loss,
    info_nce_loss,
    info_nce_views,
    logq_correction,
    mixture_logq,
    multi_positive_softmax_loss,
    negative_mask,
    similarity_logits,
    uniformity,
    with_extra_negatives,
)
from contrastrec.towers import perturb_embeddings

# Reproducible and quick: the same examples on every run, no example database written into the tree.
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)


def np_(x) -> np.ndarray: return np.asarray(ops.convert_to_numpy(x), dtype="float64")


# ---- NumPy references (float64, loops where that is clearer) ----

def ref_lse(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis)

def ref_unit(x): return x / np.linalg.norm(x, axis=-1, keepdims=True)

def ref_in_batch(u, v, tau, logq=None, ids=None, extra=None, extra_logq=None, extra_ids=None, symmetric=False,
                 normalize=True):
    cand = v if extra is None else np.concatenate([v, extra])
    lq = np.zeros(len(cand)) if logq is None else np.concatenate([logq, [] if extra is None else extra_logq])
    cid = np.arange(len(cand)) if ids is None else np.concatenate([ids, [] if extra is None else extra_ids])
    s = ((ref_unit(u) @ ref_unit(cand).T) if normalize else u @ cand.T) / tau - lq
    out = []
    for i in range(len(u)):
        fwd = ref_lse(s[i, [j for j in range(len(cand)) if j == i or cid[j] != cid[i]]]) - s[i, i]
        bwd = ref_lse(s[[j for j in range(len(u)) if j == i or cid[j] != cid[i]], i]) - s[i, i]
        out.append((fwd + bwd) / 2 if symmetric else fwd)
    return np.array(out)

def ref_full(u, items, positives, tau, mask):
    s = ref_unit(u) @ ref_unit(items).T / tau
    def row_loss(row, pos):
        return np.mean([ref_lse(row[mask]) - row[c] for c in np.flatnonzero(pos * mask)]) if (pos * mask).any() else 0.0
    return np.array([row_loss(row, pos) for row, pos in zip(s, positives)])

def ref_uniformity(x, t=2.0):
    x = ref_unit(x)
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    return np.log(np.mean([np.exp(-t * np.sum((x[i] - x[j]) ** 2)) for i, j in pairs]))


@pytest.fixture
def rng(): return np.random.default_rng(0)


# ---- each loss against its reference ----

def test_similarity_logits(rng):
    u, v, per_row = rng.normal(size=(4, 6)), rng.normal(size=(5, 6)), rng.normal(size=(4, 3, 6))
    assert np.allclose(similarity_logits(u, v, 0.1), ref_unit(u) @ ref_unit(v).T / 0.1)
    assert np.allclose(similarity_logits(u, v, 2.0, normalize=False), u @ v.T / 2)
    assert np.allclose(similarity_logits(u, per_row), np.einsum("bd,bkd->bk", ref_unit(u), ref_unit(per_row)))


def test_bpr_and_pairwise_logistic(rng):
    pos, neg, negs = rng.normal(size=5), rng.normal(size=5), rng.normal(size=(5, 4))
    assert np.allclose(bpr_loss(pos, neg), -np.log(1 / (1 + np.exp(-(pos - neg)))))
    assert np.allclose(bpr_loss(pos, negs), np.log1p(np.exp(negs - pos[:, None])).mean(1))


def test_info_nce_with_mask(rng):
    pos, neg, mask = rng.normal(size=6), rng.normal(size=(6, 5)), rng.random((6, 5)) > 0.4
    assert np.allclose(info_nce_loss(pos, neg), ref_lse(np.column_stack([pos, neg])) - pos)
    assert np.allclose(info_nce_loss(pos, neg, mask), [ref_lse(np.r_[p, n[m]]) - p for p, n, m in zip(pos, neg, mask)])


@pytest.mark.parametrize("logq,ids,extra,symmetric,normalize", [
    (False, False, False, False, True), (True, False, False, False, True), (False, True, False, False, True),
    (True, True, True, False, True), (True, True, True, True, True), (False, False, True, True, False)])
def test_in_batch_softmax(rng, logq, ids, extra, symmetric, normalize):
    B, M, D = 7, 3, 5
    u, v, e = rng.normal(size=(B, D)), rng.normal(size=(B, D)), rng.normal(size=(M, D))
    item_ids, extra_ids = np.array([1, 4, 1, 2, 4, 4, 9]), np.array([4, 8, 9])
    item_logq, extra_logq = np.log(rng.uniform(0.01, 0.3, B)), np.log(rng.uniform(0.01, 0.3, M))
    kw = dict(item_logq=item_logq if logq else None, item_ids=item_ids if ids else None,
              extra_items=e if extra else None, extra_logq=extra_logq if extra and logq else None,
              extra_ids=extra_ids if extra and ids else None, symmetric=symmetric, normalize=normalize)
    expected = ref_in_batch(u, v, 0.2, kw["item_logq"], kw["item_ids"], kw["extra_items"],
                            extra_logq if extra else None, kw["extra_ids"], symmetric, normalize)
    assert np.allclose(in_batch_softmax_loss(u, v, 0.2, **kw), expected)


def test_in_batch_steps_compose_to_the_loss(rng):
    B, M, D = 5, 2, 4
    u, v, e = rng.normal(size=(B, D)), rng.normal(size=(B, D)), rng.normal(size=(M, D))
    ids, extra_ids = np.array([1, 2, 1, 3, 4]), np.array([2, 9])
    logq, extra_logq = np.log(rng.uniform(0.05, 0.3, B)), np.log([0.1, 0.2])
    candidates, candidate_ids, candidate_logq = with_extra_negatives(v, e, ids, extra_ids, logq, extra_logq)
    assert np.allclose(candidates, np.concatenate([v, e])) and np_(candidate_ids).tolist() == [1, 2, 1, 3, 4, 2, 9]
    logits = logq_correction(similarity_logits(u, candidates, 0.2), candidate_logq)
    expected_logits = ref_unit(u) @ ref_unit(np.concatenate([v, e])).T / 0.2 - np.concatenate([logq, extra_logq])
    assert np.allclose(logits, expected_logits)
    keep = ops.convert_to_numpy(negative_mask(B, ids, candidate_ids))
    cid = np_(candidate_ids)
    assert keep.tolist() == [[j != i and cid[j] != ids[i] for j in range(B + M)] for i in range(B)]
    expected = ref_in_batch(u, v, 0.2, logq, ids, e, extra_logq, extra_ids)
    assert np.allclose(info_nce_loss(ops.diagonal(logits), logits, keep), expected)
    assert with_extra_negatives(v, None)[1:] == (None, None)
    assert ops.convert_to_numpy(negative_mask(2, n_candidates=3)).tolist() == [[False, True, True], [True, False, True]]
    with pytest.raises(ValueError, match="needs item_ids"): negative_mask(B, candidate_ids=cid)


def test_full_softmax_multi_positive(rng):
    u, items = rng.normal(size=(6, 5)), rng.normal(size=(9, 5))
    positives = (rng.random((6, 9)) < 0.3).astype("float32")
    positives[0] = 0
    positives[1] = 0
    positives[1, 0] = 1  # only the masked OOV column
    mask = np.arange(9) > 0
    loss = full_softmax_loss(u, items, positives, 0.2, mask=mask)
    assert np.allclose(loss, ref_full(u, items, positives, 0.2, mask)) and np_(loss)[0] == 0 and np_(loss)[1] == 0
    unmasked = ref_full(u, items, positives, 0.2, np.ones(9, bool))
    assert np.allclose(full_softmax_loss(u, items, positives, 0.2), unmasked)
    logits = similarity_logits(u, items, 0.2)
    assert np.allclose(multi_positive_softmax_loss(logits, positives, np.tile(mask, (6, 1))), loss)


def test_views_alignment_uniformity_directau(rng):
    z1, z2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    s = ref_unit(z1) @ ref_unit(z2).T / 0.3
    assert np.allclose(info_nce_views(z1, z2, 0.3), (ref_lse(s, 1) + ref_lse(s, 0)) / 2 - np.diag(s))
    d = np.sum((ref_unit(z1) - ref_unit(z2)) ** 2, 1)
    assert np.isclose(alignment(z1, z2), d.mean()) and np.isclose(alignment(z1, z2, alpha=3), (d ** 1.5).mean())
    assert np.isclose(uniformity(z1), ref_uniformity(z1)) and np.isclose(uniformity(z1, t=0.7), ref_uniformity(z1, 0.7))
    assert np.isclose(directau_loss(z1, z2, 2.0), d.mean() + (ref_uniformity(z1) + ref_uniformity(z2)))


def test_mixture_logq():
    q_pop, q_uni = np.array([0.6, 0.3, 0.1]), np.full(3, 1 / 3)
    assert np.allclose(np.exp(np_(mixture_logq(q_pop, q_uni, 4, 2))), (4 * q_pop + 2 * q_uni) / 6)


def test_perturb_embeddings(rng):
    x = rng.normal(size=(5, 7)).astype("float32")
    step = np_(perturb_embeddings(x, 0.2, seed=3)) - x
    assert np.allclose(np.linalg.norm(step, axis=1), 0.2, atol=1e-5) and (np.sign(step) == np.sign(x)).all()
    assert np.allclose(perturb_embeddings(x, 0.2, seed=3), perturb_embeddings(x, 0.2, seed=3))
    gen = keras.random.SeedGenerator(0)
    assert not np.allclose(perturb_embeddings(x, 0.2, gen), perturb_embeddings(x, 0.2, gen))


# ---- gradients ----

@PROPERTY
@given(arrays("float64", (4, 6), elements=st.floats(-20, 20)))
def test_info_nce_gradient_is_softmax_minus_onehot(logits):
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = ops.sum(info_nce_loss(x[:, 0], x[:, 1:]))
    p = np.exp(logits - ref_lse(logits)[:, None])
    assert np.allclose(tape.gradient(total, x).numpy(), p - np.eye(6)[0], atol=1e-9)


def test_in_batch_gradient_matches_finite_differences(rng):
    B, D = 5, 4
    u, v, e = rng.normal(size=(B, D)), rng.normal(size=(B, D)), rng.normal(size=(2, D))
    ids, logq = np.array([2, 3, 2, 5, 6]), np.log(rng.uniform(0.05, 0.4, B))

    def f(x, y):
        return ops.sum(in_batch_softmax_loss(x, y, 0.2, logq, ids, e, np.log([0.1, 0.2]), np.array([3, 7]),
                                             symmetric=True))

    xu, xv = tf.constant(u), tf.constant(v)
    with tf.GradientTape() as tape:
        tape.watch([xu, xv])
        total = f(xu, xv)
    gu, gv = (g.numpy() for g in tape.gradient(total, [xu, xv]))
    h = 1e-6
    for arr, grad, which in ((u, gu, 0), (v, gv, 1)):
        for idx in np.ndindex(*arr.shape):
            step = np.zeros_like(arr)
            step[idx] = h
            up, down = ((u + step, v), (u - step, v)) if which == 0 else ((u, v + step), (u, v - step))
            numeric = (np_(f(*up)) - np_(f(*down))) / (2 * h)
            assert abs(numeric - grad[idx]) < 1e-5, (which, idx)


# ---- properties ----

@PROPERTY
@given(arrays("float32", 8, elements=st.floats(-60, 60, width=32)),
       arrays("float32", 8, elements=st.floats(-60, 60, width=32)))
def test_info_nce_with_one_negative_is_bpr(pos, neg):
    assert np.allclose(info_nce_loss(pos, neg[:, None]), bpr_loss(pos, neg), atol=1e-5, rtol=1e-5)
    assert np.allclose(bpr_loss(pos, neg), np.logaddexp(0, neg.astype("float64") - pos), atol=1e-4, rtol=1e-5)


@PROPERTY
@given(arrays("float64", (5, 7), elements=st.floats(-1, 1)), st.floats(1e-3, 0.05))
def test_small_temperature_approaches_hinge_on_hardest_negative(sims, tau):
    hinge = np.maximum(0, sims[:, 1:].max(1) - sims[:, 0])
    scaled = tau * np_(info_nce_loss(sims[:, 0] / tau, sims[:, 1:] / tau))
    assert np.all(scaled >= hinge - 1e-9) and np.all(scaled - hinge <= tau * np.log(7) + 1e-9)


@PROPERTY
@given(arrays("float64", 6, elements=st.floats(1e-4, 1.0)), st.floats(-5, 5))
def test_logq_closed_form_and_shift_invariance(q, shift):
    same = np.ones((6, 3))
    loss = np_(in_batch_softmax_loss(same, same, 0.1, np.log(q)))
    assert np.allclose(loss, np.log(q * (1 / q).sum()))
    u, v = np.random.default_rng(1).normal(size=(2, 6, 3))
    corrected = np_(in_batch_softmax_loss(u, v, 0.1, np.log(q)))
    assert np.allclose(corrected, np_(in_batch_softmax_loss(u, v, 0.1, np.log(q) + shift)))  # only relative q matters
    s = ref_unit(u) @ ref_unit(v).T / 0.1 - np.log(q)
    assert np.allclose(corrected, ref_lse(s) - np.diag(s))


@PROPERTY
@given(st.lists(st.integers(0, 3), min_size=2, max_size=8), st.integers(0, 2**16))
def test_masking_removes_accidental_hits(ids, seed):
    ids, rng = np.array(ids), np.random.default_rng(seed)
    u, v = rng.normal(size=(len(ids), 4)), rng.normal(size=(4, 4))[ids]  # one embedding per item id, as a tower gives
    masked = np_(in_batch_softmax_loss(u, v, 0.1, item_ids=ids))
    for i in range(len(ids)):
        keep = [j for j in range(len(ids)) if j == i or ids[j] != ids[i]]
        row = np_(in_batch_softmax_loss(u[keep], v[keep], 0.1))[keep.index(i)]
        assert np.isclose(masked[i], row)
    assert np.all(masked <= np_(in_batch_softmax_loss(u, v, 0.1)) + 1e-9)  # a hit only ever inflated the denominator


@pytest.mark.parametrize("scale,normalize", [(1.0, True), (1e4, False), (1e4, True)])
def test_losses_stay_finite_for_extreme_logits(rng, scale, normalize):
    u = tf.constant(scale * ref_unit(rng.normal(size=(16, 8))), "float32")
    v = tf.constant(scale * ref_unit(rng.normal(size=(16, 8))), "float32")
    v_close = u * 1.0  # positives identical to the users: the largest possible logits
    for items in (v, v_close):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([u, items])
            losses = [in_batch_softmax_loss(u, items, 0.01, np.log(np.full(16, 1e-6)), np.arange(16), symmetric=True,
                                            normalize=normalize),
                      full_softmax_loss(u, items, np.eye(16), 0.01, normalize=normalize, mask=np.arange(16) > 0),
                      info_nce_views(u, items, 0.01, normalize=normalize),
                      bpr_loss(ops.sum(u * items, 1) / 0.01, ops.sum(u * items[::-1], 1) / 0.01)]
            totals = [ops.sum(loss) for loss in losses]
        for total in totals:
            assert np.isfinite(np_(total))
            assert all(np.isfinite(g.numpy()).all() for g in tape.gradient(total, [u, items]))


def test_no_overflow_at_small_temperature_with_unit_vectors(rng):
    u = ref_unit(rng.normal(size=(32, 16))).astype("float32")
    loss = np_(in_batch_softmax_loss(u, -u, 0.01))  # positives maximally far: logits span ±100
    expected = ref_in_batch(u.astype("float64"), -u.astype("float64"), 0.01)
    assert np.isfinite(loss).all() and np.allclose(loss, expected, rtol=1e-4)


# ---- graph mode, Keras wrappers, errors ----

def test_graph_mode_with_unknown_batch_size(rng):
    spec = tf.TensorSpec([None, 4], "float32")

    @tf.function(input_signature=[spec, spec, tf.TensorSpec([None], "int32"), tf.TensorSpec([None], "float32")])
    def in_batch(u, v, ids, logq):
        return in_batch_softmax_loss(u, v, 0.1, logq, ids, np.ones((3, 4), "float32"), np.zeros(3, "float32"),
                                     np.array([1, 2, 3], "int32"), symmetric=True)

    items = rng.normal(size=(5, 4)).astype("float32")

    @tf.function(input_signature=[spec, tf.TensorSpec([None, 5], "float32")])
    def full(u, positives): return full_softmax_loss(u, items, positives, mask=np.arange(5) > 0)

    u, v = rng.normal(size=(2, 6, 4)).astype("float32")
    ids, logq = np.array([1, 1, 2, 3, 4, 5], "int32"), np.log(np.full(6, 0.1, "float32"))
    expected = ref_in_batch(u, v, 0.1, logq, ids, np.ones((3, 4)), np.zeros(3), np.array([1, 2, 3]), symmetric=True)
    assert np.allclose(in_batch(u, v, ids, logq), expected, rtol=1e-4)
    pos = np.eye(6, 5, k=1, dtype="float32")
    assert np.allclose(full(u, pos), ref_full(u, items, pos, 0.2, np.arange(5) > 0), rtol=1e-4)


def test_keras_wrappers_match_functions_and_serialise(rng):
    u, v = rng.normal(size=(2, 5, 3))
    ids, q = np.array([1, 2, 1, 3, 4]), np.linspace(0.05, 0.25, 6)
    loss = InBatchSoftmaxLoss(0.2, item_frequencies=q, symmetric=True)
    expected = ref_in_batch(u, v, 0.2, np.log(q[ids]), ids, symmetric=True).mean()
    assert np.isclose(np_(loss(ids, np.stack([u, v], 1))), expected, atol=1e-5)
    logits, positives = rng.normal(size=(4, 6)), (rng.random((4, 6)) < 0.5)
    mp = MultiPositiveSoftmaxLoss(mask=np.arange(6) > 0)
    expected = np_(multi_positive_softmax_loss(logits, positives, np.arange(6) > 0)).mean()
    assert np.isclose(np_(mp(positives, logits)), expected, atol=1e-5)
    for obj in (loss, mp):
        clone = keras.losses.deserialize(keras.losses.serialize(obj))
        assert type(clone) is type(obj) and clone.get_config() == obj.get_config()


@pytest.mark.parametrize("call,match", [
    (lambda u, v: similarity_logits(u, v, temperature=0), "temperature must be > 0"),
    (lambda u, v: similarity_logits(u, v[:, :2]), "same embedding size"),
    (lambda u, v: similarity_logits(u, v[None, None]), r"\[N, D\]"),
    (lambda u, v: in_batch_softmax_loss(u, v[:3]), "same batch size"),
    (lambda u, v: in_batch_softmax_loss(u, v, extra_logq=np.zeros(2)), "pass extra_items"),
    (lambda u, v: in_batch_softmax_loss(u, v, item_logq=np.zeros(4), extra_items=v[:2]), "extra_logq"),
    (lambda u, v: in_batch_softmax_loss(u, v, item_ids=np.arange(4), extra_items=v[:2]), "extra_ids"),
    (lambda u, v: multi_positive_softmax_loss(u @ v.T, np.ones((4, 3))), "multi-hot"),
    (lambda u, v: uniformity(u[:1]), "at least 2 rows"),
    (lambda u, v: InBatchSoftmaxLoss(temperature=-1), "temperature must be > 0"),
])
def test_clear_errors(rng, call, match):
    u, v = rng.normal(size=(2, 4, 3))
    with pytest.raises(ValueError, match=match): call(u, v)
