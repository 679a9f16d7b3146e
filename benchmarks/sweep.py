"""Sweep of the shipped default model: every setting moved one at a time around `TrainConfig()`, selected on valid.

Each point trains the default configuration with one change, with early stopping on valid NDCG@20, and records
valid and test metrics (test only for the record: the selection reads valid). Points that benchmarks/ablations.py
already measured (temperatures 0.05, 0.1 and 0.5, history dropout, mean over positives, batches of 128, user ids)
are not repeated; chapter 7 reads both files. Writes benchmarks/results/sweep.json, one point at a time, so an
interrupted sweep keeps what it measured. Run by hand, not in CI (about 5 minutes per point on 2 cores):

    source tools/env.sh && nohup nice .venv/bin/python benchmarks/sweep.py > /tmp/sweep.log 2>&1 &
    source tools/env.sh && .venv/bin/python benchmarks/sweep.py tau_0.15 dim_256      # some points
"""
import json
import sys
from pathlib import Path

from ablations import run  # the same training and measurement as every ablation

OUT = Path(__file__).resolve().parent / "results" / "sweep.json"
POINTS = {
    "default": {},  # the default itself, re-measured with the code as it is now
    "tau_0.15": {"temperature": 0.15},
    "tau_0.25": {"temperature": 0.25},
    "tau_0.3": {"temperature": 0.3},
    "dim_256": {"dim": 256},
    "dim_1024": {"dim": 1024},
    "lr_5e-4": {"learning_rate": 5e-4},
    "lr_2e-3": {"learning_rate": 2e-3},
    "batch_16": {"batch_size": 16},
    "batch_64": {"batch_size": 64},
    # the rate and epochs pinned to the constant default's: left at 0, a cosine schedule brings its own (chapter 5)
    "cosine_schedule": {"lr_schedule": "cosine", "learning_rate": 1e-3, "epochs": 200},
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(POINTS):
        result = run(name, POINTS[name])
        points = json.loads(OUT.read_text())["points"] if OUT.exists() else {}  # re-read: keep the other points
        points[name] = {"changed": POINTS[name], **result}
        record = {"around": "TrainConfig()", "selected_on": "valid ndcg@20", "points": points}
        OUT.write_text(json.dumps(record, indent=1) + "\n")
        print(name, result["valid"]["ndcg@20"], result["test"]["ndcg@20"], result["epochs_run"], "epochs", flush=True)
