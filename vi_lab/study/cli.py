"""``vi-lab study FILE.toml``: the command-line form of ``vi_lab.study.run``.

The ``vi-lab`` entry point (``vi_lab.cli``) registers the subcommand with ``configure`` and
calls ``run``; both are usable on their own::

    parser = argparse.ArgumentParser(); configure(parser)
    status = run(parser.parse_args(["studies/quick.toml", "--jobs", "2"]))

Bad input (an unknown axis, estimator or option, an empty grid, a budget below one step, K beyond
enumeration, invalid TOML, an unreachable scheduler) raises ValueError before anything is written;
``main`` turns it into one line on stderr and exit status 2.
"""
import argparse
import os
import sys

__all__ = ["configure", "run", "main"]


def configure(parser):
    """Add the options of ``vi-lab study`` to ``parser`` (an argparse parser or subparser)."""
    parser.add_argument("study", metavar="FILE.toml", help="the study file (see studies/quick.toml)")
    parser.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                        help="worker processes (default: all cores); with --scheduler, cells in flight")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="run the cells on a Dask cluster, e.g. tcp://HOST:8786 (pip install -e '.[cluster]')")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="study directory (default: results/study-<name>); rerunning resumes it")
    parser.add_argument("--force", action="store_true",
                        help="accept a directory holding a study with another config (reuses only cells "
                             "computed with identical settings)")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="skip the PNG figures")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages; print the summary only")
    return parser


def run(args):
    """Run the study described by parsed ``args``; print its summary; return the exit status.

    Raises
    ------
    ValueError
        Bad input, before any work (the caller prints it as one line and exits with status 2).
    """
    from .run import run as run_study
    from .spec import load

    study = load(args.study)
    out = args.out or os.path.join("results", f"study-{study.name}")
    log = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    try:
        result = run_study(study, out, jobs=args.jobs, scheduler=args.scheduler, force=args.force,
                           progress=not args.quiet, log=log)
    except KeyboardInterrupt:
        return 130                                   # run_study has said how to resume
    print(result.summary_text())
    written = [os.path.join(result.out, "tables")]
    if getattr(args, "figures", True):
        from ..plotting.study import save_figures
        written += save_figures(result, os.path.join(result.out, "figures"))
    log(f"study {study.name}: {result.ran} cells computed, {result.reused} reused, {result.seconds:.1f} s; "
        f"tables and figures in {', '.join(written)}")
    return 0


def main(argv=None):
    """Stand-alone entry: ``python -m vi_lab.study.cli FILE.toml ...``."""
    parser = configure(argparse.ArgumentParser(prog="vi-lab study", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"vi-lab study: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
