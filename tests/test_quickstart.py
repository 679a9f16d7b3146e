"The README's quick start runs as written, on a CSV of real interactions."
import re
import subprocess
import sys
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


def test_quick_start_command_lines_run_on_a_csv(tmp_path):
    "The README's command-line version of the quick start, line by line, with the installed script."
    interactions = load_movielens_100k().interactions
    interactions[interactions.user_id <= 100].to_csv(tmp_path / "interactions.csv", index=False)
    section = (ROOT / "README.md").read_text().split("## Quick start on your own data", 1)[1]
    lines = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    script = Path(sys.executable).parent / "contrastrec"
    for line in lines:
        line = line.replace('"epochs": 30', '"epochs": 3')
        assert line.startswith("contrastrec ")
        done = subprocess.run(str(script) + line.removeprefix("contrastrec"), shell=True, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        only_embedding_notes = all(note.startswith("embedded ") for note in done.stderr.splitlines())
        assert done.returncode == 0 and only_embedding_notes, f"{line}\n{done.stderr}"
    assert len(pd.read_csv(tmp_path / "recs.tsv", sep="\t")) == 10 * 100
