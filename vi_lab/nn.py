"""Multi-layer perceptrons as plain functions of a parameter dict.

Used by the decoder of :class:`vi_lab.BernoulliLVM` and :class:`vi_lab.GaussianLVM`
and by the amortized encoder. Parameters are a dict ``{"W0": (d0, d1), "b0": (d1,),
"W1": ..., ...}`` so that autograd differentiates through them and they save to
``.npz`` under flat names.
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive
from autograd.scipy.special import expit

from ._validation import check_rng

__all__ = ["init_mlp", "mlp", "softplus", "softplus_row_sums", "log_sigmoid", "sigmoid", "ACTIVATIONS"]


def softplus(a):
    """Stable softplus, log(1 + exp(a)), for any real ``a`` (autograd-differentiable).

    Notes
    -----
    softplus(a) = max(a, 0) + log1p(exp(-|a|)); no overflow for a = +-1e4.
    """
    return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))


def log_sigmoid(a):
    """log sigmoid(a) = -softplus(-a), finite for every finite ``a``."""
    return -softplus(-a)


def sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)); scipy's expit keeps tiny values (a << 0) accurate."""
    return expit(a)


@primitive
def tanh(h):
    """tanh with derivative 1 - tanh(h)**2.

    autograd's own rule divides by cosh(h)**2, which overflows (with a RuntimeWarning) for
    |h| > 355 although the true derivative there is simply 0.
    """
    return onp.tanh(h)


defvjp(tanh, lambda ans, h: lambda g: g * (1.0 - ans ** 2))

ACTIVATIONS = {"tanh": tanh, "relu": lambda h: np.maximum(h, 0.0), "softplus": softplus}


def init_mlp(sizes, rng, scale=1.0):
    """Random MLP weights with 1/sqrt(fan_in) scaling.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first and output last, e.g. ``(K, 64, L)``.
    rng : int or numpy.random.Generator
    scale : float
        Multiplies every weight (biases start at zero).

    Returns
    -------
    dict
        ``{"W0": ndarray of shape (sizes[0], sizes[1]), "b0": ndarray of shape (sizes[1],), ...}``
    """
    rng = check_rng(rng)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"W{i}"] = scale * rng.standard_normal((n_in, n_out)) / onp.sqrt(n_in)
        params[f"b{i}"] = onp.zeros(n_out)
    return params


def mlp(params, inputs, activation="tanh"):
    """Apply an MLP built by :func:`init_mlp`; the last layer is linear.

    Parameters
    ----------
    params : dict
        ``{"W0", "b0", ..., "W{D-1}", "b{D-1}"}`` as made by :func:`init_mlp`.
    inputs : ndarray of shape (..., d_in)
    activation : {"tanh", "relu", "softplus"}

    Returns
    -------
    ndarray of shape (..., d_out)

    Notes
    -----
    h_0 = inputs, h_{i+1} = act(h_i W_i + b_i) for hidden layers, output h_D = h_{D-1} W_{D-1} + b_{D-1}.
    """
    n_layers = len(params) // 2
    if _is_plain(inputs) and all(_is_plain(v) for v in params.values()):
        return _mlp_untraced(params, onp.asarray(inputs, dtype=float), activation, n_layers)
    act = ACTIVATIONS[activation]
    # Work on a 2-D view: autograd's gradient of dot on >2-D arrays takes a much slower path.
    lead = np.shape(inputs)[:-1]
    h = np.reshape(inputs, (-1, np.shape(inputs)[-1]))
    for i in range(n_layers):
        h = np.dot(h, params[f"W{i}"]) + params[f"b{i}"]
        if i < n_layers - 1:
            h = act(h)
    return np.reshape(h, tuple(lead) + (np.shape(h)[-1],))


def _is_plain(value):
    return isinstance(value, (onp.ndarray, float, int))


_INPLACE = {
    "tanh": lambda h: onp.tanh(h, out=h),
    "relu": lambda h: onp.maximum(h, 0.0, out=h),
}


def _mlp_untraced(params, h, activation, n_layers):
    # Same arithmetic as the traced branch, but reusing buffers: enumeration pushes all
    # 2**K states through the decoder, and temporaries there cost as much as the matmuls.
    for i in range(n_layers):
        h = h @ params[f"W{i}"]
        h += params[f"b{i}"]
        if i < n_layers - 1:
            h = _INPLACE[activation](h) if activation in _INPLACE else ACTIVATIONS[activation](h)
    return h


def softplus_row_sums(a):
    """sum_l softplus(a_l) over the last axis of a plain ndarray, with one scratch buffer.

    Parameters
    ----------
    a : ndarray of shape (M, L)

    Returns
    -------
    ndarray of shape (M,)
    """
    scratch = onp.abs(a)
    onp.negative(scratch, out=scratch)
    onp.exp(scratch, out=scratch)
    onp.log1p(scratch, out=scratch)
    scratch += onp.maximum(a, 0.0)
    return scratch.sum(axis=-1)
