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

Layout
------
This module holds the public routines. The state chunks, row blocks, thread pool and time
estimates are in :mod:`vi_lab._enumeration` (patch ``_BLOCK_ELEMENTS`` and ``_FLOPS_ESTIMATE``
there); the kernels that evaluate one (rows, states) block are in :mod:`vi_lab._exact_blocks`.
"""
import autograd
import numpy as onp

# _FLOPS_ESTIMATE and _states_range are also read as exact.<name> by inference.local and estimators.exact
from ._enumeration import _FLOPS_ESTIMATE, _announce, _check_threads, _chunk_results, _row_blocks, _states_range
from ._exact_blocks import (_decoder_pass, _hand_backward, _joint_block, _kept_block, _logits, _neg_kl_prior_grad,
                            _q_block, _q_split, _Rows, _state_weighted_grad)
from ._tree import tree_add, tree_zeros_like
from ._validation import check_binary, check_logits, check_model, check_params, check_positive_int
from .nn import mlp_forward, sigmoid
from .variational import kl_to_prior

__all__ = ["MAX_LATENT", "all_states", "log_marginal", "posterior", "posterior_marginals",
           "elbo", "kl_to_posterior", "elbo_grad", "log_marginal_grad", "check_enumerable",
           "gaussian_log_marginal", "gaussian_elbo", "gaussian_elbo_grad"]

#: Largest K that enumeration accepts: 2**24 = 16.8 million states.
MAX_LATENT = 24
#: Largest posterior table :func:`posterior` will materialize (entries).
_MAX_TABLE = 2 ** 27
#: Below this, a row's sum of exp(log p(x, z)) has lost precision to underflow (log p(x) < -575).
_TINY_SUM = 1e-250
#: log_marginal_grad keeps its first pass's per-state factors [a(z), log p(z) - sum softplus(a(z)), 1]
#: for the second when all of them fit in this many bytes (K = 18 at L = 64), so that the second
#: pass skips the decoder's output layer and the softplus.
_KEEP_BYTES = 2 ** 28


def check_enumerable(n_latent, n_data=1, n_obs=1, max_latent=None):
    """Raise a ValueError explaining the cost if 2**n_latent states are too many.

    Parameters
    ----------
    n_latent : int
        K.
    n_data, n_obs : int
        N and L, used only to estimate the cost in the message.
    max_latent : int, optional
        The limit (default :data:`MAX_LATENT`, one machine's).
    """
    n_latent = check_positive_int(n_latent, "n_latent")
    limit = MAX_LATENT if max_latent is None else max_latent
    if n_latent > limit:
        n_states = 2 ** n_latent
        table_gb = n_data * n_states * 8 / 1e9
        seconds = 2.0 * n_data * n_obs * n_states / _FLOPS_ESTIMATE
        raise ValueError(
            f"n_latent: K = {n_latent} means enumerating 2**{n_latent} = {n_states:,} latent states; "
            f"for N = {n_data}, L = {n_obs} that is a {table_gb:,.1f} GB posterior table and roughly "
            f"{seconds:,.0f} s of likelihood evaluations; exact inference supports K <= {limit}"
            + (f" on one machine (up to {_cluster_limit()} with scheduler=, on a Dask cluster)"
               if limit == MAX_LATENT else "")
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


def _cluster_limit():
    from ._exact_cluster import MAX_LATENT_CLUSTER
    return MAX_LATENT_CLUSTER


def _check(model, params, x, q_logits=None, max_latent=None):
    check_model(model, "bernoulli")
    check_enumerable(model.n_latent, n_obs=model.n_obs, max_latent=max_latent)
    x = check_binary(x, model.n_obs, "x")
    check_params(model, params)
    if q_logits is not None:
        check_logits(q_logits, (x.shape[0], model.n_latent), "q_logits")
        if not onp.isfinite(onp.asarray(autograd.tracer.getval(q_logits))).all():
            raise ValueError("q_logits: contains +-inf; expected finite logits (use e.g. +-1e4 for a near-deterministic q)")
    return x


# ---------------------------------------------------------------------------- log p(x)
def _log_marginal_rows(model, params, x, n_threads=None, kept=None):
    # log p(x, z) = log p(z) + log p(x|z) <= 0, so exp() of the raw block cannot overflow and
    # the usual max-subtraction (two extra passes over the (N, M) block) is only needed for
    # rows whose sum underflows: log p(x) below log(_TINY_SUM), about -575 nats.
    # With ``kept`` (a dict, (first state, number of states) of a chunk -> factor) the per-state
    # factors are kept for a second pass (log_marginal_grad's), or taken from it; the rows then
    # carry a zero shift column so that the kept factors have the second pass's layout. The key
    # has the chunk's length because row blocks of other sizes cut the states into other chunks.
    n = x.shape[0]
    rows = _Rows(x) if kept is None else _Rows(x, shift=onp.zeros(n))

    def work(start, states, ws):
        factor = None if kept is None else kept.get((start, states.shape[0]))
        if factor is not None:
            block = _kept_block(rows, factor, ws)
        elif kept is None:
            block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
        else:
            block, kept[start, states.shape[0]] = _joint_block(model, params, rows, states,
                                                               _logits(model, params, states, ws), ws, keep=True)
        return onp.exp(block, out=block).sum(axis=1)

    total = onp.zeros(n)
    for part in _chunk_results(work, model, n, n_threads):
        total += part
    log_px = onp.log(total, out=onp.full(n, -onp.inf), where=total > 0)
    tiny = total < _TINY_SUM
    if tiny.any():
        log_px[tiny] = _log_marginal_rows_shifted(model, params, x[tiny], n_threads)
    return log_px


def _log_marginal_rows_shifted(model, params, x, n_threads=None):
    """Running logsumexp with the max subtracted: right for any magnitude of log p(x)."""
    run_max, run_sum = _running_logsumexp(model, params, x, n_threads)
    return run_max + onp.log(run_sum)


def _running_logsumexp(model, params, x, n_threads=None, first=0, stop=None):
    """(max, sum of exp(log p(x, z) - max)) per datapoint over the states [first, stop)."""
    n = x.shape[0]
    rows = _Rows(x)

    def work(start, states, ws):
        block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
        block_max = block.max(axis=1)
        block -= block_max[:, None]
        return block_max, onp.exp(block, out=block).sum(axis=1)

    run_max = onp.full(n, -onp.inf)
    run_sum = onp.zeros(n)
    for block_max, block_sum in _chunk_results(work, model, n, n_threads, first, stop):
        new_max = onp.maximum(run_max, block_max)
        run_sum = run_sum * onp.exp(run_max - new_max) + block_sum * onp.exp(block_max - new_max)
        run_max = new_max
    return run_max, run_sum


def log_marginal(model, params, x, n_threads=None, scheduler=None):
    """Exact log p(x) by summing over all 2**K latent states.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
        A 1-D x of shape (L,) is taken as one datapoint.
    n_threads : int, optional
        Worker threads for the state chunks. Default: as many as BLAS would use (so
        ``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl.threadpool_limits(1)`` means one).
    scheduler : str or distributed.Client or distributed.LocalCluster, optional
        Enumerate on this Dask cluster (``"tcp://HOST:PORT"``; ``pip install -e '.[cluster]'``):
        parts of 2**20 states are mapped over its workers and their running logsumexps
        combined here. K may then go up to 32 (``MAX_LATENT_CLUSTER`` in
        ``vi_lab._exact_cluster``) instead of :data:`MAX_LATENT`; ``n_threads`` is unused. An
        unreachable address is a ValueError within seconds.

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    log p(x) = logsumexp_z [log p(z) + log p(x|z)], computed in state chunks (with a running
    maximum for rows whose terms underflow), so nothing overflows and memory stays bounded.
    Cost: N x L x 2**K multiply-adds plus one decoder pass over the 2**K states, split over
    ``n_threads`` cores. The same thread count gives the same bits; different thread counts
    agree to round-off. Decoder logits of any finite size are handled (a chunk with huge
    logits takes a non-cancelling path).
    """
    if scheduler is not None:
        from . import _exact_cluster
        x = _check(model, params, x, max_latent=_exact_cluster.MAX_LATENT_CLUSTER)
        return _exact_cluster.log_marginal(model, params, x, scheduler)
    x = _check(model, params, x)
    n_threads = _check_threads(n_threads)
    _announce("log_marginal", model, x.shape[0], n_threads)
    return onp.concatenate([_log_marginal_rows(model, params, x[rows], n_threads)
                            for rows in _row_blocks(x.shape[0])])


def posterior(model, params, x, n_threads=None):
    """Exact posterior p(z|x) over all 2**K states.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

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
    n_threads = _check_threads(n_threads)
    n_states = 2 ** model.n_latent
    if x.shape[0] * n_states > _MAX_TABLE:
        raise ValueError(
            f"x: a posterior table for N = {x.shape[0]} datapoints and 2**{model.n_latent} states has "
            f"{x.shape[0] * n_states:,} entries (more than {_MAX_TABLE:,}); pass fewer rows or use posterior_marginals"
        )
    log_px = log_marginal(model, params, x, n_threads=n_threads)
    out = onp.empty((x.shape[0], n_states))
    rows = _Rows(x)

    def work(start, states, ws):
        block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
        block -= log_px[:, None]
        onp.exp(block, out=out[:, start:start + states.shape[0]])     # disjoint column slices

    for _ in _chunk_results(work, model, x.shape[0], n_threads):
        pass
    return out


def posterior_marginals(model, params, x, n_threads=None):
    """Exact posterior marginals p(z_k = 1 | x).

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

    Returns
    -------
    ndarray of shape (N, K), values in [0, 1]

    Notes
    -----
    p(z_k = 1 | x) = sum_z p(z|x) z_k, accumulated chunk by chunk (no full table).
    """
    x = _check(model, params, x)
    n_threads = _check_threads(n_threads)
    _announce("posterior_marginals", model, x.shape[0], n_threads, passes=2.0)
    parts = []
    for r in _row_blocks(x.shape[0]):
        xr = x[r]
        log_px = _log_marginal_rows(model, params, xr, n_threads)
        rows = _Rows(xr)

        def work(start, states, ws):
            block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
            block -= log_px[:, None]
            return onp.exp(block, out=block) @ states

        out = onp.zeros((xr.shape[0], model.n_latent))
        for part in _chunk_results(work, model, xr.shape[0], n_threads):
            out += part
        parts.append(out)
    return onp.concatenate(parts)


# ---------------------------------------------------------------------------- ELBO
def _elbo_rows(model, params, q_logits, x, n_threads):
    rows = _Rows(x)
    q_split = _q_split(q_logits)

    def work(start, states, ws):
        loglik = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws,
                              include_prior=False)
        q = _q_block(q_split, states, ws)
        return onp.einsum("nm,nm->n", q, loglik)

    expected = onp.zeros(x.shape[0])
    for part in _chunk_results(work, model, x.shape[0], n_threads):
        expected += part
    return expected - onp.asarray(kl_to_prior(q_logits, params["prior_logits"]))


def elbo(model, params, q_logits, x, n_threads=None):
    """Exact ELBO of a mean-field Bernoulli q(z|x) = prod_k Bernoulli(sigmoid(q_logits_k)).

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
        Logits psi of q for each datapoint.
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = E_q[log p(x, z) - log q(z|x)]
    <= log p(x). The expectation is an exact sum over the 2**K states weighted by q, with
    log q(z) = sum_k log sigmoid((2 z_k - 1) psi_k) (no cancellation for rows mixing huge and
    ordinary logits); the KL to the prior is in closed form.
    """
    x = _check(model, params, x, q_logits)
    n_threads = _check_threads(n_threads)
    q_logits = onp.asarray(q_logits, dtype=float)
    _announce("elbo", model, x.shape[0], n_threads)
    return onp.concatenate([_elbo_rows(model, params, q_logits[r], x[r], n_threads)
                            for r in _row_blocks(x.shape[0])])


def kl_to_posterior(model, params, q_logits, x, n_threads=None):
    """Exact KL(q(z|x) || p(z|x)), the gap between log p(x) and the ELBO.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

    Returns
    -------
    ndarray of shape (N,), non-negative up to round-off (about 1e-12)

    Notes
    -----
    KL(q || p(z|x)) = log p(x) - ELBO(q, x).
    """
    x = _check(model, params, x, q_logits)
    n_threads = _check_threads(n_threads)
    return log_marginal(model, params, x, n_threads) - elbo(model, params, q_logits, x, n_threads)


# ---------------------------------------------------------------------------- gradients
def elbo_grad(model, params, q_logits, x, n_threads=None):
    """Exact gradient of sum_n ELBO_n with respect to the model parameters and q's logits.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    q_logits : ndarray of shape (N, K)
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

    Returns
    -------
    g_params : dict
        Same structure and shapes as ``params``.
    g_logits : ndarray of shape (N, K)

    Notes
    -----
    ELBO_n = sum_z q(z|x_n) log p(x_n|z) - KL(q(z|x_n) || p(z)) is a finite sum, so its gradient
    is exact. For the first term, with q_nm = q(z_m|x_n) and l_nm = log p(x_n|z_m):

    - d/dtheta = sum_nm q_nm d l_nm/dtheta (weights held fixed, summed over n first, then one
      hand-written backward pass through the decoder over the states);
    - d/dpsi_n = sum_m q_nm l_nm (z_m - sigmoid(psi_n)), since d log q_nm/dpsi_n = z_m - sigmoid(psi_n).

    The KL term is differentiated in closed form. Memory is bounded by the state chunking.
    """
    x = _check(model, params, x, q_logits)
    n_threads = _check_threads(n_threads)
    q_logits = onp.asarray(q_logits, dtype=float)
    _announce("elbo_grad", model, x.shape[0], n_threads, passes=2.0)
    g_params, g_logits = _neg_kl_prior_grad(params, q_logits)
    q_mean = onp.asarray(sigmoid(q_logits))
    hand = _hand_backward(model)
    for r in _row_blocks(x.shape[0]):
        rows = _Rows(x[r])
        q_split = _q_split(q_logits[r])
        mean_r = q_mean[r]

        def work(start, states, ws):
            a, cache = _decoder_pass(model, params, states, hand, ws)
            loglik = _joint_block(model, params, rows, states, a, ws, include_prior=False)
            q = _q_block(q_split, states, ws)
            q_loglik = onp.multiply(q, loglik, out=loglik)
            g_q = q_loglik @ states - q_loglik.sum(axis=1)[:, None] * mean_r
            return g_q, _state_weighted_grad(model, params, states, q, rows, a, cache, ws, with_prior=False)

        for g_q, g_p in _chunk_results(work, model, rows.x.shape[0], n_threads):
            g_logits[r] += g_q
            g_params = tree_add(g_params, g_p)
    return g_params, g_logits


def log_marginal_grad(model, params, x, n_threads=None):
    """Exact gradient of sum_n log p(x_n) with respect to the model parameters.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    n_threads : int, optional
        As in :func:`log_marginal`.

    Returns
    -------
    dict
        Same structure and shapes as ``params``.

    Notes
    -----
    Fisher's identity: d log p(x)/d theta = sum_z p(z|x) d log p(x, z)/d theta. The posterior
    weights w_nm = p(z_m|x_n) are computed first (one pass for log p(x)) and held constant; they
    are summed over the datapoints before differentiating, so the decoder's backward pass (written
    out by hand, :func:`vi_lab.nn.mlp_backward`) only sees per-state (M, L) arrays. The first
    pass keeps each state's decoder output and log p(z) - sum_l softplus(a_l) when they fit in
    ``_KEEP_BYTES`` (K <= 18 at L = 64), so the second recomputes only the hidden layers.
    """
    x = _check(model, params, x)
    n_threads = _check_threads(n_threads)
    _announce("log_marginal_grad", model, x.shape[0], n_threads, passes=2.5)
    grad = tree_zeros_like(params)
    hand = _hand_backward(model)
    kept = {} if hand and 2 ** model.n_latent * (model.n_obs + 2) * 8 <= _KEEP_BYTES else None
    for r in _row_blocks(x.shape[0]):
        xr = x[r]
        rows = _Rows(xr, shift=_log_marginal_rows(model, params, xr, n_threads, kept=kept))

        def work(start, states, ws):
            factor = None if kept is None else kept.get((start, states.shape[0]))
            if factor is None:
                a, cache = _decoder_pass(model, params, states, hand, ws)
                block = _joint_block(model, params, rows, states, a, ws)     # log p(z | x_n)
            else:                                   # the output layer is kept: only the hidden layers again
                _, cache = mlp_forward(params["decoder"], states, model.activation, ws, output=False)
                a = factor[:, :-2]
                block = _kept_block(rows, factor, ws)
            weights = onp.exp(block, out=block)
            return _state_weighted_grad(model, params, states, weights, rows, a, cache, ws, with_prior=True)

        for part in _chunk_results(work, model, rows.x.shape[0], n_threads):
            grad = tree_add(grad, part)
    return grad


from .quadrature import gaussian_log_marginal, gaussian_elbo, gaussian_elbo_grad  # noqa: E402
