"""Build the lecture slides: one reveal.js deck per lecture, and one per notebook, from the notebooks.

usage: python docs/slides/build.py [--out DIR] [--no-execute] [--only NAME ...] [--timeout S]

Each deck is a single HTML file made by nbconvert's reveal.js exporter (``SlidesExporter``) from
the notebooks in ``notebooks/``, with a template of our own (``docs/slides/templates/vi_lab``)
that loads reveal.js and MathJax from ``_static/`` next to the decks instead of a CDN, and
drops the exporter's jQuery, RequireJS and Mermaid downloads. The folder written (default
``docs/_build/slides``) is self-contained: copy it to a USB stick and open ``index.html`` in a
browser with no network.

Slides follow the cells' ``metadata.slideshow.slide_type`` (set in the notebooks, see
notebooks' hygiene test). A notebook without any slide metadata gets the same convention from
its headings: the first cell and every ``#``/``##`` heading open a slide, ``###`` a sub-slide
(reveal's vertical slides), the import cell and exercise stubs are skipped.

The lectures are the two 90-minute sessions of ``docs/lecture_guide.md`` (``LECTURES`` below).
By default the notebooks are executed first (each in well under a minute, in its own kernel,
from ``notebooks/``) so that the decks show the figures; ``--no-execute`` builds from the
committed notebooks, which have no outputs (seconds, used by the tests).

reveal.js 5 and MathJax 3 come from the npm registry (``docs/package.json``, installed by
``make js`` into ``docs/_build/npm``); ``VI_LAB_NODE_MODULES`` points at another
``node_modules`` folder.
"""
import argparse
import copy
import html
import os
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOTEBOOKS = ROOT / "notebooks"
TEMPLATES = HERE / "templates"
TEMPLATE = "vi_lab"
DEFAULT_OUT = ROOT / "docs" / "_build" / "slides"

#: Lecture -> (title, notebook stems). The two sessions of the lecture guide.
LECTURES = {
    "lecture1": ("Lecture 1 · Exact inference, the ELBO, amortization and wake-sleep",
                 ["01_bernoulli_latent_model", "02_elbo_and_per_datapoint_vi", "03_amortized_vi",
                  "04_wake_sleep"]),
    "lecture2": ("Lecture 2 · Gradient estimators for binary latents, and how tight the bound is",
                 ["05_score_function_vs_reparametrization", "06_variance_reduction", "07_elbo_tightness"]),
}

#: reveal.js parts the decks load (the notes plugin: press S for the speaker view).
REVEAL_PARTS = ["dist", "plugin/notes"]
#: MathJax parts for CHTML output: the combined TeX loader, its autoloaded extensions and fonts.
MATHJAX_PARTS = ["tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors"]

HEADING = re.compile(r"^\s*(#{1,3})\s")


def node_modules():
    return Path(os.environ.get("VI_LAB_NODE_MODULES") or ROOT / "docs" / "_build" / "npm" / "node_modules")


def _copy_parts(src, dst, parts):
    for part in parts:
        s, d = src / part, dst / part
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)
        else:
            raise FileNotFoundError(f"{s} is missing from the npm install; run `make js`")


def install_static(out):
    """Copy reveal.js and MathJax from node_modules into ``out/_static``."""
    modules = node_modules()
    reveal, mathjax = modules / "reveal.js", modules / "mathjax" / "es5"
    for what, path, package in (("reveal.js", reveal / "dist" / "reveal.js", "reveal.js@5"),
                                ("MathJax", mathjax / "tex-chtml.js", "mathjax@3")):
        if not path.is_file():
            raise SystemExit(f"slides: {what} is not installed in {modules}: run `make js` (npm ci of "
                             f"docs/package.json), or set VI_LAB_NODE_MODULES to a node_modules with {package}")
    _copy_parts(reveal, out / "_static" / "reveal.js", REVEAL_PARTS)
    _copy_parts(mathjax, out / "_static" / "mathjax", MATHJAX_PARTS)


def _default_slide_type(index, cell, first_code):
    if index == 0:
        return "slide"
    if cell.cell_type == "markdown":
        match = HEADING.match(cell.source)
        if match:
            return "slide" if len(match.group(1)) <= 2 else "subslide"
        return "-"
    if index == first_code or "raise NotImplementedError" in cell.source:
        return "skip"
    return "-"


def with_slide_metadata(nb):
    """``nb`` itself if any cell has slide metadata, else a copy with the heading convention."""
    if any("slideshow" in cell.get("metadata", {}) for cell in nb.cells):
        return nb
    nb = copy.deepcopy(nb)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
    for i, cell in enumerate(nb.cells):
        cell.metadata["slideshow"] = {"slide_type": _default_slide_type(i, cell, first_code)}
    return nb


def read_notebook(stem, execute, timeout):
    import nbformat
    path = NOTEBOOKS / f"{stem}.ipynb"
    if not path.is_file():
        raise SystemExit(f"slides: notebook {path} does not exist")
    nb = nbformat.read(path, as_version=4)
    if execute:
        from nbclient import NotebookClient
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        print(f"  executed {stem} in {time.perf_counter() - start:.0f} s", flush=True)
    return with_slide_metadata(nb)


def merge(notebooks):
    """One notebook holding the cells of ``notebooks`` in order (each title cell opens a slide)."""
    merged = copy.deepcopy(notebooks[0])
    for k, nb in enumerate(notebooks[1:], start=2):
        cells = copy.deepcopy(nb.cells)
        if cells:
            cells[0].metadata.setdefault("slideshow", {})["slide_type"] = "slide"
        for cell in cells:          # cell ids must stay unique across the merged notebooks
            if "id" in cell:
                cell["id"] = f"nb{k}-{cell['id']}"[:64]
        merged.cells.extend(cells)
    return merged


def exporter():
    from nbconvert import SlidesExporter
    exp = SlidesExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    exp.reveal_url_prefix = "_static/reveal.js"
    exp.reveal_theme = "white"
    exp.reveal_transition = "none"
    exp.reveal_number = "c/t"
    exp.reveal_width = "1280"       # 16:9, the shape of a projector
    exp.reveal_height = "720"
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    return exp


def write_deck(nb, title, path, exp):
    nb.metadata["title"] = title
    body, _ = exp.from_notebook_node(nb, resources={"metadata": {"name": title}})
    path.write_text(body, encoding="utf-8")
    return path


def write_index(out, decks):
    items = "\n".join(f'<li><a href="{html.escape(p.name)}">{html.escape(t)}</a></li>' for t, p in decks)
    out.joinpath("index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vi_lab slides</title>"
        "<style>body{font-family:sans-serif;max-width:50em;margin:3em auto;line-height:1.6}</style></head>"
        f"<body><h1>vi_lab lecture slides</h1><p>Arrow keys move between slides, down for a "
        f"section's sub-slides; S opens the speaker view, F full screen, Esc the overview.</p>"
        f"<ul>\n{items}\n</ul></body></html>\n", encoding="utf-8")


def build(out=DEFAULT_OUT, execute=True, only=None, timeout=300):
    """Write the decks into ``out``; returns [(title, path)]. ``only``: lecture names or notebook stems."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    install_static(out)
    wanted = set(only) if only else None
    stems = sorted({s for _, nbs in LECTURES.values() for s in nbs}
                   | {p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb")})
    needed = [s for s in stems if wanted is None or s in wanted
              or any(s in LECTURES[name][1] for name in wanted & set(LECTURES))]
    unknown = sorted((wanted or set()) - set(stems) - set(LECTURES))
    if unknown:
        raise SystemExit(f"slides: unknown deck(s) {unknown}; choose from {sorted(LECTURES) + stems}")
    notebooks = {stem: read_notebook(stem, execute, timeout) for stem in needed}
    exp, decks = exporter(), []
    for name, (title, nbs) in LECTURES.items():
        if wanted is None or name in wanted:
            decks.append((title, write_deck(merge([notebooks[s] for s in nbs]), title, out / f"{name}.html", exp)))
    for stem in needed:
        if wanted is None or stem in wanted:
            title = notebooks[stem].cells[0].source.lstrip("# ").splitlines()[0] if notebooks[stem].cells else stem
            decks.append((title, write_deck(notebooks[stem], title, out / f"{stem}.html", exp)))
    write_index(out, decks)
    return decks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default docs/_build/slides)")
    parser.add_argument("--no-execute", action="store_true", help="do not run the notebooks (decks without figures)")
    parser.add_argument("--only", nargs="+", help="lecture names (lecture1, lecture2) or notebook stems")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per notebook cell when executing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    decks = build(args.out, execute=not args.no_execute, only=args.only, timeout=args.timeout)
    for _, path in decks:
        print(f"wrote {path}")
    print(f"{len(decks)} decks in {time.perf_counter() - start:.0f} s; open {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
