"""ARMS: S >= 2 antithetic Bernoulli samples from a Dirichlet copula, with a debiased leave-one-out signal."""
import numpy as onp
from autograd.tracer import getval

from ..nn import log_sigmoid, sigmoid
from .base import Estimator, uniform_open

__all__ = ["ARMS", "dirichlet_copula", "arms_debias"]

_ENTROPY = ("sampled", "analytic")


def dirichlet_copula(u):
    """S negatively correlated uniforms per coordinate from S independent ones.

    Parameters
    ----------
    u : ndarray of shape (R, S, ...), values in (0, 1)
        Independent uniforms; axis 1 is the sample axis (S >= 2).

    Returns
    -------
    ndarray of the shape of ``u``, values in [0, 1]
        u'_s = (1 - d_s)^(S - 1), d = e / sum_s e with e_s = -log u_s, so d ~ Dirichlet(1, ..., 1)
        along axis 1.

    Notes
    -----
    Each d_s is Beta(1, S - 1), whose survival function is (1 - x)^(S - 1): every u'_s is
    exactly uniform, and because the d_s sum to one the S uniforms are negatively correlated
    (for S = 2, u'_2 = 1 - u'_1: the antithetic pair).
    """
    n_samples = u.shape[1]
    e = -onp.log(u)
    d = e / e.sum(axis=1, keepdims=True)
    return onp.exp((n_samples - 1) * onp.log1p(-onp.minimum(d, 1.0)))


def arms_debias(logits, n_samples):
    """p (1 - p) / (p - P(b_i = 1, b_j = 1)) for two of the S copula samples, computed stably.

    Parameters
    ----------
    logits : ndarray of shape (..., K)
    n_samples : int >= 2

    Returns
    -------
    ndarray of the shape of ``logits``

    Notes
    -----
    With q = min(p, 1 - p) = sigmoid(-|psi|), the pairwise joint of the Dirichlet copula at
    (q, q) is C(q) = max(2 q^(1/(S-1)) - 1, 0)^(S-1), and p - P(b_i = b_j = 1) = q - C(q) for
    either orientation of the copula, so the factor is (1 - q) / (1 - C(q)/q) with
    C(q)/q = max(2 - q^(-1/(S-1)), 0)^(S-1), which stays finite for psi = +-1e4.
    """
    log_q = log_sigmoid(-onp.abs(logits))
    with onp.errstate(over="ignore"):
        ratio = onp.maximum(2.0 - onp.exp(-log_q / (n_samples - 1)), 0.0) ** (n_samples - 1)
    return onp.asarray(sigmoid(onp.abs(logits))) / (1.0 - ratio)


class ARMS(Estimator):
    """ARMS, antithetic REINFORCE with S >= 2 correlated samples (Dimitriev & Zhou, 2021). Unbiased.

    Options
    -------
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.

    Notes
    -----
    Per coordinate, S uniforms u'_1..u'_S come from the Dirichlet copula
    (:func:`dirichlet_copula`), used as they are when p = sigmoid(psi) < 1/2 and as 1 - u'
    otherwise, and b_s = 1[u'_s < p]: every b_s is distributed as q, but the S samples are
    negatively correlated (the most antithetic when S = 2). The leave-one-out REINFORCE
    estimator on such samples is biased, since E[f(b_j) (b_s - p)] = Cov(f(b_j), b_s) != 0;
    for one coordinate its expectation is (p - P(b_s = b_j = 1)) times the derivative
    instead of p (1 - p) times it, which a known factor corrects:

    g = S / (S - 1) (1/S) sum_s (f(b_s) - (1/S) sum_j f(b_j)) (b_s - p) * p (1 - p) / (p - P(b_s = b_j = 1)),

    the factor from :func:`arms_debias` (coordinates are independent, so the argument
    holds coordinate by coordinate for any f). Unbiased; invariant to a constant added to f.
    For S = 2 it is exactly DisARM; with S independent samples instead it would be RLOO.

    Cost: 1 evaluation of f per sample (S per estimate, which is one set of correlated draws).

    References
    ----------
    Dimitriev & Zhou (2021), "ARMS: Antithetic-REINFORCE-Multi-Sample gradient for binary
    variables", ICML.
    """

    name = "arms"
    min_samples = 2
    reference = "Dimitriev & Zhou (2021), ARMS: Antithetic-REINFORCE-Multi-Sample gradient, ICML"
    options = {"entropy": "sampled"}

    def _validate_options(self):
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")

    def _min_samples_message(self, n_samples):
        return (f"n_samples: ARMS draws S >= 2 correlated samples per estimate, got {n_samples}; "
                f"use n_samples >= 2 (S = 2 is DisARM)")

    def _grad(self, f, logits, n_samples, rng, n_reps):
        u = dirichlet_copula(uniform_open(rng, (n_reps, n_samples) + logits.shape))
        p, one_minus_p = onp.asarray(sigmoid(logits)), onp.asarray(sigmoid(-logits))
        # 1 - u' < p is written u' > 1 - p so that p near 1 does not round
        b = onp.where(logits < 0, u < p, u > one_minus_p).astype(onp.float64)
        values = onp.asarray(getval(f(b)))                               # (R, S, *batch)
        centred = values - values.mean(axis=1, keepdims=True)
        scale = n_samples / (n_samples - 1) * arms_debias(logits, n_samples)
        return scale * onp.mean(centred[..., None] * (b - p), axis=1)
