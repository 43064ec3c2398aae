"""Which estimator learns best? Train the same model with each, under the same budget.

Every run starts from the same initial model and encoder (same seed), takes the same number
of steps with the same number of samples per datapoint and learning rate, and records the
exact mean log p(x) of the training and held-out data. Reference methods that need no
gradient estimator run alongside: wake-sleep, reweighted wake-sleep, exact ELBO ascent and
exact maximum likelihood (the ceiling).
"""
import numpy as onp

from .._validation import check_positive_int
from .problem import load_data, make_model
from .results import Results
from .specs import as_seed, build, default_specs
from .table import frame

__all__ = ["train_compare", "REFERENCE_METHODS"]

#: Methods of :func:`vi_lab.inference.fit` that use no plug-in estimator, run as references.
REFERENCE_METHODS = ("wake_sleep", "reweighted_wake_sleep", "exact_elbo", "exact_ml")

_HISTORY = [("step", "step"), ("seconds", "wall_time"), ("decoder_evals", "decoder_evals"),
            ("log_px_train", "log_px_train"), ("log_px_valid", "log_px_valid"), ("elbo_train", "elbo_exact"),
            ("objective", "objective")]


def _runs(estimators, methods, n_samples):
    explicit = estimators is not None
    specs = [s for s in default_specs() if s != "exact"] if estimators is None else list(estimators)
    runs = []
    for spec in specs:
        est = build(spec)
        if est.latent != "bernoulli":
            raise ValueError(f"estimators: {spec!r} is for {est.latent} latents; train-compare trains the "
                             f"Bernoulli model")
        if n_samples < est.min_samples:
            if explicit:
                raise ValueError(f"samples: estimator {spec!r} needs S >= {est.min_samples}, got S = {n_samples}; "
                                 f"pass --samples {est.min_samples} or drop {spec!r}")
            continue
        runs.append((spec, "amortized", spec))
    from ..inference import METHODS
    for method in (REFERENCE_METHODS if methods is None else methods):
        if method not in METHODS:
            raise ValueError(f"methods: unknown method {method!r}; expected some of {', '.join(REFERENCE_METHODS)}")
        if METHODS[method].uses_estimator:
            raise ValueError(f"methods: {method!r} takes an estimator; list it under estimators instead")
        runs.append((method, method, None))
    if not runs:
        raise ValueError("estimators/methods: nothing to train; name at least one estimator or method")
    return runs


def train_compare(latent=8, data="bars", hidden=(32,), estimators=None, methods=None, steps=1000, n_samples=2,
                  learning_rate=0.01, batch_size=None, record_every=50, seed=0, progress=False):
    """Learning curves (exact log p(x)) of each estimator and reference method under the same budget.

    Parameters
    ----------
    latent : int, default 8
    data : {"bars", "digits", "model"}, default "bars"
    hidden : tuple of int, default (32,)
    estimators : list of str, optional
        Estimator specifications trained with ``method="amortized"`` (encoder + decoder).
        Default: every registered Bernoulli estimator except exact, plus rloo; those needing more
        than ``n_samples`` samples are then skipped (named explicitly, they raise ValueError).
    methods : list of str, optional
        Reference methods; default wake_sleep, reweighted_wake_sleep, exact_elbo, exact_ml.
    steps : int, default 1000
    n_samples : int, default 2
        Samples per datapoint per step (k of reweighted wake-sleep and VIMCO).
    learning_rate : float, default 0.01
    batch_size : int, optional
        Datapoints per step (default all).
    record_every : int, default 50
    seed : int, default 0
        Same initialization for every run (the seed of :func:`vi_lab.inference.fit`).
    progress : bool, default False

    Returns
    -------
    Results
        pandas.DataFrames ``history`` (long form: ``method, step, seconds, decoder_evals, log_px_train,
        log_px_valid, elbo_train, objective``; seconds are training wall time, excluding the
        exact evaluation) and ``summary`` (per method: final and best held-out log p(x),
        seconds, decoder evaluations), sorted by final training log p(x) (how well each
        method optimizes; the held-out columns show how much of that generalizes). ``params`` holds the
        final model parameters of every run, keyed by run label.

    Notes
    -----
    The budget is equal in steps and samples; the right panel of the figure (wall time) shows
    the cost differences: ARM/DisARM evaluate the decoder twice per sample, REBAR/RELAX three
    times, exact methods 2**K times.
    """
    from tqdm import tqdm
    from ..inference import fit

    seed = as_seed(seed)
    steps = check_positive_int(steps, "steps")
    n_samples = check_positive_int(n_samples, "n_samples")
    record_every = check_positive_int(record_every, "record_every")
    x_train, x_valid = load_data(data, latent, seed)
    model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
    runs = _runs(estimators, methods, n_samples)
    rows, summary, final_params = [], [], {}
    for label, method, spec in tqdm(runs, desc="train-compare", disable=not progress, leave=False):
        est = build(spec) if spec is not None else None
        result = fit(model, x_train, method=method, estimator=est, n_samples=n_samples, steps=steps,
                     batch_size=batch_size, learning_rate=learning_rate, x_valid=x_valid,
                     record_every=record_every, rng=seed, progress=progress)
        if result.interrupted:
            raise KeyboardInterrupt
        h = result.history
        n_rec = len(h["step"])
        for i in range(n_rec):
            row = {"method": label}
            for col, key in _HISTORY:
                row[col] = onp.asarray(h[key])[i].item() if key in h else None
            rows.append(row)
        valid = onp.asarray(h["log_px_valid"], dtype=float)
        summary.append({"method": label, "final_log_px_train": float(h["log_px_train"][-1]),
                        "final_log_px_valid": float(valid[-1]), "best_log_px_valid": float(valid.max()),
                        "best_step": int(h["step"][int(onp.argmax(valid))]), "seconds": float(h["wall_time"][-1]),
                        "decoder_evals": int(h["decoder_evals"][-1])})
        final_params[label] = result.params
    summary.sort(key=lambda r: -r["final_log_px_train"])
    config = {"experiment": "train_compare", "latent": latent, "data": data, "hidden": list(hidden),
              "estimators": None if estimators is None else list(estimators),
              "methods": list(REFERENCE_METHODS if methods is None else methods), "steps": steps,
              "n_samples": n_samples, "learning_rate": learning_rate, "batch_size": batch_size,
              "record_every": record_every, "seed": seed, "runs": [r[0] for r in runs]}
    tables = {"history": frame(rows, ["method"] + [c for c, _ in _HISTORY],
                               title="Training histories (exact mean log p(x) [nats])"),
              "summary": frame(summary, title=f"After {steps} steps, S = {n_samples} (sorted by training log p(x))")}
    # one file, one group per run: load_params(path)["arm"] is the model ARM trained
    params = {"params": final_params}
    return Results("train_compare", config, tables, params, model)
