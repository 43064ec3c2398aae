"""Time the main job and the default variance experiment against their targets.

    python benchmarks/bench_experiments.py            # both
    python benchmarks/bench_experiments.py compare    # one of them
    python benchmarks/bench_experiments.py variance-jobs   # default variance with --jobs 1 and --jobs 2

Targets: ``vi-lab compare`` under 120 s (issue 5); the default ``vi-lab variance`` (every
registered Bernoulli estimator, 5 sample counts, 200 reps, K = 10) under 25 s on 2 cores (issue 11
goal 5; its cells run on every core through vi_lab.parallel). Each command runs in a fresh process,
as a user would run it; the script prints wall and CPU seconds (CPU of the process and its
workers), the load average, the ratio to the target, the speed-up of --jobs 2 over --jobs 1 (same
numbers: checked), and where the variance run spent its time. Prints only; asserts nothing.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGETS = {"compare": 120.0, "variance": 25.0}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command, out, extra=()):
    argv = [sys.executable, "-m", "vi_lab", command, "--quiet", "--out", out, *extra]
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


def jobs_speedup(tmp):
    """Default variance with --jobs 1 and --jobs 2: wall, CPU, speed-up, and that the tables agree."""
    from vi_lab.experiments import read_table, without_wall_clock
    walls = {}
    for jobs in (1, 2):
        out = os.path.join(tmp, f"variance-jobs{jobs}")
        load = os.getloadavg()[0]
        walls[jobs], cpu = run("variance", out, ["--jobs", str(jobs), "--no-figures"])
        print(f"vi-lab variance --jobs {jobs}  wall {walls[jobs]:6.1f} s   cpu {cpu:6.1f} s   load before {load:.2f}"
              f"   wall/target {walls[jobs] / TARGETS['variance']:.2f}")
    same = all(without_wall_clock(read_table(os.path.join(tmp, f"variance-jobs{j}", f"{name}.json"))).equals(
        without_wall_clock(read_table(os.path.join(tmp, f"variance-jobs1", f"{name}.json"))))
        for j in (2,) for name in ("variance", "tau"))
    print(f"speed-up --jobs 2 / --jobs 1: {walls[1] / walls[2]:.2f}x   identical tables: {same}")


def main(commands):
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    if commands == ["variance-jobs"]:
        with tempfile.TemporaryDirectory() as tmp:
            jobs_speedup(tmp)
        return
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
    unknown = [c for c in chosen if c not in TARGETS and chosen != ["variance-jobs"]]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(TARGETS)}")
    main(chosen)
