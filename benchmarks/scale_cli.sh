#!/usr/bin/env bash
# Issue 10's must-show on a LightGCN-format benchmark: the default model trained and served through the command line
# with no configuration, its top-50 scored by the independent pandas-only scorer (run by hand, not in CI).
#   bash benchmarks/scale_cli.sh yelp2018 WORK_DIR [NOTE]   # writes benchmarks/results/scale_cli_yelp2018.json
# NOTE (optional) is stored as the result's "note", e.g. that other jobs shared the cores during the run.
# A library model other than the default: CONFIG (a `train --config` JSON) and LABEL (the result's name suffix), e.g.
#   CONFIG='{"user_history": false, "user_ids": true}' LABEL=mf bash benchmarks/scale_cli.sh yelp2018 WORK_DIR
#   # writes benchmarks/results/scale_cli_yelp2018_mf.json: matrix factorisation under the default sampled softmax
# REFIT=1 adds `train --refit` (after valid chooses the epochs, the model is trained again on train + valid), e.g.
#   REFIT=1 LABEL=refit bash benchmarks/scale_cli.sh yelp2018 WORK_DIR
# Prints the wall time and peak resident memory (GNU time) of `train` and of `recommend`. Writes the result's JSON
# (with the processor and the commit) and its log: a first line naming the command, date, processor, NOTE and
# commit, then what `train` and `recommend` printed (chapter 7 reads the epochs and the best epoch from it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
name="$1"; work="$2"; note="${3:-}"; config="${CONFIG:-}"; label="${LABEL:-}"; refit="${REFIT:+--refit}"; result="scale_cli_${name}${label:+_$label}"
mkdir -p "$work"
.venv/bin/contrastrec split --benchmark "$name" --out "$work/split" > /dev/null
/usr/bin/time -f "%e %M" -o "$work/train.time" .venv/bin/contrastrec train --split "$work/split" --out "$work/model" \
  ${config:+--config "$config"} $refit | tee "$work/train.out"
/usr/bin/time -f "%e %M" -o "$work/recommend.time" \
  .venv/bin/contrastrec recommend --model "$work/model" --k 50 --out "$work/recs.tsv" | tee "$work/recommend.out"
.venv/bin/python benchmarks/score_recs.py "$work/recs.tsv" "$work/split" --k 20 50 --out "$work/score.json"
.venv/bin/python - "$work" "$name" "$note" "$config" "$label" "$result" "$refit" <<'PY'
import datetime, json, os, sys
sys.path.insert(0, "benchmarks")
from machine import code_version, cpu_model
work, name, note, config, label, result, refit = sys.argv[1:8]
def timed(step):
    seconds, kib = open(f"{work}/{step}.time").read().split()[-2:]
    return {"wall_seconds": float(seconds), "peak_rss_gib": round(int(kib) / 2**20, 2)}
cpu, code = cpu_model(), code_version()
command = f"bash benchmarks/scale_cli.sh {name} WORK_DIR"
if label: command = f"LABEL={label} {command}"
if refit: command = f"REFIT=1 {command}"
if config: command = f"CONFIG='{config}' {command}"
out = {"command": command, **({"note": note} if note else {}),
       "machine": {"cpu": cpu, "cpus": os.cpu_count(), "code": code},
       "independent_scorer": json.load(open(f"{work}/score.json")),
       "train": timed("train"), "recommend": timed("recommend"),
       "config": json.load(open(f"{work}/model/config.json"))["train_config"]}
summary = json.dumps({k: out[k] for k in ("train", "recommend")}) + " " + json.dumps(out["independent_scorer"])
header = (f"# {command}   ({datetime.date.today()}, {os.cpu_count()} cores, {cpu}{', ' + note if note else ''}; "
          f"the code of {code})")
steps = [open(f"{work}/{step}.out").read().rstrip("\n") for step in ("train", "recommend")]
open(f"benchmarks/results/{result}.json", "w").write(json.dumps(out, indent=1) + "\n")
open(f"benchmarks/results/{result}.log", "w").write("\n".join([header, *steps, summary]) + "\n")
print(summary)
PY
