"""The ``vi-lab`` command line.

Each subcommand is a small function that parses its options, calls the Python API
and prints a table. User mistakes (bad names, impossible sizes, unwritable paths)
become one line on stderr and exit status 2, never a traceback.
"""
import argparse
import os
import sys
import time

import numpy as onp

from . import __version__

__all__ = ["main", "build_parser"]


class UsageError(ValueError):
    """A user mistake detected by the CLI itself."""


def _add_exact(subparsers):
    p = subparsers.add_parser(
        "exact", help="exact log p(x) and posterior summary by enumerating all 2**K states",
        description="Compute exact log p(x) for every datapoint of a data set under an untrained "
                    "or saved model by enumerating all 2**K latent states, and print a summary table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="bars", choices=["bars", "digits", "model"],
                   help="data set: bars-and-stripes 4x4 (embedded), binarized sklearn digits, or samples from a random model")
    p.add_argument("--latent", type=int, default=8, help="K, number of binary latents (at most 24)")
    p.add_argument("--hidden", type=int, nargs="*", default=[32], help="decoder hidden widths (none for a linear decoder)")
    p.add_argument("--n-data", type=int, default=None, help="use only the first N datapoints (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed for data noise and model initialization")
    p.set_defaults(func=run_exact)


def load_data(name, n_data=None, seed=0, n_latent=8):
    """Data for the CLI by name: 'bars', 'digits' or 'model'. Returns x of shape (N, L)."""
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
    from . import exact
    from .model import BernoulliLVM

    if args.latent < 1:
        raise UsageError(f"--latent: expected K >= 1, got {args.latent}")
    x = load_data(args.data, args.n_data, args.seed, args.latent)
    model = BernoulliLVM(args.latent, x.shape[1], hidden=tuple(args.hidden))
    exact.check_enumerable(args.latent, x.shape[0], x.shape[1])
    params = model.init_params(args.seed)
    start = time.perf_counter()
    log_px = exact.log_marginal(model, params, x)
    elapsed = time.perf_counter() - start
    marg = exact.posterior_marginals(model, params, x)
    rows = [
        ("model", repr(model)),
        ("data", f"{args.data}: N = {x.shape[0]}, L = {x.shape[1]}"),
        ("latent states 2**K", f"{2 ** args.latent:,}"),
        ("mean log p(x) [nats]", f"{log_px.mean():.4f}"),
        ("min / max log p(x)", f"{log_px.min():.4f} / {log_px.max():.4f}"),
        ("mean p(z_k=1|x)", f"{marg.mean():.4f}"),
        ("seconds for log p(x)", f"{elapsed:.4f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print("Exact inference by enumeration (untrained model)")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


def build_parser():
    """The argparse parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="vi-lab", description="Variational inference on Bernoulli latent-variable models, "
                                   "measured against exact enumeration.")
    parser.add_argument("--version", action="version", version=f"vi-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_exact(subparsers)
    try:
        from .experiments import cli as experiments_cli
    except ImportError:
        experiments_cli = None
    if experiments_cli is not None:
        experiments_cli.add_subcommands(subparsers)
    return parser


def main(argv=None):
    """Entry point of the ``vi-lab`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: not an error of ours; silence the flush at exit
        sys.stdout = open(os.devnull, "w")
        return 0
    except (ValueError, ImportError, OSError) as exc:
        print(f"vi-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vi-lab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
