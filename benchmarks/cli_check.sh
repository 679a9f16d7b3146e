#!/usr/bin/env bash
# The must-show check of the benchmark: the default model trained and served through the command line on
# ml100k-v1, its recommendations scored by the independent pandas-only scorer (run by hand, not in CI).
#   bash benchmarks/cli_check.sh WORK_DIR           # writes benchmarks/results/cli_check.json
#   bash benchmarks/cli_check.sh WORK_DIR --refit   # train --refit; writes benchmarks/results/cli_check_refit.json
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
work="$1"
refit="${2:-}"
result="benchmarks/results/cli_check${refit:+_refit}.json"
# The ml100k-v1 split folder: $CONTRASTREC_BENCHMARKS/ml100k-v1 if set, else the cache (rebuilt from MovieLens if needed).
split=$(.venv/bin/python -c "import os; from contrastrec.data import default_cache_dir, load_benchmark_split; load_benchmark_split('ml100k-v1'); print(os.path.join(os.environ.get('CONTRASTREC_BENCHMARKS') or default_cache_dir() / 'benchmarks', 'ml100k-v1'))" 2>/dev/null)
start=$(date +%s)
.venv/bin/contrastrec train --split "$split" --features movielens-100k $refit --out "$work/model"
trained=$(date +%s)
.venv/bin/contrastrec recommend --model "$work/model" --k 50 --out "$work/recs.tsv"
.venv/bin/python benchmarks/score_recs.py "$work/recs.tsv" "$split" --out "$work/score.json"
.venv/bin/contrastrec evaluate --model "$work/model" --test "$split/test.tsv" > "$work/evaluate.json"
.venv/bin/python - "$work" "$((trained - start))" "$result" <<'PY'
import json, sys
work, seconds, result = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {"independent_scorer": json.load(open(f"{work}/score.json")), "contrastrec_evaluate": json.load(open(f"{work}/evaluate.json")),
       "train_wall_seconds": seconds, "config": json.load(open(f"{work}/model/config.json"))["train_config"]}
open(result, "w").write(json.dumps(out, indent=1))
print(json.dumps({k: out["independent_scorer"][k] for k in ("ndcg@20", "recall@20", "seen_items_recommended")}))
PY
