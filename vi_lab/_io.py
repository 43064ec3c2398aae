"""Atomic file writes and the flat ``.npz`` format for nested parameter dicts.

Shared by saved training runs (:mod:`vi_lab.inference`) and experiment run directories
(:mod:`vi_lab.experiments`). Every file is written to a temporary name in the target
directory and moved into place with :func:`os.replace`, which is atomic on POSIX and
Windows: an interrupted run leaves the old file or the new one, never half of one.
"""
import os
import tempfile
from contextlib import contextmanager

import numpy as onp

__all__ = ["atomic_path", "write_text", "flatten_params", "unflatten_params", "save_params", "load_params"]


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temporary name keeps the extension of ``path`` so that writers that infer the format
    from the name (matplotlib) still work. The final file gets the permissions an ordinary
    ``open(path, "w")`` would give (mkstemp alone would leave it readable by its owner only).
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    root, ext = os.path.splitext(base)
    fd, tmp = tempfile.mkstemp(prefix=f".{root}.", suffix=f".tmp{ext}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def flatten_params(params, prefix=""):
    """Nested dicts (or lists) of arrays -> flat dict with "/"-joined keys, e.g. ``{"decoder/W0": ...}``."""
    if isinstance(params, dict):
        items = params.items()
    elif isinstance(params, (list, tuple)):
        items = enumerate(params)
    else:
        return {prefix.rstrip("/"): onp.asarray(params)}
    flat = {}
    for key, value in items:
        if "/" in str(key):
            raise ValueError(f"params: key {key!r} contains '/', which is reserved as the path separator")
        flat.update(flatten_params(value, f"{prefix}{key}/"))
    return flat


def unflatten_params(flat):
    """Inverse of :func:`flatten_params` (lists come back as dicts with string keys)."""
    out = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = onp.array(value)
    return out


def save_params(path, params):
    """Save a nested dict of arrays to ``.npz`` atomically, keys joined by "/" (e.g. ``decoder/W0``)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            onp.savez(fh, **flatten_params(params))


def load_params(path):
    """Inverse of :func:`save_params`: returns ``{"prior_logits": ..., "decoder": {...}}``."""
    with onp.load(path) as data:
        return unflatten_params({key: data[key] for key in data.files})
