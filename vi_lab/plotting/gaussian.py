"""Figures of the Gaussian-latent VAE: the 2-D latent manifold and the encoded data.

For K = 2 the whole latent space fits on a page (Kingma & Welling, 2014, figure 4): the decoder's
mean image at a grid of z, and where the encoder puts each datapoint, coloured by its label.
The decoder pass over the grid is the only computation (a few hundred decoder evaluations,
:func:`vi_lab.gaussian.decoder_means`).
"""
import numpy as onp

from .. import gaussian
from .style import NATS, new_figure, style, legend_inside, line_for

__all__ = ["latent_manifold", "encoded_means", "vae_manifold", "gaussian_learning_curves"]

#: Ten distinguishable colours for digit labels 0..9 (matplotlib's tab10, a categorical palette).
_LABEL_CMAP = "tab10"


def _manifold_panel(ax, model, params, n_grid, side, quantile, extent):
    z, axis = gaussian.latent_grid(n_grid, quantile, extent)
    means = gaussian.decoder_means(model, params, z)                     # (n_grid^2, L)
    side = side or int(round(onp.sqrt(model.n_obs)))
    height = model.n_obs // side
    if side * height != model.n_obs:
        raise ValueError(f"side: L = {model.n_obs} is not side x height with side = {side}")
    pad = 1
    canvas = onp.ones((n_grid * (height + pad) + pad, n_grid * (side + pad) + pad))
    for r in range(n_grid):
        for c in range(n_grid):
            img = means[r * n_grid + c].reshape(height, side)
            top, left = pad + r * (height + pad), pad + c * (side + pad)
            canvas[top:top + height, left:left + side] = 1.0 - img        # ink dark on white
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ticks = [0, n_grid // 2, n_grid - 1]
    centre = lambda i: pad + i * (side + pad) + (side - 1) / 2.0          # noqa: E731
    centre_y = lambda i: pad + i * (height + pad) + (height - 1) / 2.0    # noqa: E731
    ax.set_xticks([centre(i) for i in ticks], [f"{axis[i]:.2g}" for i in ticks])
    ax.set_yticks([centre_y(i) for i in ticks], [f"{axis[::-1][i]:.2g}" for i in ticks])
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.grid(False)
    grid = "standard-normal quantiles" if quantile else f"even grid on [-{extent:g}, {extent:g}]"
    ax.set_title(f"decoder mean E[x | z], z on {grid}", fontsize="medium", fontweight="normal")
    return axis


def latent_manifold(model, params, n_grid=15, side=None, quantile=True, extent=3.0, title=None):
    """The decoder's mean image over a grid of z (K = 2): the learned manifold.

    Parameters
    ----------
    model : GaussianLVM
        K = 2.
    params : dict
    n_grid : int, default 15
        Images per axis.
    side : int, optional
        Image width; default sqrt(L).
    quantile : bool, default True
        Grid at standard-normal quantiles (equal prior mass per cell) rather than evenly spaced.
    extent : float, default 3.0
        Half-width of the even grid (``quantile=False``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_k2(model)
    with style():
        fig, ax = new_figure(1, 1, width=6.4, height=6.6)
        _manifold_panel(ax, model, params, n_grid, side, quantile, extent)
        if title:
            fig.suptitle(title)
    return fig


def _scatter_panel(ax, means, labels, max_points):
    means = onp.asarray(means, dtype=float)
    if means.ndim != 2 or means.shape[1] != 2:
        raise ValueError(f"means: expected shape (N, 2) (encoded means of a K = 2 model), got {means.shape}")
    labels = onp.asarray(labels)
    if labels.shape != (means.shape[0],):
        raise ValueError(f"labels: expected one label per row of means ({means.shape[0]}), got shape {labels.shape}")
    import matplotlib
    cmap = matplotlib.colormaps[_LABEL_CMAP]
    classes = sorted(set(labels.tolist()))
    keep = onp.arange(means.shape[0])
    if max_points is not None and means.shape[0] > max_points:
        keep = onp.random.default_rng(0).choice(means.shape[0], max_points, replace=False)
    for i, label in enumerate(classes):
        rows = keep[labels[keep] == label]
        ax.scatter(means[rows, 0], means[rows, 1], s=12, alpha=0.75, color=cmap(i % 10), label=str(label),
                   edgecolors="none")
    ax.set_xlabel("$\\mu_1(x)$")
    ax.set_ylabel("$\\mu_2(x)$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("encoder means of the data, by label", fontsize="medium", fontweight="normal")
    ax.legend(title="label", loc="best" if legend_inside() else "center left",
              bbox_to_anchor=None if legend_inside() else (1.01, 0.5), markerscale=2, fontsize="small")


def encoded_means(means, labels, max_points=2000, title=None):
    """Where the encoder puts each datapoint: q's means mu(x) in the 2-D latent space, coloured by label.

    Parameters
    ----------
    means : ndarray of shape (N, 2)
        ``family.gaussian_params(q_params, x)["mean"]``.
    labels : ndarray of shape (N,)
        E.g. digit classes (``vi_lab.data.digits(return_labels=True)``).
    max_points : int or None, default 2000
        Draw at most this many points (a fixed random subset), so the figure stays readable.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    with style():
        fig, ax = new_figure(1, 1, width=7.2, height=6.0)
        _scatter_panel(ax, means, labels, max_points)
        if title:
            fig.suptitle(title)
    return fig


def vae_manifold(model, params, means, labels, n_grid=15, side=None, quantile=True, title=None, max_points=2000):
    """The two pictures of a 2-D VAE side by side: the decoder manifold and the encoded data.

    Parameters
    ----------
    model : GaussianLVM
        K = 2.
    params : dict
    means : ndarray of shape (N, 2)
        Encoder means of the data.
    labels : ndarray of shape (N,)
    n_grid, side, quantile
        As for :func:`latent_manifold`.
    title : str, optional
    max_points : int or None, default 2000

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_k2(model)
    with style():
        fig, axes = new_figure(1, 2, width=14.0, height=6.6)
        _manifold_panel(axes[0], model, params, n_grid, side, quantile, 3.0)
        _scatter_panel(axes[1], means, labels, max_points)
        fig.suptitle(title or "Gaussian VAE with K = 2: what each z decodes to, and where the data go")
    return fig


def gaussian_learning_curves(histories, x="step", title=None):
    """Quadrature log p(x) (and ELBO) during training, one line per run: score function vs reparam.

    Parameters
    ----------
    histories : dict of str -> dict
        Label -> ``history`` of a :class:`vi_lab.inference.FitResult` (columns ``step``, ``decoder_evals``,
        ``wall_time``, ``log_px_train``, ``elbo_exact``, optional ``log_px_valid``).
    x : {"step", "decoder_evals", "wall_time"}, default "step"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Left: log p(x) (solid, training; the held-out curve of the same colour is thinner);
        right: the KL gap log p(x) - ELBO = KL(q || p(z|x)) of the encoder's q, both by quadrature.
    """
    if not histories:
        raise ValueError("histories: expected at least one run (label -> FitResult.history)")
    if x not in ("step", "decoder_evals", "wall_time"):
        raise ValueError(f"x: expected 'step', 'decoder_evals' or 'wall_time', got {x!r}")
    labels = {"step": "training step", "decoder_evals": "decoder evaluations", "wall_time": "training time [s]"}
    with style():
        fig, axes = new_figure(1, 2, width=12.5, height=4.8)
        for name, h in histories.items():
            for key in ("log_px_train", "elbo_exact"):
                if key not in h:
                    raise ValueError(f"histories[{name!r}]: no {key!r} column (record_exact=False, or K > 2 "
                                     f"where only IWAE estimates exist)")
            look = line_for(name)
            xs = onp.asarray(h[x], dtype=float)
            axes[0].plot(xs, h["log_px_train"], **dict(look, label=f"{name} (train)"))
            if "log_px_valid" in h:
                axes[0].plot(xs, h["log_px_valid"], **dict(look, marker=None, linewidth=1.0, alpha=0.7,
                                                            label=f"{name} (held-out)"))
            axes[1].plot(xs, onp.asarray(h["log_px_train"]) - onp.asarray(h["elbo_exact"]), **look)
        axes[0].set_ylabel(f"mean log p(x) [{NATS}]")
        axes[1].set_ylabel(f"KL gap = log p(x) - ELBO [{NATS}]")
        axes[1].set_ylim(bottom=0)
        for ax in axes:
            ax.set_xlabel(labels[x])
            if x == "decoder_evals":
                ax.set_xscale("log")
        axes[0].legend(loc="lower right", fontsize="small")
        fig.suptitle(title or "Learning curves by quadrature (exact for K <= 2)")
    return fig


def _check_k2(model):
    if getattr(model, "latent", None) != "gaussian" or model.n_latent != 2:
        raise ValueError(f"model: the manifold picture needs a GaussianLVM with K = 2, got {model!r}")
