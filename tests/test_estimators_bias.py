"""Biased estimators: the bias against the exact gradient is measured, non-zero, and behaves as documented."""
import numpy as np
import pytest

from vi_lab import BernoulliLVM, estimators, exact, toy
from conftest import estimator_problem

TAUS = (1.0, 0.5, 0.2)


@pytest.fixture(scope="module")
def problem():
    model, params, q_logits, x = estimator_problem()
    return model, params, q_logits, x, exact.elbo_grad(model, params, q_logits, x)[1]


def bias_and_se(name, problem, n_reps=20000, **options):
    model, params, q_logits, x, target = problem
    _, g = estimators.get(name, **options)(model, params, q_logits, x, 1, rng=0, n_reps=n_reps, params_grad=False)
    bias = g.mean(axis=0) - target
    se = g.std(axis=0, ddof=1) / np.sqrt(n_reps)
    return bias, se, g.var(axis=0, ddof=1).sum()


def test_concrete_bias_is_nonzero_and_shrinks_as_tau_falls(problem):
    results = [bias_and_se("concrete", problem, n_reps=60000, tau=tau) for tau in TAUS]
    norms = [np.linalg.norm(bias) for bias, _, _ in results]
    for bias, se, _ in results:
        assert np.max(np.abs(bias) / se) > 4.0                    # measurably biased at every tau
    for (bias, se, _), (bias_next, se_next, _) in zip(results, results[1:]):
        # the drop exceeds the noise of both norms (4 standard errors each)
        noise = 4 * (np.linalg.norm(se) + np.linalg.norm(se_next))
        assert np.linalg.norm(bias_next) < np.linalg.norm(bias) - noise
    assert norms[-1] < 0.25 * norms[0]
    variances = [v for _, _, v in results]
    assert variances[0] < variances[1] < variances[2]             # and the variance grows


def test_straight_through_stays_biased_at_small_tau(problem):
    bias, se, _ = bias_and_se("straight_through", problem, tau=0.1)
    assert np.max(np.abs(bias) / se) > 4.0
    concrete_bias, _, _ = bias_and_se("concrete", problem, tau=0.1)
    assert np.linalg.norm(bias) > 2 * np.linalg.norm(concrete_bias)


def test_unbiased_estimator_passes_where_concrete_fails(problem):
    """The same bias measurement on an unbiased estimator finds nothing (the check can pass)."""
    bias, se, _ = bias_and_se("disarm", problem, n_reps=5000)
    assert np.max(np.abs(bias) / se) < 4.0


def test_relaxed_model_gradient_matches_a_finite_difference_of_its_surrogate():
    """Concrete's g_params is the exact gradient of the relaxed objective for its own noise."""
    model = BernoulliLVM(2, 3, hidden=(3,))
    params = model.init_params(0, scale=1.5)
    x = np.array([[1.0, 0.0, 1.0]])
    q_logits = np.array([[0.3, -0.7]])
    est = estimators.get("concrete", tau=0.7)
    g_params, g_logits = est(model, params, q_logits, x, 3, rng=4)
    from vi_lab.estimators.base import logistic_noise, uniform_open
    from vi_lab.variational import kl_to_prior
    noise = logistic_noise(uniform_open(np.random.default_rng(4), (1, 3, 1, 2)))[0]

    def surrogate(psi, w_entry):
        p = {"prior_logits": params["prior_logits"], "decoder": dict(params["decoder"])}
        p["decoder"]["W1"] = params["decoder"]["W1"].copy()
        p["decoder"]["W1"][0, 0] = w_entry
        z = 1 / (1 + np.exp(-(psi + noise) / 0.7))
        return model.log_likelihood(p, x, z).mean(axis=0).sum() - kl_to_prior(psi, p["prior_logits"]).sum()

    w0, h = params["decoder"]["W1"][0, 0], 1e-6
    fd_w = (surrogate(q_logits, w0 + h) - surrogate(q_logits, w0 - h)) / (2 * h)
    assert np.isclose(g_params["decoder"]["W1"][0, 0], fd_w, rtol=1e-5)
    step = np.array([[h, 0.0]])
    fd_psi = (surrogate(q_logits + step, w0) - surrogate(q_logits - step, w0)) / (2 * h)
    assert np.isclose(g_logits[0, 0], fd_psi, rtol=1e-5)


def test_toy_bias_of_concrete_shrinks_with_tau():
    rows = {tau: toy.estimator_moments(0.0, 0.45, 1, 40000, {"c": ("concrete", {"tau": tau})}, rng=0)[0]
            for tau in (1.0, 0.1)}
    assert abs(rows[1.0]["bias"]) > 4 * rows[1.0]["std_error"]
    assert abs(rows[0.1]["bias"]) < abs(rows[1.0]["bias"])
    assert rows[0.1]["variance"] > rows[1.0]["variance"]
