"""The problems the experiments run on: data, a model, and a short training run with checkpoints.

By default the experiments measure estimators where they are used: on a model trained for a
short while on the embedded bars-and-stripes data, with the amortized q that training left.
Training uses the exact ELBO gradient (``method="exact_elbo"``), so the starting point does
not favour any of the estimators being compared.
"""
import math
from dataclasses import dataclass, field

import numpy as onp

from .. import data as _data
from .. import exact
from .._validation import check_positive_int
from ..model import BernoulliLVM

__all__ = ["Problem", "load_data", "make_model", "train_checkpoints", "DATA_SETS"]

DATA_SETS = ("bars", "digits", "model")


@dataclass
class Problem:
    """A model at one point of training, with its data and q.

    Attributes
    ----------
    model : BernoulliLVM
    params : dict
        Model parameters at this checkpoint.
    x_train : ndarray of shape (N, L)
    x_valid : ndarray of shape (N_valid, L)
    step : int
        Training steps done.
    fit : FitResult or None
        The training run (its history up to this step); its family gives q.
    q_params : dict or None
        Variational parameters at this checkpoint.
    """

    model: BernoulliLVM
    params: dict
    x_train: onp.ndarray
    x_valid: onp.ndarray
    step: int = 0
    fit: object = None
    q_params: dict = field(default=None)

    def q_logits(self, x):
        """Logits (N, K) of the amortized q at this checkpoint for data x (N, L)."""
        if self.fit is None or self.q_params is None:
            raise ValueError("this problem has no trained q; train it with train_checkpoints")
        return onp.asarray(self.fit.family.logits(self.q_params, x, None))


def load_data(name="bars", latent=8, seed=0):
    """Training and held-out data by name.

    Parameters
    ----------
    name : {"bars", "digits", "model"}
        "bars": the embedded 4x4 bars-and-stripes set with 5% pixel noise (120 training,
        60 held-out rows, :func:`vi_lab.data.default`); "digits": binarized 8x8 digits
        (scikit-learn), 80/20 split; "model": 240 samples from a random ground-truth model with
        ``latent`` latents and 16 pixels, 75/25 split.
    latent : int
        K of the ground-truth model for "model".
    seed : int

    Returns
    -------
    x_train : ndarray of shape (N, L), values in {0., 1.}
    x_valid : ndarray of shape (N_valid, L), values in {0., 1.}
    """
    if name == "bars":
        _, _, x_train, x_valid = _data.default(seed)
        return x_train, x_valid
    if name == "digits":
        return _data.split(_data.digits(), 0.2, seed)
    if name == "model":
        truth = BernoulliLVM(latent, 16, hidden=(32,))
        x = _data.from_model(truth, truth.init_params(seed + 1, scale=3.0), 240, seed)
        return _data.split(x, 0.25, seed)
    raise ValueError(f"data: unknown data set {name!r}; expected one of {', '.join(DATA_SETS)}")


def make_model(latent, n_obs, hidden=(32,), n_data=1):
    """A BernoulliLVM, after checking that 2**latent states can be enumerated."""
    latent = check_positive_int(latent, "latent")
    exact.check_enumerable(latent, n_data, n_obs)
    return BernoulliLVM(latent, n_obs, hidden=tuple(hidden))


def _gcd_all(values):
    out = 0
    for v in values:
        out = math.gcd(out, int(v))
    return out or 1


def train_checkpoints(model, x_train, x_valid, checkpoints, method="exact_elbo", estimator=None, n_samples=1,
                      learning_rate=0.01, batch_size=None, rng=0, progress=False, record_every=None):
    """Train once and return the model (and q) at each requested step.

    Parameters
    ----------
    model : BernoulliLVM
    x_train, x_valid : ndarray of shape (N, L) and (N_valid, L)
    checkpoints : sequence of int
        Training steps at which to take a snapshot (0 = the initialization).
    method, estimator, n_samples, learning_rate, batch_size
        Passed to :func:`vi_lab.inference.fit` (an amortized encoder is trained alongside).
    rng : int
    progress : bool
    record_every : int, optional
        History resolution; default the greatest common divisor of the checkpoints. It does
        not change the trained parameters (separate random streams).

    Returns
    -------
    list of Problem
        One per checkpoint, in increasing step order.
    """
    from ..inference import fit

    steps = sorted({check_positive_int(int(c), "checkpoints (each step)", minimum=0) for c in checkpoints})
    if not steps:
        raise ValueError("checkpoints: expected at least one training step count (0 is allowed)")
    snaps = {}

    def capture(result, step):
        if step in steps:
            snaps[step] = (result.params, result.q_params)
        return False

    every = record_every or _gcd_all([s for s in steps if s > 0] or [1])
    result = fit(model, x_train, method=method, estimator=estimator, n_samples=n_samples, steps=max(steps),
                 batch_size=batch_size, learning_rate=learning_rate, x_valid=x_valid, record_every=every,
                 rng=rng, progress=progress, callback=capture)
    if result.interrupted:
        raise KeyboardInterrupt
    return [Problem(model, snaps[s][0], x_train, x_valid, s, result, snaps[s][1]) for s in steps]
