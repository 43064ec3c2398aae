"""Gradient scale, checked through ``fit`` with plain SGD (Adam hides a wrong scale).

One SGD step from zero velocity moves every parameter by lr * (1 - mass) * g, so the direction g
``fit`` ascends is read off the parameters it returns. Each method's g is compared with the exact
gradient of its stated objective (fit's docstring and :mod:`vi_lab.inference.methods`): global
parameters (theta, encoder weights) get the gradient of the **batch mean**; MeanField rows get the
gradient of **their own datapoint's** objective; Monte Carlo averages are **means** over samples,
dreams and importance samples. The references below are written from the equations with
autograd over an explicit enumeration, independently of vi_lab.exact.
"""
import itertools

import autograd
import autograd.numpy as anp
import numpy as onp
import pytest
from autograd.scipy.special import logsumexp

import vi_lab
from vi_lab.inference import fit
from vi_lab.variational import Encoder, MeanField

K, L, N = 2, 3, 6
STATES = onp.array(list(itertools.product([0.0, 1.0], repeat=K)))
LR = 1.0


@pytest.fixture(scope="module")
def problem():
    model = vi_lab.BernoulliLVM(n_latent=K, n_obs=L, hidden=(3,))
    params = model.init_params(1, scale=1.5)
    params["prior_logits"] = onp.array([0.4, -0.7])
    x = onp.array(list(itertools.product([0.0, 1.0], repeat=L)))[[0, 2, 3, 5, 6, 7]]
    return model, params, x


def _log_q(psi, z):
    return anp.sum(z * -anp.logaddexp(0, -psi) + (1 - z) * -anp.logaddexp(0, psi), axis=-1)


def _elbo_rows(model, params, psi, x):
    """Exact ELBO per datapoint: sum_z q(z) [log p(x, z) - log q(z)], (N,)."""
    log_q = _log_q(psi[:, None, :], STATES[None])                         # (N, M)
    log_joint = model.log_joint(params, x[:, None, :], STATES[None])       # (N, M)
    return anp.sum(anp.exp(log_q) * (log_joint - log_q), axis=1)


def _log_px_rows(model, params, x):
    return logsumexp(model.log_joint(params, x[:, None, :], STATES[None]), axis=1)


def _direction(result, before, key=None):
    """g such that one SGD step moved ``before`` to the result's parameters by lr * (1 - mass) * g."""
    mass = result.config["optimizer"]["mass"]
    after = result.params if key is None else result.q_params
    return vi_lab._tree.tree_map(lambda a, b: (onp.asarray(a) - b) / (LR * (1.0 - mass)), after, before)


def _run(model, params, x, **kw):
    kw.setdefault("record_exact", False)
    return fit(model, x, steps=1, learning_rate=LR, optimizer="sgd", record_every=1, progress=False,
               params=params, rng=0, **kw)


def _assert_tree_close(got, expected, rtol=1e-9, atol=1e-11):
    flat_got, _ = vi_lab._tree.flatten(got)
    flat_exp, _ = vi_lab._tree.flatten(expected)
    onp.testing.assert_allclose(flat_got, flat_exp, rtol=rtol, atol=atol)


def _encoder(hidden=(3,), out_bias=None):
    enc = Encoder(L, K, hidden=hidden)
    q = enc.init_params(2, scale=1.5)
    if out_bias is not None:
        q[f"W{len(hidden)}"] = onp.zeros_like(q[f"W{len(hidden)}"])
        q[f"b{len(hidden)}"] = onp.array(out_bias, dtype=float)
    return enc, q


# ---------------------------------------------------------------------------- exact gradients
@pytest.mark.parametrize("method, estimator", [("exact_elbo", None), ("per_datapoint", "exact")])
def test_mean_field_elbo_step_is_batch_mean_for_theta_and_own_row_for_psi(problem, method, estimator):
    model, params, x = problem
    family = MeanField(N, K)
    q0 = {"logits": onp.random.default_rng(3).normal(size=(N, K))}
    res = _run(model, params, x, method=method, estimator=estimator, family=family, q_params=q0)
    g_theta = autograd.grad(lambda p: anp.mean(_elbo_rows(model, p, q0["logits"], x)))(params)
    g_rows = autograd.grad(lambda psi: anp.sum(_elbo_rows(model, params, psi, x)))(q0["logits"])
    _assert_tree_close(_direction(res, params), g_theta)
    _assert_tree_close(_direction(res, q0, "q"), {"logits": g_rows})


def test_mean_field_minibatch_moves_only_its_rows_with_the_batch_mean(problem):
    model, params, x = problem
    q0 = {"logits": onp.random.default_rng(4).normal(size=(N, K))}
    res = _run(model, params, x, method="per_datapoint", estimator="exact", family=MeanField(N, K),
               q_params=q0, batch_size=2)
    g_q = _direction(res, q0, "q")["logits"]
    rows = onp.flatnonzero(onp.abs(g_q).sum(axis=1) > 0)
    assert len(rows) == 2
    g_theta = autograd.grad(lambda p: anp.mean(_elbo_rows(model, p, q0["logits"][rows], x[rows])))(params)
    _assert_tree_close(_direction(res, params), g_theta)
    g_rows = autograd.grad(lambda psi: anp.sum(_elbo_rows(model, params, psi, x[rows])))(q0["logits"][rows])
    onp.testing.assert_allclose(g_q[rows], g_rows, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("method, estimator", [("exact_elbo", None), ("amortized", "exact")])
def test_encoder_elbo_step_is_the_batch_mean_gradient(problem, method, estimator):
    model, params, x = problem
    enc, q0 = _encoder()
    res = _run(model, params, x, method=method, estimator=estimator, family=enc, q_params=q0)
    mean_elbo = lambda p, q: anp.mean(_elbo_rows(model, p, vi_lab.nn.mlp(q, x), x))
    _assert_tree_close(_direction(res, params), autograd.grad(mean_elbo, 0)(params, q0))
    _assert_tree_close(_direction(res, q0, "q"), autograd.grad(mean_elbo, 1)(params, q0))


def test_exact_ml_step_is_the_batch_mean_log_marginal_gradient(problem):
    model, params, x = problem
    res = _run(model, params, x, method="exact_ml")
    g = autograd.grad(lambda p: anp.mean(_log_px_rows(model, p, x)))(params)
    _assert_tree_close(_direction(res, params), g)


# ---------------------------------------------------------------------------- wake-sleep
def test_wake_step_is_the_mean_over_samples_and_batch(problem):
    model, params, x = problem
    # a near-deterministic encoder (logits +-50: sigmoid is exactly 1 or 0) fixes z* = (1, 0)
    enc, q0 = _encoder(out_bias=[50.0, -50.0])
    z_star = onp.array([1.0, 0.0])
    res = _run(model, params, x, method="wake_sleep", family=enc, q_params=q0, n_samples=3)
    g = autograd.grad(lambda p: anp.mean(model.log_joint(p, x, z_star)))(params)
    _assert_tree_close(_direction(res, params), g)


def _sleep_reference(model, params, enc, q0):
    """E_{(z, x) ~ p}[d log q(z|x)/d phi] and its per-dream variance, by enumeration over (z, x)."""
    xs = onp.array(list(itertools.product([0.0, 1.0], repeat=L)))
    log_pxz = onp.asarray(model.log_joint(params, xs[None, :, :], STATES[:, None, :]))    # (M, 2**L)
    p = onp.exp(log_pxz)
    assert abs(p.sum() - 1) < 1e-12
    grad_log_q = autograd.grad(lambda q, z, xx: anp.sum(_log_q(enc.logits(q, xx), z)))
    mean = None
    second = None
    for m, z in enumerate(STATES):
        for j, xx in enumerate(xs):
            flat, unflatten = vi_lab._tree.flatten(grad_log_q(q0, z[None], xx[None]))
            mean = p[m, j] * flat if mean is None else mean + p[m, j] * flat
            second = p[m, j] * flat ** 2 if second is None else second + p[m, j] * flat ** 2
    return mean, second - mean ** 2


@pytest.mark.parametrize("method, options", [("wake_sleep", {"n_sleep": 4000}),
                                             ("reweighted_wake_sleep", {"n_sleep": 4000, "wake_phi": False,
                                                                         "sleep_phi": True})])
def test_sleep_step_is_the_mean_over_dreams(problem, method, options):
    model, params, x = problem
    enc, q0 = _encoder()
    res = _run(model, params, x, method=method, family=enc, q_params=q0, method_options=options)
    got, _ = vi_lab._tree.flatten(_direction(res, q0, "q"))
    mean, var = _sleep_reference(model, params, enc, q0)
    se = onp.sqrt(var / options["n_sleep"])
    assert (onp.abs(got - mean) < 5 * se + 1e-12).all(), onp.max(onp.abs(got - mean) / (se + 1e-300))
    # the test can fail: a sum over dreams (x n_sleep) or an extra 1/B is far outside 5 SE
    assert not (onp.abs(got * 2 - mean) < 5 * se + 1e-12).all()


# ---------------------------------------------------------------------------- reweighted wake-sleep
def test_rws_theta_step_is_the_batch_mean_of_normalized_weights(problem):
    model, params, x = problem
    enc, q0 = _encoder(out_bias=[-50.0, 50.0])
    z_star = onp.array([0.0, 1.0])
    # k identical samples: every normalized weight is 1/k, so the direction is the batch mean at z*
    res = _run(model, params, x, method="reweighted_wake_sleep", family=enc, q_params=q0, n_samples=4)
    g = autograd.grad(lambda p: anp.mean(model.log_joint(p, x, z_star)))(params)
    _assert_tree_close(_direction(res, params), g)


def _rws_phi_reference(model, params, psi, x, k):
    """E[sum_i wbar_i z_i] - sigmoid(psi) for one row, by enumeration over the k-tuples of states."""
    log_q = onp.asarray(_log_q(psi[None], STATES))                                # (M,)
    log_w = onp.asarray(model.log_joint(params, x, STATES)) - log_q               # (M,)
    mean, second = onp.zeros(K), onp.zeros(K)
    for tup in itertools.product(range(len(STATES)), repeat=k):
        tup = list(tup)
        prob = onp.exp(log_q[tup].sum())
        w = onp.exp(log_w[tup] - logsumexp(log_w[tup]))
        value = w @ STATES[tup] - 1 / (1 + onp.exp(-psi))
        mean += prob * value
        second += prob * value ** 2
    return mean, second - mean ** 2


def test_rws_wake_phi_rows_get_their_own_mean_over_importance_samples(problem):
    model, params, _ = problem
    k, copies = 3, 400
    x_one = onp.array([1.0, 0.0, 1.0])
    x = onp.tile(x_one, (copies, 1))
    psi0 = onp.array([0.3, -0.8])
    q0 = {"logits": onp.tile(psi0, (copies, 1))}
    res = _run(model, params, x, method="reweighted_wake_sleep", family=MeanField(copies, K), q_params=q0,
               n_samples=k)
    rows = _direction(res, q0, "q")["logits"]                     # (copies, K): iid draws of one row's step
    mean, var = _rws_phi_reference(model, params, psi0, x_one, k)
    se = onp.sqrt(var / copies)
    onp.testing.assert_array_less(onp.abs(rows.mean(axis=0) - mean), 5 * se)
    # and the spread matches one row's own estimate (a 1/B or 1/k factor would shrink it)
    onp.testing.assert_allclose(rows.var(axis=0), var, rtol=0.3)


# ---------------------------------------------------------------------------- estimators through fit
@pytest.mark.parametrize("estimator", ["score_function", "disarm"])
def test_per_datapoint_rows_get_their_own_elbo_gradient_from_a_stochastic_estimator(problem, estimator):
    model, params, _ = problem
    copies = 400
    x_one = onp.array([0.0, 1.0, 1.0])
    psi0 = onp.array([0.5, -0.2])
    q0 = {"logits": onp.tile(psi0, (copies, 1))}
    res = _run(model, params, onp.tile(x_one, (copies, 1)), method="per_datapoint", estimator=estimator,
               n_samples=2, family=MeanField(copies, K), q_params=q0)
    rows = _direction(res, q0, "q")["logits"]
    expected = autograd.grad(lambda psi: anp.sum(_elbo_rows(model, params, psi[None], x_one[None])))(psi0)
    se = rows.std(axis=0, ddof=1) / onp.sqrt(copies)
    onp.testing.assert_array_less(onp.abs(rows.mean(axis=0) - expected), 5 * se + 1e-12)
    # a sum over the batch (x copies) or a 1/B would be hundreds of SE away
    assert (onp.abs(rows.mean(axis=0) * 2 - expected) > 5 * se).any()
