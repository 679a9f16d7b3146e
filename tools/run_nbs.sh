#!/usr/bin/env bash
# Export the module, then re-execute the given notebooks in place (all of nbs/ by default).
# Run before committing any notebook change: nbval compares against the stored outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
export PATH="$PWD/.venv/bin:$PATH"
nbs=("$@"); [ ${#nbs[@]} -gt 0 ] || nbs=(nbs/*.ipynb)
nbdev_export
for nb in "${nbs[@]}"; do
  echo "executing $nb"
  jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False \
    --ExecutePreprocessor.timeout=1200 "$nb"
done
nbdev_export
