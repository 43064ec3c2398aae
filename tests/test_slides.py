"""The lecture slides (`make slides`, docs/slides/build.py): reveal.js decks that open offline.

A deck is built from the committed notebooks without executing them (seconds), opened from
``file://`` in headless Chromium with the network off (helpers of test_browser_docs), and must
show its slides (reveal.js ready, one horizontal slide per section heading, every notebook's
title on a slide) and its math (typeset by the bundled MathJax, no TeX error, no raw ``$`` or
``\\(`` left in the text), asking the network for nothing.
"""
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from test_browser_docs import offline_browser, screenshot, wait_for_mathjax

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _load_builder():
    spec = importlib.util.spec_from_file_location("vi_lab_slides_build", ROOT / "docs" / "slides" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()


def _sections(stem):
    """Markdown cells that open a section (# or ## heading): each must start a horizontal slide."""
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    return [c.source.strip().splitlines()[0].lstrip("# ").strip() for c in nb.cells
            if c.cell_type == "markdown" and re.match(r"#{1,2}\s", c.source.lstrip())
            and c.metadata.get("slideshow", {}).get("slide_type") != "skip"]


def test_every_lesson_notebook_is_in_a_lecture():
    lessons = sorted(p.stem for p in NOTEBOOKS.glob("0[1-7]_*.ipynb"))
    in_lectures = [s for _, stems in build.LECTURES.values() for s in stems]
    assert sorted(in_lectures) == lessons, "the two lectures must cover notebooks 01-07, each once"


def test_notebooks_without_slide_metadata_get_slides_from_their_headings():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\ngoals"), nbformat.v4.new_code_cell("import numpy"),
        nbformat.v4.new_markdown_cell("## 1. Section"), nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("### 1.1 Sub"), nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("def f():\n    raise NotImplementedError")])
    types = [c.metadata["slideshow"]["slide_type"] for c in build.with_slide_metadata(nb).cells]
    assert types == ["slide", "skip", "slide", "-", "subslide", "-", "skip"]
    assert "slideshow" not in nb.cells[0].metadata          # the input notebook is not modified
    nb.cells[3].metadata["slideshow"] = {"slide_type": "fragment"}   # a notebook's own metadata wins
    assert build.with_slide_metadata(nb) is nb


def test_unknown_deck_is_refused(tmp_path):
    pytest.importorskip("nbconvert", reason="nbconvert builds the slides: `make slides` installs it")
    with pytest.raises(SystemExit, match="unknown deck"):
        build.build(tmp_path, execute=False, only=["lecture9"])


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    pytest.importorskip("nbconvert", reason="nbconvert builds the slides: `make slides` installs it")
    out = tmp_path_factory.mktemp("slides")
    decks = build.build(out, execute=False, only=["lecture2"])
    assert [p.name for _, p in decks] == ["lecture2.html"]
    return out / "lecture2.html"


def test_deck_loads_nothing_from_the_network(deck):
    text = deck.read_text(encoding="utf-8")
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', text)
    assert not remote, f"the deck loads {remote}"
    assert (deck.parent / "_static" / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (deck.parent / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_deck_shows_slides_and_math_from_disk_with_the_network_off(deck, tmp_path):
    stems = build.LECTURES["lecture2"][1]
    sections = [title for stem in stems for title in _sections(stem)]
    with offline_browser(viewport=(1280, 720)) as (context, blocked):
        page = context.new_page()
        page.goto(deck.as_uri())
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
        wait_for_mathjax(page)
        info = page.evaluate("""() => ({
            horizontal: Reveal.getHorizontalSlides().length,
            total: Reveal.getTotalSlides(),
            titles: Reveal.getHorizontalSlides().map(s => (s.querySelector('h1, h2') || {}).textContent || ''),
            math: document.querySelectorAll('.jp-MarkdownOutput mjx-container').length,
            errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent).slice(0, 5),
            markdown: Array.from(document.querySelectorAll('.jp-MarkdownOutput')).map(e => {
                const c = e.cloneNode(true);
                c.querySelectorAll('mjx-container, code, pre').forEach(m => m.remove());
                return c.textContent;
            }).join('\\n'),
        })""")
        page.evaluate("Reveal.slide(2, 0)")
        page.wait_for_timeout(300)
        shown = page.evaluate("""() => {
            const s = Reveal.getCurrentSlide(), r = s.getBoundingClientRect();
            return {index: Reveal.getIndices().h, text: s.innerText.trim().length, width: r.width, height: r.height,
                    math: s.querySelectorAll('mjx-container').length};
        }""")
        screenshot(page, "slides-lecture2-3", tmp_path)
        page.close()
    assert info["horizontal"] >= len(sections), (info["horizontal"], len(sections))
    for stem in stems:
        nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
        title = nb.cells[0].source.strip().splitlines()[0].lstrip("# ").strip()
        assert any(title in t for t in info["titles"]), f"no slide is titled {title!r}"
    assert info["total"] > info["horizontal"] or info["horizontal"] > 20
    assert info["math"] >= 20, f"only {info['math']} formulas were typeset"
    assert not info["errors"], f"MathJax could not typeset: {info['errors']}"
    raw = re.findall(r"\$[^$\s][^$]{0,40}\$|\\\(|\\\[", info["markdown"])
    assert not raw, f"raw TeX is visible on the slides: {raw[:5]}"
    assert shown["index"] == 2 and shown["text"] > 20 and shown["width"] > 600, shown
    assert not blocked, f"the deck asked the network for {blocked}"
