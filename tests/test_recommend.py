"Serving: seen-item exclusion, exact vs approximate search, cold start, save/load round trips."
import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastrec.data import encode, from_frames, split_random
from contrastrec.recommend import MODEL_FILES, ExactIndex, FaissIndex, Recommender, make_index
from contrastrec.training import TrainConfig

needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None,
                                 reason='faiss is missing: pip install "contrastrec[ann]"')
GENRES = ["action", "comedy", "drama"]


def synthetic(n_users=60, n_items=80, n_pairs=1500, seed=0):
    rng = np.random.default_rng(seed)
    pairs = {(f"u{u}", 100 + i) for u, i in zip(rng.integers(0, n_users, n_pairs), rng.integers(0, n_items, n_pairs))}
    inter = pd.DataFrame(sorted(pairs), columns=["user_id", "item_id"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "job": rng.choice(["a", "b"], n_users)})
    genres = [list(rng.choice(GENRES, rng.integers(1, 3), replace=False)) for _ in range(n_items)]
    items = pd.DataFrame({"item_id": 100 + np.arange(n_items), "genres": genres})
    rec = from_frames(inter, users, items)
    split = split_random(rec.interactions, seed=0)
    return split, encode(split, rec.users, rec.items, {"job": "categorical"}, {"genres": "multi_hot"})


def clustered(n, d, n_clusters, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_clusters, d))[rng.integers(0, n_clusters, n)] + 0.5 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.vstack([np.zeros((1, d)), x]).astype("float32")


@pytest.fixture(scope="module")
def trained():
    split, data = synthetic()
    config = TrainConfig(dim=16, epochs=2, patience=2, item_features=True)
    return split, data, Recommender.fit(data, config)


def known_pairs(split):
    return pd.concat([split.train, split.valid])[["user_id", "item_id"]]


def test_recommend_never_returns_known_items(trained):
    split, data, rec = trained
    recs = rec.recommend(k=15)
    assert set(recs.user_id) == set(split.train.user_id)
    assert recs.merge(known_pairs(split), on=["user_id", "item_id"]).empty
    assert set(recs.item_id) <= set(split.train.item_id)  # OOV never returned
    assert (recs.groupby("user_id").score.diff().dropna() <= 1e-6).all()
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]


def test_k_larger_than_the_unseen_catalogue_gives_every_unseen_item_once(trained):
    split, data, rec = trained
    recs = rec.recommend(["u0", "u1"], k=1000)
    known = known_pairs(split)
    for user, group in recs.groupby("user_id"):
        unseen = set(split.train.item_id) - set(known[known.user_id == user].item_id)
        assert sorted(group.item_id) == sorted(unseen) and group["rank"].tolist() == list(range(1, len(unseen) + 1))


def test_exclude_seen_false_and_scores_are_cosines(trained):
    split, data, rec = trained
    recs = rec.recommend(["u3"], k=5, exclude_seen=False)
    u = rec.user_embeddings().loc["u3"].to_numpy()
    items = rec.item_embeddings().loc[recs.item_id].to_numpy()
    assert np.allclose(items @ u, recs.score, atol=1e-5)
    assert np.allclose(np.linalg.norm(items, axis=1), 1, atol=1e-5)
    all_scores = rec.item_embeddings().to_numpy() @ u
    assert np.isclose(recs.score.iloc[0], all_scores.max(), atol=1e-6)


def test_unknown_users_and_items_are_clear_errors(trained):
    _, _, rec = trained
    with pytest.raises(ValueError, match="recommend_for_history"): rec.recommend(["u0", "nobody"])
    with pytest.raises(ValueError, match="unknown item"): rec.similar_items([999_999])
    with pytest.raises(ValueError, match="'exact' or 'ann'"): make_index(np.zeros((3, 2)), "annoy")


def test_similar_items_exclude_the_item_itself(trained):
    _, data, rec = trained
    ids = rec.item_ids[:5]
    sim = rec.similar_items(ids, k=4)
    assert len(sim) == 20 and not (sim.item_id == sim.similar_item_id).any()
    v = rec.item_embeddings()
    cosines = (v.loc[sim.item_id].to_numpy() * v.loc[sim.similar_item_id].to_numpy()).sum(1)
    assert np.allclose(cosines, sim.score, atol=1e-5)


def test_cold_start_from_a_history_matches_a_known_user(trained):
    split, data, rec = trained
    known = known_pairs(split)
    history = known[known.user_id == "u7"].item_id
    cold = rec.recommend_for_history(history, k=10)
    warm = rec.recommend(["u7"], k=10)
    assert cold.item_id.tolist() == warm.item_id.tolist() and np.allclose(cold.score, warm.score, atol=1e-5)
    assert not set(cold.item_id) & set(history)


def test_cold_start_ignores_unknown_ids_and_falls_back_to_popularity(trained):
    split, data, rec = trained
    some = rec.recommend_for_history([100, "unknown"], k=5)
    assert some.item_id.tolist() == rec.recommend_for_history([100], k=5).item_id.tolist()
    fallback = rec.recommend_for_history(["unknown"], k=5)
    counts = split.train.item_id.value_counts()
    assert counts[fallback.item_id].tolist() == counts.sort_values(ascending=False)[:5].tolist()
    assert np.isclose(fallback.score.iloc[0], counts.max() / len(split.train))
    assert rec.recommend_for_history([], k=3).item_id.tolist() == fallback.item_id[:3].tolist()


def test_cold_start_needs_a_history_model():
    split, data = synthetic(seed=1)
    rec = Recommender.fit(data, TrainConfig(dim=8, epochs=1, patience=1, user_ids=True))
    with pytest.raises(ValueError, match="user_history=True and user_ids=False"): rec.recommend_for_history([100])


def test_save_load_round_trip_gives_identical_scores(trained, tmp_path):
    split, data, rec = trained
    rec.save(tmp_path / "model")
    loaded = Recommender.load(tmp_path / "model")
    assert loaded.config == rec.config and loaded.known_parts == ("train", "valid")
    np.testing.assert_array_equal(loaded.user_vectors, rec.user_vectors)
    np.testing.assert_array_equal(loaded.item_vectors, rec.item_vectors)
    pd.testing.assert_frame_equal(loaded.recommend(k=10), rec.recommend(k=10))
    pd.testing.assert_frame_equal(loaded.recommend_for_history([100, 101], k=5),
                                  rec.recommend_for_history([100, 101], k=5))
    assert loaded.evaluate(split.test) == rec.evaluate(split.test)
    pd.testing.assert_frame_equal(loaded.item_embeddings(), rec.item_embeddings())


def test_load_reports_a_missing_or_incomplete_folder(tmp_path):
    with pytest.raises(ValueError, match="not a folder"): Recommender.load(tmp_path / "nothing")
    (tmp_path / "partial").mkdir()
    with pytest.raises(ValueError, match="holds no saved recommender"): Recommender.load(tmp_path / "partial")


def one_line_load_error(folder) -> str:
    with pytest.raises(ValueError) as e: Recommender.load(folder)
    assert "\n" not in str(e.value), str(e.value)
    return str(e.value)


@pytest.mark.parametrize("name", MODEL_FILES)
@pytest.mark.parametrize("damage", ["truncate", "empty", "delete"])
def test_every_damaged_file_is_named_in_one_line(trained, tmp_path, name, damage):
    _, _, rec = trained
    folder = rec.save(tmp_path / "model")
    path = folder / name
    if damage == "delete": path.unlink()
    else: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 if damage == "truncate" else 0])
    message = one_line_load_error(folder)
    assert message.startswith(str(path)) and ("is missing" if damage == "delete" else "is damaged") in message, message


def test_files_of_two_saves_are_not_mixed(trained, tmp_path):
    _, _, rec = trained
    _, other_data = synthetic(n_users=30, seed=2)
    other = Recommender.fit(other_data, TrainConfig(dim=16, epochs=1, patience=1, item_features=True), verbose=0)
    a, b = rec.save(tmp_path / "a"), other.save(tmp_path / "b")
    (b / "vocabularies.json").replace(a / "vocabularies.json")
    assert "the folder mixes two saves" in one_line_load_error(a)


def test_save_replaces_an_earlier_save_and_refuses_other_folders(trained, tmp_path):
    _, _, rec = trained
    folder = rec.save(tmp_path / "model")
    (folder / "stale.txt").write_text("from an older version")
    rec.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(MODEL_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary or old folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="is not a saved recommender"): rec.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


KILLED_SAVE = """
import os, signal, sys
import numpy as np
from contrastrec.recommend import Recommender
rec = Recommender.load(sys.argv[1])
real_savez = np.savez
def savez_then_die(*args, **kwargs):
    real_savez(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # as if the machine stopped in the middle of the save
np.savez = savez_then_die
rec.save(sys.argv[1])
"""


def test_a_save_killed_midway_leaves_the_old_model_intact(trained, tmp_path):
    _, _, rec = trained
    folder = rec.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(folder)], capture_output=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    pd.testing.assert_frame_equal(Recommender.load(folder).recommend(k=5), rec.recommend(k=5))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    assert leftovers and all(name.startswith(".model.saving-") for name in leftovers)  # hidden, never loaded


def test_evaluate_counts_unknown_test_items_as_misses(trained):
    split, data, rec = trained
    base = rec.evaluate(split.test, ks=(10,))
    extra = pd.concat([split.test, pd.DataFrame({"user_id": split.test.user_id.unique(), "item_id": -1})])
    worse = rec.evaluate(extra, ks=(10,))
    assert worse["recall@10"] < base["recall@10"]
    with pytest.raises(ValueError, match="no test interaction"):
        rec.evaluate(pd.DataFrame({"user_id": ["x"], "item_id": [100]}))


def test_missing_faiss_is_an_import_error_that_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r'pip install "contrastrec\[ann\]"'): FaissIndex(clustered(50, 4, 2, 0))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.floats(0, 0.5))
def test_exact_index_matches_a_full_sort(seed, k, density):
    rng = np.random.default_rng(seed)
    vectors, queries = rng.normal(size=(30, 4)).astype("float32"), rng.normal(size=(7, 4)).astype("float32")
    exclude = sp.random(7, 30, density=density, format="csr", random_state=seed)
    ids, scores = ExactIndex(vectors).search(queries, k, exclude)
    full = queries @ vectors.T
    full[:, 0] = -np.inf
    full[exclude.nonzero()] = -np.inf
    for q in range(7):
        eligible = np.flatnonzero(np.isfinite(full[q]))
        want = eligible[np.argsort(-full[q, eligible], kind="stable")][:k]
        assert np.allclose(np.sort(scores[q][ids[q] > 0]), np.sort(full[q, want]), atol=1e-5)
        excluded = np.flatnonzero(~np.isfinite(full[q]))
        assert (ids[q] > 0).sum() == len(want) and not np.isin(ids[q][ids[q] > 0], excluded).any()


@needs_faiss
def test_ann_recall_against_exact_search():
    items, users = clustered(20_000, 32, 200, seed=0), clustered(300, 32, 200, seed=1)[1:]
    rng = np.random.default_rng(2)
    rows, cols = np.repeat(np.arange(300), 10), rng.integers(1, 20_001, 3000)
    seen = sp.csr_matrix((np.ones(3000), (rows, cols)), shape=(300, 20_001))
    exact, _ = ExactIndex(items).search(users, 20, seen)
    index = FaissIndex(items, n_probe=16)
    approx, scores = index.search(users, 20, seen)
    recall = np.mean([len(np.intersect1d(a, e)) / 20 for a, e in zip(approx, exact)])
    assert recall > 0.9, recall
    assert not seen[np.repeat(np.arange(300), 20), approx.ravel()].any()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    index.n_probe = 10**6
    assert index.n_probe == index.n_lists
    assert (index.search(users, 20, seen)[0] == exact).mean() > 0.999


@needs_faiss
def test_ann_falls_back_to_exact_when_the_probed_cells_are_too_small():
    items, users = clustered(400, 8, 5, seed=3), clustered(20, 8, 5, seed=4)[1:]
    seen = sp.random(20, 401, density=0.5, format="csr", random_state=0)
    index = FaissIndex(items, n_lists=10, n_probe=1)
    approx, _ = index.search(users, 30, seen)
    exact, _ = ExactIndex(items).search(users, 30, seen)
    assert ((approx > 0).sum(1) == 30).all() and not seen[np.repeat(np.arange(20), 30), approx.ravel()].any()
    assert np.mean([len(np.intersect1d(a, e)) / 30 for a, e in zip(approx, exact)]) > 0.5


@needs_faiss
def test_ann_recommender_excludes_seen_and_survives_save_load(trained, tmp_path):
    split, data, rec = trained
    ann = Recommender(rec.model, data, rec.config, index="ann", n_lists=2, n_probe=2)
    recs = ann.recommend(k=10)
    assert recs.merge(known_pairs(split), on=["user_id", "item_id"]).empty
    columns = ["user_id", "item_id", "rank"]
    pd.testing.assert_frame_equal(recs[columns], rec.recommend(k=10)[columns])
    ann.save(tmp_path / "ann")
    loaded = Recommender.load(tmp_path / "ann")
    assert loaded.index_kind == "ann" and loaded.index.n_lists == 2
    pd.testing.assert_frame_equal(loaded.recommend(k=10), recs)
    assert isinstance(Recommender.load(tmp_path / "ann", index="exact").index, ExactIndex)


@needs_faiss
def test_verbose_reports_the_slow_steps_on_stderr(trained, capsys):
    _, data, rec = trained
    Recommender(rec.model, data, rec.config, index="ann", verbose=1)
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" in ")[0] for line in err] == [
        f"embedded {data.n_users - 1} users and {data.n_items - 1} items",
        f"built the ann index over {data.n_items - 1} items"], err
    Recommender(rec.model, data, rec.config)
    assert capsys.readouterr().err == ""


def test_a_folder_of_an_earlier_format_is_refused_with_what_to_do(trained, tmp_path):
    _, _, rec = trained
    folder = rec.save(tmp_path / "model")
    settings = json.loads((folder / "recommender.json").read_text())
    (folder / "recommender.json").write_text(json.dumps({k: v for k, v in settings.items() if k != "format"}))
    err = one_line_load_error(folder)
    assert "saved in format 1 by an earlier contrastrec" in err and "train the model again" in err
