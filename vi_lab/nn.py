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

__all__ = ["init_mlp", "mlp", "mlp_forward", "mlp_backward", "softplus", "softplus_row_sums",
           "log_sigmoid", "sigmoid", "ACTIVATIONS"]


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


def softplus_row_sums(a, out=None):
    """sum_l softplus(a_l) over the last axis of a plain ndarray, with one scratch buffer.

    Parameters
    ----------
    a : ndarray of shape (M, L)
    out : ndarray of shape (M, L), optional
        Scratch space to reuse (overwritten); a fresh buffer is allocated without it.

    Returns
    -------
    ndarray of shape (M,)
    """
    scratch = onp.abs(a, out=out)
    onp.negative(scratch, out=scratch)
    onp.exp(scratch, out=scratch)
    onp.log1p(scratch, out=scratch)
    scratch += onp.maximum(a, 0.0)
    return scratch.sum(axis=-1)


# ---------------------------------------------------------------------------- hand-written backward
#
# Exact enumeration differentiates sum_m <G_m, a(z_m)> over up to 2**24 states, where G (M, L) is
# a fixed upstream gradient. autograd's tape costs several times the forward pass there; the
# backward of an MLP is three lines per layer, so it is written out (and tested against autograd
# and finite differences for every activation in tests/test_nn.py).

def _act_grad(activation, pre, post):
    """d act(pre) / d pre, elementwise, from the stored pre- and post-activations."""
    if activation == "tanh":
        return 1.0 - post * post
    if activation == "relu":
        # autograd's maximum() splits the gradient evenly at a tie, so pre == 0 gets 1/2 there too
        return (pre > 0.0) + 0.5 * (pre == 0.0)
    if activation == "softplus":
        return sigmoid(pre)
    raise ValueError(f"activation: unknown name {activation!r}; expected one of {sorted(ACTIVATIONS)}")


def mlp_forward(params, inputs, activation="tanh"):
    """:func:`mlp` on plain arrays, also returning what :func:`mlp_backward` needs.

    Parameters
    ----------
    params : dict
        As made by :func:`init_mlp`, plain ndarrays.
    inputs : ndarray of shape (M, d_in)
    activation : {"tanh", "relu", "softplus"}

    Returns
    -------
    out : ndarray of shape (M, d_out)
        Bit for bit the same as ``mlp(params, inputs, activation)``.
    cache : list
        The input and the (pre-activation, post-activation) pair of every hidden layer.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    n_layers = len(params) // 2
    h = onp.asarray(inputs, dtype=float)
    cache = [h]
    for i in range(n_layers):
        pre = h @ params[f"W{i}"]
        pre += params[f"b{i}"]
        if i == n_layers - 1:
            return pre, cache
        h = onp.asarray(ACTIVATIONS[activation](pre))
        cache.append((pre, h))


def mlp_backward(params, cache, grad_out, activation="tanh"):
    """Vector-Jacobian product of :func:`mlp_forward` with respect to the weights.

    Parameters
    ----------
    params : dict
        The parameters the forward pass used.
    cache : list
        Second output of :func:`mlp_forward`.
    grad_out : ndarray of shape (M, d_out)
        Upstream gradient G = d objective / d out.
    activation : {"tanh", "relu", "softplus"}

    Returns
    -------
    dict
        Same keys and shapes as ``params``: d objective / d W_i and d objective / d b_i.

    Notes
    -----
    With h_{i+1} = act(u_i), u_i = h_i W_i + b_i and g_i = d objective / d u_i:
    dW_i = h_i^T g_i, db_i = sum_m g_i, g_{i-1} = (g_i W_i^T) * act'(u_{i-1}).
    """
    n_layers = len(params) // 2
    grads = {}
    g = onp.asarray(grad_out, dtype=float)
    for i in range(n_layers - 1, -1, -1):
        h_in = cache[0] if i == 0 else cache[i][1]
        grads[f"W{i}"] = h_in.T @ g
        grads[f"b{i}"] = g.sum(axis=0)
        if i > 0:
            pre, post = cache[i]
            g = g @ params[f"W{i}"].T
            g *= _act_grad(activation, pre, post)
    return {key: grads[key] for key in params}
