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
import os
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import autograd
import autograd.numpy as np
import numpy as onp

from ._tree import tree_add, tree_zeros_like
from ._validation import check_binary, check_logits, check_finite_tree, check_model, check_params, check_positive_int
from .model import BernoulliLVM, DecoderModel
from .nn import Workspace, log_sigmoid, mlp_backward, mlp_forward, sigmoid, sigmoid_into, softplus, softplus_row_sums
from .variational import kl_to_prior

__all__ = ["MAX_LATENT", "all_states", "log_marginal", "posterior", "posterior_marginals",
           "elbo", "kl_to_posterior", "elbo_grad", "log_marginal_grad", "check_enumerable",
           "gaussian_log_marginal", "gaussian_elbo", "gaussian_elbo_grad"]

#: Largest K that enumeration accepts: 2**24 = 16.8 million states.
MAX_LATENT = 24
#: Largest number of entries in one (rows, states) block, per worker thread (2 MiB: the block,
#: the decoder activations and the exp pass stay in cache, which is faster than one big block).
_BLOCK_ELEMENTS = 2 ** 18
#: Largest posterior table :func:`posterior` will materialize (entries).
_MAX_TABLE = 2 ** 27
#: Below this, a row's sum of exp(log p(x, z)) has lost precision to underflow (log p(x) < -575).
_TINY_SUM = 1e-250
#: The folded likelihood x . a - sum_l softplus(a_l) loses about eps * sum_l softplus(a_l) nats to
#: cancellation; a chunk where that sum exceeds this (error bound ~1e-10 nats) takes the
#: per-coordinate form sum_l log sigmoid(+-a_l) instead (twice the matmul, nothing cancels).
_FOLD_MAX_ABS = 1e6
#: Measured throughput of the enumeration on one core of the development machine (flop/s,
#: decoder plus likelihood products; benchmarks/bench_scaling.py), for time estimates.
_FLOPS_ESTIMATE = 1.5e10
#: Runs estimated to take longer than this print the estimate on stderr before they start.
_ANNOUNCE_SECONDS = 10.0


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


# ---------------------------------------------------------------------------- chunks and threads
#
# The 2**K states are cut into chunks so that no (rows, states) block exceeds _BLOCK_ELEMENTS
# entries. Chunks are independent, so they run on a small thread pool (numpy releases the GIL in
# ufuncs and matmul) with BLAS at one thread inside, and their partial results are combined in
# chunk order. Neither the chunk boundaries nor the arithmetic inside a chunk depend on the thread
# count, so every thread count gives the same bits (a single-chunk problem runs with BLAS as it is
# configured, in the calling thread).

_blas = None


def _blas_controller():
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    return _blas


def _check_threads(n_threads):
    return None if n_threads is None else check_positive_int(n_threads, "n_threads")


def _resolve_threads(n_threads, n_chunks):
    """Worker threads for ``n_chunks`` chunks: ``None`` means as many as BLAS would use now."""
    if n_chunks < 2:
        return 1
    if n_threads is None:
        # Follow BLAS: OPENBLAS_NUM_THREADS=1 or threadpoolctl.threadpool_limits(1) (the CLI, the
        # joblib cells) keeps enumeration on one core too; otherwise use the cores BLAS would use.
        info = _blas_controller().select(user_api="blas").info()
        n_threads = max([lib["num_threads"] for lib in info] or [1])
        n_threads = min(n_threads, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                        else (os.cpu_count() or 1))
    return max(1, min(n_threads, n_chunks))


#: A problem of at least this many states is cut into at least _MIN_CHUNKS chunks (so that it
#: runs on the thread pool, with one BLAS thread per chunk); smaller ones are one chunk, computed
#: in the calling thread with no pool overhead (the many tiny calls of a training loop).
_MIN_CHUNK_STATES = 256
_MIN_CHUNKS = 8


def _chunk_size(model, n_rows):
    """States per chunk: a power of two that depends on the problem's shape only (never on threads)."""
    n_states = 2 ** model.n_latent
    width = max((model.n_obs,) + tuple(getattr(model, "hidden", ())))
    chunk = max(1, _BLOCK_ELEMENTS // max(n_rows, width))
    chunk = min(chunk, max(_MIN_CHUNK_STATES, n_states // _MIN_CHUNKS))
    return min(n_states, 1 << (chunk.bit_length() - 1))


def _chunk_results(work, model, n_rows, n_threads):
    """``work(start, states, workspace)`` for every state chunk, yielded in chunk order.

    With more than one thread the chunks run on a ThreadPoolExecutor with BLAS pinned to one
    thread (threadpoolctl); at most 2 chunks per thread are in flight, so memory stays bounded.
    Each thread gets its own :class:`vi_lab.nn.Workspace` for the call, so the chunk-sized
    temporaries are allocated once per thread, not once per chunk.
    """
    n_states = 2 ** model.n_latent
    chunk = _chunk_size(model, n_rows)
    starts = range(0, n_states, chunk)
    n_threads = _resolve_threads(n_threads, len(starts))
    local = threading.local()

    def run(start):
        ws = getattr(local, "workspace", None)
        if ws is None:
            ws = local.workspace = Workspace()
        return work(start, _states_range(model.n_latent, start, min(start + chunk, n_states)), ws)

    if len(starts) == 1:
        yield run(0)
        return
    # One BLAS thread inside every chunk, whatever n_threads is: BLAS threads on these small
    # products only add overhead, and every chunk then gives the same bits for any thread count.
    with _blas_controller().limit(limits=1, user_api="blas"):
        if n_threads == 1:
            for start in starts:
                yield run(start)
            return
        pool = ThreadPoolExecutor(n_threads, thread_name_prefix="vi_lab.exact")
        try:
            pending = deque()
            for start in starts:
                pending.append(pool.submit(run, start))
                if len(pending) >= 2 * n_threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _row_blocks(n_rows):
    """Datapoint blocks, so huge N does not defeat the state chunking."""
    step = max(1, _BLOCK_ELEMENTS // 16)
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _announce(name, model, n_rows, n_threads, passes=1.0):
    """Print a time estimate on stderr before a run expected to take more than _ANNOUNCE_SECONDS."""
    n_states = 2 ** model.n_latent
    sizes = (model.n_latent,) + tuple(getattr(model, "hidden", ())) + (model.n_obs,)
    decoder = 2.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    n_blocks = len(_row_blocks(n_rows))
    flops = passes * n_states * (2.0 * n_rows * (model.n_obs + 1) + n_blocks * decoder)
    seconds = flops / _FLOPS_ESTIMATE
    if seconds <= _ANNOUNCE_SECONDS:             # short runs never pay for asking BLAS its threads
        return seconds
    threads = _resolve_threads(n_threads, 2 ** 30)
    seconds /= threads
    if seconds > _ANNOUNCE_SECONDS:
        print(f"vi_lab.exact.{name}: enumerating 2**{model.n_latent} = {n_states:,} states for "
              f"N = {n_rows} datapoints, estimated {_format_seconds(seconds)} on {threads} thread(s)",
              file=sys.stderr, flush=True)
    return seconds


def _format_seconds(seconds):
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def _check(model, params, x, q_logits=None):
    check_model(model, "bernoulli")
    check_enumerable(model.n_latent, n_obs=model.n_obs)
    x = check_binary(x, model.n_obs, "x")
    check_params(model, params)
    if q_logits is not None:
        check_logits(q_logits, (x.shape[0], model.n_latent), "q_logits")
        if not onp.isfinite(onp.asarray(autograd.tracer.getval(q_logits))).all():
            raise ValueError("q_logits: contains +-inf; expected finite logits (use e.g. +-1e4 for a near-deterministic q)")
    return x


# ---------------------------------------------------------------------------- one block
class _Rows:
    """The datapoints of one row block, in the two layouts the block matmul uses."""

    def __init__(self, x, shift=None):
        self.x = x
        # x with a column of ones: the per-state constant rides along in the matmul
        self.aug = onp.hstack([x, onp.ones((x.shape[0], 1))])
        # and optionally a column -shift_n (e.g. -log p(x_n)), so the block comes out shifted
        self.shift = None if shift is None else -onp.asarray(shift, dtype=float)[:, None]

    @cached_property
    def split(self):
        # [x, 1 - x, 1] for the per-coordinate (non-cancelling) form; computed only if needed
        return self._with_shift(onp.hstack([self.x, 1.0 - self.x, onp.ones((self.x.shape[0], 1))]))

    @cached_property
    def folded(self):
        return self._with_shift(self.aug)

    def _with_shift(self, columns):
        return columns if self.shift is None else onp.hstack([columns, self.shift])


def _joint_block(model, params, rows, states, a, ws, include_prior=True):
    """log p(x_n, z_m) (or log p(x_n|z_m)) for a block of states from their decoder logits.

    Parameters
    ----------
    rows : _Rows of N datapoints
    states : ndarray of shape (M, K)
    a : ndarray of shape (M, L), the decoder logits a(z_m)
    ws : Workspace

    Returns
    -------
    ndarray of shape (N, M), in ``ws`` (valid until the next block of this thread)

    Notes
    -----
    log p(x|z) = x . a(z) - sum_l softplus(a_l(z)), so the N x M x L work is one matmul, with the
    per-state constant log p(z) - sum_l softplus(a_l(z)) folded in as an extra column. That form
    cancels when |a| is huge (x . a and sum softplus(a) both ~1e10, the answer ~1), so a chunk
    with sum_l softplus(a_l) > _FOLD_MAX_ABS (a bound on what can cancel) uses sum_l [x_l log sigmoid(a_l) + (1 - x_l) log sigmoid(-a_l)]:
    every term <= 0, nothing cancels, at twice the matmul.
    """
    n_states, n_obs = a.shape
    extra = 0 if rows.shift is None else 1               # a column of ones against -shift_n
    row_sums = softplus_row_sums(a, out=ws.array("abs", a.shape), scratch=ws.array("abs2", a.shape))
    # Cancellation needs a huge positive a_l (x_l a_l ~ softplus(a_l), both huge), so
    # sum_l softplus(a_l) >= sum_l max(a_l, 0) bounds it; a huge negative a_l with x_l = 1 makes
    # log p(x, z) itself huge and negative, so its rounding is relative and harmless.
    if row_sums.max() <= _FOLD_MAX_ABS:
        a_aug = ws.array("a_aug", (n_states, n_obs + 1 + extra))
        a_aug[:, :n_obs] = a
        a_aug[:, n_obs] = onp.negative(row_sums, out=row_sums)
        x_in = rows.folded
    else:
        a_aug = ws.array("a_aug_split", (n_states, 2 * n_obs + 1 + extra))
        a_aug[:, :n_obs] = log_sigmoid(a)
        a_aug[:, n_obs:2 * n_obs] = log_sigmoid(-a)
        a_aug[:, 2 * n_obs] = 0.0
        x_in = rows.split
    if extra:
        a_aug[:, -1] = 1.0
    if include_prior:
        a_aug[:, -1 - extra] += model.log_prior(params, states)
    return onp.matmul(x_in, a_aug.T, out=ws.array("block", (x_in.shape[0], n_states)))


def _q_block(q_split, states, ws):
    """q(z_m|x_n) (N, M) from log q = sum_k [z_mk log sigmoid(psi_nk) + (1 - z_mk) log sigmoid(-psi_nk)].

    ``q_split`` is [log sigmoid(psi), log sigmoid(-psi)] (N, 2K). Every term is <= 0, so a row
    mixing psi ~ 1e16 with psi ~ 1 keeps its small coordinates (psi . z - sum softplus(psi) does not).
    """
    log_q = onp.matmul(q_split, onp.hstack([states, 1.0 - states]).T,
                       out=ws.array("q", (q_split.shape[0], states.shape[0])))
    return onp.exp(log_q, out=log_q)


def _q_split(q_logits):
    return onp.hstack([log_sigmoid(q_logits), log_sigmoid(-q_logits)])


def _hand_backward(model):
    """Whether the decoder is the stock MLP, so its hand-written backward (nn.mlp_backward) applies."""
    cls = type(model)
    return (cls.decoder_logits is DecoderModel.decoder_logits and cls.log_prior is BernoulliLVM.log_prior
            and cls.log_likelihood is DecoderModel.log_likelihood)


def _decoder_pass(model, params, states, hand, ws):
    """Decoder logits of ``states`` (M, L) and the cache for the hand-written backward (or None)."""
    if hand:
        return mlp_forward(params["decoder"], states, model.activation, ws)
    return model.decoder_logits(params, states), None


def _logits(model, params, states, ws):
    return _decoder_pass(model, params, states, _hand_backward(model), ws)[0]


# ---------------------------------------------------------------------------- log p(x)
def _log_marginal_rows(model, params, x, n_threads=None):
    # log p(x, z) = log p(z) + log p(x|z) <= 0, so exp() of the raw block cannot overflow and
    # the usual max-subtraction (two extra passes over the (N, M) block) is only needed for
    # rows whose sum underflows: log p(x) below log(_TINY_SUM), about -575 nats.
    n = x.shape[0]
    rows = _Rows(x)

    def work(start, states, ws):
        block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
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
    n = x.shape[0]
    rows = _Rows(x)

    def work(start, states, ws):
        block = _joint_block(model, params, rows, states, _logits(model, params, states, ws), ws)
        block_max = block.max(axis=1)
        block -= block_max[:, None]
        return block_max, onp.exp(block, out=block).sum(axis=1)

    run_max = onp.full(n, -onp.inf)
    run_sum = onp.zeros(n)
    for block_max, block_sum in _chunk_results(work, model, n, n_threads):
        new_max = onp.maximum(run_max, block_max)
        run_sum = run_sum * onp.exp(run_max - new_max) + block_sum * onp.exp(block_max - new_max)
        run_max = new_max
    return run_max + onp.log(run_sum)


def log_marginal(model, params, x, n_threads=None):
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


def _state_weighted_grad(model, params, states, weights, rows, a, cache, ws, with_prior):
    """Gradient of sum_nm w_nm log p(x_n, z_m) (or of log p(x_n|z_m)) with the weights held fixed.

    Parameters
    ----------
    weights : ndarray of shape (N, M)
    a, cache : the decoder logits of ``states`` and the :func:`nn.mlp_forward` cache (None: autograd)
    ws : Workspace

    Notes
    -----
    Everything is summed over the datapoints first: with s_m = sum_n w_nm and
    X_m = sum_n w_nm x_n (one matmul, w^T [x, 1]), d/da(z_m) = X_m - s_m sigmoid(a(z_m)) and
    d/db = sum_m s_m (z_m - sigmoid(b)); the decoder's backward then runs over (M, L) only.
    """
    n_states, n_obs = states.shape[0], rows.x.shape[1]
    wx = onp.matmul(weights.T, rows.aug, out=ws.array("wx", (n_states, n_obs + 1)))   # [X_m, s_m]
    state_weight = wx[:, -1]
    if cache is None:                                           # a model with its own densities
        prior_weight = state_weight if with_prior else 0.0
        return _grad_state_weighted(params, model, states, state_weight, wx[:, :-1].copy(), prior_weight)
    sig = sigmoid_into(a, out=ws.array("sigmoid", a.shape))
    sig *= state_weight[:, None]
    grad_a = wx[:, :-1]
    grad_a -= sig
    g_prior = (state_weight @ states - state_weight.sum() * sigmoid(params["prior_logits"])
               if with_prior else onp.zeros_like(params["prior_logits"], dtype=float))
    return {"prior_logits": g_prior,
            "decoder": mlp_backward(params["decoder"], cache, grad_a, model.activation, ws)}


def _neg_kl_prior_grad(params, q_logits):
    """Gradient of -sum_n KL(q_n || p(z)) in closed form: d/dpsi = -q (1 - q) (psi - b), d/db = sum_n (q - sigmoid(b))."""
    b = onp.asarray(params["prior_logits"], dtype=float)
    q = sigmoid(q_logits)
    g_logits = -(q * sigmoid(-q_logits)) * (q_logits - b)
    g_prior = q.sum(axis=0) - q_logits.shape[0] * sigmoid(b)
    grad = tree_zeros_like(params)
    grad["prior_logits"] = g_prior
    return grad, g_logits


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
    out by hand, :func:`vi_lab.nn.mlp_backward`) only sees per-state (M, L) arrays.
    """
    x = _check(model, params, x)
    n_threads = _check_threads(n_threads)
    _announce("log_marginal_grad", model, x.shape[0], n_threads, passes=2.5)
    grad = tree_zeros_like(params)
    hand = _hand_backward(model)
    for r in _row_blocks(x.shape[0]):
        xr = x[r]
        rows = _Rows(xr, shift=_log_marginal_rows(model, params, xr, n_threads))

        def work(start, states, ws):
            a, cache = _decoder_pass(model, params, states, hand, ws)
            block = _joint_block(model, params, rows, states, a, ws)     # log p(z | x_n)
            weights = onp.exp(block, out=block)
            return _state_weighted_grad(model, params, states, weights, rows, a, cache, ws, with_prior=True)

        for part in _chunk_results(work, model, rows.x.shape[0], n_threads):
            grad = tree_add(grad, part)
    return grad


from .quadrature import gaussian_log_marginal, gaussian_elbo, gaussian_elbo_grad  # noqa: E402
