#!/usr/bin/env bash
# Execute every notebook top to bottom in a fresh Jupyter kernel as a reader would run it: an empty home
# folder whose cache holds only MovieLens-100K, and none of the project's environment variables (no
# CONTRASTREC_*, IPYTHONDIR, TF_CPP_MIN_LOG_LEVEL or PYTHONHASHSEED). Outputs go to a temporary folder;
# the notebooks in nbs/ are not touched.
#   tools/fresh_kernel_check.sh [MOVIELENS_FOLDER]     (default: ../shared/data/ml-100k)
set -euo pipefail
cd "$(dirname "$0")/.."
movielens="${1:-../shared/data/ml-100k}"
test -f "$movielens/u.data" || { echo "$movielens is not the ml-100k folder" >&2; exit 2; }
home=$(mktemp -d) out=$(mktemp -d)
mkdir -p "$home/.cache/contrastrec"
cp -r "$movielens" "$home/.cache/contrastrec/ml-100k"
status=0
for nb in nbs/*.ipynb; do
  if env -i HOME="$home" PATH="$PWD/.venv/bin:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
       jupyter nbconvert --to notebook --execute --output-dir "$out" --ExecutePreprocessor.timeout=1200 "$nb" \
       > "$out/$(basename "$nb").log" 2>&1; then
    echo "ok      $nb"
  else
    echo "FAILED  $nb (log: $out/$(basename "$nb").log)"; status=1
  fi
done
echo "executed copies in $out; the reader's cache in $home/.cache/contrastrec: $(ls "$home/.cache/contrastrec" | tr '\n' ' ')"
exit $status
