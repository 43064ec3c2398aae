"""The work of one study cell, as plain functions run by ``vi_lab.parallel.run_cells``.

- ``train_cell``: train one (grid point, estimator or reference, S, seed) on its decoder-
  evaluation budget, recording exact held-out log p(x) along the way (the learning curve) and
  taking checkpoints at fixed fractions of the run; measure the gradient variance of the estimator
  at its own checkpoints, with the baseline or control it has learned so far.
- ``shared_cell``: measure one estimator's gradient variance at the checkpoints of the shared
  exact_elbo reference run of its grid point and seed (the same parameters and q for every
  estimator: a paired comparison of the estimators themselves).

Random streams: the training run's seed comes from (study seed, data, K, hidden, seed) only, so every
estimator of a grid point starts from the same initialization for the same seed (paired
comparisons); the variance measurements draw from (study seed, cell key). Nothing depends on the
worker or the order the cells run in. Functions return plain data; the parent writes the files.
"""
import copy
import time

import numpy as onp

from ..parallel import cell_seed
from .data import load_split

__all__ = ["train_cell", "shared_cell", "run_seed", "variance_rows", "checkpoint_steps"]


def _int_seed(seed, key):
    return int(cell_seed(seed, key).generate_state(1)[0])


def run_seed(study, cell):
    """The fit seed of a cell: the same for every estimator, S and method of a grid point and seed."""
    return _int_seed(study.seed, {"run": [cell["data"], cell["K"], list(cell["hidden"]), cell["seed"]]})


def variance_rows(study, cell, n_train):
    """Sorted training rows the gradient variance is measured on (the same for every cell of a data set)."""
    rng = onp.random.default_rng(cell_seed(study.seed, {"rows": [cell["data"], cell["K"]]}))
    return onp.sort(rng.permutation(n_train)[:min(study.rows, n_train)])


def checkpoint_steps(study, steps):
    """(record_every, checkpoint steps): the checkpoints lie on the record grid of the run."""
    every = max(1, steps // study.records)
    out = set()
    for fraction in study.checkpoints:
        step = int(round(fraction * steps / every)) * every
        out.add(steps if fraction >= 1.0 or step > steps else step)
    return every, sorted(out)


def _model_and_data(study, cell):
    from ..model import BernoulliLVM

    x_train, x_valid = load_split(cell["data"], cell["K"], study.valid_fraction,
                                  study._split_seed(cell["seed"]))
    model = BernoulliLVM(cell["K"], x_train.shape[1], hidden=tuple(cell["hidden"]))
    return model, x_train, x_valid


def _family(study, cell, model):
    from ..variational import Encoder, MeanField

    if cell["method"] == "exact_ml":
        return None
    if cell["method"] == "per_datapoint":
        x_train = load_split(cell["data"], cell["K"], study.valid_fraction, study._split_seed(cell["seed"]))[0]
        return MeanField(x_train.shape[0], model.n_latent)
    return Encoder(model.n_obs, model.n_latent, hidden=study.encoder_hidden)


def _q_logits(family, q_params, x_train, rows):
    return onp.asarray(family.logits(q_params, x_train[rows], rows))


def _measure(study, cell, model, params, q_logits, x_rows, estimator, step, progress, run, warmup):
    from ..experiments.variance import variance

    seed = _int_seed(study.seed, dict(cell, kind=run, step=int(step)))
    table = variance(model, params, q_logits, x_rows, estimators=[estimator], samples=[cell["S"]],
                     reps=study.reps, rng=seed, checkpoint=int(step), model_grad=study.model_grad, warmup=warmup)
    rows = []
    for rec in table.to_dict("records"):
        rows.append({"run": run, "checkpoint": int(step), "progress": float(progress),
                     "var_q": rec["var_q"], "var_q_x_cost": rec["var_q_x_cost"],
                     "var_model": rec["var_model"], "var_model_x_cost": rec["var_model_x_cost"],
                     "bias2_q": rec["bias2_q"], "bias2_q_se": rec["bias2_q_se"],
                     "snr_q_global": rec["snr_q_global"], "evals": int(rec["evals"]), "seconds": rec["seconds"]})
    return rows


def train_cell(task):
    """Train one cell. ``task = (study, cell)``; returns a dict of plain data and FitResults.

    Returns
    -------
    dict
        ``cell`` (the key), ``steps``, ``record_every``, ``checkpoints`` (list of (step, FitResult)),
        ``run`` (the final FitResult), ``variance`` (rows along the estimator's own run),
        ``n_train``, ``cost_per_step`` (decoder evaluations per batch datapoint per step),
        ``seconds`` (wall time of the whole cell).
    """
    from ..experiments.specs import build
    from ..inference import fit

    study, cell = task
    start = time.perf_counter()
    model, x_train, x_valid = _model_and_data(study, cell)
    steps = study.steps(cell)
    every, ckpts = checkpoint_steps(study, steps)
    reference = cell["S"] is None
    estimator = None if reference else build(cell["estimator"])
    family = _family(study, cell, model)
    snapshots = {}

    def capture(result, step):
        if step in ckpts:
            # the estimator as it is now: its learned baseline or control (nvil, relax) with it
            snapshots[step] = (result, copy.deepcopy(estimator))
        return False

    try:
        result = fit(model, x_train, method=cell["method"], estimator=estimator,
                     n_samples=1 if reference else cell["S"], steps=steps,
                     batch_size=study.batch(cell["data"], cell["K"]), learning_rate=study.learning_rate,
                     x_valid=x_valid, record_every=every, rng=run_seed(study, cell), progress=False,
                     family=family, callback=capture, eval_size=study.eval_size)
    except ValueError as error:              # e.g. a diverging run: name the cell, keep the finished ones
        raise ValueError(f"cell {cell['estimator']} S={cell['S']} seed {cell['seed']} ({cell['data']}, "
                         f"K={cell['K']}): {error}") from None
    if result.interrupted:                   # fit turns Ctrl-C into a partial run; a study keeps whole cells only
        raise KeyboardInterrupt
    # the saved run says which rows it trained on: vi_lab.study.data.load_split(**config["study_data"])
    # (fit shares one config dict among its snapshots, so the checkpoints say it too)
    result.config["study_data"] = {"name": cell["data"], "latent": cell["K"], "valid_fraction": study.valid_fraction,
                                   "split_seed": study._split_seed(cell["seed"])}
    variance = []
    if "variance" in study.measure and not reference:
        rows = variance_rows(study, cell, x_train.shape[0])
        for step in ckpts:
            snap, est = snapshots[step]
            if hasattr(est, "learn"):
                est.learn = False            # measure the baseline as trained so far, do not train it further
            variance += _measure(study, cell, model, snap.params, _q_logits(family, snap.q_params, x_train, rows),
                                 x_train[rows], est, step, step / steps, "own", warmup=0)
    return {"cell": cell, "steps": steps, "record_every": every, "run": result,
            "checkpoints": [(step, snapshots[step][0]) for step in ckpts], "variance": variance,
            "n_train": int(x_train.shape[0]), "cost_per_step": study.cost_per_step(cell),
            "seconds": time.perf_counter() - start}


def shared_cell(task):
    """Variance of one estimator at the shared run's checkpoints. ``task = (study, cell, checkpoints)``.

    ``checkpoints`` is a list of (step, progress, params, q_params, family) of the exact_elbo run of
    the cell's grid point and seed. Stateful estimators start fresh and fit their baseline or control
    for ``study.warmup`` calls at each checkpoint before they are measured.
    """
    study, cell, checkpoints = task
    start = time.perf_counter()
    model, x_train, _ = _model_and_data(study, cell)
    rows = variance_rows(study, cell, x_train.shape[0])
    out = []
    for step, progress, params, q_params, family in checkpoints:
        out += _measure(study, cell, model, params, _q_logits(family, q_params, x_train, rows), x_train[rows],
                        cell["estimator"], step, progress, "shared", warmup=study.warmup)
    return {"cell": cell, "variance": out, "seconds": time.perf_counter() - start}
