"""The VAE figures: the manifold panel shows the decoder means on the stated grid, errors are clear."""
import numpy as onp
import pytest

import vi_lab
from vi_lab import gaussian
from vi_lab.plotting.gaussian import latent_manifold, encoded_means, vae_manifold, gaussian_learning_curves


@pytest.fixture(scope="module")
def vae():
    model = vi_lab.GaussianLVM(2, 16, hidden=(6,))
    return model, model.init_params(0, scale=2.0)


def test_latent_grid_is_at_normal_quantiles_row_major_from_the_top():
    from scipy.stats import norm
    z, axis = gaussian.latent_grid(5)
    onp.testing.assert_allclose(norm.cdf(axis), [0.1, 0.3, 0.5, 0.7, 0.9], rtol=1e-12)
    onp.testing.assert_allclose(z[0], [axis[0], axis[-1]])          # top-left: z1 low, z2 high
    onp.testing.assert_allclose(z[4], [axis[-1], axis[-1]])
    onp.testing.assert_allclose(z[-1], [axis[-1], axis[0]])
    z_even, axis_even = gaussian.latent_grid(3, quantile=False, extent=2.0)
    onp.testing.assert_allclose(axis_even, [-2, 0, 2])


def test_manifold_panel_shows_the_decoder_means(vae):
    model, params = vae
    fig = latent_manifold(model, params, n_grid=4)
    canvas = fig.axes[0].images[0].get_array()
    z, _ = gaussian.latent_grid(4)
    want = gaussian.decoder_means(model, params, z)
    # tile (r, c) of the canvas is 1 - mean image, after a one-pixel border (side 4, height 4)
    for r, c in [(0, 0), (1, 3), (3, 2)]:
        tile = canvas[1 + r * 5:1 + r * 5 + 4, 1 + c * 5:1 + c * 5 + 4]
        onp.testing.assert_allclose(1.0 - tile, want[r * 4 + c].reshape(4, 4), rtol=1e-12)
    # a decoder that ignored z would draw identical tiles; this one does not
    assert not onp.allclose(want[0], want[-1])


def test_encoded_means_and_the_combined_figure(vae, tmp_path):
    model, params = vae
    means = onp.random.default_rng(0).normal(size=(50, 2))
    labels = onp.arange(50) % 10
    fig = encoded_means(means, labels)
    assert len(fig.axes[0].collections) == 10                      # one series per label
    fig = vae_manifold(model, params, means, labels, n_grid=5)
    assert len(fig.axes) == 2
    fig.savefig(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_bad_inputs_raise(vae):
    model, params = vae
    with pytest.raises(ValueError, match="K = 2"):
        latent_manifold(vi_lab.GaussianLVM(3, 16, hidden=(4,)), None)
    with pytest.raises(ValueError, match="labels"):
        encoded_means(onp.zeros((5, 2)), onp.zeros(4))
    with pytest.raises(ValueError, match="means"):
        encoded_means(onp.zeros((5, 3)), onp.zeros(5))
    with pytest.raises(ValueError, match="histories"):
        gaussian_learning_curves({})
    with pytest.raises(ValueError, match="elbo_exact"):
        gaussian_learning_curves({"reparam": {"step": [0], "log_px_train": [0.0]}})


def test_learning_curves_plot_the_kl_gap(vae):
    h = {"step": onp.array([0, 10]), "log_px_train": onp.array([-10.0, -8.0]), "elbo_exact": onp.array([-11.0, -8.5]),
         "log_px_valid": onp.array([-10.5, -9.0])}
    fig = gaussian_learning_curves({"reparam": h, "gaussian_score_function": h})
    gap = fig.axes[1].lines[0].get_ydata()
    onp.testing.assert_allclose(gap, [1.0, 0.5])
