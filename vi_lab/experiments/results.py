"""One directory per experiment run, every file written atomically.

A run directory holds::

    config.json          the exact configuration, seed, package versions and the list of files
    <table>.csv/.json    every result table (a pandas.DataFrame; see :mod:`vi_lab.experiments.table`),
    <table>.parquet      also as Parquet where pyarrow is importable
    <figure>.png/.pdf    every figure
    params.npz           the model parameters the experiment used (nested keys joined by "/")

Each file is first written to a temporary file in the same directory and then moved into
place with :func:`os.replace`, which is atomic on POSIX and Windows: an interrupted run
leaves either the old file or the new one, never half of one.
"""
import json
import os
import platform
import tempfile

import numpy as onp

from .._io import atomic_path, load_params, save_params, write_text
from .table import read_table, write_table

__all__ = ["Results", "RunWriter", "write_text", "atomic_path", "check_writable_dir", "save_params", "load_params",
           "read_table", "read_config"]


def check_writable_dir(path, name="out"):
    """Create ``path`` if needed and check that files can be written there.

    Raises
    ------
    ValueError
        Naming the argument and the reason (exists as a file, permission denied, ...),
        before any expensive computation starts.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} exists and is not a directory; pass a directory for the results")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write results to {path!r} ({exc.strerror or exc}); "
                         f"choose a writable directory") from None
    return path


def read_config(run_dir):
    """The ``config.json`` of a run directory as a dict."""
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _json_default(obj):
    if isinstance(obj, onp.generic):
        return obj.item()
    if isinstance(obj, onp.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def _versions():
    import autograd
    from .. import __version__
    try:
        from importlib.metadata import version
        autograd_version = version("autograd")
    except Exception:  # metadata missing in odd installs; the version is informative only
        autograd_version = getattr(autograd, "__version__", "unknown")
    return {"vi_lab": __version__, "numpy": onp.__version__, "autograd": autograd_version,
            "python": platform.python_version()}


class RunWriter:
    """Writes the files of one experiment run into one directory.

    Parameters
    ----------
    out : str or path
        The run directory; created if missing. Files listed by a previous run's
        ``config.json`` in the same directory are removed first, so the directory never
        mixes two runs.
    command : str
        Experiment name recorded in ``config.json`` (e.g. ``"variance"``).
    config : dict
        The complete configuration (every option, including the seed); JSON-serializable.

    Examples
    --------
    >>> writer = RunWriter("results/variance", "variance", {"seed": 0, "reps": 200})  # doctest: +SKIP
    >>> writer.table("variance", table); writer.figure("variance_vs_samples", fig)  # doctest: +SKIP
    >>> writer.close()                                                                  # doctest: +SKIP
    """

    def __init__(self, out, command, config, name="out"):
        self.out = check_writable_dir(out, name)
        self.command = command
        self.config = dict(config)
        self.files = []
        self._remove_previous_run()
        self._write_config()

    def path(self, filename):
        return os.path.join(self.out, filename)

    def _remove_previous_run(self):
        try:
            record = read_config(self.out)
        except (OSError, ValueError):
            return
        if not isinstance(record, dict) or "vi_lab" not in record.get("versions", {}):
            return                      # not a directory written by vi_lab: touch nothing
        previous = record.get("files", [])
        for filename in previous:
            # only plain names written by a previous RunWriter, never anything outside the directory
            if os.path.basename(filename) == filename and os.path.isfile(self.path(filename)):
                os.remove(self.path(filename))

    def _write_config(self):
        record = {"command": self.command, "config": self.config, "seed": self.config.get("seed"),
                  "versions": _versions(),
                  "files": sorted(set(self.files + ["config.json"]))}
        write_text(self.path("config.json"),
                   json.dumps(record, indent=1, sort_keys=False, default=_json_default) + "\n")

    def _add(self, filename):
        if filename not in self.files:
            self.files.append(filename)

    def table(self, name, table):
        """Write a DataFrame as ``name.csv``, ``name.json`` (and ``name.parquet`` with pyarrow); returns the paths."""
        paths = write_table(table, self.path(name))
        for p in paths:
            self._add(os.path.basename(p))
        self._write_config()
        return paths

    def figure(self, name, fig, formats=("png", "pdf"), dpi=150):
        """Write a matplotlib figure as ``name.png`` and ``name.pdf``; returns the paths."""
        paths = []
        for fmt in formats:
            filename = f"{name}.{fmt}"
            # fixed metadata so that the same run gives the same files
            metadata = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
            with atomic_path(self.path(filename)) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
            self._add(filename)
            paths.append(self.path(filename))
        self._write_config()
        return paths

    def params(self, name, params):
        """Write model parameters as ``name.npz``; returns the path."""
        filename = f"{name}.npz"
        save_params(self.path(filename), params)
        self._add(filename)
        self._write_config()
        return self.path(filename)

    def json(self, name, obj):
        """Write any JSON-serializable object as ``name.json``."""
        filename = f"{name}.json"
        write_text(self.path(filename), json.dumps(obj, indent=1, default=_json_default) + "\n")
        self._add(filename)
        self._write_config()
        return self.path(filename)

    def close(self):
        """Rewrite ``config.json`` with the final list of files."""
        self._write_config()


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

    def save(self, out, figures=True, name="out"):
        """Write the run directory: every table (CSV + JSON), the parameters (.npz), config.json
        and, if ``figures``, the experiment's figures (PNG + PDF, drawn by :mod:`vi_lab.plotting`).

        Returns
        -------
        RunWriter
            Its ``files`` attribute lists what was written.
        """
        config = dict(self.config)
        if self.model is not None:
            config.setdefault("model", self.model.config())
        writer = RunWriter(out, self.experiment, config, name=name)
        for key, table in self.items():
            writer.table(key, table)
        for key, tree in self.params.items():
            if tree is not None:
                writer.params(key, tree)
        if figures:
            from ..plotting import figures_for
            for key, fig in figures_for(self).items():
                writer.figure(key, fig)
        writer.close()
        return writer
