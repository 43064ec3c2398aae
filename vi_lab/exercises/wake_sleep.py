"""Checkers for the exercises of notebook 4: wake-sleep and reweighted wake-sleep.

Both exercises are about the divergence the sleep phase (and the wake-phi update of
reweighted wake-sleep) works on, KL(p(z|x) || q(z|x)), with p first: the reverse of the KL
that separates the ELBO from log p(x). The checkers compare the student's answer with one
computed by enumerating the 2**K latent states of a small model (K = 3, L = 5).

Checkers
--------
- :func:`check_inclusive_kl`: ``inclusive_kl(model, params, logits, x)`` -> KL(p(z|x) || q(z|x)), (N,).
- :func:`check_rws_wake_phi`: ``wake_phi(log_w, z, logits)`` -> the self-normalized wake-phi
  direction of reweighted wake-sleep, (B, K).
"""
import numpy as onp
from scipy.special import softmax

from .. import exact, variational
from ..model import BernoulliLVM
from ..nn import sigmoid
from ._check import CheckResult, compare_arrays, run_student

__all__ = ["check_inclusive_kl", "check_rws_wake_phi", "small_problem"]


def small_problem(seed=0, n_data=4, sharp=1.0):
    """A small enumerable model, data drawn from it, and logits of a mean-field q.

    Parameters
    ----------
    seed : int
    n_data : int
        N, datapoints drawn from the model.
    sharp : float, default 1.0
        Multiplies the decoder weights (large values give log-likelihoods of hundreds of nats).

    Returns
    -------
    model : BernoulliLVM
        K = 3, L = 5, one tanh layer of 6 units.
    params : dict
        Random weights, non-zero biases and prior logits.
    x : ndarray of shape (N, 5), values in {0., 1.}
    logits : ndarray of shape (N, 3)
        Random logits of q(z|x_n), one row pushed to +-12 (a near-deterministic q).
    """
    rng = onp.random.default_rng(seed)
    model = BernoulliLVM(n_latent=3, n_obs=5, hidden=(6,))
    params = model.init_params(rng, scale=1.5)
    params["prior_logits"] = rng.standard_normal(3)
    for key in params["decoder"]:
        if key.startswith("b"):
            params["decoder"][key] = 0.5 * rng.standard_normal(params["decoder"][key].shape)
        params["decoder"][key] = sharp * params["decoder"][key]
    _, x = model.sample(params, n_data, rng)
    logits = 1.5 * rng.standard_normal((n_data, 3))
    logits[-1] = [12.0, -12.0, 0.5]
    return model, params, x, logits


def _log_posterior(model, params, x):
    """log p(z_m | x_n) for every state, shape (M, N)."""
    states = exact.all_states(model.n_latent)
    log_joint = model.log_joint(params, x[None], states[:, None, :])
    return log_joint - exact.log_marginal(model, params, x), states


def inclusive_kl_reference(model, params, logits, x):
    """KL(p(z|x_n) || q(z|x_n)) by enumeration, shape (N,) (the checkers' reference)."""
    log_p, states = _log_posterior(model, params, x)
    log_q = variational.log_prob(logits, states[:, None, :])
    return onp.sum(onp.exp(log_p) * (log_p - log_q), axis=0)


def check_inclusive_kl(inclusive_kl):
    """Check the student's KL(p(z|x) || q(z|x)) against enumeration.

    Parameters
    ----------
    inclusive_kl : callable
        ``inclusive_kl(model, params, logits, x)`` with a :class:`~vi_lab.BernoulliLVM`, its
        params, the logits (N, K) of a mean-field q and data x (N, L); returns an ndarray of
        shape (N,).

    Returns
    -------
    CheckResult
        Names the usual mix-ups: the exclusive KL(q || p), the cross-entropy without the
        posterior's entropy, a flipped sign.

    Notes
    -----
    KL(p(z|x) || q(z|x)) = sum_z p(z|x) [log p(z|x) - log q(z|x)]. The sleep phase maximizes
    E_{p(z, x)}[log q(z|x)], i.e. minimizes this KL averaged over the model's own p(x); the
    ELBO instead closes KL(q || p) at the data (Hinton et al., 1995).
    """
    exercise = "inclusive KL(p(z|x) || q(z|x)) of the sleep phase"
    details = []
    for seed in (0, 1):
        model, params, x, logits = small_problem(seed)
        expected = inclusive_kl_reference(model, params, logits, x)
        got, failure = run_student(exercise, inclusive_kl, model, params, logits.copy(), x.copy())
        if failure is not None:
            return failure
        result = compare_arrays(exercise, got, expected, rtol=1e-7, atol=1e-9, name="KL")
        if not result.passed:
            return _diagnose_kl(exercise, got, expected, model, params, logits, x, result)
        details = result.details
    return CheckResult(exercise, True, details + [
        "KL(p || q) punishes q for missing posterior mass, so its minimizer covers every mode; "
        "for a mean-field q it matches the posterior marginals"])


def _diagnose_kl(exercise, got, expected, model, params, logits, x, result):
    try:
        got = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return result
    if got.shape != expected.shape or not onp.all(onp.isfinite(got)):
        return result
    log_p, states = _log_posterior(model, params, x)
    log_q = variational.log_prob(logits, states[:, None, :])
    p = onp.exp(log_p)
    candidates = [
        (exact.kl_to_posterior(model, params, logits, x),
         "you computed KL(q || p), the gap between log p(x) and the ELBO; the sleep phase's KL has the "
         "posterior first: sum_z p(z|x) [log p(z|x) - log q(z|x)]"),
        (-onp.sum(p * log_q, axis=0),
         "you computed the cross-entropy -sum_z p(z|x) log q(z|x) (what the sleep phase minimizes, up to "
         "a constant): subtract the entropy of p(z|x), i.e. add sum_z p(z|x) log p(z|x)"),
        (onp.sum(p * (log_q - log_p), axis=0),
         "your values are minus the KL: a KL divergence is never negative"),
        (onp.sum(p * (log_p - log_q), axis=1) if p.shape[0] == p.shape[1] else None,
         "you summed over datapoints instead of latent states"),
    ]
    for value, hint in candidates:
        if value is not None and onp.allclose(got, value, rtol=1e-6, atol=1e-8):
            return CheckResult(exercise, False, [hint] + result.details)
    if (got < -1e-9).any():
        return CheckResult(exercise, False, ["some of your values are negative, but a KL divergence is "
                                             "never negative"] + result.details)
    return result


def wake_phi_reference(log_w, z, logits):
    """sum_i wbar_i z_i - sigmoid(psi) with wbar = softmax of log_w over the k samples, shape (B, K)."""
    w_bar = softmax(log_w, axis=0)
    return onp.einsum("ib,ibk->bk", w_bar, z) - onp.asarray(sigmoid(logits))


def _wake_phi_case(seed, k, batch, n_latent, scale, offset):
    rng = onp.random.default_rng(seed)
    logits = 1.5 * rng.standard_normal((batch, n_latent))
    z = (rng.random((k, batch, n_latent)) < sigmoid(logits)).astype(float)
    log_w = scale * rng.standard_normal((k, batch)) + offset
    return log_w, z, logits


def check_rws_wake_phi(wake_phi):
    """Check the wake-phi update of reweighted wake-sleep.

    Parameters
    ----------
    wake_phi : callable
        ``wake_phi(log_w, z, logits)`` with log importance weights ``log_w`` of shape (k, B),
        samples ``z`` of shape (k, B, K), values in {0., 1.}, drawn from q, and the logits (B, K)
        of q; returns an ndarray of shape (B, K).

    Returns
    -------
    CheckResult

    Notes
    -----
    With w_i = p(x, z_i) / q(z_i|x) and wbar_i = w_i / sum_j w_j,
    sum_i wbar_i d/dpsi log q(z_i|x) = sum_i wbar_i z_i - sigmoid(psi) is a self-normalized
    importance-sampling estimate of E_{p(z|x)}[z] - sigmoid(psi) = -d/dpsi KL(p(z|x) || q(z|x))
    (Bornschein & Bengio, 2015). The weights must be normalized in log space: log weights of
    hundreds of nats are normal, and exp of them over- or underflows. The second test case has
    log weights around +-700.
    """
    exercise = "reweighted wake-sleep: wake-phi update"
    cases = [_wake_phi_case(0, 6, 3, 4, 1.0, 0.0), _wake_phi_case(1, 5, 4, 3, 3.0, 0.0),
             _wake_phi_case(2, 5, 4, 3, 20.0, -750.0), _wake_phi_case(3, 5, 4, 3, 20.0, 750.0)]
    details = []
    for i, (log_w, z, logits) in enumerate(cases):
        expected = wake_phi_reference(log_w, z, logits)
        got, failure = run_student(exercise, wake_phi, log_w.copy(), z.copy(), logits.copy())
        if failure is not None:
            return failure
        result = compare_arrays(exercise, got, expected, rtol=1e-7, atol=1e-10, name="wake-phi direction")
        if result.passed:
            details = result.details
            continue
        hints = []
        try:
            got = onp.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return result
        if i >= 2:
            # the moderate cases passed, so what breaks here is the arithmetic, not the formula
            hints.append(f"correct for moderate weights, but with log weights around {log_w.mean():+.0f} nats "
                         "exp(log_w) over- or underflows: normalize in log space, "
                         "wbar = exp(log_w - logsumexp(log_w, axis=0))")
        elif got.shape == expected.shape and onp.all(onp.isfinite(got)):
            hints.extend(_wake_phi_hints(got, log_w, z, logits))
        return CheckResult(exercise, False, hints + result.details)
    return CheckResult(exercise, True, details + [
        "as k grows this tends to E_p(z|x)[z] - sigmoid(psi), the exact descent direction of KL(p || q)"])


def _wake_phi_hints(got, log_w, z, logits):
    s = onp.asarray(sigmoid(logits))
    w_bar = softmax(log_w, axis=0)
    with onp.errstate(over="ignore", under="ignore"):
        w = onp.exp(log_w)
    candidates = [
        (z.mean(axis=0) - s, "you weighted every sample equally: weight sample i by its normalized "
                             "importance weight wbar_i = w_i / sum_j w_j"),
        (onp.einsum("ib,ibk->bk", w_bar, z), "the -sigmoid(logits) term is missing: d/dpsi log q(z|x) = "
                                             "z - sigmoid(psi), and the normalized weights sum to one"),
        (onp.einsum("ib,ibk->bk", w, z - s), "the importance weights are not normalized: divide them by "
                                             "their sum over the k samples"),
        (onp.einsum("ib,ibk->bk", softmax(log_w, axis=1), z - s),
         "you normalized the weights over the datapoints (axis 1); normalize over the k samples of each "
         "datapoint (axis 0)"),
        (s - onp.einsum("ib,ibk->bk", w_bar, z), "the sign is flipped: the direction is sum_i wbar_i z_i - "
                                                 "sigmoid(psi)"),
    ]
    for value, hint in candidates:
        if onp.all(onp.isfinite(value)) and onp.allclose(got, value, rtol=1e-6, atol=1e-9):
            return [hint]
    return []
