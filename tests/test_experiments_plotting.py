"""The figure functions: they draw from result tables, label their axes with units, and stay lazy."""
import subprocess
import sys
import textwrap

import numpy as onp
import pandas as pd
import pytest

import vi_lab
from vi_lab import plotting
from vi_lab.experiments import iwae_curve
from vi_lab.plotting.style import _KNOWN


def _variance_table():
    rows = []
    for step in (0, 50):
        for name, c, cost in (("exact", 0.0, 8), ("score_function", 100.0, 1), ("arm", 3.0, 2)):
            for s in (1, 10, 100):
                var = c / s
                rows.append({"checkpoint": step, "estimator": name, "S": s, "var_q": var, "var_model": var / 2,
                             "var_q_x_cost": var * cost * s, "var_model_x_cost": var * cost * s / 2})
    return pd.DataFrame(rows)


def _tightness_table():
    rng = onp.random.default_rng(0)
    n = 10
    log_px = -5 + rng.normal(size=n)
    approx, amort = rng.random(n), rng.random(n)
    cols = {"index": onp.arange(n), "split": ["train"] * 6 + ["valid"] * 4, "log_px": log_px,
            "elbo_amortized": log_px - approx - amort, "elbo_local": log_px - approx,
            "elbo_wake_sleep": log_px - approx - 2 * amort, "approximation_gap": approx, "amortization_gap": amort,
            "wake_sleep_gap": approx + 2 * amort}
    for k in (1, 10):
        cols[f"iwae_{k}"] = log_px - (approx + amort) / k
        cols[f"iwae_{k}_se"] = onp.full(n, 0.01)
    return pd.DataFrame(cols)


def _labels(fig):
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes if ax.get_visible() and ax.has_data()]


def test_variance_figures_have_log_axes_a_reference_line_and_labels():
    table = _variance_table()
    fig = plotting.variance_vs_samples(table)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        labels = [line.get_label() for line in ax.get_lines()]
        assert "score_function" in labels and "arm" in labels and "exact" not in labels   # zero variance
        assert "∝ 1/S" in labels
        assert "nats" in ax.get_ylabel() and ax.get_xlabel()
    for fig in (plotting.variance_at_equal_cost(table), plotting.variance_vs_checkpoint(table)):
        assert all(x and "nats" in y for x, y in _labels(fig))


def test_bias_variance_tau_figure():
    rows = [{"estimator": "concrete", "tau": t, "S": 10, "bias2_q": 0.1 * t, "bias2_q_se": 0.01, "var_q": 1 / t,
             "mse_q": 0.1 * t + 1 / t, "mse_q_se": 0.02} for t in (0.1, 1.0)]
    fig = plotting.bias_variance_vs_tau(pd.DataFrame(rows))
    assert len(fig.axes) == 3 and all(ax.get_xlabel() == "temperature τ" for ax in fig.axes)


def test_tightness_and_iwae_figures():
    table = _tightness_table()
    fig = plotting.tightness_gaps(table)
    assert all(y for _, y in _labels(fig)) and "nats" in fig.axes[0].get_ylabel()
    fig = plotting.iwae_vs_k(iwae_curve(table))
    assert len(fig.axes) == 2                                   # one panel per split
    for ax in fig.axes:
        assert "nats" in ax.get_ylabel() and ax.get_xscale() == "log"
        assert any(line.get_label() == "exact log p(x)" for line in ax.get_lines())


def test_learning_curves_figure():
    rows = [{"method": m, "step": s, "seconds": 0.01 * s * (i + 1), "log_px_train": -10 + s / 10 * (i + 1),
             "log_px_valid": -11 + s / 20} for i, m in enumerate(["arm", "exact_ml"]) for s in (0, 10, 20)]
    fig = plotting.train_compare_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 4
    assert "wall time" in fig.axes[3].get_xlabel() and "nats" in fig.axes[0].get_ylabel()


def test_figures_for_picks_the_figures_of_each_experiment():
    from vi_lab.experiments.results import Results
    figs = plotting.figures_for(Results("x", {}, {"variance": _variance_table(), "tightness": _tightness_table()}))
    assert set(figs) == {"variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "tightness_gaps"}


def test_general_figures():
    x = vi_lab.data.bars_and_stripes(4)
    fig = plotting.image_grid(x, ncols=10, title="bars")
    assert len(fig.axes) == 30
    post = onp.exp(onp.random.default_rng(0).normal(size=8))
    post /= post.sum()
    fig = plotting.posterior_bars(post, q=onp.full(8, 1 / 8), top=5)
    assert len(fig.axes[0].patches) == 10 and fig.axes[0].get_ylabel() == "probability"
    fig = plotting.history({"step": onp.arange(3), "log_px_train": onp.array([-3.0, -2.0, -1.5])})
    assert "nats" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="keys"):
        plotting.history({"step": onp.arange(3)}, keys=["nope"])
    with pytest.raises(ValueError, match="2\\*\\*K"):
        plotting.posterior_bars(onp.ones(6) / 6)


def test_every_known_name_has_its_own_look_from_the_colour_blind_safe_palette():
    looks = {name: plotting.line_for(name) for name in _KNOWN if name not in ("reinforce", "exact")}
    triples = {(v["color"], v["linestyle"], v["marker"]) for v in looks.values()}
    assert len(triples) == len(looks)
    assert all(v["color"] in plotting.OKABE_ITO + ["#7F7F7F"] for v in looks.values())
    assert plotting.line_for("concrete:tau=0.3")["color"] == plotting.color_for("concrete")
    assert plotting.rc_params()["font.size"] >= 14


def test_import_is_lazy_and_headless_uses_agg():
    code = textwrap.dedent("""
        import os, sys
        os.environ.pop("DISPLAY", None); os.environ.pop("WAYLAND_DISPLAY", None); os.environ.pop("MPLBACKEND", None)
        import vi_lab
        assert "matplotlib" not in sys.modules, "import vi_lab must not import matplotlib"
        from vi_lab import plotting
        plotting.image_grid(vi_lab.data.bars_and_stripes(3))
        import matplotlib
        print(matplotlib.get_backend().lower())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "agg"
