"""VIMCO: leave-one-out learning signals for the multi-sample (IWAE) bound."""
import numpy as onp
from autograd.tracer import getval

from .._validation import check_bool, check_rng
from ..nn import log_sigmoid
from .base import Estimator, bernoulli_from_uniform, score_grad, uniform_open, weighted_log_density_grads

__all__ = ["VIMCO", "vimco_signals"]


def logsumexp(a, axis, keepdims=False):
    """log sum exp over ``axis`` with the max subtracted (scipy's, without its per-call checks)."""
    top = onp.max(a, axis=axis, keepdims=True)
    top = onp.where(onp.isfinite(top), top, 0.0)
    out = onp.log(onp.sum(onp.exp(a - top), axis=axis, keepdims=True)) + top
    return out if keepdims else onp.squeeze(out, axis=axis)


def vimco_signals(log_w):
    """The multi-sample bound and VIMCO's leave-one-out learning signals.

    Parameters
    ----------
    log_w : ndarray of shape (R, S, ...)
        Log weights of S samples (axis 1), S >= 2.

    Returns
    -------
    bound : ndarray of shape (R, 1, ...)
        log (1/S) sum_s exp(log_w_s).
    signals : ndarray of shape (R, S, ...)
        bound - log (1/S) [sum_{j != s} exp(log_w_j) + exp(mean_{j != s} log_w_j)].

    Notes
    -----
    Each sample's weight is replaced by the geometric mean of the others, which does not
    depend on sample s, so subtracting the resulting bound keeps the estimator unbiased.

    O(S) per replicate, not O(S^2): the sum over the others is the total minus sample s. In
    log space with the maximum m subtracted, e_j = exp(log_w_j - m), the total minus e_s keeps
    the top sample's term 1, so nothing cancels, except for the top sample itself; its others
    are summed afresh with their own maximum (the second largest log weight) subtracted.
    Weights of exactly 0 (log_w = -inf) are allowed: the others' mean is then -inf if one of
    them is 0, and their finite total otherwise.
    """
    n_samples = log_w.shape[1]
    log_s = onp.log(n_samples)
    # samples first, (S, R, ...): each reduction over them is then an outer loop over S around one
    # long inner loop over (R, ...), where with (R, S, ...) numpy runs inner loops prod(...) long.
    # The in-place steps compute the same expressions as written in the comments, in one array each.
    w = onp.ascontiguousarray(onp.moveaxis(log_w, 1, 0))
    position = onp.arange(n_samples).reshape((n_samples,) + (1,) * (w.ndim - 1))
    peak = onp.max(w, axis=0, keepdims=True)
    first = onp.min(onp.where(w == peak, position, n_samples), axis=0, keepdims=True)
    is_top = position == first                                                 # one per column, the first maximum
    top = _finite(peak)                                                        # (1, R, ...)
    scaled = w - top
    onp.exp(scaled, out=scaled)                                                # exp(w - top)
    total = scaled.sum(axis=0, keepdims=True)                                  # >= 1: the top term is 1
    bound = onp.log(total) + top - log_s
    zero = w == -onp.inf                                                       # weights of exactly 0
    if zero.any():
        # the total minus w_s would be -inf - (-inf) for such a sample: total the finite others
        finite = onp.where(zero, 0.0, w)
        loo_mean = finite.sum(axis=0, keepdims=True) - finite
        loo_mean[zero.sum(axis=0, keepdims=True) - zero > 0] = -onp.inf        # another weight is 0
    else:
        loo_mean = w.sum(axis=0, keepdims=True) - w
    loo_mean /= n_samples - 1                                                  # (S, R, ...)
    rest = onp.where(is_top, -onp.inf, w)
    second = _finite(onp.max(rest, axis=0, keepdims=True))
    rest -= second
    rest_total = onp.exp(rest, out=rest).sum(axis=0, keepdims=True)            # sum exp(rest - second)
    shift = onp.where(is_top, second, top)
    others = onp.subtract(total, scaled, out=scaled)                          # sum_{j != s} exp(log_w_j - shift):
    onp.copyto(others, rest_total, where=is_top)                               # total - scaled, or rest_total at the top
    loo_mean -= shift
    others += onp.exp(loo_mean, out=loo_mean)
    loo_bound = onp.log(others, out=others)
    loo_bound += shift
    loo_bound -= log_s                                                         # log(others + exp(loo_mean - shift)) + shift - log S
    signals = onp.subtract(bound, loo_bound, out=loo_bound)
    return onp.moveaxis(bound, 0, 1), onp.ascontiguousarray(onp.moveaxis(signals, 0, 1))


def _finite(top):
    # 0 where the maximum is not finite (all -inf: every exp() is then 0, not NaN)
    return onp.where(onp.isfinite(top), top, 0.0)


class VIMCO(Estimator):
    """VIMCO (Mnih & Rezende, 2016): gradient of the IWAE bound with k = n_samples. Unbiased.

    The ELBO-level call estimates the gradient of the importance-weighted bound
    sum_n E[log (1/k) sum_s p(x_n, z_s) / q(z_s|x_n)] with k = n_samples, NOT of the ELBO
    (the two coincide only for k = 1, which VIMCO does not allow). Needs n_samples >= 2.

    Notes
    -----
    With log weights w_s = log p(x, z_s) - log q(z_s|x), the bound L = log (1/S) sum_s exp(w_s),
    normalized weights w~_s = exp(w_s) / sum_j exp(w_j), and the leave-one-out bound
    L_{-s} = log (1/S) [sum_{j != s} exp(w_j) + exp(mean_{j != s} w_j)]:

    g_psi = sum_s (L - L_{-s} - w~_s) d/dpsi log q(z_s),
    g_theta = sum_s w~_s d/dtheta log p(x, z_s).

    The -w~_s term is the explicit dependence of w_s on psi through -log q. Written as the
    surrogate with the signals held constant. Unbiased for the IWAE gradient.

    Generic level: ``grad(f, logits, S, rng)`` estimates d/dlogits E[log (1/S) sum_s exp f(z_s)]
    (f independent of the logits), as sum_s (L - L_{-s}) d/dlogits log q(z_s).

    Cost: 1 decoder evaluation per sample; one estimate uses all k = n_samples of them.

    References
    ----------
    Mnih & Rezende (2016), "Variational inference for Monte Carlo objectives", ICML.
    """

    name = "vimco"
    min_samples = 2
    objective = "iwae"
    reference = "Mnih & Rezende (2016), Variational inference for Monte Carlo objectives, ICML"

    def _min_samples_message(self, n_samples):
        return (f"n_samples: estimator 'vimco' needs n_samples >= 2 (k >= 2 samples for its "
                f"leave-one-out signals), got {n_samples}")

    def _grad(self, f, logits, n_samples, rng, n_reps):
        z = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        _, signals = vimco_signals(onp.asarray(getval(f(z))))
        return score_grad(n_samples * signals, z, logits)

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """VIMCO estimate of the gradient of the IWAE bound with k = n_samples.

        Same parameters and returns as :meth:`vi_lab.estimators.base.Estimator.__call__`,
        except that the target is sum_n IWAE_k(x_n), not sum_n ELBO_n.
        """
        params_grad = check_bool(params_grad, "params_grad")
        x, q_logits, n_samples, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        rng = check_rng(rng)
        z = bernoulli_from_uniform(q_logits, uniform_open(rng, (reps, n_samples) + q_logits.shape))
        # per coordinate, so a row mixing psi ~ 1e12 and psi ~ 1 does not cancel
        log_q = onp.sum(z * log_sigmoid(q_logits) + (1.0 - z) * log_sigmoid(-q_logits), axis=-1)
        log_w = onp.asarray(model.log_joint(params, x, z)) - log_q                # (R, S, N)
        _, signals = vimco_signals(log_w)
        weights = onp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
        g_logits = score_grad(n_samples * (signals - weights), z, q_logits)
        g_params = None
        if params_grad:
            g_params = weighted_log_density_grads(model, params, x, z, weights)    # one pass for all R
        return self._finish(g_params, g_logits, n_reps)
