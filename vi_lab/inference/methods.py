"""The learning algorithms, one gradient function each, and the registry :data:`METHODS`.

A method is a rule that, given the current model parameters theta, variational parameters
phi and a mini-batch, returns the direction to *ascend* for both. The training loop in
:mod:`vi_lab.inference.fit` is shared; methods differ only here.

Gradient scaling (the same for every method): directions for global parameters (theta, the
encoder weights) are gradients of the **batch mean** of the per-datapoint objective, so the
learning rate does not depend on the batch size; directions for the rows of a per-datapoint
:class:`~vi_lab.variational.MeanField` table are the gradient of **each datapoint's own**
objective with respect to its own row (only the rows of the batch are updated).

Latent types: every method works for the Bernoulli model (:class:`vi_lab.BernoulliLVM`, q's
parameters are logits psi of shape (B, K)); the methods whose ``latents`` include "gaussian" also
train the Gaussian-latent VAE (:class:`vi_lab.GaussianLVM`, q's parameters a dict
``{"mean", "log_std"}`` of shape (B, K) each, from a :class:`vi_lab.gaussian.GaussianMeanField` or
a :class:`vi_lab.variational.GaussianEncoder`). The same gradient functions serve both: sampling
z ~ q, log q(z|x) and the score d log q/d(q's parameters) dispatch on the type of q's parameters.
``exact_ml`` and ``exact_elbo`` use Gauss-Hermite quadrature for Gaussian latents (K <= 2).
"""
import autograd
import autograd.numpy as np
import numpy as onp
from .._special import logsumexp

from .. import exact, objectives, gaussian, quadrature
from .._tree import tree_add, tree_scale
from ..nn import sigmoid
from ..variational import sample as _bernoulli_sample, log_prob as _bernoulli_log_prob

__all__ = ["Method", "METHODS", "wake_gradient", "sleep_gradient", "rws_gradient"]


class Method:
    """A registered learning algorithm.

    Attributes
    ----------
    name : str
    summary : str
        One line: what is ascended.
    reference : str
        Where the algorithm comes from.
    families : tuple of str
        Allowed family kinds: "mean_field", "encoder"; empty for methods without a q.
    default_family : str or None
    uses_estimator : bool
        Whether the ``estimator`` argument of ``fit`` applies.
    default_estimator : str or None
    options : dict
        Accepted ``method_options`` and their defaults.
    gradient : callable
        ``gradient(ctx, params, q_params, idx, rng) -> (g_params, g_q, n_evals)``; g_params may be
        None when ``ctx.train_model`` is False (the model is held fixed).
    objective : callable
        ``objective(ctx, params, q_params, logits, rng) -> float``, the Monte Carlo (or exact)
        value of what the method ascends, averaged over the training set (``logits`` are q's
        parameters for those rows: logits, or the ``{"mean", "log_std"}`` dict for Gaussian q).
    latents : tuple of str
        Latent types the method trains: "bernoulli" and/or "gaussian".
    default_estimators : dict
        Latent type -> default estimator name.
    """

    def __init__(self, name, summary, reference, families, default_family, uses_estimator,
                 gradient, objective, options=None, default_estimator=None, latents=("bernoulli",),
                 gaussian_estimator=None):
        self.name, self.summary, self.reference = name, summary, reference
        self.families, self.default_family = tuple(families), default_family
        self.uses_estimator, self.default_estimator = uses_estimator, default_estimator
        self.gradient, self.objective = gradient, objective
        self.options = dict(options or {})
        self.latents = tuple(latents)
        self.default_estimators = {"bernoulli": default_estimator, "gaussian": gaussian_estimator}

    def __repr__(self):
        return f"<Method {self.name!r}: {self.summary}>"

    def check_options(self, method_options):
        """Defaults updated with ``method_options``; unknown keys raise ValueError."""
        given = dict(method_options or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            allowed = sorted(self.options) or "none"
            raise ValueError(f"method_options: unknown option(s) {unknown} for method {self.name!r}; "
                             f"accepted: {allowed}")
        out = dict(self.options)
        out.update(given)
        return out


# ---------------------------------------------------------------------------- shared pieces
def is_gaussian(family_or_model):
    """True for Gaussian-latent models and families (their ``latent`` attribute is "gaussian")."""
    return getattr(family_or_model, "latent", "bernoulli") == "gaussian"


def q_of(family, q_params, x, idx):
    """q's per-datapoint parameters for a batch, as plain arrays: logits (B, K) or {"mean", "log_std"}."""
    if is_gaussian(family):
        q = family.gaussian_params(q_params, x, idx)
        return {"mean": onp.asarray(q["mean"]), "log_std": onp.asarray(q["log_std"])}
    return onp.asarray(family.logits(q_params, x, idx))


def sample_q(q, n_samples, rng):
    """z ~ q(z|x), shape (S, B, K): Bernoulli for logits, Gaussian for a {"mean", "log_std"} dict."""
    if isinstance(q, dict):
        return onp.asarray(gaussian.sample(q, n_samples, rng))
    return _bernoulli_sample(q, n_samples, rng)


def log_q(q, z):
    """log q(z|x), shape (S, B), for either kind of q."""
    return gaussian.log_prob(q, z) if isinstance(q, dict) else _bernoulli_log_prob(q, z)


def score_q(q, z):
    """d log q(z|x) / d(q's parameters) at fixed z: z - sigmoid(psi), or the Gaussian score dict."""
    return gaussian.score(q, z) if isinstance(q, dict) else z - sigmoid(q)


def scale_q(g, c):
    """c * g for a q-gradient that is an array (logits) or a dict (Gaussian)."""
    return tree_scale(g, c) if isinstance(g, dict) else onp.asarray(g) * c


def logits_and_pullback(family, q_params, x, idx):
    """q's parameters for a batch and the map g_q -> gradient with respect to q_params.

    For an amortized encoder the map is the vector-Jacobian product of psi(x) = MLP_phi(x)
    (the chain rule from d objective / d psi to d objective / d phi). For a per-datapoint
    table the batch rows *are* the parameters, so the map wraps g_logits as the gradient of
    those rows (used with sparse row updates). For Gaussian families psi is the dict
    ``{"mean", "log_std"}`` and so is g_q.
    """
    if is_gaussian(family):
        if not family.amortized:
            return q_of(family, q_params, x, idx), lambda g: {"mean": g["mean"], "log_std": g["log_std"]}
        k = family.n_latent

        def flat(q):
            out = family.gaussian_params(q, x, idx)
            return np.concatenate([out["mean"], out["log_std"]], axis=-1)
        vjp, both = autograd.make_vjp(flat)(q_params)
        both = onp.asarray(both)
        q = {"mean": both[..., :k], "log_std": both[..., k:]}
        return q, lambda g: vjp(onp.concatenate([g["mean"], g["log_std"]], axis=-1))
    if not family.amortized:
        return onp.asarray(family.logits(q_params, x, idx)), lambda g: {"logits": g}
    vjp, logits = autograd.make_vjp(lambda q: family.logits(q, x, idx))(q_params)
    return onp.asarray(logits), vjp


def _evals_per_sample(estimator, model):
    cost = getattr(estimator, "cost", None)
    if callable(cost):
        return int(cost(model))
    return int(getattr(estimator, "evals_per_sample", 1))


def _mean_or_mc_elbo(ctx, params, logits, rng):
    """Monte Carlo ELBO (or IWAE, for estimators whose objective is the IWAE bound)."""
    iwae = getattr(ctx.estimator, "objective", "elbo") == "iwae"
    if isinstance(logits, dict):
        fn = gaussian.iwae_estimate if iwae else gaussian.elbo_estimate
        return float(onp.mean(fn(ctx.model, params, logits, ctx.x, ctx.n_samples, rng)))
    if iwae:
        return float(onp.mean(objectives.iwae(ctx.model, params, logits, ctx.x, ctx.n_samples, rng)))
    return float(onp.mean(objectives.elbo(ctx.model, params, logits, ctx.x, ctx.n_samples, rng)))


# ---------------------------------------------------------------------------- ELBO ascent
def _elbo_gradient(ctx, params, q_params, idx, rng):
    """Gradient of the ELBO from a plug-in estimator (per_datapoint, amortized, exact_elbo)."""
    xb = ctx.x[idx]
    n = xb.shape[0]
    logits, pullback = logits_and_pullback(ctx.family, q_params, xb, idx)
    if getattr(ctx, "train_model", True):
        g_params, g_logits = ctx.estimator(ctx.model, params, logits, xb, ctx.n_samples, rng)
        g_params = tree_scale(g_params, 1.0 / n)
    else:       # the model is held fixed: skip its reverse pass
        g_params, g_logits = ctx.estimator(ctx.model, params, logits, xb, ctx.n_samples, rng, params_grad=False)
    g_q = pullback(scale_q(g_logits, 1.0 / n)) if ctx.family.amortized else pullback(scale_q(g_logits, 1.0))
    return g_params, g_q, n * ctx.n_samples * _evals_per_sample(ctx.estimator, ctx.model)


def _n_states(model):
    """Decoder evaluations per datapoint of the exact methods: 2**K states, or the quadrature nodes."""
    if is_gaussian(model):
        return quadrature.DEFAULT_NODES[model.n_latent] ** model.n_latent
    return 2 ** model.n_latent


def _exact_elbo_gradient(ctx, params, q_params, idx, rng):
    xb = ctx.x[idx]
    logits, pullback = logits_and_pullback(ctx.family, q_params, xb, idx)
    if is_gaussian(ctx.model):
        g_params, g_logits = quadrature.gaussian_elbo_grad(ctx.model, params, logits, xb)
    else:
        g_params, g_logits = exact.elbo_grad(ctx.model, params, logits, xb)
    n = xb.shape[0]
    g_q = pullback(scale_q(g_logits, 1.0 / n)) if ctx.family.amortized else pullback(g_logits)
    return tree_scale(g_params, 1.0 / n), g_q, n * _n_states(ctx.model)


def _exact_elbo_objective(ctx, params, q_params, logits, rng):
    if is_gaussian(ctx.model):
        return float(onp.mean(quadrature.gaussian_elbo(ctx.model, params, logits, ctx.x)))
    return float(onp.mean(exact.elbo(ctx.model, params, logits, ctx.x)))


def _elbo_objective(ctx, params, q_params, logits, rng):
    return _mean_or_mc_elbo(ctx, params, logits, rng)


# ---------------------------------------------------------------------------- exact maximum likelihood
def _exact_ml_gradient(ctx, params, q_params, idx, rng):
    xb = ctx.x[idx]
    n = xb.shape[0]
    if is_gaussian(ctx.model):
        g = quadrature.gaussian_log_marginal_grad(ctx.model, params, xb)
    else:
        g = exact.log_marginal_grad(ctx.model, params, xb)
    return tree_scale(g, 1.0 / n), None, n * _n_states(ctx.model)


def _exact_ml_objective(ctx, params, q_params, logits, rng):
    if is_gaussian(ctx.model):
        return float(onp.mean(quadrature.gaussian_log_marginal(ctx.model, params, ctx.x)))
    return float(onp.mean(exact.log_marginal(ctx.model, params, ctx.x)))


# ---------------------------------------------------------------------------- wake-sleep
def wake_gradient(model, params, x, logits, n_samples, rng):
    """Wake phase for theta: ascend log p(x, z) at z ~ q(z|x).

    Parameters
    ----------
    model : BernoulliLVM or GaussianLVM
    params : dict
    x : ndarray of shape (B, L), values in {0., 1.}
    logits : ndarray of shape (B, K), or dict
        psi(x) of the recognition model; for a GaussianLVM the dict ``{"mean", "log_std"}``
        of shape (B, K) each.
    n_samples : int
        S, draws of z per datapoint.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        Gradient of 1/(S B) sum_{s,n} log p(x_n, z_sn) with respect to ``params`` (prior logits
        included), the same structure as ``params``.

    Notes
    -----
    Since q does not depend on theta, this is also an unbiased estimate of the theta-gradient
    of the ELBO: the wake phase of wake-sleep and of the ELBO agree (Hinton et al., 1995).
    """
    z = sample_q(logits, n_samples, rng)
    vjp, log_joint = autograd.make_vjp(lambda p: model.log_joint(p, x, z))(params)
    return vjp(onp.full(onp.shape(log_joint), 1.0 / log_joint.size))


def sleep_gradient(model, params, family, q_params, n_sleep, rng):
    """Sleep phase for phi: ascend log q(z|x) on dreamed pairs (z, x) ~ p_theta.

    Parameters
    ----------
    model : BernoulliLVM or GaussianLVM
    params : dict
    family : Encoder or GaussianEncoder
    q_params : dict
    n_sleep : int
        Number of dreamed pairs.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        Gradient of 1/n_sleep sum_i log q_phi(z_i | x_i) with respect to ``q_params``.

    Notes
    -----
    In expectation this is -d/dphi E_{p(x)} KL(p(z|x) || q(z|x)): the *reverse* of the KL
    that the ELBO's phi-gradient descends, -d/dphi E KL(q(z|x) || p(z|x)), and averaged over
    the model's own p(x) rather than the data. So the sleep phase does not maximize the ELBO
    (Hinton, Dayan, Frey & Neal, 1995; the test suite shows the two directions differ). For
    a Bernoulli q, d log q(z|x)/d psi = z - sigmoid(psi); for a Gaussian q,
    d log q/d mu = (z - mu)/sigma^2 and d log q/d log sigma = ((z - mu)/sigma)^2 - 1.
    """
    z, x = model.sample(params, n_sleep, rng)
    logits, pullback = logits_and_pullback(family, q_params, x, None)
    return pullback(scale_q(score_q(logits, z), 1.0 / n_sleep))


def _sleep_n(ctx, n_batch):
    return int(ctx.options.get("n_sleep") or n_batch)


def _wake_sleep_gradient(ctx, params, q_params, idx, rng):
    xb = ctx.x[idx]
    logits = q_of(ctx.family, q_params, xb, idx)
    g_params = wake_gradient(ctx.model, params, xb, logits, ctx.n_samples, rng)
    n_sleep = _sleep_n(ctx, xb.shape[0])
    g_q = sleep_gradient(ctx.model, params, ctx.family, q_params, n_sleep, rng)
    return g_params, g_q, xb.shape[0] * ctx.n_samples + n_sleep


# ---------------------------------------------------------------------------- reweighted wake-sleep
def rws_gradient(model, params, x, logits, k, rng):
    """Importance-weighted wake updates of reweighted wake-sleep.

    Parameters
    ----------
    model : BernoulliLVM or GaussianLVM
    params : dict
    x : ndarray of shape (B, L), values in {0., 1.}
    logits : ndarray of shape (B, K), or dict
        psi(x), the proposal's logits; for a GaussianLVM the dict ``{"mean", "log_std"}``.
    k : int
        Importance samples per datapoint.
    rng : numpy.random.Generator

    Returns
    -------
    g_params : dict
        Wake-theta: sum_n sum_i wbar_ni d log p(x_n, z_ni)/d theta, summed over the batch.
    g_logits : ndarray of shape (B, K), or dict of two
        Wake-phi: sum_i wbar_ni d log q(z_ni|x_n)/d psi_n = sum_i wbar_ni z_ni - sigmoid(psi_n)
        (Bernoulli), or sum_i wbar_ni times the Gaussian score (see :func:`vi_lab.gaussian.score`).

    Notes
    -----
    z_ni ~ q(z|x_n), w_ni = p(x_n, z_ni) / q(z_ni|x_n), wbar_ni = w_ni / sum_j w_nj held constant
    (Bornschein & Bengio, 2015). Wake-theta is exactly the theta-gradient of the IWAE bound;
    wake-phi is a self-normalized estimate of -d/dphi KL(p(z|x) || q(z|x)), the same direction
    the sleep phase targets but at the data's x instead of dreamed ones. Both are biased for
    finite k and consistent as k -> infinity.
    """
    z = sample_q(logits, k, rng)                                         # (k, B, K)
    vjp, log_joint = autograd.make_vjp(lambda p: model.log_joint(p, x, z))(params)
    log_w = onp.asarray(log_joint) - onp.asarray(log_q(logits, z))       # (k, B)
    w_bar = onp.exp(log_w - logsumexp(log_w, axis=0))
    if isinstance(logits, dict):
        sc = gaussian.score(logits, z)
        return vjp(w_bar), {key: onp.einsum("ib,ibk->bk", w_bar, sc[key]) for key in ("mean", "log_std")}
    return vjp(w_bar), onp.einsum("ib,ibk->bk", w_bar, z) - sigmoid(logits)


def _rws_gradient(ctx, params, q_params, idx, rng):
    xb = ctx.x[idx]
    n = xb.shape[0]
    logits, pullback = logits_and_pullback(ctx.family, q_params, xb, idx)
    g_params, g_logits = rws_gradient(ctx.model, params, xb, logits, ctx.n_samples, rng)
    parts, evals = [], n * ctx.n_samples
    if ctx.options["wake_phi"]:
        parts.append(pullback(scale_q(g_logits, 1.0 / n)) if ctx.family.amortized else pullback(g_logits))
    if ctx.options["sleep_phi"]:
        n_sleep = _sleep_n(ctx, n)
        parts.append(sleep_gradient(ctx.model, params, ctx.family, q_params, n_sleep, rng))
        evals += n_sleep
    # both phi updates on: average them (each is a full-size step on its own)
    g_q = parts[0] if len(parts) == 1 else tree_scale(tree_add(parts[0], parts[1]), 0.5)
    return tree_scale(g_params, 1.0 / n), g_q, evals


def _iwae_objective(ctx, params, q_params, logits, rng):
    if isinstance(logits, dict):
        return float(onp.mean(gaussian.iwae_estimate(ctx.model, params, logits, ctx.x, ctx.n_samples, rng)))
    return float(onp.mean(objectives.iwae(ctx.model, params, logits, ctx.x, ctx.n_samples, rng)))


# ---------------------------------------------------------------------------- registry
#: name -> :class:`Method`: every algorithm ``vi_lab.inference.fit`` accepts.
METHODS = {
    "per_datapoint": Method(
        "per_datapoint", "ELBO ascent with a free row of q-logits per datapoint (MeanField)",
        "Jordan, Ghahramani, Jaakkola & Saul (1999); stochastic version: Hoffman et al. (2013)",
        ("mean_field",), "mean_field", True, _elbo_gradient, _elbo_objective,
        default_estimator="disarm", latents=("bernoulli", "gaussian"), gaussian_estimator="reparam"),
    "amortized": Method(
        "amortized", "ELBO ascent in theta and encoder weights jointly (the VAE recipe)",
        "Kingma & Welling (2014); Mnih & Gregor (2014) for discrete latents",
        ("encoder",), "encoder", True, _elbo_gradient, _elbo_objective,
        default_estimator="disarm", latents=("bernoulli", "gaussian"), gaussian_estimator="reparam"),
    "wake_sleep": Method(
        "wake_sleep", "wake: theta up log p(x, z), z ~ q; sleep: encoder up log q(z|x), (z, x) ~ p_theta",
        "Hinton, Dayan, Frey & Neal (1995)",
        ("encoder",), "encoder", False, _wake_sleep_gradient, _elbo_objective,
        options={"n_sleep": None}, latents=("bernoulli", "gaussian")),
    "reweighted_wake_sleep": Method(
        "reweighted_wake_sleep", "importance-weighted wake-theta, wake-phi (and optional sleep-phi), k = n_samples",
        "Bornschein & Bengio (2015)",
        ("encoder", "mean_field"), "encoder", False, _rws_gradient, _iwae_objective,
        options={"wake_phi": True, "sleep_phi": False, "n_sleep": None}, latents=("bernoulli", "gaussian")),
    "exact_ml": Method(
        "exact_ml", "ascent of the exact gradient of log p(x) by enumeration (no q)",
        "Fisher's identity; the maximum-likelihood ceiling",
        (), None, False, _exact_ml_gradient, _exact_ml_objective, latents=("bernoulli", "gaussian")),
    "exact_elbo": Method(
        "exact_elbo", "ascent of the exact ELBO gradient by enumeration (no estimator noise)",
        "the ELBO of Jordan et al. (1999), gradient by enumeration",
        ("encoder", "mean_field"), "encoder", False, _exact_elbo_gradient, _exact_elbo_objective,
        latents=("bernoulli", "gaussian")),
}
