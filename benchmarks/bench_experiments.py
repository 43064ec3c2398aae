"""Time the main job and the default variance experiment against their targets.

    python benchmarks/bench_experiments.py            # both
    python benchmarks/bench_experiments.py compare    # one of them

Targets (issue 5): ``vi-lab compare`` under 120 s, the default ``vi-lab variance`` (every
registered Bernoulli estimator, 5 sample counts, 200 reps, K = 10) under 60 s, on a 2-core
laptop. Each command runs in a fresh process, as a user would run it; the script prints wall
and CPU seconds, the ratio to the target, and where the variance run spent its time.
Prints only; asserts nothing.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGETS = {"compare": 120.0, "variance": 60.0}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command, out):
    argv = [sys.executable, "-m", "vi_lab", command, "--quiet", "--out", out]
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode != 0:
        print(proc.stderr)
        raise SystemExit(f"vi-lab {command} failed with status {proc.returncode}")
    return wall, cpu


def variance_breakdown(out):
    """Seconds spent per estimator (timed estimates only, excluding setup and figures)."""
    from vi_lab.experiments import read_table
    table = read_table(os.path.join(out, "variance.json"))
    seconds = (table["seconds"] * table["reps"]).groupby(table["estimator"], sort=False).sum()
    return sorted(seconds.items(), key=lambda r: -r[1])


def main(commands):
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for command in commands:
            out = os.path.join(tmp, command)
            wall, cpu = run(command, out)
            target = TARGETS[command]
            print(f"vi-lab {command:9s} wall {wall:6.1f} s   cpu {cpu:6.1f} s   target {target:5.0f} s   "
                  f"wall/target {wall / target:.2f}")
            if command == "variance":
                for name, seconds in variance_breakdown(out):
                    print(f"    {name:18s} {seconds:6.2f} s of estimates")


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(TARGETS)
    unknown = [c for c in chosen if c not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(TARGETS)}")
    main(chosen)
