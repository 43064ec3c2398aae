"""One figure style for every vi_lab plot: readable on a projector, safe for colour-blind viewers.

- Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), distinguishable under the
  common forms of colour blindness; every line also has its own line style and marker, so
  figures survive grey-scale printing.
- One mapping, :data:`LOOKS`, gives each estimator and training method its colour, line style
  and marker, the same in every figure. Estimators are grouped in :data:`FAMILIES`
  (score-function family, local expectation, antithetic, relaxed, references, Gaussian); within
  a family no two members share a colour or a line style, and a figure with more than six
  series (or two of one colour) draws one panel per family (:func:`panels`, :func:`panel_lines`).
- Two kinds: ``style()`` for notebooks and papers (legends beside the axes), and
  ``style("slides")``: 16:9 figures (13.33 x 7.5 in, a full slide) with larger text and every
  legend inside its axes, so that the figure can fill a slide.

Matplotlib is imported only when a figure is drawn, so ``import vi_lab`` stays fast.
"""
import contextvars
import os
import sys
from contextlib import contextmanager

__all__ = ["OKABE_ITO", "MARKERS", "LINESTYLES", "LOOKS", "FAMILIES", "NATS", "KINDS", "rc_params", "style",
           "use_style", "current_kind", "color_for", "marker_for", "line_for", "family_of", "panels", "panel_lines",
           "new_figure", "SLIDE_SIZE"]

#: Okabe-Ito colours, ordered so the first ones contrast best on white (yellow last).
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
#: Marker per line, cycled together with the colours.
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
#: Six line styles that stay distinct at slide size: solid, dashed, dash-dot, dotted,
#: dash-dot-dot and long dash.
LINESTYLES = ["-", "--", "-.", ":", (0, (3, 1.5, 1, 1.5, 1, 1.5)), (0, (8, 2.5))]
#: Axis-label suffix for log-probabilities.
NATS = "nats"
#: Figure size of the "slides" kind, inches: 16:9, the shape of a projected slide.
SLIDE_SIZE = (13.33, 7.5)
#: The style kinds :func:`style` accepts.
KINDS = ("default", "slides")

_BLUE, _VERMILLION, _GREEN, _PURPLE, _ORANGE, _SKY, _BLACK, _GREY = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7F7F7F")
_SOLID, _DASHED, _DASHDOT, _DOTTED, _DASHDOTDOT, _LONGDASH = LINESTYLES

#: Family -> members, in the order their panels are drawn. Within a family every member has its
#: own colour and its own line style (the first member, the family's classic, is solid).
FAMILIES = {
    # score-function estimators, with baselines or control variates (RODEO's are discrete-Stein ones)
    "score-function family": ["score_function", "rloo", "nvil", "vimco", "dcv", "rodeo"],
    # each coordinate's expectation summed exactly, the others sampled (Rao-Blackwellization)
    "local expectation": ["leg"],
    "antithetic": ["disarm", "arm", "arms", "ugc", "bitflip"],
    "relaxed": ["concrete", "straight_through", "rebar", "relax", "gumbel_rao", "reinmax"],
    "references": ["exact_ml", "exact_elbo", "wake_sleep", "reweighted_wake_sleep", "exact"],
    "Gaussian latents": ["reparam", "gaussian_score_function"],
}
_FAMILY_COLORS = [_BLUE, _VERMILLION, _GREEN, _PURPLE, _ORANGE, _SKY]
_FAMILY_MARKERS = {
    "score-function family": ["o", "s", "^", "v", "D", "P"],
    "local expectation": ["h"],
    "antithetic": ["P", "D", "o", "^", "v"],
    "relaxed": ["<", ">", "X", "h", "d", "p"],
    "references": ["*", "d", "p", "h", "d"],
    "Gaussian latents": ["o", "s"],
}

#: Name -> (colour, line style, marker) of every estimator and training method of vi_lab.
LOOKS = {}
for _family, _members in FAMILIES.items():
    for _i, _name in enumerate(_members):
        LOOKS[_name] = (_FAMILY_COLORS[_i], LINESTYLES[_i], _FAMILY_MARKERS[_family][_i])
# References: the exact ceiling is black; the exact ELBO gradient (also the estimator "exact")
# grey; wake-sleep purple/sky, colours that no other reference uses.
LOOKS.update({
    "exact_ml": (_BLACK, _SOLID, "*"),
    "exact_elbo": (_GREY, _DASHED, "d"),
    "exact": (_GREY, _DASHED, "d"),
    "wake_sleep": (_PURPLE, _DASHDOT, "p"),
    "reweighted_wake_sleep": (_SKY, _DOTTED, "h"),
    # Gaussian figures compare these two only
    "reparam": (_VERMILLION, _SOLID, "o"),
    "gaussian_score_function": (_BLUE, _DASHED, "s"),
})
# Other names for the same estimators (aliases of vi_lab.experiments.specs, the paper names).
_ALIASES = {"reinforce": "score_function", "score_function:baseline=rloo": "rloo", "local_expectation": "leg",
            "double_cv": "dcv", "ugc_bitflip": "ugc", "gaussian_reparam": "reparam"}
_FAMILY_OF = {name: family for family, members in FAMILIES.items() for name in members}
_FAMILY_OF["exact"] = "references"
_assigned = {}


def _canonical(name):
    name = str(name)
    return _ALIASES.get(name, name)


def _known(name):
    """Look of a name, also for specifications such as 'concrete:tau=0.5' (same colour, own line)."""
    name = _canonical(name)
    if name in LOOKS:
        return LOOKS[name]
    base = name.split(":")[0]
    base = _ALIASES.get(base, base)
    if base in LOOKS:
        # a variant of a known estimator keeps its colour; its line style is the next one of the
        # family that the base does not use (a variant is compared with its base).
        color, linestyle, marker = LOOKS[base]
        others = [ls for ls in LINESTYLES if ls != linestyle]
        key = (base, name)
        if key not in _assigned:
            used = sum(1 for k in _assigned if isinstance(k, tuple) and k[0] == base)
            _assigned[key] = (color, others[used % len(others)], marker)
        return _assigned[key]
    if name not in _assigned:
        # unknown names cycle through the palette and the line styles, in order of first use
        i = sum(1 for k in _assigned if not isinstance(k, tuple))
        _assigned[name] = (_FAMILY_COLORS[i % 6], LINESTYLES[(i + i // 6) % 6], MARKERS[i % len(MARKERS)])
    return _assigned[name]


def color_for(name):
    """The colour of estimator or method ``name`` (the same in every figure)."""
    return _known(name)[0]


def marker_for(name):
    """The marker of estimator or method ``name``."""
    return _known(name)[2]


def line_for(name):
    """Keyword arguments (color, linestyle, marker, label) for the line of ``name`` in every figure."""
    color, linestyle, marker = _known(name)
    return {"color": color, "linestyle": linestyle, "marker": marker, "label": str(name)}


def family_of(name):
    """The family of ``name`` (a key of :data:`FAMILIES`), or "other" for an unknown name."""
    name = _canonical(name)
    base = _ALIASES.get(name.split(":")[0], name.split(":")[0])
    return _FAMILY_OF.get(name, _FAMILY_OF.get(base, "other"))


def panels(names, max_per_panel=6):
    """Split the series ``names`` into panels: [(title or None, [names])].

    One panel (title None) when there are at most ``max_per_panel`` series and no two share a
    colour (line styles are then made distinct by :func:`panel_lines`); otherwise one panel per family, in the order of :data:`FAMILIES`
    (a family with more members than ``max_per_panel`` is cut into several panels). The order
    of ``names`` is kept within each panel.
    """
    names = list(dict.fromkeys(names))
    if len(names) <= max_per_panel and not _clash_colors(names):
        return [(None, names)]
    order = list(FAMILIES) + ["other"]
    groups = {}
    for name in names:
        groups.setdefault(family_of(name), []).append(name)
    out = []
    for family in sorted(groups, key=order.index):
        members = groups[family]
        chunks = [members[i:i + max_per_panel] for i in range(0, len(members), max_per_panel)]
        for j, chunk in enumerate(chunks):
            out.append((family if len(chunks) == 1 else f"{family} ({j + 1})", chunk))
    return out


def panel_lines(names):
    """Line keyword arguments for the series ``names`` drawn in one panel: {name: kwargs}.

    Colour and marker are the estimator's own (:data:`LOOKS`), in every figure. The line style
    is its own too unless two series of the panel would share one (a panel that mixes families,
    e.g. disarm and exact_ml, both solid); then the panel's series take the line styles of
    :data:`LINESTYLES` in order, so that within a panel no two lines look alike.
    """
    names = list(dict.fromkeys(names))
    out = {name: line_for(name) for name in names}
    if len({str(kw["linestyle"]) for kw in out.values()}) < len(out):
        for i, name in enumerate(names):
            out[name]["linestyle"] = LINESTYLES[i % len(LINESTYLES)]
    return out


def _clash_colors(names):
    colors = [_known(n)[0] for n in names]
    return len(set(colors)) < len(colors)


# -- the two kinds of style ---------------------------------------------------------------------
_KIND = contextvars.ContextVar("vi_lab_plot_kind", default="default")
_GLOBAL_KIND = ["default"]


def _check_kind(kind, scale):
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):   # style(1.2): the old signature
        return "default", float(kind)
    if kind is None:
        kind = current_kind()
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return kind, (1.0 if scale is None else float(scale))


def current_kind():
    """The style kind in force: the innermost :func:`style` block, else the last :func:`use_style`."""
    kind = _KIND.get()
    return _GLOBAL_KIND[0] if kind == "default" else kind


def rc_params(kind="default", scale=None):
    """Matplotlib rc settings of the vi_lab style.

    Parameters
    ----------
    kind : {"default", "slides"}, default "default"
        "slides": fonts about 20% larger for a 13.33 x 7.5 in (16:9) figure shown full screen.
        A number is read as ``scale`` (the old signature ``rc_params(scale)``).
    scale : float, optional
        Multiplies every font size and line width (default 1.0).

    Returns
    -------
    dict
    """
    kind, scale = _check_kind(kind if kind is not None else "default", scale)
    if kind == "slides":
        scale *= 1.2
    params = {
        "font.size": 15 * scale,
        "axes.titlesize": 17 * scale,
        "axes.titleweight": "bold",
        "axes.labelsize": 16 * scale,
        "xtick.labelsize": 14 * scale,
        "ytick.labelsize": 14 * scale,
        "legend.fontsize": 13 * scale,
        "legend.title_fontsize": 13 * scale,
        "legend.frameon": False,
        "figure.titlesize": 18 * scale,
        "lines.linewidth": 2.5 * scale,
        "lines.markersize": 8 * scale,
        "axes.linewidth": 1.2 * scale,
        "axes.grid": True,
        "grid.alpha": 0.35,
        "grid.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": _cycler(),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "savefig.dpi": 150,
        "savefig.facecolor": "white",
        "pdf.fonttype": 42,   # embed TrueType so slides can edit the text
        "ps.fonttype": 42,
        "svg.fonttype": "none",
        "errorbar.capsize": 3 * scale,
    }
    if kind == "slides":
        params.update({"figure.figsize": SLIDE_SIZE, "legend.frameon": True, "legend.framealpha": 0.85,
                       "legend.edgecolor": "0.8", "savefig.dpi": 144})   # 1920 x 1080 px
    return params


def _cycler():
    from cycler import cycler
    return cycler(color=_FAMILY_COLORS) + cycler(linestyle=LINESTYLES) + cycler(marker=MARKERS[:6])


def _matplotlib():
    """Import matplotlib, choosing the non-interactive Agg backend when there is no display."""
    import matplotlib
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


@contextmanager
def style(kind=None, scale=None):
    """Context manager applying the vi_lab style to figures created inside it.

    Parameters
    ----------
    kind : {"default", "slides"}, optional
        "slides": every vi_lab figure drawn inside is 16:9 (13.33 x 7.5 in) with its legends
        inside the axes. Default: the kind already in force (so the figure functions, which
        open ``style()`` themselves, keep an outer ``style("slides")``), else "default".
    scale : float, optional
        Multiplies font sizes and line widths.

    Examples
    --------
    >>> with style("slides"):                      # doctest: +SKIP
    ...     fig = plotting.variance_vs_samples(table)
    ...     fig.savefig("variance.png")            # 1920 x 1080 pixels
    """
    kind, scale = _check_kind(kind, scale)
    mpl = _matplotlib()
    token = _KIND.set(kind)
    try:
        with mpl.rc_context(rc_params(kind, scale)):
            yield
    finally:
        _KIND.reset(token)


def use_style(kind="default", scale=None):
    """Apply the vi_lab style globally (e.g. at the top of a notebook): ``use_style("slides")``."""
    kind, scale = _check_kind(kind, scale)
    _GLOBAL_KIND[0] = kind
    _matplotlib().rcParams.update(rc_params(kind, scale))


def new_figure(nrows=1, ncols=1, width=None, height=None, **subplot_kw):
    """A new figure with a grid of axes, sized for a slide (call inside :func:`style`).

    The figure is a plain :class:`matplotlib.figure.Figure`, not registered with pyplot: it
    never accumulates in memory in long runs, shows in a notebook when it is a cell's last
    expression, and is written with ``fig.savefig(path)``. Under ``style("slides")`` the size
    is always :data:`SLIDE_SIZE` (16:9), whatever ``width`` and ``height`` ask for.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or ndarray of Axes (squeezed like ``plt.subplots``)
    """
    _matplotlib()
    from matplotlib.figure import Figure
    if current_kind() == "slides":
        width, height = SLIDE_SIZE
    width = width if width is not None else 6.4 * ncols + 0.6
    height = height if height is not None else 4.8 * nrows
    fig = Figure(figsize=(width, height), layout="constrained")
    squeeze = subplot_kw.pop("squeeze", True)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def legend_inside():
    """Whether legends go inside the axes (the "slides" kind) rather than beside them."""
    return current_kind() == "slides"
