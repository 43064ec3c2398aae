"""The array pieces every estimator shares: uniform and logistic draws, Bernoulli samples from
them, the score-function term, and sums over the sample axis of (R, S, ...) arrays.

All of them work on plain ndarrays with R replicates and S samples on the two leading axes, and
are written for numpy's loops (long inner loops, few temporaries) without changing a bit of what
the obvious expression gives; the tests compare them with it.
"""
import numpy as onp
from autograd.tracer import getval

from ..nn import sigmoid

__all__ = ["sample_sum", "sample_mean", "uniform_open", "logistic_noise", "bernoulli_from_uniform",
           "tile_reps", "score_grad"]


def sample_sum(values, keepdims=False):
    """``values.sum(axis=1)`` over the sample axis of an (R, S, ...) array, bit for bit, faster.

    Parameters
    ----------
    values : ndarray of shape (R, S, ...)
    keepdims : bool
        Keep the sample axis with length 1.

    Returns
    -------
    ndarray of shape (R, ...), or (R, 1, ...) if ``keepdims``

    Notes
    -----
    numpy reduces a middle axis as an outer loop over S with the trailing axes inside, each
    inner loop only prod(shape[2:]) long: for the (2000, 10, 5) signals of a 5-logit problem
    that costs 3.8x what ``einsum`` takes for the same sum (measured, numpy 2). Both add the S
    terms one after another in the order s = 0, 1, ..., so the results are identical. With one
    trailing element, or a non-contiguous array, numpy sums along the contiguous axis pairwise
    instead, and those cases keep numpy's own reduction.
    """
    values = onp.asarray(values)
    if (values.ndim > 2 and values.dtype == onp.float64 and values.flags.c_contiguous
            and values.size > values.shape[0] * values.shape[1]):
        out = onp.einsum("rs...->r...", values)
        return out[:, None] if keepdims else out
    return values.sum(axis=1, keepdims=keepdims)


def sample_mean(values, keepdims=False):
    """``values.mean(axis=1)`` over the sample axis of an (R, S, ...) array, bit for bit, faster.

    Parameters
    ----------
    values : ndarray of shape (R, S, ...)
    keepdims : bool
        Keep the sample axis with length 1.

    Returns
    -------
    ndarray of shape (R, ...), or (R, 1, ...) if ``keepdims``

    Notes
    -----
    (1/S) sum_s values[:, s]: the sum of :func:`sample_sum`, then divided by S, which is what
    numpy's mean does; arrays other than float64 take numpy's mean itself.
    """
    values = onp.asarray(values)
    if values.dtype != onp.float64:
        return values.mean(axis=1, keepdims=keepdims)
    out = sample_sum(values, keepdims)
    out /= values.shape[1]
    return out


def uniform_open(rng, shape):
    """Uniform draws in the open interval (0, 1), never exactly 0 or 1.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int

    Returns
    -------
    ndarray of the given shape, values in [2**-53, 1 - 2**-53]

    Notes
    -----
    ``Generator.random`` can return 0.0, and the estimators take log(u) and log(1 - u);
    (m + 1/2) / 2**52 for an integer m in [0, 2**52) is exactly representable and interior.
    It is built from m's bits: with the exponent of 1.0 OR-ed in they are the double 1 + m / 2**52,
    and (1 + m / 2**52) - 1 + 2**-53 is that same number exactly (a third of the time of
    converting the int64 m to float, which dominated the sampling of small estimators).
    """
    # the top 52 bits of each raw 64-bit draw: what rng.integers(0, 2**52) returns (Lemire's
    # method never rejects for a power of two), without its per-element bounds arithmetic
    bits = rng.bit_generator.random_raw(size=shape)
    bits >>= onp.uint64(12)
    bits |= onp.uint64(0x3FF0000000000000)
    u = bits.view(onp.float64)
    u -= 1.0
    u += 2.0 ** -53
    return u


def logistic_noise(u):
    """Logistic(0, 1) noise log u - log(1 - u) from uniforms u in (0, 1)."""
    noise = onp.log(u)
    log_rest = onp.negative(u)
    noise -= onp.log1p(log_rest, out=log_rest)      # two arrays, not four, for the same bits
    return noise


def bernoulli_from_uniform(logits, u):
    """z = 1[u < sigmoid(logits)], as float 0/1.

    Parameters
    ----------
    logits : ndarray of shape (*batch, K)
    u : ndarray of shape (..., *batch, K), values in (0, 1)

    Returns
    -------
    ndarray of the shape of ``u``, values in {0., 1.}
    """
    return (u < onp.asarray(sigmoid(logits))).astype(onp.float64)


def tile_reps(logits, n_reps):
    """R copies of ``logits`` stacked on a new leading axis, shape (R, *logits.shape).

    The gradient of a sum over replicates with respect to the tiled copy r is the r-th
    replicate's estimate, which is how one reverse pass returns R independent estimates.
    """
    return onp.array(onp.broadcast_to(logits, (n_reps,) + logits.shape))


def score_grad(signal, z, logits):
    """Score-function term (1/S) sum_s signal_s * d/dlogits log q(z_s), for R replicates.

    Parameters
    ----------
    signal : ndarray of shape (R, S, *batch)
        Learning signal, held constant (no gradient flows through it).
    z : ndarray of shape (R, S, *batch, K), values in {0., 1.}
    logits : ndarray of shape (*batch, K)

    Returns
    -------
    ndarray of shape (R, *batch, K)

    Notes
    -----
    The gradient of the surrogate (1/S) sum_s stop_grad(signal_s) log q(z_s; psi) with respect
    to a per-replicate copy of psi, in closed form: d log q(z)/d psi = z - sigmoid(psi), so the
    estimate is signal_s (z_s - sigmoid(psi)) averaged over s (one vectorized expression, no tape).
    """
    signal = onp.asarray(getval(signal), dtype=float)
    z = onp.asarray(getval(z), dtype=float)
    centered = z - onp.asarray(sigmoid(onp.asarray(getval(logits), dtype=float)))
    centered *= signal[..., None]
    return sample_mean(centered)
