"""Shared helpers of the experiment figures (``plotting.experiments``, ``plotting.training``).

Table access (the rows and columns of the long-form tables), legends placed where they cover
no data, tidy log-axis ticks and the 1/S reference line. Private to the plotting package.
"""
import numpy as onp

from .style import legend_inside, panels


_BLOCK_LABEL = {"q": "q-gradient (encoder logits)", "model": "model gradient (decoder, prior)"}
_BLOCK_SHORT = {"q": "q-gradient", "model": "model gradient"}
_SPLIT_LABEL = {"train": "training data", "valid": "held-out data", "test": "test data"}


def _split_label(split):
    split = str(split)
    return _SPLIT_LABEL.get(split, split if "data" in split else f"{split} data")


def _where(df, **conditions):
    """The rows of ``df`` whose columns equal the given values."""
    mask = onp.ones(len(df), dtype=bool)
    for key, value in conditions.items():
        mask &= (df[key] == value).to_numpy()
    return df[mask]


def _unique(df, name):
    """Distinct values of a column in order of first appearance."""
    return list(dict.fromkeys(df[name].tolist()))


def _col(df, name):
    """A column as a float array (NaN for missing values)."""
    return df[name].to_numpy(dtype=float)


def _last_checkpoint(table, checkpoint):
    """The rows measured at ``checkpoint`` (default the last one); a table whose checkpoint
    column is empty (a variance run on given parameters) is returned whole."""
    if "checkpoint" not in table.columns:
        return table, None
    known = table["checkpoint"].dropna()
    if known.empty:
        return table, None
    if checkpoint is None:
        checkpoint = known.max()
    rows = _where(table, checkpoint=checkpoint)
    if rows.empty:
        raise ValueError(f"checkpoint: no rows at {checkpoint!r}; measured at {sorted(known.unique().tolist())}")
    return rows, int(checkpoint) if float(checkpoint).is_integer() else checkpoint


_REFERENCE_LABELS = ("∝ 1/S",)


def _by_last_value(handles, labels):
    """Handles and labels ordered like the lines' right ends, top first (the legend reads like the
    plot); reference lines (∝ 1/S) last."""
    def last(i):
        if labels[i] in _REFERENCE_LABELS:
            return (1, 0.0)
        h = handles[i]
        y = onp.asarray(h.get_ydata(), dtype=float) if hasattr(h, "get_ydata") else onp.array([onp.nan])
        y = y[onp.isfinite(y)]
        return (0, -y[-1] if y.size else onp.inf)
    order = sorted(range(len(handles)), key=last)
    return [handles[i] for i in order], [labels[i] for i in order]


def _legend(fig, axes, by_last_value=False, loc="best"):
    """One figure legend right of the panels, or under style("slides") one legend inside each axes."""
    axes = list(onp.atleast_1d(axes).ravel())
    if legend_inside():
        for ax in axes:
            h, l = ax.get_legend_handles_labels()
            if h:
                if by_last_value:
                    h, l = _by_last_value(h, l)
                ax.legend(h, l, loc=loc)
        return
    handles, labels = [], []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if by_last_value:
        handles, labels = _by_last_value(handles, labels)
    if handles:
        fig.legend(handles, labels, loc="outside right upper")


def _headroom(ax, fraction, where="top"):
    """Extend the y axis at the top (or bottom) so that the data fill only 1 - fraction of it."""
    lo, hi = ax.get_ylim()
    grow = fraction / (1 - fraction)
    if ax.get_yscale() == "log" and lo > 0:
        ax.set_ylim(lo, hi * (hi / lo) ** grow) if where == "top" else ax.set_ylim(lo / (hi / lo) ** grow, hi)
    else:
        ax.set_ylim(lo, hi + (hi - lo) * grow) if where == "top" else ax.set_ylim(lo - (hi - lo) * grow, hi)


def _panel_legends(axes, by_last_value=True, loc=None):
    """A legend inside each panel (family panels: each lists its own few series).

    By default the legend goes in two columns along the top, above room made for it, so that it
    never hides a line; ``loc`` places it elsewhere instead (e.g. "lower right" for learning
    curves, which rise from the lower left).
    """
    axes = list(onp.atleast_1d(axes).ravel())
    if loc in (None, "bottom"):
        counts = [len(ax.get_legend_handles_labels()[0]) for ax in axes]
        per_col = 1 if (legend_inside() and len(axes) > 3) else 2
        rows = max([-(-c // per_col) for c in counts] + [1])
        done = set()
        for ax in axes:                       # shared axes: make room once per shared group
            key = frozenset(id(a) for a in ax.get_shared_y_axes().get_siblings(ax))
            if key not in done:
                per_row = (0.11 if legend_inside() else 0.07) * (3.9 / max(2.0, ax.figure.get_size_inches()[1]
                                                                         / max(1, ax.get_gridspec().nrows)))
                _headroom(ax, min(0.6, per_row * rows + 0.05), where="bottom" if loc == "bottom" else "top")
                done.add(key)
    place = {None: "upper center", "bottom": "lower center"}.get(loc, loc)
    for ax in axes:
        h, l = ax.get_legend_handles_labels()
        if h:
            if by_last_value:
                h, l = _by_last_value(h, l)
            two = loc in (None, "bottom") and not (legend_inside() and len(axes) > 3)   # narrow slide panels: one column
            ax.legend(h, l, loc=place, ncols=min(2, len(h)) if two else 1, fontsize="small",
                      frameon=True, framealpha=0.85, edgecolor="0.85", columnspacing=1.0, handlelength=2.6)


def _value_ticks(ax, values, axis="x"):
    """Ticks at the measured values of a log axis, labelled as plain numbers (1, 10, 100)."""
    values = sorted({float(v) for v in values if v is not None and onp.isfinite(v) and v > 0})
    if not values or len(values) > 8:
        return
    labels = [f"{v:g}" for v in values]
    if axis == "x":
        ax.set_xticks(values, labels)
        ax.xaxis.set_minor_locator(_null_locator())
    else:
        ax.set_yticks(values, labels)


def _tidy_log_y(ax):
    """Plain tick labels on a log y axis: the decades when at least two are visible, else 1-2-5
    steps (20, 50, 100, 200) instead of matplotlib's minor labels like 3x10^1, which clutter a slide."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    lo, hi = ax.get_ylim()
    if not (lo > 0 and hi > lo):
        return
    ax.yaxis.set_minor_formatter(NullFormatter())
    if onp.floor(onp.log10(hi)) - onp.ceil(onp.log10(lo)) < 1:
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylim(lo, hi)


def _tidy_log_x(ax):
    """Decade labels only on a log x axis (no 2x10^4, 3x10^4, ... minor labels)."""
    from matplotlib.ticker import LogLocator, NullFormatter
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _null_locator():
    from matplotlib.ticker import NullLocator
    return NullLocator()


def _positive(values):
    values = onp.asarray(values, dtype=float)
    return onp.where(values > 0, values, onp.nan)


def _one_over_s(ax, s_values, y_at_1):
    """A grey dashed reference line proportional to 1/S through y_at_1 at S = 1."""
    s = onp.array([min(s_values), max(s_values)], dtype=float)
    ax.plot(s, y_at_1 / s, color="0.55", linestyle=(0, (2, 2)), linewidth=1.8, marker="", label="∝ 1/S", zorder=0)


def _estimator_groups(table, value_columns):
    """(family title, names) panels of the estimators with some positive value; names with none."""
    names = _unique(table, "estimator")
    zero = [n for n in names if all(onp.all(~(_col(_where(table, estimator=n), c) > 0)) for c in value_columns)]
    shown = [n for n in names if n not in zero]
    return (panels(shown) if shown else [(None, [])]), zero
