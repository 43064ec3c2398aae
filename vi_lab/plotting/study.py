"""Figures of a study (``vi_lab.study``): every line a mean across seeds with its 95% interval.

- ``log_px_vs_evals``: held-out exact log p(x) against decoder evaluations per training
  datapoint and against training wall time (two rows per grid point).
- ``variance_vs_progress``: gradient variance at equal cost (variance x decoder evaluations of
  one estimate) against training progress, along each estimator's own run and along the shared
  exact_elbo run (two rows per grid point).
- ``save_figures``: both, as PNG files.

Both draw one column per family of estimators (score-function family, local expectation,
antithetic, relaxed, references; ``vi_lab.plotting.panels``), each series in its colour and
marker of ``vi_lab.plotting.LOOKS``, no two series of a panel sharing a colour or a line style.

Intervals are Student-t intervals across seeds (on log10 for variances: a geometric mean with its
interval); a single seed's line is never drawn on its own. The functions take the tables of a
``vi_lab.study.StudyResult`` (or the result itself) and compute nothing expensive.
"""
import os

import numpy as onp

from .style import FAMILIES, NATS, family_of, new_figure, panel_lines, panels, style

__all__ = ["log_px_vs_evals", "variance_vs_progress", "save_figures"]

_GRID = ["data", "K", "hidden", "method", "S"]


def _tables(result):
    return result.tables if hasattr(result, "tables") else result


def _grid_points(runs):
    est = runs[~runs["reference"]]
    return [tuple(k) for k in est[_GRID].drop_duplicates().itertuples(index=False)]


def _title(point):
    data, k, hidden, method, s = point
    return f"{data}, K={k}, hidden {hidden}, S={s}"


def _band(values):
    from ..study.aggregate import t_interval
    return t_interval(values)


def _curve(group, x):
    """Mean and 95% t band across seeds at each record (records are at the same steps for every seed).

    Against wall time (log axis) the record at step 0 (no training yet, ~0 s) is left out.
    """
    rows = []
    if x == "wall_time":
        group = group[group["step"] > 0]
    for step, g in group.groupby("step", sort=True):
        m, lo, hi = _band(g["log_px_valid"])
        rows.append((float(g[x].mean()), m, lo, hi))
    return onp.array(rows, dtype=float).T if rows else onp.zeros((4, 0))


def _log_ticks(axis):
    """1-2-5 ticks with plain labels on a log axis (spans of less than a decade stay readable)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _draw(ax, xs, m, lo, hi, kw, label, every=None):
    kw = dict(kw, label=label, markevery=every or max(1, len(xs) // 6))
    ax.plot(xs, m, **kw)
    ok = onp.isfinite(lo) & onp.isfinite(hi)
    if ok.any():
        ax.fill_between(xs[ok], lo[ok], hi[ok], color=kw["color"], alpha=0.18, linewidth=0)


def _family_panels(names):
    """Family panels (the families of ``vi_lab.plotting.FAMILIES``), never one mixed panel.

    Eight estimators in one panel would put four pairs on one colour (the palette gives each
    family the same colours, :data:`vi_lab.plotting.LOOKS`), so a study always splits by family.
    """
    groups = panels(names)
    if len(groups) == 1 and len(names) > 1:
        order = list(FAMILIES) + ["other"]
        by_family = {}
        for name in names:
            by_family.setdefault(family_of(name), []).append(name)
        groups = [(family, by_family[family]) for family in sorted(by_family, key=order.index)]
    return groups


def _panel_legend(ax, loc):
    h, l = ax.get_legend_handles_labels()
    if h:
        ax.legend(h, l, loc=loc, fontsize="small", frameon=True, framealpha=0.85, edgecolor="0.85",
                  handlelength=2.6)


def log_px_vs_evals(result, points=None):
    """Held-out exact log p(x) (mean and 95% t interval across seeds) vs decoder evaluations and wall time.

    Parameters
    ----------
    result : StudyResult or dict of DataFrames
        Needs the ``runs`` and ``curves`` tables.
    points : list of tuple, optional
        Grid points (data, K, hidden, method, S) to draw (default: all).

    Returns
    -------
    matplotlib.figure.Figure
        One column per family of estimators (score-function family, local expectation,
        antithetic, relaxed, references; :func:`vi_lab.plotting.panels`), each series in its own
        colour, line style and marker (:data:`vi_lab.plotting.LOOKS`). Two rows per grid point,
        on shared y axes: against decoder evaluations per training datapoint (every estimator
        ends at the same budget), and against training wall time (seconds, log scale). References that trained for a fixed
        number of steps instead of the budget are drawn as horizontal lines at their final value
        (with their band).
    """
    tabs = _tables(result)
    runs, curves = tabs["runs"], tabs["curves"]
    points = points or _grid_points(runs)
    names = list(dict.fromkeys(curves["estimator"]))
    groups = _family_panels(names)
    rows = [(point, x) for point in points for x in ("evals_per_datapoint", "wall_time")]
    context = {}          # row -> final values of the unbudgeted references, drawn thin in every panel
    with style(0.8):
        fig, axes = new_figure(len(rows), len(groups), width=4.3 * len(groups) + 0.6, height=3.4 * len(rows) + 0.9,
                               sharey="row", squeeze=False)
        for j, (family, members) in enumerate(groups):
            lines = panel_lines(members)
            for i, (point, x) in enumerate(rows):
                data, k, hidden, method, s = point
                ax = axes[i, j]
                sel = curves[(curves["data"] == data) & (curves["K"] == k) & (curves["hidden"] == hidden)]
                for name in members:
                    group = sel[(sel["estimator"] == name) & (((sel["method"] == method) & (sel["S"] == s))
                                                            | sel["S"].isna())]
                    if not len(group):
                        continue
                    rrun = runs[(runs["estimator"] == name) & (runs["data"] == data) & (runs["K"] == k)
                                & (runs["hidden"] == hidden)]
                    xs, m, lo, hi = _curve(group, x)
                    if not len(m):
                        continue
                    reference = bool(rrun["reference"].all()) if len(rrun) else False
                    if not reference or bool(rrun["equal_budget"].all()):
                        _draw(ax, xs, m, lo, hi, lines[name], f"{name} (reference)" if reference else name)
                    else:
                        kw = lines[name]
                        ax.axhline(m[-1], color=kw["color"], linestyle=kw["linestyle"], linewidth=2,
                                   label=f"{name}: {int(rrun['steps'].iloc[0])} steps (not budgeted)")
                        context.setdefault(i, []).append((m[-1], kw))
                        if onp.isfinite(lo[-1]):
                            ax.axhspan(lo[-1], hi[-1], color=kw["color"], alpha=0.12, linewidth=0)
                if x == "wall_time":
                    ax.set_xscale("log")
                    _log_ticks(ax.xaxis)
                ax.set_xlabel("decoder evaluations per datapoint" if x == "evals_per_datapoint" else
                              "training wall time [s]", fontsize=11)
                if j == 0:
                    ax.set_ylabel(f"{_title(point)}\nheld-out log p(x) [{NATS}]", fontsize=11)
                if i == 0:
                    ax.set_title(family or "estimators", fontsize=13)
            _panel_legend(axes[0, j], "lower right")
        _set_row_limits(axes)
        for i, refs in context.items():
            for j, (family, _) in enumerate(groups):
                if family == "references":
                    axes[i, j].set_xlim(axes[i, 0].get_xlim())    # the references' lines on the estimators' axis
                    continue
                for value, kw in refs:
                    axes[i, j].axhline(value, color=kw["color"], linestyle=kw["linestyle"], linewidth=1.1,
                                       alpha=0.7, zorder=1)
        note = "\nthin horizontal lines: the unbudgeted references (right column)" if context else ""
        fig.suptitle("Held-out exact log p(x) at equal decoder evaluations (rows in pairs: against evaluations, "
                     "against wall time)\nmean and 95% t interval across seeds" + note, fontsize=13)
    return fig


def _set_row_limits(axes):
    """Each row's y axis from the curves' values after the first fifth (the start is far below)."""
    for row in axes:
        values = []
        for ax in row:
            for line in ax.get_lines():
                y = onp.asarray(line.get_ydata(), dtype=float)
                if len(y) > 2:
                    values.append(y[len(y) // 5:])
                else:
                    values.append(y)
        values = onp.concatenate(values) if values else onp.zeros(0)
        values = values[onp.isfinite(values)]
        if len(values):
            top, bottom = values.max(), values.min()
            pad = 0.08 * (top - bottom) if top > bottom else 1.0
            row[0].set_ylim(bottom - pad, top + pad)


def variance_vs_progress(result, points=None):
    """Variance at equal cost (geometric mean, 95% t interval on log10 across seeds) vs training progress.

    Parameters
    ----------
    result : StudyResult or dict of DataFrames
        Needs ``variance_summary``.
    points : list of tuple, optional
        Grid points (data, K, hidden, method, S).

    Returns
    -------
    matplotlib.figure.Figure
        One column per family of estimators (:func:`vi_lab.plotting.panels`, colours and line
        styles of :data:`vi_lab.plotting.LOOKS`). Rows, for each grid point: along each
        estimator's own run; along the shared exact_elbo run (the same parameters and q for every
        estimator). y: trace of the covariance of the q-gradient (encoder logits) times the decoder
        evaluations per datapoint of one estimate, log scale, shared along a row.
    """
    tabs = _tables(result)
    summary = tabs["variance_summary"]
    if not len(summary):
        raise ValueError("variance_vs_progress: the study measured no variance (measure has no 'variance')")
    points = points or _grid_points(tabs["runs"])
    kinds = [k for k in ("own", "shared") if (summary["run"] == k).any()]
    groups = _family_panels(list(dict.fromkeys(summary["estimator"])))
    rows = [(point, kind) for point in points for kind in kinds]
    with style(0.8):
        fig, axes = new_figure(len(rows), len(groups), width=4.3 * len(groups) + 0.6, height=3.3 * len(rows) + 0.9,
                               sharey="row", squeeze=False)
        for j, (family, members) in enumerate(groups):
            lines = panel_lines(members)
            for i, (point, kind) in enumerate(rows):
                data, k, hidden, method, s = point
                ax = axes[i, j]
                sel = summary[(summary["data"] == data) & (summary["K"] == k) & (summary["hidden"] == hidden)
                              & (summary["method"] == method) & (summary["S"] == s) & (summary["run"] == kind)]
                for name in members:
                    g = sel[sel["estimator"] == name].sort_values("progress")
                    if len(g):
                        _draw(ax, g["progress"].to_numpy(float), g["var_q_x_cost"].to_numpy(float),
                              g["var_q_x_cost_lo"].to_numpy(float), g["var_q_x_cost_hi"].to_numpy(float),
                              lines[name], name, 1)
                ax.set_yscale("log")
                _log_ticks(ax.yaxis)
                ax.set_xlabel("training progress (fraction of the run)", fontsize=11)
                if j == 0:
                    where = "own run" if kind == "own" else "shared exact_elbo run"
                    ax.set_ylabel(f"{_title(point)}\n{where}\nvariance x cost", fontsize=11)
                if i == 0:
                    ax.set_title(family or "estimators", fontsize=13)
            _panel_legend(axes[0, j], "best")
        fig.suptitle("Gradient variance at equal cost (q-gradient) along training\n"
                     "geometric mean and 95% t interval (log10) across seeds", fontsize=13)
    return fig


def save_figures(result, directory, prefix="study_"):
    """Write ``<prefix>log_px.png`` and (when variance was measured) ``<prefix>variance.png``; return the paths."""
    from .._io import atomic_path

    os.makedirs(directory, exist_ok=True)
    figures = [("log_px", log_px_vs_evals(result))]
    if len(_tables(result)["variance_summary"]):
        figures.append(("variance", variance_vs_progress(result)))
    paths = []
    for name, fig in figures:
        path = os.path.join(directory, f"{prefix}{name}.png")
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
        paths.append(path)
    return paths
