"""Exact inference checked against normalization, closed forms, brute force and finite differences."""
import itertools

import numpy as onp
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import expit, logsumexp
from scipy.stats import chisquare

import vi_lab
from vi_lab import _enumeration, exact
from vi_lab._tree import flatten
from conftest import random_params


def brute_force_log_marginal(model, params, x):
    """A Python loop over states: slow, obviously right."""
    terms = [model.log_joint(params, x, onp.array(z, dtype=float))
             for z in itertools.product([0.0, 1.0], repeat=model.n_latent)]
    return logsumexp(onp.stack(terms, axis=1), axis=1)


def test_all_states_order_is_itertools_product():
    expected = onp.array(list(itertools.product([0, 1], repeat=4)), dtype=float)
    onp.testing.assert_array_equal(exact.all_states(4), expected)


@pytest.mark.parametrize("hidden", [(), (7,), (5, 4)])
def test_marginal_normalizes_over_all_observations(hidden):
    model = vi_lab.BernoulliLVM(n_latent=4, n_obs=8, hidden=hidden)
    params = random_params(model, 2, scale=2.0)
    all_x = exact.all_states(8)                       # every x in {0,1}^8
    total = onp.exp(logsumexp(exact.log_marginal(model, params, all_x)))
    assert abs(total - 1.0) < 1e-12


def test_matches_brute_force_loop_and_chunking_does_not_matter(monkeypatch):
    model = vi_lab.BernoulliLVM(n_latent=6, n_obs=7, hidden=(5,))
    params = random_params(model, 3)
    _, x = model.sample(params, 40, rng=0)
    reference = brute_force_log_marginal(model, params, x)
    onp.testing.assert_allclose(exact.log_marginal(model, params, x), reference, rtol=1e-12)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 64)        # force many tiny chunks
    onp.testing.assert_allclose(exact.log_marginal(model, params, x), reference, rtol=1e-12)
    post = exact.posterior(model, params, x)
    onp.testing.assert_allclose(post.sum(1), 1.0, rtol=1e-12)


def test_posterior_and_marginals_agree_with_bayes_rule(small_model):
    model, params = small_model
    _, x = model.sample(params, 6, rng=1)
    states = exact.all_states(3)
    joint = model.log_joint(params, x[:, None, :], states[None, :, :])
    expected = onp.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    post = exact.posterior(model, params, x)
    onp.testing.assert_allclose(post, expected, rtol=1e-12)
    onp.testing.assert_allclose(exact.posterior_marginals(model, params, x), expected @ states, rtol=1e-12)


def test_sampler_agrees_with_log_marginal_chi_square():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=3, hidden=(4,))
    params = random_params(model, 5, scale=2.0)
    n = 20000
    all_x = exact.all_states(3)
    expected = n * onp.exp(exact.log_marginal(model, params, all_x))

    def counts(x):
        codes = (x @ (2 ** onp.arange(2, -1, -1))).astype(int)
        return onp.bincount(codes, minlength=8)

    _, x = model.sample(params, n, rng=11)
    assert chisquare(counts(x), expected).pvalue > 1e-3
    # The same test rejects a sampler that draws z from the wrong prior (sign flipped).
    wrong = {**params, "prior_logits": -params["prior_logits"]}
    _, x_wrong = model.sample(wrong, n, rng=11)
    assert chisquare(counts(x_wrong), expected).pvalue < 1e-6


def test_elbo_plus_kl_is_log_marginal_and_bounds_it():
    model = vi_lab.BernoulliLVM(n_latent=5, n_obs=9, hidden=(8,))
    params = random_params(model, 4)
    _, x = model.sample(params, 30, rng=2)
    q_logits = 2.0 * onp.random.default_rng(0).standard_normal((30, 5))
    log_px = exact.log_marginal(model, params, x)
    elbo = exact.elbo(model, params, q_logits, x)
    kl = exact.kl_to_posterior(model, params, q_logits, x)
    onp.testing.assert_allclose(elbo + kl, log_px, atol=1e-10, rtol=0)
    assert onp.all(elbo <= log_px + 1e-12)
    assert onp.all(kl > 0)
    # ELBO as an explicit sum over states, E_q[log p(x,z) - log q(z)]
    states = exact.all_states(5)
    log_q = vi_lab.variational.log_prob(q_logits, states[:, None, :]).T          # (N, M)
    joint = model.log_joint(params, x[:, None, :], states[None, :, :])
    onp.testing.assert_allclose(elbo, (onp.exp(log_q) * (joint - log_q)).sum(1), atol=1e-10)


def test_kl_vanishes_when_the_posterior_factorizes():
    # Each observation depends on one latent only (block-diagonal linear decoder),
    # so p(z|x) is a product over k and the mean-field q can match it exactly.
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=6, hidden=())
    params = random_params(model, 6, scale=3.0)
    mask = onp.kron(onp.eye(3), onp.ones((1, 2)))           # (3, 6): latent k drives columns 2k, 2k+1
    params["decoder"]["W0"] = params["decoder"]["W0"] * mask
    _, x = model.sample(params, 12, rng=3)
    marg = exact.posterior_marginals(model, params, x)
    q_logits = onp.log(marg) - onp.log1p(-marg)
    onp.testing.assert_allclose(exact.kl_to_posterior(model, params, q_logits, x), 0.0, atol=1e-10)
    onp.testing.assert_allclose(exact.elbo(model, params, q_logits, x),
                                exact.log_marginal(model, params, x), atol=1e-10)
    # with the full mixing decoder the posterior does not factorize and the KL stays positive
    params_mixed = random_params(model, 6, scale=3.0)
    marg = exact.posterior_marginals(model, params_mixed, x)
    kl = exact.kl_to_posterior(model, params_mixed, onp.log(marg) - onp.log1p(-marg), x)
    assert kl.max() > 1e-3


def k1_closed_form(W, c, b, psi, x):
    """K = 1, linear decoder a(z) = z W + c, written out by hand."""
    def loglik(z):
        p = expit(z * W + c)
        return (x * onp.log(p) + (1 - x) * onp.log(1 - p)).sum(1)
    l1 = onp.log(expit(b)) + loglik(1.0)
    l0 = onp.log(expit(-b)) + loglik(0.0)
    log_px = onp.logaddexp(l1, l0)
    q = expit(psi)
    elbo = q * (l1 - onp.log(q)) + (1 - q) * (l0 - onp.log(1 - q))
    return log_px, elbo


def test_one_latent_against_closed_form():
    model = vi_lab.BernoulliLVM(n_latent=1, n_obs=4, hidden=())
    params = random_params(model, 7)
    x = exact.all_states(4)
    psi = onp.linspace(-3, 3, 16)
    W, c, b = params["decoder"]["W0"][0], params["decoder"]["b0"], params["prior_logits"][0]
    log_px, elbo = k1_closed_form(W, c, b, psi, x)
    onp.testing.assert_allclose(exact.log_marginal(model, params, x), log_px, rtol=1e-12)
    onp.testing.assert_allclose(exact.elbo(model, params, psi[:, None], x), elbo, rtol=1e-12)
    def loglik(a):
        return (x * onp.log(expit(a)) + (1 - x) * onp.log(expit(-a))).sum(1)
    # p(z=1|x) = sigmoid(log-odds of the two joint terms)
    post1 = expit(b + loglik(W + c) - loglik(c))
    onp.testing.assert_allclose(exact.posterior_marginals(model, params, x)[:, 0], post1, rtol=1e-12)


def test_extreme_logits_stay_finite_and_correct():
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=())
    params = model.init_params(0)
    params["prior_logits"] = onp.array([1e4, -1e4])          # z = (1, 0) with certainty
    params["decoder"]["W0"] = onp.array([[1e4, -1e4, 2.0], [5.0, 5.0, 5.0]])
    params["decoder"]["b0"] = onp.array([-1e4, 0.0, -1.0])
    x = onp.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    log_px = exact.log_marginal(model, params, x)
    assert onp.isfinite(log_px).all()
    # at z = (1, 0) the decoder logits are a = (0, -1e4, 1); log sigmoid(-1e4) = -1e4 to double precision
    log_sig = lambda t: -onp.logaddexp(0.0, -t)
    onp.testing.assert_allclose(log_px[0], log_sig(0.0) + log_sig(1e4) + log_sig(1.0), rtol=1e-12)
    onp.testing.assert_allclose(log_px[1], log_sig(0.0) - 1e4 + log_sig(1.0), rtol=1e-12)
    q_logits = onp.array([[1e4, -1e4], [-1e4, 1e4]])
    elbo = exact.elbo(model, params, q_logits, x)
    assert onp.isfinite(elbo).all()
    onp.testing.assert_allclose(elbo[0], log_px[0], rtol=1e-12)   # q is the (point-mass) posterior
    assert elbo[1] < -1e4                                       # q puts all mass on an impossible state
    g_params, g_logits = exact.elbo_grad(model, params, q_logits, x)
    assert onp.isfinite(flatten(g_params)[0]).all() and onp.isfinite(g_logits).all()
    assert onp.isfinite(flatten(exact.log_marginal_grad(model, params, x))[0]).all()


def central_differences(fun, flat, eps=1e-6):
    grad = onp.zeros_like(flat)
    for i in range(flat.size):
        step = onp.zeros_like(flat)
        step[i] = eps
        grad[i] = (fun(flat + step) - fun(flat - step)) / (2 * eps)
    return grad


def test_elbo_grad_matches_finite_differences():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=4, hidden=(3,))
    params = random_params(model, 8)
    _, x = model.sample(params, 5, rng=4)
    q_logits = onp.random.default_rng(1).standard_normal((5, 3))
    g_params, g_logits = exact.elbo_grad(model, params, q_logits, x)
    flat, unflatten = flatten(params)
    fd = central_differences(lambda v: exact.elbo(model, unflatten(v), q_logits, x).sum(), flat)
    onp.testing.assert_allclose(flatten(g_params)[0], fd, atol=1e-7, rtol=1e-6)
    fd_q = central_differences(lambda v: exact.elbo(model, params, v.reshape(5, 3), x).sum(), q_logits.ravel())
    onp.testing.assert_allclose(g_logits.ravel(), fd_q, atol=1e-7, rtol=1e-6)


def test_log_marginal_grad_matches_finite_differences(monkeypatch):
    model = vi_lab.BernoulliLVM(n_latent=4, n_obs=5, hidden=(3,))
    params = random_params(model, 9)
    _, x = model.sample(params, 6, rng=5)
    flat, unflatten = flatten(params)
    fd = central_differences(lambda v: exact.log_marginal(model, unflatten(v), x).sum(), flat)
    onp.testing.assert_allclose(flatten(exact.log_marginal_grad(model, params, x))[0], fd, atol=1e-7, rtol=1e-6)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 16)   # chunked accumulation gives the same gradient
    onp.testing.assert_allclose(flatten(exact.log_marginal_grad(model, params, x))[0], fd, atol=1e-7, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10 ** 6), k=st.integers(1, 4), scale=st.floats(0.1, 30.0))
def test_property_elbo_never_exceeds_log_marginal(seed, k, scale):
    model = vi_lab.BernoulliLVM(n_latent=k, n_obs=4, hidden=(3,))
    params = random_params(model, seed, scale=scale, prior_scale=scale)
    rng = onp.random.default_rng(seed)
    x = (rng.random((3, 4)) < 0.5).astype(float)
    q_logits = scale * rng.standard_normal((3, k))
    log_px = exact.log_marginal(model, params, x)
    elbo = exact.elbo(model, params, q_logits, x)
    assert onp.all(onp.isfinite(log_px)) and onp.all(log_px <= 1e-12)
    assert onp.all(elbo <= log_px + 1e-9 * (1 + abs(log_px)))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("x, match", [
    (onp.array([[0.0, 1.0, 2.0, 0.0, 1.0]]), "binary"),
    (onp.array([[0.0, 1.0, onp.nan, 0.0, 1.0]]), "NaN"),
    (onp.zeros((2, 4)), "5 columns"),
    (onp.zeros((2, 5, 1)), "shape"),
    (onp.zeros((0, 5)), "at least one row"),
    (onp.array([["a"] * 5]), "numeric"),
])
def test_bad_observations_are_rejected(small_model, x, match):
    model, params = small_model
    for fn in (exact.log_marginal, exact.posterior, exact.posterior_marginals, exact.log_marginal_grad):
        with pytest.raises(ValueError, match=match):
            fn(model, params, x)


@pytest.mark.parametrize("q_logits, match", [
    (onp.zeros((2, 2)), r"q_logits: expected shape \(2, 3\)"),
    (onp.zeros((3, 3)), r"q_logits: expected shape \(2, 3\)"),
    (onp.array([[0.0, onp.nan, 0.0]] * 2), "NaN"),
    (onp.array([[0.0, onp.inf, 0.0]] * 2), "inf"),
])
def test_bad_q_logits_are_rejected(small_model, q_logits, match):
    model, params = small_model
    x = onp.zeros((2, 5))
    for fn in (exact.elbo, exact.kl_to_posterior, exact.elbo_grad):
        with pytest.raises(ValueError, match=match):
            fn(model, params, q_logits, x)


def test_nan_parameters_are_rejected(small_model):
    model, params = small_model
    bad = {**params, "decoder": {**params["decoder"], "W0": params["decoder"]["W0"] * onp.nan}}
    with pytest.raises(ValueError, match=r"decoder.*W0.*NaN"):
        exact.log_marginal(model, bad, onp.zeros((1, 5)))


def test_too_many_latents_explains_the_cost():
    with pytest.raises(ValueError, match=r"2\*\*30 = 1,073,741,824 latent states.*GB.*K <= 24"):
        exact.check_enumerable(30, n_data=100, n_obs=64)
    model = vi_lab.BernoulliLVM(n_latent=25, n_obs=4, hidden=())
    with pytest.raises(ValueError, match="K <= 24"):
        exact.log_marginal(model, model.init_params(0), onp.zeros((1, 4)))
    with pytest.raises(ValueError, match="K <= 24"):
        exact.all_states(25)


def test_posterior_table_too_large_is_refused(monkeypatch, small_model):
    model, params = small_model
    monkeypatch.setattr(exact, "_MAX_TABLE", 20)
    with pytest.raises(ValueError, match="posterior_marginals"):
        exact.posterior(model, params, onp.zeros((3, 5)))


def test_one_dimensional_x_is_one_datapoint(small_model):
    model, params = small_model
    x = onp.array([1.0, 0.0, 1.0, 1.0, 0.0])
    onp.testing.assert_allclose(exact.log_marginal(model, params, x),
                                exact.log_marginal(model, params, x[None]), rtol=0)


def test_very_unlikely_data_take_the_shifted_path_and_agree_with_brute_force(monkeypatch):
    # Images that no latent state explains: log p(x) around -1000 nats, where
    # exp(log p(x, z)) underflows and the max-subtracted logsumexp must take over.
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=40, hidden=())
    params = random_params(model, 12)
    params["decoder"]["b0"] = onp.full(40, 30.0)             # every pixel is on with odds e^30 or so
    rng = onp.random.default_rng(0)
    typical = onp.ones((3, 40))
    typical[:, :2] = 0.0
    x = onp.concatenate([typical, (rng.random((3, 40)) < 0.1).astype(float)])   # mostly-off images
    reference = brute_force_log_marginal(model, params, x)
    assert reference[:3].max() > -100 and reference[3:].max() < -600
    onp.testing.assert_allclose(exact.log_marginal(model, params, x), reference, rtol=1e-12)
    calls = []
    original = exact._log_marginal_rows_shifted
    monkeypatch.setattr(exact, "_log_marginal_rows_shifted", lambda *a: calls.append(a[2].shape[0]) or original(*a))
    exact.log_marginal(model, params, x)
    assert calls == [3]                                       # only the three unlikely rows
