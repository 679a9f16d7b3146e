"""Training on several worker processes (chapter 5a), and item tables sharded across devices.

Every run here is a fresh set of processes on localhost, bounded by timeouts: a test that fails must not hang CI, and
a passing one must leave no worker behind.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("jax", reason="multi-process training runs on the JAX backend, a dev dependency")

from contrastrec.distributed import Workers, free_port, launch_workers  # noqa: E402

SCRIPT = Path(sys.executable).parent / "contrastrec"
SETTINGS = json.dumps({"dim": 32, "epochs": 8, "patience": 8})
# Two workers see the same global batches as one process, so their runs differ by the summation order of the
# all-reduced gradients only; on the machine this was written on they printed the same values to the last digit.
# Seed noise is larger: one JAX process with seeds 0, 1, 2, 3 reached 0.1734, 0.1667, 0.1630 and 0.1761 there (a
# spread of 0.013), so 0.005 is well within seed noise.
NDCG_TOLERANCE = 0.005


def quiet_env(**extra) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def processes_mentioning(text: str) -> list[int]:
    "The live processes whose command line contains `text` (this machine's /proc)."
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit(): continue
        try: cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError: continue
        if text in cmdline and int(proc.name) != os.getpid(): found.append(int(proc.name))
    return found


def port_is_free(port: int) -> bool:
    "Nothing listens on `port` (connections of the ended run may linger in TIME_WAIT: SO_REUSEADDR passes over those)."
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try: s.bind(("localhost", port))
        except OSError: return False
        return True


def best_valid(output: str) -> float:
    return float(re.search(r"best valid ndcg@20 ([0-9.]+)", output).group(1))


def train(split: Path, out: Path, *options: str, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "train", "--split", str(split), "--config", SETTINGS, *options,
                           "--out", str(out)], capture_output=True, text=True, env=quiet_env(**env), timeout=timeout)


def test_two_workers_train_like_one_process(ml150_split_folder):
    root, _ = ml150_split_folder
    started = time.monotonic()
    two = train(root / "split", root / "two_workers", "--workers", "2")
    took = time.monotonic() - started
    assert two.returncode == 0, two.stderr[-3000:]
    one = train(root / "split", root / "one_process", KERAS_BACKEND="jax")
    assert one.returncode == 0, one.stderr[-3000:]
    assert abs(best_valid(two.stdout) - best_valid(one.stdout)) <= NDCG_TOLERANCE, (two.stdout, one.stdout)
    assert took < 60, f"two workers took {took:.0f} s"
    saved = {p.name for p in (root / "two_workers").iterdir()}
    assert saved == {p.name for p in (root / "one_process").iterdir()} and "model.keras" in saved
    port = int(re.search(r"coordinator localhost:(\d+)", two.stdout).group(1))
    assert processes_mentioning(str(root / "two_workers")) == [] and port_is_free(port)


def test_a_dead_worker_stops_the_run_with_a_clear_error(ml150_split_folder, tmp_path):
    root, _ = ml150_split_folder
    out = tmp_path / "never"
    launcher = subprocess.Popen([str(SCRIPT), "train", "--split", str(root / "split"), "--config",
                                 json.dumps({"dim": 32, "epochs": 500, "patience": 500}), "--workers", "2",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=quiet_env())
    try:
        for line in launcher.stdout:  # wait for a trained epoch: both workers are inside the training loop
            if line.startswith("epoch"): break
        second = [pid for pid in processes_mentioning(str(out))
                  if b"KERAS_DISTRIBUTION_PROCESS_ID=1\0" in Path(f"/proc/{pid}/environ").read_bytes()]
        assert len(second) == 1, second
        os.kill(second[0], signal.SIGKILL)
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None: launcher.kill()
    assert launcher.returncode == 2
    assert "contrastrec train: error: worker 1 of 2 was killed by signal 9; the others were stopped" in err, err[-3000:]
    assert processes_mentioning(str(out)) == [] and not out.exists()


def test_without_a_launcher_a_dead_worker_ends_the_others_within_the_timeout(ml150_split_folder, tmp_path):
    "On a cluster nobody watches the workers: when worker 1 dies, JAX's heartbeat ends worker 0, within bounded time."
    root, _ = ml150_split_folder
    coordinator, out = f"localhost:{free_port()}", tmp_path / "never"
    argv = [str(SCRIPT), "train", "--split", str(root / "split"), "--config",
            json.dumps({"dim": 32, "epochs": 500, "patience": 500}), "--join-timeout", "10", "--out", str(out)]
    logs = [open(tmp_path / f"worker{i}.err", "w") for i in (0, 1)]
    workers = [subprocess.Popen(argv, stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL, stderr=logs[i],
                                text=True, env=quiet_env(**Workers(coordinator, 2, i).environment())) for i in (0, 1)]
    try:
        for line in workers[0].stdout:
            if line.startswith("epoch"): break
        workers[1].kill()
        workers[1].wait(10)
        started = time.monotonic()
        workers[0].communicate(timeout=120)
        took = time.monotonic() - started
    finally:
        for w in workers:
            if w.poll() is None: w.kill()
        for log in logs: log.close()
    assert workers[0].returncode != 0 and took < 120, (workers[0].returncode, took)
    assert processes_mentioning(str(out)) == [] and not out.exists()


def test_a_worker_alone_gives_up_after_the_join_timeout(ml150_split_folder, tmp_path):
    root, _ = ml150_split_folder
    started = time.monotonic()
    alone = train(root / "split", tmp_path / "alone", "--join-timeout", "5", timeout=120,
                  **Workers(f"localhost:{free_port()}", 2, 0).environment())
    assert alone.returncode != 0 and time.monotonic() - started < 90
    # JAX ends a process whose peers never register (SIGABRT) after the line join_workers printed
    assert "worker 0 of 2: joining the run at localhost:" in alone.stderr, alone.stderr[-3000:]
    assert "DEADLINE_EXCEEDED" in alone.stderr, alone.stderr[-3000:]


RESUMED = """
import sys
from contrastrec.distributed import join_workers, workers_from_environment
join_workers(workers_from_environment(), 60)
from contrastrec.data import encode, load_split
from contrastrec.training import TrainConfig, fit
config = TrainConfig(dim=32, epochs=int(sys.argv[3]), patience=10)
fit(encode(load_split(sys.argv[1])), config, checkpoint_dir=sys.argv[2])
"""


def test_two_workers_resume_from_the_chiefs_checkpoint(ml150_split_folder, tmp_path, capfd):
    "A run of 2 epochs, then the same run asked for 4: it resumes at epoch 3 from the backup worker 0 wrote."
    root, _ = ml150_split_folder
    for epochs in ("2", "4"):
        launch_workers([sys.executable, "-c", RESUMED, str(root / "split"), str(tmp_path / "checkpoint"), epochs], 2,
                       env=quiet_env())
    epochs_shown = [line.split()[1] for line in capfd.readouterr().out.splitlines() if line.startswith("epoch")]
    assert epochs_shown == ["1/2", "2/2", "3/4", "4/4"], epochs_shown
    assert (tmp_path / "checkpoint" / "backup").is_dir() and (tmp_path / "checkpoint" / "validation").is_dir()


SHARDED = textwrap.dedent("""
    import json, sys, numpy as np, keras
    from contrastrec.data import encode, load_split
    from contrastrec.distributed import item_table_sharding
    from contrastrec.training import (TrainConfig, cosine_scores, feature_tables, model_from_config, sized_config,
                                      user_inputs)
    data = encode(load_split(sys.argv[1]))
    config = sized_config(TrainConfig(dim=32), data)
    def scores(model): return cosine_scores(model, user_inputs(data), feature_tables(data, "item"))(np.arange(1, 51))
    plain = model_from_config(config, data)
    keras.distribution.set_distribution(item_table_sharding())
    sharded = model_from_config(config, data)
    sharded.set_weights(plain.get_weights())
    tables = {v.path: v.value for v in sharded.variables if v.path.endswith("embedding/embeddings")}
    shards = {p: sorted({tuple(s.data.shape) for s in t.addressable_shards}) for p, t in tables.items()}
    print(json.dumps({"shards": shards,
                      "shapes": {p: list(t.shape) for p, t in tables.items()},
                      "difference": float(np.abs(scores(sharded) - scores(plain)).max())}))
""")


def test_sharded_item_tables_score_like_unsharded(ml150_split_folder):
    root, _ = ml150_split_folder
    env = quiet_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = subprocess.run([sys.executable, "-c", SHARDED, str(root / "split")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert set(found["shards"]) == {"history_embedding/embeddings", "item_id_embedding/embeddings"}
    for path, (rows, width) in found["shapes"].items():
        assert found["shards"][path] == [[rows, width // 4]], (path, found["shards"][path])  # a quarter each
    assert found["difference"] < 1e-5, found["difference"]
