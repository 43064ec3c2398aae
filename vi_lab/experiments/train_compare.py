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


def _stopper(patience):
    """An early-stopping callback for fit: stop after ``patience`` records without a better held-out log p(x)."""
    state = {"best": -onp.inf, "best_step": 0, "since": 0, "params": None, "q_params": None, "stopped": None}

    def callback(result, step):
        valid = float(result.history["log_px_valid"][-1])
        if valid > state["best"]:
            state.update(best=valid, best_step=int(step), since=0, params=result.params, q_params=result.q_params)
        else:
            state["since"] += 1
        if patience and state["since"] >= patience:
            state["stopped"] = int(step)
            return True
        return False

    return state, callback


def train_compare(latent=8, data="bars", hidden=(32,), estimators=None, methods=None, steps=1000, n_samples=2,
                  learning_rate=0.01, batch_size=100, record_every=50, seed=0, progress=False,
                  encoder_hidden=(64,), valid_fraction=None, bars_copies=40, patience=5):
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
        Steps of every run (fewer if it stops early).
    n_samples : int, default 2
        Samples per datapoint per step (k of reweighted wake-sleep and VIMCO).
    learning_rate : float, default 0.01
    batch_size : int or None, default 100
        Datapoints per step (None: all).
    record_every : int, default 50
    seed : int, default 0
        Same data, initialization and data order for every run (the seed of :func:`vi_lab.inference.fit`).
    progress : bool, default False
    encoder_hidden : tuple of int, default (64,)
        Hidden widths of the amortized encoder.
    valid_fraction : float in (0, 1), optional
        Held-out fraction (default: that of :func:`~vi_lab.experiments.load_data`).
    bars_copies : int or None, default 40
        For ``data="bars"``: noisy copies of each of the 30 patterns (40: 1200 images, 800 for
        training). The small default data set (6 copies, 120 training images) is memorized within
        a few hundred steps, after which held-out log p(x) falls by 3 nats and the curves compare
        overfitting, not optimization. None keeps the small set; ignored for other data.
    patience : int, default 5
        Early stopping on held-out exact log p(x): a run stops after ``patience`` records without
        improvement (0: never), and its ``params`` are those of its best held-out record.

    Returns
    -------
    Results
        pandas.DataFrames ``history`` (long form: ``method, step, decoder_evals,
        evals_per_datapoint, log_px_train, log_px_valid, elbo_train, objective, seconds``;
        ``decoder_evals`` counts every decoder evaluation spent on gradients, exact methods their
        2**K per datapoint; ``evals_per_datapoint`` divides it by the training set size, the axis
        for comparisons at equal compute; ``seconds`` is training wall time, excluding the exact
        evaluation) and ``summary`` (per method: final and best held-out log p(x), the step of the
        best, the step it stopped at, seconds, decoder evaluations), sorted by final training log p(x).
        ``params`` holds the (best held-out) model parameters of every run, keyed by run label.
        ``config["overfitting_control"]`` says in words how overfitting was kept out, for the figure.

    Notes
    -----
    The budget is equal in steps and samples; decoder evaluations and wall time show the cost
    differences: ARM/DisARM evaluate the decoder twice per sample, REBAR/RELAX three times, exact
    methods 2**K times.
    """
    from tqdm import tqdm
    from ..inference import fit
    from ..variational import Encoder

    seed = as_seed(seed)
    steps = check_positive_int(steps, "steps")
    n_samples = check_positive_int(n_samples, "n_samples")
    record_every = check_positive_int(record_every, "record_every")
    patience = check_positive_int(patience, "patience", minimum=0)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    encoder_hidden = tuple(check_positive_int(h, "encoder_hidden (each layer width)") for h in encoder_hidden)
    x_train, x_valid = load_data(data, latent, seed, valid_fraction=valid_fraction,
                                 bars_copies=bars_copies if data == "bars" else None)
    model = make_model(latent, x_train.shape[1], hidden, x_train.shape[0])
    runs = _runs(estimators, methods, n_samples)
    n_train = x_train.shape[0]
    rows, summary, final_params = [], [], {}
    for label, method, spec in tqdm(runs, desc="train-compare", disable=not progress, leave=False):
        est = build(spec) if spec is not None else None
        family = None if method == "exact_ml" else Encoder(model.n_obs, model.n_latent, hidden=encoder_hidden)
        state, callback = _stopper(patience)
        result = fit(model, x_train, method=method, estimator=est, n_samples=n_samples, steps=steps,
                     batch_size=batch_size, learning_rate=learning_rate, x_valid=x_valid,
                     record_every=record_every, rng=seed, progress=progress, family=family, callback=callback)
        if result.interrupted:
            raise KeyboardInterrupt
        h = result.history
        for i in range(len(h["step"])):
            row = {"method": label}
            for col, key in _HISTORY:
                row[col] = onp.asarray(h[key])[i].item() if key in h else None
            row["evals_per_datapoint"] = row["decoder_evals"] / n_train
            rows.append(row)
        valid = onp.asarray(h["log_px_valid"], dtype=float)
        summary.append({"method": label, "final_log_px_train": float(h["log_px_train"][-1]),
                        "final_log_px_valid": float(valid[-1]), "best_log_px_valid": float(valid.max()),
                        "best_step": int(h["step"][int(onp.argmax(valid))]),
                        "stopped_step": int(h["step"][-1]), "stopped_early": state["stopped"] is not None and state["stopped"] < steps,
                        "decoder_evals": int(h["decoder_evals"][-1]),
                        "evals_per_datapoint": float(h["decoder_evals"][-1]) / n_train,
                        "seconds": float(h["wall_time"][-1])})
        final_params[label] = state["params"] if state["params"] is not None else result.params
    summary.sort(key=lambda r: -r["final_log_px_train"])
    control = []
    if data == "bars" and bars_copies:
        control.append(f"training set of {n_train} noisy images ({bars_copies} copies of each pattern)")
    if patience:
        control.append(f"early stopping on held-out exact log p(x) (patience {patience} records "
                       f"= {patience * record_every} steps)")
    overfitting = ("overfitting control: " + "; ".join(control)) if control else "no overfitting control"
    config = {"experiment": "train_compare", "latent": latent, "data": data, "hidden": list(hidden),
              "estimators": None if estimators is None else list(estimators),
              "methods": list(REFERENCE_METHODS if methods is None else methods), "steps": steps,
              "n_samples": n_samples, "learning_rate": learning_rate, "batch_size": batch_size,
              "record_every": record_every, "encoder_hidden": list(encoder_hidden), "valid_fraction": valid_fraction,
              "bars_copies": bars_copies if data == "bars" else None, "patience": patience, "n_train": n_train,
              "n_valid": int(x_valid.shape[0]), "seed": seed, "runs": [r[0] for r in runs],
              "overfitting_control": overfitting}
    history = frame(rows, ["method"] + [c for c, _ in _HISTORY[:3]] + ["evals_per_datapoint"] +
                    [c for c, _ in _HISTORY[3:]], title="Training histories (exact mean log p(x) [nats])")
    history.attrs["overfitting_control"] = overfitting
    tables = {"history": history,
              "summary": frame(summary, title=f"After at most {steps} steps, S = {n_samples} "
                                              f"(sorted by training log p(x))")}
    # one file, one group per run: load_params(path)["arm"] is the model ARM trained
    params = {"params": final_params}
    return Results("train_compare", config, tables, params, model)
