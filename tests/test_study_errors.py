"""Bad study input: one line on stderr, exit status 2, before any work, nothing written over finished cells."""
import os
import socket
import time

import pytest

from vi_lab import parallel
from vi_lab.study import Study, run
from vi_lab.study import cli as study_cli

GOOD = """name = "bad-input"
[grid]
data = ["bars"]
K = [3]
hidden = [[8]]
estimators = ["rloo", "disarm"]
S = [2]
seeds = [0]
[train]
budget_evals = 40
batch_size = 40
encoder_hidden = [8]
records = 2
[variance]
reps = 4
rows = 8
warmup = 1
"""

CASES = {
    "unknown axis": (GOOD.replace("seeds = [0]", "seeds = [0]\nlayers = [1]"), "unknown axis 'layers'"),
    "unknown estimator": (GOOD.replace('"disarm"]', '"disarmm"]'), "unknown estimator 'disarmm'; did you mean 'disarm'"),
    "unknown option": (GOOD.replace('"disarm"]', '"concrete:tauu=0.5"]'), "tauu: unknown option"),
    "unknown setting": (GOOD.replace("records = 2", "records = 2\nepochs = 3"), "unknown key 'epochs'"),
    "empty grid": (GOOD.replace('estimators = ["rloo", "disarm"]', "estimators = []"), "axis 'estimators' is empty"),
    "empty seeds": (GOOD.replace("seeds = [0]", "seeds = []"), "axis 'seeds' is empty"),
    "budget below one step": (GOOD.replace("budget_evals = 40", "budget_evals = 0.01"), "less than one step"),
    "K beyond enumeration": (GOOD.replace("K = [3]", "K = [40]"), "K = 40 means enumerating"),
    "S below the estimator's minimum": (GOOD.replace("S = [2]", "S = [1, 2]"), "'rloo' needs S >= 2"),
    "unknown data set": (GOOD.replace('data = ["bars"]', 'data = ["mnist"]'), "unknown data 'mnist'"),
    "missing budget": (GOOD.replace("budget_evals = 40\n", ""), "budget_evals is required"),
    "invalid TOML": (GOOD.replace("budget_evals = 40", "budget_evals = 40 40"), "not valid TOML: .*line 10"),
}


def cli(args, capsys):
    status = study_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_study_file_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    text, message = CASES[case]
    path = tmp_path / "study.toml"
    path.write_text(text)
    out = tmp_path / "out"
    status, err = cli([path, "--out", out, "--quiet"], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vi-lab study: error:"), err
    import re
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_missing_file(tmp_path, capsys):
    status, err = cli([tmp_path / "nope.toml"], capsys)
    assert status == 2 and "no such file" in err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished study directory and a snapshot of its files (name -> size, mtime)."""
    tmp = tmp_path_factory.mktemp("finished")
    path = tmp / "study.toml"
    path.write_text(GOOD)
    out = tmp / "out"
    assert study_cli.main([str(path), "--out", str(out), "--jobs", "1", "--quiet", "--no-figures"]) == 0
    return path, out


def snapshot(out):
    files = {}
    for root, _, names in os.walk(out):
        for name in names:
            p = os.path.join(root, name)
            files[os.path.relpath(p, out)] = (os.path.getsize(p), os.stat(p).st_mtime_ns)
    return files


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_fails_in_seconds_naming_the_address(finished, capsys, monkeypatch):
    pytest.importorskip("distributed")
    path, out = finished
    before = snapshot(out)
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    start = time.perf_counter()
    status, err = cli([path, "--out", out, "--scheduler", address, "--quiet"], capsys)
    assert time.perf_counter() - start < 15
    assert status == 2 and f"scheduler {address}: cannot connect" in err and len(err.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_changed_config_is_refused_and_nothing_is_written(finished, tmp_path, capsys):
    path, out = finished
    before = snapshot(out)
    changed = tmp_path / "changed.toml"
    changed.write_text(GOOD.replace("reps = 4", "reps = 5"))
    status, err = cli([changed, "--out", out, "--quiet"], capsys)
    assert status == 2 and "different config" in err and "--force" in err
    assert snapshot(out) == before


def test_bad_jobs_and_foreign_directories(finished, tmp_path, capsys):
    path, out = finished
    before = snapshot(out)
    status, err = cli([path, "--out", out, "--jobs", "0"], capsys)
    assert status == 2 and "jobs must be a positive integer" in err
    assert snapshot(out) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    status, err = cli([path, "--out", foreign], capsys)
    assert status == 2 and "holds no study.json" in err
    assert os.listdir(foreign) == ["notes.txt"]


def test_python_api_raises_valueerror():
    with pytest.raises(ValueError, match="unknown data 'mnist'"):
        Study(data=["mnist"])
    with pytest.raises(ValueError, match="checkpoints: expected fractions"):
        Study(checkpoints=[0.5, 1.5])
    with pytest.raises(ValueError, match="repeats a value"):
        Study(S=[2, 2])
    with pytest.raises(ValueError, match="budget_evals: expected a positive number"):
        Study(budget_evals=float("nan"))
    with pytest.raises(ValueError, match="scheduler must be an address"):
        run(Study(estimators=["disarm"], seeds=[0], budget_evals=20, records=1), "/nonexistent/never", scheduler=5)
