"""The documentation site builds with warnings as errors.

The build runs on a copy of ``docs/`` and ``notebooks/`` in a temporary directory, so the test
never writes into the working tree, with notebook execution switched off (the notebooks are
executed by nbmake elsewhere in the suite; here only the site is checked). ``nitpicky`` in
``docs/conf.py`` turns every unresolved cross-reference into a warning, so a guide that links to
a renamed function, or a docstring with broken reST, fails this test.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# MathJax and reveal.js as installed by `make js` (docs/package.json, npm ci); a build in a
# temporary copy of docs/ is pointed at them, since the copy has no docs/_build.
NODE_MODULES = Path(os.environ.get("VI_LAB_NODE_MODULES") or DOCS / "_build" / "npm" / "node_modules")

# Build artefacts that must not be copied: a stale generated page would hide a missing one.
_SKIP = shutil.ignore_patterns("_build", "generated", "notebooks", ".ipynb_checkpoints", "jupyter_execute")


def _copy_sources(dest):
    shutil.copytree(DOCS, dest / "docs", ignore=_SKIP)
    notebooks = ROOT / "notebooks"
    if notebooks.is_dir():
        shutil.copytree(notebooks, dest / "notebooks",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest / "docs"


def _sphinx(src, out, *extra, strict=True):
    """Build the site; ``strict``: warnings are errors (-W)."""
    cmd = [sys.executable, "-m", "sphinx", *(["-W"] if strict else []), "--keep-going", "-q", "-b", "html",
           "-D", "nb_execution_mode=off", "-d", str(out / "doctrees"), *extra, str(src), str(out / "html")]
    env = {**os.environ, "VI_LAB_NODE_MODULES": str(NODE_MODULES)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    src = _copy_sources(tmp / "src")
    result = _sphinx(src, tmp)
    return result, tmp / "html"


def test_math_renderer_is_bundled_not_loaded_from_a_cdn(built_site):
    """Every page that has math loads MathJax from _static/ of the site itself; nothing on any
    page is fetched from the network (the site must work opened from disk)."""
    _, html = built_site
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax was not copied into the site"
    fonts = list((html / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff*"))
    assert fonts, "MathJax's CHTML fonts were not copied into the site"
    pages = sorted(html.rglob("*.html"))
    remote = {str(p.relative_to(html)): re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', p.read_text("utf-8"))
              for p in pages}
    remote = {k: v for k, v in remote.items() if v}
    assert not remote, f"pages that load scripts or styles from the network: {remote}"
    math_guide = (html / "math_guide.html").read_text("utf-8")
    assert 'src="_static/mathjax/tex-chtml.js"' in math_guide
    assert 'href="_static/vi_lab.css' in math_guide


def test_docs_build_without_warnings(built_site):
    result, _ = built_site
    assert result.returncode == 0, (
        "sphinx-build -W failed; every warning below is an error:\n" + result.stderr[-6000:])


@pytest.mark.parametrize("page", ["index", "getting_started", "math_guide", "lecture_guide",
                                  "api", "notebooks"])
def test_every_guide_page_is_rendered(built_site, page):
    _, html = built_site
    assert (html / f"{page}.html").is_file(), f"docs/{page}.md was not rendered"


def test_every_notebook_is_in_the_site(built_site):
    _, html = built_site
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    missing = [str(nb.relative_to(ROOT)) for nb in notebooks
               if ".ipynb_checkpoints" not in nb.parts
               and not (html / nb.relative_to(ROOT).with_suffix(".html")).is_file()]
    assert not missing, f"notebooks missing from the built site: {missing}"
    assert (ROOT / "notebooks").is_dir()


def test_math_guide_links_resolve_to_api_pages(built_site):
    # Every {py:func}/{py:class} role in the math guide must become a hyperlink into the API
    # reference (nitpicky already fails on unknown targets; this also catches a role that
    # resolved to nothing because the page was excluded).
    _, html = built_site
    text = (html / "math_guide.html").read_text(encoding="utf-8")
    source = (DOCS / "math_guide.md").read_text(encoding="utf-8")
    roles = re.findall(r"\{py:(?:func|class|mod|meth|data)\}`([^`]+)`", source)
    assert roles, "the math guide links no function of vi_lab"
    links = set(re.findall(r'href="api/generated/[^"#]*#([^"]+)"', text))
    unlinked = sorted({r.lstrip("~") for r in roles
                       if not any(t.endswith(r.lstrip("~").split(".")[-1]) for t in links)})
    assert not unlinked, f"math guide references that did not become API links: {unlinked}"


def test_broken_reference_fails_the_build(tmp_path):
    """The build check can fail: with the site's own conf.py, a link to a function that does not
    exist is an error (a one-page project keeps this fast)."""
    src = tmp_path / "docs"
    src.mkdir()
    shutil.copy(DOCS / "conf.py", src / "conf.py")
    shutil.copytree(DOCS / "_templates", src / "_templates")
    shutil.copytree(DOCS / "_static", src / "_static")
    (src / "index.md").write_text(
        "# Page\n\nExisting: {py:func}`vi_lab.exact.elbo`.\n\n"
        "Missing: {py:func}`vi_lab.exact.no_such_function`.\n\n"
        "```{eval-rst}\n.. autofunction:: vi_lab.exact.elbo\n```\n", encoding="utf-8")
    result = _sphinx(src, tmp_path)
    assert result.returncode != 0
    assert "no_such_function" in result.stderr
    assert "vi_lab.exact.elbo " not in result.stderr   # the existing target resolved


def test_getting_started_code_runs():
    """The Python on the getting-started page is what a newcomer types first: it must work."""
    text = (DOCS / "getting_started.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "getting_started.md shows no Python"
    namespace = {"__name__": "getting_started"}     # one interpreter session, block after block
    for block in blocks:
        exec(compile(block, "getting_started.md", "exec"), namespace)
    history = namespace["history"]
    assert history["log_px_train"][-1] > history["log_px_train"][0] + 1.0, "the example no longer learns"


def test_math_guide_covers_every_registered_estimator():
    """A newly registered estimator must get its derivation and summary-table row."""
    import vi_lab

    text = (DOCS / "math_guide.md").read_text(encoding="utf-8")
    table = text[text.index("### Summary"):]
    names = vi_lab.estimators.names()
    assert {"score_function", "arm", "disarm"} <= set(names)
    missing = [n for n in names if f"| `{n}`" not in table]
    assert not missing, f"estimators missing from the math guide's summary table: {missing}"
    no_section = [n for n in names if f'get("{n}"' not in text and n != "exact"]
    assert not no_section, f"estimators whose section does not show get(...): {no_section}"


def test_math_guide_toy_ratio_is_what_the_toy_module_computes():
    """'at t = 0.499 the gradient is 1/500 of f': exact gradient at psi = 0 over the mean of f."""
    from vi_lab import toy

    text = (DOCS / "math_guide.md").read_text(encoding="utf-8")
    assert "t = 0.499" in text and "1/500" in text
    t = 0.499
    ratio = toy.exact_grad(0.0, t) / toy.objective(0.0, t)
    assert abs(ratio - 1 / 500) < 1e-3 / 500, ratio
    assert all(abs(toy.exact_grad(phi, t) / toy.objective(phi, t)) < 1 / 500 for phi in (-2.0, -0.5, 0.5, 2.0))
    # a wrong reading of the guide ("a thousandth") would be off by a factor of two
    assert abs(ratio - 1 / 1000) > 0.4 / 500


def test_math_guide_score_function_variance_identity_holds_by_enumeration():
    """The per-component variance of (f + c) * score, {eq}`eq-sf-variance`, against an exact
    enumeration over the 2**K states of a mean-field q, for random f, logits and c; and the
    baseline it names as optimal minimizes the enumerated variance."""
    import numpy as onp

    text = (DOCS / "math_guide.md").read_text(encoding="utf-8")
    assert "2c\\, \\mathbb{E}\\bigl[f(z)\\, s_k(z)^2\\bigr]" in text    # the cross term is in the guide
    rng = onp.random.default_rng(3)
    K = 3
    states = ((onp.arange(2 ** K)[:, None] >> onp.arange(K)[::-1]) & 1).astype(float)
    for _ in range(5):
        psi, f, c = rng.normal(size=K), rng.normal(size=2 ** K) * 3, rng.normal() * 5
        p = 1 / (1 + onp.exp(-psi))
        q = onp.prod(onp.where(states == 1, p, 1 - p), axis=1)              # (2**K,)
        score = states - p                                                  # (2**K, K)
        g = (f + c)[:, None] * score
        var_enum = q @ g ** 2 - (q @ g) ** 2
        g0 = f[:, None] * score
        var_formula = (q @ g0 ** 2 - (q @ g0) ** 2) + 2 * c * (q @ (f[:, None] * score ** 2)) + c ** 2 * p * (1 - p)
        onp.testing.assert_allclose(var_enum, var_formula, rtol=1e-10)
        without_cross = (q @ g0 ** 2 - (q @ g0) ** 2) + c ** 2 * p * (1 - p)   # the old, wrong formula
        assert not onp.allclose(var_enum, without_cross)
        b_star = (q @ (f[:, None] * score ** 2)) / (p * (1 - p))
        for k in range(K):
            def var_k(b):
                gk = (f - b) * score[:, k]
                return q @ gk ** 2 - (q @ gk) ** 2
            assert var_k(b_star[k]) <= min(var_k(b_star[k] + d) for d in (-0.1, 0.1, 1.0))


def _notebook_index():
    """{"02": {"sections": {"1", "3", "3.1"}, "exercises": {"1", "2"}, "questions": {"1"}}, ...},
    read from the notebooks' Markdown headings and prediction questions."""
    import nbformat

    index = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        entry = index.setdefault(path.name[:2], {"sections": set(), "exercises": set(), "questions": set(),
                                                  "doc": f"notebooks/{path.stem}"})
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for line in cell.source.splitlines():
                heading = re.match(r"#{2,3}\s+(\d+(?:\.\d+)?)\.?\s", line)
                if heading:
                    entry["sections"].add(heading.group(1))
                exercise = re.match(r"#{2,4}\s+Exercise\s+(\d+)", line)
                if exercise:
                    entry["exercises"].add(exercise.group(1))
            for question in re.finditer(r"\*\*Question\s+(\d+)", cell.source):
                entry["questions"].add(question.group(1))
    return index


def _cited(text):
    """(notebook, kind, number) for every '02 §3', '02 §1-3', '06 Exercise 1', '01 Question 2'."""
    cited = []
    for nb, first, last in re.findall(r"\b(\d\d) §(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?", text):
        if last:
            cited += [(nb, "sections", str(n)) for n in range(int(first), int(float(last)) + 1)]
        else:
            cited.append((nb, "sections", first))
    cited += [(nb, "exercises", n) for nb, n in re.findall(r"\b(\d\d) Exercise (\d+)", text)]
    cited += [(nb, "questions", n) for nb, n in re.findall(r"\b(\d\d) Question (\d+)", text)]
    return cited


def test_every_notebook_section_the_lecture_guide_cites_exists():
    text = (DOCS / "lecture_guide.md").read_text(encoding="utf-8")
    index = _notebook_index()
    cited = _cited(text)
    assert len(cited) >= 40, "the lecture guide should cite the notebook sections it shows"
    missing = sorted({c for c in cited if c[0] not in index or c[2] not in index[c[0]][c[1]]})
    assert not missing, f"the lecture guide cites notebook parts that do not exist: {missing}"
    # a bare '§3' that names no notebook cannot be checked: every § follows a notebook number
    bare = re.findall(r"(?<!\d\d )§\d", text)
    assert not bare, f"section references without a notebook number: {bare[:5]}"
    # the check can fail: a section that no notebook has is reported
    assert ("02", "sections", "99") not in {(n, k, v) for n, k, v in cited}
    assert "99" not in index["02"]["sections"]
    for doc in re.findall(r"\{doc\}`[^`<]*<?(notebooks/[^`>]+)>?`", text):
        assert (ROOT / f"{doc}.ipynb").is_file(), f"the lecture guide links a missing notebook: {doc}"


def test_lecture_guide_has_two_timed_sessions_with_an_exercise_each():
    text = (DOCS / "lecture_guide.md").read_text(encoding="utf-8")
    sessions = re.split(r"^## Session \d", text, flags=re.MULTILINE)[1:]
    assert len(sessions) == 2, "two sessions"
    for session in sessions:
        rows = re.findall(r"^\| (\d+)-(\d+) \|", session, flags=re.MULTILINE)
        assert rows and rows[0][0] == "0" and rows[-1][1] == "90", "each session's plan runs from 0 to 90 minutes"
        assert all(int(b) == int(a2) for (_, b), (a2, _) in zip(rows, rows[1:])), "the time slots must be contiguous"
        assert session.count("**In-class exercise**") == 1
    # the figures it names are ones the CLI writes
    import inspect

    from vi_lab.plotting import runs as figures
    stems = set(re.findall(r'figs\["(\w+)"\]', inspect.getsource(figures.figure_makers)))
    named = set(re.findall(r"`(\w+)\.png`", text))
    assert named and named <= stems, f"figures the CLI does not write: {named - stems}"
    assert "variance" in text and "the slowest" in text
