"""The base class every gradient estimator derives from, and the model gradient they share.

An estimator is an object with two entry points (see :mod:`vi_lab.estimators` for the
conventions): the generic ``est.grad(f, logits, n_samples, rng)`` and the ELBO-level
``est(model, params, q_logits, x, n_samples, rng)``. Subclasses implement one private
method, ``_grad(f, logits, n_samples, rng, n_reps)``, which works on R independent
replicates at once; the base class validates every input, reshapes the user's ``f``, and
builds the ELBO-level call on top of ``_grad`` for every estimator that evaluates the
decoder on 0/1 samples. The array pieces (draws, score term, sample sums) live in
:mod:`vi_lab.estimators._arrays` and are re-exported here.
"""
import difflib

import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .._tree import tree_map
from .._validation import check_bool, check_binary, check_logits, check_model, check_params, check_positive_int, check_rng
from ..model import BernoulliLVM, DecoderModel
from ..nn import log_sigmoid, mlp_backward, mlp_forward, sigmoid, sigmoid_into
from ..variational import kl_to_prior
from ._arrays import bernoulli_from_uniform, logistic_noise, sample_mean, sample_sum, score_grad, tile_reps, uniform_open

__all__ = ["Estimator", "uniform_open", "bernoulli_from_uniform", "score_grad", "logistic_noise",
           "weighted_log_density_grads", "sample_sum", "sample_mean", "tile_reps"]


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

        def f_flat(flat):
            out = f(flat)
            if np.shape(out) != (flat.shape[0],) + batch:
                raise ValueError(
                    f"f: expected an output of shape {(flat.shape[0],) + batch} for z of shape "
                    f"{flat.shape}, got {np.shape(out)}"
                )
            return out

        def f_reps(z, hard=True):
            lead = z.shape[:2]
            out = f_flat(np.reshape(z, (lead[0] * lead[1],) + tuple(z.shape[2:])))
            return np.reshape(out, lead + batch)

        # the user's f on the (R S, *batch, K) rows, for an estimator that reshapes z itself
        # before tracing f (two fewer nodes on the tape)
        f_reps.on_rows = f_flat
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
