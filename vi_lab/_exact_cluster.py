"""Exact log p(x) with the state enumeration mapped over a Dask cluster.

What ``exact.log_marginal(model, params, x, scheduler=...)`` runs. The 2**K states are cut into
parts of ``_PART_STATES`` consecutive states (whole chunks, the very chunks one machine would
compute); each part is one Dask task returning, per datapoint, the maximum m and the sum
s = sum_z exp(log p(x, z) - m) over its states. The client combines the parts in state order with
the rescaling of a running logsumexp,

    m' = max(m, m_part),   s' = s exp(m - m') + s_part exp(m_part - m'),

so the answer is log p(x) = m + log s at any magnitude. The model, its parameters and x are sent
to every worker once; one pair of (N,) vectors per part comes back. The part boundaries do not
depend on the cluster, so every cluster gives the same bits; one machine's answer (which sums
the chunks in one running total) agrees to round-off.

Private: the public entry point is :func:`vi_lab.exact.log_marginal`.
"""
import numpy as onp

from ._enumeration import _announce, _row_blocks
from .parallel import connect_scheduler

#: Largest K accepted with a scheduler: 2**32 = 4.3e9 states (about 2.2 h of CPU per 100
#: datapoints at L = 64, hidden (100,): minutes on a few hundred cores; each further latent doubles it).
MAX_LATENT_CLUSTER = 32
#: States per task: about 2 s of work per 100 datapoints, coarse enough to hide the scheduler's
#: per-task overhead, fine enough to balance the load (a power of two, a multiple of every chunk).
_PART_STATES = 2 ** 20


def part(model, params, x, first, stop):
    """Worker side: (max, sum of exp(log p(x, z) - max)) per datapoint over the states [first, stop)."""
    from .exact import _running_logsumexp
    from .parallel import _one_blas_thread

    with _one_blas_thread():
        pieces = [_running_logsumexp(model, params, x[rows], 1, first, stop) for rows in _row_blocks(x.shape[0])]
    return onp.concatenate([m for m, _ in pieces]), onp.concatenate([s for _, s in pieces])


def combine(parts, n_rows):
    """log p(x) (N,) from the parts' (max, sum) pairs, taken in state order."""
    run_max, run_sum = onp.full(n_rows, -onp.inf), onp.zeros(n_rows)
    for part_max, part_sum in parts:
        new_max = onp.maximum(run_max, part_max)
        run_sum = run_sum * onp.exp(run_max - new_max) + part_sum * onp.exp(part_max - new_max)
        run_max = new_max
    return run_max + onp.log(run_sum)


def log_marginal(model, params, x, scheduler):
    """log p(x) (N,) for checked inputs, the parts computed on the cluster at ``scheduler``."""
    client, owned = connect_scheduler(scheduler)
    futures = []
    try:
        n_states = 2 ** model.n_latent
        step = min(_PART_STATES, n_states)
        bounds = [(first, min(first + step, n_states)) for first in range(0, n_states, step)]
        _announce("log_marginal", model, x.shape[0], None, cluster_threads=sum(client.nthreads().values()) or 1)
        model_f, params_f, x_f = (client.scatter(obj, broadcast=True) for obj in (model, params, x))
        futures = client.map(part, [model_f] * len(bounds), [params_f] * len(bounds), [x_f] * len(bounds),
                             [b[0] for b in bounds], [b[1] for b in bounds], pure=False)
        return combine(client.gather(futures), x.shape[0])
    finally:
        if futures:
            client.cancel(futures)                   # Ctrl-C or a failed part: stop the rest
        if owned:
            client.close()
