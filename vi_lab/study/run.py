"""Run a study: cells in parallel, each finished cell saved at once, reruns resume, tables at the end.

The study directory::

    <out>/study.json                       the study (config and its hash)
    <out>/cells/<cell name>/cell.json      the cell's numbers (history, variance rows, sizes)
    <out>/cells/<cell name>/run.npz|json   its trained run (FitResult.save), for --from-run
    <out>/cells/<cell name>/checkpoint_<step>.npz|json   the run at each variance checkpoint
    <out>/tables/<name>.csv|json(|parquet) runs, curves, variance, final, variance_summary,
                                           correlation, summary

A cell's name is its key plus the hash of the key and the settings it is computed with, so a rerun
reuses exactly the cells that would come out the same. A cell directory is written under a
temporary name and renamed into place when complete: an interrupted study holds finished cells
only, and running the same command again resumes it.
"""
import json
import os
import re
import shutil
import sys
import tempfile
import time

from .._io import write_text
from ..parallel import connect_scheduler, run_cells
from .cells import shared_cell, train_cell

__all__ = ["run", "StudyResult", "cell_name", "load_cells"]

_MANIFEST = "vi_lab.study"
_CELL = "vi_lab.study.cell"


def _slug(value):
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_")


def cell_name(study, cell):
    """Directory name of a cell: readable key, then the hash of key and settings."""
    hidden = "x".join(map(str, cell["hidden"]))
    s = "ref" if cell["S"] is None else f"S{cell['S']}"
    parts = [cell["kind"], cell["data"], f"K{cell['K']}", f"h{hidden}", cell["method"], _slug(cell["estimator"]), s,
             f"seed{cell['seed']}", study.cell_hash(cell)]
    return "-".join(parts)


class StudyResult:
    """What ``run`` returns: the study, its directory, the tables, and what was reused.

    Attributes
    ----------
    study : Study
    out : str
    tables : dict of str -> pandas.DataFrame
        ``runs``, ``curves``, ``variance``, ``final``, ``variance_summary``, ``correlation``,
        ``summary`` (see ``vi_lab.study.aggregate``).
    reused, ran : int
        Cells found finished on disk, and cells computed now.
    seconds : float
        Wall time of this call.
    """

    def __init__(self, study, out, tables, reused, ran, seconds):
        self.study, self.out, self.tables = study, out, tables
        self.reused, self.ran, self.seconds = reused, ran, seconds

    def __getitem__(self, name):
        return self.tables[name]

    def __repr__(self):
        return (f"<StudyResult {self.study.name!r}: {len(self.tables['runs'])} runs, {self.reused} reused, "
                f"{self.ran} computed, {self.seconds:.1f} s, in {self.out}>")

    def summary_text(self):
        from .aggregate import format_summary
        return format_summary(self)


class _Store:
    """The study directory: manifest check, finished cells, atomic cell writes."""

    def __init__(self, out, study, force):
        self.out, self.study = out, study
        self.cells = os.path.join(out, "cells")
        self.manifest = os.path.join(out, "study.json")
        self._tmp = set()
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(f"out: {out} exists and is not a directory")
        if os.path.isfile(self.manifest):
            with open(self.manifest, encoding="utf-8") as fh:
                try:
                    old = json.load(fh)
                except json.JSONDecodeError:
                    old = {}
            if old.get("format") != _MANIFEST:
                raise ValueError(f"out: {self.manifest} is not a vi_lab study manifest; choose another --out")
            if old.get("hash") != study.config_hash() and not force:
                raise ValueError(f"out: {out} holds study {old.get('config', {}).get('name')!r} with a different "
                                 f"config (hash {old.get('hash')} != {study.config_hash()}); refusing to mix their "
                                 f"cells: use another --out, or --force to reuse only cells computed with "
                                 f"identical settings")
        elif os.path.isdir(out) and os.listdir(out):
            raise ValueError(f"out: {out} is not empty and holds no study.json; choose a new or empty directory")

    def begin(self):
        os.makedirs(self.cells, exist_ok=True)
        for name in os.listdir(self.cells):              # leftovers of a run killed while writing
            if name.startswith(".tmp-"):
                shutil.rmtree(os.path.join(self.cells, name), ignore_errors=True)
        manifest = {"format": _MANIFEST, "hash": self.study.config_hash(), "config": self.study.to_dict()}
        write_text(self.manifest, json.dumps(manifest, indent=1) + "\n")

    def path(self, cell):
        return os.path.join(self.cells, cell_name(self.study, cell))

    def done(self, cell):
        return os.path.isfile(os.path.join(self.path(cell), "cell.json"))

    def read(self, cell):
        with open(os.path.join(self.path(cell), "cell.json"), encoding="utf-8") as fh:
            return json.load(fh)

    def write(self, cell, meta, runs=()):
        """Write ``meta`` as cell.json and each (stem, FitResult) of ``runs``, then rename into place."""
        final = self.path(cell)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(final)[:40]}-", dir=self.cells)
        self._tmp.add(tmp)
        try:
            for stem, result in runs:
                result.save(os.path.join(tmp, stem))
            write_text(os.path.join(tmp, "cell.json"),
                       json.dumps(dict(meta, format=_CELL, key=cell, hash=self.study.cell_hash(cell)), indent=1))
            os.chmod(tmp, 0o777 & ~_umask())
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            self._tmp.discard(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _history(result):
    return {key: [v.item() if hasattr(v, "item") else v for v in values] for key, values in result.history.items()}


def _label(cell):
    s = "ref" if cell["S"] is None else f"S={cell['S']}"
    return f"{cell['estimator']} {s} seed {cell['seed']} {cell['data']} K={cell['K']}"


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


def run(study, out, jobs=None, scheduler=None, force=False, progress=True, log=None):
    """Run (or resume) a study; return a ``StudyResult`` with its tables.

    Parameters
    ----------
    study : Study
    out : str or os.PathLike
        The study directory (created; must be new, empty, or hold this same study).
    jobs : int, optional
        Local worker processes (default: all cores); with ``scheduler``, cells in flight.
    scheduler : str or distributed.Client, optional
        Run the cells on a Dask cluster (``"tcp://HOST:PORT"``); checked before anything is written.
    force : bool
        Accept a directory holding a study with another config: its cells computed with identical
        settings are reused, the others ignored (left on disk).
    progress : bool
        Progress bars (one over cells per phase).
    log : callable, optional
        ``log(str)`` for the one-line messages (reused cells, interruption); default stderr.

    Raises
    ------
    ValueError
        Bad ``out``, a different study in ``out`` without ``force``, bad ``jobs``, unreachable
        scheduler: all before any file is written.
    KeyboardInterrupt
        After saying how many cells are saved and how to resume.
    """
    from .aggregate import tables as make_tables, write_tables

    log = _stderr if log is None else log
    start = time.perf_counter()
    out = os.path.abspath(os.fspath(out))
    from ..parallel import resolve_jobs
    if jobs is not None:
        resolve_jobs(jobs)
    client, owned = (None, False) if scheduler is None else connect_scheduler(scheduler)
    try:
        store = _Store(out, study, force)
        store.begin()
        train = study.train_cells()
        shared = study.shared_cells()
        total = len(train) + len(shared)
        reused = sum(store.done(c) for c in train + shared)
        if reused:
            log(f"study {study.name}: reusing {reused} of {total} finished cells in {out}")
        ran = 0

        def save_train(index, cell, result):
            nonlocal ran
            meta = {k: result[k] for k in ("steps", "record_every", "n_train", "cost_per_step", "seconds", "variance")}
            meta["history"] = _history(result["run"])
            meta["checkpoints"] = [step for step, _ in result["checkpoints"]]
            runs = [("run", result["run"])] + [(f"checkpoint_{step}", r) for step, r in result["checkpoints"]]
            store.write(cell, meta, runs)
            ran += 1

        def save_shared(index, cell, result):
            nonlocal ran
            store.write(cell, {"variance": result["variance"], "seconds": result["seconds"]})
            ran += 1

        try:
            # longest runs first (most steps), so that no long cell is left running alone at the end
            # while the other workers idle; results do not depend on the order (streams per cell key)
            todo = sorted((c for c in train if not store.done(c)), key=study.steps, reverse=True)
            run_cells(train_cell, [(study, c) for c in todo], jobs=jobs, scheduler=client, progress=progress,
                      desc=f"{study.name}: train", label=lambda t: _label(t[1]),
                      on_result=lambda i, t, r: save_train(i, t[1], r))
            todo = [c for c in shared if not store.done(c)]
            if todo:
                refs = _reference_checkpoints(study, store, todo)
                run_cells(shared_cell, [(study, c, refs[_ref_of(c)]) for c in todo], jobs=jobs, scheduler=client,
                          progress=progress, desc=f"{study.name}: shared-run variance",
                          label=lambda t: _label(t[1]), on_result=lambda i, t, r: save_shared(i, t[1], r))
        except KeyboardInterrupt:
            done = sum(store.done(c) for c in train + shared)
            log(f"interrupted: {done} of {total} cells are saved in {out}; run the same command again to "
                f"resume (finished cells are reused)")
            raise
        records = {"train": [store.read(c) for c in train], "shared": [store.read(c) for c in shared]}
        tables = make_tables(study, records)
        write_tables(tables, os.path.join(out, "tables"))
        return StudyResult(study, out, tables, reused, ran, time.perf_counter() - start)
    finally:
        if owned:
            client.close()


def _ref_of(cell):
    return (cell["data"], cell["K"], tuple(cell["hidden"]), cell["seed"])


def _reference_checkpoints(study, store, cells):
    """(step, progress, params, q_params, family) of the exact_elbo run, per (data, K, hidden, seed)."""
    from ..inference import load

    out = {}
    for cell in cells:
        key = _ref_of(cell)
        if key in out:
            continue
        ref = dict(kind="train", data=cell["data"], K=cell["K"], hidden=list(cell["hidden"]), method="exact_elbo",
                   estimator="exact_elbo", S=None, seed=cell["seed"])
        meta = store.read(ref)
        checkpoints = []
        for step in meta["checkpoints"]:
            r = load(os.path.join(store.path(ref), f"checkpoint_{step}"))
            checkpoints.append((step, step / meta["steps"], r.params, r.q_params, r.family))
        out[key] = checkpoints
    return out


def load_cells(out):
    """The cell.json records of a study directory (every finished cell, whatever its config)."""
    cells = os.path.join(os.fspath(out), "cells")
    records = []
    for name in sorted(os.listdir(cells)) if os.path.isdir(cells) else []:
        path = os.path.join(cells, name, "cell.json")
        if not name.startswith(".") and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                records.append(json.load(fh))
    return records
