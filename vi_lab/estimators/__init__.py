"""Gradient estimators for variational inference, under one interface.

Every estimator is built by name, ``est = get(name, **options)``, and offers two levels.

Generic level
    ``g = est.grad(f, logits, n_samples, rng)`` estimates d/dlogits E_{z ~ Bern(sigmoid(logits))}
    [sum f(z)] for ``logits`` of shape (*batch, K) and ``f`` mapping z of shape (S, *batch, K)
    to values of shape (S, *batch). Output position b of f may depend only on the latents
    z[:, b, :] of the same batch position (each position is a separate expectation, which is
    what makes per-datapoint learning signals valid). The relaxed estimators (concrete,
    straight_through, rebar, relax) call f on relaxed z in [0, 1] and differentiate it with
    autograd (relax, and rebar while tuning, twice); straight-through, gumbel_rao, reinmax, dcv
    and rodeo differentiate f at the 0/1 samples; the others call f on 0/1 values only and
    never differentiate it.
    VIMCO's generic level targets the multi-sample objective E[log (1/S) sum_s exp f(z_s)]
    instead (its attribute ``objective`` is "iwae").

ELBO level
    ``g_params, g_logits = est(model, params, q_logits, x, n_samples, rng)`` estimates the
    gradient of sum_n ELBO_n with respect to the model parameters (a dict like ``params``)
    and the mean-field logits q_logits (N, K): the structure of
    :func:`vi_lab.exact.elbo_grad`. VIMCO's call estimates the gradient of the IWAE bound with
    k = n_samples instead. Inside the learning signal log p(x, z) - log q(z|x) the logits of q
    are constants: the explicit derivative of -log q(z|x) has expectation zero.

Samples and cost
    ``n_samples`` counts independent draws of the estimator's randomness. One draw costs
    ``est.evals_per_sample`` decoder (or f) evaluations: 1 for REINFORCE, NVIL, VIMCO,
    concrete, straight-through, ARMS, Gumbel-Rao and ReinMax (DCV and RODEO add one reverse
    pass for grad f), 2 for ARM and DisARM (an antithetic pair), 3 for REBAR and RELAX. Where
    it depends on the model it is None and ``est.cost(model)`` gives it: K + 1 per draw for
    ``leg`` (the draw and its K one-bit neighbours), and 2**K for ``exact`` whatever
    n_samples is. Compare estimators at equal cost with n_samples = budget // est.cost(model).

Many independent estimates at once: ``n_reps``
    Both levels accept ``n_reps=R`` and then return R independent estimates stacked on a new
    leading axis: ``grad`` returns (R, *batch, K); the ELBO level returns g_logits of shape
    (R, N, K) and g_params with leaves of shape (R, *shape). Estimate r uses its own
    ``n_samples`` draws. The R * n_samples draws are made in one vectorized pass (the
    replicate and sample axes are folded together when f is called), and the R logits
    gradients come from one reverse pass with respect to R stacked copies of the logits (the
    gradient with respect to copy r is estimate r). One exception: the model parameters are
    shared by all replicates and autograd returns the gradient of one scalar per reverse pass,
    so g_params takes one reverse pass per replicate (a loop over replicates, each one
    vectorized over samples and datapoints). Pass ``params_grad=False`` (g_params is then
    None) to keep the whole call to one pass when only the logits gradient is needed, as in
    variance experiments. Stateful estimators (nvil, relax, dcv, rodeo, and rebar while it
    tunes) use the same state for all R replicates and update it once per call; set
    ``est.learn = False`` to freeze them.

Registered names
    exact, score_function, nvil, concrete, straight_through, arm, disarm, rebar, vimco, relax,
    arms, leg, dcv, rodeo, gumbel_rao, reinmax (Bernoulli latents) and, once :mod:`vi_lab.estimators.gaussian` is importable, reparam
    and gaussian_score_function (Gaussian latents, with q_params in place of q_logits; see
    that module). ``names()`` lists those importable now; ``describe()`` tabulates them.

Examples
--------
>>> import numpy as np
>>> from vi_lab import estimators
>>> est = estimators.get("score_function", baseline="rloo")
>>> f = lambda z: np.sum((z - 0.45) ** 2, axis=-1)
>>> est.grad(f, np.zeros(1), n_samples=4, rng=0).shape
(1,)
>>> est.grad(f, np.zeros(1), n_samples=4, rng=0, n_reps=100).shape
(100, 1)
"""
import difflib
import importlib

__all__ = ["names", "get", "describe"]

#: name -> (module, class name). Modules are imported on first use, so a
#: family whose module is missing (or not yet written) does not break the others.
_REGISTRY = {
    "exact": ("vi_lab.estimators.exact", "Exact"),
    "score_function": ("vi_lab.estimators.score_function", "ScoreFunction"),
    "nvil": ("vi_lab.estimators.nvil", "NVIL"),
    "concrete": ("vi_lab.estimators.relaxed", "Concrete"),
    "straight_through": ("vi_lab.estimators.relaxed", "StraightThrough"),
    "arm": ("vi_lab.estimators.arm", "ARM"),
    "disarm": ("vi_lab.estimators.arm", "DisARM"),
    "rebar": ("vi_lab.estimators.rebar", "REBAR"),
    "vimco": ("vi_lab.estimators.vimco", "VIMCO"),
    "relax": ("vi_lab.estimators.relax", "RELAX"),
    "arms": ("vi_lab.estimators.arms", "ARMS"),
    "leg": ("vi_lab.estimators.leg", "LocalExpectation"),
    "dcv": ("vi_lab.estimators.dcv", "DoubleCV"),
    "rodeo": ("vi_lab.estimators.rodeo", "RODEO"),
    "gumbel_rao": ("vi_lab.estimators.gumbel_rao", "GumbelRao"),
    "reinmax": ("vi_lab.estimators.reinmax", "ReinMax"),
    "reparam": ("vi_lab.estimators.gaussian", "Reparam"),
    "gaussian_score_function": ("vi_lab.estimators.gaussian", "GaussianScoreFunction"),
}


def _load(name):
    """The estimator class registered as ``name``, or None if its module is not importable."""
    module_name, class_name = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:      # the module exists but one of its imports is broken
            raise
        return None
    return getattr(module, class_name, None)


def names(latent=None):
    """Names of every registered estimator whose implementation is importable.

    Parameters
    ----------
    latent : {None, "bernoulli", "gaussian"}
        If given, only the estimators for that kind of latent variable.

    Returns
    -------
    list of str
        In registry order (exact first).
    """
    if latent not in (None, "bernoulli", "gaussian"):
        raise ValueError(f"latent: expected None, 'bernoulli' or 'gaussian', got {latent!r}")
    out = []
    for name in _REGISTRY:
        cls = _load(name)
        if cls is not None and (latent is None or cls.latent == latent):
            out.append(name)
    return out


def get(name, **options):
    """Build the estimator registered as ``name``.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    **options
        Estimator options, e.g. ``baseline="rloo"`` for score_function or ``tau=0.5`` for
        concrete; each estimator's docstring lists its options.

    Returns
    -------
    Estimator
        Callable at the ELBO level, with ``.grad`` for the generic level.

    Raises
    ------
    ValueError
        Unknown name (the message lists the available ones), unknown option or bad value.
    """
    if not isinstance(name, str) or name not in _REGISTRY or _load(name) is None:
        available = names()
        hint = difflib.get_close_matches(str(name), available, n=1)
        did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
        if isinstance(name, str) and name in _REGISTRY:
            raise ValueError(
                f"name: estimator {name!r} is registered but its module {_REGISTRY[name][0]} is not "
                f"available; use one of {', '.join(available)}"
            )
        raise ValueError(f"name: unknown estimator {name!r}; {did_you_mean}available: {', '.join(available)}")
    return _load(name)(**options)


def describe(latent=None):
    """One row per estimator: name, unbiased, min_samples, evals per draw, reference.

    Parameters
    ----------
    latent : {None, "bernoulli", "gaussian"}

    Returns
    -------
    list of dict
        Keys ``name``, ``unbiased``, ``min_samples``, ``evals_per_sample`` (None for exact:
        2**K), ``objective``, ``reference``, for the default options.
    """
    rows = []
    for name in names(latent):
        est = get(name)
        rows.append({"name": name, "unbiased": est.unbiased, "min_samples": est.min_samples,
                     "evals_per_sample": est.evals_per_sample, "objective": est.objective,
                     "reference": est.reference})
    return rows
