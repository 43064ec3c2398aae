"""Monte Carlo ELBO and IWAE against the exact ELBO and log p(x) from enumeration.

Many seeds at once: a datapoint repeated R times gets R independent draws in one call, so the
mean over repeats and its standard error (SE) come from one vectorized evaluation.
"""
import autograd
import autograd.numpy as np
import numpy as onp
import pytest
from autograd.scipy.special import logsumexp

import vi_lab
from vi_lab import exact, objectives
from vi_lab.variational import sample

from conftest import random_params

R = 1000          # repeats per datapoint


@pytest.fixture(scope="module")
def problem():
    # K = 3 so that log p(x) is a sum of 8 terms; decoder scale 2.5 gives a posterior that
    # differs clearly from the uniform q below (KL gaps of 0.6 to 1.7 nats)
    model = vi_lab.BernoulliLVM(3, 6, hidden=(8,))
    params = random_params(model, 3, scale=2.5)
    _, x = model.sample(params, 4, rng=1)
    return model, params, x, onp.zeros((4, 3))


def repeated(x, logits):
    return onp.tile(x, (R, 1)), onp.tile(logits, (R, 1))


def mean_and_se(values):
    values = onp.asarray(values).reshape(R, -1)
    return values.mean(0), values.std(0, ddof=1) / onp.sqrt(R)


def wrong_elbo_without_entropy(model, params, logits, x, n_samples, rng):
    """Deliberately wrong: forgets -log q(z|x)."""
    z = sample(logits, n_samples, rng)
    return onp.mean(model.log_joint(params, x, z), axis=0)


@pytest.mark.parametrize("form", ["joint", "analytic_kl"])
def test_elbo_is_unbiased_for_the_exact_elbo(problem, form):
    model, params, x, logits = problem
    target = exact.elbo(model, params, logits, x)
    xr, lr = repeated(x, logits)
    mean, se = mean_and_se(objectives.elbo(model, params, lr, xr, 1, rng=0, form=form))
    assert (onp.abs(mean - target) < 4 * se).all()
    # the same check catches an estimator that drops the entropy term
    wrong, wrong_se = mean_and_se(wrong_elbo_without_entropy(model, params, lr, xr, 1, 0))
    assert (onp.abs(wrong - target) >= 4 * wrong_se).any()


def test_elbo_averages_n_samples_draws_and_is_reproducible(problem):
    model, params, x, logits = problem
    one = objectives.elbo(model, params, logits, x, n_samples=50, rng=7)
    assert one.shape == (4,)
    onp.testing.assert_array_equal(one, objectives.elbo(model, params, logits, x, n_samples=50, rng=7))
    z = sample(logits, 50, onp.random.default_rng(7))
    by_hand = onp.mean(model.log_joint(params, x, z) - vi_lab.variational.log_prob(logits, z), axis=0)
    onp.testing.assert_allclose(one, by_hand, atol=1e-12)


def test_iwae_rises_with_k_from_the_elbo_to_log_px(problem):
    model, params, x, logits = problem
    log_px, elbo = exact.log_marginal(model, params, x), exact.elbo(model, params, logits, x)
    xr, lr = repeated(x, logits)
    ks = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    stats = [mean_and_se(objectives.iwae(model, params, lr, xr, k, rng=k)) for k in ks]
    means = onp.array([m for m, _ in stats])
    ses = onp.array([s for _, s in stats])
    # L_1 is the ELBO in expectation
    assert (onp.abs(means[0] - elbo) < 4 * ses[0]).all()
    # non-decreasing in k: no drop larger than 4 SE of the difference (independent draws)
    drops = means[1:] - means[:-1]
    assert (drops > -4 * onp.sqrt(ses[1:] ** 2 + ses[:-1] ** 2)).all()
    assert (means[-1] - means[0] > 10 * ses[0]).all()
    # k = 256 is within 0.02 nats of log p(x): the measured gaps were <= 0.006 with SE <= 0.003
    assert (onp.abs(means[-1] - log_px) < 0.02).all()
    # the same check fails for the ELBO (no log-mean-exp) and for a log-sum-exp missing -log k
    z = sample(lr, 256, 256)
    log_w = objectives.log_weights(model, params, lr, xr, z)
    assert (onp.abs(mean_and_se(log_w.mean(0))[0] - log_px) >= 0.02).any()
    assert (onp.abs(mean_and_se(logsumexp(log_w, axis=0))[0] - log_px) >= 0.02).any()


def test_iwae_is_a_stable_log_mean_exp(problem):
    model, params, x, logits = problem
    value = objectives.iwae(model, params, logits, x, k=5, rng=3)
    z = sample(logits, 5, onp.random.default_rng(3))
    w = onp.exp(objectives.log_weights(model, params, logits, x, z))
    onp.testing.assert_allclose(value, onp.log(w.mean(0)), atol=1e-12)
    # weights of exp(-5000) underflow in a naive mean; the max-subtracted form stays finite
    far = {"prior_logits": params["prior_logits"],
           "decoder": {k: 1e3 * v for k, v in params["decoder"].items()}}
    assert onp.isfinite(objectives.iwae(model, far, logits, x, k=5, rng=3)).all()


def test_extreme_logits_give_finite_exact_values(problem):
    model, params, x, _ = problem
    z_star = onp.array([1.0, 0.0, 1.0])
    logits = onp.tile(1e4 * (2 * z_star - 1), (4, 1))              # q puts all mass on z_star
    log_joint = model.log_joint(params, x, z_star)
    for form in ("joint", "analytic_kl"):
        onp.testing.assert_allclose(objectives.elbo(model, params, logits, x, 3, rng=0, form=form), log_joint,
                                    atol=1e-9)
    onp.testing.assert_allclose(objectives.iwae(model, params, logits, x, 3, rng=0), log_joint, atol=1e-9)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_objectives_are_differentiable_in_params(problem, objective):
    model, params, x, logits = problem
    fn = getattr(objectives, objective)

    def total(p):
        return np.sum(fn(model, p, logits, x, 7, rng=11))

    g = autograd.grad(total)(params)
    # central finite differences with the same seed (same samples) on a few coordinates
    for path in (("prior_logits", 1), ("decoder", "W0", 2, 3), ("decoder", "b1", 4)):
        *keys, index = path
        bumped = []
        for sign in (1, -1):
            p = {"prior_logits": params["prior_logits"].copy(),
                 "decoder": {k: v.copy() for k, v in params["decoder"].items()}}
            leaf = p
            for key in keys:
                leaf = leaf[key]
            leaf[index] += sign * 1e-6
            bumped.append(total(p))
        grad_leaf = g
        for key in keys:
            grad_leaf = grad_leaf[key]
        assert grad_leaf[index] == pytest.approx((bumped[0] - bumped[1]) / 2e-6, rel=1e-5, abs=1e-7)


def test_bad_arguments_raise(problem):
    model, params, x, logits = problem
    with pytest.raises(ValueError, match="form: unknown ELBO form"):
        objectives.elbo(model, params, logits, x, 1, rng=0, form="kl")
    with pytest.raises(ValueError, match="n_samples"):
        objectives.elbo(model, params, logits, x, 0, rng=0)
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        objectives.iwae(model, params, logits, x, 0, rng=0)
    with pytest.raises(ValueError, match=r"logits: expected shape \(4, 3\)"):
        objectives.iwae(model, params, logits[:3], x, 2, rng=0)
    with pytest.raises(ValueError, match="x: expected binary"):
        objectives.elbo(model, params, logits, x + 0.5, 1, rng=0)
