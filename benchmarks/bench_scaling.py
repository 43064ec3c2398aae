"""How exact log p(x) scales with the number of binary latents K (issue 11, goal 6).

Run:  .venv/bin/python benchmarks/bench_scaling.py  [--ks 10 14 18 22 24 --n-data 100 --n-obs 64 --hidden 100]

For each K: the wall time of ``exact.log_marginal`` (minimum of a few runs for the small K, one
run for the large ones; all threads BLAS would use) and its peak memory (tracemalloc, a separate
run), then the time per state and per (state x datapoint). The largest K measured gives the
per-state cost, from which K = 28 and K = 32 (4.3e9 states) are projected: the work is exactly
linear in the number of states (the chunks are independent and all the same size), so the
projection is a multiplication, not a fit. The cluster line divides by the number of cores,
which is what mapping the chunks over workers would give (communication is one (N,) vector per
chunk). Prints a Markdown table ready for the README.
"""
import argparse
import os
import time
import tracemalloc

from threadpoolctl import threadpool_info

import vi_lab
from vi_lab import exact


def measure(model, params, x, repeats):
    """Minimum wall time and minimum CPU time (all threads of this process) over ``repeats`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        exact.log_marginal(model, params, x)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def peak_memory(model, params, x):
    tracemalloc.start()
    try:
        exact.log_marginal(model, params, x)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def human(seconds):
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.2f} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 14, 18, 22, 24])
    parser.add_argument("--n-data", type=int, default=100)
    parser.add_argument("--n-obs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--cluster-cores", type=int, default=1000,
                        help="cores of the hypothetical cluster in the projection (default 1000)")
    args = parser.parse_args(argv)
    N, L, H = args.n_data, args.n_obs, args.hidden
    blas = max([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] or [1])
    cores = len(os.sched_getaffinity(0))
    print(f"exact.log_marginal scaling: N = {N}, L = {L}, hidden = ({H},), float64, "
          f"{blas} BLAS/exact thread(s), {cores} cores, load average {os.getloadavg()[0]:.1f}")
    print()
    print("| K | states | wall time | CPU time | peak memory | CPU per state | CPU per state x datapoint |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    per_state = None
    for k in args.ks:
        model = vi_lab.BernoulliLVM(k, L, hidden=(H,))
        params = model.init_params(0)
        x = vi_lab.data.from_model(model, params, N, rng=1)
        n_states = 2 ** k
        wall, cpu = measure(model, params, x, repeats=5 if k <= 18 else 1)
        memory = peak_memory(model, params, x) if k <= 22 else None
        per_state = cpu / n_states
        memory_text = f"{memory / 2 ** 20:,.1f} MiB" if memory is not None else "(as K = 22)"
        print(f"| {k} | {n_states:,} | {human(wall)} | {human(cpu)} | {memory_text} | {per_state * 1e9:,.0f} ns | "
              f"{per_state / N * 1e9:,.1f} ns |", flush=True)
    k_max = args.ks[-1]
    # Projection from CPU time: on a machine to itself, wall time = CPU time / threads (the chunks
    # are independent); wall time on a loaded machine says more about the other jobs than about us.
    for k in (28, 32):
        cpu = per_state * 2 ** k
        print(f"| {k} (projected) | {2 ** k:,} | {human(cpu / blas)} | {human(cpu)} | same as K = {k_max} | | |")
    print()
    t32 = per_state * 2 ** 32
    print(f"K = 32 (4.3e9 terms per datapoint, N = {N}): {human(t32)} of CPU, {human(t32 / blas)} on this "
          f"machine's {blas} thread(s) when it is otherwise idle; on a cluster of {args.cluster_cores} such "
          f"cores about {human(t32 / args.cluster_cores)}.")


if __name__ == "__main__":
    main()
