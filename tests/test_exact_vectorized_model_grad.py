"""The estimators' model gradient of R replicates in one pass equals one autograd pass per replicate."""
import numpy as onp
import pytest

import vi_lab
from vi_lab import estimators
from vi_lab._tree import flatten
from vi_lab.estimators.base import _stock_model, weighted_log_density_grads
from conftest import random_params


class _OwnDensities(vi_lab.BernoulliLVM):
    """The same model with a decoder method of its own: the estimators fall back to a loop over R."""

    def decoder_logits(self, params, z):
        return vi_lab.nn.mlp(params["decoder"], z, self.activation)


def problem(activation="tanh", hidden=(6, 4)):
    kwargs = dict(n_latent=3, n_obs=5, hidden=hidden, activation=activation)
    model, fallback = vi_lab.BernoulliLVM(**kwargs), _OwnDensities(**kwargs)
    params = random_params(model, 3)
    _, x = model.sample(params, 4, rng=1)
    q_logits = onp.random.default_rng(2).standard_normal((4, 3))
    return model, fallback, params, q_logits, x


@pytest.mark.parametrize("activation", sorted(vi_lab.nn.ACTIVATIONS))
@pytest.mark.parametrize("analytic", [False, True])
def test_one_pass_equals_a_reverse_pass_per_replicate(activation, analytic):
    model, fallback, params, _, x = problem(activation)
    assert _stock_model(model) and not _stock_model(fallback)
    rng = onp.random.default_rng(0)
    z = (rng.random((7, 3, 4, 3)) < 0.4).astype(float)
    z[0, 0] = rng.random((4, 3))                              # relaxed values too (Concrete)
    weights = rng.random((7, 3, 4))
    ours = weighted_log_density_grads(model, params, x, z, weights, analytic)
    loop = weighted_log_density_grads(fallback, params, x, z, weights, analytic)
    onp.testing.assert_allclose(flatten(ours)[0], flatten(loop)[0], rtol=1e-12, atol=1e-14)
    assert ours["decoder"]["W0"].shape == (7,) + params["decoder"]["W0"].shape
    # replicate r's gradient depends only on replicate r's samples
    alone = weighted_log_density_grads(model, params, x, z[3:4], weights[3:4], analytic)
    onp.testing.assert_allclose(flatten(alone)[0], flatten({k: (v[3:4] if not isinstance(v, dict) else
                                {kk: vv[3:4] for kk, vv in v.items()}) for k, v in ours.items()})[0],
                                rtol=1e-12, atol=1e-14)


def bernoulli_estimators():
    out = []
    for name in estimators.names():
        est = estimators.get(name)
        if est.latent == "bernoulli" and name != "exact":
            out.append(name)
    return out


@pytest.mark.parametrize("name", bernoulli_estimators())
def test_every_estimator_gives_the_per_replicate_model_gradient(name):
    model, fallback, params, q_logits, x = problem()
    est = estimators.get(name)
    n_samples = max(2, est.min_samples)
    fast = est(model, params, q_logits, x, n_samples, rng=5, n_reps=6)
    if est.stateful:
        est = estimators.get(name)                            # same starting state for the loop
    slow = est(fallback, params, q_logits, x, n_samples, rng=5, n_reps=6)
    onp.testing.assert_allclose(flatten(fast[0])[0], flatten(slow[0])[0], rtol=1e-12, atol=1e-13, err_msg=name)
    onp.testing.assert_allclose(fast[1], slow[1], rtol=1e-12, atol=1e-13, err_msg=name)
