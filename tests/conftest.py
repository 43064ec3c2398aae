"""Shared fixtures: small models whose every quantity can be enumerated."""
import numpy as onp
import pytest

import vi_lab


def random_params(model, rng, scale=1.5, prior_scale=1.0):
    """Initial params with non-zero prior logits and biases, so tests exercise every term."""
    rng = onp.random.default_rng(rng)
    params = model.init_params(rng, scale=scale)
    params["prior_logits"] = prior_scale * rng.standard_normal(model.n_latent)
    for key in params["decoder"]:
        if key.startswith("b"):
            params["decoder"][key] = 0.5 * rng.standard_normal(params["decoder"][key].shape)
    return params


@pytest.fixture
def small_model():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=5, hidden=(6,))
    return model, random_params(model, 0)


def estimator_problem():
    """A 3-latent, 5-pixel model with 3 datapoints and random q logits, shared by estimator tests."""
    model = vi_lab.BernoulliLVM(3, 5, hidden=(6,))
    params = model.init_params(1, scale=2.0)
    params["prior_logits"] = onp.random.default_rng(11).normal(size=3)
    _, x = model.sample(params, 3, rng=21)
    q_logits = onp.random.default_rng(31).normal(size=(3, 3))
    return model, params, q_logits, x
