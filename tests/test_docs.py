"""The docs site, checked offline.

Quarto cannot be installed here; tools/docs_check.py says what is checked and what not. nbdev's real
processing step writes _proc/ (what `nbdev_docs` hands to Quarto) and its inputs are checked; each processed page
is rendered with nbconvert's stock HTML exporter, loaded in headless Chromium (which runs Debian's MathJax) and its
DOM is checked against its notebook. Without Chromium or libjs-mathjax (.ci/run installs both) the browser checks
are skipped, or fail when CI is set.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import docs_check as dc  # noqa: E402

NOTEBOOKS = [p.name for p in dc.source_notebooks()]


@pytest.fixture(scope="module")
def site():
    "Process and render once, in a subprocess (nbdev's step executes the notebooks' import cells)."
    nbdev_yml = (dc.NBS / "nbdev.yml").read_text()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "docs_check.py"), "--build-only"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, (f"nbdev's docs processing or the rendering failed:\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return {"nbdev_yml_before": nbdev_yml}


@pytest.fixture(scope="module")
def doms(site):
    "{notebook: its page's DOM after the scripts ran}: one headless Chromium run per page."
    missing = dc.browser_missing()
    if missing:
        if os.environ.get("CI"): pytest.fail(missing + " (.ci/run installs them)")
        pytest.skip(missing + "; CI is unset, so the pages are not checked in a browser here")
    names = [n for n in NOTEBOOKS if dc.page_path(n)]
    return dict(zip(names, dc.rendered_doms([dc.page_path(n) for n in names])))


def problems_of(name: str, dom: str) -> list[str]:
    return dc.page_problems(dc.read_nb(dc.NBS / name), dc.read_nb(dc.PROC / name), dom)


def test_every_notebook_is_processed_and_rendered(site):
    unprocessed = [n for n in NOTEBOOKS if not (dc.PROC / n).exists()]
    assert not unprocessed, f"nbdev's processing skipped {unprocessed}"
    unrendered = [n for n in NOTEBOOKS if not dc.page_path(n)]
    assert not unrendered, f"no page in _site/ for {unrendered}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_page(doms, name):
    "Title, exported functions and classes, typeset math, figures, no `#|` line: see docs_check.page_problems."
    assert name in doms, f"nbdev did not process {name}, or it was not rendered"
    problems = problems_of(name, doms[name])
    assert not problems, f"{name} -> _site/{dc.page_file(dc.PROC / name)}: " + "; ".join(problems)


def test_checks_catch_broken_pages(doms):
    "The page checks are not vacuous: each way of breaking a page is reported."
    dom = doms["index.ipynb"]
    assert problems_of("index.ipynb", dom) == []
    assert dc.math_spans(dc.read_nb(dc.NBS / "index.ipynb")) and dc.image_outputs(dc.read_nb(dc.NBS / "index.ipynb")), \
        "the landing page has math and a figure"
    chapter = next((n for n in NOTEBOOKS if dc.exported_names(dc.read_nb(dc.NBS / n))), None)
    assert chapter, "no chapter exports a function or class to check a page against"
    name = dc.exported_names(dc.read_nb(dc.NBS / chapter))[0]
    # what: (notebook, broken DOM, the words of the problem that must be reported)
    breakages = {
        "title": ("index.ipynb", dom.replace("<h1", "<h2"), "title"),
        "figure": ("index.ipynb", re.sub(r'src="data:image/[^"]*"', 'src=""', dom), "images missing"),
        # The page as written, before its scripts ran: what a reader sees when MathJax does not load.
        "MathJax not run": ("index.ipynb", dc.page_path("index.ipynb").read_text(), "not typeset by MathJax"),
        "raw TeX": ("index.ipynb", dom.replace("<main>", "<main><p>$$\\mathcal{L} = 0$$</p>", 1), "raw TeX"),
        "leaked option": ("index.ipynb", dom.replace("<pre>", "<pre>#| echo: false\n", 1), "leaked"),
        f"{name} missing": (chapter, re.sub(rf"\b{name}\b", "", doms[chapter]), "not on the page: " + repr([name])),
    }
    silent = [k for k, (nb, broken, words) in breakages.items() if not any(words in p for p in problems_of(nb, broken))]
    assert not silent, f"page_problems missed these breakages: {silent}"
    assert dc.mixed_import_cells({"cells": [{"cell_type": "code", "source": "import os\nx = os.sep"}]})


def test_landing_page_screenshot(doms):
    "One screenshot, _site/screenshots/index.png, for a human to look at; checked to be a real page."
    shots = dc.SITE / "screenshots"
    shots.mkdir(exist_ok=True)
    png = dc.screenshot(dc.page_path("index.ipynb"), shots / "index.png")
    problems = dc.screenshot_problems(png)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_imports_in_cells_of_their_own(name):
    "nbdev_docs executes every cell with an import: code sharing such a cell runs (and can crash) in the docs build."
    bad = dc.mixed_import_cells(dc.read_nb(dc.NBS / name))
    assert not bad, (f"{name}: move the imports of these cells into cells of their own (or drop imports the "
                     f"module already has): {bad}")


def test_nbdev_yml_is_what_nbdev_writes(site):
    assert (dc.NBS / "nbdev.yml").read_text() == site["nbdev_yml_before"], \
        "nbs/nbdev.yml was stale: refresh_quarto_yml rewrote it from settings.ini; commit the new one"


def test_quarto_config():
    nbs_yml = dc.NBS / "_quarto.yml"
    assert nbs_yml.is_symlink() and os.readlink(nbs_yml) == "../_quarto.yml", \
        "nbs/_quarto.yml must be a symlink to ../_quarto.yml (nbdev reads only nbs/_quarto.yml)"
    cfg, ini = dc.quarto_config(), dc.settings()
    html = cfg["format"]["html"]
    assert cfg["project"]["type"] == "website"
    assert html["html-math-method"] in ("mathjax", "katex")
    assert set(html["theme"]) == {"light", "dark"}
    navbar = cfg["website"]["navbar"]
    links = [i["href"] for i in navbar.get("left", []) + navbar.get("right", []) if "href" in i]
    named = [html["css"], *cfg.get("filters", []), *cfg["metadata-files"], *dc.sidebar_pages(cfg),
             *[h for h in links if "://" not in h]]
    missing = [f for f in named if not (dc.NBS / f).exists()]
    assert not missing, f"_quarto.yml names files that are not in nbs/: {missing}"
    repo = [i["href"] for i in navbar["right"] if i.get("icon") == "github"]
    assert repo == [ini["git_url"]], "the navbar's GitHub link must be settings.ini's git_url"
    nbdev_yml = yaml.safe_load((dc.NBS / "nbdev.yml").read_text())["website"]
    assert nbdev_yml["site-url"] == ini["doc_host"] + ini["doc_baseurl"] and nbdev_yml["repo-url"] == ini["git_url"]


def test_sidebar_is_ordered_like_the_tutorial():
    pages = dc.sidebar_pages()
    chapters = pages[1:]
    assert pages[0] == "index.ipynb", "the sidebar starts with the landing page"
    assert chapters == sorted(chapters) and all(re.match(r"\d\d[a-z]?_", c) for c in chapters), \
        f"the sidebar lists the numbered chapters in order: {pages}"
    missing = sorted(set(NOTEBOOKS) - set(pages))
    assert not missing, f"notebooks missing from the sidebar in _quarto.yml: {missing}"


def test_quarto_inputs_reach_proc(site):
    cfg = dc.quarto_config()
    needed = ["_quarto.yml", cfg["format"]["html"]["css"], *cfg.get("filters", []), *cfg["metadata-files"]]
    missing = [f for f in needed if not (dc.PROC / f).exists()]
    assert not missing, f"nbdev did not copy {missing} into _proc/, where Quarto renders"


def test_github_workflows_run_the_readme_command_and_publish_the_site():
    "Where Quarto and a network exist (GitHub), nbdev's workflows test with the README's command and publish the site."
    readme = (dc.ROOT / "README.md").read_text()
    command = re.search(r"Run the whole test suite.*?```sh\n(.+?)\n```", readme, re.S)[1]
    test = yaml.safe_load((dc.ROOT / ".github" / "workflows" / "test.yaml").read_text())
    assert command in [step.get("run") for step in test["jobs"]["test"]["steps"]]
    deploy = yaml.safe_load((dc.ROOT / ".github" / "workflows" / "deploy.yaml").read_text())
    uses = [step.get("uses", "") for step in deploy["jobs"]["deploy"]["steps"]]
    assert any(u.startswith("fastai/workflows/quarto-ghp") for u in uses)
    assert deploy[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
