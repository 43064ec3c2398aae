"""Sphinx configuration for the vi_lab documentation site.

Build with ``make docs`` (notebooks executed, results cached in ``docs/_build``) or, for a
quick check without running any notebook::

    sphinx-build -W --keep-going -D nb_execution_mode=off -b html docs docs/_build/html

The notebooks live in ``../notebooks`` (where students open them); Sphinx only reads files
under this directory, so every build first copies them to ``docs/notebooks/`` (a build
artefact, not to be edited or committed).

The site must work opened from disk with no network, so the math renderer is not loaded from a
CDN: MathJax 3 is installed from the npm registry by ``make docs`` (``docs/package.json`` and its
lock file, installed with ``npm ci`` into ``docs/_build/npm``) and copied into ``_static/mathjax``
of the built site. The environment variable ``VI_LAB_NODE_MODULES`` points the build at another
``node_modules`` folder (the test suite uses it for builds in a temporary directory).
"""
import filecmp
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # so a source checkout builds even without `pip install -e .`

import vi_lab  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402

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

# -- math: MathJax 3, bundled ----------------------------------------------------------------
# A relative mathjax_path is resolved against _static/, where _copy_mathjax puts the npm copy.
# MathJax 3.2.2 rather than 4: version 3 ships its CHTML fonts inside the one package, while 4
# fetches them from a separate 50 MB font package whose default path is a CDN.
NODE_MODULES = Path(os.environ.get("VI_LAB_NODE_MODULES") or DOCS / "_build" / "npm" / "node_modules")
MATHJAX_SOURCE = NODE_MODULES / "mathjax" / "es5"
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
}
# intersphinx is deliberately not enabled: the build must work without network access.

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}   # .rst first: autosummary writes its pages in rst
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "slides", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]   # slides/: the deck builder

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
napoleon_custom_sections = [("Options", "params_style")]   # estimator options read like parameters

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
# Words in type descriptions are looked up loosely, so "(name, options)" matches every class's
# ``options`` attribute and Sphinx warns that the target is ambiguous. The guides use fully
# qualified names, which are never ambiguous, so this one warning type is silenced.
suppress_warnings = ["ref.python"]

# -- HTML ----------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"vi_lab {release}"
html_static_path = ["_static"]
html_css_files = ["vi_lab.css"]   # scrolling code blocks, bordered result tables
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


# -- cross-references to re-exported names ------------------------------------------------
# vi_lab re-exports names from submodules (vi_lab.BernoulliLVM is vi_lab.model.BernoulliLVM,
# vi_lab.inference.fit lives in vi_lab/inference/fit.py, vi_lab.exact.gaussian_log_marginal in
# vi_lab/quadrature.py). A docstring written in one module and shown on another page may then
# name a target that Sphinx cannot find under the name it was written with. This resolver only
# runs for references Sphinx could not resolve, and only links to objects that really exist:
# (1) the object's canonical (defining) name, (2) for a module that has no page of its own, the
# nearest documented parent package, (3) a bare name that matches exactly one documented vi_lab
# object. Anything else stays unresolved, and nitpicky + -W fail the build.
_MISSING = object()


def _import_dotted(name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _resolve_vi_lab_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")

    def attempt(name, reftype="obj"):
        return domain.resolve_xref(env, node.get("refdoc"), app.builder, reftype, name, node, contnode)

    context = node.get("py:module") or ""
    candidates = [target] + ([f"{context}.{target}"] if context else [])
    if "." not in target and target in getattr(vi_lab, "__all__", ()):
        candidates.append(f"vi_lab.{target}")
    for candidate in candidates:
        if not candidate.startswith("vi_lab"):
            continue
        obj = _import_dotted(candidate)
        if obj is _MISSING:
            continue
        if inspect.ismodule(obj):
            parts = candidate.split(".")
            while len(parts) > 1:
                parts.pop()
                if ".".join(parts) in domain.modules:
                    return attempt(".".join(parts), "mod")
            continue
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and f"{module}.{qualname}" != candidate:
            resolved = attempt(f"{module}.{qualname}")
            if resolved is not None:
                return resolved
    matches = sorted({name for name in domain.objects
                      if name.startswith("vi_lab.") and name.endswith("." + target)})
    if len(matches) == 1:
        return attempt(matches[0])
    return None


# Constants re-exported by a package (vi_lab.inference.METHODS) are listed on the package page;
# their doc comment (``#:``) sits in the defining submodule, where autodoc does not look.
def _reexported_data():
    found = {}
    for info in pkgutil.walk_packages(vi_lab.__path__, "vi_lab."):
        if not info.ispkg:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.ismodule(obj) or inspect.isroutine(obj) or inspect.isclass(obj)):
                found.setdefault(info.name, []).append(name)
    return found


def _defining_comment(fullname, obj):
    package_name, name = fullname.rsplit(".", 1)
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
        submodule = f"{package_name}.{info.name}"
        if getattr(importlib.import_module(submodule), name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(submodule).find_attr_docs()
        except Exception:  # noqa: BLE001 - no source: no comment
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return None


def _document_reexported_data(app, what, name, obj, options, lines):
    generic = inspect.getdoc(type(obj)) or ""
    if what == "data" and "\n".join(lines).strip() == generic.strip():
        lines[:] = _defining_comment(name, obj) or []


autosummary_context = {"reexported_data": _reexported_data()}


# Docstrings write equations as plain text (house style), where |a| is an absolute value and
# "(S, *batch, K)" an unpacked shape. reST would read the first as a substitution reference and
# the second as the start of an emphasis, and fail. vi_lab docstrings use no substitutions, so
# outside inline literals and roles every bar is escaped, and so is every asterisk that is not
# part of a complete *emphasis* or **strong** span. Table and line-block rows are left alone.
# This runs on the raw numpydoc text, before napoleon wraps types in emphasis.
_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")
_MARKUP = re.compile(r"(?<![\\\w*])(?:\*\*(?=\S).*?\S\*\*|\*(?=[^\s*])[^*]*?[^\s\\*]\*)(?![\w*])")
_LONE_STAR = re.compile(r"(?<!\\)\*")
_LONE_BAR = re.compile(r"(?<!\\)\|")


def _escape_plain(text):
    out, pos = [], 0
    for match in _MARKUP.finditer(text):
        out.append(_LONE_STAR.sub(r"\\*", text[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_LONE_STAR.sub(r"\\*", text[pos:]))
    return _LONE_BAR.sub(r"\\|", "".join(out))


def _escape_plain_text_math(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if ("|" not in line and "*" not in line) or line.lstrip().startswith(("| ", "+-", "+=", ".. ")):
            continue
        parts = _LITERAL.split(line)
        lines[i] = "".join(part if j % 2 else _escape_plain(part) for j, part in enumerate(parts))


# -- bundled MathJax -------------------------------------------------------------------------
# Only what the CHTML renderer can load is copied: the combined tex-chtml.js, the TeX extensions
# it autoloads, its fonts, and the menu's accessibility components (about 8 MB of 24 MB).
_MATHJAX_PARTS = ["tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors"]


def _check_mathjax(app, config):
    if not (MATHJAX_SOURCE / "tex-chtml.js").is_file():
        from sphinx.errors import ConfigError
        raise ConfigError(
            f"MathJax is not installed in {MATHJAX_SOURCE}: run `make docs` (it installs the npm "
            "packages of docs/package.json with `npm ci`), or point VI_LAB_NODE_MODULES at a "
            "node_modules folder that holds the npm package mathjax@3")


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        src, dst = MATHJAX_SOURCE / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def setup(app):
    app.connect("config-inited", _check_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("source-read", _insert_notebook_toctrees)
    # priority 400: before napoleon (500) turns the numpydoc sections into reST fields
    app.connect("autodoc-process-docstring", _escape_plain_text_math, priority=400)
    app.connect("missing-reference", _resolve_vi_lab_reference)
    app.connect("autodoc-process-docstring", _document_reexported_data, priority=300)
    return {"parallel_read_safe": True}
