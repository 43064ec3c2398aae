"""The notebook 09 checkers pass the right answers and fail slightly wrong ones with a named hint."""
import autograd.numpy as np
import pytest

from vi_lab import gaussian
from vi_lab.exercises import vae


def sample_right(mean, log_std, eps):
    return mean + np.exp(log_std) * eps


def elbo_right(model, params, mean, log_std, x, eps):
    z = mean + np.exp(log_std) * eps
    return np.mean(model.log_joint(params, x, z) - gaussian.log_prob({"mean": mean, "log_std": log_std}, z), axis=0)


def elbo_analytic(model, params, mean, log_std, x, eps):
    z = mean + np.exp(log_std) * eps
    return np.mean(model.log_likelihood(params, x, z), axis=0) - gaussian.kl_to_prior({"mean": mean, "log_std": log_std})


def elbo_no_entropy(model, params, mean, log_std, x, eps):
    return np.mean(model.log_joint(params, x, mean + np.exp(log_std) * eps), axis=0)


def elbo_sigma_for_log_sigma(model, params, mean, log_std, x, eps):
    z = mean + log_std * eps
    return np.mean(model.log_joint(params, x, z) - gaussian.log_prob({"mean": mean, "log_std": log_std}, z), axis=0)


def test_right_answers_pass():
    assert vae.check_reparam_sample(sample_right).passed
    assert vae.check_reparam_elbo(elbo_right).passed
    assert vae.check_reparam_gradient(elbo_right).passed


def test_the_analytic_kl_form_passes_with_a_note():
    result = vae.check_reparam_elbo(elbo_analytic)
    assert result.passed and "analytic KL" in result.details[0]
    assert vae.check_reparam_gradient(elbo_analytic).passed          # also unbiased


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, l, e: m + l * e, "log_std itself as the standard deviation"),
    (lambda m, l, e: m + np.exp(2 * l) * e, "variance"),
    (lambda m, l, e: m + np.exp(l / 2) * e, "log-variance"),
    (lambda m, l, e: np.exp(l) * e, "forgot the mean"),
    (lambda m, l, e: 1.005 * (m + np.exp(l) * e), "times 1.005"),           # 0.5% off
    (lambda m, l, e: (m + np.exp(l) * e)[0], "shape"),
])
def test_wrong_samples_fail_with_a_hint(wrong, hint):
    result = vae.check_reparam_sample(wrong)
    assert not result.passed and any(hint in d for d in result.details), result


@pytest.mark.parametrize("wrong, hint", [
    (elbo_no_entropy, "left out the entropy"),
    (lambda *a: elbo_right(*a) * 1.005, "times 1.005"),
    (elbo_sigma_for_log_sigma, "log_std as the standard deviation"),
    (lambda model, params, mean, log_std, x, eps: np.sum(
        model.log_joint(params, x, mean + np.exp(log_std) * eps)
        - gaussian.log_prob({"mean": mean, "log_std": log_std}, mean + np.exp(log_std) * eps), axis=0), "summed"),
    (lambda model, params, mean, log_std, x, eps: np.mean(
        model.log_joint(params, x, mean + np.exp(log_std) * eps)
        + gaussian.log_prob({"mean": mean, "log_std": log_std}, mean + np.exp(log_std) * eps), axis=0), "wrong sign"),
])
def test_wrong_elbos_fail_with_a_hint(wrong, hint):
    result = vae.check_reparam_elbo(wrong)
    assert not result.passed and any(hint in d for d in result.details), result


def test_wrong_gradients_fail():
    result = vae.check_reparam_gradient(elbo_no_entropy)
    assert not result.passed and "entropy term" in result.details[0]
    assert not vae.check_reparam_gradient(elbo_sigma_for_log_sigma).passed
    # a gradient 2% too large (the ELBO scaled by 1.02) is far outside 4 SE at 400 draws
    assert not vae.check_reparam_gradient(lambda *a: 1.02 * elbo_right(*a)).passed


def test_a_stub_and_a_crash_give_readable_verdicts():
    def stub(*args):
        raise NotImplementedError
    assert "NotImplementedError" in repr(vae.check_reparam_sample(stub))
    assert "raised" in repr(vae.check_reparam_elbo(lambda *a: 1 / 0))
