"""How noisy is each gradient estimator? Variance, bias, MSE, SNR and cost against the exact gradient.

For a fixed model, data set and mean-field q, every estimator is run R times independently
at each sample count S; the R estimates of the gradient of sum_n ELBO_n are compared with
the exact gradient from enumeration (:func:`vi_lab.exact.elbo_grad`). The q-gradient
(N x K logits) and the model gradient (decoder weights and prior logits) are summarized
separately, because estimators differ mostly on the first.
"""
import copy
import time

import numpy as onp

from .. import exact
from .._validation import check_bool, check_positive_int, check_binary
from .sizes import CALL_BYTES, check_size, measurement_chunks  # noqa: F401  (CALL_BYTES: re-exported)
from .specs import as_seed, build, default_specs, spec_rng, without_option
from .table import frame

__all__ = ["variance", "tau_sweep", "gradient_stats", "check_size", "DEFAULT_SAMPLES", "DEFAULT_TAUS"]

DEFAULT_SAMPLES = (1, 3, 10, 30, 100)
DEFAULT_TAUS = (0.1, 0.2, 0.5, 1.0, 2.0)

COLUMNS = ["checkpoint", "estimator", "tau", "S", "reps", "unbiased", "objective",
           "var_q", "var_model", "bias2_q", "bias2_q_se", "bias2_model", "bias2_model_se",
           "mse_q", "mse_q_se", "mse_model", "mse_model_se", "snr_q", "snr_model", "snr_q_global",
           "snr_model_global",
           "evals", "var_q_x_cost", "var_model_x_cost", "seconds"]


def _leaves(tree, lead=0):
    """Leaves of a nested dict in sorted-key order, each reshaped to (*lead_shape, -1)."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key], lead)]
    arr = onp.asarray(tree, dtype=float)
    return [arr.reshape(arr.shape[:lead] + (-1,))]


def _flat(tree, lead=0):
    return onp.concatenate(_leaves(tree, lead), axis=-1)


def gradient_stats(estimates, truth):
    """Summary statistics of R independent gradient estimates against the true gradient.

    Parameters
    ----------
    estimates : ndarray of shape (R, D)
        R >= 2 independent estimates of a D-dimensional gradient.
    truth : ndarray of shape (D,), or None
        The exact gradient; None (e.g. VIMCO, whose target is the IWAE gradient) gives NaN
        bias and MSE.

    Returns
    -------
    dict
        ``var`` (trace of the covariance), ``bias2`` and ``bias2_se``, ``mse`` and ``mse_se``,
        ``snr`` (|mean| / std averaged over coordinates with std > 0; inf if none) and
        ``snr_global`` (||mean|| / sqrt(var)).

    Notes
    -----
    With g_r the estimates, m their mean, Sigma their covariance and b = E[g] - g_true:

    - var = sum_d s_d^2, the unbiased sample variances summed (trace of Sigma).
    - bias2 = ||m - g_true||^2 - var / R. Since E||m - g_true||^2 = ||b||^2 + tr(Sigma)/R, this
      is unbiased for ||b||^2 (it is the U-statistic mean_{r != s} (g_r - g_true).(g_s - g_true))
      and can be negative: for an unbiased estimator it scatters around 0.
    - bias2_se: the exact variance of that U-statistic (Hoeffding 1948),
      4 (R-2)/(R(R-1)) b'Sigma b + 2/(R(R-1)) (tr(Sigma^2) + 2 b'Sigma b), with b'Sigma b
      estimated by (m - g)'S(m - g) - tr(Sigma^2)/R (clipped at 0) and tr(Sigma^2) by
      dof^2/((dof-1)(dof+2)) (tr(S^2) - tr(S)^2/dof), dof = R - 1, which is unbiased for Gaussian
      estimates (Srivastava 2005), S the sample covariance.
    - mse = mean_r ||g_r - g_true||^2 with its standard error std_r / sqrt(R).
    - snr averages the per-coordinate signal-to-noise ratio |m_d| / s_d (Rainforth et al. 2018).
      Coordinates where q is nearly deterministic have tiny, nearly noise-free gradients and
      can dominate that average; snr_global = ||m|| / sqrt(sum_d s_d^2) weighs coordinates by
      their size and is the more robust summary.
    """
    g = onp.asarray(estimates, dtype=float)
    n_reps = g.shape[0]
    if n_reps < 2:
        raise ValueError(f"reps: need at least 2 independent estimates for a variance, got {n_reps}")
    # shifting by the first estimate keeps identical estimates (exact) at exactly zero variance
    shifted = g - g[0]
    mean_shift = shifted.mean(axis=0)
    centered = shifted - mean_shift
    mean = g[0] + mean_shift
    var_coord = (centered ** 2).sum(axis=0) / (n_reps - 1)
    total_var = float(var_coord.sum())
    std = onp.sqrt(var_coord)
    # |mean| / std per coordinate; coordinates with no noise at all (exact, or constant parts) are left out
    noisy = std > 1e-12 * max(1.0, float(onp.abs(mean).max(initial=0.0)))
    snr = float(onp.mean(onp.abs(mean[noisy]) / std[noisy])) if noisy.any() else float("inf")
    norm_var = onp.sqrt(total_var)
    snr_global = float(onp.linalg.norm(mean) / norm_var) if norm_var > 0 else float("inf")
    out = {"var": total_var, "snr": snr, "snr_global": snr_global, "bias2": onp.nan, "bias2_se": onp.nan, "mse": onp.nan,
           "mse_se": onp.nan}
    if truth is None:
        return out
    truth = onp.asarray(truth, dtype=float)
    err = (g[0] - truth) + mean_shift
    bias2 = float(err @ err - total_var / n_reps)
    # tr(S^2) = ||C C^T||_F^2 / (R-1)^2 = ||C^T C||_F^2 / (R-1)^2: use the smaller of R x R and D x D
    gram = (centered @ centered.T if n_reps <= centered.shape[1] else centered.T @ centered) / (n_reps - 1)
    dof = n_reps - 1
    # tr(S^2) overestimates tr(Sigma^2) by about tr(Sigma)^2 / dof; correct it (Srivastava 2005)
    tr_s2 = float(onp.sum(gram ** 2))
    tr_sigma2 = max(0.0, dof ** 2 / ((dof - 1) * (dof + 2)) * (tr_s2 - total_var ** 2 / dof)) if dof > 1 else tr_s2
    proj = centered @ err
    b_sigma_b = max(0.0, float(proj @ proj) / (n_reps - 1) - tr_sigma2 / n_reps)
    rr = n_reps * (n_reps - 1)
    var_u = 4.0 * (n_reps - 2) / rr * b_sigma_b + 2.0 / rr * (tr_sigma2 + 2.0 * b_sigma_b)
    sq = ((shifted + (g[0] - truth)) ** 2).sum(axis=1)
    out.update(bias2=bias2, bias2_se=float(onp.sqrt(var_u)), mse=float(sq.mean()),
               mse_se=float(sq.std(ddof=1) / onp.sqrt(n_reps)))
    return out


def _check_inputs(model, params, q_logits, x, samples, reps):
    x = check_binary(x, model.n_obs, "x")
    exact.check_enumerable(model.n_latent, x.shape[0], model.n_obs)
    q_logits = onp.asarray(q_logits, dtype=float)
    if q_logits.shape != (x.shape[0], model.n_latent):
        raise ValueError(f"q_logits: expected shape ({x.shape[0]}, {model.n_latent}), got {q_logits.shape}")
    samples = [check_positive_int(s, "samples (each S)") for s in samples]
    if not samples:
        raise ValueError("samples: expected at least one sample count S >= 1")
    reps = check_positive_int(reps, "reps", minimum=2)
    return x, q_logits, samples, reps


def _check_warmup(warmup):
    return check_positive_int(warmup, "warmup", minimum=0)


def _label(spec):
    return spec if isinstance(spec, str) else str(getattr(spec, "name", None) or type(spec).__name__)


def _fresh(spec, tau=None):
    """A new estimator for a specification string, or a copy of an estimator object (own state)."""
    if isinstance(spec, str):
        return build(spec if tau is None else _with_tau(spec, tau))
    if not callable(spec):
        raise ValueError(f"estimators: expected names or estimator objects, got {type(spec).__name__}")
    return copy.deepcopy(spec)


def _resolve(estimators, samples):
    """(label, spec, estimator object) triples; explicit names must accept every S asked for."""
    explicit = estimators is not None
    # REBAR measured at fixed (eta, tau): its online tuning is for training (H6's decision, issue 12)
    specs = ([VARIANCE_SPEC.get(s, s) for s in default_specs() if s not in NOT_BY_DEFAULT]
             if estimators is None else list(estimators))
    if isinstance(estimators, str) or (estimators is not None and callable(estimators)):
        specs = [estimators]
    if not specs:
        raise ValueError("estimators: expected at least one estimator name")
    out = []
    for spec in specs:
        est = _fresh(spec)
        label = _label(spec)
        if getattr(est, "latent", "bernoulli") != "bernoulli":
            raise ValueError(f"estimators: {label!r} is for {est.latent} latents; the variance experiment "
                             f"uses the Bernoulli model")
        too_few = [s for s in samples if s < getattr(est, "min_samples", 1)]
        if explicit and too_few:
            raise ValueError(f"samples: estimator {label!r} needs S >= {est.min_samples}, but the sample counts "
                             f"include {', '.join(map(str, too_few))}; drop them or drop {label!r}")
        out.append((label, spec, est))
    return out


#: Default specifications the variance experiment measures instead of a registered name's defaults.
VARIANCE_SPEC = {"rebar": "rebar:tune=false"}

#: Registered estimators the default run leaves out because one estimate costs many times an
#: RLOO estimate (RODEO trains its Stein control network, about 30x; Gumbel-Rao draws 10
#: conditional noises per sample, about 15x; LEG flips each of the K coordinates, about 9x):
#: name them to measure them (``vi-lab variance --estimators rodeo``). Gumbel-Rao stays in the
#: temperature sweep (:func:`tau_sweep`), where its comparison with straight-through belongs.
NOT_BY_DEFAULT = ("rodeo", "gumbel_rao", "leg")


#: Samples per call while a stateful estimator learns its baseline (its state does not depend on S).
_WARMUP_SAMPLES = 10


def warm(spec, model, params, q_logits, x, warmup, seed, checkpoint):
    """A stateful estimator that has learned its baseline/control at this q for ``warmup`` calls, then frozen.

    A learned baseline is only fair once it has seen the q it is measured at, as late in a training
    run. NVIL's baseline and RELAX's control do not depend on S, so one warm-up serves every S.
    """
    est = _fresh(spec)
    rng = spec_rng(seed, _label(spec), "warmup", checkpoint or 0)
    n_samples = max(_WARMUP_SAMPLES, getattr(est, "min_samples", 1))
    for _ in range(warmup):
        est(model, params, q_logits, x, n_samples, rng, params_grad=False)
    if hasattr(est, "learn"):
        est.learn = False
    return est


def chunk_rng(seed, label, n_samples, tau, checkpoint, chunk):
    """The random stream of one chunk of replicates: a function of what is measured, not of run order."""
    return spec_rng(seed, label, n_samples, -1 if tau is None else int(round(tau * 1e6)), checkpoint or 0, chunk)


def estimate_chunk(spec, model, params, q_logits, x, n_samples, n_reps, seed, checkpoint, chunk, tau=None,
                   model_grad=True, est=None):
    """``n_reps`` independent estimates of one estimator: the unit of work of :func:`variance`.

    Returns
    -------
    g_q : ndarray of shape (n_reps, N*K)
    g_model : ndarray of shape (n_reps, P), or None without the model gradient
    seconds : float
        Wall time of the estimates.
    """
    est = _fresh(spec, tau) if est is None else copy.deepcopy(est)
    rng = chunk_rng(seed, _label(spec), n_samples, tau, checkpoint, chunk)
    start = time.perf_counter()
    g_params, g_logits = est(model, params, q_logits, x, n_samples, rng, n_reps=n_reps, params_grad=model_grad)
    seconds = time.perf_counter() - start
    g_model = None if g_params is None else _flat(g_params, lead=1)
    return onp.asarray(g_logits, dtype=float).reshape(n_reps, -1), g_model, seconds


def summarize(spec, est, model, n_samples, reps, parts, truth_q, truth_model, checkpoint, tau=None):
    """One row of the variance table from the chunks of estimates of one estimator at one S (and tau)."""
    label = _label(spec)
    g_q = onp.concatenate([p[0] for p in parts], axis=0)
    g_model = None if parts[0][1] is None else onp.concatenate([p[1] for p in parts], axis=0)
    seconds = sum(p[2] for p in parts) / reps
    vimco_like = getattr(est, "objective", "elbo") != "elbo"
    q_stats = gradient_stats(g_q, None if vimco_like else truth_q)
    if g_model is not None:
        m_stats = gradient_stats(g_model, None if vimco_like else truth_model)
    else:
        m_stats = dict.fromkeys(q_stats, onp.nan)
    per_sample = est.cost(model) if hasattr(est, "cost") else est.evals_per_sample
    # exact enumeration costs 2**K per estimate whatever S; every other cost (LEG's K + 1 too) is per sample
    evals = per_sample if getattr(est, "name", "") == "exact" else per_sample * n_samples
    return {"checkpoint": checkpoint, "estimator": label, "tau": tau if tau is not None else getattr(est, "tau", None),
            "S": n_samples, "reps": reps, "unbiased": bool(est.unbiased),
            "objective": getattr(est, "objective", "elbo"),
            "var_q": q_stats["var"], "var_model": m_stats["var"],
            "bias2_q": q_stats["bias2"], "bias2_q_se": q_stats["bias2_se"],
            "bias2_model": m_stats["bias2"], "bias2_model_se": m_stats["bias2_se"],
            "mse_q": q_stats["mse"], "mse_q_se": q_stats["mse_se"],
            "mse_model": m_stats["mse"], "mse_model_se": m_stats["mse_se"],
            "snr_q": q_stats["snr"], "snr_model": m_stats["snr"],
            "snr_q_global": q_stats["snr_global"], "snr_model_global": m_stats["snr_global"],
            "evals": int(evals), "seconds": seconds,
            "var_q_x_cost": q_stats["var"] * evals, "var_model_x_cost": m_stats["var"] * evals}


def truth(model, params, q_logits, x):
    """The exact gradient of sum_n ELBO_n, flattened as the estimates are: (q-gradient (N*K,), model (P,))."""
    truth_params, truth_logits = exact.elbo_grad(model, params, q_logits, x)
    return truth_logits.ravel(), _flat(truth_params)


def _measure(spec, model, params, q_logits, x, n_samples, reps, seed, truth_q, truth_model, checkpoint, tau=None,
             model_grad=True, est=None):
    probe = _fresh(spec, tau) if est is None else est
    parts = [estimate_chunk(spec, model, params, q_logits, x, n_samples, r, seed, checkpoint, c, tau=tau,
                            model_grad=model_grad, est=est)
             for c, r in enumerate(measurement_chunks(probe, model, x.shape[0], n_samples, reps))]
    return summarize(spec, probe, model, n_samples, reps, parts, truth_q, truth_model, checkpoint, tau)


def _with_tau(spec, tau):
    return f"{spec}{',' if ':' in spec else ':'}tau={tau!r}"


def _progress(total, desc, progress):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)


def variance(model, params, q_logits, x, estimators=None, samples=DEFAULT_SAMPLES, reps=200, rng=0,
             checkpoint=None, model_grad=True, warmup=50, progress=False):
    """Variance, bias, MSE, SNR and cost of gradient estimators, measured against the exact gradient.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
        Model parameters at which the gradients are taken.
    q_logits : ndarray of shape (N, K)
        Logits of the mean-field q(z|x_n) (e.g. the amortized encoder's output).
    x : ndarray of shape (N, L), values in {0., 1.}
    estimators : list of str or estimator objects, optional
        Estimator specifications (``"arm"``, ``"rloo"``, ``"concrete:tau=0.5"``; see
        :mod:`vi_lab.experiments.specs`) or objects following the :mod:`vi_lab.estimators`
        interface (your own estimator; each measurement uses a deep copy, labelled by its
        ``name``). Default: every registered Bernoulli estimator plus
        ``rloo``, except the costly ``NOT_BY_DEFAULT`` (rodeo, gumbel_rao, leg); sample counts below an estimator's ``min_samples`` are then skipped, whereas
        an explicitly named estimator must accept every S (ValueError otherwise).
    samples : sequence of int, default (1, 3, 10, 30, 100)
        Sample counts S per estimate.
    reps : int, default 200
        R, independent estimates per estimator and S (>= 2).
    rng : int
        Seed. Each (estimator, S) pair gets its own stream derived from it, so a row does not
        depend on which other estimators were run.
    checkpoint : int, optional
        Training step recorded in the ``checkpoint`` column.
    model_grad : bool, default True
        Also measure the model gradient (one reverse pass per replicate; False is faster).
    warmup : int, default 50
        Stateful estimators (nvil, relax) first learn their baseline or control variate for this
        many calls (10 samples each) at this q, then are frozen (``learn = False``) and measured,
        a copy per S: the variance of a trained, fixed baseline, as late in a training run.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        Long form, one row per estimator and S, columns ``checkpoint, estimator, tau, S, reps,
        unbiased, objective, var_q, var_model, bias2_q, bias2_q_se, bias2_model, bias2_model_se,
        mse_q, mse_q_se, mse_model, mse_model_se, snr_q, snr_model, snr_q_global,
        snr_model_global, evals, var_q_x_cost, var_model_x_cost, seconds``. ``evals`` is decoder
        evaluations per datapoint per estimate; ``seconds`` the wall time per estimate, the only
        column that differs between two runs with the same seed (it comes last; see
        :func:`vi_lab.experiments.without_wall_clock`). ``tau`` is NaN for estimators without a
        temperature, bias and MSE are NaN where there is no exact target (VIMCO).

    Notes
    -----
    The gradient is that of sum_n ELBO_n; statistics are those of :func:`gradient_stats`,
    computed separately for the q-gradient (N*K logits, suffix ``_q``) and the model gradient
    (suffix ``_model``). VIMCO estimates the gradient of the IWAE bound, not of the ELBO, so
    its bias and MSE are NaN (its ``objective`` column says "iwae"). Variance x cost
    (``var_q_x_cost``) compares estimators at equal compute: doubling the samples halves the
    variance of an average, so this product does not depend on S for plain Monte Carlo.
    """
    model_grad = check_bool(model_grad, "model_grad")
    progress = check_bool(progress, "progress")
    x, q_logits, samples, reps = _check_inputs(model, params, q_logits, x, samples, reps)
    warmup = _check_warmup(warmup)
    seed = as_seed(rng)
    pairs = _resolve(estimators, samples)
    check_size(model, x.shape[0], pairs, samples, reps)
    truth_params, truth_logits = exact.elbo_grad(model, params, q_logits, x)
    truth_q, truth_model = truth_logits.ravel(), _flat(truth_params)
    jobs = [(spec, est, s) for _, spec, est in pairs for s in samples if s >= getattr(est, "min_samples", 1)]
    warmed = {}
    rows = []
    with _progress(len(jobs), "variance", progress) as bar:
        for spec, est, s in jobs:
            label = _label(spec)
            bar.set_postfix_str(f"{label} S={s}")
            if getattr(est, "stateful", False) and warmup and label not in warmed:
                warmed[label] = warm(spec, model, params, q_logits, x, warmup, seed, checkpoint)
            rows.append(_measure(spec, model, params, q_logits, x, s, reps, seed, truth_q, truth_model, checkpoint,
                                 model_grad=model_grad, est=warmed.get(label)))
            bar.update()
    return frame(rows, COLUMNS, title="Gradient estimator variance (sum_n ELBO_n)")


def tau_sweep(model, params, q_logits, x, estimators=None, taus=DEFAULT_TAUS, n_samples=10, reps=200, rng=0,
              checkpoint=None, progress=False):
    """Bias and variance of the relaxed (temperature-dependent) estimators across the temperature tau.

    Parameters
    ----------
    model, params, q_logits, x
        As in :func:`variance`.
    estimators : list of str, optional
        Default: every registered Bernoulli estimator that is biased and has a ``tau`` option
        (concrete, straight_through). A ``tau`` in a specification is replaced by each of ``taus``.
    taus : sequence of float, default (0.1, 0.2, 0.5, 1.0, 2.0)
    n_samples : int, default 10
        S, the same for every row.
    reps, rng, checkpoint, progress
        As in :func:`variance`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`variance`, one row per estimator and tau (model gradient not
        measured: the temperature changes only the q-gradient).

    Notes
    -----
    A relaxed estimator replaces z in {0,1} by a continuous sample whose sharpness is set by
    tau (Maddison et al. 2017; Jang et al. 2017): small tau gives nearly binary samples, little
    bias and a large variance; large tau the reverse.
    """
    x, q_logits, _, reps = _check_inputs(model, params, q_logits, x, [n_samples], reps)
    taus = [float(t) for t in taus]
    if not taus or any(not (t > 0 and onp.isfinite(t)) for t in taus):
        raise ValueError(f"taus: expected finite temperatures > 0, got {taus}")
    if estimators is None:
        estimators = tau_estimators()
    # the sweep sets tau itself: a tau given in a specification is dropped from its label
    estimators = list(dict.fromkeys(without_option(spec, "tau") for spec in estimators))
    for spec in estimators:
        est = build(spec)
        if "tau" not in getattr(est, "options", {}):
            raise ValueError(f"estimators: {spec!r} has no temperature option tau")
        if n_samples < est.min_samples:
            raise ValueError(f"samples: estimator {spec!r} needs S >= {est.min_samples}, got {n_samples}")
    check_size(model, x.shape[0], [(spec, spec, build(spec)) for spec in estimators], [n_samples], reps)
    seed = as_seed(rng)
    truth_params, truth_logits = exact.elbo_grad(model, params, q_logits, x)
    jobs = [(spec, tau) for spec in estimators for tau in taus]
    rows = []
    with _progress(len(jobs), "tau sweep", progress) as bar:
        for spec, tau in jobs:
            rows.append(_measure(spec, model, params, q_logits, x, n_samples, reps, seed, truth_logits.ravel(),
                                 _flat(truth_params), checkpoint, tau=tau, model_grad=False))
            bar.update()
    return frame(rows, COLUMNS, title=f"Relaxed estimators across the temperature (S = {n_samples})")


def tau_estimators(specs=None):
    """The biased estimators with a temperature among ``specs`` (default: all registered)."""
    specs = default_specs() if specs is None else specs
    return [spec for spec in specs if _is_tau_biased(build(spec))]


def _is_tau_biased(est):
    return "tau" in getattr(est, "options", {}) and not est.unbiased

