"""A study gives the same tables whatever runs its cells: 1 process, 2 processes, a real Dask cluster.

Also: Ctrl-C (SIGINT) halfway leaves only finished cells, and the rerun ends with the same tables as an
uninterrupted run.
"""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from vi_lab.experiments.table import without_wall_clock
from vi_lab.study import Study, run

TABLES = ("runs", "curves", "variance", "final", "variance_summary", "correlation", "summary")

TINY = dict(name="tiny", data=["bars"], K=[3], hidden=[[8]], estimators=["rloo", "disarm", "concrete", "exact_elbo"],
            S=[2], seeds=[0, 1], budget_evals=60, batch_size=40, encoder_hidden=[8], records=3, reps=5, rows=10,
            warmup=2, learning_rate=0.03)

TOML = """name = "tiny"
[grid]
data = ["bars"]
K = [3]
hidden = [[8]]
estimators = ["rloo", "disarm", "concrete", "exact_elbo"]
S = [2]
seeds = [0, 1]
[train]
budget_evals = 60
batch_size = 40
encoder_hidden = [8]
records = 3
learning_rate = 0.03
[variance]
reps = 5
rows = 10
warmup = 2
"""


def assert_same_tables(a, b):
    for name in TABLES:
        x, y = without_wall_clock(a[name]), without_wall_clock(b[name])
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return run(Study(**TINY), tmp_path_factory.mktemp("seq") / "s", jobs=1, progress=False, log=lambda m: None)


def test_wall_clock_columns_are_separate(sequential):
    assert {"wall_time", "seconds"} <= set(sequential["runs"].columns)
    assert "seconds" in sequential["variance"].columns
    for name in TABLES:
        assert not any("time" in c or "second" in c for c in without_wall_clock(sequential[name]).columns), name


def test_two_processes_give_identical_tables(sequential, tmp_path):
    parallel = run(Study(**TINY), tmp_path / "p", jobs=2, progress=False, log=lambda m: None)
    assert parallel.ran == sequential.ran == 14
    assert_same_tables(sequential, parallel)


@pytest.mark.slow
def test_dask_local_cluster_gives_identical_tables(sequential, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run(Study(**TINY), tmp_path / "d", scheduler=cluster.scheduler_address, progress=False,
                      log=lambda m: None)
    assert_same_tables(sequential, on_dask)


def test_sigint_halfway_then_resume_gives_the_uninterrupted_tables(sequential, tmp_path):
    study_file = tmp_path / "tiny.toml"
    study_file.write_text(TOML)
    out = tmp_path / "interrupted"
    cells = out / "cells"
    command = [sys.executable, "-m", "vi_lab.study.cli", str(study_file), "--jobs", "1", "--out", str(out),
               "--no-figures"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    finished = []
    while time.time() < deadline and proc.poll() is None:
        finished = [c for c in os.listdir(cells) if not c.startswith(".")] if cells.is_dir() else []
        if len(finished) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the study finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert "interrupted:" in last and "run the same command again to resume" in last, stderr
    saved = os.listdir(cells)
    assert 3 <= len(saved) < 14
    assert not [c for c in saved if c.startswith(".")]                   # no half-written cell
    assert all((cells / c / "cell.json").is_file() for c in saved)
    assert not (out / "tables").exists()

    resumed = run(Study(**TINY), out, jobs=1, progress=False, log=lambda m: None)
    assert resumed.reused == len(saved) and resumed.ran == 14 - len(saved)
    assert_same_tables(sequential, resumed)
