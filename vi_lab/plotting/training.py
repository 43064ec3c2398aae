"""Figures of training and bound tightness: learning curves, the two gaps, IWAE against k.

From the tables of :func:`vi_lab.experiments.train_compare` and :func:`vi_lab.experiments.tightness`
(and :func:`~vi_lab.experiments.iwae_curve`); the same rules as the variance figures: at most
six series per panel, one panel per family beyond that, every estimator its own look.
"""
import numpy as onp

from ._figure_helpers import _col, _legend, _panel_legends, _split_label, _tidy_log_x, _unique, _value_ticks, _where
from .style import NATS, OKABE_ITO, legend_inside, new_figure, panel_lines, panels, style

__all__ = ["train_compare_curves", "tightness_gaps", "iwae_vs_k"]

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
