"""Exact variances where the suite only checked means: VIMCO's leave-one-out signals on the toy.

A leave-one-out baseline that is any function of the *other* samples keeps the estimator
unbiased, so a wrong normalizer in it passes every mean check; only its variance shows it.
"""
import itertools

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from vi_lab import estimators, toy

N_REPS = 40000


def _vimco_exact_moments(phi, t, n_samples):
    """Mean and variance of sum_s (L - L_{-s}) (b_s - p) over the 2**S outcomes b, written from the paper.

    L = log (1/S) sum_j exp f(b_j); L_{-s} replaces f(b_s) by the mean of the others' f (Mnih &
    Rezende 2016, eq. 10), f(b) = (b - t)^2.
    """
    p = expit(phi)
    mean = second = 0.0
    for b in itertools.product([0.0, 1.0], repeat=n_samples):
        b = np.array(b)
        prob = np.prod(np.where(b == 1, p, 1 - p))
        f = (b - t) ** 2
        bound = logsumexp(f) - np.log(n_samples)
        value = 0.0
        for s in range(n_samples):
            others = np.delete(f, s)
            loo = logsumexp(np.append(others, others.mean())) - np.log(n_samples)
            value += (bound - loo) * (b[s] - p)
        mean += prob * value
        second += prob * value ** 2
    return mean, second - mean ** 2


def _variance_z(samples, exact_var):
    centred = samples - samples.mean()
    var = samples.var(ddof=1)
    se = np.sqrt(max(np.mean(centred ** 4) - var ** 2, 0.0) / samples.size) + 2 * var / samples.size
    return abs(var - exact_var) / se


@pytest.mark.parametrize("phi, t, n_samples", [(0.4, 0.45, 2), (-1.0, 0.2, 3), (1.5, 0.7, 4)])
def test_vimco_generic_mean_and_exact_variance_on_the_toy(phi, t, n_samples):
    mean, var = _vimco_exact_moments(phi, t, n_samples)
    # the mean is the IWAE gradient (an independent enumeration in vi_lab.toy)
    assert mean == pytest.approx(toy.exact_iwae_grad(phi, t, k=n_samples), rel=1e-12, abs=1e-15)
    g = estimators.get("vimco").grad(toy.loss(t), np.array([phi]), n_samples, rng=0, n_reps=N_REPS)[:, 0]
    assert abs(g.mean() - mean) < 4 * g.std() / np.sqrt(N_REPS)
    assert _variance_z(g, var) < 4.0


def test_the_variance_check_catches_a_loo_normalizer_that_keeps_vimco_unbiased():
    """Dividing the leave-one-out sum by S instead of S - 1: still unbiased, different variance."""
    phi, t, n_samples = -1.0, 0.2, 3
    p = expit(phi)
    rng = np.random.default_rng(1)
    b = (rng.random((N_REPS, n_samples)) < p).astype(float)
    f = (b - t) ** 2
    bound = logsumexp(f, axis=1, keepdims=True) - np.log(n_samples)
    loo_mean = (f.sum(axis=1, keepdims=True) - f) / n_samples            # the bug
    expanded = np.repeat(f[:, None, :], n_samples, axis=1)
    idx = np.arange(n_samples)
    expanded[:, idx, idx] = loo_mean
    wrong = ((bound - (logsumexp(expanded, axis=2) - np.log(n_samples))) * (b - p)).sum(axis=1)
    mean, var = _vimco_exact_moments(phi, t, n_samples)
    assert abs(wrong.mean() - mean) < 4 * wrong.std() / np.sqrt(N_REPS)   # the mean cannot tell
    assert _variance_z(wrong, var) > 4.0                                   # the variance can
