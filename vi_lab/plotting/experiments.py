"""Figures of the experiments in :mod:`vi_lab.experiments`, drawn from their result tables.

Every function takes a long-form :class:`pandas.DataFrame` as the experiments return it and
returns a :class:`matplotlib.figure.Figure`; nothing here computes more than a mean.

Figures that compare estimators draw at most six series per panel, each with its own colour
and line style: with more, one panel per family (:func:`vi_lab.plotting.panels`), on a
shared y axis so that panels can be compared. Every estimator has the same look in every
figure (:data:`vi_lab.plotting.LOOKS`).
"""
import numpy as onp

from .style import style, new_figure, line_for, legend_inside, panels, panel_lines, NATS, OKABE_ITO

__all__ = ["variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "bias_variance_vs_tau",
           "train_compare_curves", "tightness_gaps", "iwae_vs_k"]

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


def variance_vs_samples(table, checkpoint=None, blocks=("q", "model"), bias=False, block_labels=None):
    """Total gradient variance against the number of samples S, log-log, one line per estimator.

    Parameters
    ----------
    table : pandas.DataFrame
        The table returned by :func:`vi_lab.experiments.variance` (columns ``estimator``, ``S``,
        ``var_q``, ``var_model``, optionally ``checkpoint``, and with ``bias=True``
        ``bias2_q``, ``bias2_q_se``, ...).
    checkpoint : int, optional
        Training step to show; default the last one.
    blocks : tuple of {"q", "model"}
        One column of panels per gradient block.
    bias : bool, default False
        Next to each variance panel, the squared bias against S (linear axis with a zero line,
        error bars of two standard errors; a squared-bias estimate can be negative). Unbiased
        estimators sit on zero; a relaxed estimator's bias is a floor that more samples never
        lower.
    block_labels : dict, optional
        Titles of the blocks, e.g. ``{"q": "q-gradient (mu, log sigma)"}`` for a per-datapoint
        Gaussian q (default: encoder logits and model gradient).

    Notes
    -----
    With more than six estimators, one column of panels per family (score-function family,
    local expectation, antithetic, relaxed, ...); each row (a gradient block, or its bias)
    shares one y axis. The dashed grey line is c/S, anchored at the geometric mean of the
    panel's S = 1 variances: every unbiased Monte Carlo average of independent draws runs
    parallel to it. Estimators with zero variance (exact) cannot appear on log axes and are
    named in the first panel instead.
    """
    table, checkpoint = _last_checkpoint(table, checkpoint)
    titles = {**_BLOCK_LABEL, **(block_labels or {})}
    blocks = [b for b in blocks if f"var_{b}" in table.columns and not onp.all(onp.isnan(_col(table, f"var_{b}")))]
    if not blocks:
        raise ValueError("table: no var_q or var_model column with values")
    groups, zero = _estimator_groups(table, [f"var_{b}" for b in blocks])
    rows_spec = [(block, kind) for block in blocks for kind in (("var", "bias") if bias else ("var",))]
    s_all = _col(table, "S")
    ncols, nrows = len(groups), len(rows_spec)
    with style():
        # families side by side (columns), one row per gradient block (and its bias): the shape of
        # a 16:9 slide, and each row on one y scale so that families compare at a glance
        fig, axes = new_figure(nrows, ncols, width=max(9.0, 5.0 * ncols + 1.2), height=3.9 * nrows + 0.9,
                               squeeze=False, sharex=True)
        for r, (block, kind) in enumerate(rows_spec):
            for c, (family, names) in enumerate(groups):
                ax = axes[r, c]
                first = []
                lines = panel_lines(names)
                for name in names:
                    rows = _where(table, estimator=name)
                    s = _col(rows, "S")
                    if kind == "var":
                        v = _col(rows, f"var_{block}")
                        ax.plot(s, _positive(v), **lines[name])
                        if v[onp.argmin(s)] > 0:
                            first.append(v[onp.argmin(s)] * s.min())
                    else:
                        b = _col(rows, f"bias2_{block}") if f"bias2_{block}" in rows.columns else onp.full(len(rows), onp.nan)
                        se_col = f"bias2_{block}_se"
                        err = 2 * _col(rows, se_col) if se_col in rows.columns else None
                        ax.errorbar(s, b, yerr=err, **lines[name])
                ax.set_xscale("log")
                _value_ticks(ax, s_all)
                if kind == "var":
                    if first:
                        _one_over_s(ax, s_all, float(onp.exp(onp.mean(onp.log(first)))))
                    ax.set_yscale("log")
                else:
                    ax.axhline(0.0, color="0.3", linewidth=1.2, zorder=0)
                if r == 0 and family is not None:
                    ax.set_title(family)
            label = titles.get(block, block) if block_labels and block in block_labels else _BLOCK_SHORT.get(block, block)
            axes[r, 0].set_ylabel(f"{label}\n{'total variance' if kind == 'var' else 'squared bias'} [nats²]")
            if kind == "var":      # one variance scale per row; a bias row keeps each family's own range
                lims = [ax.get_ylim() for ax in axes[r]]
                for ax in axes[r]:
                    ax.set_ylim(min(l[0] for l in lims), max(l[1] for l in lims))
                    _tidy_log_y(ax)
                for ax in axes[r, 1:]:
                    ax.tick_params(labelleft=False)
        for ax in axes[-1]:
            ax.set_xlabel("samples per datapoint S")
        if zero:
            axes[0, 0].text(0.02, 0.03, "zero variance: " + ", ".join(zero), transform=axes[0, 0].transAxes,
                            fontsize="small", color="0.3")
        what = "Gradient variance and squared bias" if bias else "Gradient variance"
        fig.suptitle(what + " against samples" + ("" if checkpoint is None else
                                                  f" (model after {checkpoint} training steps)"))
        if len(groups) > 1:
            _panel_legends(axes[:1])                 # a column's rows show the same series
        else:
            _legend(fig, axes[:1], by_last_value=True)
    return fig


def _family_row(table, x_col, y_col, xlabel, ylabel, title, logy=True, xticks=None, cost=None):
    """One panel per estimator family in a row, shared y; returns the figure."""
    groups, zero = _estimator_groups(table, [y_col])
    with style():
        fig, axes = new_figure(1, len(groups), width=max(11.0, 5.4 * len(groups) + 1.5), height=5.4,
                               squeeze=False, sharey=True)
        for ax, (family, names) in zip(axes[0], groups):
            lines = panel_lines(names)
            for name in names:
                rows = _where(table, estimator=name)
                ax.plot(_col(rows, x_col), _positive(_col(rows, y_col)) if logy else _col(rows, y_col),
                        **lines[name])
            if xticks == "log":
                ax.set_xscale("log")
                _value_ticks(ax, _col(table, x_col))
            elif xticks is not None:
                ax.set_xticks(xticks, [str(v) for v in xticks])
            if logy:
                ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            if family is not None:
                ax.set_title(family)
        axes[0, 0].set_ylabel(ylabel)
        for ax in axes[0]:
            if logy:
                _tidy_log_y(ax)
        if zero:
            axes[0, 0].text(0.02, 0.03, "zero variance: " + ", ".join(zero), transform=axes[0, 0].transAxes,
                            fontsize=12, color="0.3")
        fig.suptitle(title)
        if len(groups) > 1:
            _panel_legends(axes)
        else:
            _legend(fig, axes, by_last_value=True)
    return fig


def variance_at_equal_cost(table, checkpoint=None, block="q"):
    """Variance x cost (decoder evaluations per datapoint) against S: the fair comparison.

    An estimator that evaluates the decoder twice per draw has to halve the variance to break
    even; on this plot lower is better at equal compute. With more than six estimators, one
    panel per family on a shared y axis.
    """
    table, checkpoint = _last_checkpoint(table, checkpoint)
    return _family_row(table, "S", f"var_{block}_x_cost", "samples per datapoint S",
                       "variance × decoder evaluations [nats²]", f"{block}-gradient variance at equal cost",
                       xticks="log")


def bias_variance_vs_tau(table):
    """Squared bias, variance and MSE of the biased (relaxed) estimators across the temperature tau.

    Parameters
    ----------
    table : pandas.DataFrame
        The ``tau`` table of :func:`vi_lab.experiments.variance` (columns ``estimator``, ``tau``,
        ``bias2_q``, ``bias2_q_se``, ``var_q``, ``mse_q``).

    Notes
    -----
    Low temperature: relaxed samples are nearly binary, so little bias but high variance;
    high temperature: smooth and quiet but biased. Error bars are one standard error.
    """
    groups = panels(_unique(table, "estimator"))
    with style():
        fig, axes = new_figure(len(groups), 3, width=17.0, height=4.6 * len(groups) + 0.6, squeeze=False)
        specs = [("bias2_q", "squared bias", "bias2_q_se"), ("var_q", "total variance", None),
                 ("mse_q", "mean squared error", "mse_q_se")]
        for i, (family, names) in enumerate(groups):
            lines = panel_lines(names)
            for ax, (col, label, se) in zip(axes[i], specs):
                for name in names:
                    rows = _where(table, estimator=name)
                    tau, y = _col(rows, "tau"), _col(rows, col)
                    err = _col(rows, se) if se and se in rows.columns else None
                    ax.errorbar(tau, _positive(y), yerr=err, **lines[name])
                ax.set_xscale("log")
                ax.set_yscale("log")
                _value_ticks(ax, _col(table, "tau"))
                _tidy_log_y(ax)
                ax.set_xlabel("temperature τ")
                ax.set_ylabel(f"{label} [nats²]")
                ax.set_title(label if family is None or len(groups) == 1 else f"{family}: {label}")
        s = _unique(table, "S")
        fig.suptitle(f"Relaxed estimators: bias-variance trade-off of the q-gradient (S = {', '.join(map(str, s))})")
        if len(groups) > 1:
            _panel_legends(axes, by_last_value=False)
        else:
            _legend(fig, axes, loc="upper left")
    return fig


_X_LABEL = {"evals_per_datapoint": "decoder evaluations per training image (cumulative, log scale)",
            "decoder_evals": "decoder evaluations (cumulative, log scale)", "seconds": "training wall time [s]",
            "step": "training step"}


def train_compare_curves(table, x=None, splits=None, note=None):
    """Exact log p(x) during training for each method, against cost: decoder evaluations or wall time.

    Parameters
    ----------
    table : pandas.DataFrame
        The long-form history table of :func:`vi_lab.experiments.train_compare`: columns
        ``method``, ``step``, ``seconds``, ``decoder_evals``, ``log_px_train``, ``log_px_valid``.
    x : {"evals_per_datapoint", "decoder_evals", "seconds", "step"}, optional
        The cost on the horizontal axis; default ``evals_per_datapoint`` if the table has it,
        else ``decoder_evals``. Decoder evaluations are the cost that matters and do not depend
        on the machine (log scale: exact methods pay 2**K per datapoint and step, DisARM 2 per
        sample); wall time ("seconds") is the second view.
    splits : list of {"train", "valid"}, optional
        Rows of panels. Default both (training on top, held-out below); under
        ``style("slides")`` only held-out (what generalizes), so that a slide has room for the
        legends inside the panels.
    note : str, optional
        A line under the title saying how overfitting was kept out of the comparison (default
        ``table.attrs["overfitting_control"]``, which :func:`vi_lab.experiments.train_compare` sets).

    Notes
    -----
    One column of panels per family of methods (score-function family, local expectation,
    antithetic, relaxed, references) when there are more than six, on shared y axes; top row
    the training data, bottom row held-out data.
    """
    if x is None:
        x = "evals_per_datapoint" if "evals_per_datapoint" in table.columns else "decoder_evals"
    if x not in _X_LABEL:
        raise ValueError(f"x: expected one of {', '.join(_X_LABEL)}, got {x!r}")
    if note is None:
        note = table.attrs.get("overfitting_control")
    if x not in table.columns:
        raise ValueError(f"x: the history table has no column {x!r}; columns are {list(table.columns)}")
    available = [s for s in ("train", "valid") if f"log_px_{s}" in table.columns
                 and not onp.all(onp.isnan(_col(table, f"log_px_{s}")))]
    if splits is None:
        splits = ["valid"] if legend_inside() and "valid" in available else available
    bad = [s for s in splits if s not in available]
    if bad or not splits:
        raise ValueError(f"splits: {bad or splits} not in the table; available {available}")
    groups = panels(_unique(table, "method"))
    with style():
        # every panel on the same cost axis: exact methods (2**K evaluations per datapoint and
        # step) sit far to the right of DisARM (2 per sample), whichever panel they are in
        fig, axes = new_figure(len(splits), len(groups), width=max(11.0, 4.9 * len(groups) + 1.6),
                               height=4.3 * len(splits) + 0.8, sharey="row", sharex=True, squeeze=False)
        for j, (family, names) in enumerate(groups):
            lines = panel_lines(names)
            for name in names:
                rows = _where(table, method=name)
                xs = _col(rows, x)
                keep = xs > 0 if x in ("decoder_evals", "evals_per_datapoint") else onp.ones(len(xs), dtype=bool)
                every = max(1, int(keep.sum()) // 6)
                for i, split in enumerate(splits):
                    axes[i, j].plot(xs[keep], _col(rows, f"log_px_{split}")[keep], markevery=every,
                                    **lines[name])
            for i in range(len(splits)):
                if x in ("decoder_evals", "evals_per_datapoint"):
                    axes[i, j].set_xscale("log")
                    _tidy_log_x(axes[i, j])
            if len(groups) == 1:
                axes[-1, j].set_xlabel(_X_LABEL[x])
            if family is not None:
                axes[0, j].set_title(family)
        if len(groups) > 1:
            fig.supxlabel(_X_LABEL[x], fontsize="large")
        for i, split in enumerate(splits):
            axes[i, 0].set_ylabel(f"{'training' if split == 'train' else 'held-out'}\nlog p(x) [{NATS}]")
        per = {"decoder_evals": "per decoder evaluation", "evals_per_datapoint": "per decoder evaluation",
               "seconds": "per second of compute", "step": "per step"}[x]
        title = f"Learning curves: exact mean log p(x), {per}"
        fig.suptitle(title + (f"\n{note}" if note else ""), linespacing=1.5)
        if len(groups) > 1:
            _panel_legends(axes[-1:], loc="bottom")   # below the curves, which rise to the upper right
        else:
            _legend(fig, axes, by_last_value=True, loc="lower right")
    return fig


def _gap_bars(ax, table, splits, has_ws, colors):
    ticks, labels, pos = [], [], 0.0
    for split in splits:
        sub = _where(table, split=split)
        approx = _col(sub, "approximation_gap")
        bars = [("VI", _col(sub, "amortization_gap"))]
        if has_ws:
            bars.append(("WS", _col(sub, "wake_sleep_gap") - approx))
        for label, upper in bars:
            a, b = approx.mean(), upper.mean()
            ax.bar(pos, a, color=colors["approx"], width=0.8)
            ax.bar(pos, b, bottom=a, color=colors["amort"], width=0.8, hatch="//", edgecolor="white")
            ax.text(pos, a + b, f"{a + b:.2f}", ha="center", va="bottom", fontsize=13)
            ticks.append(pos)
            labels.append(label if len(splits) == 1 else f"{label}\n{_split_label(split).split()[0]}")
            pos += 1.0
        pos += 0.5
    ax.set_xticks(ticks, labels, fontsize=13)
    ax.set_ylabel(f"log p(x) − ELBO [{NATS}]")
    ax.grid(axis="x", visible=False)


def _per_datapoint_bars(ax, table, splits, has_ws, colors, max_points):
    start, centers = 0, []
    for split in splits:
        sub = _where(table, split=split)
        approx, amort = _col(sub, "approximation_gap"), _col(sub, "amortization_gap")
        order = onp.argsort(approx + amort)
        if order.size > max_points:
            order = order[onp.linspace(0, order.size - 1, max_points).round().astype(int)]
        x = start + onp.arange(order.size)
        ax.bar(x, approx[order], color=colors["approx"], width=0.8, label="approximation gap")
        ax.bar(x, amort[order], bottom=approx[order], color=colors["amort"], width=0.8, hatch="//",
               edgecolor="white", label="amortization gap" if not has_ws else "amortization gap (VI) /\nexcess gap (WS)")
        centers.append((x[0] + x[-1]) / 2)
        start = x[-1] + 4
    ax.set_xticks(centers, [f"{_split_label(s)}, sorted by gap" for s in splits])
    ax.set_ylabel(f"gap [{NATS}]")
    ax.grid(axis="x", visible=False)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[:2], labels[:2], loc="upper left")


def tightness_gaps(table, max_points=40, by=None):
    """Stacked bars: the approximation gap and the amortization gap, on average and per datapoint.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-datapoint table of :func:`vi_lab.experiments.tightness` (columns ``split``,
        ``approximation_gap``, ``amortization_gap``, optionally ``wake_sleep_gap``).
    max_points : int, default 40
        Datapoints shown per split in the right panel (evenly spaced after sorting by total gap).
    by : {None, "split"}, default None
        None: one row, the splits side by side. "split": one row of panels per split (titled
        e.g. "training data (N = 120)"), all on the same y scale, so that training and held-out
        gaps are compared at a glance.

    Notes
    -----
    log p(x) - ELBO(amortized q) = [log p(x) - ELBO(best mean-field q)] + [ELBO(best mean-field q)
    - ELBO(amortized q)]: the first term is the price of the mean-field family, the second the
    price of sharing one encoder across datapoints. For the wake-sleep encoder the upper part is
    its own excess over the best mean-field q.
    """
    if by not in (None, "split"):
        raise ValueError(f"by: expected None or 'split', got {by!r}")
    colors = {"approx": OKABE_ITO[0], "amort": OKABE_ITO[4]}
    splits = _unique(table, "split")
    has_ws = "wake_sleep_gap" in table.columns and not onp.all(onp.isnan(_col(table, "wake_sleep_gap")))
    rows = [[s] for s in splits] if by == "split" else [splits]
    with style():
        fig, axes = new_figure(len(rows), 2, width=17.0, height=4.9 * len(rows) + 0.9, squeeze=False,
                               sharey=True, gridspec_kw={"width_ratios": [1.25, 2.4]})
        for i, group in enumerate(rows):
            _gap_bars(axes[i, 0], table, group, has_ws, colors)
            _per_datapoint_bars(axes[i, 1], table, group, has_ws, colors, max_points)
            if by == "split":
                n = len(_where(table, split=group[0]))
                axes[i, 0].set_title(f"{_split_label(group[0])} (N = {n}): mean")
                axes[i, 1].set_title(f"{_split_label(group[0])}: per datapoint, VI encoder")
            else:
                axes[i, 0].set_title("mean over datapoints")
                axes[i, 1].set_title("per datapoint, VI encoder")
        fig.suptitle("log p(x) − ELBO = approximation gap + amortization gap")
        if has_ws:
            axes[-1, 0].set_xlabel("VI: ELBO-trained encoder\nWS: sleep-phase encoder", fontsize=12, color="0.3")
    return fig


def iwae_vs_k(table):
    """IWAE bound against the number of importance samples k, with exact log p(x) as a line.

    Parameters
    ----------
    table : pandas.DataFrame
        The IWAE table of :func:`vi_lab.experiments.iwae_curve`: columns ``k``, ``iwae``,
        ``iwae_se``, ``log_px``, ``elbo_local``, ``elbo_amortized`` and optionally ``split``
        (one panel per split).

    Notes
    -----
    E[IWAE_k] is non-decreasing in k and tends to log p(x) (Burda et al. 2016, Theorem 1);
    IWAE_1 is the ELBO of the amortized q, drawn as a dashed line. Error bars are one Monte
    Carlo standard error. The legend sits inside the first panel, below the curves, where it
    cannot collide with the title.
    """
    splits = _unique(table, "split") if "split" in table.columns else [None]
    with style():
        # each split on its own y range: the bounds differ by tenths of a nat, the splits by nats
        fig, axes = new_figure(1, len(splits), width=7.0 * len(splits) + 1.0, height=6.0, squeeze=False)
        for ax, split in zip(axes[0], splits):
            sub = table if split is None else _where(table, split=split)
            k = _col(sub, "k")
            ax.axhline(_col(sub, "log_px")[0], color="#000000", linestyle="-", linewidth=2, label="exact log p(x)")
            ax.axhline(_col(sub, "elbo_local")[0], color=OKABE_ITO[4], linestyle=":", linewidth=2.5,
                       label="ELBO, best mean-field q")
            ax.axhline(_col(sub, "elbo_amortized")[0], color="0.5", linestyle="--", linewidth=2,
                       label="ELBO, amortized q (= IWAE$_1$)")
            ax.errorbar(k, _col(sub, "iwae"), yerr=_col(sub, "iwae_se"), color=OKABE_ITO[0], marker="o",
                        label="IWAE bound, amortized q")
            ax.set_xscale("log")
            _value_ticks(ax, k)
            ax.set_xlabel("importance samples k")
            ax.set_title("all data" if split is None else _split_label(split))
            ax.set_ylabel(f"mean over datapoints [{NATS}]")
        lo, hi = axes[0, 0].get_ylim()
        axes[0, 0].set_ylim(lo - 0.8 * (hi - lo), hi)      # room below the curves for the legend
        fig.suptitle("The IWAE bound tightens towards log p(x) as k grows")
        axes[0, 0].legend(loc="lower right", frameon=True, framealpha=0.9, edgecolor="0.85", fontsize="small")
    return fig


def variance_vs_checkpoint(table, n_samples=None, block="q"):
    """Total gradient variance at one S against the training step at which it was measured.

    Parameters
    ----------
    table : pandas.DataFrame
        A variance table with several values in its ``checkpoint`` column.
    n_samples : int, optional
        S to show (default the largest measured by every estimator).
    block : {"q", "model"}
    """
    if n_samples is None:
        n_samples = max(_unique(table, "S"))
    table = _where(table, S=n_samples)
    steps = _unique(table, "checkpoint")
    return _family_row(table, "checkpoint", f"var_{block}", "training step of the measured model",
                       f"total variance, S = {n_samples} [nats²]", f"{block}-gradient variance as q sharpens",
                       xticks=steps if len(steps) <= 8 else None)
