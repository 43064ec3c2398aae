"""Gradient estimators for Gaussian latents: the reparametrization trick and the score function.

For q(z|x_n) = N(mu_n, diag(sigma_n^2)) (``q_params = {"mean": (N, K), "log_std": (N, K)}``,
see :mod:`vi_lab.gaussian`) both estimators are unbiased; the pathwise one usually has far
lower variance, which is the point of the comparison. Conventions follow
:mod:`vi_lab.estimators` with ``q_params`` in place of ``q_logits``:

- generic level ``est.grad(f, q_params, n_samples, rng, n_reps=None)`` estimates
  d/d(mean, log_std) E_{z ~ N(mean, diag exp(2 log_std))}[sum f(z)] and returns a dict
  ``{"mean", "log_std"}`` of the shape of ``q_params`` (``(R, *batch, K)`` with ``n_reps``);
- ELBO level ``g_params, g_q = est(model, params, q_params, x, n_samples, rng)`` estimates
  the gradient of sum_n ELBO_n for a :class:`vi_lab.GaussianLVM`, with the structure of
  :func:`vi_lab.exact.gaussian_elbo_grad`.

Both use eps ~ N(0, I) and z = mu + sigma * eps; with ``n_reps=R`` the R * S draws are made at
once and the q gradients of all replicates come from one reverse pass (per-replicate copies of
q_params); the model gradient takes one reverse pass per replicate, as for the Bernoulli
estimators (``params_grad=False`` skips it).
"""
import autograd
import autograd.numpy as np
import numpy as onp
from .._special import logsumexp
from autograd.tracer import getval

from .._tree import tree_map
from .._validation import check_bool, check_binary, check_finite_tree, check_rng
from ..gaussian import check_q_params, log_prob
from .base import Estimator, tile_reps
from .score_function import center

__all__ = ["Reparam", "GaussianScoreFunction"]

_ENTROPY = ("sampled", "analytic")


def _tile_q(mean, log_std, n_reps):
    return {"mean": tile_reps(mean, n_reps), "log_std": tile_reps(log_std, n_reps)}


def _per_rep(tiled):
    """q_params of shape (R, *batch, K) viewed as (R, 1, *batch, K), to broadcast over samples."""
    return {"mean": tiled["mean"][:, None], "log_std": tiled["log_std"][:, None]}


def _draw(tiled, eps):
    """z = mu + sigma * eps, shape (R, S, *batch, K): differentiable in ``tiled``."""
    q = _per_rep(tiled)
    return q["mean"] + np.exp(q["log_std"]) * eps


class _GaussianEstimator(Estimator):
    """Shared validation and ELBO-level plumbing of the Gaussian-latent estimators."""

    latent = "gaussian"

    def _validate_options(self):
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")

    # ------------------------------------------------------------------ generic level
    def grad(self, f, q_params, n_samples, rng=None, n_reps=None):
        """Estimate d/d(mean, log_std) E_{z ~ N(mean, diag exp(2 log_std))}[sum f(z)].

        Parameters
        ----------
        f : callable
            Maps z of shape (S, *batch, K) to values of shape (S, *batch); output position b may
            depend only on z[:, b, :]. ``reparam`` differentiates it with autograd (it must be
            autograd-differentiable); ``gaussian_score_function`` only evaluates it.
        q_params : dict
            ``{"mean": ndarray of shape (*batch, K), "log_std": ndarray of shape (*batch, K)}``.
        n_samples : int
            S, independent draws of eps (>= ``min_samples``).
        rng : int or numpy.random.Generator
        n_reps : int, optional
            If given, return R = n_reps independent estimates stacked on a leading axis.

        Returns
        -------
        dict
            ``{"mean": ndarray, "log_std": ndarray}`` of shape (*batch, K), or (R, *batch, K)
            if ``n_reps`` is given.
        """
        if not callable(f):
            raise ValueError(f"f: expected a callable mapping z (S, ..., K) to (S, ...), got {type(f).__name__}")
        check_q_params(q_params)
        mean = onp.asarray(getval(q_params["mean"]), dtype=onp.float64)
        log_std = onp.asarray(getval(q_params["log_std"]), dtype=onp.float64)
        n_samples = self._check_n_samples(n_samples)
        reps = self._check_reps(n_reps)
        rng = check_rng(rng)
        batch = mean.shape[:-1]

        def f_reps(z):
            lead = z.shape[:2]
            flat = np.reshape(z, (lead[0] * lead[1],) + tuple(z.shape[2:]))
            out = f(flat)
            if np.shape(out) != (flat.shape[0],) + batch:
                raise ValueError(f"f: expected an output of shape {(flat.shape[0],) + batch} for z of shape "
                                 f"{flat.shape}, got {np.shape(out)}")
            return np.reshape(out, lead + batch)

        eps = rng.standard_normal((reps, n_samples) + mean.shape)
        g = self._grad_q(f_reps, mean, log_std, eps)
        return g if n_reps is not None else {key: value[0] for key, value in g.items()}

    def _grad_q(self, f, mean, log_std, eps):
        """R estimates {"mean", "log_std"} of shape (R, *batch, K); f maps (R, S, *batch, K) -> (R, S, *batch)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ ELBO level
    def _check_gaussian_inputs(self, model, params, q_params, x, n_samples, n_reps):
        if getattr(model, "latent", None) != "gaussian":
            raise ValueError(
                f"model: estimator {self.name!r} needs a model with Gaussian latents (vi_lab.GaussianLVM), got "
                f"{type(model).__name__}; for Bernoulli latents use one of "
                f"vi_lab.estimators.names('bernoulli')")
        x = check_binary(x, model.n_obs, "x")
        check_finite_tree(params)
        check_q_params(q_params, (x.shape[0], model.n_latent))
        mean = onp.asarray(getval(q_params["mean"]), dtype=onp.float64)
        log_std = onp.asarray(getval(q_params["log_std"]), dtype=onp.float64)
        return x, mean, log_std, self._check_n_samples(n_samples), self._check_reps(n_reps)

    def __call__(self, model, params, q_params, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """Estimate the gradient of sum_n ELBO_n wrt the model parameters and q's mean and log_std.

        Parameters
        ----------
        model : GaussianLVM
        params : dict
        q_params : dict
            ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``.
        x : ndarray of shape (N, L), values in {0., 1.}
        n_samples : int
            S, independent draws per datapoint.
        rng : int or numpy.random.Generator
        n_reps : int, optional
            R independent estimates stacked on a leading axis of every returned array.
        params_grad : bool, default True
            If False, skip the model-parameter gradient (``g_params`` is None); with ``n_reps``
            this keeps the whole call to one vectorized pass.

        Returns
        -------
        g_params : dict or None
            Structure of ``params``; leaves of shape (R, *shape) if ``n_reps`` is given.
        g_q : dict
            ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}``, or
            (R, N, K) each if ``n_reps`` is given.
        """
        params_grad = check_bool(params_grad, "params_grad")
        x, mean, log_std, n_samples, reps = self._check_gaussian_inputs(model, params, q_params, x, n_samples, n_reps)
        rng = check_rng(rng)
        analytic = self.entropy == "analytic"
        eps = rng.standard_normal((reps, n_samples) + mean.shape)
        g_q = self._elbo_grad_q(model, params, x, mean, log_std, eps, analytic)
        if analytic:
            # d/d(mu, log sigma) of -KL(N(mu, sigma^2) || N(0, 1)) = (-mu, 1 - sigma^2)
            g_q = {"mean": g_q["mean"] - mean, "log_std": g_q["log_std"] - onp.expm1(2.0 * log_std)}
        g_params = None
        if params_grad:
            z = mean + onp.exp(log_std) * eps                       # (R, S, N, K)
            # p(z) has no parameters, so theta's gradient is (1/S) sum_s grad log p(x|z_s) either way
            g_params = self._params_grad_from_samples(model, params, x, [z], reps, analytic)
        if n_reps is None:
            g_q = {key: value[0] for key, value in g_q.items()}
            if g_params is not None:
                g_params = tree_map(lambda leaf: leaf[0], g_params)
        return g_params, g_q

    def _elbo_grad_q(self, model, params, x, mean, log_std, eps, analytic):
        raise NotImplementedError


class Reparam(_GaussianEstimator):
    """The reparametrization (pathwise) gradient estimator for Gaussian latents.

    Options
    -------
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only. "sampled": differentiate (1/S) sum_s [log p(x, z_s) - log q(z_s|x)]
        (Kingma & Welling's first estimator). "analytic": differentiate
        (1/S) sum_s log p(x|z_s) - KL(q || p(z)) with the KL in closed form (their second).
    stick_the_landing : bool, default False
        ELBO level, ``entropy="sampled"`` only: hold q's parameters constant inside log q(z|x)
        (gradient flows only through z), the "path derivative" of Roeder, Wu & Duvenaud (2017).
        The dropped term, -d/dphi log q(z; phi) at fixed z, has expectation zero, so this is
        still unbiased, and its variance vanishes when q equals the posterior.
    objective : {"elbo", "iwae"}, default "elbo"
        "iwae": the gradient of the importance-weighted bound with k = n_samples,
        IWAE_k = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)], z_i = mu + sigma * eps_i (Burda, Grosse
        & Salakhutdinov, 2016), still pathwise and unbiased for that bound's gradient; k = 1 is
        the ELBO. Needs ``entropy="sampled"`` and no sticking the landing (the path derivative
        alone is biased for IWAE; Tucker et al., 2019). At the generic level it estimates
        d/d(mean, log_std) E[log (1/S) sum_s exp f(z_s)].

    Notes
    -----
    With eps_s ~ N(0, I) and z_s = mu + sigma * eps_s (sigma = exp(log_std)),

    g = (1/S) sum_s d/d(mu, log sigma) f(mu + sigma * eps_s)
      = (1/S) sum_s (f'(z_s), f'(z_s) * sigma * eps_s)  (elementwise),

    computed by autograd through f. Unbiased, because the distribution of eps does not depend on
    (mu, sigma) and f is differentiable (generic level: f must be autograd-differentiable). At
    the ELBO level f(z) = log p(x, z) - log q(z|x) (or log p(x|z) with the analytic KL), and the
    model gradient is (1/S) sum_s grad_theta log p(x|z_s).

    Cost: one decoder evaluation (plus one backward pass) per sample.

    References
    ----------
    Kingma & Welling (2014), "Auto-encoding variational Bayes", ICLR; Rezende, Mohamed &
    Wierstra (2014), "Stochastic backpropagation and approximate inference in deep generative
    models", ICML. Sticking the landing: Roeder, Wu & Duvenaud (2017), NeurIPS.
    """

    name = "reparam"
    reference = "Kingma & Welling (2014); Rezende, Mohamed & Wierstra (2014)"
    options = {"entropy": "sampled", "stick_the_landing": False, "objective": "elbo"}

    def _validate_options(self):
        super()._validate_options()
        if not isinstance(self.stick_the_landing, (bool, onp.bool_)):
            raise ValueError(f"stick_the_landing: expected True or False, got {self.stick_the_landing!r}")
        if self.stick_the_landing and self.entropy == "analytic":
            raise ValueError("stick_the_landing: only applies to entropy='sampled' (with entropy='analytic' "
                             "there is no sampled log q term); use one or the other")
        if self.objective not in ("elbo", "iwae"):
            raise ValueError(f"objective: expected 'elbo' or 'iwae', got {self.objective!r}")
        if self.objective == "iwae" and (self.entropy != "sampled" or self.stick_the_landing):
            raise ValueError("objective: 'iwae' needs entropy='sampled' and stick_the_landing=False (the IWAE "
                             "bound has no closed-form KL term, and the path derivative alone is biased for it)")
        if self.objective == "iwae":
            self.reference = "Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders, ICLR"

    def _reduce(self, values):
        """(R, S, *batch) -> the per-replicate objective summed over the batch: mean or log-mean-exp over S."""
        n_samples = values.shape[1]
        if self.objective == "iwae":
            return np.sum(logsumexp(values, axis=1)) - onp.prod(values.shape[:1] + values.shape[2:]) * onp.log(n_samples)
        return np.sum(values) / n_samples

    def _grad_q(self, f, mean, log_std, eps):
        def objective(tiled):
            return self._reduce(f(_draw(tiled, eps)))

        return autograd.grad(objective)(_tile_q(mean, log_std, eps.shape[0]))

    def __call__(self, model, params, q_params, x, n_samples, rng=None, n_reps=None, params_grad=True):
        params_grad = check_bool(params_grad, "params_grad")
        if self.objective != "iwae":
            return super().__call__(model, params, q_params, x, n_samples, rng, n_reps, params_grad)
        x, mean, log_std, n_samples, reps = self._check_gaussian_inputs(model, params, q_params, x, n_samples, n_reps)
        eps = check_rng(rng).standard_normal((reps, n_samples) + mean.shape)
        g_q = self._elbo_grad_q(model, params, x, mean, log_std, eps, False)
        g_params = None
        if params_grad:
            # theta-gradient of IWAE: sum_i wbar_i grad log p(x, z_i), wbar the normalized weights
            z = mean + onp.exp(log_std) * eps                                       # (R, S, N, K)
            log_w = onp.asarray(model.log_joint(params, x, z)) - onp.asarray(
                log_prob({"mean": mean, "log_std": log_std}, z))                     # (R, S, N)
            w_bar = onp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
            per_rep = []
            for r in range(reps):
                vjp, _ = autograd.make_vjp(lambda p: model.log_joint(p, x, z[r]))(params)
                per_rep.append(vjp(w_bar[r]))
            g_params = per_rep[0] if n_reps is None else tree_map(lambda *leaves: onp.stack(leaves), *per_rep)
        if n_reps is None:
            g_q = {key: value[0] for key, value in g_q.items()}
        return g_params, g_q

    __call__.__doc__ = _GaussianEstimator.__call__.__doc__

    def _elbo_grad_q(self, model, params, x, mean, log_std, eps, analytic):
        n_samples = eps.shape[1]

        def objective(tiled):
            z = _draw(tiled, eps)                                   # (R, S, N, K)
            if analytic:
                return np.sum(model.log_likelihood(params, x, z)) / n_samples
            q = _per_rep(tiled)
            if self.stick_the_landing:
                q = {key: getval(value) for key, value in q.items()}
            return self._reduce(model.log_joint(params, x, z) - log_prob(q, z))

        return autograd.grad(objective)(_tile_q(mean, log_std, eps.shape[0]))


class GaussianScoreFunction(_GaussianEstimator):
    """The score-function (REINFORCE) estimator for Gaussian latents, with optional baselines.

    Options
    -------
    baseline : {None, "rloo", "mean"}, default None
        As for the Bernoulli ``score_function``: None is plain REINFORCE; "rloo" subtracts the
        mean of the other S - 1 learning signals (needs ``n_samples >= 2``; unbiased); "mean"
        subtracts the mean of all S (biased by the factor (S - 1)/S).
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only. "sampled": learning signal log p(x, z) - log q(z|x). "analytic":
        learning signal log p(x|z), the KL to the prior differentiated in closed form.

    Notes
    -----
    With z_s ~ q iid and the score of the Gaussian,
    d/dmu log q(z) = (z - mu) / sigma^2 = eps / sigma and d/dlog sigma log q(z) = eps^2 - 1,

    g = (1/S) sum_s (f(z_s) - b_s) (eps_s / sigma, eps_s^2 - 1),

    computed as the gradient of the surrogate (1/S) sum_s stop_grad(f(z_s) - b_s) log q(z_s)
    with z_s held fixed. Unbiased for baseline None or "rloo" (E[score] = 0 and b_s does not
    depend on z_s); f is never differentiated. At the ELBO level f(z) = log p(x, z) - log q(z|x)
    with q's parameters constant inside f (the explicit derivative of -log q has expectation
    zero), and the model gradient is (1/S) sum_s grad_theta log p(x|z_s).

    Cost: one decoder evaluation per sample.

    References
    ----------
    Williams (1992), Machine Learning 8; for variational inference: Paisley, Blei & Jordan
    (2012), ICML, and Ranganath, Gerrish & Blei (2014), "Black box variational inference",
    AISTATS. Leave-one-out baseline: Kool, van Hoof & Welling (2019).
    """

    name = "gaussian_score_function"
    reference = "Williams (1992); Ranganath, Gerrish & Blei (2014)"
    options = {"baseline": None, "entropy": "sampled"}

    def _validate_options(self):
        super()._validate_options()
        if self.baseline not in (None, "rloo", "mean"):
            raise ValueError(f"baseline: expected None, 'rloo' or 'mean', got {self.baseline!r}")
        self.min_samples = 2 if self.baseline == "rloo" else 1
        self.unbiased = self.baseline != "mean"

    def _min_samples_message(self, n_samples):
        return (f"n_samples: baseline='rloo' leaves one sample out and needs n_samples >= 2, got "
                f"{n_samples}; use n_samples >= 2 or baseline=None")

    def _score_grad(self, values, z, mean, log_std):
        signal = center(onp.asarray(getval(values)), self.baseline)    # (R, S, *batch)
        n_samples = z.shape[1]

        def surrogate(tiled):
            return np.sum(signal * log_prob(_per_rep(tiled), z)) / n_samples

        return autograd.grad(surrogate)(_tile_q(mean, log_std, z.shape[0]))

    def _grad_q(self, f, mean, log_std, eps):
        z = mean + onp.exp(log_std) * eps
        return self._score_grad(f(z), z, mean, log_std)

    def _elbo_grad_q(self, model, params, x, mean, log_std, eps, analytic):
        z = mean + onp.exp(log_std) * eps                           # (R, S, N, K)
        if analytic:
            values = model.log_likelihood(params, x, z)
        else:
            values = model.log_joint(params, x, z) - log_prob({"mean": mean, "log_std": log_std}, z)
        return self._score_grad(values, z, mean, log_std)
