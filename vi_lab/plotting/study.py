"""Figures of a study (``vi_lab.study``): every line a mean across seeds with its 95% interval.

- ``log_px_vs_evals``: held-out exact log p(x) against decoder evaluations per training
  datapoint (top row) and against training wall time (bottom row), one column per grid point.
- ``variance_vs_progress``: gradient variance at equal cost (variance x decoder evaluations of
  one estimate) against training progress, along each estimator's own run and along the shared
  exact_elbo run.
- ``save_figures``: both, as PNG files.

Intervals are Student-t intervals across seeds (on log10 for variances: a geometric mean with its
interval); a single seed's line is never drawn on its own. The functions take the tables of a
``vi_lab.study.StudyResult`` (or the result itself) and compute nothing expensive.
"""
import os

import numpy as onp

from .style import NATS, line_for, new_figure, style

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


def _draw(ax, xs, m, lo, hi, name, label, every=None):
    style_ = line_for(name)
    style_.update(label=label, markevery=every or max(1, len(xs) // 6))
    ax.plot(xs, m, **style_)
    ok = onp.isfinite(lo) & onp.isfinite(hi)
    if ok.any():
        ax.fill_between(xs[ok], lo[ok], hi[ok], color=style_["color"], alpha=0.18, linewidth=0)


def log_px_vs_evals(result, points=None):
    """Held-out exact log p(x) (mean and 95% t interval across seeds) vs decoder evaluations and wall time.

    Parameters
    ----------
    result : StudyResult or dict of DataFrames
        Needs the ``runs`` and ``curves`` tables.
    points : list of tuple, optional
        Grid points (data, K, hidden, method, S) to draw, one column each (default: all).

    Returns
    -------
    matplotlib.figure.Figure
        Top row: against decoder evaluations per training datapoint (every estimator ends at the
        same budget). Bottom row: against training wall time (seconds, log scale). References that
        trained for a fixed number of steps instead of the budget are drawn as horizontal lines at
        their final value (dotted band).
    """
    tabs = _tables(result)
    runs, curves = tabs["runs"], tabs["curves"]
    points = points or _grid_points(runs)
    with style(0.8):
        fig, axes = new_figure(2, len(points), width=5.6 * len(points) + 1.8, height=8.4, squeeze=False)
        for j, point in enumerate(points):
            data, k, hidden, method, s = point
            sel = curves[(curves["data"] == data) & (curves["K"] == k) & (curves["hidden"] == hidden)]
            est = sel[(sel["method"] == method) & (sel["S"] == s)]
            refs = sel[sel["S"].isna()]
            low = []
            for row, x in ((0, "evals_per_datapoint"), (1, "wall_time")):
                ax = axes[row, j]
                for name, group in est.groupby("estimator", sort=False):
                    xs, m, lo, hi = _curve(group, x)
                    _draw(ax, xs, m, lo, hi, name, name)
                    low.append(onp.nanmin(m[len(m) // 5:]) if len(m) else onp.nan)
                for name, group in refs.groupby("estimator", sort=False):
                    rrun = runs[(runs["estimator"] == name) & (runs["data"] == data) & (runs["K"] == k)
                                & (runs["hidden"] == hidden)]
                    xs, m, lo, hi = _curve(group, x)
                    if bool(rrun["equal_budget"].all()):
                        _draw(ax, xs, m, lo, hi, name, f"{name} (reference)")
                        low.append(onp.nanmin(m[len(m) // 5:]) if len(m) else onp.nan)
                    else:
                        kw = line_for(name)
                        ax.axhline(m[-1], color=kw["color"], linestyle=":", linewidth=2,
                                   label=f"{name}: {int(rrun['steps'].iloc[0])} steps (not budgeted)")
                        if onp.isfinite(lo[-1]):
                            ax.axhspan(lo[-1], hi[-1], color=kw["color"], alpha=0.10, linewidth=0)
                if row == 1:
                    ax.set_xscale("log")
                    _log_ticks(ax.xaxis)
                ax.set_xlabel("decoder evaluations per training datapoint" if row == 0 else
                              "training wall time [s]")
                if j == 0:
                    ax.set_ylabel(f"held-out log p(x) [{NATS}]")
                ax.set_title(_title(point) if row == 0 else "same runs against wall time", fontsize=12)
            finite = [v for v in low if onp.isfinite(v)]
            if finite:
                top = max(ax_.get_ylim()[1] for ax_ in axes[:, j])
                bottom = min(finite)
                pad = 0.08 * (top - bottom) if top > bottom else 1.0
                for ax_ in axes[:, j]:
                    ax_.set_ylim(bottom - pad, top)
        handles, labels = axes[0, -1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=10)
        fig.suptitle("Held-out exact log p(x) at equal decoder evaluations\nmean and 95% t interval across seeds",
                     fontsize=13)
    return fig


def variance_vs_progress(result, points=None):
    """Variance at equal cost (geometric mean, 95% t interval on log10 across seeds) vs training progress.

    Parameters
    ----------
    result : StudyResult or dict of DataFrames
        Needs ``variance_summary``.
    points : list of tuple, optional
        Grid points (data, K, hidden, method, S), one column each.

    Returns
    -------
    matplotlib.figure.Figure
        Rows: along each estimator's own run; along the shared exact_elbo run (the same parameters
        and q for every estimator). y: trace of the covariance of the q-gradient (encoder logits)
        times the decoder evaluations per datapoint of one estimate, log scale.
    """
    tabs = _tables(result)
    summary = tabs["variance_summary"]
    if not len(summary):
        raise ValueError("variance_vs_progress: the study measured no variance (measure has no 'variance')")
    points = points or _grid_points(tabs["runs"])
    kinds = [k for k in ("own", "shared") if (summary["run"] == k).any()]
    with style(0.8):
        fig, axes = new_figure(len(kinds), len(points), width=5.6 * len(points) + 1.8, height=4.2 * len(kinds),
                               squeeze=False)
        for j, point in enumerate(points):
            data, k, hidden, method, s = point
            sel = summary[(summary["data"] == data) & (summary["K"] == k) & (summary["hidden"] == hidden)
                          & (summary["method"] == method) & (summary["S"] == s)]
            for i, kind in enumerate(kinds):
                ax = axes[i, j]
                for name, g in sel[sel["run"] == kind].groupby("estimator", sort=False):
                    g = g.sort_values("progress")
                    _draw(ax, g["progress"].to_numpy(float), g["var_q_x_cost"].to_numpy(float),
                          g["var_q_x_cost_lo"].to_numpy(float), g["var_q_x_cost_hi"].to_numpy(float), name, name, 1)
                ax.set_yscale("log")
                _log_ticks(ax.yaxis)
                ax.set_xlabel("training progress (fraction of the run)")
                if j == 0:
                    ax.set_ylabel("variance x cost\n(q-gradient)")
                where = "own run" if kind == "own" else "shared exact_elbo run"
                ax.set_title(f"{_title(point)}: {where}", fontsize=12)
        handles, labels = axes[0, -1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=10)
        fig.suptitle("Gradient variance at equal cost along training\ngeometric mean and 95% t interval (log10) across seeds",
                     fontsize=13)
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
