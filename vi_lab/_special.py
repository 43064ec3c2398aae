"""``expit`` and ``logsumexp`` from scipy.special, made differentiable by autograd.

autograd ships the same two as ``autograd.scipy.special``, but importing anything under
``autograd.scipy`` runs its package ``__init__``, which imports scipy.integrate, scipy.signal and
scipy.stats as well: about 0.7 s added to every process start (the CLI, each study or variance
worker, each notebook kernel) for two functions. Here only scipy.special is imported, and the two
vector-Jacobian products are written out.
"""
import autograd.numpy as np
import scipy.special
from autograd.extend import defvjp, primitive

__all__ = ["expit", "logsumexp"]

expit = primitive(scipy.special.expit)
# d sigmoid(a) / da = sigmoid(a) (1 - sigmoid(a)), from the answer: no second exp
defvjp(expit, lambda ans, a: lambda g: g * ans * (1.0 - ans))


@primitive
def logsumexp(a, axis=None, keepdims=False):
    """log sum_i exp(a_i) over ``axis``, with the maximum subtracted (scipy.special.logsumexp).

    Parameters
    ----------
    a : array_like
    axis : int or tuple of int or None
        Axes summed over (None: all).
    keepdims : bool
        Keep the summed axes with length 1.

    Notes
    -----
    The gradient is the softmax of ``a`` over ``axis``: d/da_i log sum_j exp(a_j) = exp(a_i - lse).
    """
    return scipy.special.logsumexp(a, axis=axis, keepdims=keepdims)


def _restore_axes(value, axis, keepdims):
    # the reduced answer (or its cotangent) with the summed axes back as length 1, to broadcast against a
    if axis is None or keepdims:
        return value
    return np.expand_dims(value, axis)


def _logsumexp_vjp(ans, a, axis=None, keepdims=False):
    weights = np.exp(a - _restore_axes(ans, axis, keepdims))
    return lambda g: _restore_axes(g, axis, keepdims) * weights


defvjp(logsumexp, _logsumexp_vjp)
