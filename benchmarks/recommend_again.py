"""Serve the saved model of an earlier `scale_cli.sh` run again, with today's code: the wall time and peak resident
memory (GNU time) of `contrastrec recommend --k 50`, next to the run's own, and whether the top-50 lists are the same
file byte for byte. It measures a change to the serving path without training again.

    source tools/env.sh && .venv/bin/python benchmarks/recommend_again.py yelp2018 WORK_DIR [--label intel] [--note ...]

WORK_DIR is the folder the run was given (its `model/` and `recs.tsv` are read); the result is stored under the
run's name (`scale_cli_yelp2018_intel`) in benchmarks/results/recommend_again.json, next to earlier ones.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import code_version, cpu_model  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def serve(model: Path, out: Path) -> dict:
    "Wall seconds and peak resident GiB of one `contrastrec recommend --k 50` writing `out`."
    times = out.with_suffix(".time")
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(times), ".venv/bin/contrastrec", "recommend",
                    "--model", str(model), "--k", "50", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    seconds, kib = times.read_text().split()[-2:]
    return {"wall_seconds": float(seconds), "peak_rss_gib": round(int(kib) / 2**20, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset")
    p.add_argument("work", type=Path)
    p.add_argument("--label", default="", help="the run's LABEL, if it had one")
    p.add_argument("--note", default="", help="stored with the result (e.g. what else ran on the machine)")
    a = p.parse_args()
    name = f"scale_cli_{a.dataset}{'_' + a.label if a.label else ''}"
    result = RESULTS / f"{name}.json"
    if not result.exists():
        sys.exit(f"no stored run {name}: give the dataset and --label of a benchmarks/scale_cli.sh result.")
    run = json.loads(result.read_text())
    if not (a.work / "model").is_dir() or not (a.work / "recs.tsv").is_file():
        sys.exit(f"{a.work} has no model/ and recs.tsv: give the WORK_DIR the run {name} was made in.")
    with tempfile.TemporaryDirectory() as tmp:
        recs = Path(tmp) / "recs.tsv"
        now = serve(a.work / "model", recs)
        same = filecmp.cmp(recs, a.work / "recs.tsv", shallow=False)
    command = f"python benchmarks/recommend_again.py {a.dataset} WORK_DIR" + (f" --label {a.label}" if a.label else "")
    out = {"command": command,
           **({"note": a.note} if a.note else {}),
           "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "code": code_version()},
           "dim": run["config"]["dim"], "run": run["recommend"], "again": now, "same_recommendations": same}
    path = RESULTS / "recommend_again.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**stored, name: out}, indent=1) + "\n")
    print(name, json.dumps(out))


if __name__ == "__main__":
    main()
