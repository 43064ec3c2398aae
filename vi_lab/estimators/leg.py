"""Local expectation gradients: each coordinate's expectation taken exactly over its two values."""
import numpy as onp
from autograd.tracer import getval

from ..nn import log_sigmoid
from .base import Estimator, bernoulli_from_uniform, uniform_open

__all__ = ["LocalExpectation", "flip_each"]

_ENTROPY = ("sampled", "analytic")


def flip_each(z):
    """The K one-bit neighbours of every z: coordinate k of neighbour k set to 1 - z_k.

    Parameters
    ----------
    z : ndarray of shape (R, S, *batch, K), values in {0., 1.}

    Returns
    -------
    ndarray of shape (R, S, K, *batch, K)
        Entry [r, s, k] is z[r, s] with its k-th coordinate flipped.
    """
    n_latent = z.shape[-1]
    eye = onp.eye(n_latent).reshape((n_latent,) + (1,) * (z.ndim - 3) + (n_latent,))
    lifted = z[:, :, None]
    return lifted * (1.0 - eye) + (1.0 - lifted) * eye


class LocalExpectation(Estimator):
    """Local expectation gradients (Titsias & Lazaro-Gredilla, 2015). Unbiased.

    Options
    -------
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.

    Notes
    -----
    For a mean-field q, d/dpsi_k E_q[f] = E_{z_{-k} ~ q}[sum_{z_k in {0,1}} dq(z_k)/dpsi_k f(z)],
    and the inner sum over the two values of z_k is done exactly. With p_k = sigmoid(psi_k),
    dq(z_k = 1)/dpsi_k = p_k (1 - p_k) = -dq(z_k = 0)/dpsi_k, so for S draws z_s ~ q,

    g_k = (1/S) sum_s p_k (1 - p_k) [f(z_s with z_k = 1) - f(z_s with z_k = 0)].

    One of the two arguments is z_s itself, the other its neighbour with bit k flipped, so
    f(z_{s,k=1}) - f(z_{s,k=0}) = (2 z_sk - 1) (f(z_s) - f(flip_k z_s)). Unbiased: the
    expectation over z_k is exact and z_{-k} ~ q. It is the Rao-Blackwellization of REINFORCE
    over each coordinate given the others (the conditional expectation of the score-function
    term for coordinate k given z_{-k}), so its variance is never above REINFORCE's and goes to
    zero, like p_k^2 (1 - p_k)^2, at the boundary of parameter space; a constant added to f
    cancels. Between one sample (REINFORCE) and the 2**K of enumeration: exact in one
    coordinate at a time. At the ELBO level the model gradient uses the S draws z_s only
    (the flipped neighbours are not samples of q).

    Cost: K + 1 evaluations of f per draw (f(z_s) and its K one-bit neighbours):
    ``evals_per_sample`` is None and ``cost(model)`` returns K + 1.

    References
    ----------
    Titsias & Lazaro-Gredilla (2015), "Local expectation gradients for black box variational
    inference", NeurIPS.
    """

    name = "leg"
    evals_per_sample = None
    reference = "Titsias & Lazaro-Gredilla (2015), Local expectation gradients, NeurIPS"
    options = {"entropy": "sampled"}

    def _validate_options(self):
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")

    def cost(self, model):
        """K + 1 evaluations of f per draw: the draw and its K one-bit neighbours."""
        return model.n_latent + 1

    def _grad(self, f, logits, n_samples, rng, n_reps):
        z = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        f_z = onp.asarray(getval(f(z)))                                   # (R, S, *batch)
        flips = flip_each(z)                                              # (R, S, K, *batch, K)
        n_latent = logits.shape[-1]
        flat = flips.reshape((n_reps, n_samples * n_latent) + flips.shape[3:])
        f_flip = onp.asarray(getval(f(flat, hard=False)))                 # not samples of q
        f_flip = onp.moveaxis(f_flip.reshape((n_reps, n_samples, n_latent) + f_z.shape[2:]), 2, -1)
        delta = (2.0 * z - 1.0) * (f_z[..., None] - f_flip)               # f(z_k=1) - f(z_k=0)
        weight = onp.exp(log_sigmoid(logits) + log_sigmoid(-logits))      # p (1 - p), exact at +-1e4
        return weight * delta.mean(axis=1)
