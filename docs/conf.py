"""Sphinx configuration for the vi_lab documentation site.

Build with ``make docs`` (notebooks executed, results cached in ``docs/_build``) or, for a
quick check without running any notebook::

    sphinx-build -W --keep-going -D nb_execution_mode=off -b html docs docs/_build/html

The notebooks live in ``../notebooks`` (where students open them); Sphinx only reads files
under this directory, so every build first copies them to ``docs/notebooks/`` (a build
artefact, not to be edited or committed).
"""
import filecmp
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # so a source checkout builds even without `pip install -e .`

import vi_lab  # noqa: E402

# -- project -------------------------------------------------------------------------------
project = "vi_lab"
author = "the vi_lab developers"
copyright = "the vi_lab developers"
version = release = vi_lab.__version__

# -- extensions ----------------------------------------------------------------------------
extensions = [
    "myst_nb",                  # Markdown pages (MyST) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",      # numpydoc-style docstrings
    "sphinx.ext.mathjax",
]
# intersphinx is deliberately not enabled: the build must work without network access.

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}   # .rst first: autosummary writes its pages in rst
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# -- MyST ----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- notebooks (myst-nb) -------------------------------------------------------------------
# "cache": execute each notebook once and reuse the outputs until it changes; overridden with
# `-D nb_execution_mode=off` by the test suite, which only checks that the site builds.
nb_execution_mode = os.environ.get("VI_LAB_NB_EXECUTION", "cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = False   # a failing cell is reported as a warning, and -W fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# -- autodoc / autosummary / napoleon ------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False   # a module's __all__ decides what is documented
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

# -- cross-reference checking --------------------------------------------------------------
# nitpicky makes every unresolved cross-reference a warning (and -W makes it an error), so a
# link to a function that was renamed or never existed breaks the build. The only exception:
# words inside numpydoc type descriptions ("ndarray of shape (N, K)", "int", "dict", ...) that
# Sphinx tries to link as classes. Anything spelled vi_lab.<name> must still resolve.
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", r"(?!vi_lab\.).*"),
    ("py:obj", r"(?!vi_lab\.).*"),
]

# -- HTML ----------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"vi_lab {release}"
html_static_path = []
html_theme_options = {
    "description": "Variational inference on Bernoulli latent-variable models, checked against exact enumeration",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}


# -- copy ../notebooks into the source tree ------------------------------------------------
NOTEBOOK_SOURCE = ROOT / "notebooks"
NOTEBOOK_COPY = DOCS / "notebooks"


def _sync_notebooks(source=NOTEBOOK_SOURCE, target=NOTEBOOK_COPY):
    """Mirror every ``*.ipynb`` under ``source`` into ``target``; return the copied names.

    Unchanged files are left alone (so Sphinx does not re-read or re-execute them) and copies
    whose original was deleted are removed (so a renamed notebook does not linger in the site).
    """
    wanted = {p.relative_to(source) for p in source.rglob("*.ipynb")
              if ".ipynb_checkpoints" not in p.parts} if source.is_dir() else set()
    for rel in sorted(wanted):
        src, dst = source / rel, target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copy2(src, dst)
    if target.is_dir():
        for stale in target.rglob("*.ipynb"):
            if stale.relative_to(target) not in wanted:
                stale.unlink()
    return sorted(wanted)


NOTEBOOKS = _sync_notebooks()
# The list of notebooks is written into docs/notebooks.md at read time (see below), so a new
# notebook appears in the site without editing the docs, and an empty folder builds too.
NOTEBOOK_PLACEHOLDER = "<!-- vi-lab: notebook toctree -->"
SOLUTION_PLACEHOLDER = "<!-- vi-lab: solution toctree -->"


def _toctree(paths, caption):
    if not paths:
        return ":::{note}\nNo notebooks are in this folder yet.\n:::\n"
    entries = "\n".join(f"notebooks/{p.with_suffix('').as_posix()}" for p in paths)
    return f"```{{toctree}}\n:maxdepth: 1\n:caption: {caption}\n\n{entries}\n```\n"


def _insert_notebook_toctrees(app, docname, source):
    if docname != "notebooks":
        return
    lessons = [p for p in NOTEBOOKS if len(p.parts) == 1]
    solutions = [p for p in NOTEBOOKS if len(p.parts) > 1]   # notebooks/solutions/ (and any other subfolder)
    source[0] = (source[0]
                 .replace(NOTEBOOK_PLACEHOLDER, _toctree(lessons, "Lessons"))
                 .replace(SOLUTION_PLACEHOLDER, _toctree(solutions, "Solutions")))


def _resolve_reexport(app, env, node, contnode):
    """Link names re-exported by the package (``vi_lab.BernoulliLVM``, or a bare
    ``BernoulliLVM`` in a docstring's type field) to the page of the module defining them."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    name = target[len("vi_lab."):] if target.startswith("vi_lab.") else target
    if "." in name or name not in getattr(vi_lab, "__all__", ()):
        return None
    obj = getattr(vi_lab, name, None)
    module = getattr(obj, "__module__", None)
    if module is None or not module.startswith("vi_lab") or type(obj).__name__ == "module":
        return None
    canonical = f"{module}.{getattr(obj, '__qualname__', name)}"
    if canonical == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node.get("refdoc"), app.builder, node["reftype"],
                               canonical, node, contnode)


def setup(app):
    app.connect("source-read", _insert_notebook_toctrees)
    app.connect("missing-reference", _resolve_reexport)
    return {"parallel_read_safe": True}
