"""The variance experiment: its statistics are calibrated, and it tells unbiased from biased estimators."""
import numpy as onp
import pandas as pd
import pytest

import vi_lab
from vi_lab import estimators
from vi_lab.experiments import gradient_stats, variance, tau_sweep, without_wall_clock
from vi_lab.experiments.variance import COLUMNS

from conftest import random_params

N_SE = 4.0   # tolerance in standard errors for Monte Carlo checks


# ---------------------------------------------------------------------------- gradient_stats
def _synthetic(rng, bias, n_reps=100, dim=40):
    scales = onp.linspace(0.5, 2.0, dim)
    truth = rng.standard_normal(dim)
    draws = truth + bias + scales * rng.standard_normal((n_reps, dim))
    return draws, truth, float((scales ** 2).sum())


def _naive_bias2(draws, truth):
    """The tempting but wrong estimate ||mean - truth||^2: biased upwards by tr(Sigma)/R."""
    err = draws.mean(axis=0) - truth
    return float(err @ err)


@pytest.mark.parametrize("bias_size", [0.0, 0.3])
def test_bias2_is_unbiased_and_its_standard_error_is_calibrated(bias_size):
    rng = onp.random.default_rng(0)
    bias = bias_size * onp.ones(40) / onp.sqrt(40)
    values, ses, naive = [], [], []
    for _ in range(400):
        draws, truth, total_var = _synthetic(rng, bias)
        stats = gradient_stats(draws, truth)
        values.append(stats["bias2"])
        ses.append(stats["bias2_se"])
        naive.append(_naive_bias2(draws, truth))
    values, ses = onp.array(values), onp.array(ses)
    target = bias_size ** 2
    # unbiased for ||b||^2 ...
    assert abs(values.mean() - target) < N_SE * values.std(ddof=1) / onp.sqrt(values.size)
    # ... with a standard error that matches the actual spread (within 15%)
    assert abs(ses.mean() / values.std(ddof=1) - 1.0) < 0.15
    # the naive estimate fails the same unbiasedness check
    naive = onp.array(naive)
    assert abs(naive.mean() - target) > N_SE * naive.std(ddof=1) / onp.sqrt(naive.size)


def test_gradient_stats_against_brute_force():
    rng = onp.random.default_rng(1)
    draws, truth, _ = _synthetic(rng, 0.1, n_reps=7, dim=5)
    stats = gradient_stats(draws, truth)
    var = sum(onp.var(draws[:, d], ddof=1) for d in range(5))
    mse = onp.mean([onp.sum((g - truth) ** 2) for g in draws])
    pairs = [(draws[r] - truth) @ (draws[s] - truth) for r in range(7) for s in range(7) if r != s]
    snr = onp.mean([abs(draws[:, d].mean()) / draws[:, d].std(ddof=1) for d in range(5)])
    assert stats["var"] == pytest.approx(var, rel=1e-12)
    assert stats["mse"] == pytest.approx(mse, rel=1e-12)
    assert stats["bias2"] == pytest.approx(onp.mean(pairs), rel=1e-10)   # the U-statistic
    assert stats["snr"] == pytest.approx(snr, rel=1e-12)
    assert stats["snr_global"] == pytest.approx(onp.linalg.norm(draws.mean(0)) / onp.sqrt(var), rel=1e-12)


def test_identical_estimates_have_exactly_zero_variance():
    g = onp.tile(onp.array([0.1, 1e3, -7.3]), (50, 1))
    stats = gradient_stats(g, g[0])
    assert stats["var"] == 0.0 and stats["bias2"] == 0.0 and stats["mse"] == 0.0 and stats["bias2_se"] == 0.0


def test_gradient_stats_needs_two_estimates():
    with pytest.raises(ValueError, match="reps"):
        gradient_stats(onp.zeros((1, 3)), onp.zeros(3))


# ---------------------------------------------------------------------------- variance() on a small model
@pytest.fixture(scope="module")
def problem():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=5, hidden=(6,))
    params = random_params(model, 0)
    _, x = model.sample(params, 4, rng=1)
    q_logits = onp.random.default_rng(2).normal(size=(4, 3))
    return model, params, q_logits, x


class Inflated:
    """A deliberately wrong estimator: leave-one-out REINFORCE with the q-gradient scaled by 1.5."""
    name, unbiased, evals_per_sample, min_samples = "inflated", True, 1, 2
    latent, stateful, objective = "bernoulli", False, "elbo"

    def __init__(self):
        self.base = estimators.get("score_function", baseline="rloo")

    def cost(self, model):
        return 1

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        g_params, g_logits = self.base(model, params, q_logits, x, n_samples, rng, n_reps=n_reps,
                                       params_grad=params_grad)
        return g_params, 1.5 * g_logits


@pytest.fixture(scope="module")
def table(problem):
    model, params, q_logits, x = problem
    names = ["exact", "score_function", "rloo", "arm", "disarm", "rebar", "vimco",
             "score_function:baseline=mean", "concrete:tau=1.0", "straight_through", Inflated()]
    return variance(model, params, q_logits, x, estimators=names, samples=[3], reps=400, rng=0, warmup=5)


def _row(table, name):
    match = table[table["estimator"] == name]
    assert len(match) == 1
    return match.iloc[0]


def test_table_has_one_row_per_estimator_and_the_documented_columns(table):
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == COLUMNS and COLUMNS[-1] == "seconds"      # wall clock last
    assert table.attrs["wall_clock_columns"] == ["seconds"]
    assert len(table) == 11
    assert table["estimator"].iloc[-1] == "inflated"


@pytest.mark.parametrize("name", ["score_function", "rloo", "arm", "disarm", "rebar"])
def test_unbiased_estimators_show_squared_bias_within_standard_errors(table, name):
    row = _row(table, name)
    assert row["unbiased"]
    assert abs(row["bias2_q"]) < N_SE * row["bias2_q_se"]
    assert abs(row["bias2_model"]) < N_SE * row["bias2_model_se"]
    # the three estimates are consistent: MSE = variance + squared bias
    assert row["mse_q"] == pytest.approx(row["var_q"] + row["bias2_q"], rel=1e-9)


@pytest.mark.parametrize("name", ["score_function:baseline=mean", "concrete:tau=1.0", "straight_through", "inflated"])
def test_biased_estimators_show_squared_bias_beyond_standard_errors(table, name):
    row = _row(table, name)
    assert row["bias2_q"] > N_SE * row["bias2_q_se"]


def test_exact_has_zero_variance_and_zero_bias(table):
    row = _row(table, "exact")
    assert row["var_q"] == 0.0 and row["var_model"] == 0.0
    assert row["bias2_q"] == 0.0 and row["mse_q"] == 0.0
    assert row["evals"] == 2 ** 3


def test_vimco_targets_the_iwae_gradient_so_its_bias_is_not_reported(table):
    row = _row(table, "vimco")
    assert row["objective"] == "iwae"
    assert onp.isnan(row["bias2_q"])
    assert row["var_q"] > 0


def test_cost_columns(table):
    for _, row in table.iterrows():
        if row["estimator"] in ("arm", "disarm"):
            assert row["evals"] == 2 * 3
        if row["estimator"] == "rebar":
            assert row["evals"] == 3 * 3
        assert row["var_q_x_cost"] == pytest.approx(row["var_q"] * row["evals"])
        assert row["seconds"] > 0


def test_same_seed_same_numbers_and_rows_do_not_depend_on_the_others(problem):
    model, params, q_logits, x = problem
    kw = dict(samples=[2, 5], reps=20, warmup=3)
    a = variance(model, params, q_logits, x, estimators=["arm", "nvil"], rng=3, **kw)
    b = variance(model, params, q_logits, x, estimators=["arm", "nvil"], rng=3, **kw)
    c = variance(model, params, q_logits, x, estimators=["nvil"], rng=3, **kw)
    d = variance(model, params, q_logits, x, estimators=["arm", "nvil"], rng=4, **kw)
    # everything but the wall clock is identical, byte for byte once written as CSV
    assert without_wall_clock(a).to_csv() == without_wall_clock(b).to_csv()
    assert a.to_csv() != b.to_csv()                         # ... and the wall clock is all that differs
    nvil = without_wall_clock(a[a["estimator"] == "nvil"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(nvil, without_wall_clock(c))
    assert not onp.array_equal(a["var_q"], d["var_q"])


def test_default_estimators_skip_too_small_samples_but_named_ones_raise(problem):
    model, params, q_logits, x = problem
    t = variance(model, params, q_logits, x, samples=[1], reps=3, warmup=1, model_grad=False)
    assert "rloo" not in set(t["estimator"]) and "vimco" not in set(t["estimator"])
    assert "arm" in set(t["estimator"])
    with pytest.raises(ValueError, match="'rloo' needs S >= 2"):
        variance(model, params, q_logits, x, estimators=["rloo"], samples=[1, 3], reps=3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimators=["no_such_estimator"]), "unknown estimator 'no_such_estimator'"),
    (dict(samples=[0]), "samples"),
    (dict(reps=1), "reps"),
    (dict(estimators=["concrete:tau"]), "key=value"),
    (dict(estimators=["concrete:temperature=1"]), "temperature"),
])
def test_bad_input_raises_value_error_naming_it(problem, kwargs, match):
    model, params, q_logits, x = problem
    with pytest.raises(ValueError, match=match):
        variance(model, params, q_logits, x, **{"reps": 3, **kwargs})


def test_too_many_latents_to_enumerate_is_refused():
    model = vi_lab.BernoulliLVM(n_latent=30, n_obs=2, hidden=())
    with pytest.raises(ValueError, match="2\\*\\*30"):
        variance(model, model.init_params(0), onp.zeros((1, 30)), onp.zeros((1, 2)), reps=2)


def test_tau_sweep_bias_grows_with_temperature(problem):
    model, params, q_logits, x = problem
    t = tau_sweep(model, params, q_logits, x, estimators=["concrete:tau=0.5"], taus=[0.05, 3.0], n_samples=3,
                  reps=300, rng=0)
    assert t["tau"].tolist() == [0.05, 3.0]
    assert set(t["estimator"]) == {"concrete"}
    low, high = t.iloc[0], t.iloc[1]
    assert high["bias2_q"] > N_SE * high["bias2_q_se"]
    assert high["bias2_q"] > low["bias2_q"] + N_SE * onp.hypot(low["bias2_q_se"], high["bias2_q_se"])
    assert high["var_q"] < low["var_q"]
    with pytest.raises(ValueError, match="no temperature"):
        tau_sweep(model, params, q_logits, x, estimators=["arm"], taus=[1.0], reps=2)


# ---------------------------------------------------------------------------- chunks, size guards, cells
def test_bias2_se_is_the_same_whichever_gram_matrix_is_used():
    """tr(S^2) is taken from the smaller of the R x R and D x D Gram matrices; both give the same number."""
    rng = onp.random.default_rng(3)
    truth = rng.standard_normal(6)
    few = truth + rng.standard_normal((5, 6))            # R < D: R x R
    many = truth + rng.standard_normal((40, 6))          # R > D: D x D
    for draws in (few, many):
        r = draws.shape[0]
        centered = draws - draws.mean(0)
        s = centered.T @ centered / (r - 1)
        dof = r - 1
        tr_s2 = dof ** 2 / ((dof - 1) * (dof + 2)) * (onp.trace(s @ s) - onp.trace(s) ** 2 / dof)
        err = draws.mean(0) - truth
        bsb = max(0.0, err @ s @ err - max(0.0, tr_s2) / r)
        rr = r * (r - 1)
        expected = onp.sqrt(4.0 * (r - 2) / rr * bsb + 2.0 / rr * (max(0.0, tr_s2) + 2.0 * bsb))
        assert gradient_stats(draws, truth)["bias2_se"] == pytest.approx(expected, rel=1e-10)


def test_replicates_in_many_small_chunks_are_still_independent_estimates(problem, monkeypatch):
    import vi_lab.experiments.sizes as sizes
    model, params, q_logits, x = problem
    est = estimators.get("score_function", baseline="rloo")
    one = sizes.bytes_per_rep(est, model, 4, 3)
    monkeypatch.setattr(sizes, "CALL_BYTES", one + 1)                 # one replicate per call
    assert sizes.measurement_chunks(est, model, 4, 3, 400) == [1] * 400
    t = variance(model, params, q_logits, x, estimators=["rloo", "exact"], samples=[3], reps=400, rng=0)
    row = _row(t, "rloo")
    assert abs(row["bias2_q"]) < N_SE * row["bias2_q_se"] and row["var_q"] > 0
    assert _row(t, "exact")["var_q"] == 0.0


def test_size_guard_refuses_before_any_work(problem, monkeypatch):
    model, params, q_logits, x = problem
    monkeypatch.setattr(vi_lab.exact, "elbo_grad", lambda *a, **k: (_ for _ in ()).throw(AssertionError("work")))
    with pytest.raises(ValueError, match="reps: R = 10,000,000,000 estimates .* GiB"):
        variance(model, params, q_logits, x, estimators=["arm"], samples=[1], reps=10 ** 10)
    with pytest.raises(ValueError, match="samples: vimco at S = 100,000 needs about .* GiB for one estimate"):
        variance(model, params, q_logits, x, estimators=["vimco"], samples=[100_000], reps=2)


@pytest.mark.slow
def test_run_variance_on_two_processes_gives_the_serial_table():
    from vi_lab.experiments import run_variance, without_wall_clock
    kw = dict(latent=3, n_data=4, reps=5, samples=[2, 4], checkpoints=[0, 5], estimators=["arm", "rloo", "concrete",
              "nvil"], taus=[0.5, 1.0], tau_samples=2, warmup=2)
    serial, parallel = run_variance(jobs=1, **kw), run_variance(jobs=2, **kw)
    for name in ("variance", "tau"):
        assert without_wall_clock(serial[name]).to_csv() == without_wall_clock(parallel[name]).to_csv()
    # and the serial table is that of the plain function, one checkpoint at a time
    from vi_lab.experiments import train_checkpoints
    from vi_lab.experiments.problem import load_data, make_model
    x_train, x_valid = load_data("bars", 3, 0)
    model = make_model(3, 16, (32,), 120)
    last = train_checkpoints(model, x_train, x_valid, [0, 5], rng=0)[-1]
    x = x_train[:4]
    direct = variance(model, last.params, last.q_logits(x), x, estimators=kw["estimators"], samples=[2, 4], reps=5,
                      rng=0, checkpoint=5, warmup=2)
    mine = serial["variance"][serial["variance"]["checkpoint"] == 5].reset_index(drop=True)
    pd.testing.assert_frame_equal(without_wall_clock(direct), without_wall_clock(mine))


def test_per_sample_costs_scale_with_S_and_exact_does_not(problem):
    model, params, q_logits, x = problem
    t = variance(model, params, q_logits, x, estimators=["leg", "exact", "arm"], samples=[2, 5], reps=3,
                 model_grad=False)
    for _, row in t.iterrows():
        expected = {"leg": (model.n_latent + 1) * row["S"], "exact": 2 ** model.n_latent, "arm": 2 * row["S"]}
        assert row["evals"] == expected[row["estimator"]], row["estimator"]


def test_default_variance_list_measures_rebar_at_fixed_eta_and_tau():
    from vi_lab.experiments.variance import _resolve
    labels = [label for label, _, _ in _resolve(None, [2])]
    assert "rebar:tune=false" in labels and "rebar" not in labels


def test_default_list_leaves_out_only_the_costly_estimators_and_keeps_gumbel_rao_in_the_sweep():
    from vi_lab.experiments import specs as spec_module
    from vi_lab.experiments.variance import NOT_BY_DEFAULT, _resolve, tau_estimators
    labels = [label for label, _, _ in _resolve(None, [2])]
    registered = [s for s in spec_module.default_specs() if s != "rebar"]
    assert set(labels) == (set(registered) - set(NOT_BY_DEFAULT)) | {"rebar:tune=false"}
    assert set(NOT_BY_DEFAULT) == {"rodeo", "gumbel_rao", "leg"}
    assert "gumbel_rao" in tau_estimators()
