"""The exercise checkers of notebooks 4-7 accept correct answers and explain wrong ones.

Every checker is run on a correct implementation written here (it must pass) and on
deliberately wrong ones (each must fail, with a message naming the mistake).
"""
import autograd
import autograd.numpy as anp
import numpy as onp
import pytest
from scipy.special import expit, logsumexp

from vi_lab import exact, exercises, objectives, variational


# ---------------------------------------------------------------------------- notebook 4
def inclusive_kl(model, params, logits, x):
    states = exact.all_states(model.n_latent)
    post = exact.posterior(model, params, x)                                  # (N, M)
    log_q = variational.log_prob(logits, states[:, None, :]).T                # (N, M)
    return onp.sum(post * (onp.log(post) - log_q), axis=1)


def exclusive_kl(model, params, logits, x):
    return exact.kl_to_posterior(model, params, logits, x)


def cross_entropy(model, params, logits, x):
    states = exact.all_states(model.n_latent)
    post = exact.posterior(model, params, x)
    return -onp.sum(post * variational.log_prob(logits, states[:, None, :]).T, axis=1)


def negative_kl(*args):
    return -inclusive_kl(*args)


def test_inclusive_kl_checker():
    assert exercises.check_inclusive_kl(inclusive_kl).passed
    assert "KL(q || p)" in repr(exercises.check_inclusive_kl(exclusive_kl))
    assert "cross-entropy" in repr(exercises.check_inclusive_kl(cross_entropy))
    assert "never negative" in repr(exercises.check_inclusive_kl(negative_kl))


def wake_phi(log_w, z, logits):
    w_bar = onp.exp(log_w - logsumexp(log_w, axis=0))
    return onp.einsum("ib,ibk->bk", w_bar, z) - expit(logits)


def wake_phi_naive(log_w, z, logits):
    with onp.errstate(all="ignore"):
        w = onp.exp(log_w)
        return onp.einsum("ib,ibk->bk", w / w.sum(axis=0), z) - expit(logits)


def wake_phi_equal_weights(log_w, z, logits):
    return z.mean(axis=0) - expit(logits)


def wake_phi_no_score_mean(log_w, z, logits):
    return onp.einsum("ib,ibk->bk", onp.exp(log_w - logsumexp(log_w, axis=0)), z)


def wake_phi_wrong_axis(log_w, z, logits):
    w_bar = onp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
    return onp.einsum("ib,ibk->bk", w_bar, z - expit(logits))


def test_rws_wake_phi_checker():
    assert exercises.check_rws_wake_phi(wake_phi).passed
    assert "log space" in repr(exercises.check_rws_wake_phi(wake_phi_naive))
    assert "equally" in repr(exercises.check_rws_wake_phi(wake_phi_equal_weights))
    assert "-sigmoid(logits) term is missing" in repr(exercises.check_rws_wake_phi(wake_phi_no_score_mean))
    assert "axis 0" in repr(exercises.check_rws_wake_phi(wake_phi_wrong_axis))


def test_unfinished_exercise_is_reported():
    def skeleton(*args):
        raise NotImplementedError

    for check in (exercises.check_inclusive_kl, exercises.check_rws_wake_phi, exercises.check_score_function,
                  exercises.check_relaxed_sample, exercises.check_concrete_grad, exercises.check_leave_one_out,
                  exercises.check_disarm, exercises.check_iwae, exercises.check_gaps):
        result = check(skeleton)
        assert not result.passed and "NotImplementedError" in repr(result)


# ---------------------------------------------------------------------------- notebooks 5 and 6
def _draw(logits, n_samples, rng):
    return (rng.random((n_samples,) + logits.shape) < expit(logits)).astype(float)


def score_function(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    return onp.mean(f(z)[..., None] * (z - expit(logits)), axis=0)


def score_function_sign_flip(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    return onp.mean(f(z)[..., None] * (expit(logits) - z), axis=0)


def score_function_wrt_probabilities(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    p = expit(logits)
    return onp.mean(f(z)[..., None] * (z - p) / (p * (1 - p)), axis=0)


def score_function_not_averaged(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    return f(z)[..., None] * (z - expit(logits))


def score_function_global_state(f, logits, n_samples, rng):
    z = (onp.random.random((n_samples,) + logits.shape) < expit(logits)).astype(float)
    return onp.mean(f(z)[..., None] * (z - expit(logits)), axis=0)


def score_function_fixed_seed(f, logits, n_samples, rng):
    return score_function(f, logits, n_samples, onp.random.default_rng(0))


def test_score_function_checker():
    result = exercises.check_score_function(score_function)
    assert result.passed and "total variance" in repr(result)
    assert "sign is flipped" in repr(exercises.check_score_function(score_function_sign_flip))
    assert "probabilities" in repr(exercises.check_score_function(score_function_wrt_probabilities))
    assert "average over the samples" in repr(exercises.check_score_function(score_function_not_averaged))
    assert "np.random" in repr(exercises.check_score_function(score_function_global_state))
    assert "same on every call" in repr(exercises.check_score_function(score_function_fixed_seed))


def relax(logits, u, tau):
    return expit((logits + onp.log(u) - onp.log1p(-u)) / tau)


def relax_flipped_noise(logits, u, tau):
    return expit((logits - onp.log(u) + onp.log1p(-u)) / tau)


def relax_without_tau(logits, u, tau):
    return expit(logits + onp.log(u) - onp.log1p(-u))


def relax_hard(logits, u, tau):
    return (logits + onp.log(u) - onp.log1p(-u) > 0).astype(float)


def relax_gumbel(logits, u, tau):
    return expit((logits - onp.log(-onp.log(u))) / tau)


def test_relaxed_sample_checker():
    assert exercises.check_relaxed_sample(relax).passed
    result = exercises.check_relaxed_sample(relax_flipped_noise)
    assert result.passed and "same logistic distribution" in repr(result)
    assert "tau = 1" in repr(exercises.check_relaxed_sample(relax_without_tau))
    assert "hard 0/1 sample" in repr(exercises.check_relaxed_sample(relax_hard))
    assert "logistic" in repr(exercises.check_relaxed_sample(relax_gumbel))


def concrete(f, logits, n_samples, rng, tau):
    u = rng.random((n_samples,) + logits.shape)
    noise = onp.log(u) - onp.log1p(-u)
    surrogate = lambda psi: anp.sum(f(1.0 / (1.0 + anp.exp(-(psi + noise) / tau)))) / n_samples  # noqa: E731
    return autograd.grad(surrogate)(logits)


def concrete_without_tau(f, logits, n_samples, rng, tau):
    return concrete(f, logits, n_samples, rng, 1.0)


def concrete_through_threshold(f, logits, n_samples, rng, tau):
    return onp.zeros_like(logits)


def concrete_is_score_function(f, logits, n_samples, rng, tau):
    return score_function(f, logits, 4 * n_samples, rng)


def test_concrete_grad_checker():
    result = exercises.check_concrete_grad(concrete)
    assert result.passed and "bias against the exact Bernoulli gradient" in repr(result)
    assert "tau = 1" in repr(exercises.check_concrete_grad(concrete_without_tau))
    assert "exactly zero" in repr(exercises.check_concrete_grad(concrete_through_threshold))
    assert "not the relaxed one" in repr(exercises.check_concrete_grad(concrete_is_score_function))


def leave_one_out(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    values = f(z)
    baseline = (values.sum(axis=0, keepdims=True) - values) / (n_samples - 1)
    return onp.mean((values - baseline)[..., None] * (z - expit(logits)), axis=0)


def mean_baseline(f, logits, n_samples, rng):
    z = _draw(logits, n_samples, rng)
    values = f(z)
    return onp.mean((values - values.mean(axis=0))[..., None] * (z - expit(logits)), axis=0)


def test_leave_one_out_checker():
    result = exercises.check_leave_one_out(leave_one_out)
    assert result.passed and "times smaller than plain REINFORCE" in repr(result)
    assert "(S-1)/S" in repr(exercises.check_leave_one_out(mean_baseline))
    assert "changed your estimate" in repr(exercises.check_leave_one_out(score_function))


def _pair(logits, n_pairs, rng):
    u = rng.random((n_pairs,) + logits.shape)
    return u, (u < expit(logits)).astype(float), (u > expit(-logits)).astype(float)


def disarm(f, logits, n_pairs, rng):
    u, b, b_tilde = _pair(logits, n_pairs, rng)
    weight = (1 - 2 * b_tilde) * (b != b_tilde) * expit(onp.abs(logits))
    return onp.mean(0.5 * (f(b) - f(b_tilde))[..., None] * weight, axis=0)


def arm(f, logits, n_pairs, rng):
    u, b, b_tilde = _pair(logits, n_pairs, rng)
    return onp.mean((f(b_tilde) - f(b))[..., None] * (u - 0.5), axis=0)


def disarm_without_half(f, logits, n_pairs, rng):
    return 2.0 * disarm(f, logits, n_pairs, rng)


def disarm_independent_pair(f, logits, n_pairs, rng):
    u, b, _ = _pair(logits, n_pairs, rng)
    b_tilde = (rng.random(u.shape) < expit(logits)).astype(float)
    weight = (1 - 2 * b_tilde) * (b != b_tilde) * expit(onp.abs(logits))
    return onp.mean(0.5 * (f(b) - f(b_tilde))[..., None] * weight, axis=0)


def test_disarm_checker():
    result = exercises.check_disarm(disarm)
    assert result.passed and "pairs" in repr(result)
    assert "close to ARM" in repr(exercises.check_disarm(arm))
    assert "factor 1/2 is missing" in repr(exercises.check_disarm(disarm_without_half))
    assert not exercises.check_disarm(disarm_independent_pair).passed


# ---------------------------------------------------------------------------- notebook 7
def iwae(model, params, logits, x, k, rng):
    z = variational.sample(logits, k, rng)
    log_w = model.log_joint(params, x, z) - variational.log_prob(logits, z)
    return logsumexp(log_w, axis=0) - onp.log(k)


def iwae_naive(model, params, logits, x, k, rng):
    z = variational.sample(logits, k, rng)
    log_w = model.log_joint(params, x, z) - variational.log_prob(logits, z)
    with onp.errstate(divide="ignore"):
        return onp.log(onp.mean(onp.exp(log_w), axis=0))


def iwae_averages_log_weights(model, params, logits, x, k, rng):
    z = variational.sample(logits, k, rng)
    return onp.mean(model.log_joint(params, x, z) - variational.log_prob(logits, z), axis=0)


def iwae_without_log_k(model, params, logits, x, k, rng):
    return iwae(model, params, logits, x, k, rng) + onp.log(k)


def test_iwae_checker():
    assert exercises.check_iwae(iwae).passed
    assert exercises.check_iwae(lambda *a: objectives.iwae(*a)).passed
    assert "logsumexp" in repr(exercises.check_iwae(iwae_naive))
    assert "averaged the log weights" in repr(exercises.check_iwae(iwae_averages_log_weights))
    assert "subtract log k" in repr(exercises.check_iwae(iwae_without_log_k))


def gaps(model, params, encoder_logits, best_logits, x):
    log_px = exact.log_marginal(model, params, x)
    best = exact.elbo(model, params, best_logits, x)
    return log_px - best, best - exact.elbo(model, params, encoder_logits, x)


def test_gaps_checker():
    assert exercises.check_gaps(gaps).passed
    assert "swapped" in repr(exercises.check_gaps(lambda *a: gaps(*a)[::-1]))
    total = lambda *a: (sum(gaps(*a)), gaps(*a)[1])  # noqa: E731
    assert "total gap" in repr(exercises.check_gaps(total))
    assert "pair" in repr(exercises.check_gaps(lambda *a: gaps(*a)[0]))
    sign = lambda *a: (gaps(*a)[0], -gaps(*a)[1])  # noqa: E731
    assert "sign flipped" in repr(exercises.check_gaps(sign))


@pytest.mark.parametrize("check", [exercises.check_score_function, exercises.check_leave_one_out,
                                   exercises.check_disarm])
def test_generic_checkers_report_wrong_shapes(check):
    result = check(lambda f, logits, n, rng: onp.zeros(logits.shape[-1]))
    assert not result.passed and "shape" in repr(result)
