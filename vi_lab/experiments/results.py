"""One directory per experiment run, complete or absent: never half of one, never a mix of two.

A run directory holds::

    config.json          the configuration, seed, package versions, and every file with its SHA-256
    <table>.csv/.json    every result table (a pandas.DataFrame; see :mod:`vi_lab.experiments.table`),
    <table>.parquet      also as Parquet where pyarrow is importable
    <figure>.png/.pdf    every figure
    params.npz           the model parameters the experiment used (nested keys joined by "/")

A run is written into a temporary sibling directory (``.<name>.partial-XXXX`` next to ``out``)
and moved into place only when every file is there, so an interrupt (Ctrl-C) at any point leaves
either the previous complete run or the new complete run. The two renames of the swap run with
SIGINT deferred.

vi_lab replaces a directory only when every file in it is one vi_lab wrote: listed in its
``config.json`` with the same SHA-256. Anything else there (a file of yours, an edited table, a
``config.json`` that is not vi_lab's) makes it refuse the directory, before any computation
(``vi_lab.experiments.results.check_out_dir``), and nothing is deleted.
"""
import hashlib
import json
import os
import platform
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager

import numpy as onp

from .._io import atomic_path, load_params, save_params, write_text
from .table import read_table, write_table

__all__ = ["Results", "RunWriter", "write_text", "atomic_path", "check_writable_dir", "check_out_dir",
           "save_params", "load_params", "read_table", "read_config", "RUN_FORMAT"]

RUN_FORMAT = "vi_lab.experiments.run"


def check_writable_dir(path, name="out"):
    """Check that a run directory can be created at ``path`` (its parent is writable).

    Raises
    ------
    ValueError
        Naming the argument and the reason (exists as a file, permission denied, ...),
        before any expensive computation starts. Nothing is created.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} exists and is not a directory; pass a directory for the results")
    parent = path
    while not os.path.isdir(parent):             # the nearest existing ancestor must take new entries
        if os.path.exists(parent):
            raise ValueError(f"{name}: cannot write results to {path!r} ({parent!r} is not a directory); "
                             f"choose a writable directory")
        parent = os.path.dirname(parent)
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write results to {path!r} ({exc.strerror or exc}); "
                         f"choose a writable directory") from None
    return path


def read_config(run_dir):
    """The ``config.json`` of a run directory as a dict (ValueError naming the file if it is not one)."""
    path = os.path.join(os.fspath(run_dir), "config.json")
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return record


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _owned(path):
    """(files vi_lab wrote, other entries) of an existing directory, judged by its config.json."""
    entries = sorted(os.listdir(path))
    if not entries:
        return [], []
    if "config.json" not in entries:
        return [], entries
    try:
        record = read_config(path)
    except ValueError:
        return [], entries
    hashes = record.get("sha256") if record.get("format") == RUN_FORMAT else None
    if not isinstance(hashes, dict):
        return [], entries
    ours, other = ["config.json"], []
    for entry in entries:
        if entry == "config.json":
            continue
        full = os.path.join(path, entry)
        if isinstance(hashes.get(entry), str) and os.path.isfile(full) and not os.path.islink(full) \
                and _sha256(full) == hashes[entry]:
            ours.append(entry)
        else:
            other.append(entry)
    return ours, other


def check_out_dir(path, name="out"):
    """Check, before any computation, that a new run can be written to ``path``.

    Returns
    -------
    bool
        True if ``path`` holds a previous vi_lab run, which the new run will replace.

    Raises
    ------
    ValueError
        ``path`` is a file or not writable; its ``config.json`` is damaged or not vi_lab's; or it
        holds files vi_lab did not write (named in the message). Nothing is created or deleted.
    """
    path = check_writable_dir(path, name)
    if not os.path.isdir(path):
        return False
    entries = os.listdir(path)
    if not entries:
        return False
    if "config.json" in entries:
        try:
            read_config(path)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}; it is not a run vi_lab wrote, so the directory is left alone: "
                             f"remove it or choose another directory") from None
    ours, other = _owned(path)
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise ValueError(f"{name}: {path!r} holds files vi_lab did not write ({shown}); vi_lab only replaces "
                         f"its own runs: choose a new or empty directory")
    return bool(ours)


@contextmanager
def _sigint_deferred():
    """Hold back Ctrl-C for the few system calls that must not be separated; re-raise it after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def _json_default(obj):
    if isinstance(obj, onp.generic):
        return obj.item()
    if isinstance(obj, onp.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _versions():
    from .. import __version__
    from importlib.metadata import PackageNotFoundError, version
    out = {"vi_lab": __version__, "numpy": onp.__version__, "python": platform.python_version()}
    for package in ("autograd", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:          # informative only
            out[package] = "unknown"
    return out


def save_figure(fig, stem, formats=("png", "pdf"), dpi=150):
    """Write ``fig`` as ``stem.png`` and ``stem.pdf`` (atomically, fixed metadata); returns the paths."""
    paths = []
    for fmt in formats:
        path = f"{stem}.{fmt}"
        # fixed metadata so that the same run gives the same files
        metadata = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
        paths.append(path)
    return paths


def _draw_and_save(task):
    """Worker side of :meth:`RunWriter.figures`: draw one figure of a run and write its files."""
    results, key, stem = task
    from ..plotting import figure_makers
    return [os.path.basename(p) for p in save_figure(figure_makers(results)[key](), stem)]


class RunWriter:
    """Writes the files of one experiment run, then moves the complete directory into place.

    Parameters
    ----------
    out : str or path
        The run directory. It may be missing, empty, or hold a previous vi_lab run (replaced by
        :meth:`close`); anything else is refused (ValueError, see ``check_out_dir``).
    command : str
        Experiment name recorded in ``config.json`` (e.g. ``"variance"``).
    config : dict
        The complete configuration (every option, including the seed); JSON-serializable.
    name : str
        How to call ``out`` in error messages (``"--out"`` at the command line).

    Notes
    -----
    Files go to a temporary sibling directory; :meth:`close` writes ``config.json`` (the file list
    with SHA-256 hashes, ``"complete": true``) and swaps the directory in. :meth:`abort`, or
    leaving a ``with`` block with an exception, removes the temporary directory and leaves ``out``
    as it was.

    Examples
    --------
    >>> with RunWriter("results/variance", "variance", {"seed": 0, "reps": 200}) as writer:  # doctest: +SKIP
    ...     writer.table("variance", table); writer.figure("variance_vs_samples", fig)
    """

    def __init__(self, out, command, config, name="out"):
        self.out = os.path.abspath(os.fspath(out))
        self.name = name
        self.replaces = check_out_dir(self.out, name)
        self.command = command
        self.config = dict(config)
        self.files = []
        parent, base = os.path.split(self.out)
        os.makedirs(parent, exist_ok=True)
        self.staging = tempfile.mkdtemp(prefix=f".{base}.partial-", dir=parent)
        os.chmod(self.staging, 0o777 & ~_umask())
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.abort()
        return False

    def path(self, filename):
        """Where ``filename`` is being written now (inside the temporary directory)."""
        return os.path.join(self.staging, filename)

    def _add(self, filename):
        if filename not in self.files:
            self.files.append(filename)

    def table(self, name, table):
        """Write a DataFrame as ``name.csv``, ``name.json`` (and ``name.parquet`` with pyarrow); returns the paths."""
        paths = write_table(table, self.path(name))
        for p in paths:
            self._add(os.path.basename(p))
        return paths

    def figure(self, name, fig, formats=("png", "pdf"), dpi=150):
        """Write a matplotlib figure as ``name.png`` and ``name.pdf``; returns the paths."""
        paths = save_figure(fig, self.path(name), formats, dpi)
        for p in paths:
            self._add(os.path.basename(p))
        return paths

    def figures(self, results, jobs=1):
        """Draw and write every figure of ``results`` (``vi_lab.plotting.figure_makers``), ``jobs`` at a time.

        With ``jobs`` > 1 each figure is drawn in a worker process (:func:`vi_lab.parallel.run_cells`)
        straight into this run's temporary directory; the files are the same bytes either way.
        """
        from ..plotting import figure_makers
        keys = list(figure_makers(results))
        if jobs == 1 or len(keys) < 2:
            for key, draw in figure_makers(results).items():
                self.figure(key, draw())
            return
        from ..parallel import run_cells
        for files in run_cells(_draw_and_save, [(results, key, self.path(key)) for key in keys], jobs=jobs,
                               progress=False):
            for filename in files:
                self._add(filename)

    def params(self, name, params):
        """Write model parameters as ``name.npz``; returns the path."""
        filename = f"{name}.npz"
        save_params(self.path(filename), params)
        self._add(filename)
        return self.path(filename)

    def json(self, name, obj):
        """Write any JSON-serializable object as ``name.json``."""
        filename = f"{name}.json"
        write_text(self.path(filename), json.dumps(obj, indent=1, default=_json_default) + "\n")
        self._add(filename)
        return self.path(filename)

    def abort(self):
        """Forget this run: remove the temporary directory, leave ``out`` as it was."""
        if not self.closed:
            self.closed = True
            shutil.rmtree(self.staging, ignore_errors=True)

    def close(self):
        """Write ``config.json`` and move the complete run into ``out`` (replacing a previous vi_lab run)."""
        if self.closed:
            return
        try:
            files = sorted(set(self.files + ["config.json"]))
            record = {"format": RUN_FORMAT, "command": self.command, "config": self.config,
                      "seed": self.config.get("seed"), "versions": _versions(), "complete": True, "files": files,
                      "sha256": {f: _sha256(self.path(f)) for f in files if f != "config.json"}}
            write_text(self.path("config.json"), json.dumps(record, indent=1, default=_json_default) + "\n")
            self._swap()
        except BaseException:
            self.abort()
            raise
        self.closed = True
        self.files = files

    def _swap(self):
        if os.path.isdir(self.out) and os.listdir(self.out):
            # checked again: a file may have appeared while the experiment ran
            ours, other = _owned(self.out)
            if other:
                raise ValueError(f"{self.name}: {self.out!r} gained files vi_lab did not write while the run "
                                 f"computed ({', '.join(other[:5])}); the new run was not saved there")
            aside = tempfile.mkdtemp(prefix=f".{os.path.basename(self.out)}.old-", dir=os.path.dirname(self.out))
            with _sigint_deferred():
                os.replace(self.out, os.path.join(aside, "run"))
                os.replace(self.staging, self.out)
            # the previous run is out of the way and was verified to be ours file by file
            shutil.rmtree(aside, ignore_errors=True)
        else:
            with _sigint_deferred():
                if os.path.isdir(self.out):
                    os.rmdir(self.out)                # empty
                os.replace(self.staging, self.out)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Results(dict):
    """The tables of one experiment run (name -> pandas.DataFrame), with what is needed to save it.

    Attributes
    ----------
    experiment : str
        ``"variance"``, ``"tightness"``, ``"train_compare"`` or ``"compare"``.
    config : dict
        Every setting of the run, seed included (what ``config.json`` records).
    params : dict of str -> dict
        Parameter trees to save, e.g. ``{"params": model params, "q_params": encoder}``.
    model : BernoulliLVM or None
    """

    def __init__(self, experiment, config, tables=None, params=None, model=None):
        super().__init__(tables or {})
        self.experiment = experiment
        self.config = dict(config)
        self.params = dict(params or {})
        self.model = model

    def __repr__(self):
        tables = ", ".join(f"{k}: {len(v)} rows" for k, v in self.items())
        return f"<Results {self.experiment!r} ({tables})>"

    def save(self, out, figures=True, name="out", jobs=1):
        """Write the run directory: every table (CSV + JSON), the parameters (.npz), config.json
        and, if ``figures``, the experiment's figures (PNG + PDF, drawn by :mod:`vi_lab.plotting`).

        The directory appears complete or not at all (see :class:`RunWriter`); a previous vi_lab
        run in ``out`` is replaced, a directory holding other files is refused (ValueError).
        ``jobs`` > 1 draws the figures in that many worker processes (the same files).

        Returns
        -------
        RunWriter
            Its ``files`` attribute lists what was written, ``replaces`` whether a previous run was replaced.
        """
        config = dict(self.config)
        if self.model is not None:
            config.setdefault("model", self.model.config())
        with RunWriter(out, self.experiment, config, name=name) as writer:
            for key, table in self.items():
                writer.table(key, table)
            for key, tree in self.params.items():
                if tree is not None:
                    writer.params(key, tree)
            if figures:
                writer.figures(self, jobs=jobs)
        return writer
