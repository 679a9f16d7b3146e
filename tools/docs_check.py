"""Offline check of the docs site, for machines without Quarto (tests/test_docs.py runs it).

What is checked:
1. nbdev's real processing step, through its Python API, with nbdev's Quarto and pip installers disabled:
   `refresh_quarto_yml` (writes nbs/nbdev.yml from settings.ini), `nbdev_sidebar` (a no-op here: settings.ini
   has custom_sidebar = True and the sidebar lives in _quarto.yml) and `proc_nbs(force=True)`, which writes
   _proc/, exactly what `nbdev_docs` hands to Quarto. tests/test_docs.py also checks Quarto's real inputs:
   _quarto.yml, its sidebar, nbs/nbdev.yml and their copies in _proc/.
2. A smoke check of the pages in a real browser. Each processed notebook is rendered to _site/<output-file> by
   nbconvert's stock HTML exporter, with only what a plain rendering needs: the cells nbdev hid are dropped,
   the leading `#|` lines (which Quarto consumes) are stripped, and the front matter's title and description
   head the page. Every page is loaded in headless Chromium, which runs MathJax 2 from Debian's libjs-mathjax,
   and its DOM is checked (`page_problems`): the title is the page's <title> and <h1>; every function and class
   the chapter's module exports is on the page outside the code cells' source (show_doc's output or the prose);
   every TeX span of the notebook was typeset by MathJax and no raw `$$` is left; the notebook's figures are
   images on the page; no `#|` line shows in a code block. `--screenshots` also screenshots the landing page
   into _site/screenshots/, checked to be a real page, for a human to look at.
   Without Chromium or libjs-mathjax the browser checks are skipped, saying why; with CI set they fail instead.

What is not checked: the Quarto site itself (its theme, navigation, search, code folding, cross-page links,
how Quarto applies the `#|` options). Quarto cannot be installed offline; the GitHub workflow
.github/workflows/deploy.yaml builds the real site with Quarto (`nbdev_docs`) and publishes it.

Usage: python tools/docs_check.py [--no-proc] [--build-only] [--screenshots]   (exit status 1 when a check fails)
"""
from __future__ import annotations

import argparse
import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS, PROC, SITE = ROOT / "nbs", ROOT / "_proc", ROOT / "_site"
QUARTO_YML = ROOT / "_quarto.yml"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1000,1300", "--allow-file-access-from-files", "--virtual-time-budget=30000"]
LOCAL_MATHJAX = Path("/usr/share/javascript/mathjax/MathJax.js")  # Debian's libjs-mathjax (MathJax 2.7)
_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")


# ---------------------------------------------------------------------------------------------- project
def source_notebooks() -> list[Path]:
    "The notebooks of the tutorial, nbs/*.ipynb."
    return sorted(NBS.glob("*.ipynb"))


def settings() -> configparser.SectionProxy:
    "settings.ini's [DEFAULT] section."
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def quarto_config() -> dict:
    "The parsed _quarto.yml."
    return yaml.safe_load(QUARTO_YML.read_text())


def _entries(items: list) -> list[str]:
    out = []
    for it in items:
        if isinstance(it, str): out.append(it)
        elif "contents" in it: out += _entries(it["contents"])
        elif "href" in it or "file" in it: out.append(it.get("href") or it["file"])
    return out


def sidebar_pages(cfg: dict | None = None) -> list[str]:
    "The files the site's sidebar lists, in order."
    return _entries((cfg or quarto_config())["website"]["sidebar"]["contents"])


def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def directives(src: str) -> tuple[dict, str]:
    "The leading `#| key: value` lines of a code cell as a dict, and the code without them."
    lines, found = src.splitlines(), {}
    while lines and _DIRECTIVE.match(lines[0]):
        k, v = _DIRECTIVE.match(lines.pop(0)).groups()
        found[k] = v
    return found, "\n".join(lines)


# ---------------------------------------------------------------------------------------------- 1. nbdev
def _refuse(*args, **kwargs):
    raise RuntimeError("the docs check must not install Quarto or run pip")


def process_notebooks() -> Path:
    "Run nbdev's docs processing of nbs/ into _proc/, in this process, never installing anything."
    import nbdev.quarto as nq
    from nbdev.serve import proc_nbs
    for name in ("_ensure_quarto", "install", "install_quarto", "system"): setattr(nq, name, _refuse)
    cwd = os.getcwd()
    os.chdir(ROOT)  # nbdev finds settings.ini from the working directory
    try:
        nq.refresh_quarto_yml()
        nq.nbdev_sidebar.__wrapped__()
        return proc_nbs(force=True, n_workers=0)  # 0: serially, here; workers would each import TensorFlow
    finally:
        os.chdir(cwd)


# ---------------------------------------------------------------------------------------------- 2. pages
def front_matter(nb: dict) -> dict:
    "The YAML front matter nbdev puts in the first (raw) cell of a processed notebook."
    first = nb["cells"][0] if nb["cells"] else {}
    src = "".join(first.get("source", ""))
    if first.get("cell_type") != "raw" or not src.startswith("---"): return {}
    return yaml.safe_load(src.strip().strip("-")) or {}


def page_file(proc_nb: Path) -> str:
    "The HTML file Quarto writes for a processed notebook (nbdev sets `output-file`)."
    return front_matter(read_nb(proc_nb)).get("output-file") or proc_nb.with_suffix(".html").name


def plain_notebook(nb: dict) -> dict:
    "A processed notebook as nbconvert can show it: front matter as a heading, hidden cells dropped, no `#|` lines."
    fm = front_matter(nb)
    head = f"# {fm.get('title', '')}" + (f"\n\n{fm['description']}" if fm.get("description") else "")
    cells = [{"cell_type": "markdown", "id": "page-title", "metadata": {}, "source": head}]
    for i, cell in enumerate(nb["cells"][1:] if fm else nb["cells"]):
        if "source" not in cell: continue  # nbdev deleted it (`#| hide`, `#| export`)
        cell = {**cell, "id": f"cell-{i}", "source": "".join(cell["source"])}
        if cell["cell_type"] == "code": cell["source"] = directives(cell["source"])[1]
        cells.append(cell)
    return {**nb, "metadata": {**nb.get("metadata", {}), "title": fm.get("title", "")}, "cells": cells}


def render_pages() -> dict[str, Path]:
    "Render every processed notebook in _proc/ to _site/<output-file>; returns {notebook name: page path}."
    import nbformat
    from nbconvert import HTMLExporter
    shutil.rmtree(SITE, ignore_errors=True)
    SITE.mkdir()
    exporter = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    if LOCAL_MATHJAX.is_file(): exporter.mathjax_url = LOCAL_MATHJAX.as_uri() + "?config=TeX-AMS_CHTML-full,Safe"
    written = {}
    for p in sorted(PROC.glob("*.ipynb")):
        body, _ = exporter.from_notebook_node(nbformat.from_dict(plain_notebook(nbformat.read(p, as_version=4))))
        written[p.name] = SITE / page_file(p)
        written[p.name].write_text(body)
    return written


# ---------------------------------------------------------------------------------------------- 2. checks
def browser_missing() -> str | None:
    "Why the pages cannot be checked in a browser here (None when they can)."
    missing = [what for what, ok in (("chromium", chromium()), ("libjs-mathjax", LOCAL_MATHJAX.is_file())) if not ok]
    if missing: return f"{' and '.join(missing)} not installed: apt-get install -y chromium libjs-mathjax"


def chromium() -> str | None:
    "The Chromium executable on PATH, if any."
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(page: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=180).stdout


def rendered_dom(page: Path) -> str:
    "The page's DOM after its scripts ran (MathJax included), from headless Chromium."
    return _chromium(page, "--dump-dom")


def rendered_doms(pages: list[Path]) -> list[str]:
    "`rendered_dom` of each page, a few Chromium processes at a time."
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool: return list(pool.map(rendered_dom, pages))


def screenshot(page: Path, png: Path) -> Path:
    "Screenshot a local page with headless Chromium (1000x1300)."
    _chromium(page, f"--screenshot={png}")
    return png


def exported_names(src_nb: dict) -> list[str]:
    "The functions and classes in `__all__` of the module a notebook exports to, read without importing it."
    code = ["".join(c["source"]) for c in src_nb["cells"] if c["cell_type"] == "code"]
    exp = next((m[1] for s in code if (m := re.search(r"^#\|\s*default_exp\s+(\S+)", s, re.M))), None)
    if exp is None: return []
    tree = ast.parse((ROOT / settings()["lib_path"] / (exp.replace(".", "/") + ".py")).read_text())
    public = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", "") == "__all__" for t in n.targets)), [])
    # Constants are left out: nbdev documents functions and classes (show_doc) and hides `#| export` source.
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return [name for name in public if name in defined]


_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?\$", re.S)


def math_spans(nb: dict) -> list[str]:
    "The LaTeX (`$...$`, `$$...$$`) in a notebook's markdown cells, code spans and fences left out."
    spans = []
    for c in nb["cells"]:
        if c["cell_type"] != "markdown": continue
        md = re.sub(r"```.*?```|`[^`\n]*`", "", "".join(c["source"]), flags=re.S)
        spans += _MATH.findall(md)
    return spans


def image_outputs(nb: dict) -> int:
    "How many image outputs a notebook's code cells have."
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
               if any(k.startswith("image/") for k in o.get("data", {})))


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def typeset_math_problems(src_nb: dict, soup) -> list[str]:
    "Empty when every TeX span of the notebook became a MathJax script in the (parsed) DOM and no raw `$$` is left."
    # MathJax 2 moves each TeX span it typesets into a <script type="math/tex">, next to what it renders.
    typeset = {_squash(s.get_text()) for s in soup.find_all("script", type=re.compile("^math/tex"))}
    spans = math_spans(src_nb)
    untypeset = [m for m in spans if _squash(m.strip("$")) not in typeset]
    problems = []
    if untypeset:
        problems.append(f"{len(untypeset)} of {len(spans)} math spans not typeset by MathJax: {untypeset[:2]}")
    if typeset and not soup.find(class_=re.compile(r"^MathJax(_CHTML|_Display)?$")):
        problems.append("MathJax left its input but rendered nothing")
    raw = re.findall(r"\$\$.{0,40}", soup.body.get_text(" ") if soup.body else "")
    if raw: problems.append(f"raw TeX left on the page: {raw[:2]}")
    return problems


def page_problems(src_nb: dict, proc_nb: dict, dom: str) -> list[str]:
    "What is wrong with a page, given its notebook, the processed notebook and the page's DOM after scripts ran."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(dom, "html.parser")
    for anchor in soup.find_all("a", class_="anchor-link"): anchor.decompose()  # the ¶ after each heading
    problems = []
    title = front_matter(proc_nb).get("title")
    if not title: problems.append("the processed notebook has no title (start the notebook with a `# Title` cell)")
    elif ((soup.title.string if soup.title else "") != title
          or title not in [h.get_text().strip() for h in soup.find_all("h1")]):
        problems.append(f"title {title!r} missing from <title> or <h1>")
    problems += typeset_math_problems(src_nb, soup)
    want, imgs = image_outputs(proc_nb), len(soup.find_all("img", src=re.compile("^data:image/")))
    if imgs < want or (image_outputs(src_nb) and not imgs):
        problems.append(f"images missing: {image_outputs(src_nb)} in the notebook, {want} after nbdev's processing "
                        f"(stale _proc/? rerun without --no-proc), {imgs} on the page")
    leaked = [line for pre in soup.find_all("pre") for line in pre.get_text().splitlines()
              if line.lstrip().startswith("#|")]
    if leaked: problems.append(f"cell options leaked into code blocks: {leaked[:3]}")
    for code in soup.find_all(class_="jp-InputArea-editor"): code.decompose()  # the names must not come from code
    text = _squash(soup.body.get_text(" ") if soup.body else "")
    missing = [n for n in exported_names(src_nb) if not re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text)]
    if missing: problems.append(f"exported functions/classes not on the page: {missing}")
    return problems


def page_path(name: str) -> Path | None:
    "The page in _site/ of the notebook nbs/<name>, if nbdev processed it and it was rendered."
    page = SITE / page_file(PROC / name) if (PROC / name).exists() else None
    return page if page and page.exists() else None


def check_pages(names: list[str]) -> dict[str, list[str]]:
    "`page_problems` of each notebook's page, loaded in Chromium."
    pages = {n: page_path(n) for n in names}
    problems = {n: [f"nbdev did not process {n} or it was not rendered"] for n in names if not pages[n]}
    done = [n for n in names if pages[n]]
    for n, dom in zip(done, rendered_doms([pages[n] for n in done])):
        problems[n] = page_problems(read_nb(NBS / n), read_nb(PROC / n), dom)
    return problems


def screenshot_problems(png: Path, min_bytes: int = 20_000) -> list[str]:
    "Empty when a screenshot is a real page: big enough, many colours, not one flat background."
    from PIL import Image
    if not png.exists(): return [f"{png} was not written"]
    problems = [] if png.stat().st_size >= min_bytes else [f"{png} is only {png.stat().st_size} bytes"]
    img = Image.open(png).convert("RGB")
    colours = img.getcolors(maxcolors=img.width * img.height)
    background = max(colours)[0] / (img.width * img.height)
    if len(colours) < 50: problems.append(f"{png} has only {len(colours)} colours")
    if background > 0.98: problems.append(f"{png} is {background:.1%} one colour")
    return problems


_EXECUTED_ANYWAY = {"export", "exports", "exporti", "exec_doc"}


def mixed_import_cells(nb: dict) -> list[str]:
    """Cells nbdev's docs step runs because they import, that also run other code ("cell <index>: <code>").
    nbdev's FAQ: keep imports in cells of their own, or the docs build runs (and can crash on) that code."""
    bad = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code": continue
        opts, code = directives("".join(cell["source"]))
        if opts.keys() & _EXECUTED_ANYWAY or opts.get("eval") == "false" or "nbdev_export()" in code: continue
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        try: body = ast.parse(code).body
        except SyntaxError: continue
        nodes = [n for stmt in body for n in ast.walk(stmt)]
        other = [s for s in body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and \
           any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes):
            bad.append(f"cell {i}: {ast.get_source_segment(code, (other or body)[0]).splitlines()[0]}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-proc", action="store_true", help="reuse _proc/ instead of running nbdev's processing")
    ap.add_argument("--build-only", action="store_true", help="process and render, skip the checks")
    ap.add_argument("--screenshots", action="store_true",
                    help="also screenshot the landing page into _site/screenshots/")
    args = ap.parse_args(argv)
    if not args.no_proc: process_notebooks()
    render_pages()
    if args.build_only: return 0
    missing = browser_missing()
    if missing:
        skipped = "" if os.environ.get("CI") else " (skipped: CI is unset)"
        print(f"pages not checked in a browser: {missing}{skipped}")
    failed = bool(missing and os.environ.get("CI"))
    names = [nb.name for nb in source_notebooks()]
    pages = {} if missing else check_pages(names)
    for name in names:
        mixed = mixed_import_cells(read_nb(NBS / name))
        problems = pages.get(name, []) + [f"imports mixed with code: {c!r}" for c in mixed]
        failed |= bool(problems)
        print(f"{name:32} {'; '.join(problems) or ('ok' if not missing else 'imports ok, page not checked')}")
    if args.screenshots and not missing:
        (SITE / "screenshots").mkdir(exist_ok=True)
        png = screenshot(page_path("index.ipynb"), SITE / "screenshots" / "index.png")
        problems = screenshot_problems(png)
        failed |= bool(problems)
        print(f"{png.relative_to(ROOT)}  {'ok' if not problems else '; '.join(problems)}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
