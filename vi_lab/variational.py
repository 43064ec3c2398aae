"""Mean-field Bernoulli variational families q(z|x) = prod_k Bernoulli(z_k; sigmoid(psi_k)).

This module holds the closed-form pieces every method needs (sampling, log q,
entropy, KL to the prior). The families that produce the logits psi, a per-datapoint
table and an amortized encoder, are defined further down.
"""
import numbers

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from ._validation import check_rng, check_positive_int, check_binary
from .nn import softplus, sigmoid, log_sigmoid, init_mlp, mlp, ACTIVATIONS

__all__ = ["sample", "log_prob", "log_prob_states", "entropy", "kl_to_prior", "expected_log_prior",
           "MeanField", "Encoder", "family_from_config", "GaussianEncoder"]


def sample(logits, n_samples, rng=None):
    """Draw z ~ q(z|x) for every datapoint.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
        psi, the logits of q.
    n_samples : int
        S, the number of draws per datapoint.
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (S, N, K), values in {0., 1.}

    Notes
    -----
    z_snk = 1[u_snk < sigmoid(psi_nk)] with u ~ Uniform(0, 1). The threshold has zero
    derivative, so no gradient flows through these samples.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = check_rng(rng)
    probs = onp.asarray(sigmoid(onp.asarray(logits, dtype=float)))
    u = rng.random((n_samples,) + probs.shape)
    return (u < probs).astype(onp.float64)


def log_prob(logits, z):
    """log q(z|x) = sum_k log Bernoulli(z_k; sigmoid(psi_k)), stable for any logits, +-inf included.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
        psi; +-inf allowed (a deterministic coordinate).
    z : ndarray of shape (..., N, K), values in {0., 1.}

    Returns
    -------
    ndarray of shape (..., N)
        -inf where z has probability 0 under q (z_k = 0 at psi_k = +inf, or z_k = 1 at -inf).

    Notes
    -----
    Per coordinate, log q(z_k) = log sigmoid(psi_k) if z_k = 1 and log sigmoid(-psi_k) if
    z_k = 0. Every term is <= 0, so the sum over k cannot cancel. The textbook form
    psi . z - sum_k softplus(psi_k) is the same number in exact arithmetic but loses the
    ordinary coordinates of a row that also holds |psi| ~ 1e12 (and is NaN at +-inf).
    """
    # select, never multiply: 0 * (-inf) would be NaN
    return np.sum(np.where(getval(z) == 1.0, log_sigmoid(logits), log_sigmoid(-logits)), axis=-1)


def log_prob_states(logits, states):
    """log q(z_m) for every row of ``logits`` and every state: the enumeration form of :func:`log_prob`.

    Parameters
    ----------
    logits : ndarray of shape (..., K), finite
    states : ndarray of shape (M, K), values in {0., 1.}

    Returns
    -------
    ndarray of shape (..., M)

    Notes
    -----
    log q(z_m) = sum_k [z_mk log sigmoid(psi_k) + (1 - z_mk) log sigmoid(-psi_k)], two matrix
    products of non-positive terms, so nothing cancels (a row mixing psi ~ 1e12 and psi ~ 1
    keeps the small coordinates to machine precision).
    """
    return log_sigmoid(logits) @ states.T + log_sigmoid(-logits) @ (1.0 - states).T


def entropy(logits):
    """Entropy H[q] of the mean-field Bernoulli, in nats.

    Parameters
    ----------
    logits : ndarray of shape (N, K)

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    H = sum_k [softplus(psi_k) - sigmoid(psi_k) psi_k], evaluated as the symmetric form
    softplus(-|psi_k|) + sigmoid(-|psi_k|) |psi_k|, which cannot cancel; a coordinate with
    psi_k = +-inf contributes exactly 0.
    """
    return np.sum(_entropy_terms(logits), axis=-1)


def _entropy_terms(logits):
    """Per-coordinate Bernoulli entropy, 0 at +-inf, with a finite gradient everywhere."""
    infinite = np.isinf(getval(logits))
    a = np.abs(np.where(infinite, 0.0, logits))        # finite stand-in so no inf * 0 in the gradient
    return np.where(infinite, 0.0, softplus(-a) + sigmoid(-a) * a)


def expected_log_prior(logits, prior_logits):
    """E_q[log p(z)] for a Bernoulli prior with logits b.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    prior_logits : ndarray of shape (K,)

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    E_q[log p(z)] = sum_k [sigmoid(psi_k) b_k - softplus(b_k)].
    """
    return np.sum(sigmoid(logits) * prior_logits - softplus(prior_logits), axis=-1)


def kl_to_prior(logits, prior_logits):
    """KL(q(z|x) || p(z)) in closed form.

    Parameters
    ----------
    logits : ndarray of shape (N, K)
    prior_logits : ndarray of shape (K,)

    Returns
    -------
    ndarray of shape (N,), non-negative

    Notes
    -----
    KL = sum_k [sigmoid(psi_k) (psi_k - b_k) + softplus(b_k) - softplus(psi_k)], evaluated as
    -H[q] - E_q[log p(z)] so that it stays finite and correct for psi = +-inf (and for rows
    mixing huge and ordinary logits); the prior logits b must be finite.
    """
    q = sigmoid(logits)
    return np.sum(-_entropy_terms(logits) - (q * prior_logits - softplus(prior_logits)), axis=-1)


# ---------------------------------------------------------------------------- families
#
# A family turns variational parameters ("q_params", a nested dict of arrays) into the
# logits psi (N, K) of q(z|x). Everything downstream (objectives, estimators, exact
# oracles) only ever sees the logits, so the two lessons, per-datapoint versus amortized
# inference, differ in this one place.


def _check_idx(idx, n_rows, n_data, name="idx"):
    """Validate datapoint indices of a batch against a table with ``n_data`` rows."""
    idx = onp.asarray(idx)
    if idx.ndim != 1 or not (idx.dtype.kind in "iu" or (idx.size == 0 and idx.dtype.kind == "f")):
        raise ValueError(f"{name}: expected a 1-D array of integer row indices, got dtype {idx.dtype} "
                         f"and shape {idx.shape}")
    idx = idx.astype(onp.int64)
    if idx.shape[0] != n_rows:
        raise ValueError(f"{name}: has {idx.shape[0]} indices but x has {n_rows} rows; "
                         f"expected one index per row of x")
    if idx.size and (idx.min() < 0 or idx.max() >= n_data):
        raise ValueError(f"{name}: indices must lie in [0, {n_data}) (the family has n_data = {n_data} rows), "
                         f"got values from {idx.min()} to {idx.max()}")
    return idx


class MeanField:
    """Per-datapoint mean-field Bernoulli family: one free row of logits per datapoint.

    q(z|x_n) = prod_k Bernoulli(z_k; sigmoid(psi_nk)), where psi is an (N, K) table of free
    parameters. The number of variational parameters is N * K: it **grows with the size of
    the data set**, and a new datapoint has no q until its own row is optimized. That is the
    cost amortized inference (:class:`Encoder`) removes.

    Parameters
    ----------
    n_data : int
        N, the number of datapoints (rows of the table).
    n_latent : int
        K, the number of binary latents.

    Notes
    -----
    ``q_params = {"logits": ndarray of shape (N, K)}``. Row n is used for datapoint n: the
    ``idx`` argument of :meth:`logits` says which rows a batch is made of.

    Examples
    --------
    >>> import numpy as np
    >>> family = MeanField(n_data=5, n_latent=3)
    >>> q_params = family.init_params(0)
    >>> family.logits(q_params, x=np.zeros((2, 4)), idx=[0, 3]).shape
    (2, 3)
    """

    #: Parameters are per-datapoint (the training code updates only the rows of a batch).
    amortized = False

    def __init__(self, n_data, n_latent):
        self.n_data = check_positive_int(n_data, "n_data")
        self.n_latent = check_positive_int(n_latent, "n_latent")

    def __repr__(self):
        return f"MeanField(n_data={self.n_data}, n_latent={self.n_latent})"

    def config(self):
        """The constructor arguments as a JSON-serializable dict (for saving runs)."""
        return {"class": "MeanField", "n_data": self.n_data, "n_latent": self.n_latent}

    def init_params(self, rng=0, scale=0.1):
        """Initial table of logits.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        scale : float, default 0.1
            Standard deviation of the initial logits; small, so q starts close to the
            uniform distribution while restarts from different seeds still differ.

        Returns
        -------
        dict
            ``{"logits": ndarray of shape (N, K)}``.
        """
        rng = check_rng(rng)
        if not scale >= 0:
            raise ValueError(f"scale: expected a non-negative standard deviation, got {scale}")
        return {"logits": scale * rng.standard_normal((self.n_data, self.n_latent))}

    def logits(self, q_params, x, idx=None):
        """The rows of the table that belong to the batch ``x``.

        Parameters
        ----------
        q_params : dict
            ``{"logits": ndarray of shape (n_data, K)}``.
        x : ndarray of shape (B, L)
            The batch; only its number of rows is used (to check ``idx``).
        idx : array_like of int, shape (B,), optional
            Which datapoints the rows of ``x`` are. ``None`` means all of them, in order,
            and then ``x`` must have exactly ``n_data`` rows.

        Returns
        -------
        ndarray of shape (B, K)
            psi_idx, differentiable with respect to ``q_params`` (autograd).
        """
        table = q_params["logits"]
        if onp.shape(table) != (self.n_data, self.n_latent):
            raise ValueError(f"q_params['logits']: expected shape ({self.n_data}, {self.n_latent}) "
                             f"for {self!r}, got {onp.shape(table)}")
        n_rows = onp.shape(x)[0] if onp.ndim(x) == 2 else 1
        if idx is None:
            if n_rows != self.n_data:
                raise ValueError(f"x: has {n_rows} rows but the MeanField family has n_data = {self.n_data}; "
                                 f"pass idx (the datapoint index of each row) or the whole data set")
            return table
        idx = _check_idx(idx, n_rows, self.n_data)
        return table[idx]

    def n_params(self, q_params):
        """Number of scalar variational parameters, N * K."""
        return int(onp.size(q_params["logits"]))


class _RecognitionNetwork:
    """Sizes, activation, repr and saved config shared by the two encoder networks."""

    def __init__(self, n_obs, n_latent, hidden=(64,), activation="tanh"):
        self.n_obs = check_positive_int(n_obs, "n_obs")
        self.n_latent = check_positive_int(n_latent, "n_latent")
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        self.hidden = tuple(check_positive_int(h, "hidden (each layer width)") for h in hidden)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: unknown name {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        self.activation = activation

    def __repr__(self):
        return (f"{type(self).__name__}(n_obs={self.n_obs}, n_latent={self.n_latent}, hidden={self.hidden}, "
                f"activation={self.activation!r})")

    def config(self):
        """The constructor arguments as a JSON-serializable dict (for saving runs)."""
        return {"class": type(self).__name__, "n_obs": self.n_obs, "n_latent": self.n_latent,
                "hidden": list(self.hidden), "activation": self.activation}


class Encoder(_RecognitionNetwork):
    """Amortized mean-field Bernoulli family: an MLP maps x to the logits of q(z|x).

    psi(x) = MLP_phi(x) and q(z|x) = prod_k Bernoulli(z_k; sigmoid(psi_k(x))). One set of
    weights phi serves every datapoint, seen or unseen: the number of parameters does not
    depend on N (compare :class:`MeanField`), at the price of the *amortization gap* when the
    network cannot output the best per-datapoint logits (Cremer et al., 2018).

    Parameters
    ----------
    n_obs : int
        L, the input width.
    n_latent : int
        K, the output width.
    hidden : tuple of int, default (64,)
        Hidden-layer widths; ``()`` gives a linear (logistic-regression) encoder.
    activation : {"tanh", "relu", "softplus"}, default "tanh"

    Notes
    -----
    ``q_params = {"W0": (L, h1), "b0": (h1,), ..., "W{D-1}": (h_{D-1}, K), "b{D-1}": (K,)}``, the
    format of :func:`vi_lab.nn.init_mlp`. The input is x itself, values in {0., 1.}.
    The VAE paper (Kingma & Welling, 2014) and NVIL (Mnih & Gregor, 2014) use this recognition
    network; the Helmholtz machine (Dayan et al., 1995) introduced it for wake-sleep.
    """

    #: One network for all datapoints; the ``idx`` argument of :meth:`logits` is ignored.
    amortized = True

    def init_params(self, rng=0, scale=1.0):
        """Random encoder weights.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        scale : float, default 1.0
            Multiplies every weight; weights ~ N(0, scale^2 / fan_in), biases 0.

        Returns
        -------
        dict
            ``{"W0", "b0", ...}`` with shapes (L, h1), (h1,), ..., (h_{D-1}, K), (K,).
        """
        return init_mlp((self.n_obs,) + self.hidden + (self.n_latent,), check_rng(rng), scale)

    def logits(self, q_params, x, idx=None):
        """psi(x) = MLP_phi(x) for a batch.

        Parameters
        ----------
        q_params : dict
            Encoder weights as made by :meth:`init_params`.
        x : ndarray of shape (B, L), values in {0., 1.}
        idx : ignored
            Accepted so that both families share one call signature.

        Returns
        -------
        ndarray of shape (B, K), differentiable with respect to ``q_params`` (autograd).
        """
        x = check_binary(getval(x), self.n_obs, "x")
        n_layers = len(q_params) // 2
        expected = {f"{p}{i}" for i in range(n_layers) for p in "Wb"}
        if set(q_params) != expected or onp.shape(q_params["W0"])[0] != self.n_obs \
                or onp.shape(q_params[f"b{n_layers - 1}"]) != (self.n_latent,):
            raise ValueError(f"q_params: expected encoder weights for {self!r} (keys W0, b0, ..., input "
                             f"width {self.n_obs}, output width {self.n_latent}), got keys {sorted(q_params)}")
        return mlp(q_params, x, self.activation)

    def n_params(self, q_params):
        """Number of scalar encoder weights (independent of N)."""
        return int(sum(onp.size(v) for v in q_params.values()))


def family_from_config(config):
    """Rebuild a family from the dict its ``config()`` method returns (used when loading saved runs).

    Parameters
    ----------
    config : dict
        ``{"class": "MeanField" or "Encoder", ...constructor arguments}``.

    Returns
    -------
    MeanField or Encoder
    """
    config = dict(config)
    name = config.pop("class", None)
    from .gaussian import GaussianMeanField
    classes = {"MeanField": MeanField, "Encoder": Encoder, "GaussianEncoder": GaussianEncoder,
               "GaussianMeanField": GaussianMeanField}
    if name not in classes:
        raise ValueError(f"config: unknown family class {name!r}; expected one of {sorted(classes)}")
    if "hidden" in config:
        config["hidden"] = tuple(config["hidden"])
    return classes[name](**config)


class GaussianEncoder(_RecognitionNetwork):
    """Amortized diagonal-Gaussian family (the VAE encoder): an MLP maps x to q's mean and log-std.

    [mu(x), log sigma(x)] = MLP_phi(x) (one network, 2K outputs) and
    q(z|x) = N(z; mu(x), diag(sigma(x)^2)), for the Gaussian-latent :class:`vi_lab.GaussianLVM`.
    The log-standard-deviation is the unconstrained output, so sigma = exp(.) > 0 whatever the
    weights (outputting sigma itself would need a constraint and makes small sigma hard to reach).

    Parameters
    ----------
    n_obs : int
        L, the input width.
    n_latent : int
        K; the network has 2K outputs.
    hidden : tuple of int, default (64,)
        Hidden-layer widths; ``()`` gives a linear encoder.
    activation : {"tanh", "relu", "softplus"}, default "tanh"

    Notes
    -----
    ``q_params = {"W0": (L, h1), "b0": (h1,), ..., "W{D-1}": (h_{D-1}, 2K), "b{D-1}": (2K,)}``
    (:func:`vi_lab.nn.init_mlp` format); outputs 0..K-1 are the mean, K..2K-1 the log-std.
    :meth:`gaussian_params` returns ``{"mean": (B, K), "log_std": (B, K)}``, the per-datapoint
    parametrization of :mod:`vi_lab.gaussian` that the Gaussian estimators take.
    Kingma & Welling (2014), "Auto-encoding variational Bayes", appendix C.2.
    """

    #: One network for all datapoints; the ``idx`` argument of :meth:`gaussian_params` is ignored.
    amortized = True
    #: q is a Gaussian over real z (the Bernoulli families have no such attribute).
    latent = "gaussian"

    def init_params(self, rng=0, scale=1.0, out_scale=0.1):
        """Random encoder weights.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        scale : float, default 1.0
            Hidden weights ~ N(0, scale^2 / fan_in), biases 0.
        out_scale : float, default 0.1
            Extra factor on the output layer, so q starts close to N(0, I) (mean ~ 0,
            log-std ~ 0) for every x instead of at random, very narrow or very wide q's.

        Returns
        -------
        dict
            ``{"W0", "b0", ...}`` with shapes (L, h1), (h1,), ..., (h_{D-1}, 2K), (2K,).
        """
        if not out_scale >= 0:
            raise ValueError(f"out_scale: expected a non-negative factor, got {out_scale}")
        params = init_mlp((self.n_obs,) + self.hidden + (2 * self.n_latent,), check_rng(rng), scale)
        last = f"W{len(self.hidden)}"
        params[last] = out_scale * params[last]
        return params

    def gaussian_params(self, q_params, x, idx=None):
        """mu(x) and log sigma(x) for a batch.

        Parameters
        ----------
        q_params : dict
            Encoder weights as made by :meth:`init_params`.
        x : ndarray of shape (B, L), values in {0., 1.}
        idx : ignored
            Accepted so that every family shares one call signature.

        Returns
        -------
        dict
            ``{"mean": ndarray of shape (B, K), "log_std": ndarray of shape (B, K)}``,
            differentiable with respect to ``q_params`` (autograd).
        """
        x = check_binary(getval(x), self.n_obs, "x")
        n_layers = len(q_params) // 2
        expected = {f"{p}{i}" for i in range(n_layers) for p in "Wb"}
        if set(q_params) != expected or onp.shape(q_params["W0"])[0] != self.n_obs \
                or onp.shape(q_params[f"b{n_layers - 1}"]) != (2 * self.n_latent,):
            raise ValueError(f"q_params: expected encoder weights for {self!r} (keys W0, b0, ..., input "
                             f"width {self.n_obs}, output width 2K = {2 * self.n_latent}), got keys "
                             f"{sorted(q_params)}")
        out = mlp(q_params, x, self.activation)
        return {"mean": out[..., :self.n_latent], "log_std": out[..., self.n_latent:]}

    def logits(self, q_params, x, idx=None):
        """Not defined: q is Gaussian. Raises ValueError pointing to :meth:`gaussian_params`."""
        raise ValueError(f"{self!r} is a Gaussian family and has no logits; use "
                         f"family.gaussian_params(q_params, x) for q's mean and log_std")

    def n_params(self, q_params):
        """Number of scalar encoder weights (independent of N)."""
        return int(sum(onp.size(v) for v in q_params.values()))
