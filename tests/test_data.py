"Own data, implicit feedback, k-cores, splits and train-only encoding: properties on small random tables."
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastrec.data import (
    BENCHMARK_SPLITS,
    BucketSpec,
    CategoricalSpec,
    DataUnavailableError,
    MultiHotSpec,
    NumericSpec,
    RaggedRows,
    Split,
    Vocabulary,
    _budget_sizes,
    _lightgcn_benchmark,
    _row_bucket,
    carve_valid,
    encode,
    fit_spec,
    from_frames,
    history_table,
    item_frequencies,
    k_core,
    load_benchmark_split,
    load_lightgcn_split,
    load_split,
    pair_dataset,
    read_lightgcn_file,
    read_table,
    sampling_distribution,
    save_split,
    spec_from_config,
    spec_to_config,
    split_global_time,
    split_leave_last,
    split_random,
    to_implicit,
)

SHARED_BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
# Reproducible and quick: the same examples on every run, no example database written into the tree.
settings.register_profile("contrastrec-data", max_examples=30, deadline=None, derandomize=True, database=None)
settings.load_profile("contrastrec-data")


@st.composite
def interactions(draw, n_users=8, n_items=10, min_size=1, max_size=50, ratings=True, timestamps=True):
    "A small interaction table with unique (user_id, item_id) pairs, shuffled rows, optional rating/timestamp."
    pairs = draw(st.lists(st.tuples(st.integers(1, n_users), st.integers(1, n_items)),
                          min_size=min_size, max_size=max_size, unique=True))
    df = pd.DataFrame(pairs, columns=["user_id", "item_id"]).astype("int64")
    n = len(df)
    if ratings: df["rating"] = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), "float32")
    if timestamps: df["timestamp"] = np.array(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), "int64")
    return df


def as_pairs(df: pd.DataFrame) -> list[tuple]:
    return sorted(zip(df.user_id.tolist(), df.item_id.tolist()))


def synthetic(n_users=40, n_items=30, per_user=12, seed=0) -> pd.DataFrame:
    "Each user rates `per_user` distinct items at distinct times."
    rng = np.random.default_rng(seed)
    rows = [(u, i, float(rng.integers(1, 6)), int(t)) for u in range(1, n_users + 1)
            for i, t in zip(rng.choice(n_items, per_user, replace=False) + 1, rng.permutation(1000)[:per_user])]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).astype(
        {"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"})


# ---------------------------------------------------------------------------------------------------
# Own data: from_frames and read_table

@pytest.mark.parametrize("name, sep", [("log.csv", ","), ("log.tsv", "\t"), ("log.txt", "\t")])
def test_csv_and_tsv_files_round_trip(tmp_path, name, sep):
    df = synthetic(5, 8, 3)
    df.to_csv(tmp_path / name, sep=sep, index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / name), df, check_dtype=False)
    pd.testing.assert_frame_equal(from_frames(tmp_path / name).interactions, from_frames(df).interactions)
    assert from_frames(tmp_path / name).interactions.dtypes.to_dict() == {
        "user_id": np.int64, "item_id": np.int64, "rating": np.float32, "timestamp": np.int64}


def test_feature_tables_from_files_are_indexed_by_id(tmp_path):
    pd.DataFrame({"user_id": [1, 2], "age": [30, 40]}).to_csv(tmp_path / "users.csv", index=False)
    pd.DataFrame({"item_id": [7], "genre": ["x"]}).to_csv(tmp_path / "items.tsv", sep="\t", index=False)
    log = pd.DataFrame({"user_id": [1, 2], "item_id": [7, 7]})
    data = from_frames(log, tmp_path / "users.csv", tmp_path / "items.tsv")
    assert data.users.index.name == "user_id" and data.users.age.loc[2] == 40
    assert data.items.index.name == "item_id" and data.items.genre.loc[7] == "x"
    with pytest.raises(ValueError, match="duplicate user_id"):
        from_frames(pd.DataFrame({"user_id": [1], "item_id": [7]}), pd.DataFrame({"user_id": [1, 1], "age": [3, 4]}))


def test_read_table_missing_file_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="nope.csv does not exist"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"user": [1], "item_id": [2]}), r"missing column\(s\) \['user_id'\].*Rename"),
    (pd.DataFrame({"user_id": [1]}), r"missing column\(s\) \['item_id'\]"),
    (pd.DataFrame({"user_id": [1, None, None], "item_id": [2, 3, 4]}), r"2 row\(s\) have a missing user_id"),
    (pd.DataFrame({"user_id": [1, 2], "item_id": ["a", None]}), r"1 row\(s\) have a missing item_id"),
    (pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "rating": ["5", "five"]}),
     r"column rating has 1 non-numeric value.*'five'"),
    (pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "timestamp": ["2020-01-01", "3"]}),
     r"column timestamp has 1 non-numeric.*'2020-01-01'"),
    (pd.DataFrame({"user_id": pd.Series([], dtype="int64"), "item_id": pd.Series([], dtype="int64")}),
     "has no interactions"),
    (pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 5, 5]}),
     r"1 duplicate \(user_id, item_id\) pair.*duplicates='first' or 'last'"),
])
def test_bad_interactions_raise_a_value_error_naming_the_problem(frame, match):
    with pytest.raises(ValueError, match=match):
        from_frames(frame)


def test_empty_file_raises_a_value_error(tmp_path):
    (tmp_path / "empty.csv").write_text("user_id,item_id\n")
    with pytest.raises(ValueError, match="empty.csv has no interactions"):
        from_frames(tmp_path / "empty.csv")


def test_unknown_duplicate_policy_is_rejected():
    with pytest.raises(ValueError, match="duplicates must be 'error', 'first' or 'last'"):
        from_frames(pd.DataFrame({"user_id": [1, 1], "item_id": [2, 2]}), duplicates="newest")


@settings(max_examples=20)
@given(interactions(max_size=20), st.lists(st.integers(0, 19), min_size=1, max_size=10),
       st.sampled_from(["first", "last"]))
def test_duplicate_policies_keep_one_row_per_pair_and_warn_with_the_count(df, repeat, policy):
    repeat = [r % len(df) for r in repeat]
    extra = df.iloc[repeat].assign(timestamp=lambda d: d.timestamp + 100 + np.arange(len(d)))
    dup = pd.concat([df, extra], ignore_index=True).sample(frac=1.0, random_state=0)
    with pytest.warns(UserWarning, match=f"removed {len(repeat)} duplicate .*keeping the {policy}"):
        out = from_frames(dup, duplicates=policy).interactions
    assert as_pairs(out) == as_pairs(df)
    latest = dup.groupby(["user_id", "item_id"]).timestamp.agg("max" if policy == "last" else "min")
    kept = out.set_index(["user_id", "item_id"]).timestamp
    assert (kept == latest.loc[kept.index]).all()


def test_last_policy_keeps_the_latest_timestamp_whatever_the_row_order():
    df = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [2, 2, 2], "rating": [1, 5, 3], "timestamp": [50, 90, 10]})
    with pytest.warns(UserWarning, match="removed 2 duplicate"):
        kept = from_frames(df, duplicates="last").interactions
    assert kept.to_dict("records") == [{"user_id": 1, "item_id": 2, "rating": 5.0, "timestamp": 90}]
    with pytest.warns(UserWarning):
        assert from_frames(df, duplicates="first").interactions.timestamp.tolist() == [10]


def test_string_ids_work_end_to_end(tmp_path):
    users, items = [f"u{u:02d}" for u in range(12)], [f"movie-{i}" for i in "abcdefghij"]
    rng = np.random.default_rng(0)
    df = pd.DataFrame([(u, i, int(t)) for u in users
                       for i, t in zip(rng.choice(items, 6, replace=False), rng.permutation(100)[:6])],
                      columns=["user_id", "item_id", "timestamp"])
    df.to_csv(tmp_path / "log.csv", index=False)
    data = from_frames(tmp_path / "log.csv")
    split = split_random(data.interactions, valid=0.2, test=0.2, seed=1)
    enc = encode(split, items=pd.DataFrame({"item_id": items, "kind": list("xyxyxyxyxy")}).set_index("item_id"),
                 item_features={"kind": "categorical"})
    assert set(enc.user_vocab.ids) == set(split.train.user_id) and set(enc.item_vocab.ids) <= set(items)
    decoded = list(zip(enc.user_vocab.id_of(enc.train[:, 0]), enc.item_vocab.id_of(enc.train[:, 1])))
    assert sorted(decoded) == as_pairs(split.train)
    assert enc.item_features["kind"].shape == (enc.n_items,) and enc.item_features["kind"][0] == 0
    assert (enc.item_features["kind"][1:] > 0).all()


# ---------------------------------------------------------------------------------------------------
# Implicit feedback and k-cores

@given(interactions(), st.sampled_from([1.0, 2.5, 3.0, 4.0, 5.0]))
def test_to_implicit_keeps_exactly_the_ratings_at_or_above_the_threshold(df, threshold):
    if (df.rating < threshold).all():
        with pytest.raises(ValueError, match=f"no interaction has rating >= {threshold}"):
            to_implicit(df, threshold)
        return
    out = to_implicit(df, threshold)
    assert (out.rating >= threshold).all() and len(out) == int((df.rating >= threshold).sum())
    assert list(out.index) == list(range(len(out)))
    pd.testing.assert_frame_equal(to_implicit(df), df)


def test_to_implicit_threshold_needs_ratings():
    with pytest.raises(ValueError, match="needs a rating column"):
        to_implicit(pd.DataFrame({"user_id": [1], "item_id": [1]}), 3)


def reference_k_core(pairs: set, k: int) -> set:
    "The maximal k-core by peeling, written independently of pandas."
    while True:
        users = pd.Series([u for u, _ in pairs]).value_counts() if pairs else pd.Series(dtype=int)
        items = pd.Series([i for _, i in pairs]).value_counts() if pairs else pd.Series(dtype=int)
        keep = {(u, i) for u, i in pairs if users[u] >= k and items[i] >= k}
        if keep == pairs: return pairs
        pairs = keep


@given(interactions(n_users=6, n_items=6, max_size=36, ratings=False), st.integers(1, 4))
def test_k_core_is_the_maximal_k_core_and_idempotent(df, k):
    expected = reference_k_core(set(as_pairs(df)), k)
    if not expected:
        with pytest.raises(ValueError, match=f"no interaction survives {k}-core filtering"):
            k_core(df, k)
        return
    core = k_core(df, k)
    assert core.groupby("user_id").size().min() >= k and core.groupby("item_id").size().min() >= k
    assert set(as_pairs(core)) == expected
    pd.testing.assert_frame_equal(k_core(core, k), core)
    assert list(core.columns) == list(df.columns)


# ---------------------------------------------------------------------------------------------------
# Splits

def check_partition(df: pd.DataFrame, split: Split) -> None:
    "The three parts are disjoint and together hold every row of `df` exactly once."
    parts = [split.train, split.valid, split.test]
    assert sum(len(p) for p in parts) == len(df)
    assert sorted(map(tuple, pd.concat(parts).to_numpy().tolist())) == sorted(map(tuple, df.to_numpy().tolist()))
    assert all(list(p.columns) == list(df.columns) for p in parts)


@given(interactions(max_size=60), st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3]), st.sampled_from([0.0, 0.1, 0.2, 0.4]),
       st.integers(0, 2**32 - 1))
def test_split_random_is_a_partition_with_rounded_per_user_counts(df, valid, test, seed):
    split = split_random(df, valid=valid, test=test, seed=seed)
    check_partition(df, split)
    n = df.groupby("user_id").size()
    for part, frac in ((split.valid, valid), (split.test, test)):
        got = part.groupby("user_id").size().reindex(n.index, fill_value=0)
        assert (got == np.round(n * frac).astype(int)).all()
    again = split_random(df, valid=valid, test=test, seed=seed)
    assert all(a.equals(b) for a, b in zip(split.parts().values(), again.parts().values()))


def test_split_random_depends_on_the_seed_only():
    df = synthetic()
    a, b, c = (split_random(df, seed=s) for s in (0, 0, 1))
    assert a.test.equals(b.test) and a.valid.equals(b.valid) and a.train.equals(b.train)
    assert not a.test.equals(c.test) and a.sizes() == c.sizes()


@pytest.mark.parametrize("valid, test", [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0)])
def test_split_random_rejects_bad_fractions(valid, test):
    with pytest.raises(ValueError, match="fractions summing below 1"):
        split_random(synthetic(), valid=valid, test=test)


@given(interactions(n_items=15, max_size=60, ratings=False), st.integers(1, 3))
def test_split_leave_last_never_puts_the_future_in_train(df, n):
    split = split_leave_last(df, n=n)
    check_partition(df, split)
    for user, rows in df.groupby("user_id"):
        tr, va, te = (p[p.user_id == user] for p in (split.train, split.valid, split.test))
        n_test = min(n, len(rows) - 1)
        assert len(te) == n_test and len(va) == min(n, len(rows) - 1 - n_test)
        if len(va): assert tr.timestamp.max() <= va.timestamp.min()
        if len(te): assert pd.concat([tr, va]).timestamp.max() <= te.timestamp.min()


def test_split_leave_last_takes_each_users_latest_rows():
    df = synthetic()
    split = split_leave_last(df, n=2)
    for user, rows in df.groupby("user_id"):
        ts = rows.timestamp.sort_values().tolist()
        assert sorted(split.test[split.test.user_id == user].timestamp) == ts[-2:]
        assert sorted(split.valid[split.valid.user_id == user].timestamp) == ts[-4:-2]


def test_temporal_splits_need_timestamps():
    df = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2]})
    for split in (split_leave_last, split_global_time):
        with pytest.raises(ValueError, match="needs a timestamp column"):
            split(df)


@given(interactions(max_size=60), st.sampled_from([0.0, 0.1, 0.2]), st.sampled_from([0.05, 0.1, 0.3]))
def test_split_global_time_respects_the_cut_offs(df, valid, test):
    split = split_global_time(df, valid=valid, test=test)
    check_partition(df, split)
    t_valid, t_test = df.timestamp.quantile(1 - valid - test), df.timestamp.quantile(1 - test)
    assert (split.train.timestamp <= t_valid).all()
    assert ((split.valid.timestamp > t_valid) & (split.valid.timestamp <= t_test)).all()
    assert (split.test.timestamp > t_test).all()


def check_ml100k_v1(split):
    assert split.sizes() == {"train": 80_000, "valid": 9_988, "test": 10_012}
    assert list(split.train.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert all(p.user_id.nunique() == 943 for p in split.parts().values())


def test_benchmark_split_rebuilt_into_an_empty_cache(tmp_path, monkeypatch):
    "No benchmark folder anywhere: the split is rebuilt from MovieLens into the cache, checked against its SHA-256."
    monkeypatch.delenv("CONTRASTREC_BENCHMARKS", raising=False)
    split = load_benchmark_split("ml100k-v1", cache_dir=tmp_path)
    check_ml100k_v1(split)
    files = sorted(p.name for p in (tmp_path / "benchmarks" / "ml100k-v1").iterdir())
    assert files == ["test.tsv", "train.tsv", "valid.tsv"]
    if SHARED_BENCHMARKS.is_dir():  # the published copy, where this machine has one
        published = load_split(SHARED_BENCHMARKS / "ml100k-v1")
        for part in ("train", "valid", "test"):
            pd.testing.assert_frame_equal(getattr(split, part), getattr(published, part))


def test_damaged_cached_benchmark_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv("CONTRASTREC_BENCHMARKS", raising=False)
    load_benchmark_split("ml100k-v1", cache_dir=tmp_path)
    train = tmp_path / "benchmarks" / "ml100k-v1" / "train.tsv"
    train.write_text(train.read_text()[:1000])
    check_ml100k_v1(load_benchmark_split("ml100k-v1", cache_dir=tmp_path))
    (tmp_path / "benchmarks" / "ml100k-v1" / "valid.tsv").unlink()
    check_ml100k_v1(load_benchmark_split("ml100k-v1", cache_dir=tmp_path))


def test_benchmark_folder_named_by_the_environment(tmp_path, monkeypatch):
    "A folder the user names is checked, never silently replaced."
    good = tmp_path / "bench"
    save_split(load_benchmark_split("ml100k-v1", cache_dir=tmp_path / "cache"), good / "ml100k-v1")
    monkeypatch.setenv("CONTRASTREC_BENCHMARKS", str(good))
    with pytest.raises(DataUnavailableError, match="train.tsv is not the published ml100k-v1 file"):
        load_benchmark_split("ml100k-v1")  # save_split writes float ratings ('5.0'): not the published bytes
    monkeypatch.setenv("CONTRASTREC_BENCHMARKS", str(tmp_path / "cache" / "benchmarks"))
    check_ml100k_v1(load_benchmark_split("ml100k-v1"))
    monkeypatch.setenv("CONTRASTREC_BENCHMARKS", str(tmp_path / "nowhere"))
    with pytest.raises(DataUnavailableError, match="nowhere/ml100k-v1/train.tsv is missing"):
        load_benchmark_split("ml100k-v1")


def test_load_split_without_train_is_a_clear_error(tmp_path):
    (tmp_path / "valid.tsv").write_text("user_id\titem_id\n1\t2\n")
    with pytest.raises(ValueError, match="must hold a train and a valid file"):
        load_split(tmp_path)


def test_split_folder_of_csv_files(tmp_path):
    for name in ("train.csv", "valid.csv"): (tmp_path / name).write_text("user_id,item_id\n1,2\n1,3\n")
    assert load_split(tmp_path).sizes() == {"train": 2, "valid": 2}
    (tmp_path / "train.tsv").write_text("user_id\titem_id\n1\t2\n")
    with pytest.raises(ValueError, match="both train.tsv and train.csv"):
        load_split(tmp_path)


def test_load_split_test_part_is_optional(tmp_path):
    for name in ("train.tsv", "valid.tsv"): (tmp_path / name).write_text("user_id\titem_id\n1\t2\n")
    assert load_split(tmp_path).test is None


# ---------------------------------------------------------------------------------------------------
# Encoding: fitted on train only

def small_split() -> Split:
    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11]})
    valid = pd.DataFrame({"user_id": [1, 4], "item_id": [12, 10]})  # user 4 only in valid
    test = pd.DataFrame({"user_id": [2, 5, 5], "item_id": [13, 11, 13]})  # user 5 and item 13 only in test
    return Split(train, valid, test)


def test_vocabularies_are_fitted_on_train_and_oov_is_reported():
    enc = encode(small_split())
    assert list(enc.user_vocab.ids) == [1, 2, 3] and list(enc.item_vocab.ids) == [10, 11, 12]
    assert enc.n_users == 4 and enc.n_items == 4
    assert enc.valid.tolist() == [[1, 3], [0, 1]] and enc.test.tolist() == [[2, 0], [0, 2], [0, 0]]
    assert enc.report == {"valid": {"rows": 2, "oov_users": 1, "oov_items": 0},
                          "test": {"rows": 3, "oov_users": 2, "oov_items": 2}}
    assert enc.train.min() >= 1


def test_feature_statistics_come_from_train_entities_only():
    users = pd.DataFrame({"age": [20, 30, 40, 99, 99], "job": ["a", "b", "a", "spy", "spy"]},
                         index=pd.Index([1, 2, 3, 4, 5], name="user_id"))
    items = pd.DataFrame({"year": [1990.0, 2000.0, None, 3000.0], "tags": [["x"], ["x", "y"], [], ["z"]]},
                         index=pd.Index([10, 11, 12, 13], name="item_id"))
    enc = encode(small_split(), users, items, {"age": "numeric", "job": "categorical"},
                 {"year": "numeric", "tags": "multi_hot"})
    age, job = enc.user_specs
    assert age.mean == pytest.approx(30.0) and age.std == pytest.approx(10.0)
    assert job.vocabulary == ["a", "b"], "a category seen only on test users is not in the vocabulary"
    year, tags = enc.item_specs
    assert year.mean == pytest.approx(1995.0) and tags.vocabulary == ["x", "y"]
    np.testing.assert_allclose(enc.user_features["age"], [0, -1, 0, 1], atol=1e-6)  # row 0 = OOV user
    assert enc.user_features["job"].tolist() == [0, 1, 2, 1]
    assert enc.item_features["tags"].tolist() == [[0, 0], [1, 0], [1, 2], [0, 0]]


def test_requested_features_need_their_table_and_columns():
    with pytest.raises(ValueError, match="no user table was given"):
        encode(small_split(), user_features={"age": "numeric"})
    with pytest.raises(ValueError, match=r"has no column\(s\) \['age'\]"):
        encode(small_split(), users=pd.DataFrame({"x": [1]}, index=[1]), user_features={"age": "numeric"})
    with pytest.raises(ValueError, match="unknown feature kind 'vector'"):
        fit_spec("a", "vector", pd.Series([1]))


@given(st.one_of(st.lists(st.integers(-10**12, 10**12), max_size=20), st.lists(st.text(max_size=5), max_size=20)))
def test_vocabulary_config_round_trips_through_json(ids):
    vocab = Vocabulary(ids)
    back = Vocabulary.from_config(json.loads(json.dumps(vocab.get_config())))
    unique = list(dict.fromkeys(ids))
    assert len(back) == len(vocab) == len(unique) + 1
    assert back.lookup(unique).tolist() == vocab.lookup(unique).tolist() == list(range(1, len(unique) + 1))
    if unique: assert list(back.id_of(range(1, len(back)))) == unique


def test_vocabulary_oov_and_bad_indices():
    vocab = Vocabulary(["b", "a", "b"])
    assert vocab.lookup(["a", "zzz"]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="0 is OOV"):
        vocab.id_of([0])
    with pytest.raises(ValueError, match="cannot contain missing ids"):
        Vocabulary([1, None])


SPEC_COLUMNS = {
    "gender": (pd.Series(["M", "F", None, "F"]), "categorical"),
    "age": (pd.Series([18, 25, None, 60, 33]), "bucket"),
    "year": (pd.Series([1990.5, None, 2001.0]), "numeric"),
    "genres": (pd.Series([["Drama"], [], ["Comedy", "Drama"]]), "multi_hot"),
    "title": (pd.Series(["Toy Story (1995)", "Toy Soldiers (1991)", None]), "text"),
}


@pytest.mark.parametrize("name", SPEC_COLUMNS)
def test_every_spec_round_trips_through_its_config(name):
    values, kind = SPEC_COLUMNS[name]
    spec = fit_spec(name, kind, values)
    back = spec_from_config(json.loads(json.dumps(spec_to_config(spec))))
    assert back == spec and type(back) is type(spec) and back.kind == spec.kind
    np.testing.assert_array_equal(back.transform(values), spec.transform(values))


def test_spec_transforms_reserve_zero_for_unknown_or_missing():
    assert CategoricalSpec.fit("g", pd.Series(["M", "F"])).transform(pd.Series(["F", "X", None])).tolist() == [1, 0, 0]
    bucket = BucketSpec.fit("a", pd.Series(range(100)), n_buckets=4)
    assert bucket.cardinality == 5 and bucket.transform(pd.Series([None, -5, 99, 1000])).tolist() == [0, 1, 4, 4]
    assert NumericSpec.fit("n", pd.Series([5.0, 5.0])).std == 1.0
    title = MultiHotSpec.fit("t", pd.Series(["Toy Story (1995)"]), text=True)
    assert title.vocabulary == ["story", "toy"]
    assert title.transform(pd.Series(["Story of Toys", None])).tolist() == [[1, 0], [0, 0]]


# ---------------------------------------------------------------------------------------------------
# History, the pair stream and sampling distributions

def tiny_encoded(n_users=6, n_items=8, per_user=4, seed=0):
    df = synthetic(n_users, n_items, per_user, seed)
    items = pd.DataFrame({"genres": [["a"] if i % 2 else ["b", "a"] for i in range(1, n_items + 1)],
                          "year": np.arange(n_items) + 1990.0}, index=pd.Index(range(1, n_items + 1), name="item_id"))
    users = pd.DataFrame({"age": np.arange(n_users) * 10.0}, index=pd.Index(range(1, n_users + 1), name="user_id"))
    return encode(split_random(df, 0.25, 0.0, seed=seed), users, items, {"age": "numeric"},
                  {"genres": "multi_hot", "year": "numeric"})


def test_history_table_lists_each_users_train_items():
    enc = tiny_encoded()
    hist = history_table(enc)
    assert len(hist) == enc.n_users and len(hist[0]) == 0
    for u in range(1, enc.n_users):
        assert sorted(hist[u]) == sorted(enc.train[enc.train[:, 0] == u, 1])
    both = history_table(enc, ("train", "valid"))
    assert enc.report["valid"]["oov_users"] == 0
    assert len(both.values) == len(enc.train) + len(enc.valid) - enc.report["valid"]["oov_items"]
    short = history_table(enc, max_len=2, seed=3)
    assert len(short) == enc.n_users and short.lengths.max() == 2
    for u in range(1, enc.n_users):
        assert set(short[u]) <= set(hist[u]) and len(short[u]) == min(2, len(hist[u]))
        assert (np.diff(short[u]) > 0).all()  # a kept subset stays in item order
    again = history_table(enc, max_len=2, seed=3)
    np.testing.assert_array_equal(short.values, again.values)
    np.testing.assert_array_equal(short.indptr, again.indptr)


def test_history_table_drops_oov_items():
    enc = encode(small_split())  # train users 1, 2, 3 -> 1, 2, 3; items 10, 11, 12 -> 1, 2, 3; item 13 is OOV
    both = history_table(enc, ("train", "valid", "test"))
    assert [sorted(row.tolist()) for row in both[1:]] == [[1, 2, 3], [1, 3], [2]]


def test_history_table_oov_user_row_is_empty():
    enc = encode(small_split())
    assert len(history_table(enc, ("train", "valid", "test"))[0]) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), max_size=6), max_size=8), st.data())
def test_ragged_rows_select_and_pad_like_a_padded_matrix(rows, draw):
    "Selecting rows of RaggedRows then padding equals padding every row then selecting and trimming."
    ragged = RaggedRows(np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype("int64"),
                        np.array(sum(rows, []), "int32"))
    full = ragged.padded()
    assert full.shape == (len(rows), max([1] + [len(r) for r in rows]))
    picked = np.array(draw.draw(st.lists(st.integers(0, max(0, len(rows) - 1)), max_size=10) if rows else st.just([])),
                      "int64")
    sub = ragged[picked].padded()
    width = max([1] + [len(rows[i]) for i in picked])
    np.testing.assert_array_equal(sub, full[picked][:, :width] if len(rows) else np.zeros((0, 1), "int32"))
    for i in picked: assert ragged[int(i)].tolist() == rows[i]


def epoch(ds) -> list[tuple[int, int]]:
    return [(u, i) for b in ds for u, i in zip(b["user"]["id"].numpy().tolist(), b["item"]["id"].numpy().tolist())]


def test_pair_dataset_yields_every_train_pair_once_per_epoch_and_reshuffles():
    enc = tiny_encoded()
    ds = pair_dataset(enc, batch_size=5, seed=7)
    first, second = epoch(ds), epoch(ds)
    train = sorted(map(tuple, enc.train.tolist()))
    assert sorted(first) == train and sorted(second) == train
    assert first != second, "each epoch is a new order"
    assert first == epoch(pair_dataset(enc, batch_size=5, seed=7)), "the same seed gives the same order"
    assert first != epoch(pair_dataset(enc, batch_size=5, seed=8))
    assert epoch(pair_dataset(enc, batch_size=5, shuffle=False)) == list(map(tuple, enc.train.tolist()))
    assert epoch(pair_dataset(enc, batch_size=3, part="valid", shuffle=False)) == list(map(tuple, enc.valid.tolist()))
    sizes = [len(b["item"]["id"]) for b in pair_dataset(enc, batch_size=5, drop_remainder=True)]
    assert set(sizes) == {5} and len(sizes) == len(enc.train) // 5


def test_pair_dataset_gathers_the_right_feature_rows():
    enc = tiny_encoded()
    for batch in pair_dataset(enc, batch_size=4, seed=1):
        assert set(batch) == {"user", "item"}
        assert set(batch["user"]) == {"id", "age"} and set(batch["item"]) == {"id", "genres", "year"}
        for side, feats in (("user", enc.user_features), ("item", enc.item_features)):
            ids = batch[side]["id"].numpy()
            for name, table in feats.items():
                np.testing.assert_array_equal(batch[side][name].numpy(), table[ids])


@given(interactions(n_users=5, n_items=12, max_size=40, ratings=False, timestamps=False),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 1.0, 3.0]))
def test_sampling_distributions_sum_to_one_and_skip_oov(df, alpha, smoothing):
    enc = encode(Split(df, df.iloc[:0]))
    for p in (sampling_distribution(enc, alpha), item_frequencies(enc, smoothing)):
        assert p.shape == (enc.n_items,) and p[0] == 0 and (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
    assert (sampling_distribution(enc, alpha)[1:] > 0).all()
    np.testing.assert_allclose(item_frequencies(enc, 0.0)[1:], enc.item_counts()[1:] / len(df), rtol=1e-6)
    if alpha == 0.0: np.testing.assert_allclose(sampling_distribution(enc, 0.0)[1:], 1 / (enc.n_items - 1))


@given(interactions(min_size=10))
def test_for_refit_merges_valid_into_train_and_keeps_test(df):
    split = split_random(df, seed=0)
    refit = split.for_refit()
    assert refit.valid is None and refit.test is split.test
    assert len(refit.train) == len(split.train) + len(split.valid)
    assert set(map(tuple, refit.train[["user_id", "item_id"]].to_numpy())) == \
        set(map(tuple, pd.concat([split.train, split.valid])[["user_id", "item_id"]].to_numpy()))
    data = encode(refit)
    assert data.valid is None and "valid" not in data.report


# ---------------------------------------------------------------------------------------------------
# The LightGCN-format graph benchmarks: reading, carving valid, the registered Yelp2018 and Gowalla

def expected_n_valid(n: int, fraction: float) -> int:
    "The documented rule: fraction * n rounded half up, at least 1 and at most n - 1; 0 for a single item."
    return 0 if n < 2 else min(max(math.floor(fraction * n + 0.5), 1), n - 1)


@st.composite
def lightgcn_text(draw):
    "A LightGCN-format file (random spacing, line ends, users without items) and the pairs it holds, in order."
    users = draw(st.lists(st.integers(0, 10**6), min_size=0, max_size=8, unique=True))
    lines, pairs = [], []
    for u in users:
        items = draw(st.lists(st.integers(0, 10**12), max_size=6, unique=True))
        seps = draw(st.lists(st.sampled_from([" ", "  ", "\t", " \t"]), min_size=len(items), max_size=len(items)))
        lines.append(str(u) + "".join(sep + str(i) for sep, i in zip(seps, items)) + draw(st.sampled_from(["", " "])))
        pairs += [(u, i) for i in items]
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join(lines) + draw(st.sampled_from(["", end])), pairs


@given(lightgcn_text())
def test_read_lightgcn_file_reads_every_pair_in_file_order(tmp_path_factory, text_pairs):
    text, pairs = text_pairs
    path = tmp_path_factory.mktemp("lgcn") / "train.txt"
    path.write_bytes(text.encode())
    df = read_lightgcn_file(path)
    assert list(zip(df.user_id.tolist(), df.item_id.tolist())) == pairs
    assert list(df.columns) == ["user_id", "item_id"] and (df.dtypes == np.int64).all()


@pytest.mark.parametrize("text, message", [
    ("0 1 2\n1 2 x3\n", "bad.txt, line 2: ids must be non-negative integers separated by spaces: '1 2 x3'"),
    ("0 1\n\n1 -2\n", "bad.txt, line 3: ids must be non-negative integers"),
    ("0 1,2\n", "bad.txt, line 1: ids must be non-negative integers"),
    ("0 1\n1 2\n0 3\n", "bad.txt, line 3: a second line for this user: '0 3'"),
    ("0 1\n1 4 2 4\n", "bad.txt, line 2: an item listed twice for this user: '1 4 2 4'"),
    ("0 1\n1 " + "9" * 19 + "\n", "bad.txt, line 2: an id of more than 18 digits"),
])
def test_malformed_lightgcn_lines_name_the_file_and_the_line(tmp_path, text, message):
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(ValueError) as err:
        read_lightgcn_file(tmp_path / "bad.txt")
    assert message in str(err.value) and "\n" not in str(err.value)


@given(interactions(n_users=6, n_items=12, max_size=60, ratings=False, timestamps=False),
       st.sampled_from([0.05, 0.1, 0.2, 0.5, 0.9]), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_carve_valid_follows_the_rule_and_depends_on_the_seed_and_pairs_only(df, fraction, seed, rnd):
    split = carve_valid(df, fraction, seed)
    assert split.test is None
    assert sorted(as_pairs(split.train) + as_pairs(split.valid)) == sorted(as_pairs(df))  # a partition
    n = df.groupby("user_id").size()
    n_valid = split.valid.groupby("user_id").size().reindex(n.index, fill_value=0)
    assert n_valid.to_dict() == {u: expected_n_valid(k, fraction) for u, k in n.items()}
    assert (split.train.groupby("user_id").size().reindex(n.index, fill_value=0) >= 1).all()
    again = carve_valid(df, fraction, seed)
    assert again.train.equals(split.train) and again.valid.equals(split.valid)
    shuffled = df.iloc[rnd.sample(range(len(df)), len(df))]
    assert as_pairs(carve_valid(shuffled, fraction, seed).valid) == as_pairs(split.valid)
    user = df.user_id.iloc[0]  # the other users play no part in which of this user's rows move
    alone = carve_valid(df[df.user_id == user], fraction, seed).valid
    assert as_pairs(alone) == as_pairs(split.valid[split.valid.user_id == user])


def test_carve_valid_depends_on_the_seed():
    df = synthetic(n_users=30, n_items=30, per_user=20)[["user_id", "item_id"]]
    a, b = (carve_valid(df, seed=s).valid for s in (0, 1))
    assert len(a) == len(b) == 30 * 2 and as_pairs(a) != as_pairs(b)


def write_lightgcn(folder: Path, train: str, test: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text(train)
    (folder / "test.txt").write_text(test)
    return folder


def test_a_registered_lightgcn_benchmark_is_found_checked_and_counted(tmp_path, monkeypatch):
    "A toy benchmark registered like Yelp2018: found in $CONTRASTREC_DATA/<name> or a named folder, checked."
    folder = write_lightgcn(tmp_path / "data" / "toy", "0 1 2 3\n1 0 2\n2 3\n", "0 0\n1 3\n2 1 2\n")
    digest = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in ("train.txt", "test.txt")}
    counts = load_lightgcn_split(folder).counts()
    assert counts == {"users": 3, "items": 4, "train": 4, "valid": 2, "test": 4}
    monkeypatch.setitem(BENCHMARK_SPLITS, "toy", _lightgcn_benchmark(digest["train.txt"], digest["test.txt"], **counts))
    monkeypatch.setenv("CONTRASTREC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("CONTRASTREC_BENCHMARKS", str(tmp_path / "elsewhere"))  # only for rebuilt splits
    split = load_benchmark_split("toy")
    assert split.counts() == counts
    assert load_benchmark_split("toy", folder=folder).valid.equals(split.valid)
    monkeypatch.delenv("CONTRASTREC_DATA")
    with pytest.raises(DataUnavailableError, match="set CONTRASTREC_DATA to the folder that holds toy/"):
        load_benchmark_split("toy")
    monkeypatch.setitem(BENCHMARK_SPLITS, "toy", _lightgcn_benchmark(digest["train.txt"], digest["test.txt"],
                                                                     **{**counts, "valid": 1}))
    with pytest.raises(RuntimeError, match="has counts .* not the published"):
        load_benchmark_split("toy", folder=folder)


LIGHTGCN_README = {  # shared/data/README.md: users, items, pairs in train.txt, pairs in test.txt
    "yelp2018": (31_668, 38_048, 1_237_259, 324_147),
    "gowalla": (29_858, 40_981, 810_128, 217_242),
}


def shared_lightgcn_folder(name: str) -> Path:
    "The shared copy of a LightGCN split, or a skip saying why there is none."
    folder = Path(os.environ.get("CONTRASTREC_DATA", "/nonexistent")) / name
    if not (folder / "train.txt").is_file() or not (folder / "test.txt").is_file():
        pytest.skip(f"CONTRASTREC_DATA ({os.environ.get('CONTRASTREC_DATA')}) holds no {name}/train.txt and test.txt; "
                    "the LightGCN splits cannot be redistributed, so they are only tested where a copy is")
    return folder


def plain_pairs(path: Path) -> np.ndarray:
    "The (user, item) pairs of a LightGCN-format file, read the slow, obvious way, in file order."
    pairs = []
    for line in path.read_text().splitlines():
        user, *items = map(int, line.split())
        pairs += [(user, i) for i in items]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort((a[:, 1], a[:, 0]))]


@pytest.fixture(scope="module", params=sorted(LIGHTGCN_README))
def shared_lightgcn(request):
    "(name, folder, the split `load_benchmark_split` gives): each real split read once for the tests below."
    folder = shared_lightgcn_folder(request.param)
    return request.param, folder, load_benchmark_split(request.param)


def test_lightgcn_benchmark_counts_match_the_data_readme(shared_lightgcn):
    name, folder, split = shared_lightgcn
    users, items, train_pairs, test_pairs = LIGHTGCN_README[name]
    assert split.counts() == BENCHMARK_SPLITS[name].counts
    assert split.counts()["users"] == users and split.counts()["items"] == items  # ids seen anywhere
    every = pd.concat(split.parts().values())
    assert every.user_id.max() + 1 == users and every.item_id.max() + 1 == items  # ... and all of 0..n-1
    assert len(split.train) + len(split.valid) == train_pairs and len(split.test) == test_pairs
    assert 0.10 <= len(split.valid) / train_pairs <= 0.105


def test_lightgcn_benchmark_is_the_files_with_valid_carved_from_train(shared_lightgcn):
    name, folder, split = shared_lightgcn
    np.testing.assert_array_equal(split.test.to_numpy(), plain_pairs(folder / "test.txt"))
    train_file = plain_pairs(folder / "train.txt")
    carved = np.concatenate([split.train.to_numpy(), split.valid.to_numpy()])
    np.testing.assert_array_equal(sorted_rows(carved), sorted_rows(train_file))  # train + valid = train.txt
    assert len(pd.concat([split.train, split.valid]).drop_duplicates()) == len(train_file)  # disjoint
    n = pd.Series(train_file[:, 0]).value_counts().sort_index()
    n_valid = split.valid.groupby("user_id").size().reindex(n.index, fill_value=0)
    assert (n_valid == [expected_n_valid(k, 0.1) for k in n]).all()
    assert split.train.user_id.nunique() == len(n)  # every user keeps train items


def test_lightgcn_benchmark_is_the_same_on_every_call(shared_lightgcn):
    name, folder, split = shared_lightgcn
    again = load_benchmark_split(name, folder=folder)
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(again, part), getattr(split, part))
    other_seed = load_lightgcn_split(folder, seed=1)
    assert other_seed.sizes() == split.sizes() and not other_seed.valid.equals(split.valid)


@pytest.mark.parametrize("name", sorted(LIGHTGCN_README))
def test_a_damaged_or_missing_lightgcn_file_is_a_clear_error(tmp_path, monkeypatch, name):
    source = shared_lightgcn_folder(name)
    copy = tmp_path / name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*list.txt", "*.md"))
    data = bytearray((copy / "train.txt").read_bytes())
    at = next(i for i in range(1000, len(data)) if chr(data[i]).isdigit())
    data[at] = ord("7") if data[at] != ord("7") else ord("8")  # still well formed, no longer the published file
    (copy / "train.txt").write_bytes(bytes(data))
    with pytest.raises(DataUnavailableError, match=f"train.txt is not the published {name} file .* put the LightGCN"):
        load_benchmark_split(name, folder=copy)
    monkeypatch.setenv("CONTRASTREC_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError, match=re.escape(f"{tmp_path}/{name}/train.txt is not the published")):
        load_benchmark_split(name)
    (copy / "test.txt").unlink()
    shutil.copy(source / "train.txt", copy / "train.txt")
    with pytest.raises(DataUnavailableError, match=f"{name}/test.txt is missing: .* not a complete {name} split"):
        load_benchmark_split(name)


@given(st.lists(st.integers(1, 300), max_size=200), st.sampled_from([1, 2, 4]), st.sampled_from([4, 8, 32, 256]),
       st.booleans())
@settings(max_examples=200, deadline=None)
def test_budget_sizes_cut_every_counted_row_once_in_allowed_sizes(lengths, multiple, batch_size, bucket):
    """Length-grouped batch sizes: every row but the first `n % multiple` once, each size a multiple of the worker
    count, within the batch size, and within the padded-entries budget unless one run of `multiple` rows exceeds it."""
    lengths = np.sort(np.array(lengths, dtype=int))
    sizes = _budget_sizes(lengths, batch_size, multiple, bucket)
    counted = lengths[len(lengths) % multiple:]
    assert sum(sizes) == len(counted) and all(s % multiple == 0 and multiple <= s <= batch_size for s in sizes)
    if bucket: assert all(_row_bucket(s, multiple) == s for s in sizes)
    budget, start = batch_size * max(1.0, counted.mean() if len(counted) else 1.0), 0
    for s in sizes:
        assert s == multiple or s * counted[start + s - 1] <= budget
        start += s
