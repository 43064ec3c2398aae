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
from vi_lab.plotting.style import FAMILIES, LOOKS


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
        assert "nats" in ax.get_ylabel()
    assert fig.axes[-1].get_xlabel() == "samples per datapoint S"
    for fig in (plotting.variance_at_equal_cost(table), plotting.variance_vs_checkpoint(table)):
        assert all(x and "nats" in y for x, y in _labels(fig))


def test_variance_table_without_checkpoints_is_drawn_whole():
    """experiments.variance on given parameters leaves the checkpoint column empty (None)."""
    table = _variance_table().query("checkpoint == 50").assign(checkpoint=None)
    fig = plotting.variance_vs_samples(table)
    assert {line.get_label() for line in fig.axes[0].get_lines()} >= {"score_function", "arm"}
    assert "training steps" not in fig._suptitle.get_text()
    fig = plotting.variance_at_equal_cost(table)
    assert {line.get_label() for line in fig.axes[0].get_lines()} == {"score_function", "arm"}
    with pytest.raises(ValueError, match="checkpoint"):
        plotting.variance_vs_samples(_variance_table(), checkpoint=7)


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
    fig = plotting.train_compare_curves(pd.DataFrame(_history_rows(["arm", "exact_ml"])), x="seconds")
    assert len(fig.axes) == 2
    assert "wall time" in fig.axes[1].get_xlabel() and "nats" in fig.axes[0].get_ylabel()
    assert fig.axes[0].get_xscale() == "linear"


def test_figures_for_picks_the_figures_of_each_experiment():
    from vi_lab.experiments.results import Results
    figs = plotting.figures_for(Results("x", {}, {"variance": _variance_table(), "tightness": _tightness_table()}))
    assert set(figs) == {"variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "tightness_gaps"}
    history = pd.DataFrame(_history_rows(["disarm", "exact_ml"]))
    figs = plotting.figures_for(Results("x", {}, {"history": history}))
    assert set(figs) == {"learning_curves", "learning_curves_wall_time"}
    assert "decoder evaluations" in figs["learning_curves"].axes[-1].get_xlabel()
    assert "wall time" in figs["learning_curves_wall_time"].axes[-1].get_xlabel()


def test_general_figures():
    x = vi_lab.data.bars_and_stripes(4)
    fig = plotting.image_grid(x, ncols=10, title="bars")
    assert len(fig.axes) == 30
    post = onp.exp(onp.random.default_rng(0).normal(size=8))
    post /= post.sum()
    fig = plotting.posterior_bars(post, q=onp.full(8, 1 / 8), top=5)
    assert len(fig.axes[0].patches) == 10 and fig.axes[0].get_ylabel() == "probability"
    fig = plotting.posterior_bars(post, q={"exclusive KL": onp.full(8, 1 / 8), "inclusive KL": post}, top=4)
    ax = fig.axes[0]
    assert len(ax.patches) == 12
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["exact p(z|x)", "exclusive KL", "inclusive KL"]
    with pytest.raises(ValueError, match="inclusive"):
        plotting.posterior_bars(post, q={"inclusive": onp.ones(4) / 4})
    fig = plotting.history({"step": onp.arange(3), "log_px_train": onp.array([-3.0, -2.0, -1.5])})
    assert "nats" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="keys"):
        plotting.history({"step": onp.arange(3)}, keys=["nope"])
    with pytest.raises(ValueError, match="2\\*\\*K"):
        plotting.posterior_bars(onp.ones(6) / 6)


def test_each_estimator_sits_in_the_family_its_method_belongs_to():
    # the panel title is what a lecture shows: RODEO is REINFORCE with (Stein) control variates,
    # not an antithetic estimator; LEG sums each coordinate exactly, neither a baseline nor a pair
    assert {plotting.family_of(n) for n in ["score_function", "rloo", "nvil", "vimco", "dcv", "rodeo"]} == \
        {"score-function family"}
    assert plotting.family_of("leg") == "local expectation"
    assert {plotting.family_of(n) for n in ["disarm", "arm", "arms"]} == {"antithetic"}
    assert {plotting.family_of(n) for n in ["concrete", "straight_through", "rebar", "relax", "gumbel_rao",
                                            "reinmax"]} == {"relaxed"}


def test_every_estimator_and_method_has_its_own_look_within_its_family():
    from vi_lab.experiments.train_compare import REFERENCE_METHODS
    names = set(vi_lab.estimators.names()) | {"rloo"} | set(REFERENCE_METHODS)
    missing = sorted(n for n in names if n not in LOOKS)
    assert not missing, f"registered estimators or methods without a look in vi_lab.plotting: {missing}"
    for family, members in FAMILIES.items():
        assert len(members) <= 6, family
        looks = [LOOKS[m] for m in members if m != "exact"]            # exact is exact_elbo's alias
        assert len({c for c, _, _ in looks}) == len(looks), f"{family}: two members share a colour"
        assert len({str(ls) for _, ls, _ in looks}) == len(looks), f"{family}: two members share a line style"
    assert all(c in plotting.OKABE_ITO + ["#7F7F7F"] for c, _, _ in LOOKS.values())
    assert plotting.line_for("reinforce")["color"] == plotting.color_for("score_function")
    variant = plotting.line_for("concrete:tau=0.3")
    assert variant["color"] == plotting.color_for("concrete")
    assert variant["linestyle"] != plotting.line_for("concrete")["linestyle"]
    assert plotting.rc_params()["font.size"] >= 14
    # unknown names still get distinct looks, not a crash
    a, b = plotting.line_for("my_estimator_a"), plotting.line_for("my_estimator_b")
    assert (a["color"], a["linestyle"]) != (b["color"], b["linestyle"])


_ALL = ["score_function", "rloo", "nvil", "vimco", "dcv", "leg", "arm", "disarm", "arms", "rodeo",
        "concrete", "straight_through", "rebar", "relax", "gumbel_rao", "reinmax"]


def _full_variance_table():
    rows = []
    for i, name in enumerate(["exact"] + _ALL):
        for s in (1, 10, 100):
            var = 0.0 if name == "exact" else (1.0 + i) / s
            rows.append({"checkpoint": 100, "estimator": name, "S": s, "var_q": var, "var_model": var / 3,
                         "var_q_x_cost": var * s * 2, "var_model_x_cost": var * s, "bias2_q": 0.01 * (name == "concrete"),
                         "bias2_q_se": 0.001, "bias2_model": 0.0, "bias2_model_se": 0.001})
    return pd.DataFrame(rows)


def _series(ax):
    """(label, colour, line style) of the estimator lines of a panel (reference lines excluded)."""
    out = []
    for line in ax.get_lines():
        label = line.get_label()
        if label.startswith("_") or label == "∝ 1/S":
            continue
        out.append((label, line.get_color(), str(line.get_linestyle()) + str(line.get_dashes() if hasattr(line, "get_dashes") else "")))
    return out


def _looks_of(fig):
    looks = {}
    for ax in fig.axes:
        for label, color, _ in _series(ax):
            looks.setdefault(label, set()).add(color)
    return looks


def test_at_most_six_series_per_panel_each_with_its_own_colour_and_line_style():
    table = _full_variance_table()
    history = pd.DataFrame(_history_rows(_ALL + ["exact_ml", "wake_sleep", "reweighted_wake_sleep", "exact_elbo"]))
    figs = [plotting.variance_vs_samples(table), plotting.variance_vs_samples(table, blocks=("q",), bias=True),
            plotting.variance_at_equal_cost(table), plotting.train_compare_curves(history),
            plotting.train_compare_curves(history, x="seconds")]
    colours = {}
    for fig in figs:
        for ax in fig.axes:
            series = _series(ax)
            assert len(series) <= 6, [s[0] for s in series]
            assert len({c for _, c, _ in series}) == len(series), f"shared colour in a panel: {series}"
            dashes = [tuple(line.get_dashes()) if hasattr(line, "get_dashes") else line.get_linestyle()
                      for line in ax.get_lines() if not line.get_label().startswith("_") and line.get_label() != "∝ 1/S"]
            styles = [str(line.get_linestyle()) + str(getattr(line, "_dash_pattern", "")) for line in ax.get_lines()
                      if not line.get_label().startswith("_") and line.get_label() != "∝ 1/S"]
            assert len(set(styles)) == len(styles), f"shared line style in a panel: {styles}"
            assert len(dashes) == len(series)
        for name, cs in _looks_of(fig).items():
            colours.setdefault(name, set()).update(cs)
    # the same estimator has the same colour in every figure
    import matplotlib.colors as mcolors
    for name, cs in colours.items():
        assert len({mcolors.to_hex(c) for c in cs}) == 1, (name, cs)
    drawn = set(colours)
    assert set(_ALL) <= drawn, f"estimators missing from the figures: {set(_ALL) - drawn}"
    fig = plotting.variance_vs_samples(table)
    assert len(fig.axes) == 4 * 2                     # four families (leg has its own) x two blocks
    assert any("zero variance: exact" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_bias_panel_beside_the_variance_panel():
    table = _full_variance_table()
    fig = plotting.variance_vs_samples(table, blocks=("q",), bias=True, block_labels={"q": "q-gradient (mu, log sigma)"})
    axes = onp.array(fig.axes).reshape(2, 4)                 # rows: variance, bias; columns: families
    assert [ax.get_title() for ax in axes[0]] == ["score-function family", "local expectation", "antithetic",
                                                  "relaxed"]
    assert "q-gradient (mu, log sigma)" in axes[0, 0].get_ylabel() and "variance" in axes[0, 0].get_ylabel()
    assert "squared bias" in axes[1, 0].get_ylabel()
    assert all(ax.get_yscale() == "log" for ax in axes[0]) and all(ax.get_yscale() == "linear" for ax in axes[1])
    ys = {c.get_label(): c.lines[0].get_ydata() for c in axes[1, 3].containers}
    onp.testing.assert_allclose(ys["concrete"], 0.01)       # the relaxed estimator's bias floor
    onp.testing.assert_allclose(ys["rebar"], 0.0)
    assert any(onp.allclose(line.get_ydata(), 0) for line in axes[1, 3].get_lines() if line.get_label().startswith("_"))


def _history_rows(methods, n_latent=8):
    cost = {"exact_ml": 2 ** n_latent, "exact_elbo": 2 ** n_latent, "disarm": 4, "arm": 4, "rebar": 6, "relax": 6}
    rows = []
    for i, m in enumerate(methods):
        for step in (0, 10, 20, 30):
            rows.append({"method": m, "step": step, "seconds": 0.01 * step * (1 + i % 3),
                         "decoder_evals": step * 30 * cost.get(m, 2), "log_px_train": -10 + step / 10 * (1 + i / 20),
                         "log_px_valid": -11 + step / 20})
    return rows


def test_learning_curves_are_drawn_against_decoder_evaluations_on_a_log_axis():
    fig = plotting.train_compare_curves(pd.DataFrame(_history_rows(["disarm", "exact_ml"])))
    assert len(fig.axes) == 2                                            # train, held-out; one family panel
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "decoder evaluations" in fig.axes[-1].get_xlabel()
    right_end = {line.get_label(): onp.max(line.get_xdata()) for line in ax.get_lines()}
    assert right_end["exact_ml"] / right_end["disarm"] == 2 ** 8 / 4      # exact_ml is not drawn as cheap
    with pytest.raises(ValueError, match="x"):
        plotting.train_compare_curves(pd.DataFrame(_history_rows(["arm"])), x="minutes")
    # the table of experiments.train_compare: evaluations per training image, and its note
    table = pd.DataFrame(_history_rows(["disarm", "exact_ml"]))
    table["evals_per_datapoint"] = table["decoder_evals"] / 30
    table.attrs["overfitting_control"] = "overfitting control: early stopping on held-out exact log p(x)"
    fig = plotting.train_compare_curves(table)
    assert "per training image" in fig.axes[-1].get_xlabel()
    assert "early stopping" in fig._suptitle.get_text()
    right_end = {line.get_label(): onp.max(line.get_xdata()) for line in fig.axes[0].get_lines()}
    assert right_end["exact_ml"] / right_end["disarm"] == 2 ** 8 / 4


def test_slides_style_is_16_by_9_with_legends_inside_the_axes():
    table = _variance_table()
    with plotting.style("slides"):
        assert plotting.current_kind() == "slides"
        figs = [plotting.variance_vs_samples(table), plotting.variance_at_equal_cost(table),
                plotting.train_compare_curves(pd.DataFrame(_history_rows(["disarm", "exact_ml"]))),
                plotting.iwae_vs_k(iwae_curve(_tightness_table()))]
    assert plotting.current_kind() == "default"
    for fig in figs:
        w, h = fig.get_size_inches()
        assert abs(w / h - 16 / 9) < 0.01, (w, h)
        assert not fig.legends, "slides: the legend must be inside the axes"
        assert any(ax.get_legend() is not None for ax in fig.axes)
    fig = plotting.variance_vs_samples(table)                 # default style: one legend beside the panels
    assert fig.legends and tuple(fig.get_size_inches()) != plotting.SLIDE_SIZE
    with pytest.raises(ValueError, match="kind"):
        with plotting.style("poster"):
            pass


def _render(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_iwae_title_and_legend_do_not_overlap():
    fig = plotting.iwae_vs_k(iwae_curve(_tightness_table()))
    renderer = _render(fig)
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            assert not title.overlaps(legend.get_window_extent(renderer))
            assert ax.get_window_extent(renderer).contains(*legend.get_window_extent(renderer).get_points()[1] - 1)


def test_tightness_labels_and_one_scale_for_train_and_held_out():
    table = _tightness_table()
    fig = plotting.tightness_gaps(table)
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    assert "training data, sorted by gap" in ticks and not any("data data" in t for t in ticks)
    fig = plotting.tightness_gaps(table, by="split")
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert "training data (N = 6): mean" in titles and "held-out data (N = 4): mean" in titles
    lims = {ax.get_ylim() for ax in fig.axes}
    assert len(lims) == 1, f"panels on different y scales: {lims}"
    with pytest.raises(ValueError, match="by"):
        plotting.tightness_gaps(table, by="method")


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


def test_figures_drawn_in_worker_processes_are_the_same_files(tmp_path):
    from vi_lab.experiments.results import Results
    results = Results("variance", {"seed": 0},
                      {"variance": _variance_table(), "tightness": _tightness_table()})
    serial = results.save(tmp_path / "one", jobs=1)
    parallel = results.save(tmp_path / "two", jobs=2)
    assert serial.files == parallel.files
    figures = [f for f in serial.files if f.endswith((".png", ".pdf"))]
    assert len(figures) == 2 * len(plotting.figure_makers(results)) >= 6
    for name in figures:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    config = (tmp_path / "two" / "config.json").read_text()
    assert all(name in config for name in figures)              # listed with their SHA-256
