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
           "estimator_moments", "optimize", "optimize_all", "PRESETS", "EXACT_NAMES"]


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
    name : one of :data:`EXACT_NAMES`
        "exact", "score_function", "arm", "disarm", "leg", "reinmax", "straight_through",
        "gumbel_rao", "arms", "dcv" (at its initial alpha), "rebar" (at the given
        tau and eta, untuned).
    phi, t : float
    n_samples : int
        S draws per estimate.
    **options
        ``baseline`` for score_function (None, "rloo" or "mean"); ``tau``, ``eta``, ``alpha``,
        ``n_mc`` for the others.

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
    ARMS: the law of the number of ones among the S copula samples, by inclusion-exclusion
    over the Dirichlet's joint survival function (S = 2 is DisARM's pair). ReinMax: two
    outcomes of b. Straight-through and Gumbel-Rao: one-dimensional Gauss-Legendre integrals
    over u on each side of the jump of b (Gumbel-Rao's M conditional draws divide the
    within-b variance by M). REBAR: a two-dimensional Gauss-Legendre rule over (u, v), 200 x 200
    nodes on each side of the jump, the reparametrization terms differentiated with autograd.
    DCV: the 2**S outcomes, written out independently of the estimator's code.
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
    if name in _EXACT_EXTRA:
        return _EXACT_EXTRA[name](est, phi, t, n_samples)
    raise ValueError(f"name: exact moments are derived for {', '.join(EXACT_NAMES)}, got {name!r}; "
                     f"use estimator_moments for an empirical estimate")


# ----------------------------------------------------------------------------- newer estimators
def _legendre(lo, hi, n):
    """Gauss-Legendre nodes and weights on [lo, hi] (weights sum to hi - lo)."""
    x, w = onp.polynomial.legendre.leggauss(n)
    return lo + (hi - lo) * (x + 1) / 2, w * (hi - lo) / 2


def _segments(p, n):
    """Quadrature over u in (0, 1) split where b = 1[u > 1 - p] jumps: [(b, nodes, weights), ...]."""
    return [(0.0,) + _legendre(0.0, 1.0 - p, n), (1.0,) + _legendre(1.0 - p, 1.0, n)]


def _moments_to_var(m1, m2, n_samples):
    return float(m1), float((m2 - m1 ** 2) / n_samples)


def _exact_leg(est, phi, t, n_samples):
    return exact_grad(phi, t), 0.0          # K = 1: the sum over the single coordinate is the expectation


def _exact_reinmax(est, phi, t, n_samples):
    from .estimators.reinmax import reinmax_jacobian
    p = expit(phi)
    m1 = m2 = 0.0
    for b, prob in ((0.0, 1 - p), (1.0, p)):
        g = 2 * (b - t) * float(reinmax_jacobian(onp.array(phi), onp.array(b), est.tau))
        m1, m2 = m1 + prob * g, m2 + prob * g ** 2
    return _moments_to_var(m1, m2, n_samples)


def _slope_moments(phi, tau, n=400):
    """Per value of b: P(b), E[s | b], E[s^2 | b] for s = d/dphi sigmoid((phi + L) / tau), L logistic."""
    out = []
    for b, u, w in _segments(expit(phi), n):
        sig = expit((phi + onp.log(u) - onp.log1p(-u)) / tau)
        slope = sig * (1 - sig) / tau
        prob = w.sum()
        out.append((b, prob, (w * slope).sum() / prob, (w * slope ** 2).sum() / prob))
    return out


def _exact_straight_through(est, phi, t, n_samples, n_mc=1):
    """Straight-through is Gumbel-Rao with M = 1; M conditional draws divide the within-b variance by M."""
    m1 = between = within = 0.0
    for b, prob, mean_s, mean_s2 in _slope_moments(phi, est.tau):
        d = 2 * (b - t)                                   # f'(b) for f(z) = (z - t)^2
        m1 += prob * d * mean_s
        between += prob * (d * mean_s) ** 2
        within += prob * d ** 2 * (mean_s2 - mean_s ** 2)
    return float(m1), float((between - m1 ** 2 + within / n_mc) / n_samples)


def _exact_gumbel_rao(est, phi, t, n_samples):
    return _exact_straight_through(est, phi, t, n_samples, n_mc=est.n_mc)


def _exact_arms(est, phi, t, n_samples):
    """Exact ARMS moments for any S from the law of the number of ones among the S copula samples.

    With d ~ Dirichlet(1, ..., 1), P(d_s > a for all s in A) = (1 - |A| a)_+^(S-1), and
    u_s < x iff d_s > 1 - x^(1/(S-1)); so P(a given set of k samples all fall below x) is
    G(k) = (1 - k (1 - x^(1/(S-1))))_+^(S-1), and inclusion-exclusion gives the probability of each
    pattern. The samples are exchangeable, so the estimate depends only on the count m of ones.
    """
    from math import comb

    from .estimators.arms import arms_debias
    s_, p = n_samples, expit(phi)
    x = p if phi < 0 else 1 - p                      # b = 1[u < p], or b = 0 iff u < 1 - p
    c = 1 - x ** (1 / (s_ - 1))
    big_g = [max(1 - k * c, 0.0) ** (s_ - 1) for k in range(s_ + 1)]
    # probability that exactly the samples of one given set of size k fall below x
    exact_set = [sum((-1) ** j * comb(s_ - k, j) * big_g[k + j] for j in range(s_ - k + 1)) for k in range(s_ + 1)]
    scale = s_ / (s_ - 1) * float(arms_debias(onp.array(phi), s_))
    f1, f0 = (1 - t) ** 2, t ** 2
    m1 = m2 = 0.0
    for k in range(s_ + 1):                          # k samples below x
        ones = k if phi < 0 else s_ - k
        prob = comb(s_, k) * exact_set[k]
        mean_f = (ones * f1 + (s_ - ones) * f0) / s_
        g = scale / s_ * (ones * (f1 - mean_f) * (1 - p) + (s_ - ones) * (f0 - mean_f) * (-p))
        m1, m2 = m1 + prob * g, m2 + prob * g ** 2
    return float(m1), float(m2 - m1 ** 2)


def _exact_dcv(est, phi, t, n_samples):
    """Enumerate b in {0, 1}^S at the estimator's initial (fixed) alpha."""
    if n_samples > 16:
        raise ValueError(f"n_samples: enumeration of 2**S outcomes supports S <= 16, got {n_samples}")
    p, alpha = expit(phi), est.alpha
    b = onp.array(list(itertools.product([0.0, 1.0], repeat=n_samples)))
    prob = onp.prod(onp.where(b == 1, p, 1 - p), axis=1)
    fb, grad = (b - t) ** 2, 2 * (b - t)
    g = onp.zeros(len(b))
    for s in range(n_samples):
        others = [j for j in range(n_samples) if j != s]
        slope = lambda j: grad[:, [i for i in range(n_samples) if i != j]].mean(axis=1)   # noqa: E731
        own = fb[:, s] + alpha * slope(s) * (b[:, s] - p)
        base = onp.mean([fb[:, j] + alpha * slope(j) * (b[:, j] - p) for j in others], axis=0)
        g += (own - base) * (b[:, s] - p) / n_samples
    g -= alpha * grad.mean(axis=1) * p * (1 - p)
    mean = float(onp.sum(prob * g))
    return mean, float(onp.sum(prob * (g - mean) ** 2))


def _exact_rebar(est, phi, t, n_samples, n=200):
    """Integrate REBAR's single-draw estimate over u (split where b jumps) and v, by Gauss-Legendre."""
    import autograd
    import autograd.numpy as anp
    from .estimators.rebar import conditional_logistic
    tau, eta, p = est.tau, est.eta, expit(phi)
    f = lambda z: (z - t) ** 2                          # noqa: E731
    v, wv = _legendre(0.0, 1.0, n)
    m1 = m2 = 0.0
    for b, u, wu in _segments(p, n):
        uu, vv = onp.meshgrid(u, v, indexing="ij")
        noise = onp.log(uu) - onp.log1p(-uu)
        bb = onp.full(uu.shape, b)

        def relaxed(psi):
            return eta * (f(1 / (1 + anp.exp(-(psi + noise) / tau)))
                          - f(1 / (1 + anp.exp(-conditional_logistic(psi, bb, vv) / tau))))

        psi = onp.full(uu.shape, phi)
        z_cond = conditional_logistic(psi, bb, vv)
        signal = f(b) - eta * f(expit(z_cond / tau))
        g = signal * (b - p) + autograd.elementwise_grad(relaxed)(psi)
        weight = wu[:, None] * wv[None, :]
        m1, m2 = m1 + onp.sum(weight * g), m2 + onp.sum(weight * g ** 2)
    return _moments_to_var(m1, m2, n_samples)


_EXACT_EXTRA = {"leg": _exact_leg, "reinmax": _exact_reinmax, "straight_through": _exact_straight_through,
                "gumbel_rao": _exact_gumbel_rao, "arms": _exact_arms, "dcv": _exact_dcv, "rebar": _exact_rebar}
#: Estimators with exact toy moments in :func:`exact_moments`.
EXACT_NAMES = ("exact", "score_function", "arm", "disarm") + tuple(_EXACT_EXTRA)


class _OneLatent:
    """Stands in for a model in ``est.cost``: the toy has K = 1."""
    n_latent = 1


_ONE_LATENT = _OneLatent()


def _learned_options(est, options):
    """Options under which the (warmed, frozen) estimator now computes: tuned REBAR, learned DCV alpha."""
    out = dict(options)
    if est.name == "rebar" and est.tune:
        eta, tau = est.tuned
        out.update(eta=eta, tau=tau, tune=False)
    elif est.name == "dcv" and est.state["control"] is not None:
        out.update(alpha=float(est.state["control"]["alpha"]), learn=False)
    return out


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
            exact_var = exact_moments(name, phi, t, s, **_learned_options(est, options))[1]
        except ValueError:
            exact_var = float("nan")
        cost = est.cost(_ONE_LATENT)
        evals = cost if name == "exact" else cost * s
        rows.append({"label": label, "name": name, "n_samples": s, "evals": evals, "target": target,
                     "mean": float(g.mean()), "std_error": float(g.std(ddof=1) / onp.sqrt(n_reps)),
                     "bias": float(g.mean() - target), "variance": float(g.var(ddof=1)),
                     "exact_variance": exact_var})
    return rows


#: Documented settings of the toy. "relax": the RELAX paper's (Grathwohl et al. 2018, Fig. 1):
#: t = 0.499 and Adam, here at step size 0.01 from theta = sigmoid(phi) = 1/2.
PRESETS = {
    "relax": {"t": 0.499, "phi0": 0.0, "optimizer": "adam", "learning_rate": 0.01},
    "default": {"t": 0.45, "phi0": 0.0, "optimizer": "sgd", "learning_rate": 0.5},
}


def _make_optimizer(optimizer, learning_rate):
    from . import optimizers as _optimizers
    if optimizer is None or optimizer == "sgd":
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0) and not callable(learning_rate):
            raise ValueError(f"learning_rate: expected a positive step size, got {learning_rate}")
        return None if optimizer is None else _optimizers.SGD(learning_rate, mass=0.0)
    if optimizer == "adam":
        return _optimizers.Adam(learning_rate)
    if isinstance(optimizer, str):
        raise ValueError(f"optimizer: expected 'sgd', 'adam' or a vi_lab.optimizers object (Adam(...), SGD(...)), "
                         f"got {optimizer!r}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(f"optimizer: expected a vi_lab.optimizers object with init/update, got {type(optimizer).__name__}")
    return optimizer


def _estimator(name, options):
    from .estimators.base import Estimator
    if not isinstance(name, Estimator):
        return _estimators.get(name, **options)
    if options:
        raise ValueError(f"options: an estimator object comes configured; got options {sorted(options)} as well "
                         f"(pass the name, e.g. {name.name!r}, to build one with options)")
    if name.latent != "bernoulli":
        raise ValueError(f"name: expected a Bernoulli estimator, got the {name.latent}-latent {name.name!r}")
    return name


def optimize(name="score_function", phi0=None, t=None, steps=200, learning_rate=None, n_samples=1,
             rng=0, optimizer=None, preset=None, estimator_options=None, **options):
    """Minimize E[(b - t)^2] over phi with one estimator's gradients.

    Parameters
    ----------
    name : str or Estimator
        A registered Bernoulli estimator; ``options`` are passed to ``get``. An estimator
        object (e.g. a stateful one whose control was trained beforehand) is used as it is,
        its state carried on, and takes no ``options``.
    phi0 : float, default 0.0
    t : float, default 0.45
    steps : int
    learning_rate : float > 0, default 0.5 (plain SGD) or the preset's
        Step size of plain SGD, or of the named optimizer.
    n_samples : int
        S per step (raised to the estimator's ``min_samples`` if smaller).
    rng : int or numpy.random.Generator
    optimizer : None, "sgd", "adam", or a :mod:`vi_lab.optimizers` object
        None: plain SGD, phi <- phi - learning_rate * g. "adam" / "sgd" build
        ``vi_lab.optimizers.Adam(learning_rate)`` / ``SGD(learning_rate, mass=0)``; an object
        (e.g. ``Adam(0.01, b1=0.5)``) is used as given. vi_lab's optimizers ascend by default,
        so they receive the gradient of -E[(b - t)^2]; one built with ``maximize=False`` gets g.
    preset : {None, "relax", "default"}
        Fill the unset ``t``, ``phi0``, ``optimizer`` and ``learning_rate`` from
        :data:`PRESETS`: "relax" is the RELAX paper's setting, t = 0.499 with Adam (step 0.01
        here), where the exact gradient 0.002 p (1 - p) is drowned in the noise of
        single-sample REINFORCE.
    estimator_options : dict, optional
        Options for ``get`` whose names clash with this function's (e.g. the control's
        ``learning_rate`` of relax); merged with ``**options``.

    Returns
    -------
    dict of 1-D arrays of length steps + 1
        ``step``, ``phi``, ``theta`` (sigmoid(phi)), ``objective`` (exact, at each phi) and
        ``grad`` (the estimate used at that step; NaN for the last entry).

    Notes
    -----
    The optimum for t < 1/2 is phi -> -inf (theta -> 0); a biased or too noisy estimator
    drifts the wrong way when t is close to 1/2. A stateful estimator (nvil, relax, tuned
    rebar, dcv, rodeo) keeps learning its baseline or control along the run.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
        chosen = PRESETS[preset]
        t = chosen["t"] if t is None else t
        phi0 = chosen["phi0"] if phi0 is None else phi0
        optimizer = chosen["optimizer"] if optimizer is None else optimizer
        learning_rate = chosen["learning_rate"] if learning_rate is None else learning_rate
    phi0 = 0.0 if phi0 is None else phi0
    t = 0.45 if t is None else t
    learning_rate = 0.5 if learning_rate is None else learning_rate
    phi0, t = _check_phi_t(phi0, t)
    steps = check_positive_int(steps, "steps")
    if not callable(learning_rate) and not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive step size, got {learning_rate}")
    opt = _make_optimizer(optimizer, learning_rate)
    rng = check_rng(rng)
    est = _estimator(name, {**(estimator_options or {}), **options})
    n_samples = max(check_positive_int(n_samples, "n_samples"), est.min_samples)
    f = loss(t)
    phi = onp.empty(steps + 1)
    grads = onp.full(steps + 1, onp.nan)
    phi[0] = phi0
    params = {"phi": onp.array([phi0])}
    state = opt.init(params) if opt is not None else None
    sign = float(getattr(opt, "sign", 1.0))
    for i in range(steps):
        grads[i] = est.grad(f, params["phi"], n_samples, rng)[0]
        if opt is None:
            params = {"phi": params["phi"] - learning_rate * grads[i]}
        else:                                  # ascending optimizers get the gradient of -E[f]
            params, state = opt.update(params, {"phi": onp.array([-sign * grads[i]])}, state)
        phi[i + 1] = params["phi"][0]
    return {"step": onp.arange(steps + 1), "phi": phi, "theta": expit(phi),
            "objective": onp.array([objective(v, t) for v in phi]), "grad": grads}


def optimize_all(phi0=None, t=None, steps=200, learning_rate=None, n_samples=1, variants=None, rng=0,
                 optimizer=None, preset=None):
    """:func:`optimize` for every estimator; returns label -> history dict.

    Parameters are those of :func:`optimize`; ``variants`` as in :func:`estimator_moments`.
    """
    rng = check_rng(rng)
    return {label: optimize(name, phi0, t, steps, learning_rate, n_samples, rng, optimizer=optimizer, preset=preset,
                            **options)
            for label, (name, options) in _variants(variants).items()
            if _estimators.get(name, **options).latent == "bernoulli"}
