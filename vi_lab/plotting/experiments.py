"""Figures of the experiments in :mod:`vi_lab.experiments`, drawn from their result tables.

Every function takes a :class:`~vi_lab.experiments.table.Table` (or the rows of one) and
returns a :class:`matplotlib.figure.Figure`; nothing here computes more than a mean.
"""
import numpy as onp

from .style import style, new_figure, color_for, marker_for, NATS

__all__ = ["variance_vs_samples", "variance_at_equal_cost", "bias_variance_vs_tau", "train_compare_curves",
           "tightness_gaps", "iwae_vs_k"]

_BLOCK_LABEL = {"q": "q-gradient (encoder logits)", "model": "model gradient (decoder, prior)"}


def _last_checkpoint(table, checkpoint):
    if "checkpoint" not in table.columns:
        return table, None
    if checkpoint is None:
        checkpoint = max(table.unique("checkpoint"))
    return table.where(checkpoint=checkpoint), checkpoint


def _legend(fig, axes, ncol=None):
    handles, labels = [], []
    for ax in onp.atleast_1d(axes):
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if handles:
        fig.legend(handles, labels, loc="outside right upper")


def _positive(values):
    values = onp.asarray(values, dtype=float)
    return onp.where(values > 0, values, onp.nan)


def _one_over_s(ax, s_values, y_at_1):
    """A grey dashed reference line proportional to 1/S through y_at_1 at S = 1."""
    s = onp.array([min(s_values), max(s_values)], dtype=float)
    ax.plot(s, y_at_1 / s, color="0.45", linestyle="--", linewidth=2, marker="", label="∝ 1/S", zorder=0)


def variance_vs_samples(table, checkpoint=None, blocks=("q", "model")):
    """Total gradient variance against the number of samples S, log-log, one line per estimator.

    Parameters
    ----------
    table : Table
        The table returned by :func:`vi_lab.experiments.variance` (columns ``estimator``, ``S``,
        ``var_q``, ``var_model``, optionally ``checkpoint``).
    checkpoint : int, optional
        Training step to show; default the last one.
    blocks : tuple of {"q", "model"}
        One panel per gradient block.

    Notes
    -----
    The dashed grey line is c/S, anchored at the geometric mean of the S = 1 variances: every
    unbiased Monte Carlo average of independent draws runs parallel to it. Estimators with zero
    variance (exact) cannot appear on log axes and are named in the panel instead.
    """
    table, checkpoint = _last_checkpoint(table, checkpoint)
    with style():
        fig, axes = new_figure(1, len(blocks), width=6.2 * len(blocks) + 3.2)
        axes = onp.atleast_1d(axes)
        for ax, block in zip(axes, blocks):
            zero = []
            first = []
            for name in table.unique("estimator"):
                rows = table.where(estimator=name)
                s, v = rows.column("S"), rows.column(f"var_{block}")
                if onp.all(v <= 0):
                    zero.append(name)
                    continue
                ax.plot(s, _positive(v), color=color_for(name), marker=marker_for(name), label=name)
                first.append(v[onp.argmin(s)] * s.min())
            s_all = table.column("S")
            if first:
                _one_over_s(ax, s_all, float(onp.exp(onp.mean(onp.log(first)))))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("samples per datapoint S")
            ax.set_ylabel("total variance [nats²]")
            ax.set_title(_BLOCK_LABEL[block])
            if zero:
                ax.text(0.02, 0.03, "zero variance: " + ", ".join(zero), transform=ax.transAxes, fontsize=12,
                        color="0.3")
        if checkpoint is not None:
            fig.suptitle(f"Gradient variance vs samples (model after {checkpoint} training steps)")
        _legend(fig, axes)
    return fig


def variance_at_equal_cost(table, checkpoint=None, block="q"):
    """Variance x cost (decoder evaluations per datapoint) against S: the fair comparison.

    An estimator that evaluates the decoder twice per draw has to halve the variance to break
    even; on this plot lower is better at equal compute.
    """
    table, checkpoint = _last_checkpoint(table, checkpoint)
    with style():
        fig, ax = new_figure(1, 1, width=9.6)
        for name in table.unique("estimator"):
            rows = table.where(estimator=name)
            v = rows.column(f"var_{block}_x_cost")
            if onp.all(v <= 0):
                continue
            ax.plot(rows.column("S"), _positive(v), color=color_for(name), marker=marker_for(name), label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("samples per datapoint S")
        ax.set_ylabel("variance × decoder evaluations")
        ax.set_title(f"{_BLOCK_LABEL[block]} at equal cost")
        _legend(fig, ax)
    return fig


def bias_variance_vs_tau(table):
    """Squared bias, variance and MSE of the biased (relaxed) estimators across the temperature tau.

    Parameters
    ----------
    table : Table
        The ``tau`` table of :func:`vi_lab.experiments.variance` (columns ``estimator``, ``tau``,
        ``bias2_q``, ``bias2_q_se``, ``var_q``, ``mse_q``).

    Notes
    -----
    Low temperature: relaxed samples are nearly binary, so little bias but high variance;
    high temperature: smooth and quiet but biased. Error bars are one standard error.
    """
    with style():
        fig, axes = new_figure(1, 3, width=19.6, height=5.2)
        panels = [("bias2_q", "squared bias", "bias2_q_se"), ("var_q", "total variance", None),
                  ("mse_q", "mean squared error", "mse_q_se")]
        for ax, (col, label, se) in zip(axes, panels):
            for name in table.unique("estimator"):
                rows = table.where(estimator=name)
                tau, y = rows.column("tau"), rows.column(col)
                err = rows.column(se) if se else None
                ax.errorbar(tau, _positive(y), yerr=err, color=color_for(name), marker=marker_for(name),
                            label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("temperature τ")
            ax.set_ylabel(label)
            ax.set_title(f"{label} (q-gradient)")
        s = table.unique("S")
        fig.suptitle(f"Bias-variance trade-off of the relaxed estimators (S = {', '.join(map(str, s))})")
        _legend(fig, axes)
    return fig


def train_compare_curves(table, split_styles=(("train", "-"), ("valid", "--"))):
    """Exact log p(x) during training for each method, against steps and against wall time.

    Parameters
    ----------
    table : Table
        The long-form history table of :func:`vi_lab.experiments.train_compare`: columns
        ``method``, ``step``, ``seconds``, ``log_px_train``, ``log_px_valid``.

    Notes
    -----
    Solid: mean exact log p(x) of the training data; dashed: held-out data. The right panel
    charges each method its own wall time, so a cheap noisy estimator can win there and lose
    on the left.
    """
    with style():
        fig, axes = new_figure(1, 2, width=16.4, height=5.6)
        for name in table.unique("method"):
            rows = table.where(method=name)
            for split, ls in split_styles:
                col = f"log_px_{split}"
                if col not in rows.columns or onp.all(onp.isnan(rows.column(col))):
                    continue
                y = rows.column(col)
                for ax, xcol in zip(axes, ("step", "seconds")):
                    ax.plot(rows.column(xcol), y, color=color_for(name), linestyle=ls, marker="",
                            label=name if split == "train" else None)
        axes[0].set_xlabel("training step")
        axes[1].set_xlabel("wall time [s]")
        axes[1].set_xscale("symlog", linthresh=0.1)
        for ax in axes:
            ax.set_ylabel(f"mean exact log p(x) [{NATS}]")
        axes[0].set_title("learning curves (per step)")
        axes[1].set_title("learning curves (per second)")
        from matplotlib.lines import Line2D
        extra = [Line2D([], [], color="0.3", linestyle=ls, marker="", label=f"{split} data")
                 for split, ls in split_styles]
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles + extra, labels + [h.get_label() for h in extra], loc="outside right upper")
    return fig


def tightness_gaps(table, max_points=40):
    """Stacked bars: the approximation gap and the amortization gap, on average and per datapoint.

    Parameters
    ----------
    table : Table
        The per-datapoint table of :func:`vi_lab.experiments.tightness` (columns ``log_px``,
        ``approximation_gap``, ``amortization_gap``, optionally ``wake_sleep_gap``).
    max_points : int, default 40
        Datapoints shown in the right panel (evenly spaced after sorting by total gap).

    Notes
    -----
    log p(x) - ELBO(amortized q) = [log p(x) - ELBO(best mean-field q)] + [ELBO(best mean-field q)
    - ELBO(amortized q)]: the first term is the price of the mean-field family, the second the
    price of sharing one encoder across datapoints.
    """
    approx = table.column("approximation_gap")
    amort = table.column("amortization_gap")
    colors = {"approx": color_for("vimco"), "amort": color_for("nvil")}
    with style():
        fig, axes = new_figure(1, 2, width=16.4, height=5.6, gridspec_kw={"width_ratios": [1, 2.6]})
        ax = axes[0]
        bars = [("VI encoder", approx, amort)]
        if "wake_sleep_gap" in table.columns and not onp.all(onp.isnan(table.column("wake_sleep_gap"))):
            ws = table.column("wake_sleep_gap")
            bars.append(("wake-sleep\nencoder", approx, ws - approx))
        for i, (label, a, b) in enumerate(bars):
            ax.bar(i, a.mean(), color=colors["approx"], width=0.6,
                   label="approximation gap" if i == 0 else None)
            ax.bar(i, b.mean(), bottom=a.mean(), color=colors["amort"], width=0.6,
                   label="amortization gap" if i == 0 else None)
            ax.text(i, a.mean() + b.mean(), f"{a.mean() + b.mean():.2f}", ha="center", va="bottom", fontsize=13)
        ax.set_xticks(range(len(bars)), [b[0] for b in bars])
        ax.set_xlim(-0.6, len(bars) - 0.4)
        ax.set_ylabel(f"log p(x) − ELBO [{NATS}]")
        ax.set_title("mean over datapoints")
        ax.grid(axis="x", visible=False)

        ax = axes[1]
        order = onp.argsort(approx + amort)
        if order.size > max_points:
            order = order[onp.linspace(0, order.size - 1, max_points).round().astype(int)]
        pos = onp.arange(order.size)
        ax.bar(pos, approx[order], color=colors["approx"], width=0.8)
        ax.bar(pos, amort[order], bottom=approx[order], color=colors["amort"], width=0.8)
        ax.set_xlabel("datapoints, sorted by total gap")
        ax.set_ylabel(f"gap [{NATS}]")
        ax.set_title("per datapoint (VI encoder)")
        ax.set_xticks([])
        ax.grid(axis="x", visible=False)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")
    return fig


def iwae_vs_k(table, log_px=None, elbo_local=None):
    """IWAE bound against the number of importance samples k, with exact log p(x) as a line.

    Parameters
    ----------
    table : Table
        The IWAE table of :func:`vi_lab.experiments.tightness`: columns ``k``, ``iwae``,
        ``iwae_se``; optionally ``log_px`` (repeated) and ``elbo_local``.
    log_px, elbo_local : float, optional
        Override the horizontal reference lines.

    Notes
    -----
    E[IWAE_k] is non-decreasing in k and tends to log p(x) (Burda et al. 2016, Theorem 1).
    Error bars are one standard error over datapoints and repetitions.
    """
    k = table.column("k")
    if log_px is None and "log_px" in table.columns:
        log_px = float(table.column("log_px")[0])
    if elbo_local is None and "elbo_local" in table.columns:
        elbo_local = float(table.column("elbo_local")[0])
    with style():
        fig, ax = new_figure(1, 1, width=10.0, height=5.6)
        ax.errorbar(k, table.column("iwae"), yerr=table.column("iwae_se"), color=color_for("vimco"),
                    marker="o", label="IWAE bound (amortized q)")
        if log_px is not None:
            ax.axhline(log_px, color="#000000", linestyle="-", linewidth=2, label="exact log p(x)")
        if elbo_local is not None:
            ax.axhline(elbo_local, color=color_for("nvil"), linestyle=":", linewidth=2.5,
                       label="ELBO of best mean-field q")
        ax.set_xscale("log")
        ax.set_xlabel("importance samples k")
        ax.set_ylabel(f"mean bound [{NATS}]")
        ax.set_title("IWAE bound tightens towards log p(x)")
        ax.legend(loc="lower right")
    return fig
