"""The Bernoulli latent-variable model (a sigmoid belief net with an MLP decoder).

Generative story, for K binary latents and L binary observations::

    z_k ~ Bernoulli(sigmoid(b_k))                 k = 1..K   (prior, logits b learnable)
    x_l | z ~ Bernoulli(sigmoid(a_l(z)))          l = 1..L   (a = MLP decoder)

The class holds structure only (sizes, activation); parameters are a nested dict of
arrays passed to every method, autograd-style, so gradients are taken with
``autograd.grad`` over plain functions of ``params``.
"""
import numbers

import autograd.numpy as np
import numpy as onp

from autograd.tracer import getval

from ._validation import check_rng, check_positive_int, check_real_array, leaf_path, _check_finite_leaf
from .nn import init_mlp, mlp, softplus, sigmoid, ACTIVATIONS

__all__ = ["DecoderModel", "BernoulliLVM", "bernoulli_log_prob"]


def bernoulli_log_prob(values, logits):
    """Elementwise log Bernoulli(values; sigmoid(logits)), stable for any logits.

    Parameters
    ----------
    values : ndarray of shape (...), values in {0., 1.} (or relaxed values in [0, 1])
    logits : ndarray broadcastable with ``values``

    Returns
    -------
    ndarray of the broadcast shape

    Notes
    -----
    log p = v * a - softplus(a): the same as v log sigmoid(a) + (1 - v) log sigmoid(-a)
    without ever forming log(sigmoid(a)), which underflows to -inf for a << 0.
    """
    return values * logits - softplus(logits)


def _path(name, keys):
    """("decoder", "W0") -> 'params["decoder"]["W0"]' (how error messages name a leaf)."""
    for key in keys:
        name = leaf_path(name, key)
    return name


class DecoderModel:
    """What every vi_lab model shares: L binary observations from a Bernoulli MLP decoder.

    Subclasses add the prior over z (``log_prior``, ``sample``, ``init_params``) and set
    ``latent`` to ``"bernoulli"`` or ``"gaussian"``; routines that need one kind of latent
    check that tag, so a model of the other kind gets a clear ValueError.

    Parameters
    ----------
    n_latent : int
        K, the number of latent variables.
    n_obs : int
        L, the number of binary observed variables.
    hidden : tuple of int, default (64,)
        Hidden-layer widths of the decoder a(z); ``hidden=()`` gives a linear decoder.
    activation : {"tanh", "relu", "softplus"}, default "tanh"
    """

    latent = None

    def __init__(self, n_latent, n_obs, hidden=(64,), activation="tanh"):
        self.n_latent = check_positive_int(n_latent, "n_latent")
        self.n_obs = check_positive_int(n_obs, "n_obs")
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        hidden = tuple(hidden)
        for h in hidden:
            check_positive_int(h, "hidden (each layer width)")
        self.hidden = tuple(int(h) for h in hidden)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: unknown name {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        self.activation = activation

    def __repr__(self):
        return (f"{type(self).__name__}(n_latent={self.n_latent}, n_obs={self.n_obs}, "
                f"hidden={self.hidden}, activation={self.activation!r})")

    def config(self):
        """The constructor arguments as a JSON-serializable dict (for saving runs)."""
        return {"class": type(self).__name__, "n_latent": self.n_latent, "n_obs": self.n_obs,
                "hidden": list(self.hidden), "activation": self.activation}

    # ------------------------------------------------------------------ checks
    def param_shapes(self):
        """The parameter structure this model expects: the tree of ``init_params()`` with shapes as leaves."""
        key = (self.n_latent, self.n_obs, self.hidden)
        cached = getattr(self, "_shapes_cache", None)
        if cached is None or cached[0] != key:
            def shapes(node):
                if isinstance(node, dict):
                    return {k: shapes(v) for k, v in node.items()}
                return tuple(onp.shape(node))
            cached = (key, shapes(self.init_params(0)))
            self._shapes_cache = cached
        return cached[1]

    def check_params(self, params, name="params"):
        """Raise a ValueError unless ``params`` fits this model exactly.

        Every dict must have exactly the keys of ``init_params`` (a decoder with a layer
        missing or extra would silently be another network), every leaf the expected shape (a
        ``prior_logits`` of shape ``()`` or ``(1,)`` would broadcast), a real dtype, and only
        finite values (no NaN, no +-inf). The message names the leaf, e.g.
        ``params["decoder"]["W0"]``.
        """
        def walk(node, template, path):
            # path is a tuple of keys, formatted only when there is something to report
            node = getval(node)
            if isinstance(template, dict):
                if not isinstance(node, dict):
                    raise ValueError(f"{_path(name, path)}: expected a dict with keys {sorted(template)} for "
                                     f"{self!r}, got {type(node).__name__}")
                if node.keys() != template.keys():
                    missing = sorted(set(template) - set(node))
                    extra = sorted(set(node) - set(template), key=str)
                    parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
                    raise ValueError(f"{_path(name, path)}: keys {' and '.join(parts)}; {self!r} expects exactly "
                                     f"{sorted(template)}")
                for k, sub in template.items():
                    walk(node[k], sub, path + (k,))
                return
            if type(node) is onp.ndarray and node.dtype == onp.float64:
                arr = node                                    # the common case, without conversions
            else:
                arr = check_real_array(node, _path(name, path))
            if arr.shape != template:
                raise ValueError(f"{_path(name, path)}: expected shape {template} for {self!r}, got {arr.shape}")
            if arr.dtype.kind == "f" and not onp.isfinite(arr).all():
                _check_finite_leaf(arr, _path(name, path))

        walk(params, self.param_shapes(), ())
        return params

    def _check_data(self, x=None, z=None):
        """Check observations (values in {0, 1}) and latents (see :meth:`_check_latents`)."""
        if x is not None:
            arr = check_real_array(x, "x")
            if arr.ndim == 0 or arr.shape[-1] != self.n_obs:
                raise ValueError(f"x: expected shape (..., {self.n_obs}) (L = {self.n_obs} observations), "
                                 f"got {arr.shape}")
            if not ((arr == 0) | (arr == 1)).all():
                bad = (arr != 0) & (arr != 1)
                raise ValueError(f"x: expected binary values in {{0, 1}}, found {int(bad.sum())} other value(s), "
                                 f"e.g. {arr[bad].flat[0]!r}")
        if z is not None:
            arr = check_real_array(z, "z")
            if arr.ndim == 0 or arr.shape[-1] != self.n_latent:
                raise ValueError(f"z: expected shape (..., {self.n_latent}) (K = {self.n_latent} latents), "
                                 f"got {arr.shape}")
            self._check_latents(arr)

    def _check_latents(self, z):
        """Real latents: finite values (subclasses narrow the range)."""
        if not onp.isfinite(z).all():
            raise ValueError("z: contains NaN or +-inf; expected finite latent values")

    def _log_prior(self, params, z):
        """log p(z) without input checks (subclasses with a checked ``log_prior`` override)."""
        return self.log_prior(params, z)

    def _init_decoder(self, rng, scale):
        sizes = (self.n_latent,) + self.hidden + (self.n_obs,)
        return init_mlp(sizes, rng, scale)

    # ------------------------------------------------------------------ densities
    def decoder_logits(self, params, z):
        """Logits a(z) of p(x|z).

        Parameters
        ----------
        params : dict
        z : ndarray of shape (..., K)
            Binary, relaxed in [0, 1], or real, depending on the model.

        Returns
        -------
        ndarray of shape (..., L)
        """
        return mlp(params["decoder"], z, self.activation)

    def log_likelihood(self, params, x, z):
        """log p(x|z) = sum_l [x_l a_l(z) - softplus(a_l(z))].

        Parameters
        ----------
        params : dict
        x : ndarray of shape (..., L), values in {0., 1.}
        z : ndarray of shape (..., K), broadcastable against ``x`` in the leading dimensions

        Returns
        -------
        ndarray of the broadcast leading shape (...)
        """
        self.check_params(params)
        self._check_data(x, z)
        return self._log_likelihood(params, x, z)

    def _log_likelihood(self, params, x, z):
        return np.sum(bernoulli_log_prob(x, self.decoder_logits(params, z)), axis=-1)

    def log_joint(self, params, x, z):
        """log p(x, z) = log p(z) + log p(x|z).

        Parameters
        ----------
        params : dict
        x : ndarray of shape (..., L), values in {0., 1.}
        z : ndarray of shape (..., K), broadcastable against ``x`` in the leading dimensions

        Returns
        -------
        ndarray of the broadcast leading shape (...)

        Raises
        ------
        ValueError
            If ``params`` does not fit the model (:meth:`check_params`), x is not 0/1, or z is
            outside the latent space (for binary latents: values in [0, 1], relaxed values
            included).
        """
        self.check_params(params)
        self._check_data(x, z)
        return self._log_prior(params, z) + self._log_likelihood(params, x, z)



class BernoulliLVM(DecoderModel):
    """Bernoulli prior over K binary latents, Bernoulli-MLP likelihood over L binary observations.

    Parameters
    ----------
    n_latent : int
        K, the number of binary latent variables.
    n_obs : int
        L, the number of binary observed variables.
    hidden : tuple of int, default (64,)
        Hidden-layer widths of the decoder a(z). ``hidden=()`` gives a linear
        decoder, i.e. the classic sigmoid belief net p(x|z) = Bern(sigmoid(W z + c)).
    activation : {"tanh", "relu", "softplus"}, default "tanh"

    Notes
    -----
    p(z) = prod_k sigmoid(b_k)^{z_k} sigmoid(-b_k)^{1 - z_k}, and
    p(x|z) = prod_l sigmoid(a_l(z))^{x_l} sigmoid(-a_l(z))^{1 - x_l}.

    ``params = {"prior_logits": ndarray (K,), "decoder": {"W0", "b0", ...}}``.

    Examples
    --------
    >>> model = BernoulliLVM(n_latent=3, n_obs=6, hidden=(8,))
    >>> params = model.init_params(0)
    >>> z, x = model.sample(params, 5, rng=1)
    >>> model.log_joint(params, x, z).shape
    (5,)
    """

    #: The latent type, checked by routines that only make sense for binary latents (enumeration).
    latent = "bernoulli"

    # ------------------------------------------------------------------ parameters
    def init_params(self, rng=0, scale=1.0):
        """Draw initial parameters.

        Parameters
        ----------
        rng : int or numpy.random.Generator
            Seed or generator; the same seed gives the same parameters.
        scale : float, default 1.0
            Multiplies every decoder weight; larger values give sharper p(x|z).

        Returns
        -------
        dict
            ``{"prior_logits": ndarray of shape (K,), "decoder": dict of weight arrays}``;
            prior logits start at 0 (p(z_k = 1) = 1/2), decoder weights ~ N(0, scale^2 / fan_in).
        """
        rng = check_rng(rng)
        return {"prior_logits": onp.zeros(self.n_latent), "decoder": self._init_decoder(rng, scale)}

    # ------------------------------------------------------------------ densities
    def log_prior(self, params, z):
        """log p(z) = sum_k [z_k b_k - softplus(b_k)].

        Parameters
        ----------
        params : dict
        z : ndarray of shape (..., K), values in {0., 1.}

        Returns
        -------
        ndarray of shape (...)
        """
        self.check_params(params)
        self._check_data(None, z)
        return self._log_prior(params, z)

    def _log_prior(self, params, z):
        return np.sum(bernoulli_log_prob(z, params["prior_logits"]), axis=-1)

    def _check_latents(self, z):
        """Binary latents: values in [0, 1] (0/1 samples, or relaxed values for the relaxed estimators)."""
        if not ((z >= 0.0).all() and (z <= 1.0).all()):       # NaN fails both comparisons
            bad = ~((z >= 0.0) & (z <= 1.0))
            raise ValueError(f"z: expected binary latents in {{0, 1}} (or relaxed values in [0, 1]), found "
                             f"{int(bad.sum())} other value(s), e.g. {z[bad].flat[0]!r}")

    # ------------------------------------------------------------------ sampling
    def sample(self, params, n, rng=None):
        """Ancestral sampling: z ~ p(z), then x ~ p(x|z).

        Parameters
        ----------
        params : dict
        n : int
            Number of samples.
        rng : int or numpy.random.Generator

        Returns
        -------
        z : ndarray of shape (n, K), values in {0., 1.}
        x : ndarray of shape (n, L), values in {0., 1.}
        """
        n = check_positive_int(n, "n")
        rng = check_rng(rng)
        prior_p = onp.asarray(sigmoid(onp.asarray(params["prior_logits"], dtype=float)))
        z = (rng.random((n, self.n_latent)) < prior_p).astype(onp.float64)
        x_p = onp.asarray(sigmoid(self.decoder_logits(params, z)))
        x = (rng.random((n, self.n_obs)) < x_p).astype(onp.float64)
        return z, x

    def n_params(self, params):
        """Total number of scalar parameters in ``params``."""
        return int(params["prior_logits"].size + sum(v.size for v in params["decoder"].values()))
