#!/usr/bin/env bash
# Record a full `contrastrec demo` run with the default settings (trained to convergence) and its
# wall time and peak memory, as chapter 7 shows it: benchmarks/results/demo.txt.
#   benchmarks/demo_run.sh            # from the repository root, .venv installed
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/demo.txt
tmp=$(mktemp)
{
  echo "# contrastrec demo, $(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "# command: /usr/bin/time -v .venv/bin/contrastrec demo"
  /usr/bin/time -v .venv/bin/contrastrec demo 2> "$tmp.time"
  grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$tmp.time" | sed 's/^\s*/# /'
} > "$tmp"
mv "$tmp" "$out"
rm -f "$tmp.time"
tail -n 25 "$out"
