"""Training throughput of one process and of two worker processes, on TensorFlow and JAX, measured in one run; by hand.

The default configuration (`TrainConfig()`, sized to the data) trains on a benchmark split's train part with validation
off, `--epochs` epochs per setting, each setting in fresh processes and one after the other:

- TensorFlow, one process (the default backend);
- JAX, one process;
- JAX, two workers on this machine (`launch_workers`, chapter 5a), each feeding half of every batch.

Two workers under TensorFlow are not a setting: `MultiWorkerMirroredStrategy` cannot fit a Keras 3 model (chapter 5a
shows the failure). The first epoch of every setting (tracing or compiling the step) is not counted; examples/s is
the users of an epoch (the default objective's examples) over the median of the other epochs' seconds, and
interactions/s the train pairs those users hold. Peak memory is each process's maximum resident set size. All
workers share this machine's cores, so two workers here measure the engine's overhead, not a speed-up; on separate
machines each worker would have its own.

    source tools/env.sh && .venv/bin/python benchmarks/workers.py [gowalla] [--epochs 4]
"""
import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = (("tensorflow", 1), ("jax", 1), ("jax", 2))


def measure(name: str, epochs: int, out: str) -> None:
    "Train in this process (a worker if the environment says so) and write what was measured to `out` (worker 0)."
    from contrastrec.distributed import join_workers, workers_from_environment
    workers = workers_from_environment()
    if workers: join_workers(workers)
    import numpy as np
    from epoch_times import EpochTimes  # benchmarks/epoch_times.py, beside this script

    from contrastrec.data import encode, load_benchmark_split
    from contrastrec.training import TrainConfig, fit

    data = encode(load_benchmark_split(name))
    data = dataclasses.replace(data, valid=None)  # the throughput of training alone
    times = EpochTimes()
    fit(data, TrainConfig(epochs=epochs), callbacks=[times], verbose=0)
    if workers and workers.index: return
    seconds = float(np.median(times.seconds[1:]))
    users = len(np.unique(data.train[:, 0]))
    Path(out).write_text(json.dumps({
        "epoch_seconds": [round(s, 2) for s in times.seconds], "median_epoch_seconds": round(seconds, 2),
        "examples_per_s": round(users / seconds), "interactions_per_s": round(len(data.train) / seconds),
        "peak_rss_gib_worker0": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


def run_setting(name: str, backend: str, workers: int, epochs: int) -> dict:
    "One setting in fresh processes; what worker 0 measured, and the setting's wall time."
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "measured.json"
        command = [sys.executable, __file__, name, "--epochs", str(epochs), "--measure", str(out)]
        if workers > 1:
            command = [sys.executable, "-c", "import sys; from contrastrec.distributed import launch_workers; "
                       f"launch_workers(sys.argv[1:], {workers})", *command]
        started = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, "KERAS_BACKEND": backend},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return {"backend": backend, "workers": workers, **json.loads(out.read_text()),
                "wall_seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", default="gowalla", help="benchmark split (default gowalla)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per setting, the first not counted (default 4)")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure: return measure(args.name, args.epochs, args.measure)
    rows = [run_setting(args.name, backend, workers, args.epochs) for backend, workers in SETTINGS]
    base = rows[0]["examples_per_s"]
    for row in rows: row["vs_tensorflow_1"] = round(row["examples_per_s"] / base, 2)
    print(json.dumps({"dataset": args.name, "epochs": args.epochs, "cores": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
