"""The result of a training run, and saving/loading it to ``.npz`` + ``.json``.

A saved run is two files with the same stem:

- ``<stem>.npz``: every parameter array under a flat key, the model's at its own path
  (``"prior_logits"``, ``"decoder/W0"``, ...) and the variational family's under ``"q/"``
  (``"q/logits"`` for a MeanField table, ``"q/W0"``, ... for an encoder);
- ``<stem>.json``: the run's configuration (model, family, method, estimator, optimizer,
  sizes, seed) and its history, one list per recorded quantity.

Both are plain formats: ``numpy.load`` and ``json.load`` read them without vi_lab.
"""
import json
import os

import numpy as onp

from .._io import atomic_path, flatten_params, unflatten_params, write_text

__all__ = ["FitResult", "load", "flatten_params", "unflatten_params"]

_FORMAT = "vi_lab.inference.FitResult"
_FORMAT_VERSION = 1


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
        meta = {
            "format": _FORMAT, "format_version": _FORMAT_VERSION, "method": self.method,
            "interrupted": self.interrupted, "model": self.model.config(),
            "family": None if self.family is None else self.family.config(),
            "config": self.config,
            # tolist keeps ints as ints and writes floats with round-trip precision
            "history": {key: onp.asarray(values).tolist() for key, values in self.history.items()},
        }
        npz_path, json_path = stem + ".npz", stem + ".json"
        with atomic_path(npz_path) as tmp:
            with open(tmp, "wb") as fh:
                onp.savez(fh, **arrays)
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
    """
    from ..variational import family_from_config

    stem = _stem(path)
    json_path, npz_path = stem + ".json", stem + ".npz"
    for p in (json_path, npz_path):
        if not os.path.exists(p):
            raise ValueError(f"path: {p!r} does not exist; a saved run is a .npz and a .json file with the same stem")
    with open(json_path) as fh:
        meta = json.load(fh)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"path: {json_path!r} is not a saved vi_lab run (format {meta.get('format')!r})")
    with onp.load(npz_path) as data:
        flat = {key: data[key] for key in data.files}
    q_flat = {key[2:]: value for key, value in flat.items() if key.startswith("q/")}
    params = unflatten_params({key: value for key, value in flat.items() if not key.startswith("q/")})
    history = {key: onp.asarray(values, dtype=onp.int64 if all(isinstance(v, int) for v in values) and values
                                 else float) for key, values in meta["history"].items()}
    family = None if meta["family"] is None else family_from_config(meta["family"])
    return FitResult(_model_from_config(meta["model"]), params,
                     unflatten_params(q_flat) if q_flat else None, family, history,
                     meta["method"], meta["config"], meta["interrupted"])
