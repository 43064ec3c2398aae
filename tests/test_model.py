"""BernoulliLVM: shapes, densities against hand-written formulas, sampling, randomness hygiene."""
import numpy as onp
import pytest
from scipy.special import expit

import vi_lab
from conftest import random_params


def test_init_params_structure_and_reproducibility():
    model = vi_lab.BernoulliLVM(n_latent=4, n_obs=7, hidden=(5, 3))
    p1, p2, p3 = model.init_params(3), model.init_params(3), model.init_params(4)
    assert p1["prior_logits"].shape == (4,)
    assert [p1["decoder"][k].shape for k in ("W0", "b0", "W1", "b1", "W2", "b2")] == [
        (4, 5), (5,), (5, 3), (3,), (3, 7), (7,)]
    onp.testing.assert_array_equal(p1["decoder"]["W0"], p2["decoder"]["W0"])
    assert not onp.allclose(p1["decoder"]["W0"], p3["decoder"]["W0"])
    assert model.n_params(p1) == 4 + 4 * 5 + 5 + 5 * 3 + 3 + 3 * 7 + 7


def test_linear_decoder_log_joint_matches_hand_formula():
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=())
    params = random_params(model, 1)
    W, c, b = params["decoder"]["W0"], params["decoder"]["b0"], params["prior_logits"]
    z = onp.array([[1.0, 0.0], [0.0, 1.0]])
    x = onp.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    px = expit(z @ W + c)
    pz = expit(b)
    expected = (onp.log(pz ** z * (1 - pz) ** (1 - z)).sum(1)
                + onp.log(px ** x * (1 - px) ** (1 - x)).sum(1))
    onp.testing.assert_allclose(model.log_joint(params, x, z), expected, rtol=1e-12)


def test_log_likelihood_broadcasts_over_leading_axes(small_model):
    model, params = small_model
    z = vi_lab.exact.all_states(3)                      # (8, 3)
    x = onp.eye(5)[:2]                                  # (2, 5)
    table = model.log_likelihood(params, x[:, None, :], z[None, :, :])
    assert table.shape == (2, 8)
    onp.testing.assert_allclose(table[1, 4], model.log_likelihood(params, x[1], z[4]))


def test_prior_normalizes_for_extreme_logits():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=2, hidden=())
    params = model.init_params(0)
    params["prior_logits"] = onp.array([1e4, -1e4, 3.0])
    log_p = model.log_prior(params, vi_lab.exact.all_states(3))
    assert onp.all(onp.isfinite(log_p))
    onp.testing.assert_allclose(onp.exp(log_p).sum(), 1.0, rtol=1e-12)
    # the only states with mass have z1 = 1, z2 = 0
    onp.testing.assert_allclose(log_p[4], onp.log(expit(-3.0)), rtol=1e-12)


def test_sample_shapes_values_and_seed(small_model):
    model, params = small_model
    z, x = model.sample(params, 50, rng=7)
    assert z.shape == (50, 3) and x.shape == (50, 5)
    assert z.dtype == onp.float64 and set(onp.unique(z)) <= {0.0, 1.0} and set(onp.unique(x)) <= {0.0, 1.0}
    z2, x2 = model.sample(params, 50, rng=onp.random.default_rng(7))
    onp.testing.assert_array_equal(z, z2)
    onp.testing.assert_array_equal(x, x2)
    z3, _ = model.sample(params, 50, rng=8)
    assert not onp.array_equal(z, z3)


def test_numpy_global_random_state_is_never_touched(small_model):
    model, params = small_model
    onp.random.seed(123)
    before = onp.random.get_state()[1].copy()
    model.init_params(1)
    model.sample(params, 10, rng=2)
    vi_lab.variational.sample(onp.zeros((4, 3)), 5, rng=3)
    vi_lab.data.bars_and_stripes(3, noise=0.1, rng=4)
    onp.testing.assert_array_equal(onp.random.get_state()[1], before)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_latent=0, n_obs=3), "n_latent"),
    (dict(n_latent=2, n_obs=-1), "n_obs"),
    (dict(n_latent=2.5, n_obs=3), "n_latent"),
    (dict(n_latent=2, n_obs=3, hidden=(0,)), "hidden"),
    (dict(n_latent=2, n_obs=3, activation="sigmoidal"), "activation"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vi_lab.BernoulliLVM(**kwargs)


@pytest.mark.parametrize("rng", [-1, "seed", 1.5, True])
def test_bad_rng_is_rejected(small_model, rng):
    model, params = small_model
    with pytest.raises(ValueError, match="rng"):
        model.sample(params, 3, rng=rng)


def test_stable_tanh_gradient_for_huge_preactivations():
    import autograd
    from vi_lab.nn import tanh
    grad = autograd.elementwise_grad(tanh)(onp.array([-1e4, -400.0, 0.0, 0.3, 400.0]))
    onp.testing.assert_allclose(grad, [0.0, 0.0, 1.0, 1 - onp.tanh(0.3) ** 2, 0.0], rtol=1e-14)


def test_traced_and_untraced_decoder_agree_on_three_dimensional_input(small_model):
    import autograd
    model, params = small_model
    z = (onp.random.default_rng(0).random((4, 2, 3)) < 0.5).astype(float)
    plain = model.decoder_logits(params, z)
    assert plain.shape == (4, 2, 5)
    traced = {}
    autograd.grad(lambda p: (traced.setdefault("a", model.decoder_logits(p, z)) ** 2).sum())(params)
    onp.testing.assert_allclose(autograd.tracer.getval(traced["a"]), plain, rtol=1e-13)


def test_exact_routines_reject_a_gaussian_model():
    gauss = vi_lab.GaussianLVM(n_latent=2, n_obs=3, hidden=())
    with pytest.raises(ValueError, match="bernoulli latents"):
        vi_lab.exact.log_marginal(gauss, gauss.init_params(0), onp.zeros((1, 3)))


def test_ancestral_samples_follow_the_joint_distribution():
    """Cell frequencies of (z, x) from model.sample within 4 SE of exp(log p(x, z)) (exact, 16 cells)."""
    import itertools

    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=2, hidden=(3,))
    params = model.init_params(4, scale=2.0)
    params["prior_logits"] = onp.array([0.8, -0.5])
    n = 40000
    z, x = model.sample(params, n, rng=5)
    cells = [onp.array(c, dtype=float) for c in itertools.product([0, 1], repeat=4)]
    for cell in cells:
        p = float(onp.exp(model.log_joint(params, cell[2:], cell[:2])))
        freq = onp.mean(onp.all(onp.hstack([z, x]) == cell, axis=1))
        assert abs(freq - p) < 4 * onp.sqrt(p * (1 - p) / n) + 1e-12, (cell, freq, p)
