"""The experiments for Gaussian latents (the VAE), with Gauss-Hermite quadrature as ground truth.

The Bernoulli experiments measure against enumeration; here, for K <= 2, quadrature
(:mod:`vi_lab.quadrature`) gives log p(x), the ELBO and its gradient to about 1e-6, so the same
questions get exact answers:

- :func:`gaussian_variance`: variance, bias, MSE and SNR of ``reparam`` (and its sticking-the-landing
  and analytic-KL forms) against ``gaussian_score_function`` (and its baselines), measured against
  the quadrature ELBO gradient; the same columns as :func:`vi_lab.experiments.variance`, with a
  ``quadrature`` row (zero variance, n**K decoder evaluations) as the reference.
- :func:`gaussian_tightness`: per datapoint log p(x), the ELBO of the amortized Gaussian q, of the
  best Gaussian q for that datapoint (L-BFGS on the quadrature ELBO) and IWAE bounds; the
  approximation gap (Gaussian family) and amortization gap (one encoder); the same columns as
  :func:`vi_lab.experiments.tightness`, so :func:`~vi_lab.experiments.tightness_summary` applies.
- :func:`gaussian_train_compare`: score function vs reparametrization learning curves of a VAE in
  quadrature log p(x) (``vi-lab train-compare --latent-type gaussian``); the tables of
  :func:`vi_lab.experiments.train_compare`.
"""
import time

import numpy as onp

from .. import data as _data
from .. import gaussian, quadrature
from .._validation import check_binary, check_positive_int
from ..gaussian import GaussianLVM, check_q_params
from .results import Results
from .specs import as_seed, build, spec_rng
from .table import frame
from .variance import COLUMNS, DEFAULT_SAMPLES, _flat, gradient_stats

__all__ = ["gaussian_variance", "gaussian_tightness", "best_gaussian_q", "gaussian_train_compare",
           "load_gaussian_data", "DEFAULT_GAUSSIAN_ESTIMATORS", "GAUSSIAN_REFERENCE_METHODS"]

#: Default estimators of :func:`gaussian_variance` (specifications, also the table labels).
DEFAULT_GAUSSIAN_ESTIMATORS = ("reparam", "reparam:stick_the_landing=True", "reparam:entropy=analytic",
                               "gaussian_score_function", "gaussian_score_function:baseline=rloo")
#: Reference methods of :func:`gaussian_train_compare` (no plug-in estimator). exact_ml and
#: exact_elbo (quadrature) are accepted when named; exact_elbo costs N * 4096 decoder evaluations
#: and a reverse pass through them per step at K = 2, so it is not run by default.
GAUSSIAN_REFERENCE_METHODS = ("wake_sleep", "reweighted_wake_sleep")


def _check_problem(model, params, q_params, x):
    if not isinstance(model, GaussianLVM):
        raise ValueError(f"model: expected a GaussianLVM (Gaussian latents), got {type(model).__name__}; "
                         f"for the Bernoulli model use vi_lab.experiments.variance / tightness")
    if model.n_latent > quadrature.MAX_QUADRATURE_LATENT:
        raise ValueError(f"model: the quadrature reference needs K <= {quadrature.MAX_QUADRATURE_LATENT}, "
                         f"got K = {model.n_latent}")
    x = check_binary(x, model.n_obs, "x")
    model.check_params(params)
    check_q_params(q_params, (x.shape[0], model.n_latent))
    return x, {key: onp.asarray(q_params[key], dtype=float) for key in ("mean", "log_std")}


# ---------------------------------------------------------------------------- gradient variance
def gaussian_variance(model, params, q_params, x, estimators=None, samples=DEFAULT_SAMPLES, reps=200, rng=0,
                      checkpoint=None, model_grad=True, n_nodes=None, progress=False):
    """Variance, bias, MSE, SNR and cost of Gaussian-latent gradient estimators against quadrature.

    Parameters
    ----------
    model : GaussianLVM
        K <= 2.
    params : dict
    q_params : dict
        ``{"mean": ndarray of shape (N, K), "log_std": ndarray of shape (N, K)}`` (e.g. an encoder's
        output, ``family.gaussian_params(q_params, x)``).
    x : ndarray of shape (N, L), values in {0., 1.}
    estimators : list of str or estimator objects, optional
        Specifications such as ``"reparam:stick_the_landing=True"``; default
        :data:`DEFAULT_GAUSSIAN_ESTIMATORS`.
    samples : sequence of int, default (1, 3, 10, 30, 100)
    reps : int, default 200
        R independent estimates per estimator and S (>= 2).
    rng : int
        Seed; each (estimator, S) pair has its own stream.
    checkpoint : int, optional
        Recorded in the ``checkpoint`` column.
    model_grad : bool, default True
        Also measure the decoder gradient.
    n_nodes : int, optional
        Quadrature nodes per axis of the reference (default :data:`vi_lab.quadrature.DEFAULT_NODES`).
    progress : bool

    Returns
    -------
    pandas.DataFrame
        The columns of ``vi_lab.experiments.variance.COLUMNS`` (same meaning): one row per
        estimator and S, plus one ``quadrature`` row (the reference: variance, bias and MSE 0,
        ``evals`` = n**K decoder evaluations per datapoint). The q-gradient (suffix ``_q``) is with
        respect to (mean, log_std), 2 N K coordinates.

    Notes
    -----
    The gradient is that of sum_n ELBO_n; the statistics are those of
    :func:`vi_lab.experiments.gradient_stats`. Reparametrization differentiates through the
    decoder, the score function only evaluates it; both are unbiased (the "mean" baseline is not),
    and the table shows by how much their variances differ at equal cost (``var_q_x_cost``).
    """
    from tqdm import tqdm

    x, q = _check_problem(model, params, q_params, x)
    samples = [check_positive_int(s, "samples (each S)") for s in samples]
    reps = check_positive_int(reps, "reps", minimum=2)
    seed = as_seed(rng)
    specs = list(DEFAULT_GAUSSIAN_ESTIMATORS if estimators is None else estimators)
    built = []
    for spec in specs:
        est = build(spec) if isinstance(spec, str) else spec
        if getattr(est, "latent", None) != "gaussian":
            raise ValueError(f"estimators: {spec!r} is not a Gaussian-latent estimator; use one of "
                             f"{', '.join(DEFAULT_GAUSSIAN_ESTIMATORS)}")
        label = spec if isinstance(spec, str) else getattr(est, "name", type(est).__name__)
        built.append((label, est))
    n_nodes = n_nodes or quadrature.DEFAULT_NODES[model.n_latent]
    start = time.perf_counter()
    g_params, g_q = quadrature.gaussian_elbo_grad(model, params, q, x, n_nodes=n_nodes)
    exact_seconds = time.perf_counter() - start
    truth_q = onp.concatenate([g_q["mean"].ravel(), g_q["log_std"].ravel()])
    truth_model = _flat(g_params)
    rows = [_quadrature_row(checkpoint, n_nodes ** model.n_latent, exact_seconds)]
    jobs = [(label, est, s) for label, est in built for s in samples if s >= getattr(est, "min_samples", 1)]
    for label, est, s in tqdm(jobs, desc="gaussian variance", disable=not progress, leave=False):
        stream = spec_rng(seed, label, s, checkpoint or 0)
        begin = time.perf_counter()
        gp, gq = est(model, params, q, x, s, stream, n_reps=reps, params_grad=model_grad)
        seconds = (time.perf_counter() - begin) / reps
        draws_q = onp.concatenate([gq["mean"].reshape(reps, -1), gq["log_std"].reshape(reps, -1)], axis=1)
        target = getattr(est, "objective", "elbo") == "elbo"
        q_stats = gradient_stats(draws_q, truth_q if target else None)
        m_stats = gradient_stats(_flat(gp, lead=1), truth_model if target else None) if gp is not None \
            else dict.fromkeys(q_stats, onp.nan)
        evals = int(est.evals_per_sample * s)
        rows.append({"checkpoint": checkpoint, "estimator": label, "tau": onp.nan, "S": s, "reps": reps,
                     "unbiased": bool(est.unbiased), "objective": getattr(est, "objective", "elbo"),
                     "var_q": q_stats["var"], "var_model": m_stats["var"],
                     "bias2_q": q_stats["bias2"], "bias2_q_se": q_stats["bias2_se"],
                     "bias2_model": m_stats["bias2"], "bias2_model_se": m_stats["bias2_se"],
                     "mse_q": q_stats["mse"], "mse_q_se": q_stats["mse_se"],
                     "mse_model": m_stats["mse"], "mse_model_se": m_stats["mse_se"],
                     "snr_q": q_stats["snr"], "snr_model": m_stats["snr"],
                     "snr_q_global": q_stats["snr_global"], "snr_model_global": m_stats["snr_global"],
                     "evals": evals, "var_q_x_cost": q_stats["var"] * evals,
                     "var_model_x_cost": m_stats["var"] * evals, "seconds": seconds})
    return frame(rows, COLUMNS, title="Gaussian-latent gradient estimator variance (sum_n ELBO_n, quadrature truth)")


def _quadrature_row(checkpoint, evals, seconds):
    row = dict.fromkeys(COLUMNS, onp.nan)
    row.update({"checkpoint": checkpoint, "estimator": "quadrature", "S": 1, "reps": 1, "unbiased": True,
                "objective": "elbo", "var_q": 0.0, "var_model": 0.0, "bias2_q": 0.0, "bias2_q_se": 0.0,
                "bias2_model": 0.0, "bias2_model_se": 0.0, "mse_q": 0.0, "mse_q_se": 0.0, "mse_model": 0.0,
                "mse_model_se": 0.0, "snr_q": onp.inf, "snr_model": onp.inf, "snr_q_global": onp.inf,
                "snr_model_global": onp.inf, "evals": int(evals), "var_q_x_cost": 0.0, "var_model_x_cost": 0.0,
                "seconds": seconds})
    return row


# ---------------------------------------------------------------------------- tightness
def best_gaussian_q(model, params, x, init=None, n_nodes=24, tol=1e-8, max_iter=500):
    """The best diagonal Gaussian q per datapoint: L-BFGS on the quadrature ELBO.

    Parameters
    ----------
    model : GaussianLVM
        K <= 2.
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    init : dict, optional
        Starting ``{"mean", "log_std"}`` of shape (N, K) (e.g. the encoder's q); default the prior.
    n_nodes : int, default 24
        Nodes per axis *during* the optimization. The nodes sit on q, so 24 suffice for the
        optimizer (the ELBOs reported by :func:`gaussian_tightness` are re-evaluated with the
        default 64); it is 7 times cheaper. Measured: re-optimizing with 64 nodes raises the ELBO by
        at most 8e-5 nats (q with sigma ~ 0.5-0.8 under a weight-scale-2 decoder) and by 1e-8 nats on
        digits (L = 64); pass ``n_nodes=64`` for the strict optimum.
    tol : float, default 1e-8
        Gradient tolerance of L-BFGS (per coordinate, on the summed ELBO).
    max_iter : int, default 500

    Returns
    -------
    dict
        ``{"mean": (N, K), "log_std": (N, K)}``.

    Notes
    -----
    The ELBO is a sum of per-datapoint terms in separate parameters, so one L-BFGS run on the sum
    optimizes every datapoint at once. The ELBO of a Gaussian q need not be concave in (mu, log
    sigma) when p(z|x) is multimodal: this finds a local optimum near ``init``.
    """
    x = check_binary(x, model.n_obs, "x")
    n, k = x.shape[0], model.n_latent
    q0 = gaussian.init_q_params(n, k) if init is None else {key: onp.asarray(init[key], float) for key in init}
    check_q_params(q0, (n, k), "init")

    def unpack(v):
        return {"mean": v[:n * k].reshape(n, k), "log_std": onp.clip(v[n * k:], -30, 30).reshape(n, k)}

    def negative(v):
        q = unpack(v)
        value = quadrature.gaussian_elbo(model, params, q, x, n_nodes=n_nodes).sum()
        _, g = quadrature.gaussian_elbo_grad(model, params, q, x, n_nodes=n_nodes)
        return -value, -onp.concatenate([g["mean"].ravel(), g["log_std"].ravel()])

    from scipy.optimize import minimize        # here: importing scipy.optimize costs every process 0.15 s

    v0 = onp.concatenate([q0["mean"].ravel(), q0["log_std"].ravel()])
    out = minimize(negative, v0, jac=True, method="L-BFGS-B", options={"gtol": tol, "ftol": 1e-15, "maxiter": max_iter})
    return unpack(out.x)


def gaussian_tightness(model, params, x, q_params, ks=(1, 10, 100, 1000), iwae_reps=8, split=None, rng=0,
                       ws_q_params=None):
    """Per-datapoint quadrature log p(x), ELBOs of the amortized and best Gaussian q, gaps, IWAE bounds.

    Parameters
    ----------
    model : GaussianLVM
        K <= 2.
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    q_params : dict
        The amortized q for x, ``{"mean": (N, K), "log_std": (N, K)}``.
    ks : sequence of int, default (1, 10, 100, 1000)
    iwae_reps : int, default 8
        Independent IWAE draws per datapoint and k (>= 2).
    split : sequence of str of length N, optional
    rng : int
    ws_q_params : dict, optional
        A wake-sleep encoder's q for x (``elbo_wake_sleep``; NaN when omitted).

    Returns
    -------
    pandas.DataFrame
        One row per datapoint, the columns of :func:`vi_lab.experiments.tightness`: ``index, split,
        log_px, elbo_amortized, elbo_local, elbo_wake_sleep, approximation_gap, amortization_gap,
        wake_sleep_gap, iwae_{k}, iwae_{k}_se``. Here ``elbo_local`` is the ELBO of the best
        Gaussian q for that datapoint (:func:`best_gaussian_q`, started at the amortized q).

    Notes
    -----
    log p(x) - ELBO(amortized) = approximation gap (log p(x) - ELBO(best Gaussian q), the price of a
    diagonal Gaussian) + amortization gap (ELBO(best) - ELBO(amortized), the price of one encoder)
    (Cremer, Li & Duvenaud, 2018). Both are >= 0 up to the quadrature error (~1e-6), the
    amortization gap exactly so because the best q starts at the amortized one and is kept only
    where it is better.
    """
    x, q = _check_problem(model, params, q_params, x)
    n = x.shape[0]
    ks = [check_positive_int(k, "ks (each k)") for k in ks]
    iwae_reps = check_positive_int(iwae_reps, "iwae_reps", minimum=2)
    seed = as_seed(rng)
    log_px = quadrature.gaussian_log_marginal(model, params, x)
    elbo_amortized = quadrature.gaussian_elbo(model, params, q, x)
    best = best_gaussian_q(model, params, x, init=q)
    elbo_local = onp.maximum(quadrature.gaussian_elbo(model, params, best, x), elbo_amortized)
    columns = {"index": onp.arange(n), "split": list(split) if split is not None else ["data"] * n,
               "log_px": log_px, "elbo_amortized": elbo_amortized, "elbo_local": elbo_local}
    if ws_q_params is not None:
        _, ws = _check_problem(model, params, ws_q_params, x)
        columns["elbo_wake_sleep"] = quadrature.gaussian_elbo(model, params, ws, x)
    else:
        columns["elbo_wake_sleep"] = onp.full(n, onp.nan)
    columns["approximation_gap"] = log_px - elbo_local
    columns["amortization_gap"] = elbo_local - elbo_amortized
    columns["wake_sleep_gap"] = log_px - columns["elbo_wake_sleep"]
    for k in ks:
        stream = spec_rng(seed, "iwae", k)
        draws = onp.array([gaussian.iwae_estimate(model, params, q, x, k, stream) for _ in range(iwae_reps)])
        columns[f"iwae_{k}"] = draws.mean(axis=0)
        columns[f"iwae_{k}_se"] = draws.std(axis=0, ddof=1) / onp.sqrt(iwae_reps)
    return frame(columns, title="Gaussian VAE bound tightness per datapoint (quadrature) [nats]")


# ---------------------------------------------------------------------------- train-compare
def load_gaussian_data(name="digits", latent=2, seed=0, valid_fraction=None):
    """Training and held-out data: "digits", "bars" (as :func:`~vi_lab.experiments.load_data`) or
    "model" (240 samples of a random GaussianLVM with ``latent`` latents and 16 pixels, 75/25 split
    unless ``valid_fraction`` says otherwise)."""
    from .problem import load_data
    if name == "model":
        truth = GaussianLVM(latent, 16, hidden=(32,))
        _, x = truth.sample(truth.init_params(seed + 1, scale=3.0), 240, rng=seed)
        return _data.split(x, 0.25 if valid_fraction is None else valid_fraction, seed)
    if valid_fraction is None:
        return load_data(name, latent, seed)
    return load_data(name, latent, seed, valid_fraction=valid_fraction)


def _early_stop(patience, key):
    """fit callback: stop after ``patience`` records without a better held-out value in column ``key``."""
    state = {"best": -onp.inf, "since": 0, "stopped": None}

    def callback(result, step):
        if not patience or key not in result.history:
            return False
        value = float(result.history[key][-1])
        if value > state["best"]:
            state.update(best=value, since=0)
        else:
            state["since"] += 1
        if state["since"] >= patience:
            state["stopped"] = int(step)
            return True
        return False

    return state, callback


_HISTORY = [("step", "step"), ("seconds", "wall_time"), ("decoder_evals", "decoder_evals"),
            ("log_px_train", "log_px_train"), ("log_px_valid", "log_px_valid"), ("elbo_train", "elbo_exact"),
            ("objective", "objective")]
_HISTORY_IWAE = [("step", "step"), ("seconds", "wall_time"), ("decoder_evals", "decoder_evals"),
                 ("log_px_train", "log_px_train_iwae"), ("log_px_train_se", "log_px_train_iwae_se"),
                 ("log_px_valid", "log_px_valid_iwae"), ("log_px_valid_se", "log_px_valid_iwae_se"),
                 ("elbo_train", "elbo_mc"), ("objective", "objective")]


def gaussian_train_compare(latent=2, data="digits", hidden=(32,), estimators=None, methods=None, steps=1000,
                           n_samples=2, learning_rate=0.01, batch_size=None, record_every=50, seed=0,
                           progress=False, eval_size=None, encoder_hidden=None, valid_fraction=None, patience=0):
    """Learning curves of a Gaussian VAE trained with each estimator, in quadrature log p(x).

    Parameters
    ----------
    latent : int or None, default 2
        K; None means 2. K <= 2: exact (quadrature) curves. K > 2: the log p(x) columns hold
        IWAE(k = 1000) estimates with their standard errors (columns ``*_se``) and the
        ``reference`` column says "iwae_estimate".
    data : {"digits", "bars", "model"}, default "digits"
    hidden : tuple of int, default (32,)
        Decoder and encoder hidden widths.
    estimators : list of str, optional
        Gaussian estimator specifications trained with ``method="amortized"`` (GaussianEncoder +
        decoder); default ``["reparam", "gaussian_score_function"]``.
    methods : list of str, optional
        Reference methods; default :data:`GAUSSIAN_REFERENCE_METHODS`.
    steps, n_samples, learning_rate, batch_size, record_every, seed, progress
        As for :func:`vi_lab.experiments.train_compare`.
    eval_size : int, optional
        Record the training curves on a fixed subset of this many training rows
        (:func:`vi_lab.inference.fit`'s ``eval_size``); held-out curves use all of x_valid.
    encoder_hidden : tuple of int, optional
        Hidden widths of the GaussianEncoder; default ``hidden``.
    valid_fraction : float, optional
        Held-out fraction (default: that of :func:`load_gaussian_data` for the data set).
    patience : int, default 0
        Early stopping: a run stops after ``patience`` records without a better held-out log p(x)
        (0: every run takes ``steps`` steps). ``stopped_step`` in the summary says where it stopped.

    Returns
    -------
    Results
        ``history`` (long form: ``method, reference, step, seconds, decoder_evals,
        evals_per_datapoint, log_px_train, log_px_valid, elbo_train, objective`` (+
        ``log_px_train_se, log_px_valid_se`` for K > 2)) and ``summary`` (per method:
        ``final_log_px_train, final_log_px_valid, best_log_px_valid, best_step, seconds,
        decoder_evals, evals_per_datapoint``), sorted by final training log p(x); the column names
        of :func:`~vi_lab.experiments.train_compare`, so its figure applies. No early stopping:
        by default (``patience=0``) every run takes ``steps`` steps (``best_step`` says where
        held-out log p(x) peaked).
    """
    from tqdm import tqdm
    from ..inference import fit, METHODS
    from ..variational import GaussianEncoder

    latent = 2 if latent is None else check_positive_int(latent, "latent")
    patience = check_positive_int(patience, "patience", minimum=0)
    encoder_hidden = tuple(hidden) if encoder_hidden is None else tuple(encoder_hidden)
    seed = as_seed(seed)
    steps = check_positive_int(steps, "steps")
    n_samples = check_positive_int(n_samples, "n_samples")
    record_every = check_positive_int(record_every, "record_every")
    if data not in ("digits", "bars", "model"):
        raise ValueError(f"data: unknown data set {data!r}; expected 'digits', 'bars' or 'model'")
    specs = ["reparam", "gaussian_score_function"] if estimators is None else list(estimators)
    runs = []
    for spec in specs:
        est = build(spec)
        if est.latent != "gaussian":
            raise ValueError(f"estimators: {spec!r} is for {est.latent} latents; the Gaussian train-compare needs "
                             f"Gaussian-latent estimators (reparam, gaussian_score_function, with options)")
        if n_samples < est.min_samples:
            raise ValueError(f"samples: estimator {spec!r} needs S >= {est.min_samples}, got S = {n_samples}")
        runs.append((spec, "amortized", spec))
    for method in (GAUSSIAN_REFERENCE_METHODS if methods is None else methods):
        if method not in METHODS or METHODS[method].uses_estimator:
            raise ValueError(f"methods: {method!r} is not a reference method; expected some of wake_sleep, "
                             f"reweighted_wake_sleep, exact_ml, exact_elbo")
        if method in ("exact_ml", "exact_elbo") and latent > quadrature.MAX_QUADRATURE_LATENT:
            raise ValueError(f"methods: {method!r} uses quadrature, which needs latent <= 2, got {latent}")
        runs.append((method, method, None))
    if not runs:
        raise ValueError("estimators/methods: nothing to train; name at least one estimator or method")
    x_train, x_valid = load_gaussian_data(data, latent, seed, valid_fraction)
    model = GaussianLVM(latent, x_train.shape[1], hidden=tuple(hidden))
    iwae = latent > quadrature.MAX_QUADRATURE_LATENT
    reference = "iwae_estimate" if iwae else "quadrature"
    keys = _HISTORY_IWAE if iwae else _HISTORY
    what_valid = "IWAE estimate of log p(x)" if iwae else "quadrature log p(x)"
    rows, summary, final_params = [], [], {}
    for label, method, spec in tqdm(runs, desc="train-compare (gaussian)", disable=not progress, leave=False):
        family = None if method == "exact_ml" else GaussianEncoder(model.n_obs, latent, hidden=encoder_hidden)
        stop, callback = _early_stop(patience, "log_px_valid_iwae" if iwae else "log_px_valid")
        result = fit(model, x_train, method=method, estimator=build(spec) if spec else None, n_samples=n_samples,
                     steps=steps, batch_size=batch_size, learning_rate=learning_rate, x_valid=x_valid,
                     record_every=record_every, rng=seed, progress=progress, family=family, eval_size=eval_size,
                     callback=callback)
        if result.interrupted:
            raise KeyboardInterrupt
        h = result.history
        for i in range(len(h["step"])):
            row = {"method": label, "reference": reference}
            for col, key in keys:
                row[col] = onp.asarray(h[key])[i].item() if key in h else onp.nan
            row["evals_per_datapoint"] = row["decoder_evals"] / x_train.shape[0]
            rows.append(row)
        train = onp.asarray(h[keys[3][1]], dtype=float)
        valid_key = "log_px_valid_iwae" if iwae else "log_px_valid"
        valid = onp.asarray(h.get(valid_key, onp.full(len(train), onp.nan)), dtype=float)
        best = int(onp.nanargmax(valid)) if onp.isfinite(valid).any() else len(valid) - 1
        summary.append({"method": label, "reference": reference, "final_log_px_train": float(train[-1]),
                        "final_log_px_valid": float(valid[-1]), "best_log_px_valid": float(valid[best]),
                        "best_step": int(h["step"][best]), "stopped_step": int(h["step"][-1]),
                        "stopped_early": stop["stopped"] is not None and stop["stopped"] < steps,
                        "seconds": float(h["wall_time"][-1]),
                        "decoder_evals": int(h["decoder_evals"][-1]),
                        "evals_per_datapoint": float(h["decoder_evals"][-1]) / x_train.shape[0]})
        final_params[label] = result.params
    summary.sort(key=lambda r: -r["final_log_px_train"])
    config = {"experiment": "train_compare", "latent_type": "gaussian", "latent": latent, "data": data,
              "hidden": list(hidden), "estimators": specs, "methods": [r[0] for r in runs if r[2] is None],
              "steps": steps, "n_samples": n_samples, "learning_rate": learning_rate, "batch_size": batch_size,
              "record_every": record_every, "seed": seed, "eval_size": eval_size, "reference": reference,
              "encoder_hidden": list(encoder_hidden), "valid_fraction": valid_fraction, "patience": patience,
              "n_train": int(x_train.shape[0]),
              "overfitting_control": (f"early stopping on held-out {what_valid} (patience {patience} records)"
                                      if patience else "none: every run takes every step"),
              "runs": [r[0] for r in runs]}
    what = "IWAE(k=1000) estimate of" if iwae else "quadrature"
    tables = {"history": frame(rows, ["method", "reference"] + [c for c, _ in keys[:3]] + ["evals_per_datapoint"]
                               + [c for c, _ in keys[3:]],
                               title=f"Gaussian VAE training histories ({what} mean log p(x) [nats])"),
              "summary": frame(summary, title=f"Gaussian VAE after {steps} steps, S = {n_samples} "
                                              f"(sorted by training log p(x))")}
    return Results("train_compare", config, tables, {"params": final_params}, model)
