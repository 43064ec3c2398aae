"""vi_lab.parallel: cells in order, same numbers in every mode, fast failure on a bad scheduler."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from vi_lab import parallel
from vi_lab.parallel import cell_seed, connect_scheduler, run_cells


def draw(cell):
    """A cell that uses its own random stream and BLAS (a matrix product)."""
    rng = np.random.default_rng(cell_seed(7, cell))
    a = rng.normal(size=(30, 30))
    return float(np.sum(a @ a.T)), os.getpid()


def fail_on_three(cell):
    if cell == 3:
        raise RuntimeError("cell three is broken")
    return cell


CELLS = [("bars", k, s) for k in (2, 3) for s in range(3)]


def expected():
    out = []
    for cell in CELLS:
        rng = np.random.default_rng(np.random.SeedSequence(cell_seed(7, cell).entropy))
        a = rng.normal(size=(30, 30))
        out.append(float(np.sum(a @ a.T)))
    return out


def test_sequential_and_two_processes_give_the_same_values_in_cell_order():
    seen = []
    one = run_cells(draw, CELLS, jobs=1, progress=False, on_result=lambda i, c, r: seen.append((i, c)))
    two = run_cells(draw, CELLS, jobs=2, progress=False)
    assert [v for v, _ in one] == expected()
    assert [v for v, _ in two] == [v for v, _ in one]
    assert {pid for _, pid in one} == {os.getpid()}              # jobs=1 runs here
    assert os.getpid() not in {pid for _, pid in two}             # jobs=2 runs in worker processes
    assert sorted(seen) == list(enumerate(CELLS))                 # on_result once per cell


def test_dask_backend_gives_the_same_values():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        got = run_cells(draw, CELLS, scheduler=cluster, progress=False)
        with distributed.Client(cluster) as client:
            again = run_cells(draw, CELLS, scheduler=client, progress=False)
            assert client.status == "running"                     # a caller's client stays open
    assert [v for v, _ in got] == expected() == [v for v, _ in again]


def test_cell_seed_depends_on_seed_and_key_only():
    a = np.random.default_rng(cell_seed(1, ("digits", 12))).integers(2**62)
    assert a == np.random.default_rng(cell_seed(1, ("digits", 12))).integers(2**62)
    assert a != np.random.default_rng(cell_seed(2, ("digits", 12))).integers(2**62)
    assert a != np.random.default_rng(cell_seed(1, ("digits", 13))).integers(2**62)
    # another interpreter with another str-hash salt draws the same number
    code = ("import numpy as np; from vi_lab.parallel import cell_seed; "
            "print(np.random.default_rng(cell_seed(1, ('digits', 12))).integers(2**62))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert int(out.stdout) == a


def test_cell_error_propagates():
    with pytest.raises(RuntimeError, match="cell three"):
        run_cells(fail_on_three, range(6), jobs=2, progress=False)
    with pytest.raises(RuntimeError, match="cell three"):
        run_cells(fail_on_three, range(6), jobs=1, progress=False)


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_bad_jobs(jobs):
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_cells(abs, [1], jobs=jobs, progress=False)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_fails_fast_naming_the_address(monkeypatch):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"scheduler {address}: cannot connect"):
        run_cells(abs, [1, 2], scheduler=address, progress=False)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("bad", ["", 3, None])
def test_bad_scheduler_value(bad):
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="scheduler must be an address"):
        connect_scheduler(bad)


_FAULTS = """
import resource, sys
import numpy as np
from vi_lab.parallel import keep_freed_memory, run_cells

def work(mb):
    a = np.ones(int(mb * 2 ** 20) // 8)
    return float(np.exp(a * 2.0)[0])

tuned = sys.argv[1] == "tuned"
if tuned:
    # what a cell-running process gets: run_cells sets it before the first cell
    run_cells(abs, [-1], jobs=1, progress=False)
work(float(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    work(float(sys.argv[2]))
print(keep_freed_memory(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.parametrize("mb", [1.0, 12.0])
def test_cells_reuse_freed_memory_instead_of_faulting_in_new_pages(mb):
    # glibc's defaults return each freed array of a few MB to the kernel, and the next call faults its
    # pages in again (a quarter of `vi-lab variance`'s wall time); a cell-running process keeps them
    import platform
    import subprocess
    import sys

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode, str(mb)], capture_output=True, text=True,
                             check=True).stdout.split()
        return out[0] == "True", float(out[1])

    took, tuned = faults("tuned")
    if platform.libc_ver()[0] != "glibc":
        assert not took                              # nothing to tune: the setting says it did nothing
        return
    _, default = faults("default")
    assert took
    # the default does fault (fewer than 4 KiB pages where the kernel maps huge pages), else this
    # test would show nothing; the tuned process reuses what it freed
    assert default > 200
    assert tuned < 0.05 * default


_RELEASE = """
import numpy as np
from vi_lab.parallel import KEEP_FREED_BYTES, keep_freed_memory, release_freed_memory

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

keep_freed_memory()
start = resident()
blocks, live = [], []
for _ in range(40):                                   # 40 x 16 MiB, touched, each followed by a small
    blocks.append(np.ones(2 ** 21))                   # array that stays: freed, the big ones are holes
    live.append(np.ones(2 ** 15))                     # inside the heap, which glibc never trims itself
del blocks
kept = resident() - start
released = release_freed_memory()
print(kept, resident() - start, released, KEEP_FREED_BYTES)
"""


def test_a_cell_hands_back_what_it_freed_beyond_the_kept_bytes():
    # loky restarts a worker whose resident size grew by 300 MB since its first cell (with a warning on
    # the user's terminal); the freed memory a cell kept is trimmed back to KEEP_FREED_BYTES when it ends
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        from vi_lab.parallel import release_freed_memory
        assert release_freed_memory() is False
        return
    kept, after, released, keep = (int(v) if v.lstrip("-").isdigit() else v for v in subprocess.run(
        [sys.executable, "-c", _RELEASE], capture_output=True, text=True, check=True).stdout.split())
    assert released == "True"
    assert kept > 500 * 2 ** 20                      # without the release, the 640 MiB stay resident
    assert after < keep + 64 * 2 ** 20               # with it, at most the kept bytes (and some slack)


def _rss_growth_cell(index):
    import os
    import time

    # loky measures a worker's reference size after its first cell: the first two (one per worker)
    # are small, every later one touches and frees 480 MiB
    blocks = [np.ones(2 ** 21) for _ in range(30 if index >= 2 else 0)]
    del blocks
    time.sleep(0.3)                                  # loky checks a worker's memory at most once a second
    return os.getpid()


def test_workers_are_not_restarted_by_lokys_memory_leak_check(recwarn):
    pytest.importorskip("psutil")                    # loky checks only with psutil installed
    pids = run_cells(_rss_growth_cell, list(range(10)), jobs=2, progress=False)
    assert len(set(pids)) <= 2, "a worker was restarted"
    assert not [w for w in recwarn if "worker stopped" in str(w.message)]
