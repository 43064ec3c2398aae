"""What the experiment subcommands of ``vi-lab`` do once :mod:`vi_lab.cli` has parsed their options.

Each command checks everything that argparse cannot (estimator names against sample counts,
memory, the output directory, ``--from-run`` against the other options) before any computation,
runs the Python function of :mod:`vi_lab.experiments`, prints its tables and writes the run
directory. A mistake raises ValueError whose message starts with the option it is about; the
parser module prints it as one line (exit status 2). This module never imports :mod:`vi_lab.cli`.
"""
import os
import sys
import time

from .table import format_table

__all__ = ["run", "VARIANCE_COLUMNS"]

#: Columns of the variance table printed per checkpoint.
VARIANCE_COLUMNS = ["estimator", "S", "var_q", "var_model", "bias2_q", "bias2_q_se", "mse_q", "snr_q_global",
                    "evals", "var_q_x_cost"]

_OPTIONS = {"samples": "--samples", "reps": "--reps", "n_data": "--n-data"}


def run(args):
    """Run the parsed experiment subcommand ``args.command``; returns the exit status."""
    commands = {"variance": _variance, "train-compare": _train_compare, "tightness": _tightness,
                "compare": _compare}
    return commands[args.command](args)


# ---------------------------------------------------------------------------- checks
def _fail(option, message):
    raise ValueError(f"{option}: {message}")


def _check_estimators(names, samples, option="--samples"):
    from .specs import build
    if names is None:
        return
    for name in names:
        try:
            est = build(name)
        except ValueError as exc:
            message = str(exc)
            raise ValueError("--estimators: " + message.partition(": ")[2] if message.startswith("estimators: ")
                             else f"--estimators: {message}") from None
        if est.latent != "bernoulli":
            _fail("--estimators", f"{name!r} is for {est.latent} latents; these experiments use the Bernoulli model")
        low = [s for s in samples if s < est.min_samples]
        if low:
            _fail(option, f"estimator {name!r} needs S >= {est.min_samples}, got S = {', '.join(map(str, low))}; "
                          f"drop {name!r} or use S >= {est.min_samples}")


def _check_from_run(args, unused):
    """With --from-run, options that describe the model or its training must not be given."""
    if args.from_run is None:
        return None
    for option, value in unused:
        if value is not None:
            _fail(option, "not used with --from-run (the saved run's model and q are measured)")
    from .problem import load_run
    return load_run(args.from_run, "--from-run")


def _prepare_out(args):
    """--out must take a new run: checked (and a replaced run announced) before the computation."""
    from .results import check_out_dir
    if check_out_dir(args.out, "--out"):
        print(f"vi-lab {args.command}: {os.path.abspath(args.out)} holds a previous run; it is replaced when this "
              f"one is complete", file=sys.stderr)


def _model_and_data(args, run, latent):
    from .problem import load_data, make_model
    x_train, _ = load_data(args.data, latent if run is None else run.model.n_latent, args.seed)
    if run is not None:
        if x_train.shape[1] != run.model.n_obs:
            _fail("--from-run", f"the run's model has L = {run.model.n_obs} observations, --data {args.data} has "
                                f"L = {x_train.shape[1]}; pass the data set it was trained on")
        return run.model, x_train
    hidden = (32,) if args.hidden is None else tuple(args.hidden)
    return make_model(latent, x_train.shape[1], hidden, x_train.shape[0]), x_train


#: Below this many sampled decoder rows (R x S x N summed over cells) the cells run in this process:
#: starting worker processes (about 2 s) would cost more than it saves.
_PARALLEL_WORK = 2_000_000


def _auto_jobs(args):
    """--jobs not given: every core, unless the measurement is too small to pay for worker start-up."""
    n_data = getattr(args, "n_data", 30)
    work = args.reps * sum(args.samples) * n_data * len(args.estimators or range(12))
    return None if work >= _PARALLEL_WORK else 1


def _finish(args, results, started, jobs=1):
    # the figures are drawn on as many workers as the cells used (already started; a fresh pool
    # would cost more than the figures of a small run)
    writer = results.save(args.out, figures=not args.no_figures, name="--out", jobs=jobs or 1)
    print(f"\nwrote {len(writer.files)} files to {os.path.abspath(args.out)} in {time.perf_counter() - started:.1f} s "
          f"(config.json lists them)")
    return 0


# ---------------------------------------------------------------------------- commands
def _variance(args):
    from .compare import run_variance
    from .variance import _resolve, check_size, tau_estimators
    from .specs import build
    started = time.perf_counter()
    run = _check_from_run(args, [("--latent", args.latent), ("--hidden", args.hidden),
                                 ("--checkpoints", args.checkpoints)])
    latent = 10 if args.latent is None else args.latent
    _check_estimators(args.estimators, args.samples)
    model, x_train = _model_and_data(args, run, latent)
    n_data = min(args.n_data, x_train.shape[0])
    check_size(model, n_data, _resolve(args.estimators, args.samples), args.samples, args.reps, names=_OPTIONS)
    swept = tau_estimators(args.estimators) if args.taus else []
    _check_estimators(swept, [args.tau_samples], option="--tau-samples")
    check_size(model, n_data, [(s, s, build(s)) for s in swept], [args.tau_samples], args.reps,
               names={**_OPTIONS, "samples": "--tau-samples"})
    _prepare_out(args)
    from ..parallel import resolve_jobs
    jobs = resolve_jobs(args.jobs if args.jobs is not None else _auto_jobs(args))
    res = run_variance(latent=latent, data=args.data, hidden=(32,) if args.hidden is None else tuple(args.hidden),
                       n_data=args.n_data, estimators=args.estimators, samples=args.samples, reps=args.reps,
                       checkpoints=[200] if args.checkpoints is None else args.checkpoints, taus=args.taus,
                       tau_samples=args.tau_samples, warmup=args.warmup, model_grad=not args.no_model_grad,
                       seed=args.seed, progress=not args.quiet, jobs=jobs, from_run=run)
    if run is not None:
        res.config["from_run"] = os.path.abspath(args.from_run)
    table = res["variance"]
    for step in dict.fromkeys(table["checkpoint"]):
        sub = table[table["checkpoint"] == step]
        print(format_table(sub, VARIANCE_COLUMNS, title=f"Gradient of sum_n ELBO_n, model after {step} training "
                                                       f"steps (variances in nats^2)"))
        print()
    if "tau" in res:
        print(format_table(res["tau"], ["estimator", "tau", "S", "bias2_q", "bias2_q_se", "var_q", "mse_q",
                                        "mse_q_se"]))
    return _finish(args, res, started, jobs=jobs)


def _train_compare(args):
    from .train_compare import train_compare
    started = time.perf_counter()
    if getattr(args, "latent_type", "bernoulli") == "gaussian":
        return _gaussian_train_compare(args, started)
    _check_estimators(args.estimators, [args.samples])
    if args.bars_copies != 40 and args.data != "bars":
        _fail("--bars-copies", f"only the bars data set has noisy copies, not {args.data!r}")
    _prepare_out(args)
    res = train_compare(latent=8 if args.latent is None else args.latent, data=args.data,
                        hidden=(32,) if args.hidden is None else tuple(args.hidden), estimators=args.estimators,
                        methods=args.methods, steps=args.steps, n_samples=args.samples,
                        learning_rate=args.learning_rate, batch_size=args.batch_size,
                        record_every=args.record_every, encoder_hidden=tuple(args.encoder_hidden),
                        valid_fraction=args.valid_fraction,
                        bars_copies=args.bars_copies if args.data == "bars" else None, patience=args.patience,
                        seed=args.seed, progress=not args.quiet)
    print(format_table(res["summary"]))
    print(f"\n{res.config['overfitting_control']}")
    return _finish(args, res, started)


def _gaussian_train_compare(args, started):
    """``train-compare --latent-type gaussian``: :func:`vi_lab.experiments.gaussian.gaussian_train_compare`."""
    from .gaussian import gaussian_train_compare
    if args.bars_copies != 40:
        _fail("--bars-copies", "not used with --latent-type gaussian")
    _prepare_out(args)
    res = gaussian_train_compare(
        latent=args.latent, data=args.data, hidden=(32,) if args.hidden is None else tuple(args.hidden),
        estimators=args.estimators, methods=args.methods, steps=args.steps, n_samples=args.samples,
        learning_rate=args.learning_rate, batch_size=args.batch_size, record_every=args.record_every,
        encoder_hidden=tuple(args.encoder_hidden), valid_fraction=args.valid_fraction,
        patience=args.patience, seed=args.seed, progress=not args.quiet)
    print(format_table(res["summary"]))
    print(f"\n{res.config['overfitting_control']}")
    return _finish(args, res, started)


def _pivot(summary):
    """quantity x split table of 'mean ± se_data' strings, with the Monte Carlo se apart where there is one."""
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
                        "; ± standard error across datapoints, MC ± Monte Carlo standard error")


def _tightness(args):
    from .compare import run_tightness
    from .tightness import check_iwae_size
    started = time.perf_counter()
    run = _check_from_run(args, [("--latent", args.latent), ("--hidden", args.hidden),
                                 ("--train-steps", args.train_steps)])
    latent = 8 if args.latent is None else args.latent
    model, _ = _model_and_data(args, run, latent)
    check_iwae_size(model, args.ks, "--ks")
    _prepare_out(args)
    res = run_tightness(latent=latent, data=args.data, hidden=(32,) if args.hidden is None else tuple(args.hidden),
                        train_steps=300 if args.train_steps is None else args.train_steps, ks=args.ks,
                        iwae_reps=args.iwae_reps, sleep_steps=args.sleep_steps, seed=args.seed,
                        progress=not args.quiet, from_run=run)
    if run is not None:
        res.config["from_run"] = os.path.abspath(args.from_run)
    print(_pivot(res["tightness_summary"]))
    return _finish(args, res, started)


def _compare(args):
    from .compare import compare
    from .problem import make_model
    from .tightness import check_iwae_size
    from .variance import _resolve, check_size
    started = time.perf_counter()
    _check_estimators(args.estimators, args.samples)
    model = make_model(8, 16, (32,))
    check_size(model, 30, _resolve(args.estimators, args.samples), args.samples, args.reps, names=_OPTIONS)
    check_iwae_size(model, args.ks, "--ks")
    _prepare_out(args)
    from ..parallel import resolve_jobs
    jobs = resolve_jobs(args.jobs if args.jobs is not None else _auto_jobs(args))
    res = compare(seed=args.seed, samples=args.samples, reps=args.reps, estimators=args.estimators,
                  train_steps=args.train_steps, ks=args.ks, iwae_reps=args.iwae_reps, sleep_steps=args.sleep_steps,
                  progress=not args.quiet, jobs=jobs)
    print("vi-lab compare: K = 8 binary latents, 4x4 bars-and-stripes (120 training, 60 held-out images)\n")
    print(format_table(res["summary"]))
    print("  var_q: total variance of the q-gradient; var_q_x_cost: the same times decoder evaluations "
          "(lower is better at equal compute);\n  bias2_q: squared bias against the exact gradient "
          "(unbiased estimators: within a few bias2_q_se of 0); snr_q_global: ||mean|| / sqrt(var_q).\n")
    print(_pivot(res["tightness_summary"]))
    return _finish(args, res, started, jobs=jobs)
