#!/usr/bin/env bash
# Run the whole test suite (tests/ + every notebook under nbval) under conditions that change the
# floating-point summation order the way another machine would: one thread instead of two, TensorFlow
# without oneDNN, and narrower vector instructions for oneDNN and OpenBLAS (what an older or different
# CPU runs). A test or stored output that passes here under every condition does not depend on them.
#
#   tools/portability_check.sh                 # every condition
#   tools/portability_check.sh threads1 isa    # some of them
#   PYTEST_ARGS="nbs/05_training.ipynb" tools/portability_check.sh isa
#
# Logs go to $LOGS (default: a fresh temporary folder); the last line says which conditions failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$PWD/.venv/bin/python}"
LOGS="${LOGS:-$(mktemp -d -t portability.XXXX)}"
declare -A CONDITIONS=(
  [default]=""
  [threads1]="OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1"
  [noonednn]="TF_ENABLE_ONEDNN_OPTS=0"
  [isa]="ONEDNN_MAX_CPU_ISA=SSE41 OPENBLAS_CORETYPE=Sandybridge NPY_DISABLE_CPU_FEATURES=X86_V3"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(default threads1 noonednn isa)
failed=()
for name in "${names[@]}"; do
  [ -n "${CONDITIONS[$name]+x}" ] || { echo "unknown condition $name; choose from ${!CONDITIONS[*]}" >&2; exit 2; }
  echo "== $name: ${CONDITIONS[$name]:-(no change)}"
  # shellcheck disable=SC2086
  env ${CONDITIONS[$name]} "$PY" -m pytest -q ${PYTEST_ARGS:-} > "$LOGS/$name.log" 2>&1
  rc=$?
  tail -n 1 "$LOGS/$name.log"
  [ $rc -eq 0 ] || { failed+=("$name"); grep -E "^(FAILED|ERROR)" "$LOGS/$name.log" | sed 's/^/   /'; }
done
echo "logs in $LOGS"
if [ ${#failed[@]} -gt 0 ]; then echo "portability check failed under: ${failed[*]}"; exit 1; fi
echo "portability check passed under: ${names[*]}"
