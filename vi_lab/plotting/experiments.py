"""Figures of the variance experiment (:func:`vi_lab.experiments.variance`), drawn from its tables.

Every function takes a long-form :class:`pandas.DataFrame` as the experiments return it and
returns a :class:`matplotlib.figure.Figure`; nothing here computes more than a mean.

Figures that compare estimators draw at most six series per panel, each with its own colour
and line style: with more, one panel per family (:func:`vi_lab.plotting.panels`), on a
shared y axis so that panels can be compared. Every estimator has the same look in every
figure (:data:`vi_lab.plotting.LOOKS`).
"""
import numpy as onp

from ._figure_helpers import (_BLOCK_LABEL, _BLOCK_SHORT, _col, _estimator_groups, _last_checkpoint, _legend,
                              _one_over_s, _panel_legends, _positive, _tidy_log_y, _unique, _value_ticks, _where)
from .style import new_figure, panel_lines, panels, style

__all__ = ["variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "bias_variance_vs_tau"]


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
