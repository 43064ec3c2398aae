"""The result of a training run, and saving/loading it to ``.npz`` + ``.json``.

A saved run is two files with the same stem:

- ``<stem>.npz``: every parameter array under a flat key, the model's at its own path
  (``"prior_logits"``, ``"decoder/W0"``, ...) and the variational family's under ``"q/"``
  (``"q/logits"`` for a MeanField table, ``"q/W0"``, ... for an encoder);
- ``<stem>.json``: the run's configuration (model, family, method, estimator, optimizer,
  sizes, seed) and its history, one list per recorded quantity.

Both are plain formats: ``numpy.load`` and ``json.load`` read them without vi_lab.

The two files are written one after the other, so they are tied together: a fresh run id is
stored in both (``"__run_id__"`` in the ``.npz``, ``"run_id"`` in the ``.json``) and the
``.json`` holds the SHA-256 of the ``.npz`` arrays (``"npz_sha256"``). :func:`load` refuses a
pair whose ids or hash disagree (an interrupt between the two writes, or a ``.json`` copied next
to another run's ``.npz``), naming both paths.
"""
import hashlib
import json
import os
import uuid
import zipfile

import numpy as onp

from .._io import atomic_path, flatten_params, unflatten_params, write_text

__all__ = ["FitResult", "load", "flatten_params", "unflatten_params"]

_FORMAT = "vi_lab.inference.FitResult"
_FORMAT_VERSION = 2
_RUN_ID_KEY = "__run_id__"
_JSON_KEYS = ("format", "format_version", "method", "interrupted", "model", "family", "config", "history",
              "run_id", "npz_sha256")


def _arrays_sha256(arrays):
    """SHA-256 over the sorted keys, dtypes, shapes and bytes of a dict of arrays."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        arr = onp.ascontiguousarray(arrays[key])
        digest.update(f"{key}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _stem(path):
    path = os.fspath(path)
    for suffix in (".npz", ".json"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


class FitResult:
    """Everything a training run produced.

    Attributes
    ----------
    params : dict
        Final model parameters (same structure as ``model.init_params()``).
    q_params : dict or None
        Final variational parameters (``None`` for ``exact_ml``).
    history : dict of str -> ndarray of shape (R,)
        One equal-length column per recorded quantity, R = number of records. Always
        ``step`` (updates done before the record), ``wall_time`` (seconds of training,
        excluding the time spent recording), ``decoder_evals`` (cumulative decoder evaluations
        spent on gradients), ``objective`` (the method's Monte Carlo objective on the training
        set), ``grad_norm`` (Euclidean norm of the ascent direction over all parameters at
        that step). With exact recording: ``log_px_train`` (mean exact log p(x)),
        ``log_px_valid`` (when ``x_valid`` was given), and for methods with a q
        ``elbo_exact`` (mean exact ELBO) and ``kl_gap`` (mean KL(q || p(z|x)) = log_px_train -
        elbo_exact).
    family : MeanField, Encoder or None
    model : BernoulliLVM
    method : str
    config : dict
        JSON-serializable description of the run (arguments, sizes, seed).
    interrupted : bool
        True when training stopped on KeyboardInterrupt; the history then ends at the last
        record before the interruption, and ``params`` are the last completed update.
    """

    def __init__(self, model, params, q_params, family, history, method, config, interrupted=False):
        self.model, self.params, self.q_params, self.family = model, params, q_params, family
        self.history, self.method, self.config = history, method, config
        self.interrupted = bool(interrupted)

    def __repr__(self):
        steps = int(self.history["step"][-1]) if len(self.history.get("step", [])) else 0
        extra = ""
        if len(self.history.get("log_px_train", [])):
            extra = f", log_px_train={self.history['log_px_train'][-1]:.4f}"
        flag = ", interrupted" if self.interrupted else ""
        return f"<FitResult method={self.method!r} steps={steps}{extra}{flag}>"

    def q_logits(self, x=None):
        """Logits of q(z|x) under the trained family.

        Parameters
        ----------
        x : ndarray of shape (N, L), optional
            Data to encode (Encoder). For a MeanField table x may be omitted (all rows of the
            training set, in order) and otherwise must be the training set itself.

        Returns
        -------
        ndarray of shape (N, K)
        """
        if self.family is None:
            raise ValueError(f"method {self.method!r} has no variational family, so there are no q logits")
        if x is None:
            if self.family.amortized:
                raise ValueError("x: an Encoder needs the data to encode; pass x of shape (N, L)")
            return onp.array(self.q_params["logits"])
        return onp.asarray(self.family.logits(self.q_params, x, None))

    # ------------------------------------------------------------------ saving
    def save(self, path):
        """Write ``<stem>.npz`` (parameters) and ``<stem>.json`` (config, history).

        Parameters
        ----------
        path : str or os.PathLike
            File stem; a trailing ``.npz`` or ``.json`` is stripped. Parent folders are created.

        Returns
        -------
        (str, str)
            The paths of the ``.npz`` and ``.json`` files written.
        """
        stem = _stem(path)
        parent = os.path.dirname(stem)
        if parent:
            os.makedirs(parent, exist_ok=True)
        arrays = flatten_params(self.params)
        if self.q_params is not None:
            arrays.update(flatten_params(self.q_params, "q/"))
        run_id = uuid.uuid4().hex
        meta = {
            "format": _FORMAT, "format_version": _FORMAT_VERSION, "run_id": run_id,
            "npz_sha256": _arrays_sha256(arrays), "method": self.method,
            "interrupted": self.interrupted, "model": self.model.config(),
            "family": None if self.family is None else self.family.config(),
            "config": self.config,
            # tolist keeps ints as ints and writes floats with round-trip precision
            "history": {key: onp.asarray(values).tolist() for key, values in self.history.items()},
        }
        npz_path, json_path = stem + ".npz", stem + ".json"
        with atomic_path(npz_path) as tmp:
            with open(tmp, "wb") as fh:
                onp.savez(fh, **arrays, **{_RUN_ID_KEY: onp.array(run_id)})
        # written second: until it lands, the old .json's run id no longer matches the .npz
        write_text(json_path, json.dumps(meta, indent=1))
        return npz_path, json_path

    @classmethod
    def load(cls, path):
        """Read a run written by :meth:`save`; see :func:`load`."""
        return load(path)


def _model_from_config(config):
    import vi_lab

    config = dict(config)
    name = config.pop("class", None)
    model_cls = getattr(vi_lab, str(name), None)
    if model_cls is None or not isinstance(model_cls, type):
        raise ValueError(f"model config: unknown model class {name!r}; expected a class of vi_lab such as 'BernoulliLVM'")
    if "hidden" in config:
        config["hidden"] = tuple(config["hidden"])
    return model_cls(**config)


def _read_json(json_path):
    try:
        with open(json_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:       # JSONDecodeError is a ValueError
        raise ValueError(f"path: {json_path!r} is not valid JSON (truncated or corrupt?): {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"path: {json_path!r} holds a JSON {type(meta).__name__}, expected an object "
                         f"(a saved vi_lab run)")
    if meta.get("format") != _FORMAT:
        raise ValueError(f"path: {json_path!r} is not a saved vi_lab run (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if version not in (1, _FORMAT_VERSION):
        raise ValueError(f"path: {json_path!r} has format_version {version!r}; this vi_lab reads 1 and "
                         f"{_FORMAT_VERSION}")
    needed = _JSON_KEYS if version == _FORMAT_VERSION else tuple(k for k in _JSON_KEYS
                                                                  if k not in ("run_id", "npz_sha256"))
    missing = [key for key in needed if key not in meta]
    if missing:
        raise ValueError(f"path: {json_path!r} is missing the key(s) {missing} of a saved run")
    if not isinstance(meta["history"], dict) or not isinstance(meta["model"], dict) \
            or not (meta["family"] is None or isinstance(meta["family"], dict)):
        raise ValueError(f"path: {json_path!r}: 'history', 'model' and 'family' must be JSON objects "
                         f"(family may be null)")
    return meta


def _read_npz(npz_path):
    try:
        # our own handle, closed even when numpy fails half-way through a truncated archive
        with open(npz_path, "rb") as fh, onp.load(fh, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"path: {npz_path!r} is not a readable .npz archive (empty, truncated or "
                         f"corrupt?): {type(exc).__name__}: {exc}") from exc


def _history(meta, json_path):
    history, length = {}, None
    for key, values in meta["history"].items():
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
            raise ValueError(f"path: {json_path!r}: history column {key!r} must be a list of numbers")
        if length is not None and len(values) != length:
            raise ValueError(f"path: {json_path!r}: history columns have different lengths "
                             f"({key!r} has {len(values)}, expected {length})")
        length = len(values)
        history[key] = onp.asarray(values, dtype=onp.int64 if values and all(isinstance(v, int) for v in values)
                                   else float)
    return history


def _shape_tree(node):
    if isinstance(node, dict):
        return {k: _shape_tree(v) for k, v in node.items()}
    return tuple(onp.shape(node))


def load(path):
    """Load a run saved with :meth:`FitResult.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The stem, or either file of the pair.

    Returns
    -------
    FitResult
        With the model and family rebuilt from their configs; ``history`` columns are
        bit-identical to the saved ones (int64 for counts, float64 otherwise).

    Raises
    ------
    ValueError
        Naming the path and what is wrong: a missing file; an empty, truncated or corrupt
        ``.npz``; a ``.json`` that is truncated, not an object, or lacks keys; a ``.json`` and
        ``.npz`` from different runs (both paths named); parameters that do not fit the saved
        model or family (keys, shapes, NaN/inf).
    """
    from .._validation import check_params
    from ..variational import family_from_config

    stem = _stem(path)
    json_path, npz_path = stem + ".json", stem + ".npz"
    for p in (json_path, npz_path):
        if not os.path.exists(p):
            raise ValueError(f"path: {p!r} does not exist; a saved run is a .npz and a .json file with the same stem")
    meta = _read_json(json_path)
    flat = _read_npz(npz_path)
    npz_id = flat.pop(_RUN_ID_KEY, None)
    if meta["format_version"] == _FORMAT_VERSION:
        npz_id = None if npz_id is None or npz_id.shape != () else str(npz_id)
        if npz_id != meta["run_id"]:
            raise ValueError(f"path: {json_path!r} and {npz_path!r} belong to different runs (run id "
                             f"{meta['run_id']!r} vs {npz_id!r}); the save was interrupted or one file was "
                             f"replaced, so the history would not match the parameters")
        if _arrays_sha256(flat) != meta["npz_sha256"]:
            raise ValueError(f"path: {npz_path!r} does not match the content hash recorded in {json_path!r}; "
                             f"the parameters were modified or corrupted after saving")
    q_flat = {key[2:]: value for key, value in flat.items() if key.startswith("q/")}
    params = unflatten_params({key: value for key, value in flat.items() if not key.startswith("q/")})
    history = _history(meta, json_path)
    try:
        model = _model_from_config(meta["model"])
        family = None if meta["family"] is None else family_from_config(meta["family"])
        check_params(model, params, "params")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"path: {npz_path!r} (with {json_path!r}) does not hold a run of the saved model "
                         f"{meta['model']}: {exc}") from exc
    q_params = unflatten_params(q_flat) if q_flat else None
    if family is not None:
        expected = _shape_tree(family.init_params(0))
        if q_params is None or _shape_tree(q_params) != expected:
            got = None if q_params is None else _shape_tree(q_params)
            raise ValueError(f"path: {npz_path!r}: variational parameters {got} do not fit the saved family "
                             f"{family!r} (expected {expected})")
    elif q_params is not None:
        raise ValueError(f"path: {npz_path!r} holds variational parameters but {json_path!r} records no family")
    return FitResult(model, params, q_params, family, history, meta["method"], meta["config"],
                     bool(meta["interrupted"]))
