"""One figure style for every vi_lab plot: readable on a projector, safe for colour-blind viewers.

- Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), distinguishable under the
  common forms of colour blindness; every line also gets its own marker so figures survive
  grey-scale printing.
- Large fonts and thick lines, sized for a slide seen from the back of a lecture hall.
- Each estimator keeps the same colour, line style and marker in every figure.

Matplotlib is imported only when a figure is drawn, so ``import vi_lab`` stays fast.
"""
import os
import sys
from contextlib import contextmanager

__all__ = ["OKABE_ITO", "MARKERS", "rc_params", "style", "use_style", "color_for", "marker_for", "line_for",
           "new_figure", "NATS"]

#: Okabe-Ito colours, ordered so the first ones contrast best on white (yellow last).
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
#: Marker per line, cycled together with the colours (8 colours x distinct markers).
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
#: Axis-label suffix for log-probabilities.
NATS = "nats"

_BLUE, _SKY, _GREEN, _ORANGE, _VERMILLION, _PURPLE, _BLACK, _GREY = (
    "#0072B2", "#56B4E9", "#009E73", "#E69F00", "#D55E00", "#CC79A7", "#000000", "#7F7F7F")

# Hand-assigned so that every estimator and method is unique in colour x line style x marker and
# related estimators share a hue: score-function family blue/purple, antithetic orange/vermillion
# (dashed: their learned-control relatives), relaxations green, exact references black/grey.
_KNOWN = {
    "exact": (_BLACK, "-", "*"),
    "score_function": (_BLUE, "-", "o"),
    "reinforce": (_BLUE, "-", "o"),
    "rloo": (_SKY, "-", "s"),
    "nvil": (_PURPLE, "-", "^"),
    "vimco": (_PURPLE, "--", "v"),
    "arm": (_ORANGE, "-", "D"),
    "disarm": (_VERMILLION, "-", "P"),
    "rebar": (_VERMILLION, "--", "X"),
    "relax": (_ORANGE, "--", "h"),
    "concrete": (_GREEN, "-", "<"),
    "straight_through": (_GREEN, "--", ">"),
    "wake_sleep": (_GREY, "-", "p"),
    "reweighted_wake_sleep": (_GREY, "--", "d"),
    "exact_elbo": (_BLACK, "--", "*"),
    "exact_ml": (_BLACK, "-", "*"),
    "reparam": (_GREEN, "-", "o"),
    "gaussian_score_function": (_BLUE, "-", "s"),
}
_assigned = {}


def _known(name):
    """Style of a name, also for specifications such as 'concrete:tau=0.5' (dotted variant)."""
    if name in _KNOWN:
        return _KNOWN[name]
    base = str(name).split(":")[0]
    if base in _KNOWN and base != name:
        color, _, marker = _KNOWN[base]
        return color, ":", marker
    if name not in _assigned:
        # unknown names cycle through the palette with a dash-dot line, in order of first use
        i = len(_assigned)
        palette = [c for c in OKABE_ITO if c not in ("#F0E442",)]
        _assigned[name] = (palette[i % len(palette)], "-.", MARKERS[i % len(MARKERS)])
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
    return {"color": color, "linestyle": linestyle, "marker": marker, "label": name}


def rc_params(scale=1.0):
    """Matplotlib rc settings of the vi_lab style.

    Parameters
    ----------
    scale : float, default 1.0
        Multiplies every font size and line width (1.0 suits a 16:9 slide at full width).

    Returns
    -------
    dict
    """
    return {
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


def _cycler():
    from cycler import cycler
    palette = [c for c in OKABE_ITO if c != "#000000"]
    return cycler(color=palette) + cycler(marker=MARKERS[:len(palette)])


def _matplotlib():
    """Import matplotlib, choosing the non-interactive Agg backend when there is no display."""
    import matplotlib
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    return matplotlib


@contextmanager
def style(scale=1.0):
    """Context manager applying the vi_lab style to figures created inside it.

    Examples
    --------
    >>> with style():                      # doctest: +SKIP
    ...     fig, ax = new_figure()
    """
    mpl = _matplotlib()
    with mpl.rc_context(rc_params(scale)):
        yield


def use_style(scale=1.0):
    """Apply the vi_lab style globally (e.g. at the top of a notebook)."""
    _matplotlib().rcParams.update(rc_params(scale))


def new_figure(nrows=1, ncols=1, width=None, height=None, **subplot_kw):
    """A new figure with a grid of axes, sized for a slide (call inside :func:`style`).

    The figure is a plain :class:`matplotlib.figure.Figure`, not registered with pyplot: it
    never accumulates in memory in long runs, shows in a notebook when it is a cell's last
    expression, and is written with ``fig.savefig(path)``.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or ndarray of Axes (squeezed like ``plt.subplots``)
    """
    _matplotlib()
    from matplotlib.figure import Figure
    width = width if width is not None else 6.4 * ncols + 0.6
    height = height if height is not None else 4.8 * nrows
    fig = Figure(figsize=(width, height), layout="constrained")
    squeeze = subplot_kw.pop("squeeze", True)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes
