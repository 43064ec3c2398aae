"""Time exact enumeration against a bare matmul of the same size, in one run.

Run:  .venv/bin/python benchmarks/bench_exact.py  [--latent 16 --n-data 200 --n-obs 64 --hidden 100]
      OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_exact.py     (both on one core)

Prints seconds, achieved GFLOP/s (decoder over all 2**K states + the N x L x 2**K likelihood
products) and the ratio to ``x @ A.T`` for x (N, L) and A (2**K, L), the unavoidable core of
the computation, with the same cores available to both (BLAS uses its default thread count,
exact uses as many threads as BLAS does). Then the other exact routines, as ratios to
``log_marginal``, and the serial path (``n_threads=1``) for comparison. Each time is the
minimum of ``--repeats`` runs, so a machine loaded by other work shows its quietest moment.
Goals (issue 11): log_marginal <= 3x the matmul; log_marginal_grad and elbo_grad <= 3x log_marginal.
"""
import argparse
import os
import time

import numpy as onp
from threadpoolctl import threadpool_info

import vi_lab
from vi_lab import exact


def best_of(fn, repeats):
    """Minimum wall time and minimum CPU time (all threads of this process) over ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return onp.array([min(wall), min(cpu)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--n-data", type=int, default=200)
    parser.add_argument("--n-obs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    K, N, L, H = args.latent, args.n_data, args.n_obs, args.hidden
    M = 2 ** K
    model = vi_lab.BernoulliLVM(K, L, hidden=(H,), activation=args.activation)
    params = model.init_params(0)
    x = vi_lab.data.from_model(model, params, N, rng=1)
    q_logits = onp.random.default_rng(2).standard_normal((N, K))
    blas = max([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] or [1])

    rng = onp.random.default_rng(0)
    a = rng.standard_normal((M, L))
    r, r2 = args.repeats, max(2, args.repeats // 2)
    # interleave the timings so that load from other processes hits all of them alike
    calls = {
        "matmul": lambda: x @ a.T,
        "lm": lambda: exact.log_marginal(model, params, x),
        "lm1": lambda: exact.log_marginal(model, params, x, n_threads=1),
        "grad": lambda: exact.log_marginal_grad(model, params, x),
        "elbo": lambda: exact.elbo(model, params, q_logits, x),
        "elbo_grad": lambda: exact.elbo_grad(model, params, q_logits, x),
        "marg": lambda: exact.posterior_marginals(model, params, x),
    }
    both = {name: onp.array([onp.inf, onp.inf]) for name in calls}
    for _ in range(r2):
        for name, call in calls.items():
            both[name] = onp.minimum(both[name], best_of(call, 2 if name in ("matmul", "lm") else 1))
    t = {name: value[0] for name, value in both.items()}
    cpu = {name: value[1] for name, value in both.items()}

    flops_lik = 2.0 * N * L * M
    flops_dec = 2.0 * M * (K * H + H * L)
    print(f"exact benchmark: K = {K} ({M:,} states), N = {N}, L = {L}, hidden = ({H},) {args.activation}, "
          f"float64, BLAS threads = {blas}, min of {r2} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"  bare matmul (N x L) @ (L x 2**K)   {t['matmul'] * 1e3:9.1f} ms  {flops_lik / t['matmul'] / 1e9:6.1f} GFLOP/s")
    print(f"  exact.log_marginal                 {t['lm'] * 1e3:9.1f} ms  "
          f"{(flops_lik + flops_dec) / t['lm'] / 1e9:6.1f} GFLOP/s (decoder + likelihood products)")
    print(f"  exact.log_marginal, n_threads=1    {t['lm1'] * 1e3:9.1f} ms  ({t['lm1'] / t['lm']:.2f}x the default)")
    print(f"  exact.log_marginal_grad            {t['grad'] * 1e3:9.1f} ms  ({t['grad'] / t['lm']:.2f}x log_marginal, goal <= 3x)")
    print(f"  exact.elbo                         {t['elbo'] * 1e3:9.1f} ms  ({t['elbo'] / t['lm']:.2f}x log_marginal)")
    print(f"  exact.elbo_grad                    {t['elbo_grad'] * 1e3:9.1f} ms  ({t['elbo_grad'] / t['lm']:.2f}x log_marginal, goal <= 3x)")
    print(f"  exact.posterior_marginals          {t['marg'] * 1e3:9.1f} ms  ({t['marg'] / t['lm']:.2f}x log_marginal)")
    print(f"  ratio log_marginal / bare matmul   {t['lm'] / t['matmul']:9.2f}x   (goal <= 3x)")
    print("  CPU time (all threads), robust to other jobs on the machine:")
    print(f"    log_marginal / bare matmul       {cpu['lm'] / cpu['matmul']:9.2f}x")
    print(f"    log_marginal_grad / log_marginal {cpu['grad'] / cpu['lm']:9.2f}x")
    print(f"    elbo_grad / log_marginal         {cpu['elbo_grad'] / cpu['lm']:9.2f}x")
    print(f"    log_marginal n_threads=1 / default {cpu['lm1'] / cpu['lm']:7.2f}x  (CPU spent; ~1 when the threads scale)")


if __name__ == "__main__":
    main()
