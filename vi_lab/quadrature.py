"""Ground truth for Gaussian latents (K <= 2) by Gauss-Hermite quadrature.

The Bernoulli model has enumeration; the Gaussian model :class:`vi_lab.GaussianLVM` has
integrals over R^K instead. For K <= 2 a tensor-product Gauss-Hermite rule computes them to
about 1e-6 for smooth decoders (the measured table below says when it does not), which makes it
the reference the Gaussian estimators (``reparam``, ``gaussian_score_function``) are measured
against, as enumeration is for the Bernoulli ones. These functions are re-exported by
:mod:`vi_lab.exact`.

Cost: n**K decoder evaluations per datapoint. Measured single-threaded for N = 100, L = 64,
hidden=(64,), K = 2, default nodes: log p(x) 0.06 s, ELBO 0.7 s, ELBO gradient 9 s (autograd's
elementwise backward pass over N x 4096 x L arrays dominates).

Rule
----
With the n-point Gauss-Hermite nodes t_i and weights w_i (for the weight function e^{-t^2}),
E_{N(mu, sigma^2)}[g(z)] ~= sum_i (w_i / sqrt(pi)) g(mu + sqrt(2) sigma t_i), exact when g is a
polynomial of degree < 2n; in K dimensions the rule is the tensor product (n**K nodes, weights
multiplied). Weights are handled as logarithms because for large n they underflow (the
smallest of 300 nodes is 1.6e-248, and a product of two such weights is below float64's range).

Measured accuracy (default ``n_nodes``: 100 for K = 1, 64 for K = 2)
--------------------------------------------------------------------
Largest error against a finer rule (300 nodes for K = 1, 160 x 160 for K = 2), over 3 random
GaussianLVM(K, L = 8, hidden=(16,)) models per row, 20 datapoints sampled from each, q means
uniform in [-2, 2] and sigma uniform in [0.1, sigma_max]. "ELBO" and "log p(x)" are absolute
errors in nats, "grad" is the largest gradient error (every entry of g_params and g_q) relative
to the largest gradient entry.

==========  =====  =========  ==========  ==========  ==========  ==========  ==========  ==========
decoder     scale  sigma_max  K=1 ELBO    K=1 grad    K=1 log p   K=2 ELBO    K=2 grad    K=2 log p
==========  =====  =========  ==========  ==========  ==========  ==========  ==========  ==========
tanh        1      1          4e-7        4e-6        9e-6        5e-7        2e-6        2e-6
tanh        1      2          5e-4        5e-4        9e-6        7e-5        7e-4        2e-6
tanh        2      1          3e-4        1e-3        1e-2        8e-4        5e-4        3e-3
tanh        2      2          2e-2        1e-2        1e-2        6e-3        2e-2        3e-3
relu        1      1          2e-3        2e-2        9e-3        2e-3        7e-3        2e-3
relu        2      2          3e-2        3e-2        4e-2        1e-2        1e-2        3e-2
==========  =====  =========  ==========  ==========  ==========  ==========  ==========  ==========

("scale" is the ``init_params`` weight scale.) So the rule is a reference to about 1e-6 for
smooth decoders whose length scale is comparable to q's width, the setting of the tests. It is
NOT when q is wide compared to the decoder's length scale (the integrand's complex poles, from
tanh, come close to the real axis and Gauss-Hermite converges only like exp(-c sqrt(n))) and
with ReLU decoders (kinks: algebraic convergence). log p(x) integrates p(x|z) under the *prior*,
so it degrades as the posterior narrows (larger L, sharper decoder). Check a new setting by
comparing ``n_nodes`` with a larger value (at most :data:`MAX_NODES`).

Why only K <= 2
---------------
A tensor rule needs n**K decoder evaluations per datapoint: 64**3 = 262,144 at K = 3 and
16.8 million at K = 4, and fewer nodes per axis loses the accuracy that makes this a reference.
Sparse grids or Monte Carlo would be the next step; neither is "exact", so they are not here.
"""
import numbers

import autograd
import autograd.numpy as np
import numpy as onp
from ._special import logsumexp
from numpy.polynomial.hermite import hermgauss

from ._tree import tree_add
from ._validation import check_binary, check_finite_tree, check_positive_int
from .gaussian import check_q_params, kl_to_prior
from .nn import softplus

__all__ = ["MAX_QUADRATURE_LATENT", "DEFAULT_NODES", "MAX_NODES", "hermite_grid",
           "gaussian_log_marginal", "gaussian_log_marginal_grad", "gaussian_elbo", "gaussian_elbo_grad"]

#: Largest K the tensor-product rule accepts.
MAX_QUADRATURE_LATENT = 2
#: Default nodes per axis, by K.
DEFAULT_NODES = {1: 100, 2: 64}
#: Largest nodes per axis (beyond about 300 the smallest weights underflow).
MAX_NODES = 300
#: Largest number of (datapoint, node) pairs processed at once.
_BLOCK_PAIRS = 2 ** 16


def hermite_grid(n_latent, n_nodes):
    """Tensor-product Gauss-Hermite rule for expectations under N(0, I_K).

    Parameters
    ----------
    n_latent : int
        K, 1 or 2.
    n_nodes : int
        n, nodes per axis, 1 <= n <= :data:`MAX_NODES`.

    Returns
    -------
    t : ndarray of shape (n**K, K)
        Standardized nodes: E_{N(mu, diag sigma^2)}[g] ~= sum_m exp(log_w_m) g(mu + sigma * t_m).
        (These are sqrt(2) times the physicists' Hermite nodes.)
    log_w : ndarray of shape (n**K,)
        Log weights; exp(log_w) sums to 1.
    """
    n_latent = _check_latent(n_latent)
    n_nodes = _check_nodes(n_nodes)
    nodes, weights = hermgauss(n_nodes)
    log_w1 = onp.log(weights) - 0.5 * onp.log(onp.pi)
    t1 = onp.sqrt(2.0) * nodes
    grids = onp.meshgrid(*([t1] * n_latent), indexing="ij")
    log_grids = onp.meshgrid(*([log_w1] * n_latent), indexing="ij")
    t = onp.stack([g.ravel() for g in grids], axis=-1)
    log_w = onp.sum([g.ravel() for g in log_grids], axis=0)
    return t, log_w


def _check_latent(n_latent):
    n_latent = check_positive_int(n_latent, "n_latent")
    if n_latent > MAX_QUADRATURE_LATENT:
        raise ValueError(
            f"n_latent: Gauss-Hermite quadrature supports K <= {MAX_QUADRATURE_LATENT}, got K = {n_latent}: a "
            f"tensor rule needs n**K decoder evaluations per datapoint ({DEFAULT_NODES[2]}**{n_latent} = "
            f"{DEFAULT_NODES[2] ** n_latent:,} at the default n) and fewer nodes per axis lose the accuracy "
            f"that makes it a reference; use a Monte Carlo estimate (e.g. many reparam samples) for K > 2"
        )
    return n_latent


def _check_nodes(n_nodes):
    n_nodes = check_positive_int(n_nodes, "n_nodes")
    if n_nodes > MAX_NODES:
        raise ValueError(f"n_nodes: expected at most {MAX_NODES} nodes per axis (the Gauss-Hermite weights "
                         f"underflow beyond that), got {n_nodes}")
    return n_nodes


def _check(model, params, x, q_params, n_nodes):
    if getattr(model, "latent", None) != "gaussian":
        raise ValueError(f"model: Gauss-Hermite quadrature needs a model with Gaussian latents "
                         f"(vi_lab.GaussianLVM), got {type(model).__name__}; for Bernoulli latents use "
                         f"the enumeration functions of vi_lab.exact")
    n_latent = _check_latent(model.n_latent)
    if n_nodes is None:
        n_nodes = DEFAULT_NODES[n_latent]
    elif isinstance(n_nodes, numbers.Integral) and not isinstance(n_nodes, bool):
        n_nodes = _check_nodes(n_nodes)
    else:
        raise ValueError(f"n_nodes: expected None or an integer in [1, {MAX_NODES}], got {n_nodes!r}")
    x = check_binary(x, model.n_obs, "x")
    check_finite_tree(params)
    if q_params is not None:
        check_q_params(q_params, (x.shape[0], n_latent))
    return x, n_nodes


def _row_blocks(n_rows, n_points):
    step = max(1, _BLOCK_PAIRS // n_points)
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _loglik_grid(model, params, x, z):
    """log p(x_n | z_nm) for z of shape (N, M, K) or (M, K) -> (N, M)."""
    a = model.decoder_logits(params, z)                             # (N, M, L) or (M, L)
    if np.ndim(a) == 2:
        # shared nodes: one matmul instead of an (N, M, L) array
        return np.dot(x, a.T) - np.sum(softplus(a), axis=-1)
    return np.einsum("nl,nml->nm", x, a) - np.sum(softplus(a), axis=-1)


def _expected_loglik(model, params, q_params, x, t, weights):
    """sum_m w_m log p(x_n | mu_n + sigma_n t_m) -> (N,), differentiable in params and q_params."""
    z = q_params["mean"][:, None, :] + np.exp(q_params["log_std"])[:, None, :] * t     # (N, M, K)
    return np.dot(_loglik_grid(model, params, x, z), weights)


def gaussian_log_marginal(model, params, x, n_nodes=None):
    """log p(x) of a GaussianLVM with K <= 2 by Gauss-Hermite quadrature under the prior.

    Parameters
    ----------
    model : GaussianLVM
        K = model.n_latent must be 1 or 2.
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    n_nodes : int, optional
        Nodes per axis; default :data:`DEFAULT_NODES` [K] (100 for K = 1, 64 for K = 2).
        See the module docstring for the measured error.

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    p(x) = E_{N(0, I)}[p(x|z)] ~= sum_m w_m p(x | t_m), computed as
    logsumexp_m [log w_m + log p(x | t_m)] with the maximum subtracted, so nothing underflows.
    """
    x, n_nodes = _check(model, params, x, None, n_nodes)
    t, log_w = hermite_grid(model.n_latent, n_nodes)
    out = [onp.asarray(logsumexp(_loglik_grid(model, params, x[rows], t) + log_w, axis=1))
           for rows in _row_blocks(x.shape[0], t.shape[0])]
    return onp.concatenate(out)


def _sum_log_marginal_block(params, model, x, t, log_w):
    return np.sum(logsumexp(_loglik_grid(model, params, x, t) + log_w, axis=1))


_grad_log_marginal_block = autograd.grad(_sum_log_marginal_block)


def gaussian_log_marginal_grad(model, params, x, n_nodes=None):
    """Gradient of sum_n log p(x_n) with respect to the model parameters, by quadrature (K <= 2).

    Parameters
    ----------
    model : GaussianLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    n_nodes : int, optional
        Nodes per axis; default :data:`DEFAULT_NODES` [K].

    Returns
    -------
    dict
        Same structure and shapes as ``params``.

    Notes
    -----
    The gradient of the quadrature sum log sum_m w_m p(x | t_m) (nodes under the prior), by
    autograd: E_{p(z|x)}[d log p(x|z)/d theta] with the posterior replaced by the normalized
    weights on the nodes (Fisher's identity under the same rule), so it carries the error of
    :func:`gaussian_log_marginal`. The Gaussian counterpart of
    :func:`vi_lab.exact.log_marginal_grad` (the ``exact_ml`` method's gradient).
    """
    x, n_nodes = _check(model, params, x, None, n_nodes)
    t, log_w = hermite_grid(model.n_latent, n_nodes)
    g = None
    for rows in _row_blocks(x.shape[0], t.shape[0]):
        with onp.errstate(over="ignore"):
            gb = _grad_log_marginal_block(params, model, x[rows], t, log_w)
        g = gb if g is None else tree_add(g, gb)
    return g


def gaussian_elbo(model, params, q_params, x, n_nodes=None):
    """ELBO of a diagonal Gaussian q(z|x) for a GaussianLVM with K <= 2, by quadrature under q.

    Parameters
    ----------
    model : GaussianLVM
    params : dict
    q_params : dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``.
    x : ndarray of shape (N, L), values in {0., 1.}
    n_nodes : int, optional
        Nodes per axis; default :data:`DEFAULT_NODES` [K].

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)). The expectation uses nodes placed on q,
    z_m = mu + sqrt(2) sigma t_m, so it stays accurate however narrow q is; the KL is closed form.
    """
    x, n_nodes = _check(model, params, x, q_params, n_nodes)
    t, log_w = hermite_grid(model.n_latent, n_nodes)
    weights = onp.exp(log_w)
    mean = onp.asarray(q_params["mean"], dtype=float)
    log_std = onp.asarray(q_params["log_std"], dtype=float)
    expected = onp.concatenate([
        onp.asarray(_expected_loglik(model, params, {"mean": mean[r], "log_std": log_std[r]}, x[r], t, weights))
        for r in _row_blocks(x.shape[0], t.shape[0])])
    return expected - onp.asarray(kl_to_prior({"mean": mean, "log_std": log_std}))


def _sum_elbo_block(params, q_params, model, x, t, weights):
    return np.sum(_expected_loglik(model, params, q_params, x, t, weights)) - np.sum(kl_to_prior(q_params))


_grad_elbo_block = autograd.grad(_sum_elbo_block, argnum=(0, 1))


def gaussian_elbo_grad(model, params, q_params, x, n_nodes=None):
    """Gradient of sum_n ELBO_n with respect to the model parameters and q's mean and log_std.

    The Gaussian counterpart of :func:`vi_lab.exact.elbo_grad`, and the reference the Gaussian
    estimators are tested against.

    Parameters
    ----------
    model : GaussianLVM
        K = model.n_latent must be 1 or 2.
    params : dict
    q_params : dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``.
    x : ndarray of shape (N, L), values in {0., 1.}
    n_nodes : int, optional
        Nodes per axis; default :data:`DEFAULT_NODES` [K].

    Returns
    -------
    g_params : dict
        Same structure and shapes as ``params``.
    g_q : dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``.

    Notes
    -----
    The quadrature sum sum_m w_m log p(x | mu + sigma t_m) - KL is a smooth function of
    (theta, mu, log sigma), differentiated exactly by autograd: this is the quadrature rule applied
    to the pathwise gradient d/d(theta, mu, log sigma) log p(x | mu + sigma t), so it carries the
    same (measured) error as the ELBO itself.
    """
    x, n_nodes = _check(model, params, x, q_params, n_nodes)
    t, log_w = hermite_grid(model.n_latent, n_nodes)
    weights = onp.exp(log_w)
    mean = onp.asarray(q_params["mean"], dtype=float)
    log_std = onp.asarray(q_params["log_std"], dtype=float)
    g_params = None
    g_mean, g_log_std = onp.zeros_like(mean), onp.zeros_like(log_std)
    for r in _row_blocks(x.shape[0], t.shape[0]):
        # autograd's tanh derivative is g / cosh(h)**2, which overflows to inf (giving the correct 0)
        # for |h| > 355; far quadrature nodes reach such pre-activations, so that overflow is expected
        with onp.errstate(over="ignore"):
            gp, gq = _grad_elbo_block(params, {"mean": mean[r], "log_std": log_std[r]}, model, x[r], t, weights)
        g_params = gp if g_params is None else tree_add(g_params, gp)
        g_mean[r] = gq["mean"]
        g_log_std[r] = gq["log_std"]
    return g_params, {"mean": g_mean, "log_std": g_log_std}
