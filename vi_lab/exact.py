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
from ._validation import check_binary, check_logits, check_finite_tree, check_model, check_positive_int
from .nn import sigmoid, softplus, softplus_row_sums
from .variational import kl_to_prior

__all__ = ["MAX_LATENT", "all_states", "log_marginal", "posterior", "posterior_marginals",
           "elbo", "kl_to_posterior", "elbo_grad", "log_marginal_grad", "check_enumerable",
           "gaussian_log_marginal", "gaussian_elbo", "gaussian_elbo_grad"]

#: Largest K that enumeration accepts: 2**24 = 16.8 million states.
MAX_LATENT = 24
#: Largest number of entries in one (rows, states) block.
_BLOCK_ELEMENTS = 2 ** 22
#: Largest posterior table :func:`posterior` will materialize (entries).
_MAX_TABLE = 2 ** 27
#: Below this, a row's sum of exp(log p(x, z)) has lost precision to underflow (log p(x) < -575).
_TINY_SUM = 1e-250
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
    check_model(model, "bernoulli")
    check_enumerable(model.n_latent, n_obs=model.n_obs)
    x = check_binary(x, model.n_obs, "x")
    check_finite_tree(params)
    if q_logits is not None:
        check_logits(q_logits, (x.shape[0], model.n_latent), "q_logits")
        if not onp.isfinite(onp.asarray(autograd.tracer.getval(q_logits))).all():
            raise ValueError("q_logits: contains +-inf; expected finite logits (use e.g. +-1e4 for a near-deterministic q)")
    return x


def _log_joint_block_fast(model, params, x_aug, states, include_prior=True):
    """log p(x_n, z_m) (or log p(x_n|z_m)) for a block of states: (N, M), plain arrays.

    log p(x|z) = x . a(z) - sum_l softplus(a_l(z)), so the N x M x L work is one matmul.

    ``x_aug`` is x with a column of ones appended, so the per-state constant
    log p(z) - sum_l softplus(a_l(z)) rides along in the matmul instead of costing an extra
    pass over the (N, M) block.
    """
    a = model.decoder_logits(params, states)                      # (M, L), untraced fast path
    a_aug = onp.empty((a.shape[0], a.shape[1] + 1))
    a_aug[:, :-1] = a
    a_aug[:, -1] = -softplus_row_sums(a)
    if include_prior:
        a_aug[:, -1] += model.log_prior(params, states)
    return x_aug @ a_aug.T


def _augment(x):
    return onp.hstack([x, onp.ones((x.shape[0], 1))])


def _logsumexp_update(run_max, run_sum, block):
    """Fold a (N, M) block into a running logsumexp over axis 1, max subtracted (block is overwritten)."""
    new_max = onp.maximum(run_max, block.max(axis=1))
    block -= new_max[:, None]
    onp.exp(block, out=block)
    run_sum = run_sum * onp.exp(run_max - new_max) + block.sum(axis=1)
    return new_max, run_sum


def _log_marginal_rows(model, params, x):
    # log p(x, z) = log p(z) + log p(x|z) <= 0, so exp() of the raw block cannot overflow and
    # the usual max-subtraction (two extra passes over the (N, M) block) is only needed for
    # rows whose sum underflows: log p(x) below log(_TINY_SUM), about -575 nats.
    n = x.shape[0]
    x_aug = _augment(x)
    total = onp.zeros(n)
    for _, states in _state_chunks(model, n):
        block = _log_joint_block_fast(model, params, x_aug, states)
        total += onp.exp(block, out=block).sum(axis=1)
    log_px = onp.log(total, out=onp.full(n, -onp.inf), where=total > 0)
    tiny = total < _TINY_SUM
    if tiny.any():
        log_px[tiny] = _log_marginal_rows_shifted(model, params, x[tiny])
    return log_px


def _log_marginal_rows_shifted(model, params, x):
    """Running logsumexp with the max subtracted: right for any magnitude of log p(x)."""
    n = x.shape[0]
    x_aug = _augment(x)
    run_max = onp.full(n, -onp.inf)
    run_sum = onp.zeros(n)
    for _, states in _state_chunks(model, n):
        block = _log_joint_block_fast(model, params, x_aug, states)
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
    x_aug = _augment(x)
    for start, states in _state_chunks(model, x.shape[0]):
        block = _log_joint_block_fast(model, params, x_aug, states)
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
    x_aug = _augment(x)
    for _, states in _state_chunks(model, x.shape[0]):
        block = _log_joint_block_fast(model, params, x_aug, states)
        out += onp.exp(block - log_px[:, None]) @ states
    return out


def _expected_loglik_block(model, params, q_logits, x_aug, states):
    """q(z_m|x_n) and log p(x_n|z_m) for one state chunk, both (N, M), plain arrays."""
    loglik = _log_joint_block_fast(model, params, x_aug, states, include_prior=False)
    # log q(z_m|x_n) = psi_n . z_m - sum_k softplus(psi_nk): a matmul, not an (N, M, K) array
    log_q = q_logits @ states.T - softplus_row_sums(q_logits)[:, None]
    return onp.exp(log_q), loglik


def _elbo_rows(model, params, q_logits, x):
    expected = onp.zeros(x.shape[0])
    x_aug = _augment(x)
    for _, states in _state_chunks(model, x.shape[0]):
        q, loglik = _expected_loglik_block(model, params, q_logits, x_aug, states)
        expected += onp.einsum("nm,nm->n", q, loglik)
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


def _state_weighted_objective(params, model, states, state_weight, weighted_x, prior_weight):
    """sum_m [prior_weight_m log p(z_m) + weighted_x_m . a(z_m) - state_weight_m sum_l softplus(a_ml)].

    With state_weight_m = sum_n w_nm and weighted_x_m = sum_n w_nm x_n this equals
    sum_nm w_nm log p(x_n, z_m) (prior_weight = state_weight) or sum_nm w_nm log p(x_n|z_m)
    (prior_weight = 0), but autograd only traces (M, L) arrays, never the (N, M) block.
    """
    a = model.decoder_logits(params, states)
    value = np.sum(weighted_x * a) - np.sum(state_weight * np.sum(softplus(a), axis=-1))
    return value + np.sum(prior_weight * model.log_prior(params, states))


_grad_state_weighted = autograd.grad(_state_weighted_objective)


def _neg_kl_prior_sum(params, q_logits):
    return -np.sum(kl_to_prior(q_logits, params["prior_logits"]))


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
    ELBO_n = sum_z q(z|x_n) log p(x_n|z) - KL(q(z|x_n) || p(z)) is a finite sum, so its gradient
    is exact. For the first term, with q_nm = q(z_m|x_n) and l_nm = log p(x_n|z_m):

    - d/dtheta = sum_nm q_nm d l_nm/dtheta (autograd over the states, weights held fixed);
    - d/dpsi_n = sum_m q_nm l_nm (z_m - sigmoid(psi_n)), since d log q_nm/dpsi_n = z_m - sigmoid(psi_n).

    The KL term is differentiated in closed form. Memory is bounded by the state chunking.
    """
    x = _check(model, params, x, q_logits)
    q_logits = onp.asarray(q_logits, dtype=float)
    g_params, g_logits = _grad_kl(params, q_logits)
    g_logits = onp.array(g_logits)
    q_mean = onp.asarray(sigmoid(q_logits))
    no_prior = 0.0
    for rows in _row_blocks(x.shape[0]):
        x_aug = _augment(x[rows])
        for _, states in _state_chunks(model, rows.stop - rows.start):
            q, loglik = _expected_loglik_block(model, params, q_logits[rows], x_aug, states)
            q_loglik = q * loglik
            g_logits[rows] += q_loglik @ states - q_loglik.sum(axis=1)[:, None] * q_mean[rows]
            g_params = tree_add(g_params, _grad_state_weighted(
                params, model, states, q.sum(axis=0), q.T @ x[rows], no_prior))
    return g_params, g_logits


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
    weights w_nm = p(z_m|x_n) are computed first and held constant; they are summed over the
    datapoints before differentiating, so autograd only sees per-state arrays.
    """
    x = _check(model, params, x)
    grad = tree_zeros_like(params)
    for rows in _row_blocks(x.shape[0]):
        xr = x[rows]
        x_aug = _augment(xr)
        log_px = _log_marginal_rows(model, params, xr)
        for _, states in _state_chunks(model, xr.shape[0]):
            weights = onp.exp(_log_joint_block_fast(model, params, x_aug, states) - log_px[:, None])
            state_weight = weights.sum(axis=0)
            grad = tree_add(grad, _grad_state_weighted(
                params, model, states, state_weight, weights.T @ xr, state_weight))
    return grad
from .quadrature import gaussian_log_marginal, gaussian_elbo, gaussian_elbo_grad  # noqa: E402
