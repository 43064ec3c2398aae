"""The base class every gradient estimator derives from, and the pieces they share.

An estimator is an object with two entry points (see :mod:`vi_lab.estimators` for the
conventions): the generic ``est.grad(f, logits, n_samples, rng)`` and the ELBO-level
``est(model, params, q_logits, x, n_samples, rng)``. Subclasses implement one private
method, ``_grad(f, logits, n_samples, rng, n_reps)``, which works on R independent
replicates at once; the base class validates every input, reshapes the user's ``f``, and
builds the ELBO-level call on top of ``_grad`` for every estimator that evaluates the
decoder on 0/1 samples.
"""
import difflib

import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .._tree import tree_map
from .._validation import check_bool, check_binary, check_finite_tree, check_logits, check_model, check_params, check_positive_int, check_rng
from ..model import BernoulliLVM, DecoderModel
from ..nn import log_sigmoid, mlp_backward, mlp_forward, sigmoid, sigmoid_into, softplus
from ..variational import kl_to_prior

__all__ = ["Estimator", "uniform_open", "bernoulli_from_uniform", "score_grad", "logistic_noise",
           "weighted_log_density_grads", "sample_sum", "sample_mean"]


def sample_sum(values, keepdims=False):
    """``values.sum(axis=1)`` over the sample axis of an (R, S, ...) array, bit for bit, faster.

    Parameters
    ----------
    values : ndarray of shape (R, S, ...)
    keepdims : bool
        Keep the sample axis with length 1.

    Returns
    -------
    ndarray of shape (R, ...), or (R, 1, ...) if ``keepdims``

    Notes
    -----
    numpy reduces a middle axis as an outer loop over S with the trailing axes inside, each
    inner loop only prod(shape[2:]) long: for the (2000, 10, 5) signals of a 5-logit problem
    that costs 3.8x what ``einsum`` takes for the same sum (measured, numpy 2). Both add the S
    terms one after another in the order s = 0, 1, ..., so the results are identical. With one
    trailing element, or a non-contiguous array, numpy sums along the contiguous axis pairwise
    instead, and those cases keep numpy's own reduction.
    """
    values = onp.asarray(values)
    if (values.ndim > 2 and values.dtype == onp.float64 and values.flags.c_contiguous
            and values.size > values.shape[0] * values.shape[1]):
        out = onp.einsum("rs...->r...", values)
        return out[:, None] if keepdims else out
    return values.sum(axis=1, keepdims=keepdims)


def sample_mean(values, keepdims=False):
    """``values.mean(axis=1)``, bit for bit: the sum of :func:`sample_sum`, then divided by S."""
    values = onp.asarray(values)
    if values.dtype != onp.float64:
        return values.mean(axis=1, keepdims=keepdims)
    out = sample_sum(values, keepdims)
    out /= values.shape[1]
    return out


def uniform_open(rng, shape):
    """Uniform draws in the open interval (0, 1), never exactly 0 or 1.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int

    Returns
    -------
    ndarray of the given shape, values in [2**-53, 1 - 2**-53]

    Notes
    -----
    ``Generator.random`` can return 0.0, and the estimators take log(u) and log(1 - u);
    (m + 1/2) / 2**52 for an integer m in [0, 2**52) is exactly representable and interior.
    It is built from m's bits: with the exponent of 1.0 OR-ed in they are the double 1 + m / 2**52,
    and (1 + m / 2**52) - 1 + 2**-53 is that same number exactly (a third of the time of
    converting the int64 m to float, which dominated the sampling of small estimators).
    """
    # the top 52 bits of each raw 64-bit draw: what rng.integers(0, 2**52) returns (Lemire's
    # method never rejects for a power of two), without its per-element bounds arithmetic
    bits = rng.bit_generator.random_raw(size=shape)
    bits >>= onp.uint64(12)
    bits |= onp.uint64(0x3FF0000000000000)
    u = bits.view(onp.float64)
    u -= 1.0
    u += 2.0 ** -53
    return u


def logistic_noise(u):
    """Logistic(0, 1) noise log u - log(1 - u) from uniforms u in (0, 1)."""
    noise = onp.log(u)
    log_rest = onp.negative(u)
    noise -= onp.log1p(log_rest, out=log_rest)      # two arrays, not four, for the same bits
    return noise


def bernoulli_from_uniform(logits, u):
    """z = 1[u < sigmoid(logits)], as float 0/1.

    Parameters
    ----------
    logits : ndarray of shape (*batch, K)
    u : ndarray of shape (..., *batch, K), values in (0, 1)

    Returns
    -------
    ndarray of the shape of ``u``, values in {0., 1.}
    """
    return (u < onp.asarray(sigmoid(logits))).astype(onp.float64)


def tile_reps(logits, n_reps):
    """R copies of ``logits`` stacked on a new leading axis, shape (R, *logits.shape).

    The gradient of a sum over replicates with respect to the tiled copy r is the r-th
    replicate's estimate, which is how one reverse pass returns R independent estimates.
    """
    return onp.array(onp.broadcast_to(logits, (n_reps,) + logits.shape))


def score_grad(signal, z, logits):
    """Score-function term (1/S) sum_s signal_s * d/dlogits log q(z_s), for R replicates.

    Parameters
    ----------
    signal : ndarray of shape (R, S, *batch)
        Learning signal, held constant (no gradient flows through it).
    z : ndarray of shape (R, S, *batch, K), values in {0., 1.}
    logits : ndarray of shape (*batch, K)

    Returns
    -------
    ndarray of shape (R, *batch, K)

    Notes
    -----
    The gradient of the surrogate (1/S) sum_s stop_grad(signal_s) log q(z_s; psi) with respect
    to a per-replicate copy of psi, in closed form: d log q(z)/d psi = z - sigmoid(psi), so the
    estimate is signal_s (z_s - sigmoid(psi)) averaged over s (one vectorized expression, no tape).
    """
    signal = onp.asarray(getval(signal), dtype=float)
    z = onp.asarray(getval(z), dtype=float)
    centered = z - onp.asarray(sigmoid(onp.asarray(getval(logits), dtype=float)))
    centered *= signal[..., None]
    return sample_mean(centered)


def _neg_kl_sum(params, q_logits):
    return -np.sum(kl_to_prior(q_logits, params["prior_logits"]))


_grad_neg_kl = autograd.grad(_neg_kl_sum, argnum=(0, 1))


def _weighted_log_density(params, model, x, z, weights, analytic):
    """sum_{s,n} w_sn log p(x_n, z_sn) (or log p(x_n|z_sn) if ``analytic``); z (S, N, K)."""
    if analytic:
        values = model.log_likelihood(params, x, z)
    else:
        values = model.log_joint(params, x, z)
    return np.sum(weights * values)


_grad_weighted_log_density = autograd.grad(_weighted_log_density)


def _stock_model(model):
    """A BernoulliLVM whose densities are the stock ones, so the written-out gradient applies."""
    cls = type(model)
    return (isinstance(model, BernoulliLVM) and cls.decoder_logits is DecoderModel.decoder_logits
            and cls.log_likelihood is DecoderModel.log_likelihood and cls.log_joint is DecoderModel.log_joint
            and cls.log_prior is BernoulliLVM.log_prior)


def weighted_log_density_grads(model, params, x, z, weights, analytic=False):
    """R model gradients at once: g_r = sum_{s,n} w_rsn grad_theta log p(x_n, z_rsn).

    Parameters
    ----------
    model : BernoulliLVM (or any model with autograd-differentiable densities)
    params : dict
    x : ndarray of shape (N, L)
    z : ndarray of shape (R, S, N, K)
        0/1 samples, or relaxed values in [0, 1] (the weights and z are held constant).
    weights : float or ndarray broadcastable to (R, S, N)
    analytic : bool
        If True, differentiate log p(x_n|z) (no prior term: the caller adds the KL's gradient).

    Returns
    -------
    dict
        The structure of ``params``, every leaf with a leading axis R.

    Notes
    -----
    For the stock Bernoulli model this is one pass over all R x S x N samples: the decoder's
    forward, d/da = w (x - sigmoid(a)), and the hand-written backward with the rows grouped by
    replicate (batched matmuls); d/db = sum_{s,n} w (z - sigmoid(b)). Other models fall back to
    one autograd reverse pass per replicate.
    """
    z = onp.asarray(getval(z), dtype=float)
    n_reps, n_samples, n_data, n_latent = z.shape
    weights = onp.broadcast_to(onp.asarray(getval(weights), dtype=float), (n_reps, n_samples, n_data))
    if not _stock_model(model):
        return stack_trees([_grad_weighted_log_density(params, model, x, z[r], weights[r], analytic)
                            for r in range(n_reps)])
    flat = z.reshape(-1, n_latent)
    a, cache = mlp_forward(params["decoder"], flat, model.activation)
    grad_a = sigmoid_into(a, out=onp.empty_like(a))
    grad_a = onp.subtract(onp.broadcast_to(x, (n_reps, n_samples) + x.shape).reshape(a.shape), grad_a, out=grad_a)
    grad_a *= weights.reshape(-1, 1)
    decoder = mlp_backward(params["decoder"], cache, grad_a, model.activation, n_groups=n_reps)
    prior_logits = onp.asarray(params["prior_logits"], dtype=float)
    if analytic:
        g_prior = onp.zeros((n_reps, n_latent))
    else:
        g_prior = (onp.einsum("rsn,rsnk->rk", weights, z)
                   - weights.sum(axis=(1, 2))[:, None] * onp.asarray(sigmoid(prior_logits)))
    return {"prior_logits": g_prior, "decoder": decoder}


def stack_trees(trees):
    """Stack a list of identically structured trees leafwise on a new leading axis."""
    return tree_map(lambda *leaves: onp.stack([onp.asarray(v) for v in leaves]), *trees)


def _format_value(value):
    return repr(value)


class Estimator:
    """Base class of the gradient estimators (see :mod:`vi_lab.estimators` for the conventions).

    Parameters
    ----------
    **options
        Estimator-specific options, listed in the class attribute ``options`` with their defaults.
        An unknown option or a bad value raises ``ValueError`` naming the fix.

    Attributes
    ----------
    name : str
        Registry name.
    unbiased : bool
        Whether the ELBO-level and generic estimates are unbiased for the gradient they target.
    evals_per_sample : int or None
        Decoder (or f) evaluations per independent draw; ``None`` if it depends on the model,
        in which case ``cost(model)`` gives it.
    min_samples : int
        Smallest valid ``n_samples``.
    reference : str
        The paper the estimator comes from.
    latent : {"bernoulli", "gaussian"}
    stateful : bool
        True if the object keeps learned state (and updates it on each call).
    objective : {"elbo", "iwae"}
        What the ELBO-level call estimates the gradient of; the generic level estimates
        d/dlogits E[f] for "elbo" and d/dlogits E[log mean_s exp f(z_s)] for "iwae".
    """

    name = None
    unbiased = True
    evals_per_sample = 1
    min_samples = 1
    reference = ""
    latent = "bernoulli"
    stateful = False
    objective = "elbo"
    #: option name -> default value
    options = {}

    def __init__(self, **options):
        unknown = [key for key in options if key not in self.options]
        if unknown:
            accepted = ", ".join(self.options) if self.options else "no options"
            hint = difflib.get_close_matches(unknown[0], list(self.options), n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ValueError(
                f"{unknown[0]}: unknown option for estimator {self.name!r}{did_you_mean}; "
                f"it accepts {accepted}"
            )
        for key, default in self.options.items():
            setattr(self, key, options.get(key, default))
        self._validate_options()

    def _validate_options(self):
        """Check option values and set option-dependent attributes (min_samples, unbiased)."""

    def _check_tau(self, value, name="tau"):
        try:
            ok = float(value) > 0 and onp.isfinite(float(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name}: expected a temperature > 0 (e.g. {name}=0.5), got {value!r}")
        return float(value)

    def config(self):
        """Name and options as a JSON-serializable dict: ``get(**config)`` rebuilds the estimator."""
        out = {"name": self.name}
        out.update({key: getattr(self, key) for key in self.options})
        return out

    def __repr__(self):
        opts = ", ".join(f"{k}={_format_value(getattr(self, k))}" for k in self.options)
        return f"get({self.name!r}{', ' if opts else ''}{opts})"

    def cost(self, model):
        """Decoder evaluations per independent draw for ``model``."""
        return self.evals_per_sample

    # ------------------------------------------------------------------ validation
    def _check_n_samples(self, n_samples):
        n_samples = check_positive_int(n_samples, "n_samples")
        if n_samples < self.min_samples:
            raise ValueError(self._min_samples_message(n_samples))
        return n_samples

    def _min_samples_message(self, n_samples):
        return (f"n_samples: estimator {self.name!r} needs n_samples >= {self.min_samples}, "
                f"got {n_samples}")

    @staticmethod
    def _check_reps(n_reps):
        return 1 if n_reps is None else check_positive_int(n_reps, "n_reps")

    def _check_elbo_inputs(self, model, params, q_logits, x, n_samples, n_reps):
        check_model(model, self.latent)
        x = check_binary(x, model.n_obs, "x")
        check_params(model, params)
        check_logits(q_logits, (x.shape[0], model.n_latent), "q_logits")
        q_logits = onp.asarray(getval(q_logits), dtype=onp.float64)
        if not onp.isfinite(q_logits).all():
            raise ValueError("q_logits: contains +-inf; expected finite logits (e.g. +-1e4 for a near-deterministic q)")
        return x, q_logits, self._check_n_samples(n_samples), self._check_reps(n_reps)

    # ------------------------------------------------------------------ generic level
    def grad(self, f, logits, n_samples, rng=None, n_reps=None):
        """Estimate d/dlogits E_{z ~ Bern(sigmoid(logits))}[sum f(z)].

        Parameters
        ----------
        f : callable
            Maps z of shape (S, *batch, K) to values of shape (S, *batch). Output position b
            may depend only on z[:, b, :] (the latents of the same batch position). Relaxed
            estimators call it on z in [0, 1] and differentiate it with autograd; the others
            call it on 0/1 values only and never differentiate it.
        logits : array_like of shape (*batch, K)
            Finite logits; a 1-D array of shape (K,) is a single batch position.
        n_samples : int
            S, independent draws of the estimator's randomness (>= ``min_samples``).
        rng : int or numpy.random.Generator
        n_reps : int, optional
            If given, return R = n_reps independent estimates stacked on a leading axis.

        Returns
        -------
        ndarray of shape (*batch, K), or (R, *batch, K) if ``n_reps`` is given
        """
        if not callable(f):
            raise ValueError(f"f: expected a callable mapping z (S, ..., K) to (S, ...), got {type(f).__name__}")
        arr = onp.asarray(getval(logits), dtype=onp.float64)
        if arr.ndim == 0:
            raise ValueError("logits: expected an array of shape (..., K), got a scalar; wrap it as [logit]")
        if not onp.isfinite(arr).all():
            raise ValueError("logits: expected finite values (e.g. +-1e4 for a near-deterministic Bernoulli)")
        n_samples = self._check_n_samples(n_samples)
        reps = self._check_reps(n_reps)
        rng = check_rng(rng)
        batch = arr.shape[:-1]

        def f_reps(z, hard=True):
            lead = z.shape[:2]
            flat = np.reshape(z, (lead[0] * lead[1],) + tuple(z.shape[2:]))
            out = f(flat)
            if np.shape(out) != (flat.shape[0],) + batch:
                raise ValueError(
                    f"f: expected an output of shape {(flat.shape[0],) + batch} for z of shape "
                    f"{flat.shape}, got {np.shape(out)}"
                )
            return np.reshape(out, lead + batch)

        g = self._grad(f_reps, arr, n_samples, rng, reps)
        return g if n_reps is not None else g[0]

    def _grad(self, f, logits, n_samples, rng, n_reps):
        """R independent generic estimates, shape (R, *batch, K).

        ``f(z, hard=True)`` maps z of shape (R, S', *batch, K) to (R, S', *batch); ``hard``
        tells the ELBO level whether z are 0/1 samples of q (used for the model gradient).
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ ELBO level
    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """Estimate the gradient of sum_n ELBO_n wrt the model parameters and q's logits.

        Parameters
        ----------
        model : BernoulliLVM
        params : dict
        q_logits : ndarray of shape (N, K)
        x : ndarray of shape (N, L), values in {0., 1.}
        n_samples : int
            S, independent draws per datapoint.
        rng : int or numpy.random.Generator
        n_reps : int, optional
            R independent estimates stacked on a leading axis of every returned array.
        params_grad : bool, default True
            If False, skip the model-parameter gradient (``g_params`` is None); with
            ``n_reps`` this keeps the whole call to one vectorized pass.

        Returns
        -------
        g_params : dict or None
            Structure of ``params``; leaves of shape (R, *shape) if ``n_reps`` is given.
        g_logits : ndarray of shape (N, K), or (R, N, K) if ``n_reps`` is given
        """
        params_grad = check_bool(params_grad, "params_grad")
        x, q_logits, n_samples, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        rng = check_rng(rng)
        analytic = getattr(self, "entropy", "sampled") == "analytic"
        hard_z = []
        # log q(z) = sum_k [z_k log sigmoid(psi_k) + (1 - z_k) log sigmoid(-psi_k)]: equal to
        # z . psi - sum softplus(psi), but a row mixing psi ~ 1e12 and psi ~ 1 does not cancel
        log_q_on, log_q_off = log_sigmoid(q_logits), log_sigmoid(-q_logits)

        def f(z, hard=True):
            if analytic:
                values = model.log_likelihood(params, x, z)
            else:
                # q's logits are constants inside f: d/dpsi of -log q(z) has expectation 0
                values = model.log_joint(params, x, z) - np.sum(z * log_q_on + (1.0 - z) * log_q_off, axis=-1)
            if hard:
                hard_z.append(onp.asarray(getval(z)))
            return values

        g_logits = self._grad(f, q_logits, n_samples, rng, reps)
        g_params = None
        kl_params, kl_logits = _grad_neg_kl(params, q_logits) if analytic else (None, None)
        if analytic:
            g_logits = g_logits + kl_logits
        if params_grad:
            g_params = self._params_grad_from_samples(model, params, x, hard_z, reps, analytic, kl_params)
        return self._finish(g_params, g_logits, n_reps)

    @staticmethod
    def _finish(g_params, g_logits, n_reps):
        if n_reps is not None:
            return g_params, g_logits
        if g_params is not None:
            g_params = tree_map(lambda leaf: leaf[0], g_params)
        return g_params, g_logits[0]

    @staticmethod
    def _params_grad_from_samples(model, params, x, hard_z, n_reps, analytic, kl_params=None):
        """Pathwise model gradient (1/S') sum_s grad log p(x, z_s) from the recorded 0/1 samples.

        Every recorded set of samples is marginally distributed as q (ARM's antithetic pair
        included), so their average is unbiased. All R replicates in one vectorized pass
        (:func:`weighted_log_density_grads`), not one reverse pass each.
        """
        z_all = onp.concatenate(hard_z, axis=1)                     # (R, S', N, K)
        grads = weighted_log_density_grads(model, params, x, z_all, 1.0 / z_all.shape[1], analytic)
        if kl_params is not None:
            grads = tree_map(lambda g, k: g + onp.asarray(k)[None], grads, kl_params)
        return grads
