"""ReinMax: straight-through with a second-order (Heun) Jacobian, for Bernoulli latents."""
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from ..nn import sigmoid
from .relaxed import _Relaxed

__all__ = ["ReinMax", "reinmax_jacobian"]


def reinmax_jacobian(logits, b, tau):
    """The backward-pass derivative ReinMax assigns to db/dpsi.

    Parameters
    ----------
    logits : ndarray of shape (..., K)
    b : ndarray broadcastable with ``logits``, values in {0., 1.}
    tau : float > 0

    Returns
    -------
    ndarray of the broadcast shape
        2 pi_1 (1 - pi_1) - p (1 - p) / 2 with pi_1 = (b + sigmoid(psi / tau)) / 2, p = sigmoid(psi).
    """
    pi1 = 0.5 * (b + onp.asarray(sigmoid(logits / tau)))
    p = onp.asarray(sigmoid(logits))
    return 2.0 * pi1 * (1.0 - pi1) - 0.5 * p * (1.0 - p)


class ReinMax(_Relaxed):
    """ReinMax (Liu et al., 2023): straight-through with Heun's second-order correction. Biased.

    Options
    -------
    tau : float > 0, default 1.0
        Temperature of sigmoid(psi / tau) inside the correction. The authors recommend
        tau >= 1 (their reference code refuses tau < 1); smaller values are accepted here so that
        the temperature sweeps of ``vi-lab variance`` can show what happens below 1.

    Notes
    -----
    A Bernoulli latent is a two-class categorical with logits (psi, 0). Forward, f sees the
    sample b ~ Bern(sigmoid(psi)) (no relaxation, no Gumbel noise). Backward, ReinMax replaces
    db/dpsi by

    J = 2 pi_1 (1 - pi_1) - p (1 - p) / 2,  pi_1 = (b + sigmoid(psi / tau)) / 2,

    the two-class reduction of its categorical rule (the softmax Jacobian at pi_1, doubled,
    minus half the Jacobian at p), so g = (1/S) sum_s f'(b_s) J(b_s). The exact derivative is
    p (1 - p) (f(1) - f(0)) in each coordinate; straight-through replaces f(1) - f(0) by one
    derivative of f (Euler's method, first order), while ReinMax's expectation at tau = 1 is
    p (1 - p) (f'(1) + f'(0)) / 2, the trapezoid rule (Heun's method, second order): exact
    when f is quadratic in each coordinate, biased otherwise and for tau != 1. f must be
    autograd-differentiable at 0/1 inputs.

    At the ELBO level, as for straight_through: the decoder sees the 0/1 samples, so the
    model-parameter gradient is the unbiased pathwise one, and the KL to the prior is
    differentiated in closed form.

    Cost: 1 decoder evaluation per sample (plus its reverse pass), as straight-through.

    References
    ----------
    Liu, Zhao, Wang, Chen, Gao & Han (2023), "Bridging discrete and backpropagation:
    straight-through and beyond", NeurIPS.
    """

    name = "reinmax"
    reference = "Liu et al. (2023), Bridging discrete and backpropagation: straight-through and beyond, NeurIPS"
    options = {"tau": 1.0}

    def _relax(self, logits, noise):
        psi = getval(logits)
        b = (psi + noise > 0).astype(onp.float64)            # logistic noise: b ~ Bern(sigmoid(psi))
        jac = reinmax_jacobian(psi, b, self.tau)
        # value b, derivative jac: the zero (logits - psi) carries the backward pass
        return b + jac * (logits - psi)
