"""Input checks and random-state handling shared by every module.

Every public function validates its inputs here so that a user mistake gives one
clear ``ValueError`` naming the argument, what it got, and what was expected,
instead of a NaN or a broadcasting error three calls deeper.
"""
import numbers

import numpy as onp
from autograd.tracer import getval

__all__ = ["check_rng", "check_binary", "check_logits", "check_finite_tree", "check_positive_int", "check_model",
           "check_params", "check_bool", "check_real_array", "leaf_path"]


def check_rng(rng):
    """Turn ``rng`` into a ``numpy.random.Generator``.

    Parameters
    ----------
    rng : int, numpy.random.Generator or None
        An int is used as a seed, a Generator is returned unchanged (so the caller's
        stream advances), ``None`` draws fresh entropy from the OS. numpy's global
        state is never used.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(rng, onp.random.Generator):
        return rng
    if rng is None:
        return onp.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng: a seed must be a non-negative int, got {rng}")
        return onp.random.default_rng(int(rng))
    raise ValueError(
        f"rng: expected an int seed or a numpy.random.Generator, got {type(rng).__name__}"
    )


def check_positive_int(value, name, minimum=1):
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_binary(x, n_cols, name="x"):
    """Validate a binary data matrix and return it as float64 of shape (N, n_cols).

    Parameters
    ----------
    x : array_like of shape (N, n_cols) or (n_cols,), values in {0, 1}
        A 1-D input is taken as a single datapoint and returned with shape (1, n_cols).
    n_cols : int
        Expected number of columns (L for observations, K for latent states).
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray of shape (N, n_cols), values in {0., 1.}
    """
    arr = onp.asarray(getval(x))
    if arr.dtype == object or not (onp.issubdtype(arr.dtype, onp.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric 0/1 array, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        # casting would silently drop the imaginary part
        raise ValueError(f"{name}: expected a real 0/1 array, got complex dtype {arr.dtype}")
    arr = arr.astype(onp.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (N, {n_cols}), got an array with shape {arr.shape}")
    if arr.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns (shape (N, {n_cols})), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got shape {arr.shape}")
    if onp.isnan(arr).any():
        raise ValueError(f"{name}: contains NaN; expected values in {{0, 1}}")
    bad = (arr != 0.0) & (arr != 1.0)
    if bad.any():
        example = arr[bad].flat[0]
        raise ValueError(
            f"{name}: expected binary values in {{0, 1}}, found {int(bad.sum())} other value(s), e.g. {example!r}"
        )
    return arr


def check_real_array(value, name):
    """``value`` as a real numeric ndarray (untraced); complex, object, string arrays raise.

    Complex input is refused rather than cast: a cast drops the imaginary part silently.
    """
    arr = getval(value)
    try:
        arr_np = onp.asarray(arr)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real numeric array, got {type(arr).__name__}") from exc
    if arr_np.dtype.kind == "c":
        raise ValueError(f"{name}: expected real values, got complex dtype {arr_np.dtype}")
    if arr_np.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a real numeric array, got dtype {arr_np.dtype}")
    return arr_np


def check_bool(value, name):
    """Return ``value`` if it is a real bool (Python or NumPy), else raise.

    Truthiness is not enough: ``"no"``, ``"False"``, ``0.5`` or ``[]`` would silently mean
    True or False.
    """
    if isinstance(value, (bool, onp.bool_)):
        return bool(value)
    raise ValueError(f"{name}: expected True or False, got {value!r} ({type(value).__name__})")


def check_logits(logits, shape, name="q_logits"):
    """Validate an array of real logits of an exact expected ``shape`` (no NaN; +-inf allowed)."""
    arr_np = check_real_array(logits, name)
    if arr_np.shape != tuple(shape):
        dims = ", ".join(str(s) for s in shape)
        raise ValueError(f"{name}: expected shape ({dims}), got {arr_np.shape}")
    if onp.isnan(arr_np).any():
        raise ValueError(f"{name}: contains NaN; expected finite (or +-inf) logits")
    return logits


def leaf_path(path, key):
    """``params`` + ``"decoder"`` -> ``params["decoder"]``: how error messages name a leaf."""
    return f'{path}["{key}"]' if isinstance(key, str) else f"{path}[{key!r}]"


def _check_finite_leaf(arr, path):
    arr = onp.asarray(arr)
    if arr.dtype.kind == "c":
        raise ValueError(f"{path}: has complex dtype {arr.dtype}; the model parameters must be real")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{path}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not onp.isfinite(arr).all():
        n_nan, n_pos, n_neg = int(onp.isnan(arr).sum()), int(onp.isposinf(arr).sum()), int(onp.isneginf(arr).sum())
        what = ", ".join(f"{count} {label}" for count, label in ((n_nan, "NaN"), (n_pos, "+inf"), (n_neg, "-inf"))
                         if count)
        raise ValueError(f"{path}: contains {what} (of {arr.size} entries); the model parameters must be "
                         f"finite (an infinite logit makes log p(x) -inf and every gradient NaN)")


def check_finite_tree(params, name="params"):
    """Raise if any array in a nested dict/list of arrays contains NaN or +-inf, naming the leaf."""
    def walk(node, path):
        node = getval(node)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, leaf_path(path, key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        else:
            _check_finite_leaf(getval(node), path)
    walk(params, name)
    return params


def check_params(model, params, name="params"):
    """The one parameter check every entry point runs: structure, shapes and finiteness.

    Parameters
    ----------
    model : BernoulliLVM or GaussianLVM (anything with a ``check_params`` method)
    params : dict
        Must have exactly the keys of ``model.init_params()`` at every level, every leaf the
        shape the model expects, real and finite (no NaN, no +-inf).
    name : str
        How the error message names the argument.

    Returns
    -------
    dict
        ``params`` unchanged.

    Raises
    ------
    ValueError
        Naming the leaf (``params["decoder"]["W0"]``) and what is wrong with it.
    """
    method = getattr(model, "check_params", None)
    if callable(method):
        method(params, name)
    else:
        check_finite_tree(params, name)
    return params


def check_model(model, latent="bernoulli", name="model"):
    """Raise unless ``model`` has the latent type a routine needs.

    Parameters
    ----------
    model : object
        A model such as :class:`vi_lab.BernoulliLVM` (``latent = "bernoulli"``) or
        :class:`vi_lab.GaussianLVM` (``latent = "gaussian"``).
    latent : {"bernoulli", "gaussian"}
    """
    got = getattr(model, "latent", None)
    if got != latent or getattr(model, "n_latent", None) is None:
        kind = "BernoulliLVM" if latent == "bernoulli" else "GaussianLVM"
        raise ValueError(
            f"{name}: expected a model with {latent} latents (a {kind}), got {type(model).__name__}"
            + (f" with {got} latents" if got else ""))
    return model
