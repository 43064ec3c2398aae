"""Exact inference by enumerating all 2**K latent states.

For K up to about 20, summing over every z in {0,1}^K is cheap enough to give the
exact log-marginal, posterior, ELBO and their gradients: the ground truth every
approximation and estimator in vi_lab is measured against.

Memory stays bounded: the states are generated and processed in chunks, so no
array larger than about ``_BLOCK_ELEMENTS`` entries is formed (except by
:func:`posterior`, which returns the full (N, 2**K) table by design).

State order
-----------
Row m of :func:`all_states` is the binary expansion of m with z_1 the most
significant bit, the order of ``itertools.product([0, 1], repeat=K)``: the last
latent changes fastest.
"""
import autograd
import autograd.numpy as np
import numpy as onp

from ._tree import tree_add, tree_zeros_like
from ._validation import check_binary, check_logits, check_finite_tree, check_positive_int
from .nn import softplus
from .variational import kl_to_prior

__all__ = ["MAX_LATENT", "all_states", "log_marginal", "posterior", "posterior_marginals",
           "elbo", "kl_to_posterior", "elbo_grad", "log_marginal_grad", "check_enumerable"]

#: Largest K that enumeration accepts: 2**24 = 16.8 million states.
MAX_LATENT = 24
#: Largest number of entries in one (rows, states) block.
_BLOCK_ELEMENTS = 2 ** 22
#: Largest posterior table :func:`posterior` will materialize (entries).
_MAX_TABLE = 2 ** 27
#: Rough throughput used to estimate run time in error messages (flop/s).
_FLOPS_ESTIMATE = 2e9


def check_enumerable(n_latent, n_data=1, n_obs=1):
    """Raise a ValueError explaining the cost if 2**n_latent states are too many.

    Parameters
    ----------
    n_latent : int
        K.
    n_data, n_obs : int
        N and L, used only to estimate the cost in the message.
    """
    n_latent = check_positive_int(n_latent, "n_latent")
    if n_latent > MAX_LATENT:
        n_states = 2 ** n_latent
        table_gb = n_data * n_states * 8 / 1e9
        seconds = 2.0 * n_data * n_obs * n_states / _FLOPS_ESTIMATE
        raise ValueError(
            f"n_latent: K = {n_latent} means enumerating 2**{n_latent} = {n_states:,} latent states; "
            f"for N = {n_data}, L = {n_obs} that is a {table_gb:,.1f} GB posterior table and roughly "
            f"{seconds:,.0f} s of likelihood evaluations; exact inference supports K <= {MAX_LATENT}"
        )
    return n_latent


def all_states(n_latent):
    """Every binary latent configuration.

    Parameters
    ----------
    n_latent : int
        K, at most :data:`MAX_LATENT`.

    Returns
    -------
    ndarray of shape (2**K, K), values in {0., 1.}
        Row m is the binary expansion of m, z_1 the most significant bit
        (the order of ``itertools.product([0, 1], repeat=K)``).
    """
    n_latent = check_enumerable(n_latent)
    return _states_range(n_latent, 0, 2 ** n_latent)


def _states_range(n_latent, start, stop):
    m = onp.arange(start, stop, dtype=onp.int64)
    shifts = onp.arange(n_latent - 1, -1, -1, dtype=onp.int64)
    return ((m[:, None] >> shifts) & 1).astype(onp.float64)


def _state_chunks(model, n_rows):
    """Yield (start, states) chunks sized so a (n_rows, chunk) block stays bounded."""
    n_states = 2 ** model.n_latent
    width = max((model.n_obs,) + tuple(getattr(model, "hidden", ())))
    chunk = max(1, _BLOCK_ELEMENTS // max(n_rows, width))
    chunk = min(n_states, 1 << (chunk.bit_length() - 1))
    for start in range(0, n_states, chunk):
        yield start, _states_range(model.n_latent, start, min(start + chunk, n_states))


def _row_blocks(n_rows):
    """Datapoint blocks, so huge N does not defeat the state chunking."""
    step = max(1, _BLOCK_ELEMENTS // 256)
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _check(model, params, x, q_logits=None):
    check_enumerable(model.n_latent, n_obs=model.n_obs)
    x = check_binary(x, model.n_obs, "x")
    check_finite_tree(params)
    if q_logits is not None:
        check_logits(q_logits, (x.shape[0], model.n_latent), "q_logits")
        if not onp.isfinite(onp.asarray(autograd.tracer.getval(q_logits))).all():
            raise ValueError("q_logits: contains +-inf; expected finite logits (use e.g. +-1e4 for a near-deterministic q)")
    return x


def _log_joint_block(model, params, x, states):
    """log p(x_n, z_m) for a block: x (N, L), states (M, K) -> (N, M).

    Uses log p(x|z) = x . a(z) - sum_l softplus(a_l(z)), so the N x M x L work is one matmul.
    """
    a = model.decoder_logits(params, states)                       # (M, L)
    per_state = model.log_prior(params, states) - np.sum(softplus(a), axis=-1)   # (M,)
    return np.dot(x, a.T) + per_state


def _logsumexp_update(run_max, run_sum, block):
    """Fold a (N, M) block into a running logsumexp over axis 1, max subtracted."""
    new_max = onp.maximum(run_max, block.max(axis=1))
    block -= new_max[:, None]
    onp.exp(block, out=block)
    run_sum = run_sum * onp.exp(run_max - new_max) + block.sum(axis=1)
    return new_max, run_sum


def _log_marginal_rows(model, params, x):
    n = x.shape[0]
    run_max = onp.full(n, -onp.inf)
    run_sum = onp.zeros(n)
    for _, states in _state_chunks(model, n):
        block = onp.asarray(_log_joint_block(model, params, x, states))
        run_max, run_sum = _logsumexp_update(run_max, run_sum, block)
    return run_max + onp.log(run_sum)


def log_marginal(model, params, x):
    """Exact log p(x) by summing over all 2**K latent states.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
        A 1-D x of shape (L,) is taken as one datapoint.

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    log p(x) = logsumexp_z [log p(z) + log p(x|z)], computed in state chunks with a running
    maximum, so nothing overflows and memory stays bounded. Cost: N x L x 2**K
    multiply-adds plus one decoder pass over the 2**K states.
    """
    x = _check(model, params, x)
    return onp.concatenate([_log_marginal_rows(model, params, x[rows]) for rows in _row_blocks(x.shape[0])])


def posterior(model, params, x):
    """Exact posterior p(z|x) over all 2**K states.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    ndarray of shape (N, 2**K)
        Row n sums to 1; column m is the state ``all_states(K)[m]``.

    Notes
    -----
    p(z|x) = exp(log p(x, z) - log p(x)). The table has N x 2**K entries; a table of more
    than 2**27 entries (1 GiB) is refused: use :func:`posterior_marginals` or a smaller batch.
    """
    x = _check(model, params, x)
    n_states = 2 ** model.n_latent
    if x.shape[0] * n_states > _MAX_TABLE:
        raise ValueError(
            f"x: a posterior table for N = {x.shape[0]} datapoints and 2**{model.n_latent} states has "
            f"{x.shape[0] * n_states:,} entries (more than {_MAX_TABLE:,}); pass fewer rows or use posterior_marginals"
        )
    log_px = log_marginal(model, params, x)
    out = onp.empty((x.shape[0], n_states))
    for start, states in _state_chunks(model, x.shape[0]):
        block = onp.asarray(_log_joint_block(model, params, x, states))
        out[:, start:start + states.shape[0]] = onp.exp(block - log_px[:, None])
    return out


def posterior_marginals(model, params, x):
    """Exact posterior marginals p(z_k = 1 | x).

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    ndarray of shape (N, K), values in [0, 1]

    Notes
    -----
    p(z_k = 1 | x) = sum_z p(z|x) z_k, accumulated chunk by chunk (no full table).
    """
    x = _check(model, params, x)
    log_px = log_marginal(model, params, x)
    out = onp.zeros((x.shape[0], model.n_latent))
    for _, states in _state_chunks(model, x.shape[0]):
        block = onp.asarray(_log_joint_block(model, params, x, states))
        out += onp.exp(block - log_px[:, None]) @ states
    return out


def _expected_loglik_block(model, params, q_logits, x, states):
    """sum_n sum_m q(z_m|x_n) log p(x_n|z_m) over one state chunk (autograd-traceable)."""
    a = model.decoder_logits(params, states)
    loglik = np.dot(x, a.T) - np.sum(softplus(a), axis=-1)       # (N, M)
    # log q(z_m|x_n) = psi_n . z_m - sum_k softplus(psi_nk): a matmul, not an (N, M, K) array
    log_q = np.dot(q_logits, states.T) - np.sum(softplus(q_logits), axis=-1)[:, None]
    return np.sum(np.exp(log_q) * loglik, axis=1)


def _elbo_rows(model, params, q_logits, x):
    expected = onp.zeros(x.shape[0])
    for _, states in _state_chunks(model, x.shape[0]):
        expected += onp.asarray(_expected_loglik_block(model, params, q_logits, x, states))
    return expected - onp.asarray(kl_to_prior(q_logits, params["prior_logits"]))


def elbo(model, params, q_logits, x):
    """Exact ELBO of a mean-field Bernoulli q(z|x) = prod_k Bernoulli(sigmoid(q_logits_k)).

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
        Logits psi of q for each datapoint.
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = E_q[log p(x, z) - log q(z|x)]
    <= log p(x). The expectation is an exact sum over the 2**K states weighted by q, the KL
    to the prior is in closed form.
    """
    x = _check(model, params, x, q_logits)
    q_logits = onp.asarray(q_logits, dtype=float)
    return onp.concatenate([_elbo_rows(model, params, q_logits[r], x[r]) for r in _row_blocks(x.shape[0])])


def kl_to_posterior(model, params, q_logits, x):
    """Exact KL(q(z|x) || p(z|x)), the gap between log p(x) and the ELBO.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    ndarray of shape (N,), non-negative up to round-off (about 1e-12)

    Notes
    -----
    KL(q || p(z|x)) = log p(x) - ELBO(q, x).
    """
    x = _check(model, params, x, q_logits)
    return log_marginal(model, params, x) - elbo(model, params, q_logits, x)


def _sum_expected_loglik(params, q_logits, model, x, states):
    return np.sum(_expected_loglik_block(model, params, q_logits, x, states))


def _neg_kl_prior_sum(params, q_logits):
    return -np.sum(kl_to_prior(q_logits, params["prior_logits"]))


_grad_expected = autograd.grad(_sum_expected_loglik, argnum=(0, 1))
_grad_kl = autograd.grad(_neg_kl_prior_sum, argnum=(0, 1))


def elbo_grad(model, params, q_logits, x):
    """Exact gradient of sum_n ELBO_n with respect to the model parameters and q's logits.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    g_params : dict
        Same structure and shapes as ``params``.
    g_logits : ndarray of shape (N, K)

    Notes
    -----
    The ELBO is a finite sum over states, so its gradient is exact:
    d/d(theta, psi) sum_n [sum_z q(z|x_n) log p(x_n|z) - KL(q(z|x_n) || p(z))],
    accumulated chunk by chunk with autograd (memory bounded by the chunk size).
    """
    x = _check(model, params, x, q_logits)
    q_logits = onp.asarray(q_logits, dtype=float)
    g_params, g_logits = _grad_kl(params, q_logits)
    g_logits = onp.array(g_logits)
    for rows in _row_blocks(x.shape[0]):
        for _, states in _state_chunks(model, rows.stop - rows.start):
            gp, gl = _grad_expected(params, q_logits[rows], model, x[rows], states)
            g_params = tree_add(g_params, gp)
            g_logits[rows] += gl
    return g_params, g_logits


def _weighted_log_joint(params, model, x, states, weights):
    return np.sum(weights * _log_joint_block(model, params, x, states))


_grad_weighted = autograd.grad(_weighted_log_joint)


def log_marginal_grad(model, params, x):
    """Exact gradient of sum_n log p(x_n) with respect to the model parameters.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}

    Returns
    -------
    dict
        Same structure and shapes as ``params``.

    Notes
    -----
    Fisher's identity: d log p(x)/d theta = sum_z p(z|x) d log p(x, z)/d theta. The posterior
    weights are computed first and held constant; the gradient of the weighted log-joint is then
    accumulated over state chunks.
    """
    x = _check(model, params, x)
    grad = tree_zeros_like(params)
    for rows in _row_blocks(x.shape[0]):
        xr = x[rows]
        log_px = _log_marginal_rows(model, params, xr)
        for _, states in _state_chunks(model, xr.shape[0]):
            weights = onp.exp(onp.asarray(_log_joint_block(model, params, xr, states)) - log_px[:, None])
            grad = tree_add(grad, _grad_weighted(params, model, xr, states, weights))
    return grad
