"""Time the quick study with --jobs 1 and --jobs 2: the speed-up of running cells on both cores.

    python benchmarks/bench_study.py                 # studies/quick.toml, 2 rounds
    python benchmarks/bench_study.py --rounds 3 --study studies/quick.toml

Target (issue 13): ``--jobs 2`` at least 1.7x faster than ``--jobs 1`` on a 2-core machine, and the
quick study under 2 minutes on 2 cores. Each run is a fresh process in a fresh directory (nothing
reused), as a user would run ``vi-lab study``; figures are skipped (they cost the same either way).
The rounds alternate jobs 1 and jobs 2 so that a change of machine load hits both; the script
reports the minimum wall time of each (the least disturbed run), every run with its CPU seconds and
the cores it obtained (CPU / wall), and the load average before and after. On a machine shared with
other sessions (Linux autogroup gives each session one share of the CPU) the cores obtained, not the
code, cap the speed-up: compare the CPU seconds of the two modes for the parallel overhead. Prints
only; asserts nothing.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(study, jobs, out):
    argv = [sys.executable, "-m", "vi_lab.study.cli", study, "--jobs", str(jobs), "--out", out, "--quiet",
            "--no-figures"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode != 0:
        print(proc.stderr)
        raise SystemExit(f"vi-lab study --jobs {jobs} failed with status {proc.returncode}")
    return wall, cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=os.path.join(ROOT, "studies", "quick.toml"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"cores: {os.cpu_count()}, load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):
                wall, cpu = run(args.study, jobs, os.path.join(tmp, f"r{r}-j{jobs}"))
                times[jobs].append(wall)
                # cpu / wall = cores actually obtained (with the workers; limited by the machine's load and,
                # with Linux autogroup scheduling, by this session's share of the CPU)
                print(f"round {r}: --jobs {jobs}: wall {wall:6.1f} s   cpu {cpu:6.1f} s   cores obtained "
                      f"{cpu / wall:4.2f}   (load {os.getloadavg()[0]:.2f})", flush=True)
    one, two = min(times[1]), min(times[2])
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"min wall: --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s, speed-up {one / two:.2f}x (target >= 1.7x); "
          f"--jobs 2 {'under' if two < 120 else 'OVER'} the 120 s target")


if __name__ == "__main__":
    main()
