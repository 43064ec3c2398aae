"""Figures of the experiments in :mod:`vi_lab.experiments`, drawn from their result tables.

Every function takes a long-form :class:`pandas.DataFrame` as the experiments return it and
returns a :class:`matplotlib.figure.Figure`; nothing here computes more than a mean.
"""
import numpy as onp

from .style import style, new_figure, line_for, NATS, OKABE_ITO

__all__ = ["variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "bias_variance_vs_tau",
           "train_compare_curves", "tightness_gaps", "iwae_vs_k", "figures_for"]

_BLOCK_LABEL = {"q": "q-gradient (encoder logits)", "model": "model gradient (decoder, prior)"}


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
    if "checkpoint" not in table.columns:
        return table, None
    if checkpoint is None:
        checkpoint = max(_unique(table, "checkpoint"))
    return _where(table, checkpoint=checkpoint), checkpoint


def _legend(fig, axes, by_last_value=False):
    """One figure legend right of the panels; optionally ordered like the lines' right ends (top first)."""
    handles, labels = [], []
    for ax in onp.atleast_1d(axes):
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    if by_last_value:
        def last(h):
            y = onp.asarray(h.get_ydata(), dtype=float) if hasattr(h, "get_ydata") else onp.array([onp.nan])
            y = y[onp.isfinite(y)]
            return -y[-1] if y.size else onp.inf
        order = sorted(range(len(handles)), key=lambda i: last(handles[i]))
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if handles:
        fig.legend(handles, labels, loc="outside right upper")


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
    """Label only the decades when at least two are visible (minor labels like 3x10^1 clutter a slide)."""
    from matplotlib.ticker import NullFormatter
    lo, hi = ax.get_ylim()
    if lo > 0 and onp.floor(onp.log10(hi)) - onp.ceil(onp.log10(lo)) >= 1:
        ax.yaxis.set_minor_formatter(NullFormatter())


def _null_locator():
    from matplotlib.ticker import NullLocator
    return NullLocator()


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
    table : pandas.DataFrame
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
            for name in _unique(table, "estimator"):
                rows = _where(table, estimator=name)
                s, v = _col(rows, "S"), _col(rows, f"var_{block}")
                if onp.all(v <= 0):
                    zero.append(name)
                    continue
                ax.plot(s, _positive(v), **line_for(name))
                first.append(v[onp.argmin(s)] * s.min())
            s_all = _col(table, "S")
            if first:
                _one_over_s(ax, s_all, float(onp.exp(onp.mean(onp.log(first)))))
            ax.set_xscale("log")
            ax.set_yscale("log")
            _value_ticks(ax, s_all)
            _tidy_log_y(ax)
            ax.set_xlabel("samples per datapoint S")
            ax.set_ylabel("total variance [nats²]")
            ax.set_title(_BLOCK_LABEL[block])
            if zero:
                ax.text(0.02, 0.03, "zero variance: " + ", ".join(zero), transform=ax.transAxes, fontsize=12,
                        color="0.3")
        if checkpoint is not None:
            fig.suptitle(f"Gradient variance vs samples (model after {checkpoint} training steps)")
        _legend(fig, axes, by_last_value=True)
    return fig


def variance_at_equal_cost(table, checkpoint=None, block="q"):
    """Variance x cost (decoder evaluations per datapoint) against S: the fair comparison.

    An estimator that evaluates the decoder twice per draw has to halve the variance to break
    even; on this plot lower is better at equal compute.
    """
    table, checkpoint = _last_checkpoint(table, checkpoint)
    with style():
        fig, ax = new_figure(1, 1, width=11.0)
        for name in _unique(table, "estimator"):
            rows = _where(table, estimator=name)
            v = _col(rows, f"var_{block}_x_cost")
            if onp.all(v <= 0):
                continue
            ax.plot(_col(rows, "S"), _positive(v), **line_for(name))
        ax.set_xscale("log")
        ax.set_yscale("log")
        _value_ticks(ax, _col(table, "S"))
        _tidy_log_y(ax)
        ax.set_xlabel("samples per datapoint S")
        ax.set_ylabel("variance × decoder evaluations [nats²]")
        ax.set_title(f"{block}-gradient variance at equal cost")
        _legend(fig, ax, by_last_value=True)
    return fig


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
    with style():
        fig, axes = new_figure(1, 3, width=17.0, height=5.2)
        panels = [("bias2_q", "squared bias", "bias2_q_se"), ("var_q", "total variance", None),
                  ("mse_q", "mean squared error", "mse_q_se")]
        for ax, (col, label, se) in zip(axes, panels):
            for name in _unique(table, "estimator"):
                rows = _where(table, estimator=name)
                tau, y = _col(rows, "tau"), _col(rows, col)
                err = _col(rows, se) if se else None
                ax.errorbar(tau, _positive(y), yerr=err, **line_for(name))
            ax.set_xscale("log")
            ax.set_yscale("log")
            _value_ticks(ax, _col(table, "tau"))
            _tidy_log_y(ax)
            ax.set_xlabel("temperature τ")
            ax.set_ylabel(f"{label} [nats²]")
            ax.set_title(label)
        s = _unique(table, "S")
        fig.suptitle(f"Relaxed estimators: bias-variance trade-off of the q-gradient (S = {', '.join(map(str, s))})")
        _legend(fig, axes)
    return fig


def train_compare_curves(table):
    """Exact log p(x) during training for each method, against steps and against wall time.

    Parameters
    ----------
    table : pandas.DataFrame
        The long-form history table of :func:`vi_lab.experiments.train_compare`: columns
        ``method``, ``step``, ``seconds``, ``log_px_train``, ``log_px_valid``.

    Notes
    -----
    Top row: mean exact log p(x) of the training data; bottom row: held-out data. The right
    column charges each method its own wall time, so a cheap noisy estimator can win there and
    lose on the left.
    """
    splits = [s for s in ("train", "valid") if f"log_px_{s}" in table.columns
              and not onp.all(onp.isnan(_col(table, f"log_px_{s}")))]
    with style():
        fig, axes = new_figure(len(splits), 2, width=16.4, height=4.6 * len(splits), sharey="row", squeeze=False)
        for name in _unique(table, "method"):
            rows = _where(table, method=name)
            every = max(1, len(rows) // 6)
            for i, split in enumerate(splits):
                for j, xcol in enumerate(("step", "seconds")):
                    axes[i, j].plot(_col(rows, xcol), _col(rows, f"log_px_{split}"), markevery=every,
                                    **line_for(name))
        for i, split in enumerate(splits):
            axes[i, 0].set_ylabel(f"{'training' if split == 'train' else 'held-out'}\nlog p(x) [{NATS}]")
        axes[-1, 0].set_xlabel("training step")
        axes[-1, 1].set_xlabel("training wall time [s]")
        axes[0, 0].set_title("per step")
        axes[0, 1].set_title("per second of compute")
        fig.suptitle("Learning curves: exact mean log p(x)")
        _legend(fig, axes.ravel())
    return fig


def tightness_gaps(table, max_points=40):
    """Stacked bars: the approximation gap and the amortization gap, on average and per datapoint.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-datapoint table of :func:`vi_lab.experiments.tightness` (columns ``split``,
        ``approximation_gap``, ``amortization_gap``, optionally ``wake_sleep_gap``).
    max_points : int, default 40
        Datapoints shown per split in the right panel (evenly spaced after sorting by total gap).

    Notes
    -----
    log p(x) - ELBO(amortized q) = [log p(x) - ELBO(best mean-field q)] + [ELBO(best mean-field q)
    - ELBO(amortized q)]: the first term is the price of the mean-field family, the second the
    price of sharing one encoder across datapoints. For the wake-sleep encoder the upper part is
    its own excess over the best mean-field q.
    """
    colors = {"approx": OKABE_ITO[0], "amort": "#E69F00"}
    splits = _unique(table, "split")
    names = {"train": "training", "valid": "held-out"}
    has_ws = "wake_sleep_gap" in table.columns and not onp.all(onp.isnan(_col(table, "wake_sleep_gap")))
    with style():
        fig, axes = new_figure(1, 2, width=17.0, height=5.8, gridspec_kw={"width_ratios": [1.25, 2.4]})
        ax = axes[0]
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
                ax.bar(pos, b, bottom=a, color=colors["amort"], width=0.8)
                ax.text(pos, a + b, f"{a + b:.2f}", ha="center", va="bottom", fontsize=13)
                ticks.append(pos)
                labels.append(f"{label}\n{names.get(split, split)}")
                pos += 1.0
            pos += 0.5
        ax.set_xticks(ticks, labels, fontsize=13)
        ax.set_ylabel(f"log p(x) − ELBO [{NATS}]")
        ax.set_title("mean over datapoints")
        ax.grid(axis="x", visible=False)

        ax = axes[1]
        start, centers = 0, []
        for split in splits:
            sub = _where(table, split=split)
            approx, amort = _col(sub, "approximation_gap"), _col(sub, "amortization_gap")
            order = onp.argsort(approx + amort)
            if order.size > max_points:
                order = order[onp.linspace(0, order.size - 1, max_points).round().astype(int)]
            x = start + onp.arange(order.size)
            ax.bar(x, approx[order], color=colors["approx"], width=0.8, label="approximation gap")
            ax.bar(x, amort[order], bottom=approx[order], color=colors["amort"], width=0.8,
                   label="amortization gap" if not has_ws else "amortization gap (VI) /\nexcess gap (WS)")
            centers.append((x[0] + x[-1]) / 2)
            start = x[-1] + 4
        ax.set_xticks(centers, [f"{names.get(s, s)} data (sorted)" for s in splits])
        ax.set_ylabel(f"gap [{NATS}]")
        ax.set_title("per datapoint, VI encoder")
        ax.grid(axis="x", visible=False)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[:2], labels[:2], loc="upper left")
        fig.suptitle("log p(x) − ELBO = approximation gap + amortization gap")
        if has_ws:
            axes[0].set_xlabel("VI: ELBO-trained encoder\nWS: sleep-phase encoder", fontsize=12, color="0.3")
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
    Carlo standard error.
    """
    splits = _unique(table, "split") if "split" in table.columns else [None]
    names = {"train": "training data", "valid": "held-out data"}
    with style():
        fig, axes = new_figure(1, len(splits), width=7.4 * len(splits) + 3.4, height=5.6, squeeze=False)
        for ax, split in zip(axes[0], splits):
            sub = table if split is None else _where(table, split=split)
            k = _col(sub, "k")
            ax.axhline(_col(sub, "log_px")[0], color="#000000", linestyle="-", linewidth=2, label="exact log p(x)")
            ax.axhline(_col(sub, "elbo_local")[0], color="#E69F00", linestyle=":", linewidth=2.5,
                       label="ELBO, best mean-field q")
            ax.axhline(_col(sub, "elbo_amortized")[0], color="0.5", linestyle="--", linewidth=2,
                       label="ELBO, amortized q (= IWAE$_1$)")
            ax.errorbar(k, _col(sub, "iwae"), yerr=_col(sub, "iwae_se"), color=OKABE_ITO[0], marker="o",
                        label="IWAE bound, amortized q")
            ax.set_xscale("log")
            _value_ticks(ax, k)
            ax.set_xlabel("importance samples k")
            ax.set_ylabel(f"mean over datapoints [{NATS}]")
            ax.set_title(names.get(split, split or "all data"))
        fig.suptitle("The IWAE bound tightens towards log p(x) as k grows")
        _legend(fig, axes[0])
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
    with style():
        fig, ax = new_figure(1, 1, width=11.0)
        for name in _unique(table, "estimator"):
            rows = _where(table, estimator=name)
            v = _col(rows, f"var_{block}")
            if onp.all(v <= 0):
                continue
            ax.plot(_col(rows, "checkpoint"), _positive(v), **line_for(name))
        ax.set_yscale("log")
        steps = _unique(table, "checkpoint")
        if len(steps) <= 8:
            ax.set_xticks(steps, [str(s) for s in steps])
        ax.set_xlabel("training step of the measured model")
        ax.set_ylabel(f"total variance, S = {n_samples} [nats²]")
        ax.set_title(f"{block}-gradient variance as q sharpens")
        _legend(fig, ax, by_last_value=True)
    return fig


def figures_for(results):
    """Every figure of an experiment run, by file stem.

    Parameters
    ----------
    results : vi_lab.experiments.results.Results
        What :func:`vi_lab.experiments.run_variance`, ``run_tightness``, ``train_compare`` or
        ``compare`` returned.

    Returns
    -------
    dict of str -> matplotlib.figure.Figure
    """
    figs = {}
    if "variance" in results and len(results["variance"]):
        table = results["variance"]
        figs["variance_vs_samples"] = variance_vs_samples(table)
        figs["variance_at_equal_cost"] = variance_at_equal_cost(table)
        if len(_unique(table, "checkpoint")) > 1:
            figs["variance_vs_checkpoint"] = variance_vs_checkpoint(table)
    if "tau" in results and len(results["tau"]):
        figs["bias_variance_tau"] = bias_variance_vs_tau(results["tau"])
    if "tightness" in results:
        figs["tightness_gaps"] = tightness_gaps(results["tightness"])
    if "iwae" in results:
        figs["iwae_vs_k"] = iwae_vs_k(results["iwae"])
    if "history" in results:
        figs["learning_curves"] = train_compare_curves(results["history"])
    return figs
