"The package's top-level names, and the linter that keeps the code base clean."
import subprocess
import sys
from pathlib import Path

import pytest

import contrastrec

ROOT = Path(__file__).resolve().parents[1]


def test_every_top_level_name_resolves_to_its_chapter_definition():
    import importlib
    for name, module in contrastrec._MODULE_OF.items():
        assert getattr(contrastrec, name) is getattr(importlib.import_module(f"contrastrec.{module}"), name), name
    assert sorted(contrastrec.__all__) == sorted(contrastrec._MODULE_OF)


def test_importing_the_package_does_not_load_tensorflow():
    code = "import sys, contrastrec; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        contrastrec.no_such_name


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    run = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"ruff check . (settings in pyproject.toml) reported:\n{run.stdout[-3000:]}"


def test_generated_modules_fit_120_columns_apart_from_nbdevs_all():
    for path in sorted((ROOT / "contrastrec").glob("*.py")):
        if path.name == "_modidx.py": continue  # nbdev's index of names, not code a reader reads
        text = path.read_text()
        start = text.find("__all__ = [")
        body = text if start < 0 else text[:start] + text[text.index("]", start) + 1:]
        long = [line for line in body.splitlines() if len(line) > 120]
        assert not long, f"{path.name}: {len(long)} lines over 120 columns (fix them in the notebook), e.g. {long[0]!r}"
