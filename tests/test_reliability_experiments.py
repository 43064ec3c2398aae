"""Checks against exact, independent computations where the old tests had loose bounds or identities:
NVIL's input-dependent baseline, the variance table's cost columns, and fit's recorded KL gap."""
import itertools

import numpy as onp
import pytest
from scipy.special import logsumexp

import vi_lab
from vi_lab import estimators
from vi_lab.experiments import variance
from vi_lab.inference import fit


def _log_q(logits, states):
    """log q(z) per coordinate, (M, N) for logits (N, K) and states (M, K)."""
    return (states[:, None, :] * -onp.logaddexp(0, -logits[None])
            + (1 - states[:, None, :]) * -onp.logaddexp(0, logits[None])).sum(-1)


@pytest.fixture(scope="module")
def spread_problem():
    """Datapoints with very different log p(x), so a baseline that depends on x pays."""
    model = vi_lab.BernoulliLVM(3, 6, hidden=(6,))
    params = model.init_params(1, scale=3.0)
    params["prior_logits"] = onp.array([0.5, -0.3, 0.2])
    x = onp.array([[0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1.0]])
    q = onp.random.default_rng(0).normal(size=(4, 3))
    return model, params, x, q


def _score_variance(model, params, x, q, baseline, n_samples):
    """Exact total variance of (1/S) sum_s (f(z_s) - b_n)(z_s - sigmoid(psi_n)), f = log p(x, z) - log q(z).

    ``baseline``: array (N,) of constants per datapoint. Enumeration over the 2**K states.
    """
    states = onp.array(list(itertools.product([0.0, 1.0], repeat=model.n_latent)))
    log_q = _log_q(q, states)                                                    # (M, N)
    f = onp.asarray(model.log_joint(params, x[None], states[:, None, :])) - log_q
    w, s = onp.exp(log_q), 1 / (1 + onp.exp(-q))
    h = (f - baseline[None])[..., None] * (states[:, None, :] - s[None])         # (M, N, K)
    mean = (w[..., None] * h).sum(0)
    return float(((w[..., None] * h ** 2).sum(0) - mean ** 2).sum() / n_samples)


def _best_constants(model, params, x, q):
    """The variance-minimizing single constant baseline, and the best per-datapoint constants."""
    states = onp.array(list(itertools.product([0.0, 1.0], repeat=model.n_latent)))
    log_q = _log_q(q, states)
    f = onp.asarray(model.log_joint(params, x[None], states[:, None, :])) - log_q
    w, s = onp.exp(log_q), 1 / (1 + onp.exp(-q))
    d2 = ((states[:, None, :] - s[None]) ** 2).sum(-1)
    b_num, b_den = (w * f * d2).sum(0), (w * d2).sum(0)
    return onp.full(x.shape[0], b_num.sum() / b_den.sum()), b_num / b_den


def test_nvil_input_dependent_baseline_beats_the_best_constant_baseline(spread_problem):
    model, params, x, q = spread_problem
    n_samples, reps = 2, 4000
    best_const, best_per_x = _best_constants(model, params, x, q)
    var_const = _score_variance(model, params, x, q, best_const, n_samples)
    var_per_x = _score_variance(model, params, x, q, best_per_x, n_samples)
    assert var_per_x < 0.7 * var_const             # the problem is one where x-dependence can pay
    est = estimators.get("nvil", normalize=False)
    for step in range(30):
        est(model, params, q, x, 4, rng=100 + step, params_grad=False)
    est.learn = False
    _, g = est(model, params, q, x, n_samples, rng=1, n_reps=reps, params_grad=False)
    var_nvil = float(g.var(axis=0, ddof=1).sum())
    # no constant baseline (the running mean c alone, without C(x)) can go below var_const; the
    # trained C(x) gets within 10% of the best any x-dependent baseline can do (measured: 2.82 vs 2.71)
    assert var_nvil < 0.8 * var_const
    assert 0.9 * var_per_x < var_nvil < 1.15 * var_per_x
    # the exact variance formula is right: plain REINFORCE (b = 0) measured matches it
    _, g_sf = estimators.get("score_function")(model, params, q, x, n_samples, rng=2, n_reps=reps,
                                               params_grad=False)
    var_sf = _score_variance(model, params, x, q, onp.zeros(4), n_samples)
    assert abs(g_sf.var(axis=0, ddof=1).sum() / var_sf - 1) < 0.1


def _model_grad_variance(model, params, x, q, n_samples):
    """Exact total variance of the pathwise model gradient (1/S) sum_s sum_n grad log p(x_n, z_sn)."""
    import autograd

    states = onp.array(list(itertools.product([0.0, 1.0], repeat=model.n_latent)))
    w = onp.exp(_log_q(q, states))                                               # (M, N)
    total = 0.0
    for n in range(x.shape[0]):
        grads = onp.array([vi_lab._tree.flatten(autograd.grad(lambda p: model.log_joint(p, x[n], z))(params))[0]
                           for z in states])                                     # (M, P)
        mean = w[:, n] @ grads
        total += float(w[:, n] @ (grads ** 2).sum(1) - mean @ mean)
    return total / n_samples


@pytest.mark.parametrize("name, evals_per_draw", [("score_function", 1), ("disarm", 2)])
def test_cost_columns_against_exact_variances(spread_problem, name, evals_per_draw):
    model, params, x, q = spread_problem
    n_samples, reps = 4, 800
    table = variance(model, params, q, x, estimators=[name], samples=[n_samples], reps=reps, rng=0, warmup=0)
    row = table[table["S"] == n_samples].iloc[0]
    assert row["evals"] == evals_per_draw * n_samples
    # the model gradient of every estimator here is the pathwise mean over its 0/1 samples
    # (disarm: its antithetic pair, 2S samples, correlated, so only the score-function case is exact)
    if name == "score_function":
        var_model = _model_grad_variance(model, params, x, q, n_samples)
        var_q = _score_variance(model, params, x, q, onp.zeros(4), n_samples)
        # relative standard error of a variance from 800 draws: about 5% here
        assert abs(row["var_model_x_cost"] / (var_model * n_samples) - 1) < 0.2
        assert abs(row["var_q_x_cost"] / (var_q * n_samples) - 1) < 0.2
    else:
        # no closed form for DisARM's coupling: compare with its own draws, measured independently
        est = estimators.get(name)
        g_params, g_q = est(model, params, q, x, n_samples, rng=123, n_reps=reps)
        flat = onp.concatenate([onp.asarray(v).reshape(reps, -1) for v in
                                (g_params["prior_logits"], *g_params["decoder"].values())], axis=1)
        var_model = flat.var(axis=0, ddof=1).sum()
        var_q = g_q.reshape(reps, -1).var(axis=0, ddof=1).sum()
        assert abs(row["var_model_x_cost"] / (var_model * 2 * n_samples) - 1) < 0.25
        assert abs(row["var_q_x_cost"] / (var_q * 2 * n_samples) - 1) < 0.25


def test_fit_records_the_kl_to_the_exact_posterior(spread_problem):
    model, params, x, _ = spread_problem
    res = fit(model, x, method="per_datapoint", estimator="disarm", n_samples=2, steps=6, record_every=3,
              params=params, rng=0, progress=False)
    # recompute KL(q || p(z|x)) = sum_z q log q - q log p(z|x) from the final parameters
    states = onp.array(list(itertools.product([0.0, 1.0], repeat=3)))
    log_joint = onp.asarray(model.log_joint(res.params, x[None], states[:, None, :]))      # (M, N)
    log_post = log_joint - logsumexp(log_joint, axis=0)
    log_q = _log_q(res.q_logits(), states)
    kl = (onp.exp(log_q) * (log_q - log_post)).sum(0).mean()
    assert res.history["kl_gap"][-1] == pytest.approx(kl, rel=1e-10, abs=1e-12)
    assert res.history["log_px_train"][-1] == pytest.approx(logsumexp(log_joint, axis=0).mean(), abs=1e-12)
