"The README's quick start runs as written, on a CSV of real interactions."
import re
from pathlib import Path

import pandas as pd

from contrastrec.data import load_movielens_100k

ROOT = Path(__file__).resolve().parents[1]


def quick_start_code() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start on your own data", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quick_start_runs_on_a_csv(tmp_path, monkeypatch, capsys):
    interactions = load_movielens_100k().interactions
    interactions[interactions.user_id <= 100].to_csv(tmp_path / "interactions.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code = quick_start_code().replace("epochs=30", "epochs=3")  # the same code, shorter training
    exec(compile(code, "README quick start", "exec"), {})
    printed = capsys.readouterr().out
    assert "user_id" in printed and "item_id" in printed and "score" in printed
    assert (tmp_path / "my_model").is_dir()
