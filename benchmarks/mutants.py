"""Mutation testing: does the test suite catch realistic bugs?

Each mutant in :mod:`mutant_list` (next to this file) is one text replacement in one source
file, the kind of bug a developer makes (a dropped term, a wrong normalizer, a sum for a mean,
a coupling broken in a way that stays unbiased, an off-by-one in chunking, ...), with the few
test files that should notice it. For every mutant this script

1. applies the replacement to a private copy of the repository (never the working tree: the
   copy is made with ``git archive HEAD``, or from the working tree with ``--worktree``),
2. runs only that mutant's test files with the project's Python, ``PYTHONPATH`` pointing at the
   copy, one BLAS thread, ``-x`` and a timeout,
3. counts the mutant as *killed* if a test fails or the run times out, *survived* otherwise,

then reverts the file and goes on. Mutants marked ``equivalent`` (with the argument why) are
listed but not run and not counted. A baseline run of every selected test file on the
unmutated copy comes first: tests that already fail there are deselected (and listed), so a
kill is always the mutant's doing.

Usage::

    python benchmarks/mutants.py                 # all mutants, summary at the end
    python benchmarks/mutants.py --only exact-   # mutants whose id starts with "exact-"
    python benchmarks/mutants.py --list          # list them
    python benchmarks/mutants.py --json out.json # also write the per-mutant results

Prints the kill rate over non-equivalent mutants. Exit status 0 unless the set-up fails
(a stale mutant whose text is not found, or a failing baseline): survivors are a finding to
act on, not an error of this script.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from mutant_list import MUTANTS  # noqa: E402


def make_copy(worktree):
    """A private copy of the repository, without .git and .venv; returns its path."""
    root = tempfile.mkdtemp(prefix="vi_lab_mutants_")
    dest = os.path.join(root, "repo")
    if worktree:
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.pyc", "_build", ".pytest_cache", "node_modules", "results*"))
    else:
        os.makedirs(dest)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", "HEAD"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return root, dest


def env_for(copy):
    env = dict(os.environ)
    env.update(PYTHONPATH=copy, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    return env


def run_tests(python, copy, tests, timeout, deselect=(), stop_first=True):
    """(status, seconds, output): status 'pass', 'fail' or 'timeout'."""
    cmd = [python, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
           "-W", "ignore::DeprecationWarning", *tests]
    if stop_first:
        cmd.insert(3, "-x")
    for node in deselect:
        cmd += ["--deselect", node]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=copy, env=env_for(copy), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    return ("pass" if done.returncode == 0 else "fail"), time.perf_counter() - start, done.stdout + done.stderr


def check_import_path(python, copy):
    out = subprocess.run([python, "-c", "import vi_lab; print(vi_lab.__file__)"], cwd=copy, env=env_for(copy),
                         capture_output=True, text=True, check=True).stdout.strip()
    if not out.startswith(copy):
        raise SystemExit(f"mutants: vi_lab imports from {out}, not from the copy {copy}; aborting")


def apply(copy, mutant):
    path = os.path.join(copy, mutant["file"])
    with open(path, encoding="utf-8") as fh:
        original = fh.read()
    count = original.count(mutant["old"])
    if count != mutant.get("count", 1):
        raise ValueError(f"mutant {mutant['id']}: the text to replace occurs {count} times in {mutant['file']} "
                         f"(expected {mutant.get('count', 1)}); the mutant is stale, update mutant_list.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(original.replace(mutant["old"], mutant["new"]))
    return path, original


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the mutants whose id starts with this prefix")
    parser.add_argument("--ids", default="", help="comma-separated mutant ids to run")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies, then exit")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant (default 240)")
    parser.add_argument("--json", default=None, help="write per-mutant results to this file")
    parser.add_argument("--worktree", action="store_true",
                        help="copy the working tree (uncommitted edits included) instead of git HEAD")
    parser.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"))
    args = parser.parse_args(argv)

    ids = [m["id"] for m in MUTANTS]
    if len(set(ids)) != len(ids):
        raise SystemExit("mutants: duplicate mutant ids in mutant_list.py")
    chosen = [m for m in MUTANTS if m["id"].startswith(args.only)]
    if args.ids:
        wanted = set(args.ids.split(","))
        unknown = wanted - set(ids)
        if unknown:
            raise SystemExit(f"mutants: unknown mutant id(s) {sorted(unknown)}")
        chosen = [m for m in chosen if m["id"] in wanted]
    if args.list:
        for m in chosen:
            flag = "  [equivalent]" if m.get("equivalent") else ""
            print(f"{m['id']:38s} {m['file']:34s} {m['what']}{flag}")
        return 0

    root, copy = make_copy(args.worktree)
    results = []
    try:
        check_import_path(args.python, copy)
        to_run = [m for m in chosen if not m.get("equivalent")]
        for m in to_run:                        # stale mutants are set-up errors: find them before any work
            path, original = apply(copy, m)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(original)
        if args.check:
            print(f"mutants: all {len(to_run)} apply cleanly")
            return 0
        baseline = sorted({t for m in to_run for t in m["tests"]})
        print(f"baseline: {len(baseline)} test files on the unmutated copy ...", flush=True)
        # tests that already fail on the unmutated code (someone's work in progress) are
        # deselected, so a kill is always the mutant's doing; they are listed in the summary
        broken = []
        for test in baseline:
            status, seconds, out = run_tests(args.python, copy, [test], args.timeout * 4, stop_first=False)
            if status == "timeout":
                raise SystemExit(f"mutants: baseline {test} timed out")
            if status != "pass":
                failed = [line.split()[1] for line in out.splitlines()
                          if line.startswith(("FAILED ", "ERROR ")) and len(line.split()) > 1]
                if not failed:
                    raise SystemExit(f"mutants: baseline {test} does not pass and names no failing test:\n{out[-2000:]}")
                broken += failed
                print(f"  baseline: {len(failed)} already failing in {test}, deselected", flush=True)
        for i, m in enumerate(chosen, 1):
            if m.get("equivalent"):
                results.append({"id": m["id"], "status": "equivalent", "why": m["equivalent"]})
                print(f"[{i}/{len(chosen)}] {m['id']}: equivalent ({m['equivalent']})", flush=True)
                continue
            path, original = apply(copy, m)
            try:
                status, seconds, _ = run_tests(args.python, copy, m["tests"], args.timeout, deselect=broken)
            finally:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(original)
            verdict = "survived" if status == "pass" else "killed"
            results.append({"id": m["id"], "file": m["file"], "what": m["what"], "status": verdict,
                            "how": status, "seconds": round(seconds, 1), "tests": m["tests"]})
            print(f"[{i}/{len(chosen)}] {m['id']}: {verdict.upper()} ({status}, {seconds:.0f} s)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    counted = [r for r in results if r["status"] != "equivalent"]
    killed = sum(r["status"] == "killed" for r in counted)
    print()
    print(f"mutants: {len(results)} ({len(results) - len(counted)} equivalent, not counted)")
    if counted:
        print(f"killed {killed} of {len(counted)} non-equivalent mutants: kill rate {100.0 * killed / len(counted):.1f}%")
    if broken:
        print(f"deselected (failing before any mutation): {', '.join(broken)}")
    for r in counted:
        if r["status"] == "survived":
            print(f"  SURVIVED {r['id']}: {r['what']} ({r['file']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
