"""Run independent cells on every core (joblib) or on a Dask cluster, one progress bar over cells.

A *cell* is one unit of work of an experiment or study: one (grid point, estimator, seed), say.
Cells are independent, so they can run in any order on any worker; ``run_cells`` runs
``function(cell)`` for each of them and returns the results in cell order. It is a thin layer over
an existing engine, never a pool of our own:

- ``jobs=1``: in this process, one cell after the other (the bar names the cell that runs now);
- ``jobs=N`` (default: every core joblib sees): joblib's ``loky`` worker processes;
- ``scheduler="tcp://HOST:PORT"`` (or a ``distributed.Client`` / ``LocalCluster``): the cells go to
  a Dask distributed cluster through joblib's ``dask`` backend (``pip install -e '.[cluster]'``).

Every cell runs with one BLAS thread (threadpoolctl), in every mode: the arrays here are small, so
extra BLAS threads only fight over the cores the workers already use, and a cell computes the same
floating-point numbers whichever mode runs it. And every process that runs cells keeps up to
``KEEP_FREED_BYTES`` (192 MiB) of freed memory for reuse (:func:`keep_freed_memory`): a cell allocates
and frees arrays of tens of MB call after call, and glibc's default hands each one back to the
kernel, so the next call faults in fresh zeroed pages (a quarter of ``vi-lab variance``'s wall time).
What a cell freed beyond that is handed back when it ends (:func:`release_freed_memory`).

Results do not depend on the number of workers or on their order as long as each cell draws its
random numbers from a stream derived from the cell itself; ``cell_seed`` derives one from a
study seed and the cell's key.

Examples
--------
>>> from vi_lab.parallel import run_cells
>>> run_cells(abs, [-3, 1, -2], jobs=1, progress=False)
[3, 1, 2]
"""
import hashlib
import json
import sys
from contextlib import contextmanager

import numpy as onp

__all__ = ["run_cells", "resolve_jobs", "connect_scheduler", "cell_seed", "keep_freed_memory", "release_freed_memory"]

#: seconds to wait for a Dask scheduler before giving up (an unreachable address fails fast).
CONNECT_TIMEOUT = 5.0

#: freed memory a cell-running process keeps for reuse (glibc's M_TOP_PAD). Not more: loky restarts
#: a worker whose resident size grew by 300 MB since its first cell (its memory-leak check), with a
#: warning on the user's terminal; at 512 MiB the default ``vi-lab variance`` lost 1-2 workers to it
#: and took 25-26 s, at 256 MiB none and 22 s, at 192 MiB (300 MB less some margin) none and 21 s
KEEP_FREED_BYTES = 3 * 2 ** 26
# mallopt parameter numbers, from glibc's malloc.h; 32 MiB is the largest mmap threshold glibc accepts
_M_TOP_PAD, _M_MMAP_THRESHOLD, _HEAP_LIMIT = -2, -3, 2 ** 25
_kept = {}                                            # the mallopt function, the bytes set


def keep_freed_memory(n_bytes=None):
    """Let this process keep ``n_bytes`` of freed heap instead of returning it to the kernel (glibc only).

    Parameters
    ----------
    n_bytes : int, optional
        Default ``KEEP_FREED_BYTES`` (192 MiB).

    Returns
    -------
    bool
        Whether the allocator took the setting (False off glibc: macOS, musl, Windows), in which case
        nothing changed. Numbers never depend on it, only the time spent in page faults: measured
        on ``vi-lab variance --jobs 1 --no-figures`` (2 cores), 34.3 s wall with 9.3 s of system
        time without it, 28.2 s with 3.4 s with it (192 MiB kept, trimmed back after each cell).

    Notes
    -----
    Two glibc settings: arrays up to 32 MiB come from the heap rather than from a fresh ``mmap``
    each (M_MMAP_THRESHOLD; glibc's own threshold adapts only after such a block is freed), and
    the heap keeps ``n_bytes`` free at its top rather than trimming it back (M_TOP_PAD). Either
    alone leaves the faults as they were; together a loop allocating and freeing 1 to 30 MB
    arrays faults no new page after its first round.
    """
    n_bytes = KEEP_FREED_BYTES if n_bytes is None else int(n_bytes)
    if _kept.get("bytes") == n_bytes:
        return True
    if "mallopt" not in _kept:
        _kept["mallopt"] = _glibc_mallopt()
    mallopt = _kept["mallopt"]
    if mallopt is None or not (mallopt(_M_MMAP_THRESHOLD, _HEAP_LIMIT) and mallopt(_M_TOP_PAD, n_bytes)):
        return False
    _kept["bytes"] = n_bytes
    return True


def _glibc_mallopt():
    """glibc's ``mallopt`` through ctypes, or None on another C library."""
    return _glibc_function("mallopt", ("c_int", "c_int"))


def _glibc_function(name, argtypes):
    """glibc's function ``name`` (int result; ctypes type names ``argtypes``), or None off glibc."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = [getattr(ctypes, type_name) for type_name in argtypes]
    function.restype = ctypes.c_int
    return function


def cell_seed(seed, key):
    """A ``numpy.random.SeedSequence`` that depends on ``(seed, key)`` only.

    Parameters
    ----------
    seed : int >= 0
        The study (or experiment) seed.
    key : JSON-serializable (str, tuple, dict of str/int/float/list)
        What identifies the cell, e.g. ``("digits", 12, "disarm", 2, 3)``. Equal keys give equal
        streams in every process and on every machine (the key is hashed with SHA-256 of its
        canonical JSON, not with Python's salted ``hash``).

    Returns
    -------
    numpy.random.SeedSequence
        Pass it to ``numpy.random.default_rng``, or ``.generate_state(1)[0]`` for an int seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, onp.integer)) or seed < 0:
        raise ValueError(f"cell_seed: seed must be an integer >= 0, got {seed!r}")
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]
    return onp.random.SeedSequence([int(seed)] + words)


def resolve_jobs(jobs):
    """Number of local worker processes: ``None`` -> every core joblib sees, else a positive int."""
    from joblib import cpu_count

    if jobs is None:
        return max(1, cpu_count())
    if isinstance(jobs, bool) or not isinstance(jobs, (int, onp.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer (or None for all {cpu_count()} cores), got {jobs!r}")
    return int(jobs)


def connect_scheduler(scheduler, timeout=None):
    """A ``distributed.Client`` for ``scheduler``, and whether we created it (and must close it).

    Parameters
    ----------
    scheduler : str or distributed.Client or distributed.LocalCluster
        ``"tcp://HOST:PORT"`` (what ``dask-scheduler`` prints), a running client, or a cluster object
        (anything with a ``scheduler_address``).
    timeout : float or None
        Seconds to wait for the scheduler (default ``CONNECT_TIMEOUT``).

    Raises
    ------
    ValueError
        distributed is not installed, or the scheduler cannot be reached within ``timeout`` seconds
        (the message names the address).
    """
    try:
        import distributed
    except ImportError:
        raise ValueError("scheduler: Dask distributed is not installed; pip install -e '.[cluster]'") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    address = getattr(scheduler, "scheduler_address", scheduler)
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"scheduler must be an address like tcp://HOST:PORT, a Client or a cluster, got {scheduler!r}")
    address = address.strip()
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    try:
        client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except Exception as error:                       # OSError/TimeoutError/ValueError from distributed
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"scheduler {address}: cannot connect within {timeout:g} s ({reason})") from None
    return client, True


def _call(function, index, cell):
    """Worker side: run one cell with one BLAS thread; return its index with the result.

    The cell keeps freed memory for its own reuse (:func:`keep_freed_memory`); when it ends,
    whatever it freed beyond ``KEEP_FREED_BYTES`` goes back to the kernel, so that a worker's
    resident size between cells stays within loky's memory-leak check (300 MB of growth).
    """
    keep_freed_memory()
    try:
        with _one_blas_thread():
            return index, function(cell)
    finally:
        release_freed_memory()


def release_freed_memory(keep=None):
    """Hand the free heap memory beyond ``keep`` bytes back to the kernel (glibc only).

    Parameters
    ----------
    keep : int, optional
        Free bytes left at the top of the heap for reuse; default ``KEEP_FREED_BYTES``.

    Returns
    -------
    bool
        Whether memory was released: glibc's ``malloc_trim(keep)``, which also frees the whole pages
        of free blocks inside the heap. False (and nothing done) on another C library.
    """
    keep = KEEP_FREED_BYTES if keep is None else int(keep)
    if "malloc_trim" not in _kept:
        _kept["malloc_trim"] = _glibc_function("malloc_trim", ("c_size_t",))
    trim = _kept["malloc_trim"]
    return bool(trim is not None and trim(keep))


@contextmanager
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                              # optional: BLAS then keeps its own threads
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _label(cell, label):
    text = label(cell) if label is not None else str(cell)
    return text if len(text) <= 60 else text[:57] + "..."


def run_cells(function, cells, jobs=None, scheduler=None, progress=True, desc="cells", label=None,
              on_result=None):
    """Run ``function(cell)`` for every cell; return the results in cell order.

    Parameters
    ----------
    function : callable
        ``function(cell) -> result``. Module-level functions are safest (they are pickled to the
        workers with cloudpickle; closures work too). It must draw random numbers only from the cell
        (see ``cell_seed``) so that results do not depend on where or when it runs.
    cells : sequence
        The cells, each picklable.
    jobs : int or None
        Local worker processes (``None``: all cores; ``1``: run here, sequentially). Capped at the
        number of cells. With ``scheduler`` it caps the number of cells in flight (``None``: as
        many as the cluster has worker threads).
    scheduler : str or distributed.Client or distributed.LocalCluster or None
        Run on this Dask cluster instead of local processes.
    progress : bool
        One tqdm bar over cells on stderr, with ETA and the cell(s) running now.
    desc : str
        The bar's label.
    label : callable or None
        ``label(cell) -> str`` for the bar (default ``str(cell)``).
    on_result : callable or None
        ``on_result(index, cell, result)``, called in this process as each cell finishes (in
        completion order), e.g. to write the cell to disk at once so that an interrupted run keeps
        every finished cell.

    Returns
    -------
    list
        ``[function(cell) for cell in cells]``, computed in parallel.

    Raises
    ------
    ValueError
        Bad ``jobs``; an unreachable ``scheduler`` (within ``CONNECT_TIMEOUT`` seconds).
    KeyboardInterrupt
        Propagated after the workers are stopped; cells finished before it went to ``on_result``.
    Exception
        Whatever ``function`` raises (the first such error, after the remaining cells are stopped).
    """
    cells = list(cells)
    n_jobs = resolve_jobs(jobs) if (jobs is not None or scheduler is None) else None
    if not cells:
        return []
    client = owned = None
    if scheduler is not None:
        client, owned = connect_scheduler(scheduler)
    results = [None] * len(cells)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(cells), desc=desc, unit="cell", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, smoothing=0.0)
    try:
        if client is None and min(n_jobs, len(cells)) == 1:
            for index, cell in enumerate(cells):
                bar.set_postfix_str(_label(cell, label), refresh=True)
                _, results[index] = _call(function, index, cell)
                if on_result is not None:
                    on_result(index, cell, results[index])
                bar.update(1)
        else:
            _run_joblib(function, cells, results, n_jobs, client, bar, label, on_result)
        bar.set_postfix_str("done", refresh=True)
    finally:
        bar.close()
        if owned:
            client.close()
    return results


def _run_joblib(function, cells, results, n_jobs, client, bar, label, on_result):
    from joblib import Parallel, delayed, parallel_config

    running = {}

    def now():
        # joblib hands cells to the workers in order, a few ahead; the oldest unfinished ones are
        # (almost always) the ones running now
        return ", ".join(list(running.values())[:workers]) or "done"

    def tasks():
        for index, cell in enumerate(cells):
            running[index] = _label(cell, label)
            bar.set_postfix_str(now(), refresh=True)
            yield delayed(_call)(function, index, cell)

    if client is None:
        workers = min(n_jobs, len(cells))
        config = dict(backend="loky", n_jobs=workers)
    else:
        threads = sum(client.nthreads().values()) or 1
        workers = min(n_jobs or threads, len(cells))
        config = dict(backend="dask", n_jobs=workers, client=client)
    with parallel_config(**config):
        # batch_size=1: cells are coarse (seconds each), so batching only hurts load balance and the bar
        parallel = Parallel(return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")
        for index, result in parallel(tasks()):
            results[index] = result
            running.pop(index, None)
            if on_result is not None:
                on_result(index, cells[index], result)
            bar.update(1)
            bar.set_postfix_str(now(), refresh=False)

