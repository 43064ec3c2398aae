"""Whole experiments on the default problems: what the ``vi-lab`` subcommands run.

- :func:`run_variance`: train briefly, then :func:`~vi_lab.experiments.variance` (and the
  temperature sweep) at one or more training checkpoints.
- :func:`run_tightness`: train, fit a sleep-phase encoder, then
  :func:`~vi_lab.experiments.tightness` on training and held-out data.
- :func:`compare`: the main job, a small version of both on the embedded default data.

Each returns a :class:`~vi_lab.experiments.results.Results` (name -> pandas.DataFrame) whose ``save``
writes the run directory.
"""
import os

import numpy as onp
import pandas as pd

from .._validation import check_positive_int
from .problem import load_data, load_run, make_model, problem_from_run, train_checkpoints
from .results import Results
from .specs import as_seed, build
from .table import frame
from .tightness import DEFAULT_KS, check_iwae_size, iwae_curve, sleep_encoder, tightness, tightness_summary
from .variance import (COLUMNS, DEFAULT_SAMPLES, DEFAULT_TAUS, _label, _resolve, _with_tau, check_size,
                       estimate_chunk, measurement_chunks, summarize, tau_estimators, truth, warm)

__all__ = ["run_variance", "run_tightness", "compare", "variance_summary"]


def _variance_cell(cell):
    """One cell of :func:`run_variance`: a warm-up of a stateful estimator, or one chunk of estimates.

    Every random stream inside comes from (seed, estimator, S, tau, checkpoint, chunk) (see
    :func:`~vi_lab.experiments.variance.chunk_rng`), so a cell gives the same numbers in any process and order.
    """
    if cell["kind"] == "warm":
        return warm(cell["spec"], cell["model"], cell["params"], cell["q_logits"], cell["x"], cell["warmup"],
                    cell["seed"], cell["checkpoint"])
    return estimate_chunk(cell["spec"], cell["model"], cell["params"], cell["q_logits"], cell["x"], cell["S"],
                          cell["n_reps"], cell["seed"], cell["checkpoint"], cell["chunk"], tau=cell["tau"],
                          model_grad=cell["model_grad"], est=cell["est"])


def _cell_label(cell):
    if cell["kind"] == "warm":
        return f"{_label(cell['spec'])} warm-up @{cell['checkpoint']}"
    what = f"S={cell['S']}" if cell["tau"] is None else f"tau={cell['tau']:g}"
    return f"{_label(cell['spec'])} {what} @{cell['checkpoint']} part {cell['chunk'] + 1}"


def _measure_all(groups, jobs, progress):
    """Rows of the variance table for ``groups`` (one per checkpoint, estimator, S or tau), cells in parallel."""
    from ..parallel import run_cells
    warm_cells = {}
    for g in groups:
        key = (g["checkpoint"], _label(g["spec"]))
        if g["stateful"] and key not in warm_cells:
            warm_cells[key] = dict(g["base"], kind="warm", spec=g["spec"])
    warmed = dict(zip(warm_cells, run_cells(_variance_cell, list(warm_cells.values()), jobs=jobs, progress=progress,
                                            desc="variance warm-up", label=_cell_label))) if warm_cells else {}
    cells, owners = [], []
    for i, g in enumerate(groups):
        est = warmed.get((g["checkpoint"], _label(g["spec"])))
        for c, r in enumerate(measurement_chunks(est or g["est"], g["base"]["model"], g["base"]["x"].shape[0],
                                                 g["S"], g["base"]["reps"])):
            cells.append(dict(g["base"], kind="chunk", spec=g["spec"], S=g["S"], tau=g["tau"], chunk=c, n_reps=r,
                              est=est, model_grad=g["model_grad"]))
            owners.append(i)
    parts = run_cells(_variance_cell, cells, jobs=jobs, progress=progress, desc="variance", label=_cell_label)
    rows = []
    for i, g in enumerate(groups):
        mine = [p for p, owner in zip(parts, owners) if owner == i]
        rows.append(summarize(g["spec"], g["est"], g["base"]["model"], g["S"], g["base"]["reps"], mine,
                              g["truth"][0], g["truth"][1], g["checkpoint"], g["tau"]))
    return rows


def _check_taus(taus):
    taus = [float(t) for t in (taus or [])]
    if any(not (t > 0 and onp.isfinite(t)) for t in taus):
        raise ValueError(f"taus: expected finite temperatures > 0, got {taus}")
    return taus


def run_variance(latent=10, data="bars", hidden=(32,), n_data=30, estimators=None, samples=DEFAULT_SAMPLES,
                 reps=200, checkpoints=(200,), taus=DEFAULT_TAUS, tau_samples=10, warmup=50, model_grad=True,
                 train_method="exact_elbo", learning_rate=0.01, seed=0, progress=False, jobs=1, from_run=None):
    """The variance experiment on a model trained for a short while (or on a saved run).

    Parameters
    ----------
    latent : int, default 10
        K (at most :data:`vi_lab.exact.MAX_LATENT`).
    data : {"bars", "digits", "model"}, default "bars"
    hidden : tuple of int, default (32,)
        Decoder hidden widths.
    n_data : int, default 30
        Gradients are of sum_n ELBO_n over the first ``n_data`` training rows (a mini-batch).
    estimators, samples, reps
        As in :func:`~vi_lab.experiments.variance`.
    checkpoints : sequence of int, default (200,)
        Training steps at which to measure (0 = untrained); variance changes as q sharpens.
    taus : sequence of float, default (0.1, 0.2, 0.5, 1.0, 2.0)
        Temperatures of the bias-variance sweep of the biased relaxed estimators among
        ``estimators`` (empty, or no such estimator: skipped).
    tau_samples : int, default 10
        S of the temperature sweep.
    warmup : int, default 50
        Calls that stateful estimators (nvil, relax) get to learn their baseline at the
        measured q before being frozen for the measurement.
    model_grad : bool, default True
        Measure the model gradient too.
    train_method : str, default "exact_elbo"
        :func:`vi_lab.inference.fit` method of the short training run (amortized encoder).
    learning_rate : float, default 0.01
    seed : int, default 0
    progress : bool, default False
    jobs : int or None, default 1
        Processes the cells (estimator, S) run on, through :func:`vi_lab.parallel.run_cells`
        (None: every core). The table is identical for every value.
    from_run : str, path or FitResult, optional
        Measure at the model and q of a saved run (``vi_lab.experiments.problem.load_run``)
        instead of training; ``latent``, ``hidden``, ``checkpoints``, ``train_method`` and
        ``learning_rate`` are then unused, and ``data``/``seed`` must give the run's data.

    Returns
    -------
    Results
        Tables ``variance`` (one row per checkpoint, estimator and S) and ``tau`` (one row per
        biased relaxed estimator and tau, at the last checkpoint); ``params`` the model at the
        last checkpoint, ``q_params`` its encoder.

    Notes
    -----
    Every option is checked, and the memory of the measurement estimated
    (:func:`~vi_lab.experiments.sizes.check_size`), before training starts.
    """
    from ..parallel import resolve_jobs
    seed = as_seed(seed)
    resolve_jobs(jobs)
    samples = [check_positive_int(s, "samples (each S)") for s in samples]
    if not samples:
        raise ValueError("samples: expected at least one sample count S >= 1")
    reps = check_positive_int(reps, "reps", minimum=2)
    warmup = check_positive_int(warmup, "warmup", minimum=0)
    tau_samples = check_positive_int(tau_samples, "tau_samples")
    taus = _check_taus(taus)
    run = None if from_run is None else load_run(from_run)
    x_train, x_valid = load_data(data, latent, seed)
    if run is None:
        model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
        steps = sorted({check_positive_int(int(c), "checkpoints (each step)", minimum=0) for c in checkpoints})
        if not steps:
            raise ValueError("checkpoints: expected at least one training step count (0 is allowed)")
    else:
        model = run.model
        problems = [problem_from_run(run, x_train, x_valid)]
    n_data = min(check_positive_int(n_data, "n_data"), x_train.shape[0])
    pairs = _resolve(estimators, samples)
    swept = tau_estimators(estimators) if taus else []
    check_size(model, n_data, pairs, samples, reps)
    if swept:
        tau_pairs = [(spec, spec, build(spec)) for spec in swept]
        too_few = [spec for _, spec, est in tau_pairs if tau_samples < est.min_samples]
        if too_few:
            raise ValueError(f"tau_samples: {too_few[0]!r} needs S >= {build(too_few[0]).min_samples}, "
                             f"got {tau_samples}")
        check_size(model, n_data, tau_pairs, [tau_samples], reps)
    # ------------------------------------------------------------------ the work
    if run is None:
        problems = train_checkpoints(model, x_train, x_valid, steps, method=train_method,
                                     learning_rate=learning_rate, rng=seed, progress=progress)
    x = x_train[:n_data]
    groups = []
    for p in problems:
        q_logits = p.q_logits(x)
        base = {"model": model, "x": x, "reps": reps, "seed": seed, "warmup": warmup, "params": p.params,
                "q_logits": q_logits, "checkpoint": p.step}
        exact_grad = truth(model, p.params, q_logits, x)
        groups += [{"base": base, "spec": spec, "est": est, "S": s, "tau": None, "checkpoint": p.step,
                    "model_grad": model_grad, "truth": exact_grad,
                    "stateful": bool(getattr(est, "stateful", False) and warmup)}
                   for _, spec, est in pairs for s in samples if s >= getattr(est, "min_samples", 1)]
    last = problems[-1]
    n_variance = len(groups)
    if swept:
        q_logits = last.q_logits(x)
        base = {"model": model, "x": x, "reps": reps, "seed": seed, "warmup": warmup, "params": last.params,
                "q_logits": q_logits, "checkpoint": last.step}
        exact_grad = truth(model, last.params, q_logits, x)
        for spec in swept:
            for tau in taus:
                est = build(_with_tau(spec, tau))
                groups.append({"base": base, "spec": spec, "est": est, "S": tau_samples, "tau": tau,
                               "checkpoint": last.step, "model_grad": False, "truth": exact_grad,
                               "stateful": False})
    rows = _measure_all(groups, jobs, progress)
    results = {"variance": frame(rows[:n_variance], COLUMNS, title="Gradient estimator variance (sum_n ELBO_n)")}
    if swept:
        results["tau"] = frame(rows[n_variance:], COLUMNS,
                               title=f"Relaxed estimators across the temperature (S = {tau_samples})")
    config = {"experiment": "variance", "latent": model.n_latent, "data": data, "hidden": list(model.hidden),
              "n_data": n_data, "estimators": None if estimators is None else [_label(e) for e in estimators],
              "samples": list(samples), "reps": reps,
              "checkpoints": [p.step for p in problems], "taus": taus, "tau_samples": tau_samples, "warmup": warmup,
              "model_grad": model_grad, "train_method": None if run is not None else train_method,
              "learning_rate": None if run is not None else learning_rate, "seed": seed,
              "from_run": None if from_run is None or run is from_run else os.path.abspath(os.fspath(from_run))}
    return Results("variance", config, results, {"params": last.params, "q_params": last.q_params}, model)


def run_tightness(latent=8, data="bars", hidden=(32,), train_steps=300, train_method="exact_elbo",
                  learning_rate=0.01, ks=DEFAULT_KS, iwae_reps=8, sleep_steps=1000, local_restarts=5, seed=0,
                  progress=False, from_run=None):
    """The tightness experiment on a trained model (or a saved run), for training and held-out data.

    Parameters
    ----------
    latent : int, default 8
    data : {"bars", "digits", "model"}, default "bars"
    hidden : tuple of int, default (32,)
    train_steps : int, default 300
        Steps of :func:`vi_lab.inference.fit` (``train_method``, amortized encoder).
    train_method : str, default "exact_elbo"
    learning_rate : float, default 0.01
    ks : sequence of int, default (1, 10, 100, 1000)
    iwae_reps : int, default 8
    sleep_steps : int, default 1000
        Steps of the sleep-phase encoder (:func:`~vi_lab.experiments.sleep_encoder`); 0 skips it.
    local_restarts : int, default 5
    seed : int, default 0
    progress : bool, default False
    from_run : str, path or FitResult, optional
        Measure the model and amortized q of a saved run instead of training (it needs an
        encoder); ``latent``, ``hidden``, ``train_steps``, ``train_method`` and ``learning_rate``
        are then unused, and ``data``/``seed`` must give the run's data.

    Returns
    -------
    Results
        Tables ``tightness`` (per datapoint), ``tightness_summary`` (means per split) and
        ``iwae`` (IWAE against k, per split); parameters of the model, the encoder and the
        sleep-phase encoder.
    """
    seed = as_seed(seed)
    ks = [check_positive_int(k, "ks (each k)") for k in ks]
    if not ks:
        raise ValueError("ks: expected at least one number of importance samples k >= 1")
    iwae_reps = check_positive_int(iwae_reps, "iwae_reps", minimum=2)
    sleep_steps = check_positive_int(sleep_steps, "sleep_steps", minimum=0)
    local_restarts = check_positive_int(local_restarts, "local_restarts")
    run = None if from_run is None else load_run(from_run)
    x_train, x_valid = load_data(data, latent, seed)
    if run is None:
        model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
        train_steps = check_positive_int(train_steps, "train_steps", 0)
    else:
        model = run.model
        problem = problem_from_run(run, x_train, x_valid)
        if run.family is None or not getattr(run.family, "amortized", False):
            raise ValueError(f"from_run: the run (method {run.method!r}) has no amortized encoder; tightness "
                             f"compares an encoder's ELBO on training and held-out data")
    check_iwae_size(model, ks)
    # ------------------------------------------------------------------ the work
    if run is None:
        problem, = train_checkpoints(model, x_train, x_valid, [train_steps], method=train_method,
                                     learning_rate=learning_rate, rng=seed, progress=progress)
    x = onp.concatenate([x_train, x_valid])
    split = ["train"] * x_train.shape[0] + ["valid"] * x_valid.shape[0]
    ws_logits, ws_params = None, None
    if sleep_steps:
        family, ws_params = sleep_encoder(model, problem.params, steps=sleep_steps, rng=seed, progress=progress)
        ws_logits = onp.asarray(family.logits(ws_params, x, None))
    table = tightness(model, problem.params, x, problem.q_logits(x), ws_logits, ks=ks, iwae_reps=iwae_reps,
                      split=split, rng=seed, local_restarts=local_restarts, progress=progress)
    config = {"experiment": "tightness", "latent": model.n_latent, "data": data, "hidden": list(model.hidden),
              "train_steps": problem.step, "train_method": None if run is not None else train_method,
              "learning_rate": None if run is not None else learning_rate, "ks": list(ks), "iwae_reps": iwae_reps,
              "sleep_steps": sleep_steps, "local_restarts": local_restarts, "seed": seed,
              "from_run": None if from_run is None or run is from_run else os.path.abspath(os.fspath(from_run))}
    tables = {"tightness": table, "tightness_summary": tightness_summary(table), "iwae": iwae_curve(table)}
    params = {"params": problem.params, "q_params": problem.q_params, "sleep_q_params": ws_params}
    return Results("tightness", config, tables, params, model)


def variance_summary(table, n_samples=None):
    """A compact view of a variance table at one S (default: the middle one), for the terminal.

    Returns
    -------
    pandas.DataFrame
        ``estimator, S, unbiased, var_q, var_q_x_cost, bias2_q, bias2_q_se, snr_q_global, evals,
        ms`` at the last checkpoint, sorted by variance at equal cost (``ms``: wall-clock
        milliseconds per estimate).
    """
    if "checkpoint" in table.columns and len(table):
        table = table[table["checkpoint"] == table["checkpoint"].max()]
    sizes = sorted(table["S"].unique().tolist())
    if n_samples is None:
        n_samples = sizes[len(sizes) // 2]
    sub = table[table["S"] == n_samples]
    out = pd.DataFrame({c: sub[c].to_numpy() for c in ("estimator", "S", "unbiased", "var_q", "var_q_x_cost",
                                                       "bias2_q", "bias2_q_se", "snr_q_global", "evals")})
    out["ms"] = 1e3 * sub["seconds"].to_numpy()
    out = out.sort_values("var_q_x_cost", kind="stable", na_position="last").reset_index(drop=True)
    return frame(out, list(out.columns),
                 title=f"q-gradient at S = {n_samples} (sorted by variance x cost; bias2 in nats^2)")


def compare(seed=0, samples=(1, 10, 100), reps=100, n_data=30, train_steps=300, taus=(0.1, 0.5, 2.0),
            ks=DEFAULT_KS, iwae_reps=8, sleep_steps=1000, estimators=None, progress=False, jobs=1):
    """The main job: a small variance study and the tightness study on the embedded default data.

    On the default problem (4x4 bars and stripes with 5% noise, K = 8 binary latents, decoder
    with 32 tanh units; :func:`vi_lab.data.default`), trained for ``train_steps`` steps of exact
    ELBO ascent with an amortized encoder:

    1. every registered Bernoulli estimator (plus rloo) at S in ``samples``, ``reps``
       independent estimates each, against the exact gradient; plus the temperature sweep;
    2. log p(x), the amortized, best mean-field and sleep-phase ELBOs, their gaps and IWAE
       bounds for every training and held-out datapoint.

    Parameters
    ----------
    seed : int, default 0
    samples, reps, n_data, taus, estimators
        As in :func:`run_variance` (smaller defaults).
    train_steps, ks, iwae_reps, sleep_steps
        As in :func:`run_tightness`.
    progress : bool, default False
    jobs : int or None, default 1
        Processes for the variance cells (see :func:`run_variance`).

    Returns
    -------
    Results
        Tables ``summary`` (the terminal view), ``variance``, ``tau``, ``tightness``,
        ``tightness_summary``, ``iwae``; the trained model's parameters.

    Notes
    -----
    Designed to finish in well under two minutes on a 2-core laptop (see
    ``benchmarks/bench_experiments.py``).
    """
    seed = as_seed(seed)
    # the tightness half is checked before the variance half starts, so a mistake costs no time
    ks = [check_positive_int(k, "ks (each k)") for k in ks]
    check_positive_int(iwae_reps, "iwae_reps", minimum=2)
    check_positive_int(sleep_steps, "sleep_steps", minimum=0)
    check_positive_int(train_steps, "train_steps", minimum=0)
    check_iwae_size(make_model(8, 16, (32,)), ks)
    var = run_variance(latent=8, data="bars", n_data=n_data, estimators=estimators, samples=samples, reps=reps,
                       checkpoints=(train_steps,), taus=taus, seed=seed, progress=progress, jobs=jobs)
    tight = run_tightness(latent=8, data="bars", train_steps=train_steps, ks=ks, iwae_reps=iwae_reps,
                          sleep_steps=sleep_steps, seed=seed, progress=progress)
    tables = {"summary": variance_summary(var["variance"])}
    tables.update(var)
    tables.update(tight)
    config = {"experiment": "compare", "seed": seed, "variance": var.config, "tightness": tight.config}
    params = dict(tight.params)
    return Results("compare", config, tables, params, tight.model)
