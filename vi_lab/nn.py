"""Multi-layer perceptrons as plain functions of a parameter dict.

Used by the decoder of :class:`vi_lab.BernoulliLVM` and :class:`vi_lab.GaussianLVM`
and by the amortized encoder. Parameters are a dict ``{"W0": (d0, d1), "b0": (d1,),
"W1": ..., ...}`` so that autograd differentiates through them and they save to
``.npz`` under flat names.
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive
from ._special import expit

from ._validation import check_rng

__all__ = ["init_mlp", "mlp", "mlp_forward", "mlp_backward", "Workspace", "softplus", "softplus_row_sums",
           "sigmoid_into", "log_sigmoid", "sigmoid", "ACTIVATIONS"]


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


def softplus_row_sums(a, out=None, scratch=None):
    """sum_l softplus(a_l) over the last axis of a plain ndarray, without temporaries.

    Parameters
    ----------
    a : ndarray of shape (M, L)
    out, scratch : ndarray of shape (M, L), optional
        Work space to reuse (overwritten); fresh buffers are allocated without them.

    Returns
    -------
    ndarray of shape (M,)
    """
    work = onp.abs(a, out=out)
    onp.negative(work, out=work)
    onp.exp(work, out=work)
    onp.log1p(work, out=work)
    work += onp.maximum(a, 0.0, out=scratch)
    return work.sum(axis=-1)


def sigmoid_into(a, out=None):
    """sigmoid(a) = 1 / (1 + exp(-a)) for a plain ndarray, written into ``out``.

    Three vectorized passes instead of scipy's scalar loop (several times faster on large
    arrays); relative error a few ulp, and exp(-a) overflowing to inf gives the right 0.
    """
    with onp.errstate(over="ignore"):
        out = onp.exp(onp.negative(a, out=out), out=out)
    out += 1.0
    return onp.reciprocal(out, out=out)


class Workspace:
    """Named scratch arrays that one thread reuses from call to call.

    A fresh array of a few MiB costs about as much in page faults as the arithmetic done on it,
    so the enumeration in :mod:`vi_lab.exact`, which runs the same shapes chunk after chunk,
    keeps its temporaries here. Not thread-safe: one workspace per thread.
    """

    def __init__(self):
        self._buffers = {}

    def array(self, name, shape):
        """A (reused, uninitialized) float64 array of ``shape`` registered under ``name``."""
        size = 1
        for n in shape:
            size *= int(n)
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = self._buffers[name] = onp.empty(size)
        return buf[:size].reshape(shape)


# ---------------------------------------------------------------------------- hand-written backward
#
# Exact enumeration differentiates sum_m <G_m, a(z_m)> over up to 2**24 states, where G (M, L) is
# a fixed upstream gradient. autograd's tape costs several times the forward pass there; the
# backward of an MLP is three lines per layer, so it is written out (and tested against autograd
# and finite differences for every activation in tests/test_nn.py).

def _activate_into(activation, pre, out, ws, i):
    if out is None:
        out = onp.empty(pre.shape)
    if activation == "tanh":
        return onp.tanh(pre, out=out)
    if activation == "relu":
        return onp.maximum(pre, 0.0, out=out)
    # softplus, in the same order of operations as softplus() so the bits agree with mlp()
    work = ws.array(f"_sp{i}", pre.shape) if ws is not None else None
    onp.maximum(pre, 0.0, out=out)
    work = onp.abs(pre, out=work)
    onp.negative(work, out=work)
    onp.exp(work, out=work)
    onp.log1p(work, out=work)
    return onp.add(out, work, out=out)


def _act_grad_into(activation, pre, post, out):
    """d act(pre) / d pre, elementwise, from the stored pre- and post-activations."""
    if out is None:
        out = onp.empty(pre.shape)
    if activation == "tanh":
        onp.multiply(post, post, out=out)
        return onp.subtract(1.0, out, out=out)
    if activation == "relu":
        onp.greater(pre, 0.0, out=out)
        ties = pre == 0.0
        if ties.any():
            # autograd's maximum() splits the gradient evenly at a tie, so pre == 0 gets 1/2 here too
            out[ties] = 0.5
        return out
    return sigmoid_into(pre, out=out)


def mlp_forward(params, inputs, activation="tanh", workspace=None, output=True):
    """:func:`mlp` on plain 2-D arrays, also returning what :func:`mlp_backward` needs.

    Parameters
    ----------
    params : dict
        As made by :func:`init_mlp`, plain ndarrays.
    inputs : ndarray of shape (M, d_in)
    activation : {"tanh", "relu", "softplus"}
    workspace : Workspace, optional
        Reuse its buffers for every intermediate (the outputs then live in it until the next
        call with the same workspace).
    output : bool
        False: stop after the last hidden layer (``out`` is None), for a backward pass whose
        output layer was computed, and kept, earlier.

    Returns
    -------
    out : ndarray of shape (M, d_out), or None
        Bit for bit the same as ``mlp(params, inputs, activation)``.
    cache : list
        The input and the (pre-activation, post-activation) pair of every hidden layer.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: unknown name {activation!r}; expected one of {sorted(ACTIVATIONS)}")
    n_layers = len(params) // 2
    ws = workspace
    h = onp.asarray(inputs, dtype=float)
    cache = [h]
    for i in range(n_layers):
        if i == n_layers - 1 and not output:
            return None, cache
        weight = params[f"W{i}"]
        shape = (h.shape[0], weight.shape[1])
        pre = onp.matmul(h, weight, out=ws.array(f"_pre{i}", shape) if ws is not None else None)
        pre += params[f"b{i}"]
        if i == n_layers - 1:
            return pre, cache
        h = _activate_into(activation, pre, ws.array(f"_post{i}", shape) if ws is not None else None, ws, i)
        cache.append((pre, h))


def mlp_backward(params, cache, grad_out, activation="tanh", workspace=None, n_groups=None):
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
    workspace : Workspace, optional
        Scratch space for the (M, width) intermediates.
    n_groups : int, optional
        G: the M rows are G consecutive groups of M / G rows (e.g. R replicates of S x N samples)
        and the gradient of each group's share of the objective is returned separately, all in
        one pass (batched matmuls), instead of summed.

    Returns
    -------
    dict
        Same keys and shapes as ``params`` (with a leading axis G if ``n_groups`` is given):
        d objective / d W_i and d objective / d b_i (fresh arrays).

    Notes
    -----
    With h_{i+1} = act(u_i), u_i = h_i W_i + b_i and g_i = d objective / d u_i:
    dW_i = h_i^T g_i, db_i = sum_m g_i, g_{i-1} = (g_i W_i^T) * act'(u_{i-1}).
    """
    n_layers = len(params) // 2
    ws = workspace
    grads = {}
    g = onp.asarray(grad_out, dtype=float)
    for i in range(n_layers - 1, -1, -1):
        h_in = cache[0] if i == 0 else cache[i][1]
        if n_groups is None:
            grads[f"W{i}"] = h_in.T @ g
            grads[f"b{i}"] = g.sum(axis=0)
        else:
            g_grouped = g.reshape(n_groups, -1, g.shape[-1])
            grads[f"W{i}"] = onp.matmul(h_in.reshape(n_groups, -1, h_in.shape[-1]).transpose(0, 2, 1), g_grouped)
            grads[f"b{i}"] = g_grouped.sum(axis=1)
        if i > 0:
            pre, post = cache[i]
            weight = params[f"W{i}"]
            shape = (g.shape[0], weight.shape[0])
            g = onp.matmul(g, weight.T, out=ws.array(f"_g{i}", shape) if ws is not None else None)
            g *= _act_grad_into(activation, pre, post, ws.array("_dact", shape) if ws is not None else None)
    return {key: grads[key] for key in params}
