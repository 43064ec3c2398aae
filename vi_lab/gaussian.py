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
those of :mod:`vi_lab.variational` for the Bernoulli family.
"""
import numbers

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from ._validation import check_rng, check_positive_int
from .model import DecoderModel
from .nn import sigmoid

__all__ = ["GaussianLVM", "init_q_params", "check_q_params", "sample", "log_prob", "entropy",
           "kl_to_prior", "MAX_ABS_LOG_STD"]

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
