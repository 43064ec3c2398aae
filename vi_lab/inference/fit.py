"""The training loop shared by every method: :func:`fit`."""
import json
import numbers
import time

import numpy as onp

from .. import exact, quadrature
from .. import gaussian as _gaussian
from .._tree import tree_sq_norm
from .._validation import check_bool, check_binary, check_rng, check_positive_int, check_finite_tree, check_params
from ..optimizers import Adam, SGD, as_schedule
from ..variational import MeanField, Encoder, GaussianEncoder
from ..gaussian import GaussianMeanField
from .methods import METHODS, q_of
from .result import FitResult

__all__ = ["fit"]

_OPTIMIZERS = {"adam": Adam, "sgd": SGD, "plain_sgd": lambda schedule: SGD(schedule, mass=0.0)}

#: Default k of the IWAE estimate recorded for Gaussian latents with K > 2 (no quadrature there).
RECORD_IWAE_K = 1000
#: Gauss-Hermite nodes per axis of the recorded quadrature ELBO (Gaussian latents), by K. The nodes
#: sit on q, so fewer suffice than for log p(x) (whose nodes sit on the prior): measured on digits
#: decoders (L = 64, hidden 32, weight scale 1..3) against 120 nodes, the K = 2 error at 32 nodes is
#: <= 2e-4 nats for sigma = 1 and < 4e-6 for sigma <= e^-1, at a quarter of the default's cost.
RECORD_ELBO_NODES = {1: 100, 2: 32}


class _Context:
    """What a method's gradient function needs besides the parameters."""

    def __init__(self, model, x, family, estimator, n_samples, options):
        self.model, self.x, self.family = model, x, family
        self.estimator, self.n_samples, self.options = estimator, n_samples, options


# ---------------------------------------------------------------------------- argument checks
def get_method(method):
    """The registered :class:`~vi_lab.inference.methods.Method` called ``method``."""
    if method not in METHODS:
        raise ValueError(f"method: unknown method {method!r}; expected one of {sorted(METHODS)}")
    return METHODS[method]


def _latent(model):
    return getattr(model, "latent", "bernoulli")


def _describe(model):
    return f"the {type(model).__name__} passed ({_latent(model)} latents)"


def check_method_applies(method, model):
    """Raise a ValueError, naming the model, when ``method`` cannot train ``model``."""
    latent = _latent(model)
    if latent not in method.latents:
        raise ValueError(f"method: {method.name!r} does not apply to {_describe(model)}; it trains models with "
                         f"{' or '.join(method.latents)} latents")
    if latent == "gaussian" and method.name in ("exact_ml", "exact_elbo") \
            and model.n_latent > quadrature.MAX_QUADRATURE_LATENT:
        raise ValueError(f"method: {method.name!r} for {_describe(model)} uses Gauss-Hermite quadrature, which "
                         f"needs K <= {quadrature.MAX_QUADRATURE_LATENT}, got K = {model.n_latent}; use "
                         f"'amortized' with estimator='reparam' (or 'reweighted_wake_sleep')")


def resolve_estimator(method, estimator, n_samples, model=None):
    """Turn the ``estimator`` argument into an estimator object (or None) for ``method`` and ``model``."""
    latent = "bernoulli" if model is None else _latent(model)
    if not method.uses_estimator:
        if estimator is not None:
            raise ValueError(f"estimator: method {method.name!r} does not use a plug-in gradient estimator "
                             f"({method.summary}); leave estimator=None")
        return None
    if estimator is None:
        estimator = method.default_estimators.get(latent) or method.default_estimator
    if isinstance(estimator, str):
        try:
            from .. import estimators as registry
        except ImportError as exc:
            raise ValueError(f"estimator: cannot look up {estimator!r} because vi_lab.estimators is not "
                             f"importable ({exc}); pass an estimator object instead") from exc
        estimator = registry.get(estimator)
    if not callable(estimator):
        raise ValueError(f"estimator: expected a registered name or an estimator object "
                         f"est(model, params, q_logits, x, n_samples, rng), got {type(estimator).__name__}")
    est_latent = getattr(estimator, "latent", "bernoulli")
    if est_latent != latent:
        from .. import estimators as registry
        who = _describe(model) if model is not None else "a BernoulliLVM (bernoulli latents)"
        raise ValueError(f"estimator: {getattr(estimator, 'name', estimator)!r} is for {est_latent} latents "
                         f"but the model is {who}; use one of {registry.names(latent)}")
    needed = int(getattr(estimator, "min_samples", 1))
    if n_samples < needed:
        raise ValueError(f"n_samples: estimator {getattr(estimator, 'name', '?')!r} needs n_samples >= {needed}, "
                         f"got {n_samples}")
    return estimator


#: family class -> (kind, latent type)
_FAMILY_KINDS = {MeanField: ("mean_field", "bernoulli"), Encoder: ("encoder", "bernoulli"),
                 GaussianMeanField: ("mean_field", "gaussian"), GaussianEncoder: ("encoder", "gaussian")}


def resolve_family(method, family, model, x):
    """Build or check the variational family for ``method``, ``model`` and data ``x`` (N, L)."""
    if not method.families:
        if family is not None:
            raise ValueError(f"family: method {method.name!r} has no variational family; leave family=None")
        return None
    latent = _latent(model)
    if family is None:
        family = method.default_family
    if isinstance(family, str):
        builders = {("mean_field", "bernoulli"): lambda: MeanField(x.shape[0], model.n_latent),
                    ("encoder", "bernoulli"): lambda: Encoder(model.n_obs, model.n_latent),
                    ("mean_field", "gaussian"): lambda: GaussianMeanField(x.shape[0], model.n_latent),
                    ("encoder", "gaussian"): lambda: GaussianEncoder(model.n_obs, model.n_latent)}
        if (family, latent) not in builders:
            raise ValueError(f"family: unknown family {family!r}; expected 'mean_field', 'encoder' "
                             f"or a family object (MeanField, Encoder, GaussianMeanField, GaussianEncoder)")
        family = builders[(family, latent)]()
    kind, family_latent = _FAMILY_KINDS.get(type(family), (None, None))
    if kind is None:
        raise ValueError(f"family: expected a MeanField, Encoder, GaussianMeanField or GaussianEncoder object, "
                         f"got {type(family).__name__}")
    if family_latent != latent:
        want = "GaussianMeanField or GaussianEncoder" if latent == "gaussian" else "MeanField or Encoder"
        raise ValueError(f"family: {family!r} is a {family_latent} family but the model is {_describe(model)}; "
                         f"use a {want} (or family='mean_field' / 'encoder')")
    if kind not in method.families:
        raise ValueError(f"family: method {method.name!r} needs a {' or '.join(method.families)} family, "
                         f"got {family!r}")
    if family.n_latent != model.n_latent:
        raise ValueError(f"family: {family!r} has n_latent = {family.n_latent} but the model has "
                         f"K = {model.n_latent}; they must match")
    if kind == "mean_field" and family.n_data != x.shape[0]:
        raise ValueError(f"family: {family!r} has one row per datapoint ({family.n_data} rows) but x has "
                         f"{x.shape[0]} rows; build {type(family).__name__}(n_data={x.shape[0]}, "
                         f"n_latent={model.n_latent})")
    if kind == "encoder" and family.n_obs != model.n_obs:
        raise ValueError(f"family: {family!r} takes inputs of width {family.n_obs} but the model has "
                         f"L = {model.n_obs}; they must match")
    return family


def _check_like(given, template, name):
    """``given`` must be a nested dict with exactly the keys and shapes of ``template``; copy it."""
    def walk(g, t, path):
        if isinstance(t, dict):
            if not isinstance(g, dict) or set(g) != set(t):
                got = sorted(g) if isinstance(g, dict) else type(g).__name__
                raise ValueError(f"{path}: expected a dict with keys {sorted(t)}, got {got}")
            return {k: walk(g[k], t[k], f"{path}[{k!r}]") for k in t}
        arr = onp.array(g, dtype=float)
        if arr.shape != onp.shape(t):
            raise ValueError(f"{path}: expected shape {onp.shape(t)}, got {arr.shape}")
        return arr
    out = walk(given, template, name)
    check_finite_tree(out, name)
    return out


def _estimator_config(est):
    """Name and options of an estimator, JSON-serializable (for saved runs)."""
    if est is None:
        return None
    out = {"name": getattr(est, "name", type(est).__name__)}
    config = getattr(est, "config", None)
    try:
        options = dict(config()) if callable(config) else {}
        json.dumps(options)
        out.update(options)
    except (TypeError, ValueError):
        out["repr"] = repr(est)
    return out


class _Batches:
    """Mini-batch indices: shuffled epochs, each batch exactly ``size`` distinct rows."""

    def __init__(self, n, size, rng):
        self.n, self.size, self.rng = n, size, rng
        self.order, self.pos = None, n

    def next(self):
        if self.size == self.n:
            return onp.arange(self.n)
        if self.pos + self.size > self.n:                   # drop the ragged end, reshuffle
            self.order, self.pos = self.rng.permutation(self.n), 0
        idx = self.order[self.pos:self.pos + self.size]
        self.pos += self.size
        return onp.sort(idx)


def _restrict(ctx, rows):
    """A context whose data are the rows ``rows`` (sorted ints) of the training set, or ``ctx`` for all."""
    if rows is None:
        return ctx
    return _Context(ctx.model, ctx.x[rows], ctx.family, ctx.estimator, ctx.n_samples, ctx.options)


def _q_of(family, q_params, x, rows):
    """q's parameters for the rows ``rows`` of the training set (all rows when None)."""
    if family is None:
        return None
    return q_of(family, q_params, x, rows)


def _record_gaussian(ctx, params, q, x, x_valid, q_valid, iwae_k, rng):
    """Gaussian latents: quadrature columns for K <= 2, IWAE estimates (named as such) for K > 2."""
    model, row = ctx.model, {}
    if model.n_latent <= quadrature.MAX_QUADRATURE_LATENT:
        log_px = float(onp.mean(quadrature.gaussian_log_marginal(model, params, x)))
        row["log_px_train"] = log_px
        if x_valid is not None:
            row["log_px_valid"] = float(onp.mean(quadrature.gaussian_log_marginal(model, params, x_valid)))
        if q is not None:
            elbo = float(onp.mean(quadrature.gaussian_elbo(model, params, q, x,
                                                          n_nodes=RECORD_ELBO_NODES[model.n_latent])))
            row["elbo_exact"], row["kl_gap"] = elbo, log_px - elbo
        return row
    # no quadrature: a large-k IWAE estimate with q as the proposal (a lower bound on log p(x))
    if q is None:
        return row
    iw, iw_se, el, el_se = _gaussian.iwae_estimate(model, params, q, x, iwae_k, rng, return_se=True,
                                                   return_elbo=True)
    n = x.shape[0]
    row["log_px_train_iwae"] = float(onp.mean(iw))
    row["log_px_train_iwae_se"] = float(onp.sqrt(onp.sum(iw_se ** 2)) / n)
    row["elbo_mc"] = float(onp.mean(el))
    row["elbo_mc_se"] = float(onp.sqrt(onp.sum(el_se ** 2)) / n)
    row["kl_gap_iwae"] = row["log_px_train_iwae"] - row["elbo_mc"]
    if q_valid is not None:
        iv, iv_se = _gaussian.iwae_estimate(model, params, q_valid, x_valid, iwae_k, rng, return_se=True)
        row["log_px_valid_iwae"] = float(onp.mean(iv))
        row["log_px_valid_iwae_se"] = float(onp.sqrt(onp.sum(iv_se ** 2)) / x_valid.shape[0])
    return row


def _record(ctx, method, params, q_params, x_valid, record_exact, rng, rows=None, iwae_k=RECORD_IWAE_K):
    """The exact and Monte Carlo summaries of the current parameters (one history row).

    The ``*_train`` columns and ``objective`` average over the training rows ``rows`` (all
    of them when None, the fixed evaluation subset of ``fit(eval_size=...)`` otherwise).
    """
    sub = _restrict(ctx, rows)
    row = {}
    logits = _q_of(ctx.family, q_params, sub.x, rows)
    if record_exact and getattr(ctx.model, "latent", "bernoulli") == "gaussian":
        q_valid = None
        if x_valid is not None and ctx.family is not None and ctx.family.amortized:
            q_valid = _q_of(ctx.family, q_params, x_valid, None)
        row.update(_record_gaussian(ctx, params, logits, sub.x, x_valid, q_valid, iwae_k, rng))
    elif record_exact:
        log_px = float(onp.mean(exact.log_marginal(ctx.model, params, sub.x)))
        row["log_px_train"] = log_px
        if x_valid is not None:
            row["log_px_valid"] = float(onp.mean(exact.log_marginal(ctx.model, params, x_valid)))
        if logits is not None:
            elbo = float(onp.mean(exact.elbo(ctx.model, params, logits, sub.x)))
            row["elbo_exact"], row["kl_gap"] = elbo, log_px - elbo
    row["objective"] = method.objective(sub, params, q_params, logits, rng)
    if rows is not None:
        row["n_eval"] = int(sub.x.shape[0])
    return row


def _batch_objective(ctx, method, params, q_params, idx, rng):
    """The method's Monte Carlo objective on the current mini-batch (for the progress bar)."""
    sub = _restrict(ctx, idx)
    return method.objective(sub, params, q_params, _q_of(ctx.family, q_params, sub.x, idx), rng)


def _postfix(bar, batch_value, exact_row, exact_step):
    """Progress-bar text: the batch objective of this step, the last exact value and its step."""
    text = {"batch_objective": f"{batch_value:.3f}"}
    if exact_row is not None:
        text["log_px_train"] = f"{exact_row:.3f}@{exact_step}"
    bar.set_postfix(text, refresh=False)


def _record_kind(model, record_exact, iwae_k):
    """How the reference columns are computed (saved in the run's config)."""
    if not record_exact:
        return None
    if getattr(model, "latent", "bernoulli") != "gaussian":
        return {"kind": "enumeration"}
    if model.n_latent <= quadrature.MAX_QUADRATURE_LATENT:
        return {"kind": "quadrature", "n_nodes": quadrature.DEFAULT_NODES[model.n_latent],
                "elbo_nodes": RECORD_ELBO_NODES[model.n_latent]}
    return {"kind": "iwae_estimate", "k": int(iwae_k)}


# ---------------------------------------------------------------------------- the loop
def fit(model, x, method="amortized", estimator=None, n_samples=1, steps=1000, batch_size=None,
        learning_rate=1e-2, x_valid=None, record_every=50, rng=0, progress=True, params=None,
        q_params=None, family=None, optimizer="adam", method_options=None, record_exact=True,
        callback=None, eval_size=None, record_iwae_k=RECORD_IWAE_K, train_model=True):
    """Learn a model (and a variational family) from binary data with one of :data:`METHODS`.

    Parameters
    ----------
    model : BernoulliLVM or GaussianLVM
        For a :class:`~vi_lab.GaussianLVM` (the VAE) q is Gaussian (:class:`~vi_lab.gaussian.GaussianMeanField`
        or :class:`~vi_lab.variational.GaussianEncoder`), the estimators are the Gaussian ones
        ("reparam", default, with its ``stick_the_landing`` and ``objective="iwae"`` options, and
        "gaussian_score_function" with its baselines) and the reference columns come from
        Gauss-Hermite quadrature (K <= 2) or a labelled IWAE estimate (K > 2, see ``record_iwae_k``).
    x : ndarray of shape (N, L), values in {0., 1.}
        Training data.
    method : str, default "amortized"
        One of ``vi_lab.inference.METHODS``: "per_datapoint", "amortized", "wake_sleep",
        "reweighted_wake_sleep", "exact_ml", "exact_elbo".
    estimator : str or estimator object, optional
        Gradient estimator for "per_datapoint" and "amortized" (a name registered in
        :mod:`vi_lab.estimators` or an object ``est(model, params, q_logits, x, n_samples, rng)
        -> (g_params, g_logits)``); default "disarm" (unbiased, low variance, two decoder
        evaluations per draw). Other methods take none. A stateful estimator object (nvil)
        keeps its state across calls and runs: pass a name for a fresh one per run.
    n_samples : int, default 1
        Draws of z per datapoint per step (k of the importance-weighted methods).
    steps : int, default 1000
        Number of parameter updates.
    batch_size : int, optional
        Datapoints per step, drawn without replacement within shuffled epochs; ``None`` or a
        value >= N uses the full data set every step.
    learning_rate : float or callable, default 1e-2
        Step size, or a schedule ``step -> rate`` (see :mod:`vi_lab.optimizers`).
    x_valid : ndarray of shape (N_valid, L), optional
        Held-out data; adds ``log_px_valid`` to the history.
    record_every : int, default 50
        Record the history at steps 0, record_every, 2 record_every, ... and at the last step.
    rng : int or numpy.random.Generator, default 0
        Same seed -> bit-identical parameters and history (except ``wall_time``).
    progress : bool, default True
        Show a tqdm progress bar. Its ``batch_objective`` is the method's Monte Carlo objective
        (the ``objective`` column's estimator) on the current mini-batch, refreshed every step
        with draws from its own random stream (so the bar never changes the trained
        parameters; it costs one extra objective evaluation per step, counted neither in
        ``decoder_evals`` nor ``wall_time``); ``log_px_train`` is the last recorded exact value
        and ``@`` the step it was recorded at.
    params : dict, optional
        Starting model parameters (copied, never modified); default ``model.init_params``.
    q_params : dict, optional
        Starting variational parameters; default ``family.init_params``.
    family : MeanField, Encoder, GaussianMeanField, GaussianEncoder, "mean_field" or "encoder", optional
        Default: a MeanField table for "per_datapoint", ``Encoder(L, K)`` for the others that
        have a q; "exact_ml" has none. For a GaussianLVM the strings build the Gaussian
        counterparts (``GaussianMeanField(N, K)``, ``GaussianEncoder(L, K)``).
    optimizer : {"adam", "sgd", "plain_sgd"}, default "adam"
        Gradient-ascent optimizer; theta and q get separate instances with the same settings.
        "sgd" has momentum 0.9 (an exponential moving average, so its first step is 0.1 *
        learning_rate * g); "plain_sgd" has none: every step is exactly learning_rate * g, the
        setting in which the scale of a gradient is visible.
    method_options : dict, optional
        "wake_sleep": ``n_sleep`` (dreamed pairs per step, default batch size).
        "reweighted_wake_sleep": ``wake_phi`` (default True), ``sleep_phi`` (default False),
        ``n_sleep``.
    record_exact : bool, default True
        Record the exact columns (needs K <= ``exact.MAX_LATENT``).
    callback : callable, optional
        ``callback(result, step)`` after each record, with the run so far as a
        :class:`FitResult`; return True to stop training early.
    record_iwae_k : int, default ``RECORD_IWAE_K`` (1000)
        Gaussian latents with K > 2 only (no quadrature there): k of the IWAE estimate recorded
        instead of the exact columns. The columns are then named as estimates:
        ``log_px_train_iwae`` and ``log_px_train_iwae_se`` (and ``log_px_valid_iwae(_se)`` with an
        encoder and ``x_valid``), ``elbo_mc`` and ``elbo_mc_se`` (the ELBO from the same draws) and
        ``kl_gap_iwae`` = log_px_train_iwae - elbo_mc; never ``log_px_train``. See
        :func:`vi_lab.gaussian.iwae_estimate` for what the standard error does and does not cover.
    train_model : bool, default True
        False holds the model parameters at ``params`` and trains only q: variational inference
        for a given model (the model gradient is then not computed; ``grad_norm`` covers q only).
    eval_size : int, optional
        Evaluate the ``*_train`` columns and ``objective`` on a fixed subset of the training
        data instead of all N rows (cheaper records on large data sets): the first
        ``eval_size`` entries of one permutation of range(N) drawn once, at the start, from the
        recording random stream (so the training stream, and the trained parameters, do not
        depend on it). The rows are the same at every record; ``config["eval_rows"]`` lists
        them (sorted) and the history gains a column ``n_eval`` (rows each record averaged
        over). ``None`` or a value >= N evaluates on all N rows (no permutation drawn, no
        ``n_eval`` column, ``config["eval_rows"] = None``).

    Returns
    -------
    FitResult
        ``.params``, ``.q_params``, ``.history`` (columns listed in :class:`FitResult`),
        ``.family``, ``.model``, ``.method``, ``.config``, ``.interrupted``.

    Notes
    -----
    Each step ascends, on a mini-batch B (theta: model, phi: q's parameters, psi = logits):

    - ``per_datapoint``, ``amortized``: the ELBO, E_q[log p(x, z) - log q(z|x)]; theta and psi
      gradients from the estimator; for an encoder d/dphi = (d psi/d phi)^T g_psi (chain rule).
    - ``exact_elbo``: the same with the exact gradient (sum over all 2**K states).
    - ``exact_ml``: log p(x), gradient E_{p(z|x)}[d log p(x, z)/d theta] (Fisher's identity).
    - ``wake_sleep``: theta along d log p(x, z)/d theta with z ~ q(z|x) (wake); phi along
      d log q(z|x)/d phi with (z, x) ~ p_theta (sleep), which is not the ELBO's phi-gradient.
    - ``reweighted_wake_sleep``: with k = n_samples draws z_i ~ q(z|x) and normalized weights
      wbar_i proportional to p(x, z_i) / q(z_i|x): theta along sum_i wbar_i d log p(x, z_i)/d theta
      (the IWAE gradient), phi along sum_i wbar_i d log q(z_i|x)/d phi (wake-phi) and/or the
      sleep direction (sleep-phi; both on: their average).

    Global parameters get the gradient of the batch *mean*; MeanField rows get the gradient of
    their own datapoint's objective, and only the batch rows are updated. See
    :mod:`vi_lab.inference.methods` for each gradient function. KeyboardInterrupt (Ctrl-C) stops the
    loop and returns the run so far with ``interrupted=True``. The random streams for
    initialization, training and recording are separate, so changing ``record_every`` does
    not change the trained parameters.

    Reproducibility: the same arguments (seed included) with the same BLAS thread count
    (``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``), library versions and machine give a
    bit-for-bit identical result: every ``history`` column except ``wall_time``, and the
    parameters. With another thread count BLAS may sum in another order, so the numbers agree to
    round-off: within 1e-12 (relative) on the tested runs (tests/test_reproducibility.py); a long
    run can amplify round-off like any chaotic iteration. For bit-for-bit results whatever the
    thread settings, pin BLAS to one thread (``threadpoolctl.threadpool_limits(1)``), as the
    command line does.
    """
    m = get_method(method)
    check_method_applies(m, model)
    x = check_binary(x, model.n_obs, "x")
    if x_valid is not None:
        x_valid = check_binary(x_valid, model.n_obs, "x_valid")
    progress = check_bool(progress, "progress")
    record_exact = check_bool(record_exact, "record_exact")
    train_model = check_bool(train_model, "train_model")
    n_samples = check_positive_int(n_samples, "n_samples")
    steps = check_positive_int(steps, "steps", minimum=0)
    batch_size = x.shape[0] if batch_size is None else min(check_positive_int(batch_size, "batch_size"), x.shape[0])
    record_every = max(steps, 1) if record_every is None else check_positive_int(record_every, "record_every")
    if eval_size is not None:
        eval_size = check_positive_int(eval_size, "eval_size")
    options = m.check_options(method_options)
    if options.get("n_sleep") is not None:
        check_positive_int(options["n_sleep"], "method_options['n_sleep']")
    if m.name == "reweighted_wake_sleep" and not (options["wake_phi"] or options["sleep_phi"]):
        raise ValueError("method_options: reweighted_wake_sleep needs wake_phi or sleep_phi (or both) to be True")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer: unknown optimizer {optimizer!r}; expected one of {sorted(_OPTIMIZERS)}")
    schedule = as_schedule(learning_rate)
    gaussian_latents = getattr(model, "latent", "bernoulli") == "gaussian"
    record_iwae_k = check_positive_int(record_iwae_k, "record_iwae_k")
    if not gaussian_latents and (m.name in ("exact_ml", "exact_elbo") or record_exact):
        exact.check_enumerable(model.n_latent, x.shape[0], model.n_obs)
    family = resolve_family(m, family, model, x)
    if options.get("sleep_phi") and not family.amortized:
        raise ValueError("family: the sleep phase needs an amortized Encoder (a MeanField table has no q for "
                         "dreamed x); use family='encoder' or method_options={'sleep_phi': False}")
    est = resolve_estimator(m, estimator, n_samples, model)
    seed = int(rng) if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) else None
    rng = check_rng(rng)
    seeds = rng.integers(0, 2 ** 63, size=3)
    init_rng, train_rng, record_rng = (onp.random.default_rng(s) for s in seeds)
    # the progress bar's draws: a stream of their own, so showing the bar changes nothing else
    bar_rng = onp.random.default_rng([int(seeds[2]), 1])
    eval_rows = None
    if eval_size is not None and eval_size < x.shape[0]:
        eval_rows = onp.sort(record_rng.permutation(x.shape[0])[:eval_size])

    template = model.init_params(init_rng)
    params = template if params is None else _check_like(check_params(model, params), template, "params")
    if family is not None:
        q_template = family.init_params(init_rng)
        q_params = q_template if q_params is None else _check_like(q_params, q_template, "q_params")
    elif q_params is not None:
        raise ValueError(f"q_params: method {m.name!r} has no variational family; leave q_params=None")

    ctx = _Context(model, x, family, est, n_samples, options)
    ctx.train_model = bool(train_model)
    opt = _OPTIMIZERS[optimizer](schedule)
    theta_state = opt.init(params)
    q_state = opt.init(q_params) if family is not None else None
    config = {
        "method": m.name, "estimator": _estimator_config(est),
        "n_samples": n_samples, "steps": steps, "batch_size": batch_size, "optimizer": opt.config(),
        "record_every": record_every, "rng": seed, "method_options": options, "record_exact": bool(record_exact),
        "n_train": int(x.shape[0]), "n_valid": None if x_valid is None else int(x_valid.shape[0]),
        "eval_size": None if eval_rows is None else int(eval_size),
        "eval_rows": None if eval_rows is None else [int(i) for i in eval_rows],
        "model": model.config(), "family": None if family is None else family.config(),
        "record": _record_kind(model, record_exact, record_iwae_k), "train_model": bool(train_model),
    }
    columns = {}
    batches = _Batches(x.shape[0], batch_size, train_rng)
    train_time, evals, interrupted = 0.0, 0, False

    def snapshot():
        hist = {k: onp.asarray(v) for k, v in columns.items()}
        return FitResult(model, params, q_params, family, hist, m.name, config, interrupted)

    from tqdm import tqdm
    bar = tqdm(total=steps, disable=not progress, desc=f"fit {m.name}", unit="step", leave=False)
    last_exact, last_exact_step = None, None
    try:
        for step in range(steps + 1):
            start = time.perf_counter()
            idx = batches.next()
            g_params, g_q, n_evals = m.gradient(ctx, params, q_params, idx, train_rng)
            sq_norm = (0.0 if g_params is None else tree_sq_norm(g_params)) + (0.0 if g_q is None else tree_sq_norm(g_q))
            if not onp.isfinite(sq_norm):
                raise ValueError(f"learning_rate: the gradient became non-finite at step {step} (the run "
                                 f"diverged); try a smaller learning_rate (now {schedule(step)!r}) or more n_samples")
            train_time += time.perf_counter() - start
            if step % record_every == 0 or step == steps:
                row = {"step": step, "wall_time": train_time, "decoder_evals": evals}
                row.update(_record(ctx, m, params, q_params, x_valid, record_exact, record_rng, eval_rows,
                                   record_iwae_k))
                row["grad_norm"] = float(onp.sqrt(sq_norm))
                for key, value in row.items():
                    columns.setdefault(key, []).append(value)
                if "log_px_train" in row:
                    last_exact, last_exact_step = row["log_px_train"], step
                if callback is not None and callback(snapshot(), step):
                    break
            if step == steps:
                break
            start = time.perf_counter()
            if train_model:
                new_params, new_theta_state = opt.update(params, g_params, theta_state)
            else:
                new_params, new_theta_state = params, dict(theta_state, step=theta_state["step"] + 1)
            if family is not None:
                rows = None if family.amortized else idx
                new_q, new_q_state = opt.update(q_params, g_q, q_state, rows=rows)
            else:
                new_q, new_q_state = None, None
            # one assignment, so an interrupt never leaves theta and phi from different steps
            params, q_params, theta_state, q_state = new_params, new_q, new_theta_state, new_q_state
            evals += n_evals
            train_time += time.perf_counter() - start
            if progress:
                _postfix(bar, _batch_objective(ctx, m, params, q_params, idx, bar_rng), last_exact, last_exact_step)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    config["steps_done"] = int(theta_state["step"])
    return snapshot()
