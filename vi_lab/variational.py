"""Mean-field Bernoulli variational families q(z|x) = prod_k Bernoulli(z_k; sigmoid(psi_k)).

This module holds the closed-form pieces every method needs (sampling, log q,
entropy, KL to the prior). The families that produce the logits psi, a per-datapoint
table and an amortized encoder, are defined further down.
"""
import autograd.numpy as np
import numpy as onp

from ._validation import check_rng, check_positive_int
from .nn import softplus, sigmoid

__all__ = ["sample", "log_prob", "entropy", "kl_to_prior", "expected_log_prior"]


def sample(logits, n_samples, rng=None):
    """Draw z ~ q(z|x) for every datapoint.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
        psi, the logits of q.
    n_samples : int
        S, the number of draws per datapoint.
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (S, N, K), values in {0., 1.}

    Notes
    -----
    z_snk = 1[u_snk < sigmoid(psi_nk)] with u ~ Uniform(0, 1). The threshold has zero
    derivative, so no gradient flows through these samples.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = check_rng(rng)
    probs = onp.asarray(sigmoid(onp.asarray(logits, dtype=float)))
    u = rng.random((n_samples,) + probs.shape)
    return (u < probs).astype(onp.float64)


def log_prob(logits, z):
    """log q(z|x) = sum_k [z_k psi_k - softplus(psi_k)].

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    z : ndarray of shape (..., N, K), values in {0., 1.}

    Returns
    -------
    ndarray of shape (..., N)
    """
    return np.sum(z * logits - softplus(logits), axis=-1)


def entropy(logits):
    """Entropy H[q] of the mean-field Bernoulli, in nats.

    Parameters
    ----------
    logits : ndarray of shape (N, K)

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    H = sum_k [softplus(psi_k) - sigmoid(psi_k) psi_k], finite for psi = +-1e4.
    """
    return np.sum(softplus(logits) - sigmoid(logits) * logits, axis=-1)


def expected_log_prior(logits, prior_logits):
    """E_q[log p(z)] for a Bernoulli prior with logits b.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    prior_logits : ndarray of shape (K,)

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    E_q[log p(z)] = sum_k [sigmoid(psi_k) b_k - softplus(b_k)].
    """
    return np.sum(sigmoid(logits) * prior_logits - softplus(prior_logits), axis=-1)


def kl_to_prior(logits, prior_logits):
    """KL(q(z|x) || p(z)) in closed form.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    prior_logits : ndarray of shape (K,)

    Returns
    -------
    ndarray of shape (N,), non-negative

    Notes
    -----
    KL = sum_k [sigmoid(psi_k) (psi_k - b_k) + softplus(b_k) - softplus(psi_k)].
    """
    q = sigmoid(logits)
    return np.sum(q * (logits - prior_logits) + softplus(prior_logits) - softplus(logits), axis=-1)
