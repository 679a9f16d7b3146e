# Source me: the environment the notebooks are executed and tested in.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export IPYTHONDIR="$ROOT/.ipython" TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0
export CONTRASTREC_DATA="${CONTRASTREC_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
