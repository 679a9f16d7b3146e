"Pretrained content vectors and cold start: the whole path with a tiny fake encoder, the real offline encoder, errors."
import hashlib
import json
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

from contrastrec.cli import main
from contrastrec.data import VectorSpec, load_movielens_100k, read_vectors
from contrastrec.recommend import Recommender
from contrastrec.towers import encode_texts, movielens_item_texts, wordllama_encoder

WIDTH = 24


def fake_encoder(texts: list[str]) -> np.ndarray:
    "A tiny stand-in for a pretrained encoder: each word hashed (md5, so the same everywhere) into one of WIDTH slots."
    out = np.zeros((len(texts), WIDTH), "float32")
    for row, text in enumerate(texts):
        for word in text.lower().replace(",", " ").split():
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % WIDTH] += 1.0
    return out


@pytest.fixture(scope="module")
def vectors_file(ml150_split_folder):
    "Fake-encoded title + genres of every MovieLens movie, cached as an .npz of ids and vectors."
    root, _ = ml150_split_folder
    items = load_movielens_100k().items
    vectors = encode_texts(movielens_item_texts(items), fake_encoder, root / "fake_cache.npz")
    np.savez(root / "fake_vectors.npz", ids=vectors.index.to_numpy(), vectors=np.stack(vectors.to_numpy()))
    return root / "fake_vectors.npz"


@pytest.fixture(scope="module")
def aligned_model(ml150_split_folder, vectors_file, tmp_path_factory):
    root, _ = ml150_split_folder
    out = tmp_path_factory.mktemp("aligned") / "model"
    config = json.dumps({"dim": 16, "epochs": 3, "patience": 3, "content_alignment": 1.0})
    assert main(["train", "--split", str(root / "split"), "--item-vectors", str(vectors_file), "--config", config,
                 "--out", str(out)]) == 0
    return out


def test_new_items_are_served_by_the_content_tower(ml150_split_folder, aligned_model, capsys):
    root, split = ml150_split_folder
    rec = Recommender.load(aligned_model)
    movies = load_movielens_100k().items.index
    new = ~np.isin(rec.item_ids, split.train.item_id)
    assert set(rec.item_ids) == set(movies) and new.sum() == len(set(movies) - set(split.train.item_id)) > 0
    router = rec.model.item_tower  # the saved model's item side: the ContentFallback
    assert type(router).__name__ == "ContentFallback"
    tables = {k: v[1:] for k, v in rec.data.item_features.items()}
    content = ops.convert_to_numpy(router.content_tower(tables))
    ids = ops.convert_to_numpy(router.item_tower({"id": np.arange(1, rec.data.n_items, dtype="int32")}))
    np.testing.assert_allclose(rec.item_vectors[1:][new], content[new], atol=1e-5)
    np.testing.assert_allclose(rec.item_vectors[1:][~new], ids[~new], atol=1e-5)
    capsys.readouterr()
    assert main(["recommend", "--model", str(aligned_model), "--k", "20", "--out", str(root / "aligned.tsv")]) == 0
    recs = pd.read_csv(root / "aligned.tsv", sep="\t")
    assert recs.item_id.isin(rec.item_ids[new]).any()  # new items reach the lists
    assert recs.merge(split.train, on=["user_id", "item_id"]).empty


def test_the_cli_says_how_many_items_are_new(ml150_split_folder, vectors_file, tmp_path, capsys):
    root, split = ml150_split_folder
    config = json.dumps({"dim": 8, "epochs": 1, "patience": 1, "content_alignment": 0.5})
    assert main(["train", "--split", str(root / "split"), "--features", "movielens-100k", "--item-vectors",
                 str(vectors_file), "--config", config, "--out", str(tmp_path / "m")]) == 0
    n_new = len(set(load_movielens_100k().items.index) - set(split.train.item_id))
    assert f"{n_new:,} of them have no train interaction: the content tower serves them" in capsys.readouterr().out


def one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_vectors_are_one_line_errors(ml150_split_folder, vectors_file, tmp_path, capsys):
    root, split = ml150_split_folder
    train = ["train", "--split", str(root / "split"), "--out", str(tmp_path / "m")]
    aligned = ["--config", json.dumps({"dim": 8, "epochs": 1, "content_alignment": 1.0})]
    with np.load(vectors_file) as f: ids, vectors = f["ids"], f["vectors"]
    np.savez(tmp_path / "nan.npz", ids=ids, vectors=np.where(ids[:, None] == ids[3], np.nan, vectors))
    err = one_line_error(capsys, train + ["--item-vectors", str(tmp_path / "nan.npz")] + aligned)
    assert f"the vector of entity {ids[3]} holds NaN" in err
    missing = split.train.item_id.iloc[0]
    keep = ids != missing
    np.savez(tmp_path / "missing.npz", ids=ids[keep], vectors=vectors[keep])
    err = one_line_error(capsys, train + ["--item-vectors", str(tmp_path / "missing.npz")] + aligned)
    assert "have no vector" in err and f"(e.g. id {missing})" in err
    pd.DataFrame({"item_id": ids[:3], "x": ["a", "b", "c"]}).to_csv(tmp_path / "text.csv", index=False)
    assert "must be numbers" in one_line_error(capsys, train + ["--item-vectors", str(tmp_path / "text.csv")] + aligned)
    err = one_line_error(capsys, train + ["--item-vectors", str(vectors_file)])
    assert "set item_features or content_alignment" in err
    assert not (tmp_path / "m").exists()  # nothing written


def test_the_text_extra_is_optional(monkeypatch):
    monkeypatch.setitem(sys.modules, "wordllama", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "contrastrec\[text\]"'):
        wordllama_encoder()


def test_the_real_encoder_runs_offline(monkeypatch):
    pytest.importorskip("wordllama", reason='the optional extra "contrastrec[text]" (WordLlama) is not installed')
    def no_network(*args, **kwargs): raise OSError("network disabled in this test")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    encode = wordllama_encoder()
    v = encode(["Toy Story (1995). Animation, Children's, Comedy", "A Bug's Life (1998). Animation, Children's, Comedy",
                "Heat (1995). Action, Crime, Thriller"])
    assert v.shape == (3, 256) and v.dtype == np.float32 and np.isfinite(v).all()
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1  # two animated children's films are nearer each other than a thriller


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), width=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_every_vector_file_layout_reads_back_the_same(n, width, seed):
    "Any ids (shuffled, sparse) and any float32 vectors come back from .npz, .npy, .csv and .parquet as written."
    rng = np.random.default_rng(seed)
    ids = rng.choice(10 * n, size=n, replace=False)
    vectors = rng.normal(size=(n, width)).astype("float32")
    table = pd.DataFrame({"item_id": ids, **{f"d{j}": vectors[:, j].astype("float64") for j in range(width)}})
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp, f"v.{suffix}") for suffix in ("npz", "npy", "csv", "parquet")]
        np.savez(files[0], ids=ids, vectors=vectors)
        np.save(files[1], np.column_stack([ids, vectors.astype("float64")]))
        table.to_csv(files[2], index=False)
        table.to_parquet(files[3])
        for file in files:
            back = read_vectors(file)
            assert list(back.index) == list(ids), file
            np.testing.assert_array_equal(np.stack(back.to_numpy()), vectors, err_msg=str(file))
            spec = VectorSpec.fit("v", back)
            rows = spec.transform(back)
            assert spec.width == width and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_user_vectors_feed_the_user_tower(ml150_split_folder):
    "The vectors kind works on the user side too: a user table with a vector column trains and serves."
    from contrastrec.data import encode
    from contrastrec.training import TrainConfig, fit
    _, split = ml150_split_folder
    users = load_movielens_100k().users
    rng = np.random.default_rng(0)
    table = users.assign(v=pd.Series(list(rng.normal(size=(len(users), 5)).astype("float32")), index=users.index))
    data = encode(split, table, user_features={"v": "vectors"})
    assert data.user_specs == [VectorSpec("v", 5)] and data.user_features["v"].shape == (data.n_users, 5)
    model, history = fit(data, TrainConfig(dim=8, epochs=1, patience=1, user_features=True), verbose=0)
    assert model.user_tower.input_keys == ["v", "history"] and np.isfinite(history.history["loss"]).all()
    scores = model.score_fn(data, "valid")(np.arange(1, 4))
    assert scores.shape == (3, data.n_items) and np.isfinite(scores).all()
