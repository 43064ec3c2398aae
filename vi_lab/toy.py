"""The one-latent toy problem of the REBAR, RELAX and ARM papers: minimize E_{b ~ Bern(sigmoid(phi))}[(b - t)^2].

With p = sigmoid(phi), the objective is p (1 - t)^2 + (1 - p) t^2 and its exact gradient is
p (1 - p) (1 - 2 t): for t = 0.499 the signal is 0.002 p (1 - p), tiny next to the noise of
every single-sample estimator, so the sign of the estimate is often wrong. The functions here
measure every registered Bernoulli estimator on it through the generic ``est.grad``:

- :func:`objective`, :func:`exact_grad`, :func:`exact_iwae_grad`: the ground truth;
- :func:`exact_moments`: the exact mean and variance of REINFORCE (plain, leave-one-out,
  mean baseline), ARM and DisARM, by enumerating their randomness (2**S outcomes for the
  score function, a piecewise-constant integral over u for ARM and DisARM);
- :func:`estimator_moments`: empirical mean and variance of every estimator from many
  independent estimates (the ``n_reps`` vectorization);
- :func:`optimize`, :func:`optimize_all`: short SGD runs on phi.
"""
import itertools

import numpy as onp
from scipy.special import expit, logsumexp

from . import estimators as _estimators
from ._validation import check_positive_int, check_rng

__all__ = ["objective", "exact_grad", "exact_iwae_grad", "loss", "exact_moments", "default_variants",
           "estimator_moments", "optimize", "optimize_all"]


def _check_phi_t(phi, t):
    phi, t = float(phi), float(t)
    if not onp.isfinite(phi):
        raise ValueError(f"phi: expected a finite logit, got {phi}")
    if not onp.isfinite(t):
        raise ValueError(f"t: expected a finite target, got {t}")
    return phi, t


def objective(phi, t=0.45):
    """E_{b ~ Bern(sigmoid(phi))}[(b - t)^2] = p (1 - t)^2 + (1 - p) t^2.

    Parameters
    ----------
    phi : float
        The logit of p = P(b = 1).
    t : float, default 0.45

    Returns
    -------
    float
    """
    phi, t = _check_phi_t(phi, t)
    p = expit(phi)
    return float(p * (1 - t) ** 2 + (1 - p) * t ** 2)


def exact_grad(phi, t=0.45):
    """d/dphi E[(b - t)^2] = p (1 - p) (1 - 2 t), p = sigmoid(phi).

    Parameters
    ----------
    phi : float
    t : float, default 0.45

    Returns
    -------
    float
    """
    phi, t = _check_phi_t(phi, t)
    return float(expit(phi) * expit(-phi) * (1 - 2 * t))


def loss(t=0.45):
    """The toy f for ``est.grad``: z of shape (S, ..., 1) -> (z - t)^2 of shape (S, ...).

    Works on relaxed z in [0, 1] too (it is autograd-differentiable).
    """
    _check_phi_t(0.0, t)

    def f(z):
        return ((z - t) ** 2).sum(axis=-1)
    return f


def exact_iwae_grad(phi, t=0.45, k=2):
    """d/dphi E[log (1/k) sum_s exp(f(b_s))], f(b) = (b - t)^2: VIMCO's generic target.

    Parameters
    ----------
    phi : float
    t : float
    k : int >= 1
        Number of samples in the bound; the 2**k outcomes are enumerated.

    Returns
    -------
    float

    Notes
    -----
    Sum over b in {0, 1}^k of d/dphi prod_s q(b_s) times the bound, with
    d/dphi q(b) = q(b) (b - p).
    """
    phi, t = _check_phi_t(phi, t)
    k = check_positive_int(k, "k")
    p = expit(phi)
    b = onp.array(list(itertools.product([0.0, 1.0], repeat=k)))        # (2**k, k)
    prob = onp.prod(onp.where(b == 1, p, 1 - p), axis=1)
    bound = logsumexp((b - t) ** 2, axis=1) - onp.log(k)
    return float(onp.sum(prob * bound * (b - p).sum(axis=1)))


def exact_moments(name, phi=0.0, t=0.45, n_samples=1, **options):
    """Exact mean and variance of an estimator at the toy problem, by enumerating its randomness.

    Parameters
    ----------
    name : {"exact", "score_function", "arm", "disarm"}
    phi, t : float
    n_samples : int
        S draws per estimate.
    **options
        ``baseline`` for score_function (None, "rloo" or "mean").

    Returns
    -------
    mean : float
    variance : float

    Notes
    -----
    Score function: the S samples b in {0, 1}^S take 2**S values, each with probability
    prod_s p^{b_s} (1 - p)^{1 - b_s}; the estimate (1/S) sum_s (f(b_s) - c_s) (b_s - p), with
    c_s = 0, the mean of the other S - 1 values ("rloo") or of all S ("mean"), is written out
    here independently of the estimator's code, so a wrongly coupled sample shows up as a
    variance mismatch. ARM and DisARM: one draw is a function of u ~ U(0, 1) that is
    piecewise constant (DisARM) or piecewise linear (ARM) between the breakpoints p and 1 - p,
    so its first two moments are exact integrals; S draws divide the variance by S.
    """
    phi, t = _check_phi_t(phi, t)
    n_samples = check_positive_int(n_samples, "n_samples")
    est = _estimators.get(name, **options)              # validates name and options
    est._check_n_samples(n_samples)
    p = expit(phi)
    f = lambda b: (b - t) ** 2                          # noqa: E731
    if name == "exact":
        return exact_grad(phi, t), 0.0
    if name == "score_function":
        if n_samples > 16:
            raise ValueError(f"n_samples: enumeration of 2**S outcomes supports S <= 16, got {n_samples}")
        b = onp.array(list(itertools.product([0.0, 1.0], repeat=n_samples)))
        prob = onp.prod(onp.where(b == 1, p, 1 - p), axis=1)
        values = f(b)
        if est.baseline == "rloo":
            centred = values - (values.sum(axis=1, keepdims=True) - values) / (n_samples - 1)
        elif est.baseline == "mean":
            centred = values - values.mean(axis=1, keepdims=True)
        else:
            centred = values
        g = (centred * (b - p)).mean(axis=1)
        mean = float(onp.sum(prob * g))
        return mean, float(onp.sum(prob * (g - mean) ** 2))
    if name in ("arm", "disarm"):
        edges = onp.unique([0.0, p, 1 - p, 1.0])
        m1 = m2 = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            mid = 0.5 * (lo + hi)
            b_up, b_down = float(mid > 1 - p), float(mid < p)
            diff = f(b_up) - f(b_down)
            if name == "arm":          # g(u) = diff (u - 1/2): integrate u - 1/2 and its square
                m1 += diff * ((hi - 0.5) ** 2 - (lo - 0.5) ** 2) / 2
                m2 += diff ** 2 * ((hi - 0.5) ** 3 - (lo - 0.5) ** 3) / 3
            else:                      # constant on the piece
                value = 0.5 * (f(b_down) - f(b_up)) * (1 - 2 * b_up) * (b_down != b_up) * expit(abs(phi))
                m1 += value * (hi - lo)
                m2 += value ** 2 * (hi - lo)
        return float(m1), float((m2 - m1 ** 2) / n_samples)
    raise ValueError(f"name: exact moments are derived for 'exact', 'score_function', 'arm' and "
                     f"'disarm', got {name!r}; use estimator_moments for an empirical estimate")


def default_variants():
    """Every registered Bernoulli estimator with default options, plus REINFORCE with rloo.

    Returns
    -------
    dict
        label -> (name, options dict), in registry order.
    """
    out = {}
    for name in _estimators.names(latent="bernoulli"):
        out[name] = (name, {})
        if name == "score_function":
            out["score_function(rloo)"] = ("score_function", {"baseline": "rloo"})
    return out


def _variants(variants):
    if variants is None:
        return default_variants()
    if isinstance(variants, dict):
        return variants
    return {name: (name, {}) for name in variants}


def estimator_moments(phi=0.0, t=0.45, n_samples=1, n_reps=10000, variants=None, rng=0, warmup=100):
    """Empirical mean and variance of each estimator at the toy problem.

    Parameters
    ----------
    phi, t : float
    n_samples : int
        S per estimate; an estimator needing more (rloo, vimco: 2) uses its ``min_samples``,
        and the row says so.
    n_reps : int
        R independent estimates per estimator, drawn in one vectorized call.
    variants : None, list of names, or dict label -> (name, options)
        Default: :func:`default_variants`.
    rng : int or numpy.random.Generator
    warmup : int, default 100
        A stateful estimator (nvil) first learns its baseline from this many single estimates
        at (phi, t), then is frozen for the R measured ones (which would otherwise all share the
        initial state).

    Returns
    -------
    list of dict
        One row per estimator: ``label``, ``name``, ``n_samples``, ``evals`` (f evaluations per
        estimate), ``target`` (exact gradient of the estimator's objective), ``mean``,
        ``std_error`` (of the mean), ``bias`` (mean - target), ``variance``, and
        ``exact_variance`` (from :func:`exact_moments`, NaN where not derived).
    """
    phi, t = _check_phi_t(phi, t)
    n_samples = check_positive_int(n_samples, "n_samples")
    n_reps = check_positive_int(n_reps, "n_reps", minimum=2)
    rng = check_rng(rng)
    f = loss(t)
    rows = []
    for label, (name, options) in _variants(variants).items():
        est = _estimators.get(name, **options)
        if est.latent != "bernoulli":
            continue
        s = max(n_samples, est.min_samples)
        if est.stateful:
            for _ in range(warmup):
                est.grad(f, onp.array([phi]), s, rng)
            est.learn = False
        g = est.grad(f, onp.array([phi]), s, rng, n_reps=n_reps)[:, 0]
        target = exact_iwae_grad(phi, t, s) if est.objective == "iwae" else exact_grad(phi, t)
        try:
            exact_var = exact_moments(name, phi, t, s, **options)[1]
        except ValueError:
            exact_var = float("nan")
        evals = 2 if name == "exact" else est.evals_per_sample * s
        rows.append({"label": label, "name": name, "n_samples": s, "evals": evals, "target": target,
                     "mean": float(g.mean()), "std_error": float(g.std(ddof=1) / onp.sqrt(n_reps)),
                     "bias": float(g.mean() - target), "variance": float(g.var(ddof=1)),
                     "exact_variance": exact_var})
    return rows


def optimize(name="score_function", phi0=0.0, t=0.45, steps=200, learning_rate=0.5, n_samples=1,
             rng=0, **options):
    """Minimize E[(b - t)^2] over phi by SGD with one estimator's gradients.

    Parameters
    ----------
    name : str
        A registered Bernoulli estimator; ``options`` are passed to ``get``.
    phi0 : float
    t : float
    steps : int
    learning_rate : float > 0
    n_samples : int
        S per step (raised to the estimator's ``min_samples`` if smaller).
    rng : int or numpy.random.Generator

    Returns
    -------
    dict of 1-D arrays of length steps + 1
        ``step``, ``phi``, ``objective`` (exact, at each phi) and ``grad`` (the estimate used at
        that step; NaN for the last entry).

    Notes
    -----
    phi_{i+1} = phi_i - learning_rate * g_i. The optimum for t < 1/2 is phi -> -inf
    (p -> 0); a biased or too noisy estimator drifts the wrong way when t is close to 1/2.
    """
    phi0, t = _check_phi_t(phi0, t)
    steps = check_positive_int(steps, "steps")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive step size, got {learning_rate}")
    rng = check_rng(rng)
    est = _estimators.get(name, **options)
    n_samples = max(check_positive_int(n_samples, "n_samples"), est.min_samples)
    f = loss(t)
    phi = onp.empty(steps + 1)
    grads = onp.full(steps + 1, onp.nan)
    phi[0] = phi0
    for i in range(steps):
        grads[i] = est.grad(f, phi[i:i + 1], n_samples, rng)[0]
        phi[i + 1] = phi[i] - learning_rate * grads[i]
    return {"step": onp.arange(steps + 1), "phi": phi,
            "objective": onp.array([objective(v, t) for v in phi]), "grad": grads}


def optimize_all(phi0=0.0, t=0.45, steps=200, learning_rate=0.5, n_samples=1, variants=None, rng=0):
    """:func:`optimize` for every estimator; returns label -> history dict.

    Parameters are those of :func:`optimize`; ``variants`` as in :func:`estimator_moments`.
    """
    rng = check_rng(rng)
    return {label: optimize(name, phi0, t, steps, learning_rate, n_samples, rng, **options)
            for label, (name, options) in _variants(variants).items()
            if _estimators.get(name, **options).latent == "bernoulli"}
