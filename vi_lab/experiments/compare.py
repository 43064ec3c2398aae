"""Whole experiments on the default problems: what the ``vi-lab`` subcommands run.

- :func:`run_variance`: train briefly, then :func:`~vi_lab.experiments.variance` (and the
  temperature sweep) at one or more training checkpoints.
- :func:`run_tightness`: train, fit a sleep-phase encoder, then
  :func:`~vi_lab.experiments.tightness` on training and held-out data.
- :func:`compare`: the main job, a small version of both on the embedded default data.

Each returns a :class:`~vi_lab.experiments.results.Results` (name -> pandas.DataFrame) whose ``save``
writes the run directory.
"""
import numpy as onp
import pandas as pd

from .._validation import check_positive_int
from .problem import load_data, make_model, train_checkpoints
from .results import Results
from .specs import as_seed
from .table import frame
from .tightness import DEFAULT_KS, iwae_curve, sleep_encoder, tightness, tightness_summary
from .variance import DEFAULT_SAMPLES, DEFAULT_TAUS, tau_estimators, tau_sweep, variance

__all__ = ["run_variance", "run_tightness", "compare", "variance_summary"]


def run_variance(latent=10, data="bars", hidden=(32,), n_data=30, estimators=None, samples=DEFAULT_SAMPLES,
                 reps=200, checkpoints=(200,), taus=DEFAULT_TAUS, tau_samples=10, warmup=50, model_grad=True,
                 train_method="exact_elbo", learning_rate=0.01, seed=0, progress=False):
    """The variance experiment on a model trained for a short while.

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

    Returns
    -------
    Results
        Tables ``variance`` (one row per checkpoint, estimator and S) and ``tau`` (one row per
        biased relaxed estimator and tau, at the last checkpoint); ``params`` the model at the
        last checkpoint, ``q_params`` its encoder.
    """
    seed = as_seed(seed)
    x_train, x_valid = load_data(data, latent, seed)
    model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
    n_data = min(check_positive_int(n_data, "n_data"), x_train.shape[0])
    problems = train_checkpoints(model, x_train, x_valid, checkpoints, method=train_method,
                                 learning_rate=learning_rate, rng=seed, progress=progress)
    x = x_train[:n_data]
    tables = []
    for p in problems:
        tables.append(variance(model, p.params, p.q_logits(x), x, estimators=estimators, samples=samples, reps=reps,
                               rng=seed, checkpoint=p.step, model_grad=model_grad, warmup=warmup,
                               progress=progress))
    out = frame(pd.concat(tables, ignore_index=True), list(tables[0].columns), tables[0].attrs["title"])
    last = problems[-1]
    results = {"variance": out}
    swept = tau_estimators(estimators)
    if taus and swept:
        results["tau"] = tau_sweep(model, last.params, last.q_logits(x), x, estimators=swept, taus=taus,
                                   n_samples=tau_samples, reps=reps, rng=seed, checkpoint=last.step,
                                   progress=progress)
    config = {"experiment": "variance", "latent": latent, "data": data, "hidden": list(hidden), "n_data": n_data,
              "estimators": None if estimators is None else list(estimators), "samples": list(samples),
              "reps": reps, "checkpoints": sorted(set(int(c) for c in checkpoints)), "taus": list(taus or []),
              "tau_samples": tau_samples, "warmup": warmup, "model_grad": model_grad,
              "train_method": train_method, "learning_rate": learning_rate, "seed": seed}
    return Results("variance", config, results, {"params": last.params, "q_params": last.q_params}, model)


def run_tightness(latent=8, data="bars", hidden=(32,), train_steps=300, train_method="exact_elbo",
                  learning_rate=0.01, ks=DEFAULT_KS, iwae_reps=8, sleep_steps=1000, local_restarts=5, seed=0,
                  progress=False):
    """The tightness experiment on a trained model, for training and held-out data.

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

    Returns
    -------
    Results
        Tables ``tightness`` (per datapoint), ``tightness_summary`` (means per split) and
        ``iwae`` (IWAE against k, per split); parameters of the model, the encoder and the
        sleep-phase encoder.
    """
    seed = as_seed(seed)
    x_train, x_valid = load_data(data, latent, seed)
    model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
    problem, = train_checkpoints(model, x_train, x_valid, [check_positive_int(train_steps, "train_steps", 0)],
                                 method=train_method, learning_rate=learning_rate, rng=seed, progress=progress)
    x = onp.concatenate([x_train, x_valid])
    split = ["train"] * x_train.shape[0] + ["valid"] * x_valid.shape[0]
    ws_logits, ws_params = None, None
    if sleep_steps:
        family, ws_params = sleep_encoder(model, problem.params, steps=sleep_steps, rng=seed, progress=progress)
        ws_logits = onp.asarray(family.logits(ws_params, x, None))
    table = tightness(model, problem.params, x, problem.q_logits(x), ws_logits, ks=ks, iwae_reps=iwae_reps,
                      split=split, rng=seed, local_restarts=local_restarts, progress=progress)
    config = {"experiment": "tightness", "latent": latent, "data": data, "hidden": list(hidden),
              "train_steps": train_steps, "train_method": train_method, "learning_rate": learning_rate,
              "ks": list(ks), "iwae_reps": iwae_reps, "sleep_steps": sleep_steps, "local_restarts": local_restarts,
              "seed": seed}
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
            ks=DEFAULT_KS, iwae_reps=8, sleep_steps=1000, estimators=None, progress=False):
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
    var = run_variance(latent=8, data="bars", n_data=n_data, estimators=estimators, samples=samples, reps=reps,
                       checkpoints=(train_steps,), taus=taus, seed=seed, progress=progress)
    tight = run_tightness(latent=8, data="bars", train_steps=train_steps, ks=ks, iwae_reps=iwae_reps,
                          sleep_steps=sleep_steps, seed=seed, progress=progress)
    tables = {"summary": variance_summary(var["variance"])}
    tables.update(var)
    tables.update(tight)
    config = {"experiment": "compare", "seed": seed, "variance": var.config, "tightness": tight.config}
    params = dict(tight.params)
    return Results("compare", config, tables, params, tight.model)
