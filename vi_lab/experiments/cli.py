"""The experiment subcommands of ``vi-lab``: variance, train-compare, tightness, compare.

Each parses its options, checks them before any computation (so a mistake costs no time and
gives one line on stderr with exit status 2, via :func:`vi_lab.cli.main`), runs the Python
function of :mod:`vi_lab.experiments`, prints a table and writes a run directory.
"""
import argparse
import os
import time

from .. import exact
from ..cli import UsageError
from .table import format_table

__all__ = ["add_subcommands"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" except where the default is None (the help text says what happens)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _add_common(p, command, seed_help="seed of everything random (data noise, initialization, sampling)"):
    p.add_argument("--out", default=os.path.join("results", command),
                   help="run directory for tables (CSV, JSON), figures (PNG, PDF), config.json and parameters")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--no-figures", action="store_true", help="write tables only, skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_model(p, latent, data="bars"):
    p.add_argument("--latent", type=int, default=latent, help=f"K, number of binary latents (at most {exact.MAX_LATENT})")
    p.add_argument("--data", default=data, choices=["bars", "digits", "model"],
                   help="bars-and-stripes 4x4 (embedded), binarized sklearn digits, or samples of a random model")
    p.add_argument("--hidden", type=int, nargs="*", default=[32], help="decoder hidden widths (none: linear)")


def add_subcommands(subparsers):
    """Register ``variance``, ``train-compare``, ``tightness`` and ``compare`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "variance", formatter_class=_Formatter,
        help="variance, bias, MSE, SNR and cost of gradient estimators against the exact gradient",
        description="Train a model briefly (exact ELBO ascent), then take R independent gradient estimates "
                    "with every estimator at every sample count S and compare them with the exact gradient "
                    "from enumeration. Also sweeps the temperature of the biased relaxed estimators.")
    p.add_argument("--estimators", nargs="+", default=None, metavar="NAME",
                   help="estimators to compare, e.g. arm rloo concrete:tau=0.5 "
                        "(default: every registered Bernoulli estimator plus rloo)")
    p.add_argument("--samples", type=int, nargs="+", default=[1, 3, 10, 30, 100], metavar="S",
                   help="sample counts S per estimate")
    p.add_argument("--reps", type=int, default=200, help="R, independent estimates per estimator and S")
    _add_model(p, latent=10)
    p.add_argument("--n-data", type=int, default=30, help="gradients are of the ELBO summed over this many datapoints")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[200], metavar="STEP",
                   help="training steps at which to measure (0 = untrained); variance changes as q sharpens")
    p.add_argument("--taus", type=float, nargs="*", default=[0.1, 0.2, 0.5, 1.0, 2.0], metavar="TAU",
                   help="temperatures of the bias-variance sweep of the biased relaxed estimators (none: skip)")
    p.add_argument("--tau-samples", type=int, default=10, help="S of the temperature sweep")
    p.add_argument("--warmup", type=int, default=50,
                   help="calls in which stateful estimators (nvil, relax) learn their baseline before measuring")
    p.add_argument("--no-model-grad", action="store_true", help="measure the q-gradient only (faster)")
    _add_common(p, "variance")
    p.set_defaults(func=run_variance_cmd)

    p = subparsers.add_parser(
        "train-compare", formatter_class=_Formatter,
        help="train the same model with each estimator and reference method; exact log p(x) curves",
        description="Train the same model from the same initialization with each estimator (amortized VI) and "
                    "the reference methods, with the same steps and samples, recording the exact log p(x) of "
                    "training and held-out data against steps and wall time.")
    p.add_argument("--estimators", nargs="*", default=None, metavar="NAME",
                   help="estimators to train with (default: every registered Bernoulli estimator except exact, "
                        "plus rloo; none: only the reference methods)")
    p.add_argument("--methods", nargs="*", default=["wake_sleep", "reweighted_wake_sleep", "exact_elbo", "exact_ml"],
                   metavar="METHOD", help="reference methods that need no estimator")
    p.add_argument("--steps", type=int, default=1000, help="training steps of every run")
    p.add_argument("--samples", type=int, default=2, help="S, samples per datapoint per step (k for IWAE methods)")
    p.add_argument("--learning-rate", type=float, default=0.01, help="Adam step size")
    p.add_argument("--batch-size", type=int, default=None, help="datapoints per step (default: all)")
    p.add_argument("--record-every", type=int, default=50, help="steps between exact log p(x) evaluations")
    _add_model(p, latent=8)
    _add_common(p, "train-compare", "seed of data, initialization (shared by all runs) and sampling")
    p.set_defaults(func=run_train_compare_cmd)

    p = subparsers.add_parser(
        "tightness", formatter_class=_Formatter,
        help="log p(x), ELBOs, approximation and amortization gaps, IWAE bounds against k",
        description="Train a model, then compare per datapoint the exact log p(x) with the ELBO of the amortized "
                    "q, of the best mean-field q (fit_local) and of a sleep-phase (wake-sleep) encoder, and with "
                    "IWAE bounds for several k.")
    _add_model(p, latent=8)
    p.add_argument("--train-steps", type=int, default=300, help="steps of exact ELBO ascent that train the model")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100, 1000], metavar="K",
                   help="importance samples k of the IWAE bounds")
    p.add_argument("--iwae-reps", type=int, default=8, help="IWAE draws per datapoint and k (for standard errors)")
    p.add_argument("--sleep-steps", type=int, default=1000, help="steps of the sleep-phase encoder (0: skip it)")
    _add_common(p, "tightness")
    p.set_defaults(func=run_tightness_cmd)

    p = subparsers.add_parser(
        "compare", formatter_class=_Formatter,
        help="the main job: small variance and tightness study on the embedded default data (< 2 min)",
        description="On the embedded bars-and-stripes data with K = 8: compare every gradient estimator against "
                    "the exact gradient (variance, bias, SNR, cost) and measure how tight the ELBO and IWAE "
                    "bounds are. Prints a summary and writes tables and figures.")
    p.add_argument("--samples", type=int, nargs="+", default=[1, 10, 100], metavar="S", help="sample counts S")
    p.add_argument("--reps", type=int, default=100, help="R, independent estimates per estimator and S")
    p.add_argument("--estimators", nargs="+", default=None, metavar="NAME",
                   help="estimators to compare (default: every registered Bernoulli estimator plus rloo)")
    p.add_argument("--train-steps", type=int, default=300, help="steps of exact ELBO ascent that train the model")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 10, 100, 1000], metavar="K",
                   help="importance samples k of the IWAE bounds")
    p.add_argument("--iwae-reps", type=int, default=8, help="IWAE draws per datapoint and k (for standard errors)")
    p.add_argument("--sleep-steps", type=int, default=1000, help="steps of the sleep-phase encoder (0: skip it)")
    _add_common(p, "compare")
    p.set_defaults(func=run_compare_cmd)


# ---------------------------------------------------------------------------- checks
def _usage(option, exc):
    """Re-label a ValueError from the Python API with the command-line option that caused it."""
    message = str(exc)
    head, sep, rest = message.partition(": ")
    if sep and " " not in head:
        message = rest
    return UsageError(f"{option}: {message}")


def _check_latent(latent):
    if latent < 1:
        raise UsageError(f"--latent: expected K >= 1, got {latent}")
    if latent > exact.MAX_LATENT:
        raise UsageError(f"--latent: K = {latent} means enumerating 2**{latent} = {2 ** latent:,} latent states "
                         f"for every exact quantity; the experiments support K <= {exact.MAX_LATENT} "
                         f"(K <= 12 runs in seconds)")


def _check_positive(option, values, minimum=1):
    for v in (values if isinstance(values, (list, tuple)) else [values]):
        if v < minimum:
            raise UsageError(f"{option}: expected values >= {minimum}, got {v}")


def _check_estimators(names, samples, option="--samples"):
    from .specs import build
    if names is None:
        return
    for name in names:
        try:
            est = build(name)
        except ValueError as exc:
            raise _usage("--estimators", exc) from None
        if est.latent != "bernoulli":
            raise UsageError(f"--estimators: {name!r} is for {est.latent} latents; these experiments use the "
                             f"Bernoulli model")
        low = [s for s in samples if s < est.min_samples]
        if low:
            raise UsageError(f"{option}: estimator {name!r} needs S >= {est.min_samples}, got S = "
                             f"{', '.join(map(str, low))}; drop {name!r} or use S >= {est.min_samples}")


def _one_blas_thread():
    """Limit BLAS to one thread while an experiment runs, if threadpoolctl is available.

    The arrays here are small (at most a few thousand rows of width <= 64): a multi-threaded BLAS
    spends more time synchronizing than computing, and on a shared 2-core machine the default
    threading made the variance experiment three times slower (benchmarks/bench_experiments.py).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                      # optional: without it BLAS keeps its default threads
        from contextlib import nullcontext
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _prepare_out(args):
    from .results import check_writable_dir
    try:
        check_writable_dir(args.out, "--out")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _finish(args, results, started):
    writer = results.save(args.out, figures=not args.no_figures, name="--out")
    print(f"\nwrote {len(writer.files)} files to {os.path.abspath(args.out)} in {time.perf_counter() - started:.1f} s "
          f"(config.json lists them)")
    return 0


# ---------------------------------------------------------------------------- commands
_VARIANCE_COLUMNS = ["estimator", "S", "var_q", "var_model", "bias2_q", "bias2_q_se", "mse_q", "snr_q_global",
                     "evals", "var_q_x_cost"]


def run_variance_cmd(args):
    """``vi-lab variance``: check the options, run :func:`~vi_lab.experiments.run_variance`, print, save."""
    from .compare import run_variance
    started = time.perf_counter()
    _check_latent(args.latent)
    _check_positive("--samples", args.samples)
    _check_positive("--reps", args.reps, 2)
    _check_positive("--n-data", args.n_data)
    _check_positive("--checkpoints", args.checkpoints, 0)
    _check_positive("--tau-samples", args.tau_samples)
    _check_positive("--warmup", args.warmup, 0)
    for tau in args.taus:
        if not tau > 0:
            raise UsageError(f"--taus: expected temperatures > 0, got {tau}")
    _check_estimators(args.estimators, args.samples)
    _prepare_out(args)
    with _one_blas_thread():
        res = run_variance(latent=args.latent, data=args.data, hidden=tuple(args.hidden), n_data=args.n_data,
                           estimators=args.estimators, samples=args.samples, reps=args.reps,
                           checkpoints=args.checkpoints, taus=args.taus, tau_samples=args.tau_samples,
                           warmup=args.warmup, model_grad=not args.no_model_grad, seed=args.seed,
                           progress=not args.quiet)
    table = res["variance"]
    for step in dict.fromkeys(table["checkpoint"]):
        sub = table[table["checkpoint"] == step]
        print(format_table(sub, _VARIANCE_COLUMNS, title=f"Gradient of sum_n ELBO_n, model after {step} training "
                                                        f"steps (variances in nats^2)"))
        print()
    if "tau" in res:
        print(format_table(res["tau"], ["estimator", "tau", "S", "bias2_q", "bias2_q_se", "var_q", "mse_q",
                                        "mse_q_se"]))
    return _finish(args, res, started)


def run_train_compare_cmd(args):
    """``vi-lab train-compare``: check, run :func:`~vi_lab.experiments.train_compare`, print, save."""
    from .train_compare import train_compare
    started = time.perf_counter()
    _check_latent(args.latent)
    _check_positive("--steps", args.steps)
    _check_positive("--samples", args.samples)
    if not args.learning_rate > 0:
        raise UsageError(f"--learning-rate: expected a positive step size, got {args.learning_rate}")
    _check_positive("--record-every", args.record_every)
    if args.batch_size is not None:
        _check_positive("--batch-size", args.batch_size)
    _check_estimators(args.estimators, [args.samples])
    _prepare_out(args)
    try:
        with _one_blas_thread():
            res = train_compare(latent=args.latent, data=args.data, hidden=tuple(args.hidden),
                                estimators=args.estimators, methods=args.methods, steps=args.steps,
                                n_samples=args.samples, learning_rate=args.learning_rate, batch_size=args.batch_size,
                                record_every=args.record_every, seed=args.seed, progress=not args.quiet)
    except ValueError as exc:
        if str(exc).startswith("methods:"):
            raise _usage("--methods", exc) from None
        raise
    print(format_table(res["summary"]))
    return _finish(args, res, started)


def _pivot(summary):
    """quantity x split table of 'mean ± se_data' strings for the terminal, with the Monte Carlo se apart."""
    import pandas as pd
    splits = list(dict.fromkeys(summary["split"]))
    rows = []
    for q in dict.fromkeys(summary["quantity"]):
        row = {"quantity [nats]": q}
        for s in splits:
            match = summary[(summary["quantity"] == q) & (summary["split"] == s)]
            if len(match):
                m = match.iloc[0]
                row[s] = f"{m['mean']:.4f} ± {m['se_data']:.4f}"
                if m["se_mc"] > 0:
                    row[s] += f" (MC ± {m['se_mc']:.4f})"
        rows.append(row)
    return format_table(pd.DataFrame(rows), title=summary.attrs.get("title", "") +
                        " (± se across datapoints; MC: Monte Carlo se)")


def run_tightness_cmd(args):
    """``vi-lab tightness``: check, run :func:`~vi_lab.experiments.run_tightness`, print, save."""
    from .compare import run_tightness
    started = time.perf_counter()
    _check_latent(args.latent)
    _check_positive("--train-steps", args.train_steps, 0)
    _check_positive("--ks", args.ks)
    _check_positive("--iwae-reps", args.iwae_reps, 2)
    _check_positive("--sleep-steps", args.sleep_steps, 0)
    _prepare_out(args)
    with _one_blas_thread():
        res = run_tightness(latent=args.latent, data=args.data, hidden=tuple(args.hidden),
                            train_steps=args.train_steps, ks=args.ks, iwae_reps=args.iwae_reps,
                            sleep_steps=args.sleep_steps, seed=args.seed, progress=not args.quiet)
    print(_pivot(res["tightness_summary"]))
    return _finish(args, res, started)


def run_compare_cmd(args):
    """``vi-lab compare`` (the main job): check, run :func:`~vi_lab.experiments.compare`, print, save."""
    from .compare import compare
    started = time.perf_counter()
    _check_positive("--samples", args.samples)
    _check_positive("--reps", args.reps, 2)
    _check_positive("--train-steps", args.train_steps, 0)
    _check_positive("--ks", args.ks)
    _check_positive("--iwae-reps", args.iwae_reps, 2)
    _check_positive("--sleep-steps", args.sleep_steps, 0)
    _check_estimators(args.estimators, args.samples)
    _prepare_out(args)
    with _one_blas_thread():
        res = compare(seed=args.seed, samples=args.samples, reps=args.reps, estimators=args.estimators,
                      train_steps=args.train_steps, ks=args.ks, iwae_reps=args.iwae_reps,
                      sleep_steps=args.sleep_steps, progress=not args.quiet)
    print("vi-lab compare: K = 8 binary latents, 4x4 bars-and-stripes (120 training, 60 held-out images)\n")
    print(format_table(res["summary"]))
    print("  var_q: total variance of the q-gradient; var_q_x_cost: the same times decoder evaluations "
          "(lower is better at equal compute);\n  bias2_q: squared bias against the exact gradient "
          "(unbiased estimators: within a few bias2_q_se of 0); snr_q_global: ||mean|| / sqrt(var_q).\n")
    print(_pivot(res["tightness_summary"]))
    return _finish(args, res, started)
