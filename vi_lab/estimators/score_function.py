"""REINFORCE (the score-function estimator) with optional leave-one-out or mean baselines."""
import numpy as onp
from autograd.tracer import getval

from .base import Estimator, bernoulli_from_uniform, sample_sum, score_grad, uniform_open

__all__ = ["ScoreFunction"]

_BASELINES = (None, "rloo", "mean")
_ENTROPY = ("sampled", "analytic")


class ScoreFunction(Estimator):
    """REINFORCE / score-function gradient estimator for Bernoulli latents.

    Options
    -------
    baseline : {None, "rloo", "mean"}, default None
        None: plain REINFORCE. "rloo": each sample's signal minus the mean of the other S - 1
        signals (needs ``n_samples >= 2``; unbiased). "mean": minus the mean of all S signals,
        its own included (biased, see Notes).
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only. "sampled": learning signal log p(x, z) - log q(z|x). "analytic":
        learning signal log p(x|z), the KL to the prior differentiated in closed form (the
        second form of the ELBO). The generic level ignores it.

    Notes
    -----
    With z_1..z_S ~ q iid and score s(z) = d/dpsi log q(z) = z - sigmoid(psi),

    g = (1/S) sum_s (f(z_s) - b_s) s(z_s),

    b_s = 0 (plain), b_s = (1/(S-1)) sum_{j != s} f(z_j) ("rloo"), or
    b_s = (1/S) sum_j f(z_j) ("mean"). Plain and "rloo" are unbiased: b_s is independent of z_s
    and E[s(z)] = 0. "mean" equals (S-1)/S times the "rloo" estimate, so its expectation is
    (1 - 1/S) times the true gradient (zero for S = 1): biased towards zero, the bias vanishing
    as S grows. Implemented as the gradient of the surrogate (1/S) sum_s stop_grad(f(z_s) - b_s)
    log q(z_s).

    At the ELBO level f(z) = log p(x, z) - log q(z|x) with q's logits held constant inside f
    (the explicit derivative of -log q has zero expectation); the model gradient is the
    pathwise (1/S) sum_s grad_theta log p(x, z_s).

    Cost: one decoder evaluation per sample.

    References
    ----------
    Williams (1992), "Simple statistical gradient-following algorithms for connectionist
    reinforcement learning", Machine Learning 8. Leave-one-out baseline: Kool, van Hoof &
    Welling (2019), "Buy 4 REINFORCE samples, get a baseline for free!", ICLR workshop.
    """

    name = "score_function"
    reference = "Williams (1992); leave-one-out baseline: Kool, van Hoof & Welling (2019)"
    options = {"baseline": None, "entropy": "sampled"}

    def _validate_options(self):
        if self.baseline not in _BASELINES:
            raise ValueError(f"baseline: expected None, 'rloo' or 'mean', got {self.baseline!r}")
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")
        self.min_samples = 2 if self.baseline == "rloo" else 1
        self.unbiased = self.baseline != "mean"

    def _min_samples_message(self, n_samples):
        return (f"n_samples: baseline='rloo' leaves one sample out and needs n_samples >= 2, got "
                f"{n_samples}; use n_samples >= 2 or baseline=None")

    def _grad(self, f, logits, n_samples, rng, n_reps):
        u = uniform_open(rng, (n_reps, n_samples) + logits.shape)
        z = bernoulli_from_uniform(logits, u)
        values = onp.asarray(getval(f(z)))                          # (R, S, *batch)
        return score_grad(center(values, self.baseline), z, logits)


def center(values, baseline):
    """Subtract a sample baseline along axis 1 (the sample axis) of ``values`` (R, S, ...)."""
    if baseline is None:
        return values
    n_samples = values.shape[1]
    total = sample_sum(values, keepdims=True)
    if baseline == "mean":
        return values - total / n_samples
    return values - (total - values) / (n_samples - 1)
