"""The docs site, checked offline (Quarto cannot be installed here; tools/docs_check.py says how).

nbdev's real processing step writes _proc/ (what `nbdev_docs` hands to Quarto), an nbconvert rendering of
each processed page goes to _site/, and every page is checked against its notebook. Where Chromium is
installed (.ci/run installs it) the landing page and the training chapter are screenshotted.
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
    assert r.returncode == 0, f"nbdev's docs processing or the rendering failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return {"nbdev_yml_before": nbdev_yml}


def test_every_notebook_is_processed_and_rendered(site):
    unprocessed = [n for n in NOTEBOOKS if not (dc.PROC / n).exists()]
    assert not unprocessed, f"nbdev's processing skipped {unprocessed}"
    unrendered = [n for n in NOTEBOOKS if not (dc.SITE / dc.page_file(dc.PROC / n)).exists()]
    assert not unrendered, f"no page in _site/ for {unrendered}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_page(site, name):
    problems = dc.check_page(name)
    assert not problems, f"{name} -> _site/{dc.page_file(dc.PROC / name)}: " + "; ".join(problems)


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
    for f in [html["css"], *cfg["filters"], *cfg["metadata-files"]]:
        assert (dc.NBS / f).exists(), f"_quarto.yml names nbs/{f}, which does not exist"
    repo = [i["href"] for i in cfg["website"]["navbar"]["right"] if i.get("icon") == "github"]
    assert repo == [ini["git_url"]], "the navbar's GitHub link must be settings.ini's git_url"
    nbdev_yml = yaml.safe_load((dc.NBS / "nbdev.yml").read_text())["website"]
    assert nbdev_yml["site-url"] == ini["doc_host"] + ini["doc_baseurl"] and nbdev_yml["repo-url"] == ini["git_url"]


def test_sidebar_is_ordered_like_the_tutorial():
    pages = dc.sidebar_pages()
    chapters = pages[1:]
    assert pages[0] == "index.ipynb", "the sidebar starts with the landing page"
    assert chapters == sorted(chapters) and all(re.match(r"\d\d_", c) for c in chapters), \
        f"the sidebar lists the numbered chapters in order: {pages}"
    missing = sorted(set(NOTEBOOKS) - set(pages))
    assert not missing, f"notebooks missing from the sidebar in _quarto.yml: {missing}"


def test_quarto_inputs_reach_proc(site):
    cfg = dc.quarto_config()
    needed = ["_quarto.yml", cfg["format"]["html"]["css"], *cfg["filters"], *cfg["metadata-files"]]
    missing = [f for f in needed if not (dc.PROC / f).exists()]
    assert not missing, f"nbdev did not copy {missing} into _proc/, where Quarto renders"


def test_checks_catch_broken_pages(site):
    "The page checks are not vacuous: each breakage of the landing page is reported."
    src, proc = dc.read_nb(dc.NBS / "index.ipynb"), dc.read_nb(dc.PROC / "index.ipynb")
    page = (dc.SITE / dc.page_file(dc.PROC / "index.ipynb")).read_text()
    assert dc.page_problems(src, proc, page) == []
    assert dc.math_spans(src) and dc.image_outputs(src), "the landing page has math and a figure"
    breakages = {
        "title": page.replace("<h1", "<h2"),
        "figure": re.sub(r'src="data:image/[^"]*"', 'src=""', page),
        "math": page.replace(r"\mathcal{L}", "L"),
        "leaked option": page.replace("<pre>", "<pre>#| echo: false\n", 1),
    }
    silent = [k for k, broken in breakages.items() if not dc.page_problems(src, proc, broken)]
    assert not silent, f"page_problems missed these breakages: {silent}"
    assert dc.mixed_import_cells({"cells": [{"cell_type": "code", "source": "import os\nx = os.sep"}]})


def test_long_cells_fold_like_the_quarto_filter():
    n = dc.fold_max_lines()
    cell = lambda src: {"cell_type": "code", "metadata": {}, "outputs": [], "source": src}
    long_code = "\n".join(f"x{i} = {i}" for i in range(n + 1))
    nb = {"metadata": {}, "cells": [cell(long_code), cell("#| code-fold: false\n" + long_code), cell("x = 1")]}
    tags = [c["metadata"].get("tags", []) for c in dc.prepare_for_html(nb, {})["cells"][1:]]
    assert ["code-fold" in t for t in tags] == [True, False, False]


def test_screenshots(site):
    if not dc.chromium():
        message = "chromium is not installed: apt-get install -y chromium (.ci/run installs it)"
        if os.environ.get("CI"): pytest.fail(message)
        pytest.skip(message + "; CI is unset, so the screenshots are skipped here")
    shots = dc.SITE / "screenshots"
    shots.mkdir(exist_ok=True)
    names = dc.screenshot_pages()
    assert names[0] == "index.ipynb" and len(names) == 2, names
    for name in names:
        png = dc.screenshot(dc.SITE / dc.page_file(dc.PROC / name), shots / (Path(name).stem + ".png"))
        problems = dc.screenshot_problems(png)
        assert not problems, "; ".join(problems)


def test_math_is_typeset_offline(site):
    "The pages load Debian's MathJax and the landing page's and the loss chapter's TeX comes out typeset."
    missing = [what for what, ok in (("chromium", dc.chromium()), ("libjs-mathjax", dc.LOCAL_MATHJAX.is_file())) if not ok]
    if missing:
        message = f"{' and '.join(missing)} not installed: apt-get install -y chromium libjs-mathjax (.ci/run installs them)"
        if os.environ.get("CI"): pytest.fail(message)
        pytest.skip(message + "; CI is unset, so the math check is skipped here")
    for name in ("index.ipynb", "03_loss_derivation.ipynb"):
        page = dc.SITE / dc.page_file(dc.PROC / name)
        problems = dc.typeset_math_problems(dc.read_nb(dc.NBS / name), dc.rendered_dom(page))
        assert not problems, f"{name}: " + "; ".join(problems)
    page = dc.SITE / dc.page_file(dc.PROC / "index.ipynb")
    without = page.with_name("without-mathjax.html")
    without.write_text(page.read_text().replace(dc.LOCAL_MATHJAX.as_uri(), "file:///nowhere/MathJax.js"))
    assert dc.typeset_math_problems(dc.read_nb(dc.NBS / "index.ipynb"), dc.rendered_dom(without)), "the check must notice raw TeX"


def test_github_workflows_run_the_readme_command_and_publish_the_site():
    "Where Quarto and a network exist (GitHub), the nbdev workflows test with the README's command and publish the site."
    readme = (dc.ROOT / "README.md").read_text()
    command = re.search(r"Run the whole test suite.*?```sh\n(.+?)\n```", readme, re.S)[1]
    test = yaml.safe_load((dc.ROOT / ".github" / "workflows" / "test.yaml").read_text())
    assert command in [step.get("run") for step in test["jobs"]["test"]["steps"]]
    deploy = yaml.safe_load((dc.ROOT / ".github" / "workflows" / "deploy.yaml").read_text())
    assert any(step.get("uses", "").startswith("fastai/workflows/quarto-ghp") for step in deploy["jobs"]["deploy"]["steps"])
    assert deploy[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
