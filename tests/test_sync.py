"The notebooks are the source: the module, README and stored outputs must match them."
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))


def test_module_matches_notebooks(tmp_path):
    before = {p: p.read_text() for p in (ROOT / "contrastrec").glob("*.py")}
    subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], cwd=ROOT, check=True, capture_output=True)
    after = {p: p.read_text() for p in (ROOT / "contrastrec").glob("*.py")}
    stale = sorted(p.name for p in after if before.get(p) != after[p])
    assert not stale, f"contrastrec/ was out of sync with nbs/ (nbdev_export changed {stale}); commit the export"


def test_readme_matches_index_notebook():
    sys.path.insert(0, str(ROOT / "tools"))
    from make_readme import render
    assert (ROOT / "README.md").read_text() == render(), "README.md is stale: run python tools/make_readme.py"


def test_notebooks_are_executed():
    for path in NOTEBOOKS:
        cells = [c for c in json.loads(path.read_text())["cells"]
                 if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        unrun = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
        assert not unrun, (f"{path.name}: code cells {unrun} were not executed "
                           f"(run tools/run_nbs.sh {path.relative_to(ROOT)})")
        counts = [c["execution_count"] for c in cells]
        assert counts == sorted(counts), f"{path.name}: cells were executed out of order"
