"""ARM and DisARM: unbiased antithetic estimators for Bernoulli latents (two evaluations per draw)."""
import numpy as onp
from autograd.tracer import getval

from ..nn import sigmoid
from .base import Estimator, sample_mean, uniform_open

__all__ = ["ARM", "DisARM"]

_ENTROPY = ("sampled", "analytic")


class _Antithetic(Estimator):
    evals_per_sample = 2
    options = {"entropy": "sampled"}

    def _validate_options(self):
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")

    def _pair(self, f, logits, n_samples, rng, n_reps):
        """The antithetic pair from one uniform per latent, and f on each member."""
        u = uniform_open(rng, (n_reps, n_samples) + logits.shape)
        b_up = (u > onp.asarray(sigmoid(-logits))).astype(onp.float64)    # 1[u > sigmoid(-psi)]
        b_down = (u < onp.asarray(sigmoid(logits))).astype(onp.float64)   # 1[u < sigmoid(psi)]
        # two calls rather than one on the pair concatenated: the copy cost as much as a call
        f_up, f_down = (onp.asarray(getval(f(b))) for b in (b_up, b_down))
        return u, b_up, b_down, f_up, f_down


class ARM(_Antithetic):
    """ARM, the augment-REINFORCE-merge estimator (Yin & Zhou, 2019). Unbiased.

    Options
    -------
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function: learning signal log p(x, z) - log q(z|x), or
        log p(x|z) with the KL to the prior differentiated in closed form.

    Notes
    -----
    For one uniform vector u ~ U(0, 1)^K per draw,

    g = (f(1[u > sigmoid(-psi)]) - f(1[u < sigmoid(psi)])) (u - 1/2),

    averaged over the S draws. Both arguments of f are distributed as q and share u
    (antithetic), so f's common part cancels: adding a constant to f changes nothing.
    Unbiased: for one coordinate, E[(1[u > 1 - p] - 1[u < p]) (u - 1/2)] = p (1 - p), the
    derivative of p = sigmoid(psi). At the ELBO level the model gradient averages
    grad_theta log p(x, z) over both members of every pair.

    Cost: 2 decoder evaluations per draw (one antithetic pair).

    References
    ----------
    Yin & Zhou (2019), "ARM: Augment-REINFORCE-merge gradient for stochastic binary
    networks", ICLR.
    """

    name = "arm"
    reference = "Yin & Zhou (2019), ARM: Augment-REINFORCE-Merge gradient, ICLR"

    def _grad(self, f, logits, n_samples, rng, n_reps):
        u, _, _, f_up, f_down = self._pair(f, logits, n_samples, rng, n_reps)
        u -= 0.5                                   # u is this call's own: reuse it for the product
        u *= (f_up - f_down)[..., None]
        return sample_mean(u)


class DisARM(_Antithetic):
    """DisARM, ARM with the antithetic noise integrated out (Dong, Mnih & Tucker, 2020). Unbiased.

    Options
    -------
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.

    Notes
    -----
    With b = 1[u < sigmoid(psi)] and its antithetic partner b~ = 1[1 - u < sigmoid(psi)]
    (the same pair as ARM), coordinate k of one draw is

    g_k = 1/2 (f(b) - f(b~)) (-1)^{b~_k} 1[b_k != b~_k] sigmoid(|psi_k|),

    averaged over the S draws. It is the conditional expectation of ARM given the pair
    (b, b~), so it is unbiased and its variance is never larger than ARM's at the same cost.

    Cost: 2 decoder evaluations per draw (one antithetic pair).

    References
    ----------
    Dong, Mnih & Tucker (2020), "DisARM: An antithetic gradient estimator for binary latent
    variables", NeurIPS.
    """

    name = "disarm"
    reference = "Dong, Mnih & Tucker (2020), DisARM: an antithetic gradient estimator, NeurIPS"

    def _grad(self, f, logits, n_samples, rng, n_reps):
        _, b_up, b_down, f_up, f_down = self._pair(f, logits, n_samples, rng, n_reps)
        # b = b_down (u < sigmoid(psi)); b~ = b_up (1 - u < sigmoid(psi)): (-1)^{b~_k} 1[b_k != b~_k]
        # is +1 where (b, b~) = (1, 0), -1 where (0, 1) and 0 where they agree, that is b - b~
        weight = b_down - b_up
        weight *= onp.asarray(sigmoid(onp.abs(logits)))
        return sample_mean(0.5 * (f_down - f_up)[..., None] * weight)
