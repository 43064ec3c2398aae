"""The exercise checkers of notebooks 01-03 pass correct solutions and explain wrong ones.

For every checker: a correct implementation (written here, independently of the solution
notebooks) passes, and deliberately wrong implementations fail with a message that names
the mistake.
"""
import autograd
import autograd.numpy as anp
import numpy as onp
import pytest
from scipy.special import logsumexp, softmax

import vi_lab
from vi_lab import exact, exercises, variational
from vi_lab.nn import sigmoid


def _states(model):
    return exact.all_states(model.n_latent)


def _assert_fails(result, *phrases):
    text = repr(result)
    assert not result.passed, text
    for phrase in phrases:
        assert phrase in text, text


# ============================================================================ notebook 01
def good_log_marginal(model, params, x):
    table = model.log_joint(params, x[:, None, :], _states(model)[None])
    return logsumexp(table, axis=1)


def test_log_marginal_checker_passes_a_correct_solution():
    result = exercises.check_log_marginal(good_log_marginal)
    assert result.passed, repr(result)
    assert "3 test problems" in repr(result)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda m, p, x: logsumexp(m.log_likelihood(p, x[:, None, :], _states(m)[None]), axis=1), "left out the prior"),
    (lambda m, p, x: m.log_joint(p, x[:, None, :], _states(m)[None]).max(axis=1), "single most probable"),
    (lambda m, p, x: onp.exp(good_log_marginal(m, p, x)), "returned p(x)"),
    (lambda m, p, x: good_log_marginal(m, p, x)[:, None], "shape"),
    (lambda m, p, x: -good_log_marginal(m, p, x), "sign flipped"),
])
def test_log_marginal_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_log_marginal(wrong), phrase)


def test_log_marginal_checker_catches_underflow():
    def naive(model, params, x):
        table = model.log_joint(params, x[:, None, :], _states(model)[None])
        with onp.errstate(divide="ignore"):
            return onp.log(onp.exp(table).sum(axis=1))

    _assert_fails(exercises.check_log_marginal(naive), "non-finite", "logsumexp", "problem 3 of 3")


def test_checker_reports_unfinished_and_crashing_functions():
    def unfinished(model, params, x):
        raise NotImplementedError

    _assert_fails(exercises.check_log_marginal(unfinished), "NotImplementedError")
    _assert_fails(exercises.check_log_marginal(lambda m, p, x: x @ onp.ones((3, 2))), "raised ValueError")


def good_posterior_marginals(model, params, x):
    table = model.log_joint(params, x[:, None, :], _states(model)[None])
    return softmax(table, axis=1) @ _states(model)


def test_posterior_marginals_checker_passes_a_correct_solution():
    result = exercises.check_posterior_marginals(good_posterior_marginals)
    assert result.passed, repr(result)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda m, p, x: onp.tile(sigmoid(p["prior_logits"]), (x.shape[0], 1)), "prior probabilities"),
    (lambda m, p, x: 1.0 - good_posterior_marginals(m, p, x), "p(z_k = 0 | x)"),
    (lambda m, p, x: onp.exp(m.log_joint(p, x[:, None, :], _states(m)[None])) @ _states(m), "divide by p(x)"),
    (lambda m, p, x: softmax(m.log_likelihood(p, x[:, None, :], _states(m)[None]), axis=1) @ _states(m),
     "prior p(z) is missing"),
    (lambda m, p, x: good_posterior_marginals(m, p, x).T, "shape"),
])
def test_posterior_marginals_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_posterior_marginals(wrong), phrase)


def good_sample(model, params, n, rng):
    z = (rng.random((n, model.n_latent)) < sigmoid(params["prior_logits"])).astype(float)
    x = (rng.random((n, model.n_obs)) < sigmoid(model.decoder_logits(params, z))).astype(float)
    return z, x


def test_sample_checker_passes_correct_samplers():
    result = exercises.check_sample(good_sample)
    assert result.passed, repr(result)

    def other_order(model, params, n, rng):    # a different but equally correct use of the rng
        z = rng.binomial(1, sigmoid(params["prior_logits"]), size=(n, model.n_latent)).astype(float)
        x = rng.binomial(1, sigmoid(model.decoder_logits(params, z))).astype(float)
        return z, x

    assert exercises.check_sample(other_order).passed
    assert exercises.check_sample(lambda m, p, n, rng: m.sample(p, n, rng)).passed


def _logits_as_probabilities(model, params, n, rng):
    z = (rng.random((n, model.n_latent)) < params["prior_logits"]).astype(float)
    x = (rng.random((n, model.n_obs)) < sigmoid(model.decoder_logits(params, z))).astype(float)
    return z, x


def _x_from_other_z(model, params, n, rng):
    z, x = good_sample(model, params, n, rng)
    return z, x[rng.permutation(n)]


def _flipped_x(model, params, n, rng):
    z = (rng.random((n, model.n_latent)) < sigmoid(params["prior_logits"])).astype(float)
    x = (rng.random((n, model.n_obs)) > sigmoid(model.decoder_logits(params, z))).astype(float)
    return z, x


def _global_state(model, params, n, rng):
    return good_sample(model, params, n, onp.random.default_rng())


def _probabilities(model, params, n, rng):
    z, _ = good_sample(model, params, n, rng)
    return z, sigmoid(model.decoder_logits(params, z))


@pytest.mark.parametrize("wrong, phrase", [
    (_logits_as_probabilities, "do not follow the prior"),
    (_x_from_other_z, "wrong relation to z"),
    (_flipped_x, "x given z is not"),
    (_global_state, "same seed"),
    (lambda m, p, n, rng: good_sample(m, p, n, onp.random.default_rng(5)), "ignores its rng"),
    (_probabilities, "values other than 0 and 1"),
    (lambda m, p, n, rng: good_sample(m, p, n, rng)[0], "expected the pair"),
])
def test_sample_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_sample(wrong), phrase)


# ============================================================================ notebook 02
def _log_q_and_joint(model, params, q_logits, x):
    states = _states(model)[:, None, :]                                   # (M, 1, K)
    return variational.log_prob(q_logits, states), model.log_joint(params, x, states)   # (M, N) each


def good_elbo(model, params, q_logits, x):
    log_q, log_joint = _log_q_and_joint(model, params, q_logits, x)
    return onp.sum(onp.exp(log_q) * (log_joint - log_q), axis=0)


def test_elbo_checker_passes_a_correct_solution():
    result = exercises.check_elbo(good_elbo)
    assert result.passed, repr(result)

    def analytic_kl(model, params, q_logits, x):    # the other textbook form
        log_q, _ = _log_q_and_joint(model, params, q_logits, x)
        loglik = model.log_likelihood(params, x, _states(model)[:, None, :])
        return onp.sum(onp.exp(log_q) * loglik, axis=0) - variational.kl_to_prior(q_logits, params["prior_logits"])

    assert exercises.check_elbo(analytic_kl).passed


def _elbo_without_entropy(model, params, q_logits, x):
    log_q, log_joint = _log_q_and_joint(model, params, q_logits, x)
    return onp.sum(onp.exp(log_q) * log_joint, axis=0)


def _elbo_with_q_probabilities(model, params, q_logits, x):
    # log q computed as sum_k log of Bernoulli probabilities: 0 * log(0) = nan for logits +-1e4
    states = _states(model)[:, None, :]
    s = sigmoid(q_logits)
    with onp.errstate(divide="ignore", invalid="ignore"):
        log_q = onp.sum(states * onp.log(s) + (1 - states) * onp.log(1 - s), axis=-1)
        return onp.sum(onp.exp(log_q) * (model.log_joint(params, x, states) - log_q), axis=0)


@pytest.mark.parametrize("wrong, phrase", [
    (_elbo_without_entropy, "left out the entropy"),
    (lambda m, p, q, x: good_elbo(m, p, q, x) + variational.kl_to_prior(q, p["prior_logits"]), "reconstruction term"),
    (lambda m, p, q, x: exact.log_marginal(m, p, x), "returned log p(x)"),
    (lambda m, p, q, x: exact.kl_to_posterior(m, p, q, x), "the gap"),
    (_elbo_with_q_probabilities, "non-finite"),
    (lambda m, p, q, x: good_elbo(m, p, q, x).sum(), "shape"),
])
def test_elbo_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_elbo(wrong), phrase)


def good_elbo_estimate(model, params, q_logits, x, n_samples, rng):
    z = variational.sample(q_logits, n_samples, rng)
    return onp.mean(model.log_joint(params, x, z) - variational.log_prob(q_logits, z), axis=0)


def test_elbo_estimate_checker_passes_correct_estimators():
    result = exercises.check_elbo_estimate(good_elbo_estimate)
    assert result.passed, repr(result)

    def analytic_kl(model, params, q_logits, x, n_samples, rng):
        z = variational.sample(q_logits, n_samples, rng)
        return (onp.mean(model.log_likelihood(params, x, z), axis=0)
                - variational.kl_to_prior(q_logits, params["prior_logits"]))

    assert exercises.check_elbo_estimate(analytic_kl).passed
    library = exercises.check_elbo_estimate(
        lambda m, p, q, x, s, rng: vi_lab.objectives.elbo(m, p, q, x, s, rng))
    assert library.passed, repr(library)


def _without_log_q(model, params, q_logits, x, n_samples, rng):
    z = variational.sample(q_logits, n_samples, rng)
    return onp.mean(model.log_joint(params, x, z), axis=0)


def _summed(model, params, q_logits, x, n_samples, rng):
    return n_samples * good_elbo_estimate(model, params, q_logits, x, n_samples, rng)


def _log_mean_exp(model, params, q_logits, x, n_samples, rng):
    z = variational.sample(q_logits, n_samples, rng)
    log_w = model.log_joint(params, x, z) - variational.log_prob(q_logits, z)
    return logsumexp(log_w, axis=0) - onp.log(n_samples)


def _one_draw_only(model, params, q_logits, x, n_samples, rng):
    return good_elbo_estimate(model, params, q_logits, x, 1, rng)


def _unseeded(model, params, q_logits, x, n_samples, rng):
    return good_elbo_estimate(model, params, q_logits, x, n_samples, onp.random.default_rng())


def _frozen(model, params, q_logits, x, n_samples, rng):
    return good_elbo_estimate(model, params, q_logits, x, n_samples, 3)


@pytest.mark.parametrize("wrong, phrase", [
    (_without_log_q, "log q(z|x) term is missing"),
    (_summed, "times the ELBO"),
    (_log_mean_exp, "importance-weighted"),
    (_one_draw_only, "variance"),
    (_unseeded, "same seed"),
    (_frozen, "same numbers"),
    (lambda m, p, q, x, s, rng: variational.sample(q, s, rng).sum(-1), "shape"),
])
def test_elbo_estimate_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_elbo_estimate(wrong), phrase)


def good_elbo_grad_logits(model, params, q_logits, x):
    log_q, log_joint = _log_q_and_joint(model, params, q_logits, x)
    score = _states(model)[:, None, :] - sigmoid(q_logits)                  # (M, N, K)
    return onp.sum((onp.exp(log_q) * (log_joint - log_q))[..., None] * score, axis=0)


def _autograd_elbo_grad(model, params, q_logits, x):
    def total_elbo(logits):
        states = _states(model)[:, None, :]
        log_q = variational.log_prob(logits, states)
        return anp.sum(anp.exp(log_q) * (model.log_joint(params, x, states) - log_q))
    return autograd.grad(total_elbo)(q_logits)


def test_elbo_grad_checker_passes_correct_solutions():
    result = exercises.check_elbo_grad_logits(good_elbo_grad_logits)
    assert result.passed, repr(result)
    assert exercises.check_elbo_grad_logits(_autograd_elbo_grad).passed


def _grad_without_entropy(model, params, q_logits, x):
    log_q, log_joint = _log_q_and_joint(model, params, q_logits, x)
    score = _states(model)[:, None, :] - sigmoid(q_logits)
    return onp.sum((onp.exp(log_q) * log_joint)[..., None] * score, axis=0)


def _grad_per_probability(model, params, q_logits, x):
    s = sigmoid(q_logits)
    return good_elbo_grad_logits(model, params, q_logits, x) / (s * (1 - s))


@pytest.mark.parametrize("wrong, phrase", [
    (_grad_without_entropy, "gradient of the entropy"),
    (_grad_per_probability, "probabilities sigmoid(psi)"),
    (lambda m, p, q, x: -good_elbo_grad_logits(m, p, q, x), "sign flipped"),
    (lambda m, p, q, x: good_elbo_grad_logits(m, p, q, x).sum(axis=0), "shape"),
])
def test_elbo_grad_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_elbo_grad_logits(wrong), phrase)


# ============================================================================ notebook 03
def good_encoder_logits(q_params, x):
    return onp.tanh(x @ q_params["W0"] + q_params["b0"]) @ q_params["W1"] + q_params["b1"]


def test_encoder_logits_checker_passes_a_correct_solution():
    result = exercises.check_encoder_logits(good_encoder_logits)
    assert result.passed, repr(result)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda p, x: (x @ p["W0"] + p["b0"]) @ p["W1"] + p["b1"], "left out the tanh"),
    (lambda p, x: onp.tanh(x @ p["W0"]) @ p["W1"] + p["b1"], "hidden bias"),
    (lambda p, x: sigmoid(good_encoder_logits(p, x)), "through a sigmoid"),
    (lambda p, x: onp.tanh(x @ p["W0"] + p["b0"]) @ p["W1"].T + p["b1"], "raised ValueError"),
    (lambda p, x: good_encoder_logits(p, x).T, "shape"),
])
def test_encoder_logits_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_encoder_logits(wrong), phrase)


def good_amortization_gap(model, params, encoder_logits, x):
    best = vi_lab.inference.fit_local(model, params, x, init=encoder_logits)
    return exact.elbo(model, params, best, x) - exact.elbo(model, params, encoder_logits, x)


def test_amortization_gap_checker_passes_a_correct_solution():
    result = exercises.check_amortization_gap(good_amortization_gap)
    assert result.passed, repr(result)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda m, p, q, x: exact.kl_to_posterior(m, p, q, x), "total gap"),
    (lambda m, p, q, x: -good_amortization_gap(m, p, q, x), "sign flipped"),
    (lambda m, p, q, x: exact.kl_to_posterior(m, p, vi_lab.inference.fit_local(m, p, x, init=q), x),
     "approximation gap"),
    (lambda m, p, q, x: good_amortization_gap(m, p, q, x).mean(), "shape"),
])
def test_amortization_gap_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_amortization_gap(wrong), phrase)


def good_encoder_grad(model, params, encoder, q_params, x):
    # backpropagation by hand through psi = tanh(x W0 + b0) W1 + b1
    h = onp.tanh(x @ q_params["W0"] + q_params["b0"])
    psi = h @ q_params["W1"] + q_params["b1"]
    _, g = exact.elbo_grad(model, params, psi, x)
    g_hidden = (g @ q_params["W1"].T) * (1.0 - h ** 2)
    return {"W1": h.T @ g, "b1": g.sum(axis=0), "W0": x.T @ g_hidden, "b0": g_hidden.sum(axis=0)}


def _autograd_encoder_grad(model, params, encoder, q_params, x):
    vjp, logits = autograd.make_vjp(lambda q: encoder.logits(q, x))(q_params)
    return vjp(exact.elbo_grad(model, params, logits, x)[1])


def test_encoder_grad_checker_passes_correct_solutions():
    result = exercises.check_encoder_grad(good_encoder_grad)
    assert result.passed, repr(result)
    assert exercises.check_encoder_grad(_autograd_encoder_grad).passed


def _no_tanh_derivative(model, params, encoder, q_params, x):
    grad = good_encoder_grad(model, params, encoder, q_params, x)
    h = onp.tanh(x @ q_params["W0"] + q_params["b0"])
    _, g = exact.elbo_grad(model, params, h @ q_params["W1"] + q_params["b1"], x)
    grad["W0"], grad["b0"] = x.T @ (g @ q_params["W1"].T), (g @ q_params["W1"].T).sum(axis=0)
    return grad


def _mean_over_data(model, params, encoder, q_params, x):
    return {k: v / x.shape[0] for k, v in good_encoder_grad(model, params, encoder, q_params, x).items()}


@pytest.mark.parametrize("wrong, phrase", [
    (_no_tanh_derivative, "tanh derivative"),
    (_mean_over_data, "averaged over the"),
    (lambda m, p, e, q, x: {k: -v for k, v in good_encoder_grad(m, p, e, q, x).items()}, "sign flipped"),
    (lambda m, p, e, q, x: {"W0": q["W0"]}, "keys"),
    (lambda m, p, e, q, x: {k: v.T for k, v in good_encoder_grad(m, p, e, q, x).items()}, "shape"),
])
def test_encoder_grad_checker_names_the_mistake(wrong, phrase):
    _assert_fails(exercises.check_encoder_grad(wrong), phrase)
