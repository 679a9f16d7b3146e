"The notebooks are the source: the module, README and stored outputs must match them."
import json
import re
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


def _code_cells(path: Path) -> list[str]:
    "The non-empty code cells of a notebook, as source text."
    cells = json.loads(path.read_text())["cells"]
    return [src for c in cells if c["cell_type"] == "code" and (src := "".join(c["source"]).strip())]


def _is_export(src: str) -> bool: return src.startswith("#| export")


def _export_lengths() -> dict[str, list[int]]:
    "Lines of code in each export cell (without the `#| export` line), per notebook."
    return {p.name: [len(s.splitlines()) - 1 for s in _code_cells(p) if _is_export(s)] for p in NOTEBOOKS}


def test_export_cells_are_short():
    lengths = _export_lengths()
    too_long = {name: [n for n in ns if n > 40] for name, ns in lengths.items() if any(n > 40 for n in ns)}
    assert not too_long, f"export cells over 40 lines (split them, one definition per cell): {too_long}"
    every = sorted(n for ns in lengths.values() for n in ns)
    assert every[len(every) // 2] <= 8, f"the median export cell has {every[len(every) // 2]} lines (at most 8)"


def test_every_exported_definition_is_followed_by_a_check():
    for path in NOTEBOOKS:
        cells = [s for s in _code_cells(path) if not re.fullmatch(r"(show_doc\([^\n]*\)\s*)+", s)]
        for src, after in zip(cells, cells[1:] + [""]):
            names = re.findall(r"^(?:def|class)\s+(\w+)", src, re.M)
            if not (_is_export(src) and names): continue
            checked = not _is_export(after) and re.search(r"\btest_\w+\(|\bassert\b", after)
            assert checked, f"{path.name}: {names} is not followed by a cell with fastcore.test checks"
