"""The ``vi-lab`` command line: the one parser of every subcommand, and its one error path.

Layers point one way: this module builds the parser and calls down into
:mod:`vi_lab.experiments.commands` (which runs the experiments), :mod:`vi_lab.exact` and
:mod:`vi_lab.study.cli`; nothing below imports it. Every user mistake (a bad value, an unknown
name, an impossible size, an unwritable ``--out``) is one line on stderr naming the option, exit
status 2, before any work starts; Ctrl-C at any point is one line and exit status 130.

Nothing heavy is imported at module level, so that parsing, ``--help`` and mistakes are quick and
an interrupt during start-up is caught like any other.
"""
import argparse
import importlib
import math
import os
import re
import signal
import sys
import threading

__all__ = ["main", "build_parser", "UsageError", "load_data"]

#: K beyond which exact enumeration is refused (mirrors vi_lab.exact.MAX_LATENT without importing it).
_MAX_LATENT_FALLBACK = 24


#: Re-delivering an interrupt that lands in importlib needs an interval timer (not on Windows).
_DEFER = hasattr(signal, "setitimer")


def _stop_redelivery():
    if _DEFER and _main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def _swallowed_here(frame):
    """Whether an exception raised in ``frame`` would be printed as 'Exception ignored' and dropped.

    Python runs weakref callbacks and ``__del__`` methods wherever garbage collection happens
    to run, and reports what they raise as unraisable instead of propagating it; importlib's
    frozen bookkeeping is such a callback too.
    """
    if frame is None:
        return False
    code = frame.f_code
    return (code.co_name == "__del__" or code.co_filename.endswith(("weakref.py", "_weakrefset.py"))
            or code.co_filename.startswith("<frozen importlib"))


class UsageError(ValueError):
    """A user mistake found by the command line itself (printed as one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (``vi-lab CMD: error: ...``), not usage plus an error."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" except where the default is None or False (the help text says what happens)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------- option types
def _int(minimum, maximum=None, what="an integer"):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what} >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected {what} <= {maximum}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def _latent(text):
    maximum = _max_latent()
    value = _int(1, what="K")(text)
    if value > maximum:
        raise argparse.ArgumentTypeError(
            f"K = {value} means enumerating 2**{value} = {2 ** value:,} latent states for every exact quantity; "
            f"vi-lab supports K <= {maximum} (K <= 12 runs in seconds)")
    return value


def _max_latent():
    try:
        from .exact import MAX_LATENT
    except ImportError:                       # only while vi_lab itself is broken
        return _MAX_LATENT_FALLBACK
    return MAX_LATENT


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


# ---------------------------------------------------------------------------- subcommands
def _add_common(p, command, seed_help="seed of everything random (data noise, initialization, sampling)",
                jobs=False):
    p.add_argument("--out", default=os.path.join("results", command),
                   help="run directory for tables (CSV, JSON), figures (PNG, PDF), config.json and parameters; "
                        "a previous vi-lab run there is replaced when the new one is complete")
    p.add_argument("--seed", type=_int(0), default=0, help=seed_help)
    p.add_argument("--no-figures", action="store_true", help="write tables only, skip the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if jobs:
        p.add_argument("--jobs", type=_int(1), default=None,
                       help="processes for the measurement cells (default: every core, or 1 when the run is too "
                            "small to pay for starting workers); the numbers do not depend on it")


def _add_model(p, latent, data="bars", from_run=False):
    suffix = " (default: the run's with --from-run)" if from_run else ""
    p.add_argument("--latent", type=_latent, default=None,
                   help=f"K, number of binary latents (default: {latent}){suffix}")
    p.add_argument("--data", default=data, choices=["bars", "digits", "model"],
                   help="bars-and-stripes 4x4 (embedded), binarized sklearn digits, or samples of a random model")
    p.add_argument("--hidden", type=_int(1, what="a layer width"), nargs="*", default=None,
                   help=f"decoder hidden widths, none for a linear decoder (default: 32){suffix}")


def _add_from_run(p):
    p.add_argument("--from-run", default=None, metavar="RUN",
                   help="measure a saved run instead of training: a FitResult path stem (run for run.npz + "
                        "run.json) or a directory holding run.npz and run.json (a study cell); --data and "
                        "--seed must give the data it was trained on")


def _add_exact(subparsers):
    p = subparsers.add_parser(
        "exact", formatter_class=_Formatter,
        help="exact log p(x) and posterior summary by enumerating all 2**K states",
        description="Compute exact log p(x) for every datapoint of a data set under an untrained "
                    "or saved model by enumerating all 2**K latent states, and print a summary table.")
    _add_model(p, latent=8, from_run=True)
    p.add_argument("--n-data", type=_int(1, what="a number of datapoints"), default=None,
                   help="use only the first N datapoints (default: all)")
    p.add_argument("--seed", type=_int(0), default=0, help="seed for data noise and model initialization")
    _add_from_run(p)
    p.set_defaults(command_module="exact")


def _add_variance(subparsers):
    p = subparsers.add_parser(
        "variance", formatter_class=_Formatter,
        help="variance, bias, MSE, SNR and cost of gradient estimators against the exact gradient",
        description="Train a model briefly (exact ELBO ascent), then take R independent gradient estimates "
                    "with every estimator at every sample count S and compare them with the exact gradient "
                    "from enumeration. Also sweeps the temperature of the biased relaxed estimators.")
    p.add_argument("--estimators", nargs="+", default=None, metavar="NAME",
                   help="estimators to compare, e.g. arm rloo concrete:tau=0.5 "
                        "(default: every registered Bernoulli estimator plus rloo)")
    p.add_argument("--samples", type=_int(1, what="a sample count S"), nargs="+", default=[1, 3, 10, 30, 100],
                   metavar="S", help="sample counts S per estimate")
    p.add_argument("--reps", type=_int(2, what="a number of estimates R"), default=200,
                   help="R, independent estimates per estimator and S")
    _add_model(p, latent=10, from_run=True)
    p.add_argument("--n-data", type=_int(1, what="a number of datapoints"), default=30,
                   help="gradients are of the ELBO summed over this many datapoints")
    p.add_argument("--checkpoints", type=_int(0, what="a training step"), nargs="+", default=None, metavar="STEP",
                   help="training steps at which to measure, 0 = untrained (default: 200); variance changes as "
                        "q sharpens")
    p.add_argument("--taus", type=_positive_float, nargs="*", default=[0.1, 0.2, 0.5, 1.0, 2.0], metavar="TAU",
                   help="temperatures of the bias-variance sweep of the biased relaxed estimators (none: skip)")
    p.add_argument("--tau-samples", type=_int(1, what="a sample count S"), default=10,
                   help="S of the temperature sweep")
    p.add_argument("--warmup", type=_int(0, what="a number of calls"), default=50,
                   help="calls in which stateful estimators (nvil, relax) learn their baseline before measuring")
    p.add_argument("--no-model-grad", action="store_true", help="measure the q-gradient only (faster)")
    _add_from_run(p)
    _add_common(p, "variance", jobs=True)
    p.set_defaults(command_module="experiments")


def _add_train_compare(subparsers):
    p = subparsers.add_parser(
        "train-compare", formatter_class=_Formatter,
        help="train the same model with each estimator and reference method; exact log p(x) curves",
        description="Train the same model from the same initialization with each estimator (amortized VI) and "
                    "the reference methods, with the same steps and samples, recording the exact log p(x) of "
                    "training and held-out data against steps, decoder evaluations and wall time. By default "
                    "the training set is large (40 noisy copies of each bars pattern) and every run stops "
                    "early when held-out log p(x) stops improving, so that the comparison is about "
                    "optimization, not overfitting.")
    p.add_argument("--estimators", nargs="*", default=None, metavar="NAME",
                   help="estimators to train with (default: every registered Bernoulli estimator except exact, "
                        "plus rloo; none: only the reference methods)")
    p.add_argument("--methods", nargs="*", default=None, metavar="METHOD",
                   help="reference methods that need no estimator (default: wake_sleep reweighted_wake_sleep "
                        "exact_elbo exact_ml; with --latent-type gaussian: wake_sleep reweighted_wake_sleep)")
    p.add_argument("--latent-type", choices=["bernoulli", "gaussian"], default="bernoulli",
                   help="bernoulli: the 2**K-state model (enumeration); gaussian: the VAE with K <= 2 real latents, "
                        "exact log p(x) by quadrature (default K = 2)")
    p.add_argument("--steps", type=_int(1, what="a number of steps"), default=1000, help="training steps of every run")
    p.add_argument("--samples", type=_int(1, what="a sample count S"), default=2,
                   help="S, samples per datapoint per step (k for IWAE methods)")
    p.add_argument("--learning-rate", type=_positive_float, default=0.01, help="Adam step size")
    p.add_argument("--batch-size", type=_int(1, what="a batch size"), default=100,
                   help="datapoints per step (all of them if larger than the training set)")
    p.add_argument("--record-every", type=_int(1, what="a number of steps"), default=50,
                   help="steps between exact log p(x) evaluations")
    p.add_argument("--encoder-hidden", type=_int(1, what="a layer width"), nargs="*", default=[64],
                   help="hidden widths of the amortized encoder (none: linear)")
    p.add_argument("--valid-fraction", type=_fraction, default=None,
                   help="held-out fraction of the data (default: 1/3 for bars, 0.2 for digits, 0.25 for model)")
    p.add_argument("--bars-copies", type=_int(1, what="a number of copies"), default=40,
                   help="bars only: noisy copies of each of the 30 patterns (6 is the small default data set)")
    p.add_argument("--patience", type=_int(0, what="a number of records"), default=5,
                   help="stop a run when held-out log p(x) has not improved for this many records "
                        "(0: never stop early)")
    _add_model(p, latent=8)
    _add_common(p, "train-compare", "seed of data, initialization (shared by all runs) and sampling")
    p.set_defaults(command_module="experiments")


def _add_tightness(subparsers):
    p = subparsers.add_parser(
        "tightness", formatter_class=_Formatter,
        help="log p(x), ELBOs, approximation and amortization gaps, IWAE bounds against k",
        description="Train a model, then compare per datapoint the exact log p(x) with the ELBO of the amortized "
                    "q, of the best mean-field q (fit_local) and of a sleep-phase (wake-sleep) encoder, and with "
                    "IWAE bounds for several k.")
    _add_model(p, latent=8, from_run=True)
    p.add_argument("--train-steps", type=_int(0, what="a number of steps"), default=None,
                   help="steps of exact ELBO ascent that train the model (default: 300)")
    p.add_argument("--ks", type=_int(1, what="a number of samples k"), nargs="+", default=[1, 10, 100, 1000],
                   metavar="K", help="importance samples k of the IWAE bounds")
    p.add_argument("--iwae-reps", type=_int(2, what="a number of draws"), default=8,
                   help="IWAE draws per datapoint and k (for standard errors)")
    p.add_argument("--sleep-steps", type=_int(0, what="a number of steps"), default=1000,
                   help="steps of the sleep-phase encoder (0: skip it)")
    _add_from_run(p)
    _add_common(p, "tightness")
    p.set_defaults(command_module="experiments")


def _add_compare(subparsers):
    p = subparsers.add_parser(
        "compare", formatter_class=_Formatter,
        help="the main job: small variance and tightness study on the embedded default data (< 2 min)",
        description="On the embedded bars-and-stripes data with K = 8: compare every gradient estimator against "
                    "the exact gradient (variance, bias, SNR, cost) and measure how tight the ELBO and IWAE "
                    "bounds are. Prints a summary and writes tables and figures.")
    p.add_argument("--samples", type=_int(1, what="a sample count S"), nargs="+", default=[1, 10, 100],
                   metavar="S", help="sample counts S")
    p.add_argument("--reps", type=_int(2, what="a number of estimates R"), default=100,
                   help="R, independent estimates per estimator and S")
    p.add_argument("--estimators", nargs="+", default=None, metavar="NAME",
                   help="estimators to compare (default: every registered Bernoulli estimator plus rloo)")
    p.add_argument("--train-steps", type=_int(0, what="a number of steps"), default=300,
                   help="steps of exact ELBO ascent that train the model")
    p.add_argument("--ks", type=_int(1, what="a number of samples k"), nargs="+", default=[1, 10, 100, 1000],
                   metavar="K", help="importance samples k of the IWAE bounds")
    p.add_argument("--iwae-reps", type=_int(2, what="a number of draws"), default=8,
                   help="IWAE draws per datapoint and k (for standard errors)")
    p.add_argument("--sleep-steps", type=_int(0, what="a number of steps"), default=1000,
                   help="steps of the sleep-phase encoder (0: skip it)")
    _add_common(p, "compare", jobs=True)
    p.set_defaults(command_module="experiments")


def _add_study(subparsers, configure):
    p = subparsers.add_parser(
        "study", formatter_class=_Formatter, add_help=configure,
        help="a multi-seed, equal-compute study from a TOML file, cells over every core or a Dask cluster",
        description="Run a declarative study grid (vi_lab.study) cell by cell and aggregate it.")
    p.set_defaults(command_module="study")
    if not configure:
        # --help included: the module that defines the options is only imported when `study` is run
        p.add_argument("study_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    try:
        # import_module consults sys.modules, so a missing or blocked vi_lab.study.cli is seen
        # even when the package vi_lab.study already holds the attribute from an earlier import
        study_cli = importlib.import_module("vi_lab.study.cli")
    except ImportError as exc:
        if getattr(exc, "name", "") not in ("vi_lab.study", "vi_lab.study.cli"):
            raise
        p.add_argument("study_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(study_missing=str(exc))
        return
    study_cli.configure(p)
    p.set_defaults(study_run=study_cli.run)


def build_parser(command=None):
    """The argparse parser with every subcommand registered.

    Parameters
    ----------
    command : str, optional
        The subcommand about to run. ``"study"`` imports :mod:`vi_lab.study.cli` to register its
        options; for any other value the study subcommand is listed but not configured.
    """
    from . import __version__
    parser = _Parser(prog="vi-lab", description="Variational inference on Bernoulli latent-variable models, "
                                                "measured against exact enumeration.")
    parser.add_argument("--version", action="version", version=f"vi-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_exact(subparsers)
    _add_variance(subparsers)
    _add_train_compare(subparsers)
    _add_tightness(subparsers)
    _add_compare(subparsers)
    _add_study(subparsers, configure=(command == "study"))
    return parser


# ---------------------------------------------------------------------------- exact
def load_data(name, n_data=None, seed=0, n_latent=8):
    """Data for ``vi-lab exact`` by name: 'bars', 'digits' or 'model'. Returns x of shape (N, L)."""
    import numpy as onp
    from . import data
    from .model import BernoulliLVM

    if name == "bars":
        x = onp.concatenate(data.default(seed)[2:])
    elif name == "digits":
        x = data.digits()
    elif name == "model":
        truth = BernoulliLVM(n_latent, 16, hidden=(32,))
        x = data.from_model(truth, truth.init_params(seed + 1, scale=3.0), 200, seed)
    else:
        raise UsageError(f"--data: unknown data set {name!r}; expected bars, digits or model")
    if n_data is not None:
        if n_data < 1:
            raise UsageError(f"--n-data: expected a positive number of datapoints, got {n_data}")
        x = x[:n_data]
    return x


def run_exact(args):
    """``vi-lab exact``: log p(x) and posterior marginals of an untrained (or saved, --from-run) model."""
    import time
    from . import exact
    from .model import BernoulliLVM

    if args.from_run is not None:
        from .experiments.problem import load_run
        for option, value in (("--latent", args.latent), ("--hidden", args.hidden)):
            if value is not None:
                raise UsageError(f"{option}: not used with --from-run (the saved run's model is measured)")
        run = load_run(args.from_run, "--from-run")
        model, params = run.model, run.params
        label = f"saved run {args.from_run} ({run.method}, {run.config.get('steps_done', '?')} steps)"
    else:
        latent = 8 if args.latent is None else args.latent
        hidden = (32,) if args.hidden is None else tuple(args.hidden)
        model, params, label = None, None, "untrained model"
    x = load_data(args.data, args.n_data, args.seed, model.n_latent if model is not None else latent)
    if model is None:
        model = BernoulliLVM(latent, x.shape[1], hidden=hidden)
        params = model.init_params(args.seed)
    elif x.shape[1] != model.n_obs:
        raise UsageError(f"--from-run: the run's model has L = {model.n_obs} observations, --data {args.data} has "
                         f"L = {x.shape[1]}; pass the data set it was trained on")
    exact.check_enumerable(model.n_latent, x.shape[0], x.shape[1])
    start = time.perf_counter()
    log_px = exact.log_marginal(model, params, x)
    elapsed = time.perf_counter() - start
    marg = exact.posterior_marginals(model, params, x)
    rows = [
        ("model", repr(model)),
        ("data", f"{args.data}: N = {x.shape[0]}, L = {x.shape[1]}"),
        ("latent states 2**K", f"{2 ** model.n_latent:,}"),
        ("mean log p(x) [nats]", f"{log_px.mean():.4f}"),
        ("min / max log p(x)", f"{log_px.min():.4f} / {log_px.max():.4f}"),
        ("mean p(z_k=1|x)", f"{marg.mean():.4f}"),
        ("seconds for log p(x)", f"{elapsed:.4f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"Exact inference by enumeration ({label})")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


def run_study(args):
    """``vi-lab study``: hand over to :func:`vi_lab.study.cli.run`."""
    if getattr(args, "study_missing", None) is not None or getattr(args, "study_run", None) is None:
        raise UsageError("the study subcommand is not available in this installation "
                         f"(vi_lab.study.cli is missing: {getattr(args, 'study_missing', 'not configured')})")
    return args.study_run(args)


# ---------------------------------------------------------------------------- errors
#: Python argument names that appear in API error messages, and the option a user typed instead.
_ALIASES = {"rng": "--seed", "seed": "--seed", "n_latent": "--latent", "latent": "--latent", "hidden": "--hidden",
            "n_samples": "--samples", "samples": "--samples", "reps": "--reps", "n_reps": "--reps",
            "from_run": "--from-run", "out": "--out", "jobs": "--jobs", "n_data": "--n-data", "x": "--data",
            "data": "--data", "bars_copies": "--bars-copies", "valid_fraction": "--valid-fraction",
            "encoder_hidden": "--encoder-hidden"}


def _option_names(parser, command):
    """Python name -> option of ``command`` (every ``--some-option`` as ``some_option``), with aliases."""
    names = {}
    for action in parser._subparsers._group_actions[0].choices.get(command, parser)._actions:
        for option in action.option_strings:
            if option.startswith("--"):
                names[option[2:].replace("-", "_")] = option
    names.update({k: v for k, v in _ALIASES.items() if v in names.values()})
    return names


def relabel(message, names):
    """Rewrite an API error ("reps: ... lower reps") in the options of the command ("--reps: ... lower --reps")."""
    head, sep, rest = message.partition(": ")
    key = head.split(" (")[0].strip()
    if sep and key in names:
        message = f"{names[key]}: {rest}"
    elif sep and key.startswith("--"):
        pass
    return re.sub(r"\b(lower|raise|drop|or) ([a-z_]+)\b",
                  lambda m: f"{m.group(1)} {names.get(m.group(2), m.group(2))}", message)


def _one_line(text):
    return " ".join(str(text).split())


def main(argv=None):
    """Entry point of the ``vi-lab`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    prog = "vi-lab" if command is None else f"vi-lab {command}"
    parser = None
    interrupted = []
    starting = [True]

    def on_sigint(signum, frame):
        # Remember the interrupt: a Ctrl-C inside a C extension's import (numpy's) surfaces as an
        # ImportError, which must still end as an interrupt, not as "error: cannot import numpy".
        interrupted.append(signum)
        swallowed = _swallowed_here(frame)
        if _DEFER and (starting or swallowed):
            # Deliver the interrupt again in 20 ms until it lands: raised inside a weakref callback
            # (importlib's bookkeeping, a WeakKeyDictionary's cleanup during garbage collection)
            # or a __del__ it is printed and dropped, and during start-up an optional-dependency
            # probe (try: import x / except ImportError) can swallow it too.
            signal.setitimer(signal.ITIMER_REAL, 0.02)
            if swallowed:
                return
        raise KeyboardInterrupt

    def started():
        # the imports are done: from here on an interrupt is delivered once, as usual (again only
        # where it would be dropped)
        starting.clear()
        _stop_redelivery()
        if interrupted:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    previous_alarm = signal.signal(signal.SIGALRM, on_sigint) if previous is not None and _DEFER else None
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        prog = f"vi-lab {args.command}"
        if args.command_module == "exact":
            started()
            return run_exact(args) or 0
        if args.command_module == "study":
            started()
            return run_study(args) or 0
        from .experiments import commands
        started()
        return commands.run(args) or 0
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: not an error of ours; silence the flush at exit
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        _stop_redelivery()
        print(f"{prog}: interrupted (nothing was written over a previous run)", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, OSError, MemoryError) as exc:
        if interrupted:
            _stop_redelivery()
            print(f"{prog}: interrupted (nothing was written over a previous run)", file=sys.stderr)
            return 130
        message = _one_line(exc) or type(exc).__name__
        if isinstance(exc, ValueError) and parser is not None and command in (parser._subparsers._group_actions[0]
                                                                               .choices):
            message = relabel(message, _option_names(parser, command))
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if previous_alarm is not None:
            _stop_redelivery()
            signal.signal(signal.SIGALRM, previous_alarm)


if __name__ == "__main__":
    sys.exit(main())
