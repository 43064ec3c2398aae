"""The study figures obey the palette rule: family panels, no two series of a panel alike, means across seeds."""
import numpy as np
import pandas as pd
import pytest

from vi_lab.plotting import LOOKS
from vi_lab.plotting.study import log_px_vs_evals, variance_vs_progress

ESTIMATORS = ["rloo", "disarm", "arm", "rebar", "relax", "concrete", "vimco", "nvil"]
REFERENCES = ["exact_elbo", "exact_ml"]
POINT = dict(data="digits", K=12, hidden="64", method="amortized")


def tables(seeds=(0, 1, 2), steps=(0, 10, 20, 30, 40, 50)):
    rng = np.random.default_rng(0)
    runs, curves, var = [], [], []
    for S in (2, 8):
        for e, name in enumerate(ESTIMATORS):
            runs.append(dict(POINT, S=S, estimator=name, reference=False, equal_budget=True, steps=50))
            for seed in seeds:
                for step in steps:
                    curves.append(dict(POINT, S=S, estimator=name, seed=seed, step=step,
                                       evals_per_datapoint=2.0 * step, wall_time=0.1 * step + 0.01,
                                       log_px_valid=-25 + step / 10 + e / 10 + rng.normal(scale=0.1)))
            for run in ("own", "shared"):
                for progress in (0.1, 0.5, 1.0):
                    v = 100.0 * (e + 1)
                    var.append(dict(POINT, S=S, estimator=name, run=run, progress=progress, var_q_x_cost=v,
                                    var_q_x_cost_lo=0.8 * v, var_q_x_cost_hi=1.2 * v))
    for name in REFERENCES:
        runs.append(dict(POINT, S=np.nan, estimator=name, reference=True, equal_budget=False, steps=200))
        for seed in seeds:
            for step in (0, 100, 200):
                curves.append(dict(POINT, S=np.nan, estimator=name, seed=seed, step=step,
                                   evals_per_datapoint=4096.0 * step, wall_time=0.2 * step + 0.01,
                                   log_px_valid=-19 - (name == "exact_elbo") + rng.normal(scale=0.1)))
    return {"runs": pd.DataFrame(runs), "curves": pd.DataFrame(curves), "variance_summary": pd.DataFrame(var)}


def panel_series(ax):
    """(label, colour, line style) of the labelled lines of one panel."""
    return [(l.get_label(), l.get_color(), str(l.get_linestyle())) for l in ax.get_lines()
            if not l.get_label().startswith("_")]


@pytest.mark.parametrize("draw", [log_px_vs_evals, variance_vs_progress])
def test_study_figures_split_into_family_panels_with_distinct_series(draw):
    tabs = tables()
    fig = draw(tabs)
    axes = np.array(fig.axes).reshape(4, -1)           # 2 grid points x 2 rows each
    titles = [ax.get_title() for ax in axes[0]]
    want = ["score-function family", "antithetic", "relaxed"] + (["references"] if draw is log_px_vs_evals else [])
    assert titles == want
    seen = set()
    for ax in axes.ravel():
        series = panel_series(ax)
        assert 1 <= len(series) <= 6
        colours = [c for _, c, _ in series]
        styles = [s for _, _, s in series]
        assert len(set(colours)) == len(colours), (ax.get_title(), series)
        assert len(set(styles)) == len(styles), (ax.get_title(), series)
        for label, colour, _ in series:
            name = label.split(":")[0].split(" ")[0]
            assert colour.lower() == LOOKS[name][0].lower()     # the one palette
            seen.add(name)
    assert seen == set(ESTIMATORS) | (set(REFERENCES) if draw is log_px_vs_evals else set())
    # the pairs that share a colour in LOOKS (rloo/arm, disarm/concrete, ...) never meet in one panel
    assert LOOKS["rloo"][0] == LOOKS["arm"][0]


def test_log_px_line_is_the_mean_across_seeds():
    tabs = tables()
    fig = log_px_vs_evals(tabs)
    ax = np.array(fig.axes).reshape(4, -1)[0, 0]       # S = 2, against evaluations, score-function family
    line = next(l for l in ax.get_lines() if l.get_label() == "rloo")
    c = tabs["curves"]
    rows = c[(c["estimator"] == "rloo") & (c["S"] == 2)]
    want = rows.groupby("step")["log_px_valid"].mean().to_numpy()
    np.testing.assert_allclose(line.get_ydata(), want, rtol=0, atol=1e-12)
    assert not np.allclose(line.get_ydata(), rows[rows["seed"] == 0].sort_values("step")["log_px_valid"])
