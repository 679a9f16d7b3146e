"The `contrastrec` command line end to end: train → recommend → evaluate, in-process and as the installed script."
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contrastrec import __version__
from contrastrec.cli import main
from contrastrec.training import TrainConfig

SCRIPT = Path(sys.executable).parent / "contrastrec"
QUICK = {"dim": 32, "epochs": 3, "patience": 3}


@pytest.fixture(scope="module")
def work(ml150_split_folder):
    "A split folder of the first 150 MovieLens-100K users and a quick config."
    root, split = ml150_split_folder
    (root / "quick.json").write_text(json.dumps(QUICK))
    (root / "typo.json").write_text(json.dumps({"dim": 32, "tau": 0.1}))
    return root, split


@pytest.fixture(scope="module")
def model(work):
    root, _ = work
    argv = ["train", "--split", str(root / "split"), "--config", str(root / "quick.json"), "--out", str(root / "model")]
    assert main(argv) == 0
    return root / "model"


def check_recs(path: Path, split, k: int):
    recs = pd.read_csv(path, sep="\t")
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs.user_id.nunique() == split.train.user_id.nunique() and recs.groupby("user_id").size().eq(k).all()
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, k + 1))).all()
    assert recs.merge(pd.concat([split.train, split.valid]), on=["user_id", "item_id"]).empty
    assert set(recs.item_id) <= set(split.train.item_id)


def check_metrics(text: str, ks):
    metrics = json.loads(text)
    names = ("recall", "ndcg", "hit", "mrr", "precision", "map", "coverage", "popularity", "novelty")
    assert set(metrics) == {f"{m}@{k}" for k in ks for m in names}
    assert all(0 <= metrics[f"{m}@{k}"] <= 1 for k in ks for m in names if m != "novelty")
    assert metrics[f"ndcg@{max(ks)}"] > 0
    assert all(metrics[f"novelty@{k}"] > 0 for k in ks)


def test_train_recommend_evaluate_in_process(work, model, capsys):
    root, split = work
    assert sorted(p.name for p in model.iterdir()) == sorted(["model.keras", "vocabularies.json", "feature_specs.json",
        "features.npz", "interactions.npz", "config.json", "recommender.json"])
    assert json.loads((model / "config.json").read_text())["train_config"]["dim"] == 32
    capsys.readouterr()
    assert main(["recommend", "--model", str(model), "--k", "7", "--out", str(root / "recs.tsv")]) == 0
    check_recs(root / "recs.tsv", split, 7)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--test", str(root / "split" / "test.tsv"), "--k", "10", "20"]) == 0
    check_metrics(capsys.readouterr().out, (10, 20))


def run_script(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_installed_console_script(work, model):
    root, split = work
    assert SCRIPT.is_file(), f"{SCRIPT} is missing: install the package (pip install -e .)"
    done = run_script("train", "--split", str(root / "split"), "--features", "movielens-100k",
                      "--config", str(root / "quick.json"), "--out", str(root / "model-features"))
    assert done.returncode == 0, done.stderr
    assert "saved to" in done.stdout
    done = run_script("recommend", "--model", str(root / "model-features"), "--k", "5",
                      "--out", str(root / "recs5.tsv"))
    assert done.returncode == 0, done.stderr
    check_recs(root / "recs5.tsv", split, 5)
    done = run_script("evaluate", "--model", str(model), "--test", str(root / "split" / "test.tsv"))
    assert done.returncode == 0, done.stderr
    check_metrics(done.stdout, (10, 20, 50))
    done = run_script("recommend", "--model", str(root / "nowhere"), "--out", str(root / "x.tsv"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("contrastrec recommend: error: ")


PROGRESS = ("embedded ", "built the ")  # Recommender.load's progress lines (verbose=1), not errors


def errors(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = "\n".join(line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith(PROGRESS))
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_one_line_errors(work, model, capsys, tmp_path):
    root, _ = work
    err = errors(capsys, ["train", "--split", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")])
    assert err.startswith("contrastrec train: error: ") and "train.tsv" in err
    err = errors(capsys, ["recommend", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.tsv")])
    assert err.startswith("contrastrec recommend: error: ") and "not a folder" in err
    err = errors(capsys, ["train", "--split", str(root / "split"), "--config", str(root / "typo.json"),
                          "--out", str(tmp_path / "m")])
    assert err.startswith("contrastrec train: error: ") and "'tau'" in err
    err = errors(capsys, ["evaluate", "--model", str(model), "--test", str(tmp_path / "none.tsv")])
    assert err.startswith("contrastrec evaluate: error: ")
    err = errors(capsys, ["recommend", "--model", str(model), "--k", "ten", "--out", str(tmp_path / "r.tsv")])
    assert err.startswith("contrastrec recommend: error: argument --k")
    err = errors(capsys, ["recommend", "--model", str(model), "--k", "0", "--out", str(tmp_path / "r.tsv")])
    assert err.endswith("not 0.")
    assert "not both" in errors(capsys, ["train", "--split", str(root / "split"), "--features", "movielens-100k",
                                         "--users", "u.tsv", "--out", str(tmp_path / "m")])
    assert errors(capsys, ["frobnicate"]).startswith("contrastrec: error: argument command")


def test_own_feature_tables(work, tmp_path, capsys):
    root, split = work
    users = pd.DataFrame({"user_id": sorted(split.train.user_id.unique())})
    users["group"] = users.user_id % 3
    users["label"] = users.user_id.map(lambda u: "ab"[u % 2])
    users.to_csv(tmp_path / "users.tsv", sep="\t", index=False)
    (tmp_path / "features.json").write_text(json.dumps({**QUICK, "epochs": 1, "patience": 1, "user_features": True}))
    assert main(["train", "--split", str(root / "split"), "--users", str(tmp_path / "users.tsv"),
                 "--config", str(tmp_path / "features.json"), "--out", str(tmp_path / "m")]) == 0
    specs = json.loads((tmp_path / "m" / "feature_specs.json").read_text())["user"]
    assert [(s["name"], s["class"]) for s in specs] == [("group", "NumericSpec"), ("label", "CategoricalSpec")]
    users.drop(columns="user_id").to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    err = errors(capsys, ["train", "--split", str(root / "split"), "--users", str(tmp_path / "bad.tsv"),
                          "--out", str(tmp_path / "m2")])
    assert "needs a user_id column" in err


def test_demo_runs_briefly(capsys):
    assert main(["demo", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "most popular" in out and "contrastrec" in out and out.count("\nuser ") == 3
    assert "Recall@10" in out and "NDCG@20" in out


def test_evaluate_agrees_with_the_independent_scorer_of_the_recommendations(work, model, capsys):
    "`contrastrec evaluate` and benchmarks/score_recs.py (pandas only) score the same model's `recommend` output alike."
    import importlib.util
    path = Path(__file__).parents[1] / "benchmarks" / "score_recs.py"
    spec = importlib.util.spec_from_file_location("score_recs", path)
    score_recs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score_recs)
    root, split = work
    assert main(["recommend", "--model", str(model), "--k", "20", "--out", str(root / "recs20.tsv")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--test", str(root / "split" / "test.tsv"), "--k", "10", "20"]) == 0
    ours = json.loads(capsys.readouterr().out)
    recs = pd.read_csv(root / "recs20.tsv", sep="\t")
    theirs = score_recs.score(recs, split.train, split.valid, split.test, (10, 20))
    assert theirs["seen_items_recommended"] == 0
    for key in ("recall@10", "recall@20", "ndcg@10", "ndcg@20"):
        assert theirs[key] == pytest.approx(ours[key], abs=1e-5), key


def test_train_with_refit_saves_a_model_of_train_plus_valid(work, capsys, tmp_path):
    root, split = work
    out = tmp_path / "refit"
    argv = ["train", "--split", str(root / "split"), "--config", str(root / "quick.json"), "--refit", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "refitting on train + valid for" in printed
    refit_lines = printed.split("refitting on train + valid for")[1].splitlines()[1:]
    assert refit_lines and all("valid " not in line for line in refit_lines if line.startswith("epoch"))
    with np.load(out / "interactions.npz") as saved:
        assert sorted(saved.files) == ["save_id", "train"]
        assert len(saved["train"]) == len(split.train) + len(split.valid)
    assert main(["recommend", "--model", str(out), "--k", "5", "--out", str(tmp_path / "recs.tsv")]) == 0
    check_recs(tmp_path / "recs.tsv", split, 5)


def test_help_and_version_never_import_tensorflow():
    "`--help` and `--version` answer from the standard library alone (chapter 8 times the installed script)."
    probe = ("import sys\nfrom contrastrec.cli import main\n"
             "for argv in (['--version'], ['--help'], ['train', '--help']):\n"
             "    assert main(argv) == 0\n"
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"contrastrec {__version__}" in done.stdout
    assert "`contrastrec config` lists every field" in " ".join(done.stdout.split())


TF_NOISE = re.compile(r"absl|cuda|I0000|oneDNN|cpu_feature_guard|rebuild TensorFlow")


def test_commands_print_no_tensorflow_start_up_lines(work, model, tmp_path):
    """With no TF_CPP_MIN_LOG_LEVEL in the environment, a command that loads TensorFlow prints only its own
    progress on stderr."""
    root, _ = work
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [str(SCRIPT), "recommend", "--model", str(model), "--k", "3", "--users", "1",
            "--out", str(tmp_path / "r.tsv")]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and not TF_NOISE.search(done.stderr), done.stderr
    assert done.stderr.startswith("embedded 150 users and ") and len(done.stderr.splitlines()) == 1, done.stderr
    assert pd.read_csv(tmp_path / "r.tsv", sep="\t").user_id.tolist() == [1, 1, 1]


@pytest.fixture(scope="module")
def log_file(work, tmp_path_factory):
    "The 150 users' interactions as one CSV log, with one (user, item) pair repeated at a later time."
    _, split = work
    logs = pd.concat(split.parts().values()).sort_values(["user_id", "timestamp"]).reset_index(drop=True)
    path = tmp_path_factory.mktemp("log") / "logs.csv"
    logs.to_csv(path, index=False)
    repeated = pd.concat([logs, logs.iloc[[0]].assign(rating=1.0, timestamp=logs.timestamp.max() + 1)])
    repeated.to_csv(path.with_name("repeated.csv"), index=False)
    return path, logs


@pytest.mark.parametrize("mode, extra", [("random", ["--valid", "0.2", "--test", "0.1", "--seed", "3"]),
                                         ("leave-last", ["--last", "2"]), ("temporal", [])])
def test_split_writes_every_protocol(log_file, tmp_path, capsys, mode, extra):
    path, logs = log_file
    assert main(["split", "--interactions", str(path), "--split-mode", mode, *extra, "--out", str(tmp_path / "s")]) == 0
    assert "wrote train" in capsys.readouterr().out
    parts = {p: pd.read_csv(tmp_path / "s" / f"{p}.tsv", sep="\t") for p in ("train", "valid", "test")}
    assert sum(map(len, parts.values())) == len(logs)
    if mode == "leave-last":
        assert parts["test"].groupby("user_id").size().eq(2).all()
        last = logs.groupby("user_id").timestamp.max()
        assert (parts["test"].groupby("user_id").timestamp.max() == last.loc[parts["test"].user_id.unique()]).all()
    if mode == "temporal": assert parts["train"].timestamp.max() <= parts["test"].timestamp.min()
    if mode == "random": assert len(parts["valid"]) > len(parts["test"])


def test_split_refuses_an_existing_folder_and_repeated_pairs(log_file, tmp_path, capsys):
    path, _ = log_file
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert "already exists" in errors(capsys, ["split", "--interactions", str(path), "--out", str(tmp_path / "taken")])
    err = errors(capsys, ["split", "--interactions", str(path.with_name("repeated.csv")), "--out", str(tmp_path / "s")])
    assert "1 duplicate (user_id, item_id) pair" in err and "--duplicates" in err
    assert not (tmp_path / "s").exists()
    assert main(["split", "--interactions", str(path.with_name("repeated.csv")), "--duplicates", "last",
                 "--split-mode", "leave-last", "--out", str(tmp_path / "s")]) == 0
    assert "note: " in capsys.readouterr().err
    first = pd.read_csv(path).iloc[0]
    test = pd.read_csv(tmp_path / "s" / "test.tsv", sep="\t")
    kept = test[(test.user_id == first.user_id) & (test.item_id == first.item_id)]
    assert len(kept) == 1 and kept.rating.item() == 1.0  # the later row was kept, and is that user's last


def test_train_from_one_log_keeps_its_split(log_file, tmp_path, capsys):
    path, logs = log_file
    out = tmp_path / "m"
    assert main(["train", "--interactions", str(path), "--split-mode", "leave-last", "--config", json.dumps(QUICK),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"evaluate with --test {out / 'split' / 'test.tsv'}" in printed and "epoch   3/3" in printed
    test = pd.read_csv(out / "split" / "test.tsv", sep="\t")
    assert len(test) == logs.user_id.nunique()
    assert main(["evaluate", "--model", str(out), "--test", str(out / "split" / "test.tsv")]) == 0
    check_metrics(capsys.readouterr().out, (10, 20, 50))


def test_config_inline_json_and_the_list_of_fields(work, capsys, tmp_path):
    root, _ = work
    train, out = ["train", "--split", str(root / "split")], ["--out", str(tmp_path / "m")]
    assert "'tau'" in errors(capsys, [*train, "--config", '{"tau": 0.1}', *out])
    assert "epochs must be int" in errors(capsys, [*train, "--config", '{"epochs": "3"}', *out])
    assert "not valid JSON" in errors(capsys, [*train, "--config", "{epochs: 3}", *out])
    assert main(["config"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(" = ")[0] for line in listed] == list(TrainConfig.__dataclass_fields__)
    assert main(["config", "--json"]) == 0
    assert TrainConfig.from_dict(json.loads(capsys.readouterr().out)) == TrainConfig()


def test_recommend_for_chosen_users_and_a_note_when_k_is_too_large(work, model, capsys, tmp_path):
    root, split = work
    (tmp_path / "users.txt").write_text("3\n1\n\n")
    recommend, out = ["recommend", "--model", str(model)], ["--out", str(tmp_path / "r.tsv")]
    assert main([*recommend, "--users-file", str(tmp_path / "users.txt"), "--k", "4", *out]) == 0
    recs = pd.read_csv(tmp_path / "r.tsv", sep="\t")
    assert recs.user_id.tolist() == [3] * 4 + [1] * 4
    capsys.readouterr()
    n_items = split.train.item_id.nunique()
    assert main([*recommend, "--users", "1", "2", "--k", str(n_items + 5), *out]) == 0
    assert f"note: 2 of 2 users have fewer than {n_items + 5} unseen items" in capsys.readouterr().err
    assert "unknown user id" in errors(capsys, [*recommend, "--users", "99999", *out])
    assert "ids are integers" in errors(capsys, [*recommend, "--users", "ann", *out])
    assert "not allowed with" in errors(capsys, [*recommend, "--users", "1", "--users-file", "f", *out])


@pytest.mark.parametrize("name", ["yelp2018", "gowalla"])
def test_split_writes_a_published_benchmark_that_train_reads_back(name, tmp_path, capsys):
    folder = Path(os.environ.get("CONTRASTREC_DATA", "")) / name
    if not (folder / "train.txt").exists(): pytest.skip(f"{name} is not in CONTRASTREC_DATA (see ../shared/data)")
    from contrastrec.data import load_benchmark_split, load_split
    assert main(["split", "--benchmark", name, "--out", str(tmp_path / name)]) == 0
    assert "interactions to" in capsys.readouterr().out
    written, published = load_split(tmp_path / name), load_benchmark_split(name)
    for part in ("train", "valid", "test"):
        assert written.sizes()[part] == published.sizes()[part]
        pd.testing.assert_frame_equal(getattr(written, part).reset_index(drop=True),
                                      getattr(published, part).reset_index(drop=True), check_dtype=False)
