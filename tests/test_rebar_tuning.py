"""REBAR with online tuning of (eta, tau) (the paper's procedure) and with fixed values."""
import numpy as np
import pytest

from vi_lab import estimators, toy
from test_estimators_unbiased import MODELS, elbo_z_scores, make_problem


def test_fixed_rebar_is_stateless_and_tuned_rebar_is_stateful():
    fixed = estimators.get("rebar", tune=False)
    tuned = estimators.get("rebar")
    assert not fixed.stateful and tuned.stateful and tuned.tune
    f, phi = toy.loss(0.45), np.array([0.3, -1.0])
    a = fixed.grad(f, phi, 2, rng=3, n_reps=5)
    assert fixed.state["steps"] == 0 and fixed.tuned == (1.0, 0.5)
    np.testing.assert_array_equal(fixed.grad(f, phi, 2, rng=3, n_reps=5), a)
    # the first tuned estimate uses the initial (eta, tau), so it equals the fixed one on the same draws
    np.testing.assert_allclose(tuned.grad(f, phi, 2, rng=3, n_reps=5), a, rtol=1e-10, atol=1e-14)
    assert tuned.state["steps"] == 1 and tuned.tuned != (1.0, 0.5)
    tuned.reset()
    assert tuned.tuned == (1.0, 0.5) and tuned.state["steps"] == 0


@pytest.mark.parametrize("case", MODELS[1:])
def test_tuned_rebar_stays_unbiased_after_tuning_on_a_model(case):
    problem = make_problem(*case)
    model, params, q_logits, x = problem
    est = estimators.get("rebar", learning_rate=0.05)
    for step in range(25):
        est(model, params, q_logits, x, 2, rng=300 + step, params_grad=False)
    eta, tau = est.tuned
    assert abs(eta - 1.0) > 0.05 or abs(tau - 0.5) > 0.05
    est.learn = False
    z_logits, z_params = elbo_z_scores(est, problem, 2, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


def test_tuning_descends_the_variance_on_a_model():
    model, params, q_logits, x = make_problem(*MODELS[1])
    est = estimators.get("rebar", learning_rate=0.05)
    _, before = estimators.get("rebar", tune=False)(model, params, q_logits, x, 2, rng=0, n_reps=2000,
                                                    params_grad=False)
    for step in range(40):
        est(model, params, q_logits, x, 2, rng=400 + step, params_grad=False)
    est.learn = False
    _, after = est(model, params, q_logits, x, 2, rng=0, n_reps=2000, params_grad=False)
    assert after.var(axis=0).sum() < before.var(axis=0).sum()


@pytest.mark.parametrize("options, pattern", [({"tune": "yes"}, "tune: expected True or False"),
                                              ({"learn": 1}, "learn: expected True or False"),
                                              ({"learning_rate": 0.0}, "learning_rate: expected a positive"),
                                              ({"learning_rate": True}, "learning_rate: expected a positive"),
                                              ({"tau": -1.0, "tune": False}, "tau: expected a temperature")])
def test_bad_options(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        estimators.get("rebar", **options)
