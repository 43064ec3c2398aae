"""Embedded and generated binary data sets (no download, ever).

- :func:`bars_and_stripes`: the classic Helmholtz-machine toy data.
- :func:`from_model`: samples from a ground-truth model, so the true log-likelihood is known.
- :func:`digits`: binarized 8x8 handwritten digits from scikit-learn's bundled copy.
- :func:`default`: the small data set and model that ``make demo`` and the CLI use by default.
"""
import numpy as onp

from ._validation import check_bool, check_rng, check_positive_int, check_real_array

__all__ = ["bars_and_stripes", "from_model", "digits", "default", "split"]


def bars_and_stripes(side=4, noise=0.0, n_repeats=1, rng=None):
    """Every bars-and-stripes image of a ``side`` x ``side`` grid, flattened.

    Parameters
    ----------
    side : int, default 4
        Grid side; L = side**2 pixels.
    noise : float in [0, 0.5), default 0.0
        Probability that each pixel is flipped independently.
    n_repeats : int, default 1
        How many copies of the pattern set to stack (each with its own noise).
    rng : int or numpy.random.Generator
        Only used when ``noise > 0``.

    Returns
    -------
    ndarray of shape (n_repeats * (2**(side + 1) - 2), side**2), values in {0., 1.}

    Notes
    -----
    A pattern is either a set of full rows switched on (stripes) or a set of full columns
    (bars). There are 2**side of each; the blank and the full image are both, so the set has
    2**(side + 1) - 2 distinct patterns. Row-major flattening: pixel (i, j) is column i*side + j.
    """
    side = check_positive_int(side, "side", minimum=2)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    if not 0.0 <= noise < 0.5:
        raise ValueError(f"noise: expected a flip probability in [0, 0.5), got {noise}")
    codes = ((onp.arange(2 ** side)[:, None] >> onp.arange(side)) & 1).astype(onp.float64)  # (2**side, side)
    stripes = onp.repeat(codes, side, axis=1)                  # whole rows on
    bars = onp.tile(codes, (1, side))                          # whole columns on
    patterns = onp.unique(onp.concatenate([stripes, bars]), axis=0)
    x = onp.tile(patterns, (n_repeats, 1))
    if noise > 0:
        rng = check_rng(rng)
        flips = rng.random(x.shape) < noise
        x = onp.where(flips, 1.0 - x, x)
    return x


def from_model(model, params, n, rng=None):
    """Synthetic observations from a ground-truth model.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    n : int
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (n, L), values in {0., 1.}
        x ~ p_theta(x); the latents are discarded (use ``model.sample`` to keep them).
    """
    _, x = model.sample(params, n, rng)
    return x


def digits(threshold=8.0, return_labels=False):
    """Binarized 8x8 handwritten digits (1797 images) from scikit-learn's bundled copy.

    Parameters
    ----------
    threshold : float, default 8.0
        Grey levels run from 0 to 16; a pixel is 1 when its level exceeds ``threshold``.
    return_labels : bool, default False

    Returns
    -------
    x : ndarray of shape (1797, 64), values in {0., 1.}
    labels : ndarray of shape (1797,), int, only if ``return_labels``

    Raises
    ------
    ImportError
        If scikit-learn is not installed; the message says how to install it.
    """
    return_labels = check_bool(return_labels, "return_labels")
    if not 0.0 <= threshold < 16.0:
        raise ValueError(f"threshold: expected a grey level in [0, 16), got {threshold}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # optional dependency
        raise ImportError(
            "vi_lab.data.digits needs scikit-learn (it ships the 8x8 digits, no download): "
            "pip install 'vi_lab[digits]'  or  pip install scikit-learn"
        ) from exc
    bunch = load_digits()
    x = (bunch.data > threshold).astype(onp.float64)
    return (x, bunch.target) if return_labels else x


def split(x, valid_fraction=0.2, rng=None):
    """Shuffle the rows of ``x`` and split them into training and held-out sets.

    Parameters
    ----------
    x : ndarray of shape (N, L)
    valid_fraction : float in (0, 1)
    rng : int or numpy.random.Generator

    Returns
    -------
    x_train : ndarray of shape (N - N_valid, L)
    x_valid : ndarray of shape (N_valid, L), N_valid = max(1, round(valid_fraction * N))
    """
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float, onp.floating, onp.integer)) \
            or not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {valid_fraction!r}")
    x = check_real_array(x, "x")
    if x.ndim != 2:
        # a 1-D array would be split value by value, not datapoint by datapoint
        raise ValueError(f"x: expected a data matrix of shape (N, L), got an array with shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x: need at least 2 rows to split, got {x.shape[0]}")
    perm = check_rng(rng).permutation(x.shape[0])
    n_valid = min(x.shape[0] - 1, max(1, int(round(valid_fraction * x.shape[0]))))
    return x[perm[n_valid:]], x[perm[:n_valid]]


def default(rng=0):
    """The embedded default problem used by ``make demo`` and the CLI.

    Parameters
    ----------
    rng : int or numpy.random.Generator
        Seeds the pixel noise and the model initialization.

    Returns
    -------
    model : BernoulliLVM
        K = 8 latents, L = 16 pixels, one tanh layer of 32 units.
    params : dict
        Initial parameters.
    x_train : ndarray of shape (120, 16)
        Four noisy copies (flip probability 0.05) of the 30 bars-and-stripes 4x4 patterns.
    x_valid : ndarray of shape (60, 16)
        Two more noisy copies, held out.
    """
    from .model import BernoulliLVM

    rng = check_rng(rng)
    x = bars_and_stripes(4, noise=0.05, n_repeats=6, rng=rng)
    model = BernoulliLVM(n_latent=8, n_obs=16, hidden=(32,))
    params = model.init_params(rng)
    return model, params, x[:120], x[120:]
