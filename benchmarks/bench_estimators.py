"""Estimates per second of every gradient estimator, against one exact log p(x) of the same batch.

Run:  .venv/bin/python benchmarks/bench_estimators.py  [--latent 10 --n-obs 64 --n-data 100 --n-samples 10]

For each registered Bernoulli estimator (default options) it times one ELBO-level call
``est(model, params, q_logits, x, S, rng)`` (model and logits gradients, what training uses)
and the per-estimate time of the vectorized ``n_reps`` call with ``params_grad=False`` (what the
variance experiments use), and prints both as estimates per second and as multiples of one
``vi_lab.exact.log_marginal(model, params, x)`` on the same batch, timed in the same run. The
last column is the cost of the model gradient of all R replicates: the ``n_reps`` call with
``params_grad=True`` over the one with ``params_grad=False`` (issue 11 goal 3: a small constant,
not R reverse passes).
Times are CPU seconds of this process (robust to other jobs on the machine), best of a few
repeats. BLAS runs on ``--threads`` threads (default 1, set before numpy is imported): for
these small matrices a multi-threaded OpenBLAS on a loaded machine is 10-100x slower, and both
sides of the ratio use the same setting.
"""
import argparse
import os
import sys
import time


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy is imported)")
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--n-obs", type=int, default=64)
    parser.add_argument("--n-data", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--n-reps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as onp

    import vi_lab
    from vi_lab import estimators, exact

    K, L, N, S, H = args.latent, args.n_obs, args.n_data, args.n_samples, args.hidden
    model = vi_lab.BernoulliLVM(K, L, hidden=(H,))
    params = model.init_params(0)
    x = vi_lab.data.from_model(model, params, N, rng=1)
    q_logits = onp.random.default_rng(2).normal(size=(N, K))

    t_exact = best_of(lambda: exact.log_marginal(model, params, x), args.repeats)
    print(f"Gradient estimators: K = {K}, L = {L}, N = {N}, S = {S}, hidden = ({H},), float64, "
          f"BLAS threads = {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    print(f"one exact log p(x) of the batch (2**{K} states): {t_exact * 1e3:.2f} ms")
    print()
    header = (f"{'estimator':<18} {'evals/draw':>10} {'ms/estimate':>12} {'estimates/s':>12} "
              f"{'x exact':>8} {'logits-only ms':>15} {'x exact':>8} {'params/logits-only':>19}")
    print(header)
    print("-" * len(header))
    for name in estimators.names(latent="bernoulli"):
        est = estimators.get(name)
        est(model, params, q_logits, x, S, 0)              # warm-up (and NVIL's lazy init)
        seed = iter(range(10 ** 6))
        t_full = best_of(lambda: est(model, params, q_logits, x, S, next(seed)), args.repeats)
        t_reps = best_of(lambda: est(model, params, q_logits, x, S, next(seed), n_reps=args.n_reps,
                                     params_grad=False), max(1, args.repeats // 2)) / args.n_reps
        t_both = best_of(lambda: est(model, params, q_logits, x, S, next(seed), n_reps=args.n_reps,
                                     params_grad=True), max(1, args.repeats // 2)) / args.n_reps
        evals = est.cost(model)
        print(f"{name:<18} {evals:>10} {t_full * 1e3:>12.2f} {1 / t_full:>12.1f} {t_full / t_exact:>8.2f} "
              f"{t_reps * 1e3:>15.2f} {t_reps / t_exact:>8.2f} {t_both / t_reps:>18.2f}x")
    print()
    print("ms/estimate: one ELBO-level call with model and logits gradients (n_samples = S).")
    print(f"logits-only: per-estimate time of one call with n_reps = {args.n_reps}, params_grad = False.")
    print("x exact: time divided by one exact.log_marginal of the same batch.")
    print(f"params/logits-only: the n_reps = {args.n_reps} call with params_grad = True over the same call with "
          "params_grad = False.")


if __name__ == "__main__":
    main()
