"""Embedded data sets: exact pattern counts, noise rates, optional scikit-learn digits."""
import sys

import numpy as onp
import pytest

import vi_lab
from vi_lab import data


@pytest.mark.parametrize("side", [2, 3, 4, 5])
def test_bars_and_stripes_has_every_pattern_once(side):
    x = data.bars_and_stripes(side)
    assert x.shape == (2 ** (side + 1) - 2, side ** 2)
    assert len(onp.unique(x, axis=0)) == x.shape[0]
    images = x.reshape(-1, side, side)
    rows_constant = (images == images[:, :, :1]).all(axis=(1, 2))   # stripes: each row uniform
    cols_constant = (images == images[:, :1, :]).all(axis=(1, 2))   # bars: each column uniform
    assert onp.all(rows_constant | cols_constant)
    assert rows_constant.sum() == 2 ** side and cols_constant.sum() == 2 ** side


def test_bars_and_stripes_noise_rate_within_standard_error():
    clean = data.bars_and_stripes(4, n_repeats=200)
    noisy = data.bars_and_stripes(4, noise=0.1, n_repeats=200, rng=0)
    flipped = (clean != noisy).mean()
    se = onp.sqrt(0.1 * 0.9 / clean.size)
    assert abs(flipped - 0.1) < 4 * se
    onp.testing.assert_array_equal(noisy, data.bars_and_stripes(4, noise=0.1, n_repeats=200, rng=0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(side=1), "side"), (dict(side=3, noise=0.5), "noise"), (dict(side=3, n_repeats=0), "n_repeats")])
def test_bars_and_stripes_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.bars_and_stripes(**kwargs)


def test_from_model_is_reproducible_and_binary():
    model = vi_lab.BernoulliLVM(3, 6, hidden=(4,))
    params = model.init_params(0)
    x = data.from_model(model, params, 25, rng=3)
    assert x.shape == (25, 6) and set(onp.unique(x)) <= {0.0, 1.0}
    onp.testing.assert_array_equal(x, data.from_model(model, params, 25, rng=3))


def test_digits_are_binary_and_threshold_monotone():
    x, labels = data.digits(return_labels=True)
    assert x.shape == (1797, 64) and labels.shape == (1797,)
    assert set(onp.unique(x)) == {0.0, 1.0}
    assert data.digits(threshold=2).sum() > x.sum() > data.digits(threshold=14).sum()


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match="pip install"):
        data.digits()


def test_split_partitions_rows():
    x = onp.arange(20, dtype=float).reshape(10, 2)
    train, valid = data.split(x, 0.3, rng=0)
    assert train.shape == (7, 2) and valid.shape == (3, 2)
    onp.testing.assert_array_equal(onp.sort(onp.concatenate([train, valid])[:, 0]), x[:, 0])
    with pytest.raises(ValueError, match="valid_fraction"):
        data.split(x, 1.5)


def test_default_problem_is_small_and_embedded():
    model, params, x_train, x_valid = data.default(0)
    assert (model.n_latent, model.n_obs) == (8, 16)
    assert x_train.shape == (120, 16) and x_valid.shape == (60, 16)
    assert onp.isfinite(vi_lab.exact.log_marginal(model, params, x_train)).all()
