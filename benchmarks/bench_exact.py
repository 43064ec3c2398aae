"""Time exact log p(x) by enumeration against a bare matmul of the same size, in one run.

Run:  .venv/bin/python benchmarks/bench_exact.py  [--latent 16 --n-data 200 --n-obs 64 --hidden 100]

Prints seconds, achieved GFLOP/s (decoder over all 2**K states + the N x L x 2**K likelihood
products) and the ratio to ``x @ A.T`` for x (N, L) and A (2**K, L), the unavoidable core of
the computation. Also times the exact gradient ``log_marginal_grad``.
"""
import argparse
import time

import numpy as onp

import vi_lab
from vi_lab import exact


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--n-data", type=int, default=200)
    parser.add_argument("--n-obs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    K, N, L, H = args.latent, args.n_data, args.n_obs, args.hidden
    M = 2 ** K
    model = vi_lab.BernoulliLVM(K, L, hidden=(H,))
    params = model.init_params(0)
    x = vi_lab.data.from_model(model, params, N, rng=1)

    rng = onp.random.default_rng(0)
    a = rng.standard_normal((M, L))
    t_matmul = best_of(lambda: x @ a.T, args.repeats)
    t_exact = best_of(lambda: exact.log_marginal(model, params, x), args.repeats)
    t_grad = best_of(lambda: exact.log_marginal_grad(model, params, x), max(1, args.repeats // 2))

    flops_lik = 2.0 * N * L * M
    flops_dec = 2.0 * M * (K * H + H * L)
    print(f"exact.log_marginal benchmark: K = {K} ({M:,} states), N = {N}, L = {L}, hidden = ({H},), float64")
    print(f"  bare matmul (N x L) @ (L x 2**K)   {t_matmul * 1e3:9.1f} ms  {flops_lik / t_matmul / 1e9:6.1f} GFLOP/s")
    print(f"  exact.log_marginal                 {t_exact * 1e3:9.1f} ms  "
          f"{(flops_lik + flops_dec) / t_exact / 1e9:6.1f} GFLOP/s (decoder + likelihood products)")
    print(f"  exact.log_marginal_grad            {t_grad * 1e3:9.1f} ms  ({t_grad / t_exact:.1f}x log_marginal)")
    print(f"  ratio log_marginal / bare matmul   {t_exact / t_matmul:9.2f}x   (target <= 4x)")


if __name__ == "__main__":
    main()
