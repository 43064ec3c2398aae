"""The Gaussian experiments: same columns as the Bernoulli ones, answers checked against quadrature."""
import numpy as onp
import pytest

import vi_lab
from vi_lab import quadrature
from vi_lab.experiments import gaussian_variance, gaussian_tightness, gaussian_train_compare, best_gaussian_q
from vi_lab.experiments import tightness_summary
from vi_lab.experiments.variance import COLUMNS


@pytest.fixture(scope="module")
def problem():
    model = vi_lab.GaussianLVM(2, 8, hidden=(6,))
    params = model.init_params(2, scale=2.0)
    _, x = model.sample(params, 6, rng=3)
    rng = onp.random.default_rng(4)
    q = {"mean": rng.normal(size=(6, 2)), "log_std": rng.uniform(-1.0, 0.0, (6, 2))}
    return model, params, x, q


def test_variance_table_has_the_bernoulli_columns_and_measures_against_quadrature(problem):
    model, params, x, q = problem
    table = gaussian_variance(model, params, q, x, samples=(1, 10), reps=200,
                              estimators=["reparam", "gaussian_score_function", "gaussian_score_function:baseline=mean"])
    assert list(table.columns) == COLUMNS
    ref = table[table["estimator"] == "quadrature"].iloc[0]
    assert ref["var_q"] == 0 and ref["evals"] == 64 ** 2
    rows = table.set_index(["estimator", "S"])
    # unbiased estimators: bias^2 within 4 SE of 0 (measured |z| <= 1.3); the biased "mean" baseline at S = 1 is
    # the plain signal minus itself, zero: bias^2 = |g|^2, far outside
    for est in ("reparam", "gaussian_score_function"):
        for s in (1, 10):
            r = rows.loc[(est, s)]
            assert abs(r["bias2_q"]) < 4 * r["bias2_q_se"] + 1e-12, (est, s)
    _, g = quadrature.gaussian_elbo_grad(model, params, q, x)
    exact_sq = sum(float((v ** 2).sum()) for v in g.values())
    biased = rows.loc[("gaussian_score_function:baseline=mean", 1)]
    onp.testing.assert_allclose(biased["bias2_q"], exact_sq, rtol=1e-6)
    # the pathwise gradient is far less noisy (measured ratio at S = 1: about 60)
    assert rows.loc[("gaussian_score_function", 1), "var_q"] > 10 * rows.loc[("reparam", 1), "var_q"]
    # 10 samples: variance down by about 10 (measured 9.6 and 10.3)
    for est in ("reparam", "gaussian_score_function"):
        ratio = rows.loc[(est, 1), "var_q"] / rows.loc[(est, 10), "var_q"]
        assert 6 < ratio < 15, (est, ratio)
    with pytest.raises(ValueError, match="not a Gaussian-latent estimator"):
        gaussian_variance(model, params, q, x, estimators=["disarm"], samples=(1,), reps=2)


def test_best_gaussian_q_beats_every_other_q_and_tightness_adds_up(problem):
    model, params, x, q = problem
    best = best_gaussian_q(model, params, x, init=q)
    e_best = quadrature.gaussian_elbo(model, params, best, x)
    rng = onp.random.default_rng(5)
    for _ in range(5):                 # random nearby q's are never better (a local optimum)
        other = {k: v + 0.05 * rng.standard_normal(v.shape) for k, v in best.items()}
        assert onp.all(quadrature.gaussian_elbo(model, params, other, x) <= e_best + 1e-7)
    _, g = quadrature.gaussian_elbo_grad(model, params, best, x, n_nodes=24)
    assert max(onp.abs(v).max() for v in g.values()) < 1e-5   # stationary for the rule it optimized
    strict = best_gaussian_q(model, params, x, init=best, n_nodes=64)
    # measured: the 64-node optimum is at most 8e-5 nats better
    assert onp.all(quadrature.gaussian_elbo(model, params, strict, x) - e_best < 2e-4)
    table = gaussian_tightness(model, params, x, q, ks=(1, 100), iwae_reps=4)
    onp.testing.assert_allclose(table["log_px"], table["elbo_amortized"] + table["approximation_gap"]
                                + table["amortization_gap"], atol=1e-10)
    assert onp.all(table["amortization_gap"] >= 0) and onp.all(table["approximation_gap"] > -1e-6)
    onp.testing.assert_allclose(table["elbo_local"], onp.maximum(e_best, table["elbo_amortized"]), atol=1e-5)
    # IWAE_100 is within a few SE of log p(x) or below it, and above IWAE_1 on average
    assert onp.all(table["iwae_100"] <= table["log_px"] + 4 * table["iwae_100_se"] + 1e-9)
    assert table["iwae_100"].mean() > table["iwae_1"].mean()
    summary = tightness_summary(table)
    assert {"log_px", "approximation_gap", "amortization_gap", "iwae_100"} <= set(summary["quantity"])


def test_train_compare_gaussian_has_the_bernoulli_tables_and_exact_curves():
    res = gaussian_train_compare(latent=2, data="model", hidden=(8,), steps=40, record_every=20, n_samples=2,
                                 methods=["wake_sleep"], eval_size=60)
    # the column names of the Bernoulli train_compare tables
    assert {"method", "step", "seconds", "decoder_evals", "evals_per_datapoint", "log_px_train", "log_px_valid",
            "elbo_train", "objective"} <= set(res["history"].columns)
    assert {"method", "final_log_px_train", "final_log_px_valid", "best_log_px_valid", "best_step", "seconds",
            "decoder_evals", "evals_per_datapoint"} <= set(res["summary"].columns)
    h = res["history"]
    assert set(h["method"]) == {"reparam", "gaussian_score_function", "wake_sleep"}
    assert set(h["reference"]) == {"quadrature"} and res.config["latent_type"] == "gaussian"
    # the recorded curve is the quadrature log p(x) of the final decoder on the evaluation rows
    from vi_lab.experiments.gaussian import load_gaussian_data
    x_train, x_valid = load_gaussian_data("model", 2, 0)
    final = res.params["params"]["reparam"]
    model = res.model
    onp.testing.assert_allclose(h[h["method"] == "reparam"]["log_px_valid"].iloc[-1],
                                quadrature.gaussian_log_marginal(model, final, x_valid).mean(), rtol=1e-12)
    first, last = h[h["method"] == "reparam"]["log_px_train"].iloc[[0, -1]]
    assert last > first
    assert not res["summary"]["stopped_early"].any()
    # early stopping: patience 1 stops a run at the first record without a better held-out value
    short = gaussian_train_compare(latent=2, data="model", hidden=(8,), steps=200, record_every=5,
                                   estimators=["gaussian_score_function"], methods=[], patience=1,
                                   learning_rate=0.2)
    row = short["summary"].iloc[0]
    hist = short["history"]
    valid = hist["log_px_valid"].to_numpy()
    assert row["stopped_early"] and row["stopped_step"] < 200 and valid[-1] <= valid[:-1].max()


def test_train_compare_gaussian_k3_reports_labelled_estimates_and_bad_arguments_raise():
    res = gaussian_train_compare(latent=3, data="model", hidden=(6,), steps=4, record_every=4,
                                 estimators=["reparam"], methods=[])
    h = res["history"]
    assert set(h["reference"]) == {"iwae_estimate"} and (h["log_px_train_se"] > 0).all()
    with pytest.raises(ValueError, match="estimators: 'disarm' is for bernoulli"):
        gaussian_train_compare(estimators=["disarm"], steps=1)
    with pytest.raises(ValueError, match="methods"):
        gaussian_train_compare(methods=["amortized"], steps=1)
    with pytest.raises(ValueError, match="data"):
        gaussian_train_compare(data="faces", steps=1)
    with pytest.raises(ValueError, match="exact_ml"):
        gaussian_train_compare(latent=3, methods=["exact_ml"], steps=1)
