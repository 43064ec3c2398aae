"""The enumeration engine behind :mod:`vi_lab.exact`: state chunks, row blocks and the thread pool.

The 2**K latent states are generated in chunks, in the order of :func:`vi_lab.exact.all_states`
(z_1 the most significant bit), so that no (rows, states) block exceeds ``_BLOCK_ELEMENTS``
entries. Chunks are independent, so they run on a small thread pool (numpy releases the GIL in
ufuncs and matmul) with BLAS at one thread inside, and their partial results are combined in
chunk order. Neither the chunk boundaries nor the arithmetic inside a chunk depend on the thread
count, so every thread count gives the same bits (a single-chunk problem runs with BLAS as it is
configured, in the calling thread).

Private: the public routines are in :mod:`vi_lab.exact`; patch the constants here (not there).
"""
import os
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as onp

from ._validation import check_positive_int
from .nn import Workspace

#: Largest number of entries in one (rows, states) block, per worker thread (2 MiB: the block,
#: the decoder activations and the exp pass stay in cache, which is faster than one big block).
_BLOCK_ELEMENTS = 2 ** 18
#: Measured throughput of the enumeration on one core of the development machine (flop/s,
#: decoder plus likelihood products; benchmarks/bench_scaling.py), for time estimates.
_FLOPS_ESTIMATE = 1.5e10
#: Runs estimated to take longer than this print the estimate on stderr before they start.
_ANNOUNCE_SECONDS = 10.0


def _states_range(n_latent, start, stop):
    m = onp.arange(start, stop, dtype=onp.int64)
    shifts = onp.arange(n_latent - 1, -1, -1, dtype=onp.int64)
    return ((m[:, None] >> shifts) & 1).astype(onp.float64)


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


def _chunk_results(work, model, n_rows, n_threads, first=0, stop=None):
    """``work(start, states, workspace)`` for every state chunk, yielded in chunk order.

    ``first`` and ``stop`` (multiples of the chunk size, or 2**K) limit it to the states
    [first, stop), one part of the enumeration (see :mod:`vi_lab._exact_cluster`).

    With more than one thread the chunks run on a ThreadPoolExecutor with BLAS pinned to one
    thread (threadpoolctl); at most 2 chunks per thread are in flight, so memory stays bounded.
    Each thread gets its own :class:`vi_lab.nn.Workspace` for the call, so the chunk-sized
    temporaries are allocated once per thread, not once per chunk.
    """
    n_states = 2 ** model.n_latent
    chunk = _chunk_size(model, n_rows)
    stop = n_states if stop is None else stop
    starts = range(first, stop, chunk)
    n_threads = _resolve_threads(n_threads, len(starts))
    local = threading.local()

    def run(start):
        ws = getattr(local, "workspace", None)
        if ws is None:
            ws = local.workspace = Workspace()
        return work(start, _states_range(model.n_latent, start, min(start + chunk, stop)), ws)

    if len(starts) == 1:
        yield run(first)
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


def _announce(name, model, n_rows, n_threads, passes=1.0, cluster_threads=None):
    """Print a time estimate on stderr before a run expected to take more than _ANNOUNCE_SECONDS.

    ``cluster_threads``: the run is on a Dask cluster with that many worker threads, not here.
    """
    n_states = 2 ** model.n_latent
    sizes = (model.n_latent,) + tuple(getattr(model, "hidden", ())) + (model.n_obs,)
    decoder = 2.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    n_blocks = len(_row_blocks(n_rows))
    flops = passes * n_states * (2.0 * n_rows * (model.n_obs + 1) + n_blocks * decoder)
    seconds = flops / _FLOPS_ESTIMATE
    if seconds <= _ANNOUNCE_SECONDS:             # short runs never pay for asking BLAS its threads
        return seconds
    threads = _resolve_threads(n_threads, 2 ** 30) if cluster_threads is None else cluster_threads
    where = "thread(s)" if cluster_threads is None else "worker thread(s) of the cluster"
    seconds /= threads
    if seconds > _ANNOUNCE_SECONDS:
        print(f"vi_lab.exact.{name}: enumerating 2**{model.n_latent} = {n_states:,} states for "
              f"N = {n_rows} datapoints, estimated {_format_seconds(seconds)} on {threads} {where}",
              file=sys.stderr, flush=True)
    return seconds


def _format_seconds(seconds):
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"
