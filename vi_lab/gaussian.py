"""Gaussian latents: the VAE model p(z) = N(0, I) with a Bernoulli MLP decoder, and its Gaussian q.

This is the setting where the reparametrization trick is exact: z = mu + sigma * eps with
eps ~ N(0, I) is a differentiable function of q's parameters, so pathwise gradients exist
(Kingma & Welling, 2014; Rezende, Mohamed & Wierstra, 2014). It sits next to the Bernoulli
model of :mod:`vi_lab.model` so that estimators can be compared where the pathwise gradient is
available and where it is not.

Generative story, for K real latents and L binary observations::

    z ~ N(0, I_K)
    x_l | z ~ Bernoulli(sigmoid(a_l(z)))          l = 1..L   (a = the same MLP decoder as BernoulliLVM)

The variational family is a diagonal Gaussian per datapoint,
q(z|x_n) = N(mu_n, diag(sigma_n^2)), parametrized by
``q_params = {"mean": ndarray (N, K), "log_std": ndarray (N, K)}`` with sigma = exp(log_std).
The functions :func:`sample`, :func:`log_prob`, :func:`entropy` and :func:`kl_to_prior` mirror
those of :mod:`vi_lab.variational` for the Bernoulli family. Two families produce these
parameters for training with :func:`vi_lab.inference.fit`: :class:`GaussianMeanField` (a free
mean and log-std per datapoint) and :class:`vi_lab.variational.GaussianEncoder` (the VAE's
amortized encoder).
"""
import numbers

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval
from scipy.special import logsumexp

from ._validation import check_rng, check_positive_int
from .model import DecoderModel
from .nn import sigmoid

__all__ = ["GaussianLVM", "GaussianMeanField", "init_q_params", "check_q_params", "sample", "log_prob",
           "entropy", "kl_to_prior", "score", "log_weights", "elbo_estimate", "iwae_estimate",
           "latent_grid", "decoder_means", "MAX_ABS_LOG_STD"]

#: Largest |log_std| accepted: sigma in [e^-300, e^300] keeps sigma**2 and z**2 finite in float64.
MAX_ABS_LOG_STD = 300.0

_HALF_LOG_2PI = 0.5 * onp.log(2.0 * onp.pi)


class GaussianLVM(DecoderModel):
    """Standard-normal prior over K real latents, Bernoulli-MLP likelihood over L binary observations.

    The decoder, its parameters and the constructor checks come from
    :class:`vi_lab.model.DecoderModel`, shared with :class:`vi_lab.BernoulliLVM`; only the prior
    differs, and it has no parameters. Its ``latent = "gaussian"`` tag makes enumeration
    (:mod:`vi_lab.exact`) and the Bernoulli estimators refuse it with a ValueError.

    Parameters
    ----------
    n_latent : int
        K, the number of real latent variables.
    n_obs : int
        L, the number of binary observed variables.
    hidden : tuple of int, default (64,)
        Hidden-layer widths of the decoder a(z); ``hidden=()`` gives a linear decoder.
    activation : {"tanh", "relu", "softplus"}, default "tanh"

    Attributes
    ----------
    latent : str
        ``"gaussian"``: tells estimators and exact routines which latent type the model has.

    Notes
    -----
    p(z) = prod_k N(z_k; 0, 1) and p(x|z) = prod_l sigmoid(a_l(z))^{x_l} sigmoid(-a_l(z))^{1 - x_l}.

    ``params = {"decoder": {"W0", "b0", ...}}``.

    Examples
    --------
    >>> model = GaussianLVM(n_latent=2, n_obs=6, hidden=(8,))
    >>> params = model.init_params(0)
    >>> z, x = model.sample(params, 5, rng=1)
    >>> model.log_joint(params, x, z).shape
    (5,)
    """

    latent = "gaussian"

    # ------------------------------------------------------------------ parameters
    def init_params(self, rng=0, scale=1.0):
        """Draw initial decoder parameters.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        scale : float, default 1.0
            Multiplies every decoder weight; larger values give sharper p(x|z).

        Returns
        -------
        dict
            ``{"decoder": dict of weight arrays}``, weights ~ N(0, scale^2 / fan_in), biases 0.
            The same random stream as ``BernoulliLVM.init_params`` with the same seed.
        """
        return {"decoder": self._init_decoder(check_rng(rng), scale)}

    def n_params(self, params):
        """Total number of scalar parameters in ``params``."""
        return int(sum(v.size for v in params["decoder"].values()))

    # ------------------------------------------------------------------ densities
    def log_prior(self, params, z):
        """log p(z) = sum_k [-z_k^2 / 2 - log(2 pi) / 2].

        Parameters
        ----------
        params : dict
            Unused (the prior has no parameters); kept so every model has the same signature.
        z : ndarray of shape (..., K), real

        Returns
        -------
        ndarray of shape (...)
        """
        return -0.5 * np.sum(z ** 2, axis=-1) - self.n_latent * _HALF_LOG_2PI

    # ------------------------------------------------------------------ sampling
    def sample(self, params, n, rng=None):
        """Draw (z, x) from the model.

        Parameters
        ----------
        params : dict
        n : int
            Number of samples.
        rng : int or numpy.random.Generator

        Returns
        -------
        z : ndarray of shape (n, K), real
        x : ndarray of shape (n, L), values in {0., 1.}
        """
        n = check_positive_int(n, "n")
        rng = check_rng(rng)
        z = rng.standard_normal((n, self.n_latent))
        x_p = onp.asarray(sigmoid(self.decoder_logits(params, z)))
        x = (rng.random((n, self.n_obs)) < x_p).astype(onp.float64)
        return z, x


# ---------------------------------------------------------------------- the Gaussian q
def init_q_params(n_data, n_latent, log_std=0.0):
    """q_params with mean 0 and a constant log-standard-deviation.

    Parameters
    ----------
    n_data, n_latent : int
        N and K.
    log_std : float, default 0.0
        Initial log sigma (0 gives q = the prior).

    Returns
    -------
    dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``
    """
    n_data = check_positive_int(n_data, "n_data")
    n_latent = check_positive_int(n_latent, "n_latent")
    if not isinstance(log_std, numbers.Real) or not abs(log_std) <= MAX_ABS_LOG_STD:
        raise ValueError(f"log_std: expected a real number in [-{MAX_ABS_LOG_STD:g}, {MAX_ABS_LOG_STD:g}], "
                         f"got {log_std!r}")
    return {"mean": onp.zeros((n_data, n_latent)), "log_std": onp.full((n_data, n_latent), float(log_std))}


def check_q_params(q_params, shape=None, name="q_params"):
    """Validate Gaussian variational parameters and return them unchanged.

    Parameters
    ----------
    q_params : dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``, finite,
        |log_std| <= :data:`MAX_ABS_LOG_STD`. Traced (autograd) arrays are accepted.
    shape : tuple of int (N, K), optional
        Required shape of both arrays; ``None`` accepts any equal shapes (..., K) with at least
        one axis (the generic estimator level takes any batch shape).
    name : str
        Argument name used in error messages.

    Returns
    -------
    dict
        ``q_params`` itself.
    """
    value = getval(q_params)        # autograd wraps a differentiated dict in a DictBox
    if not isinstance(value, dict) or set(value) != {"mean", "log_std"}:
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{name}: expected a dict with keys 'mean' and 'log_std' (arrays of shape (N, K)), "
                         f"got {got}; make one with vi_lab.gaussian.init_q_params(N, K)")
    arrays = {}
    for key in ("mean", "log_std"):
        arr = onp.asarray(getval(value[key]))
        if arr.dtype == object or not onp.issubdtype(arr.dtype, onp.number):
            raise ValueError(f"{name}[{key!r}]: expected a real array, got dtype {arr.dtype}")
        if (arr.ndim != 2) if shape is not None else (arr.ndim < 1):
            raise ValueError(f"{name}[{key!r}]: expected shape {'(N, K)' if shape is not None else '(..., K)'}, "
                             f"got shape {arr.shape}")
        if shape is not None and arr.shape != tuple(shape):
            raise ValueError(f"{name}[{key!r}]: expected shape {tuple(shape)} (N, K), got {arr.shape}")
        if not onp.isfinite(arr).all():
            raise ValueError(f"{name}[{key!r}]: contains NaN or inf; expected finite values")
        arrays[key] = arr
    if arrays["mean"].shape != arrays["log_std"].shape:
        raise ValueError(f"{name}: 'mean' has shape {arrays['mean'].shape} but 'log_std' has shape "
                         f"{arrays['log_std'].shape}; expected both (N, K)")
    worst = onp.abs(arrays["log_std"]).max()
    if worst > MAX_ABS_LOG_STD:
        raise ValueError(f"{name}['log_std']: |log_std| = {worst:g} exceeds {MAX_ABS_LOG_STD:g} "
                         f"(sigma would over/underflow in float64); expected values in "
                         f"[-{MAX_ABS_LOG_STD:g}, {MAX_ABS_LOG_STD:g}]")
    return q_params


def sample(q_params, n_samples, rng=None):
    """Reparametrized draws z = mu + sigma * eps from q(z|x) for every datapoint.

    Parameters
    ----------
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.
    n_samples : int
        S, the number of draws per datapoint.
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (S, N, K), real

    Notes
    -----
    z_snk = mu_nk + exp(log_std_nk) eps_snk with eps ~ N(0, 1). The map is differentiable, so
    when ``q_params`` is traced by autograd the gradient flows through z (the pathwise gradient).
    """
    check_q_params(q_params)
    n_samples = check_positive_int(n_samples, "n_samples")
    rng = check_rng(rng)
    eps = rng.standard_normal((n_samples,) + onp.shape(getval(q_params["mean"])))
    return q_params["mean"] + np.exp(q_params["log_std"]) * eps


def log_prob(q_params, z):
    """log q(z|x) = sum_k [-(z_k - mu_k)^2 / (2 sigma_k^2) - log sigma_k - log(2 pi) / 2].

    Parameters
    ----------
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.
    z : ndarray of shape (..., N, K), real

    Returns
    -------
    ndarray of shape (..., N)
    """
    std_z = (z - q_params["mean"]) * np.exp(-q_params["log_std"])
    return np.sum(-0.5 * std_z ** 2 - q_params["log_std"], axis=-1) - onp.shape(z)[-1] * _HALF_LOG_2PI


def entropy(q_params):
    """Entropy H[q] of the diagonal Gaussian, in nats.

    Parameters
    ----------
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    H = sum_k [log sigma_k + (1 + log 2 pi) / 2].
    """
    log_std = q_params["log_std"]
    return np.sum(log_std, axis=-1) + onp.shape(log_std)[-1] * (0.5 + _HALF_LOG_2PI)


def kl_to_prior(q_params):
    """KL(q(z|x) || N(0, I)) in closed form.

    Parameters
    ----------
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.

    Returns
    -------
    ndarray of shape (N,), non-negative

    Notes
    -----
    KL = sum_k [mu_k^2 + sigma_k^2 - 1 - 2 log sigma_k] / 2. The term sigma^2 - 1 - 2 log sigma is
    computed as expm1(2 log sigma) - 2 log sigma so that it stays accurate (and >= 0) near sigma = 1.
    """
    two_log_std = 2.0 * q_params["log_std"]
    return 0.5 * np.sum(q_params["mean"] ** 2 + np.expm1(two_log_std) - two_log_std, axis=-1)


def score(q_params, z):
    """d log q(z|x) / d(mean, log_std) at fixed z, in closed form.

    Parameters
    ----------
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.
    z : ndarray of shape (..., N, K), real

    Returns
    -------
    dict
        ``{"mean": (z - mu) / sigma^2, "log_std": ((z - mu) / sigma)^2 - 1}``, each of the shape of z.

    Notes
    -----
    With eps = (z - mu) / sigma: d/dmu log q = eps / sigma and d/dlog sigma log q = eps^2 - 1;
    both have expectation zero under q. Used by the sleep and wake-phi phases of wake-sleep.
    """
    mean, log_std = onp.asarray(q_params["mean"]), onp.asarray(q_params["log_std"])
    inv_std = onp.exp(-log_std)
    eps = (onp.asarray(z) - mean) * inv_std
    return {"mean": eps * inv_std, "log_std": eps ** 2 - 1.0}


class GaussianMeanField:
    """Per-datapoint diagonal-Gaussian family: a free mean and log-std row for every datapoint.

    q(z|x_n) = N(z; mu_n, diag(sigma_n^2)) with sigma_n = exp(log_std_n); the Gaussian
    counterpart of :class:`vi_lab.variational.MeanField`. It has 2 N K parameters and no q for
    a datapoint it was not trained on (compare :class:`vi_lab.variational.GaussianEncoder`).

    Parameters
    ----------
    n_data : int
        N, the number of datapoints (rows of the table).
    n_latent : int
        K.

    Notes
    -----
    ``q_params = {"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``, the
    format of :func:`init_q_params`; the ``idx`` argument of :meth:`gaussian_params` says which
    rows a batch is made of.
    """

    #: Parameters are per-datapoint (training updates only the rows of a batch).
    amortized = False
    #: q is a Gaussian over real z.
    latent = "gaussian"

    def __init__(self, n_data, n_latent):
        self.n_data = check_positive_int(n_data, "n_data")
        self.n_latent = check_positive_int(n_latent, "n_latent")

    def __repr__(self):
        return f"GaussianMeanField(n_data={self.n_data}, n_latent={self.n_latent})"

    def config(self):
        """The constructor arguments as a JSON-serializable dict (for saving runs)."""
        return {"class": "GaussianMeanField", "n_data": self.n_data, "n_latent": self.n_latent}

    def init_params(self, rng=0, scale=0.1, log_std=0.0):
        """Initial table: means ~ N(0, scale^2), every log-std = ``log_std``.

        Parameters
        ----------
        rng : int or numpy.random.Generator
        scale : float, default 0.1
            Standard deviation of the initial means (small: q starts near the prior N(0, I)).
        log_std : float, default 0.0

        Returns
        -------
        dict
            ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``.
        """
        rng = check_rng(rng)
        if not scale >= 0:
            raise ValueError(f"scale: expected a non-negative standard deviation, got {scale}")
        q = init_q_params(self.n_data, self.n_latent, log_std)
        q["mean"] = scale * rng.standard_normal((self.n_data, self.n_latent))
        return q

    def gaussian_params(self, q_params, x, idx=None):
        """The rows of the table that belong to the batch ``x``.

        Parameters
        ----------
        q_params : dict
            ``{"mean": (n_data, K), "log_std": (n_data, K)}``.
        x : ndarray of shape (B, L)
            The batch; only its number of rows is used (to check ``idx``).
        idx : array_like of int, shape (B,), optional
            Which datapoints the rows of ``x`` are; ``None`` means all of them, in order.

        Returns
        -------
        dict
            ``{"mean": (B, K), "log_std": (B, K)}``, differentiable in ``q_params``.
        """
        check_q_params(q_params, (self.n_data, self.n_latent))
        n_rows = onp.shape(x)[0] if onp.ndim(x) == 2 else 1
        if idx is None:
            if n_rows != self.n_data:
                raise ValueError(f"x: has {n_rows} rows but {self!r} has n_data = {self.n_data}; pass idx "
                                 f"(the datapoint index of each row) or the whole data set")
            return q_params
        idx = onp.asarray(idx)
        if idx.ndim != 1 or idx.shape[0] != n_rows or idx.dtype.kind not in "iu" \
                or (idx.size and (idx.min() < 0 or idx.max() >= self.n_data)):
            raise ValueError(f"idx: expected {n_rows} integer row indices in [0, {self.n_data}), got {idx!r}")
        return {"mean": q_params["mean"][idx], "log_std": q_params["log_std"][idx]}

    def logits(self, q_params, x, idx=None):
        """Not defined: q is Gaussian. Raises ValueError pointing to :meth:`gaussian_params`."""
        raise ValueError(f"{self!r} is a Gaussian family and has no logits; use "
                         f"family.gaussian_params(q_params, x, idx) for q's mean and log_std")

    def n_params(self, q_params):
        """Number of scalar variational parameters, 2 N K."""
        return int(onp.size(q_params["mean"]) + onp.size(q_params["log_std"]))


# ---------------------------------------------------------------------- Monte Carlo bounds
#: Largest number of (sample, datapoint) pairs decoded at once by the estimates below.
_BLOCK_PAIRS = 2 ** 15


def _check_bound_inputs(model, params, q_params, x, n_samples):
    if getattr(model, "latent", None) != "gaussian":
        raise ValueError(f"model: expected a GaussianLVM (Gaussian latents), got {type(model).__name__}")
    x = onp.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != model.n_obs:
        raise ValueError(f"x: expected shape (N, {model.n_obs}), got {x.shape}")
    check_q_params(q_params, (x.shape[0], model.n_latent))
    return x, check_positive_int(n_samples, "n_samples")


def log_weights(model, params, q_params, x, n_samples, rng=None):
    """log w_s = log p(x, z_s) - log q(z_s|x) for z_s ~ q, shape (S, N).

    Parameters
    ----------
    model : GaussianLVM
    params : dict
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.
    x : ndarray of shape (N, L), values in {0., 1.}
    n_samples : int
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (S, N)
    """
    x, n_samples = _check_bound_inputs(model, params, q_params, x, n_samples)
    z = sample(q_params, n_samples, rng)
    return onp.asarray(model.log_joint(params, x, z)) - onp.asarray(log_prob(q_params, z))


def elbo_estimate(model, params, q_params, x, n_samples=1, rng=None):
    """Monte Carlo ELBO per datapoint, (1/S) sum_s log w_s (unbiased for the ELBO), shape (N,)."""
    return onp.mean(log_weights(model, params, q_params, x, n_samples, rng), axis=0)


def iwae_estimate(model, params, q_params, x, k=1, rng=None, return_se=False, return_elbo=False):
    """The importance-weighted bound log (1/k) sum_i w_i per datapoint, with q as the proposal.

    Parameters
    ----------
    model : GaussianLVM
    params : dict
    q_params : dict
        ``{"mean": (N, K), "log_std": (N, K)}``.
    x : ndarray of shape (N, L), values in {0., 1.}
    k : int
        Importance samples per datapoint, drawn in blocks (memory stays bounded for k ~ 1e4).
    rng : int or numpy.random.Generator
    return_se : bool, default False
        Also return the Monte Carlo standard error of each datapoint's estimate.
    return_elbo : bool, default False
        Also return the ELBO estimate (1/k) sum_i log w_i from the same draws and its standard error.

    Returns
    -------
    iwae : ndarray of shape (N,)
    se : ndarray of shape (N,), only with ``return_se``
    elbo, elbo_se : ndarrays of shape (N,), only with ``return_elbo``

    Notes
    -----
    IWAE_k = log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i|x), z_i ~ q (Burda, Grosse &
    Salakhutdinov, 2016). E[IWAE_k] <= log p(x), increasing in k to log p(x): a *biased* (low)
    estimate of log p(x), whose bias for large k is about Var[w] / (2 k E[w]^2). The standard
    error is the delta method, se = sqrt(Var[w] / (k E[w]^2)) with the moments estimated from the
    same draws (stable: weights rescaled by their maximum). It measures the Monte Carlo spread, not
    the bias, and itself underestimates when a few weights dominate (heavy-tailed w, q much
    narrower than p(z|x)); then raise k.
    """
    x, k = _check_bound_inputs(model, params, q_params, x, k)
    rng = check_rng(rng)
    n = x.shape[0]
    block = max(1, _BLOCK_PAIRS // max(n, 1))
    run_max = onp.full(n, -onp.inf)
    s1, s2 = onp.zeros(n), onp.zeros(n)
    lw_sum, lw_sq = onp.zeros(n), onp.zeros(n)
    done = 0
    while done < k:
        m = min(block, k - done)
        lw = log_weights(model, params, q_params, x, m, rng)              # (m, N)
        new_max = onp.maximum(run_max, lw.max(axis=0))
        scale = onp.exp(run_max - new_max)
        s1 = s1 * scale + onp.exp(lw - new_max).sum(axis=0)
        s2 = s2 * scale ** 2 + onp.exp(2.0 * (lw - new_max)).sum(axis=0)
        run_max = new_max
        lw_sum += lw.sum(axis=0)
        lw_sq += (lw ** 2).sum(axis=0)
        done += m
    out = [onp.log(s1 / k) + run_max]
    if return_se:
        rel_var = onp.maximum((s2 / k) / (s1 / k) ** 2 - 1.0, 0.0)            # Var[w] / E[w]^2
        out.append(onp.sqrt(rel_var / k))
    if return_elbo:
        mean = lw_sum / k
        var = onp.maximum(lw_sq / k - mean ** 2, 0.0) * k / max(k - 1, 1)
        out += [mean, onp.sqrt(var / k)]
    return out[0] if len(out) == 1 else tuple(out)


# ---------------------------------------------------------------------- the 2-D latent space
def latent_grid(n_grid=15, quantile=True, extent=3.0):
    """A square grid of 2-D latent points, row-major from the top-left (z_2 high) corner.

    Parameters
    ----------
    n_grid : int, default 15
        Points per axis.
    quantile : bool, default True
        Place the points at the standard-normal quantiles of an even grid on (0, 1) (Kingma &
        Welling, 2014, figure 4): equal prior mass between neighbours, so the picture shows what
        the prior actually samples. False: an even grid on [-extent, extent].
    extent : float, default 3.0

    Returns
    -------
    z : ndarray of shape (n_grid * n_grid, 2)
        Row r, column c of the picture is z[r * n_grid + c] = (u_c, u_{n_grid - 1 - r}).
    axis : ndarray of shape (n_grid,)
        The increasing coordinates u used on each axis.
    """
    n_grid = check_positive_int(n_grid, "n_grid")
    if quantile:
        from scipy.stats import norm
        axis = norm.ppf((onp.arange(n_grid) + 0.5) / n_grid)
    else:
        if not extent > 0:
            raise ValueError(f"extent: expected a positive half-width, got {extent!r}")
        axis = onp.linspace(-extent, extent, n_grid)
    z1, z2 = onp.meshgrid(axis, axis[::-1])
    return onp.stack([z1.ravel(), z2.ravel()], axis=-1), axis


def decoder_means(model, params, z):
    """E[x | z] = sigmoid(a(z)), the decoder's mean image at each z.

    Parameters
    ----------
    model : GaussianLVM (or any DecoderModel)
    params : dict
    z : ndarray of shape (M, K), real

    Returns
    -------
    ndarray of shape (M, L), values in (0, 1)
    """
    z = onp.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] != model.n_latent:
        raise ValueError(f"z: expected shape (M, {model.n_latent}), got {z.shape}")
    return onp.asarray(sigmoid(model.decoder_logits(params, z)))
