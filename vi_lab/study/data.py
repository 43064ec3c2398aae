"""The data of a study cell: a data set split into training and held-out rows by ``split_seed``."""
import functools

import numpy as onp

from .. import data as _data
from ..experiments.problem import load_data

__all__ = ["load_split"]


@functools.lru_cache(maxsize=16)
def _split(name, latent, valid_fraction, split_seed):
    x_train, x_valid = load_data(name, latent=latent, seed=split_seed)
    # re-split the union so that every data set honours valid_fraction (bars ships as 120/60)
    x = onp.concatenate([x_train, x_valid], axis=0)
    x_train, x_valid = _data.split(x, valid_fraction, split_seed)
    x_train.flags.writeable = False
    x_valid.flags.writeable = False
    return x_train, x_valid


def load_split(name, latent, valid_fraction, split_seed):
    """Training and held-out rows of data set ``name``.

    Parameters
    ----------
    name : {"bars", "digits", "model"}
        See ``vi_lab.experiments.problem.load_data`` ("model" samples a random model with
        ``latent`` latents and 16 pixels).
    latent : int
        K (used by "model" only).
    valid_fraction : float in (0, 1)
        Share of the rows held out.
    split_seed : int
        Seed of the split (and of the "bars" noise and the "model" samples).

    Returns
    -------
    x_train : ndarray of shape (N, L), values in {0., 1.} (read-only, cached)
    x_valid : ndarray of shape (N_valid, L), values in {0., 1.}
    """
    return _split(str(name), int(latent), float(valid_fraction), int(split_seed))
