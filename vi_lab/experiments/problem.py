"""The problems the experiments run on: data, a model, and a short training run with checkpoints.

By default the experiments measure estimators where they are used: on a model trained for a
short while on the embedded bars-and-stripes data, with the amortized q that training left.
Training uses the exact ELBO gradient (``method="exact_elbo"``), so the starting point does
not favour any of the estimators being compared.
"""
import math
import os
from dataclasses import dataclass, field

import numpy as onp

from .. import data as _data
from .. import exact
from .._validation import check_positive_int
from ..model import BernoulliLVM

__all__ = ["Problem", "load_data", "make_model", "train_checkpoints", "load_run", "problem_from_run", "DATA_SETS"]

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
        """Logits (N, K) of the trained q at this checkpoint for data x (N, L).

        For an amortized encoder x may be any data; for a per-datapoint (MeanField) table x must be
        the first rows of the training data the table was fitted to.
        """
        if self.fit is None or self.q_params is None or self.fit.family is None:
            raise ValueError("this problem has no trained q; train it with train_checkpoints")
        family = self.fit.family
        if getattr(family, "amortized", True):
            return onp.asarray(family.logits(self.q_params, x, None))
        x = onp.asarray(x)
        n = x.shape[0]
        if n > self.x_train.shape[0] or not onp.array_equal(x, self.x_train[:n]):
            raise ValueError("x: a per-datapoint q (MeanField) has logits only for the training rows it was "
                             "fitted to; pass the first rows of x_train")
        return onp.asarray(family.logits(self.q_params, x, onp.arange(n)))


def load_data(name="bars", latent=8, seed=0, valid_fraction=None, bars_copies=None):
    """Training and held-out data by name.

    Parameters
    ----------
    name : {"bars", "digits", "model"}
        "bars": the embedded 4x4 bars-and-stripes patterns with 5% pixel noise (by default 6 noisy
        copies of the 30 patterns: 120 training, 60 held-out rows, :func:`vi_lab.data.default`);
        "digits": binarized 8x8 digits (scikit-learn), 80/20 split; "model": 240 samples from a
        random ground-truth model with ``latent`` latents and 16 pixels, 75/25 split.
    latent : int
        K of the ground-truth model for "model".
    seed : int
    valid_fraction : float in (0, 1), optional
        Held-out fraction (default: 1/3, 0.2 and 0.25 as above).
    bars_copies : int, optional
        "bars" only: noisy copies of the 30 patterns (default 6). More copies give a larger
        training set of the same distribution, which a model cannot memorize.

    Returns
    -------
    x_train : ndarray of shape (N, L), values in {0., 1.}
    x_valid : ndarray of shape (N_valid, L), values in {0., 1.}
    """
    if name not in DATA_SETS:
        raise ValueError(f"data: unknown data set {name!r}; expected one of {', '.join(DATA_SETS)}")
    if bars_copies is not None:
        bars_copies = check_positive_int(bars_copies, "bars_copies")
        if name != "bars":
            raise ValueError(f"bars_copies: only the bars data set has noisy copies, not {name!r}")
    if name == "bars":
        if valid_fraction is None and bars_copies is None:
            _, _, x_train, x_valid = _data.default(seed)
            return x_train, x_valid
        x = _data.bars_and_stripes(4, noise=0.05, n_repeats=bars_copies or 6, rng=seed)
        return _data.split(x, 1 / 3 if valid_fraction is None else valid_fraction, seed)
    if name == "digits":
        return _data.split(_data.digits(), 0.2 if valid_fraction is None else valid_fraction, seed)
    truth = BernoulliLVM(latent, 16, hidden=(32,))
    x = _data.from_model(truth, truth.init_params(seed + 1, scale=3.0), 240, seed)
    return _data.split(x, 0.25 if valid_fraction is None else valid_fraction, seed)


def load_run(path, name="from_run"):
    """A saved training run: a :class:`~vi_lab.inference.FitResult` path stem (``.../run``, either file of
    the pair), or a directory holding ``run.npz`` and ``run.json`` (as a study cell writes it).

    Raises
    ------
    ValueError
        Naming ``name`` and the path when it is neither, or when the files are not a vi_lab run.
    """
    from ..inference import FitResult, load
    if isinstance(path, FitResult):
        return path
    path = os.fspath(path)
    stem = os.path.join(path, "run") if os.path.isdir(path) else path
    for suffix in (".npz", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if not (os.path.exists(stem + ".npz") and os.path.exists(stem + ".json")):
        where = f"directory {path!r} has no run.npz + run.json" if os.path.isdir(path) else \
            f"{stem + '.npz'!r} and {stem + '.json'!r} do not both exist"
        raise ValueError(f"{name}: {where}; pass a saved run (the stem of a FitResult.save pair, or a study cell "
                         f"directory)")
    try:
        run = load(stem)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not isinstance(run.model, BernoulliLVM):
        raise ValueError(f"{name}: {stem!r} holds a {type(run.model).__name__}; the experiments use a BernoulliLVM")
    return run


def problem_from_run(run, x_train, x_valid, name="from_run"):
    """The :class:`Problem` of a loaded run at its last step, checked against the data it is measured on."""
    model = run.model
    if x_train.shape[1] != model.n_obs:
        raise ValueError(f"{name}: the run's model has L = {model.n_obs} observations, the data have "
                         f"L = {x_train.shape[1]}; pass the data set the run was trained on")
    exact.check_enumerable(model.n_latent, x_train.shape[0], model.n_obs)
    steps = run.config.get("steps_done", int(run.history["step"][-1]) if len(run.history.get("step", [])) else 0)
    return Problem(model, run.params, x_train, x_valid, int(steps), run, run.q_params)


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
