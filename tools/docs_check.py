"""Offline check of the docs site, for machines without Quarto (tests/test_docs.py runs it).

1. nbdev's real processing step, through its Python API, with nbdev's Quarto and pip installers disabled:
   `refresh_quarto_yml` (writes nbs/nbdev.yml from settings.ini), `nbdev_sidebar` (a no-op here: settings.ini
   has custom_sidebar = True and the sidebar lives in _quarto.yml) and `proc_nbs(force=True)`, which writes
   _proc/, exactly what `nbdev_docs` hands to Quarto.
2. An approximate rendering of each processed page to _site/<output-file> with nbconvert: the page names,
   titles, show_doc blocks, math source, figures and folded long cells of the Quarto site, none of its theme.
   The pages load MathJax 2 from Debian's libjs-mathjax (/usr/share/javascript/mathjax) where it is installed,
   so the math is typeset offline; elsewhere they reference MathJax's CDN, and offline the math stays TeX source.
3. Checks of every page (`page_problems`) and, where Chromium is installed, screenshots (`screenshot`) and a
   check that the math was typeset (`typeset_math_problems`).

Usage: python tools/docs_check.py [--no-proc] [--screenshots]   (exit status 1 when a check fails)
"""
from __future__ import annotations

import argparse
import ast
import configparser
import html
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
QUARTO_YML, FOLD_FILTER = ROOT / "_quarto.yml", ROOT / "nbs" / "fold_long_cells.lua"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1000,1300"]
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


def fold_max_lines() -> int:
    "Code cells longer than this are folded; the number is read from the Quarto filter that does the folding."
    return int(re.search(r"MAX_LINES\s*=\s*(\d+)", FOLD_FILTER.read_text()).group(1))


# ---------------------------------------------------------------------------------------------- step 1
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


# ---------------------------------------------------------------------------------------------- step 2
def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def front_matter(nb: dict) -> dict:
    "The YAML front matter nbdev puts in the first (raw) cell of a processed notebook."
    first = nb["cells"][0] if nb["cells"] else {}
    src = "".join(first.get("source", ""))
    if first.get("cell_type") != "raw" or not src.startswith("---"): return {}
    return yaml.safe_load(src.strip().strip("-")) or {}


def page_file(proc_nb: Path) -> str:
    "The HTML file Quarto writes for a processed notebook (nbdev sets `output-file`)."
    return front_matter(read_nb(proc_nb)).get("output-file") or proc_nb.with_suffix(".html").name


def directives(src: str) -> tuple[dict, str]:
    "The leading `#| key: value` lines of a code cell as a dict, and the code without them."
    lines, found = src.splitlines(), {}
    while lines and _DIRECTIVE.match(lines[0]):
        k, v = _DIRECTIVE.match(lines.pop(0)).groups()
        found[k] = v
    return found, "\n".join(lines)


def _strip_pandoc_attrs(md: str) -> str:
    return re.sub(r"(\]\([^)\s]*\))\{[^}]*\}", r"\1", md)  # [text](url){target="_blank" ...}


def _link_pages(md: str, pages: dict[str, str]) -> str:
    return re.sub(r"\]\(([\w-]+\.ipynb)(#[^)]*)?\)", lambda m: f"]({pages.get(m[1], m[1])}{m[2] or ''})", md)


def _tag(cell: dict, tag: str) -> None:
    cell.setdefault("metadata", {}).setdefault("tags", []).append(tag)


def _truthy(v: str | None) -> bool:
    return str(v).strip().lower() in ("true", "1", "show")


def prepare_for_html(nb: dict, pages: dict[str, str]) -> dict:
    "Turn a processed notebook into what Quarto would show: title on top, `#|` options applied and removed."
    fm, fold_at = front_matter(nb), fold_max_lines()
    cells = nb["cells"][1:] if fm else nb["cells"]
    head = f"# {fm.get('title', '')}" + (f"\n\n*{fm['description']}*" if fm.get("description") else "")
    out = [{"cell_type": "markdown", "id": "page-title", "metadata": {}, "source": head}]
    for i, cell in enumerate(cells):
        if "source" not in cell: continue  # nbdev deleted it (`#| hide`, `#| export`)
        cell = {"id": f"cell-{i}", **json.loads(json.dumps(cell))}
        cell["source"] = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            cell["source"] = _link_pages(_strip_pandoc_attrs(cell["source"]), pages)
        elif cell["cell_type"] == "code":
            opts, cell["source"] = directives(cell["source"])
            if opts.get("include") == "false": continue
            if opts.get("echo") == "false" or not cell["source"].strip(): _tag(cell, "remove_input")
            if opts.get("output") == "false": _tag(cell, "remove_output")
            fold = opts.get("code-fold")
            if _truthy(fold) or (fold is None and len(cell["source"].splitlines()) > fold_at): _tag(cell, "code-fold")
            for o in cell.get("outputs", []):
                md = o.get("data", {}).get("text/markdown")
                if md is not None: o["data"]["text/markdown"] = _strip_pandoc_attrs("".join(md))
        out.append(cell)
    meta = {**nb.get("metadata", {}), "title": fm.get("title", "")}
    return {**nb, "metadata": meta, "cells": out}


_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block extra_css %}<style>{{ resources.site_css }}</style>{% endblock extra_css %}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.site_nav }}
<main>
{%- endblock body_header -%}
{% block input_group -%}
{%- if 'code-fold' in cell.metadata.get('tags', []) -%}
<details class="code-fold"><summary>Show the code</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock input_group %}
"""

_SITE_CSS = """
body { display: flex; align-items: flex-start; margin: 0; }
nav.site-sidebar { flex: 0 0 210px; position: sticky; top: 0; padding: 1rem; font: 14px sans-serif;
  background: #2780e3; min-height: 100vh; box-sizing: border-box; }
nav.site-sidebar a { color: #fff; text-decoration: none; display: block; padding: .25rem 0; }
nav.site-sidebar a.active { font-weight: bold; text-decoration: underline; }
nav.site-sidebar .site-title { font-size: 18px; font-weight: bold; margin-bottom: .8rem; }
main { flex: 1; min-width: 0; padding: 0 1.5rem; }
body.jp-Notebook { padding: 0; }
details.code-fold > summary { cursor: pointer; color: #2780e3; }
div.highlight pre { background: #f7f7f7; padding: .5rem; border-radius: 4px; }
"""


def site_nav(current: str, titles: dict[str, tuple[str, str]]) -> str:
    "A sidebar like the site's: the pages in _quarto.yml order (those that exist), and the repository link."
    cfg = quarto_config()
    links = []
    for entry in sidebar_pages(cfg):
        if entry in titles:
            page, title = titles[entry]
            active = ' class="active"' if page == current else ""
            links.append(f'<a href="{page}"{active}>{html.escape(title)}</a>')
    repo = next((i["href"] for i in cfg["website"]["navbar"].get("right", []) if i.get("icon") == "github"), "")
    return (f'<nav class="site-sidebar"><div class="site-title"><a href="index.html">{html.escape(settings()["title"])}'
            f'</a></div>{"".join(links)}<a href="{repo}">GitHub</a></nav>')


def render_site() -> dict[str, Path]:
    "Render every processed notebook in _proc/ to _site/<output-file>; returns {notebook name: page path}."
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    procs = sorted(PROC.glob("*.ipynb"))
    pages = {p.name: page_file(p) for p in procs}
    titles = {p.name: (pages[p.name], front_matter(read_nb(p)).get("title", p.stem)) for p in procs}
    css = _SITE_CSS + (NBS / "styles.css").read_text()
    shutil.rmtree(SITE, ignore_errors=True)
    SITE.mkdir()
    exporter = HTMLExporter(extra_loaders=[DictLoader({"site.html.j2": _TEMPLATE})], template_file="site.html.j2",
                            exclude_input_prompt=True, exclude_output_prompt=True)
    if LOCAL_MATHJAX.is_file(): exporter.mathjax_url = LOCAL_MATHJAX.as_uri() + "?config=TeX-AMS_CHTML-full,Safe"
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"},
                                                         remove_all_outputs_tags={"remove_output"}), enabled=True)
    written = {}
    for p in procs:
        nb = nbformat.from_dict(prepare_for_html(read_nb(p), pages))
        resources = {"site_css": css, "site_nav": site_nav(pages[p.name], titles)}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        written[p.name] = SITE / pages[p.name]
        written[p.name].write_text(body)
    return written


# ---------------------------------------------------------------------------------------------- step 3
def _code_cells(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def exported_names(src_nb: dict) -> list[str]:
    "The functions and classes in `__all__` of the module a notebook exports to, read without importing it."
    exp = next((m[1] for s in _code_cells(src_nb) if (m := re.search(r"^#\|\s*default_exp\s+(\S+)", s, re.M))), None)
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


def page_problems(src_nb: dict, proc_nb: dict, page: str) -> list[str]:
    "What is wrong with a rendered page, given the notebook and the processed notebook it comes from."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(page, "html.parser")
    for anchor in soup.select("a.anchor-link"): anchor.decompose()  # the ¶ after each heading
    main = soup.find("main")
    text = _squash(main.get_text(" ") if main else "")
    problems = []
    title = front_matter(proc_nb).get("title")
    if not title: problems.append("the processed notebook has no title (start the notebook with a `# Title` cell)")
    elif (soup.title.string if soup.title else "") != title or title not in [h.get_text().strip() for h in soup.find_all("h1")]:
        problems.append(f"title {title!r} missing from <title> or <h1>")
    missing = [n for n in exported_names(src_nb) if not re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text)]
    if missing: problems.append(f"exported functions/classes not on the page: {missing}")
    # MathJax comes from a CDN and does not load offline: check the TeX source reaches the page intact.
    lost = [m for m in math_spans(src_nb) if _squash(m) not in text]
    if lost: problems.append(f"math lost or mangled on the page: {lost[:3]}")
    if math_spans(src_nb) and "MathJax" not in page: problems.append("page has math but no MathJax")
    for pre in soup.find_all("pre"):
        leaked = [l for l in pre.get_text().splitlines() if l.lstrip().startswith("#|")]
        if leaked: problems.append(f"cell options leaked into the page: {leaked[:3]}")
    for raw in ("output-file:", '{target="_blank"'):
        if raw in text: problems.append(f"raw front matter / Quarto attributes leaked into the page: {raw!r}")
    want, imgs = image_outputs(proc_nb), len(soup.select('img[src^="data:image/"]'))
    if imgs < want or (image_outputs(src_nb) and not imgs):
        problems.append(f"images missing: {image_outputs(src_nb)} in the notebook, {want} after nbdev's processing "
                        f"(stale _proc/? rerun without --no-proc), {imgs} embedded on the page")
    return problems


def check_page(name: str) -> list[str]:
    "`page_problems` for the notebook nbs/<name>, from _proc/ and _site/."
    if not (PROC / name).exists(): return [f"nbdev did not process {name} (no _proc/{name})"]
    page = SITE / page_file(PROC / name)
    if not page.exists(): return [f"{name} was not rendered ({page} missing)"]
    return page_problems(read_nb(NBS / name), read_nb(PROC / name), page.read_text())


_EXECUTED_ANYWAY = {"export", "exports", "exporti", "exec_doc"}


def mixed_import_cells(nb: dict) -> list[str]:
    """Cells nbdev's docs step runs because they import, that also run other code ("cell <index>: <code>").
    nbdev's FAQ: keep imports in cells of their own, or the docs build runs (and can crash on) that code."""
    bad = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code": continue
        opts, code = directives("".join(cell["source"]))
        if opts.keys() & _EXECUTED_ANYWAY or opts.get("eval") == "false" or "nbdev_export()" in code: continue
        code = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))
        try: body = ast.parse(code).body
        except SyntaxError: continue
        nodes = [n for stmt in body for n in ast.walk(stmt)]
        other = [s for s in body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and \
           any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes):
            bad.append(f"cell {i}: {ast.get_source_segment(code, (other or body)[0]).splitlines()[0]}")
    return bad


def chromium() -> str | None:
    "The Chromium executable on PATH, if any."
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(page: Path, png: Path) -> Path:
    "Screenshot a local page with headless Chromium (1000x1300)."
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=30000", f"--screenshot={png}",
               page.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return png


def rendered_dom(page: Path) -> str:
    "The page's DOM after its scripts ran (MathJax included), from headless Chromium."
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--allow-file-access-from-files",
               "--virtual-time-budget=30000", "--dump-dom", page.resolve().as_uri()]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=180).stdout


def typeset_math_problems(src_nb: dict, dom: str) -> list[str]:
    "Empty when every TeX span of the notebook was typeset by MathJax in the rendered DOM."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(dom, "html.parser")
    typeset = soup.select("script[type^='math/tex']")  # MathJax 2 moves each TeX span it typesets into such a script
    rendered = soup.select(".MathJax_CHTML, .MathJax_Display, .MathJax")
    problems = []
    if len(typeset) < len(math_spans(src_nb)): problems.append(f"{len(typeset)} of {len(math_spans(src_nb))} math spans typeset")
    if typeset and not rendered: problems.append("MathJax left its input but rendered nothing")
    main = soup.find("main")
    raw = re.findall(r"\$\$.{0,40}", main.get_text(" ") if main else "")
    if raw: problems.append(f"raw TeX left on the page: {raw[:2]}")
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


def screenshot_pages() -> list[str]:
    "The source notebooks to screenshot: the landing page and the training chapter (else the first chapter)."
    names = [p.name for p in source_notebooks()]
    chapters = [n for n in names if re.match(r"\d+_", n)]
    training = next((n for n in chapters if n.endswith("_training.ipynb")), chapters[0] if chapters else None)
    return [n for n in ("index.ipynb", training) if n in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-proc", action="store_true", help="reuse _proc/ instead of running nbdev's processing")
    ap.add_argument("--build-only", action="store_true", help="process and render, skip the checks")
    ap.add_argument("--screenshots", action="store_true", help="also screenshot pages into _site/screenshots/")
    args = ap.parse_args(argv)
    if not args.no_proc: process_notebooks()
    render_site()
    if args.build_only: return 0
    failed = False
    for nb in source_notebooks():
        problems = check_page(nb.name) + [f"imports mixed with code: {c!r}" for c in mixed_import_cells(read_nb(nb))]
        failed |= bool(problems)
        print(f"{nb.name:32} {'ok' if not problems else '; '.join(problems)}")
    if args.screenshots:
        if not chromium(): print("chromium not found: apt-get install -y chromium"); return 1
        (SITE / "screenshots").mkdir(exist_ok=True)
        for name in screenshot_pages():
            png = screenshot(SITE / page_file(PROC / name), SITE / "screenshots" / (Path(name).stem + ".png"))
            problems = screenshot_problems(png)
            failed |= bool(problems)
            print(f"{png.relative_to(ROOT)}  {'ok' if not problems else '; '.join(problems)}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
