"""General-purpose figures for notebooks: training histories, posteriors, binary images."""
import numpy as onp

from .style import style, new_figure, color_for, legend_inside, OKABE_ITO, LINESTYLES, NATS

__all__ = ["history", "posterior_bars", "image_grid"]


def history(history, keys=None, x="step", ylabel=f"[{NATS}]", title=None):
    """Curves of a training history (the ``.history`` dict of :func:`vi_lab.inference.fit`).

    Parameters
    ----------
    history : dict of str -> ndarray of shape (T,)
        Equal-length 1-D arrays, one per recorded quantity; must contain ``x``.
    keys : list of str, optional
        Quantities to draw (default: every key except ``x``, ``seconds`` and ``step``).
    x : str, default "step"
        Key of the horizontal axis.
    ylabel : str
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if x not in history:
        raise ValueError(f"x: history has no key {x!r}; keys are {sorted(history)}")
    if keys is None:
        keys = [k for k in history if k not in (x, "step", "seconds")]
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"keys: not in the history: {missing}; available {sorted(history)}")
    with style():
        fig, ax = new_figure(1, 1, width=10.0, height=5.6)
        for i, key in enumerate(keys):
            ax.plot(onp.asarray(history[x]), onp.asarray(history[key], dtype=float), marker="",
                    color=OKABE_ITO[i % 6], linestyle=LINESTYLES[i % len(LINESTYLES)], label=key)
        ax.set_xlabel("training step" if x == "step" else x)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if keys:
            ax.legend(loc="best")
    return fig


def _state_label(state):
    return "".join(str(int(v)) for v in state)


def posterior_bars(posterior, q=None, states=None, top=16, title="posterior over latent states"):
    """Bars of p(z|x) over the most probable states of one datapoint, optionally with q(z|x) beside.

    Parameters
    ----------
    posterior : ndarray of shape (2**K,)
        One row of :func:`vi_lab.exact.posterior`.
    q : ndarray of shape (2**K,), or dict of str -> ndarray of shape (2**K,), optional
        The variational distribution over the same states (e.g. ``exp(variational.log_prob(logits,
        exact.all_states(K)[:, None, :]))[:, n]``), labelled "q(z|x)"; or several, by label
        (e.g. ``{"exclusive KL (ELBO)": q1, "inclusive KL (sleep)": q2}``), drawn as bar series
        side by side in one chart, so that they are compared on the same states and scale.
    states : ndarray of shape (2**K, K), optional
        Default :func:`vi_lab.exact.all_states`; the tick labels are the bit strings.
    top : int, default 16
        Number of most probable states (under p) shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    posterior = onp.asarray(posterior, dtype=float)
    if posterior.ndim != 1:
        raise ValueError(f"posterior: expected shape (2**K,) for one datapoint, got {posterior.shape}")
    n_latent = int(round(onp.log2(posterior.size)))
    if 2 ** n_latent != posterior.size:
        raise ValueError(f"posterior: expected 2**K entries, got {posterior.size}")
    if states is None:
        from ..exact import all_states
        states = all_states(n_latent)
    if q is None:
        qs = {}
    elif isinstance(q, dict):
        qs = dict(q)
    else:
        qs = {"q(z|x)": q}
    for label, value in qs.items():
        value = onp.asarray(value, dtype=float)
        if value.shape != posterior.shape:
            raise ValueError(f"q[{label!r}]: expected shape {posterior.shape} like the posterior, got {value.shape}")
        qs[label] = value
    if len(qs) > 5:
        raise ValueError(f"q: at most 5 distributions beside the posterior (6 bar series), got {len(qs)}")
    order = onp.argsort(-posterior)[:top]
    pos = onp.arange(order.size)
    n_series = 1 + len(qs)
    width = 0.8 / n_series
    offsets = (onp.arange(n_series) - (n_series - 1) / 2) * width
    hatches = [None, "//", "..", "\\\\", "xx", "--"]
    with style():
        fig, ax = new_figure(1, 1, width=max(8.0, 0.55 * order.size * (1 + 0.3 * len(qs)) + 3), height=5.2)
        ax.bar(pos + offsets[0], posterior[order], width=width, color="#000000", label="exact p(z|x)")
        for i, (label, value) in enumerate(qs.items(), start=1):
            ax.bar(pos + offsets[i], value[order], width=width, color=OKABE_ITO[(i - 1) % 6], hatch=hatches[i],
                   edgecolor="white", linewidth=0.5, label=label)
        if qs:
            ax.legend(loc="upper right", frameon=legend_inside())
        ax.set_xticks(pos, [_state_label(states[i]) for i in order], rotation=60, ha="right",
                      fontsize=max(8, 14 - n_latent // 2), family="monospace")
        ax.set_xlabel("latent state z")
        ax.set_ylabel("probability")
        ax.set_title(title)
        ax.grid(axis="x", visible=False)
    return fig


def image_grid(x, side=None, ncols=10, titles=None, title=None):
    """Binary (or probability) images in a grid, e.g. bars-and-stripes patterns or model samples.

    Parameters
    ----------
    x : ndarray of shape (N, L), values in [0, 1]
        Row-major flattened images (pixel (i, j) is column i*side + j).
    side : int, optional
        Image side; default sqrt(L) (L must then be a square).
    ncols : int, default 10
    titles : list of str, optional
        One short caption per image.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = onp.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"x: expected shape (N, L), got {x.shape}")
    side = side or int(round(onp.sqrt(x.shape[1])))
    if side * side != x.shape[1] and x.shape[1] % side:
        raise ValueError(f"side: L = {x.shape[1]} is not a multiple of side = {side}")
    height = x.shape[1] // side
    ncols = max(1, min(ncols, x.shape[0]))
    nrows = -(-x.shape[0] // ncols)
    with style():
        fig, axes = new_figure(nrows, ncols, width=1.3 * ncols + 0.4,
                               height=1.3 * nrows * height / side + (0.6 if title else 0.2))
        for i, ax in enumerate(onp.atleast_1d(axes).ravel()):
            if i >= x.shape[0]:
                ax.set_axis_off()
                continue
            # a thin frame, so that a blank image is still visible as a square
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color("0.6")
            ax.imshow(x[i].reshape(height, side), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=11, fontweight="normal")
        if title:
            fig.suptitle(title)
    return fig
