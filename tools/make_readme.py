"""Regenerate README.md from nbs/index.ipynb without Quarto (`nbdev_readme` needs Quarto).

Usage: python tools/make_readme.py [--check]   (--check exits 1 when README.md is stale)
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py (or nbdev_readme): do not edit. -->\n\n"


def _hidden(src: str) -> bool:
    return bool(re.search(r"^#\|\s*(hide|include:\s*false)\b", src, re.M))


def _code(src: str) -> str:
    return "\n".join(line for line in src.splitlines() if not line.startswith("#|")).strip()


def _outputs(cell: dict) -> list:
    texts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stdout":
            texts.append("".join(o["text"]))
        elif "data" in o and "text/markdown" in o["data"]:
            texts.append(("md", "".join(o["data"]["text/markdown"])))
        elif "data" in o and "text/plain" in o["data"] and not {"image/png", "text/html"} & o["data"].keys():
            texts.append("".join(o["data"]["text/plain"]))
    return texts


def render(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    "Markdown for README.md: markdown cells verbatim, visible code cells with their text output."
    nb = json.loads(nb_path.read_text())
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(src.strip())
        elif cell["cell_type"] == "code" and not _hidden(src):
            if _code(src) and not re.search(r"^#\|\s*echo:\s*false", src, re.M):
                parts.append(f"```python\n{_code(src)}\n```")
            for out in _outputs(cell):
                parts.append(out[1].strip() if isinstance(out, tuple) else f"```\n{out.rstrip()}\n```")
        elif cell["cell_type"] == "code":
            for out in _outputs(cell):
                if isinstance(out, tuple): parts.append(out[1].strip())
    text = "\n\n".join(p for p in parts if p)
    return HEADER + re.sub(r"\]\((\d\d[a-z]?_\w+\.ipynb)\)", r"](nbs/\1)", text) + "\n"


if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        sys.exit(0 if readme.read_text() == text else 1)
    readme.write_text(text)
