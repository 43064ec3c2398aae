"""How tight are the bounds? log p(x), the ELBO of several q's, their gaps, and IWAE against k.

For a fixed model every quantity below is exact (enumeration) except the IWAE bounds, which
are Monte Carlo averages with standard errors:

- log p(x);
- ELBO of the amortized q (the trained encoder);
- ELBO of the best mean-field q found per datapoint (:func:`vi_lab.inference.fit_local`);
- ELBO of a wake-sleep encoder: an encoder trained by the sleep phase alone on the same,
  fixed model (Hinton et al. 1995), so it is compared on equal terms;
- IWAE bounds of the amortized q for k = 1, 10, 100, 1000 (Burda et al. 2016).

The approximation gap log p(x) - ELBO(best mean-field q) is the price of the mean-field
family; the amortization gap ELBO(best mean-field q) - ELBO(amortized q) is the price of one
shared encoder (Cremer, Li & Duvenaud 2018). They add up to log p(x) - ELBO(amortized q).
"""
import numpy as onp

from .. import exact, objectives
from .._validation import check_binary, check_positive_int
from .sizes import check_iwae_size
from .specs import as_seed, spec_rng
from .table import frame

__all__ = ["tightness", "tightness_summary", "iwae_curve", "sleep_encoder", "check_iwae_size", "DEFAULT_KS"]

DEFAULT_KS = (1, 10, 100, 1000)


def sleep_encoder(model, params, steps=2000, n_sleep=100, learning_rate=0.01, hidden=(64,), rng=0,
                  progress=False):
    """Train an encoder by the sleep phase of wake-sleep alone, for a fixed model.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
        The fixed model.
    steps : int, default 2000
    n_sleep : int, default 100
        Dreamed pairs (z, x) ~ p_theta per step.
    learning_rate : float, default 0.01
        Adam step size.
    hidden : tuple of int, default (64,)
        Encoder hidden widths.
    rng : int or numpy.random.Generator
    progress : bool

    Returns
    -------
    family : Encoder
    q_params : dict

    Notes
    -----
    Each step ascends (1/n) sum_i d/dphi log q_phi(z_i | x_i) at (z_i, x_i) ~ p_theta
    (:func:`vi_lab.inference.sleep_gradient`), which minimizes E_{p_theta(x)} KL(p(z|x) || q(z|x)),
    the reverse of the KL the ELBO minimizes.
    """
    from tqdm import tqdm
    from ..inference import sleep_gradient
    from ..optimizers import Adam
    from ..variational import Encoder
    from .._validation import check_rng

    rng = check_rng(rng)
    family = Encoder(model.n_obs, model.n_latent, hidden=hidden)
    q_params = family.init_params(rng)
    opt = Adam(learning_rate)
    state = opt.init(q_params)
    for _ in tqdm(range(check_positive_int(steps, "steps")), desc="sleep encoder", disable=not progress,
                  leave=False):
        g = sleep_gradient(model, params, family, q_params, n_sleep, rng)
        q_params, state = opt.update(q_params, g, state)
    return family, q_params


def tightness(model, params, x, q_logits, ws_logits=None, ks=DEFAULT_KS, iwae_reps=8, split=None, rng=0,
              local_restarts=5, progress=False):
    """Per-datapoint exact log p(x), ELBOs of several q's, their gaps, and IWAE bounds.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    x : ndarray of shape (N, L), values in {0., 1.}
    q_logits : ndarray of shape (N, K)
        The amortized q's logits for x.
    ws_logits : ndarray of shape (N, K), optional
        A wake-sleep encoder's logits for x (see :func:`sleep_encoder`); omitted columns are NaN.
    ks : sequence of int, default (1, 10, 100, 1000)
        Importance sample counts of the IWAE bounds.
    iwae_reps : int, default 8
        Independent IWAE draws per datapoint and k (>= 2, for a standard error).
    split : sequence of str of length N, optional
        Label per datapoint (e.g. "train" / "valid") copied into the ``split`` column.
    rng : int
        Seed (each k has its own stream).
    local_restarts : int, default 5
        Restarts of :func:`vi_lab.inference.fit_local`.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        One row per datapoint: ``index, split, log_px, elbo_amortized, elbo_local,
        elbo_wake_sleep, approximation_gap, amortization_gap, wake_sleep_gap`` and, per k,
        ``iwae_{k}`` (mean of the draws) and ``iwae_{k}_se`` (its Monte Carlo standard error).

    Notes
    -----
    log p(x) = ELBO_amortized + approximation_gap + amortization_gap holds to round-off by
    construction; both gaps are >= 0 because the best mean-field q is the better of
    ``fit_local`` (started from the exact posterior marginals and random restarts) and a run of
    ``fit_local`` started from the amortized logits, which can only improve on them.
    E[IWAE_k] is non-decreasing in k and below log p(x) (Burda et al. 2016, Theorem 1).
    """
    from ..inference import fit_local

    x = check_binary(x, model.n_obs, "x")
    exact.check_enumerable(model.n_latent, x.shape[0], model.n_obs)
    n = x.shape[0]
    q_logits = _check_logits(q_logits, (n, model.n_latent), "q_logits")
    ks = [check_positive_int(k, "ks (each k)") for k in ks]
    iwae_reps = check_positive_int(iwae_reps, "iwae_reps", minimum=2)
    check_iwae_size(model, ks)
    seed = as_seed(rng)
    log_px = exact.log_marginal(model, params, x)
    elbo_amortized = exact.elbo(model, params, q_logits, x)
    local = fit_local(model, params, x, n_restarts=local_restarts, rng=seed, progress=progress)
    from_amortized = fit_local(model, params, x, n_restarts=1, init=q_logits, rng=seed)
    elbo_local = onp.maximum(exact.elbo(model, params, local, x), exact.elbo(model, params, from_amortized, x))
    elbo_local = onp.maximum(elbo_local, elbo_amortized)     # the amortized q is a mean-field q too
    columns = {"index": onp.arange(n), "split": list(split) if split is not None else ["data"] * n,
               "log_px": log_px, "elbo_amortized": elbo_amortized, "elbo_local": elbo_local}
    if ws_logits is not None:
        ws_logits = _check_logits(ws_logits, (n, model.n_latent), "ws_logits")
        columns["elbo_wake_sleep"] = exact.elbo(model, params, ws_logits, x)
    else:
        columns["elbo_wake_sleep"] = onp.full(n, onp.nan)
    columns["approximation_gap"] = log_px - elbo_local
    columns["amortization_gap"] = elbo_local - elbo_amortized
    columns["wake_sleep_gap"] = log_px - columns["elbo_wake_sleep"]
    for k in ks:
        draws = _iwae_draws(model, params, x, q_logits, k, iwae_reps, spec_rng(seed, "iwae", k))
        columns[f"iwae_{k}"] = draws.mean(axis=0)
        columns[f"iwae_{k}_se"] = draws.std(axis=0, ddof=1) / onp.sqrt(iwae_reps)
    return frame(columns, title="Bound tightness per datapoint [nats]")


def _check_logits(logits, shape, name):
    logits = onp.asarray(logits, dtype=float)
    if logits.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {logits.shape}")
    return logits


def _iwae_draws(model, params, x, logits, k, reps, rng, max_entries=2 ** 21):
    """(reps, N) independent IWAE_k draws, in blocks so that k x N x L stays bounded."""
    out = onp.empty((reps, x.shape[0]))
    rows = max(1, max_entries // (k * max(model.n_obs, *model.hidden, 1)))
    for r in range(reps):
        for start in range(0, x.shape[0], rows):
            sl = slice(start, start + rows)
            out[r, sl] = onp.asarray(objectives.iwae(model, params, logits[sl], x[sl], k, rng))
    return out


def _groups(table):
    splits = list(dict.fromkeys(table["split"]))
    return [("all", table)] + ([(s, table[table["split"] == s]) for s in splits] if len(splits) > 1 else [])


def tightness_summary(table):
    """Means over datapoints (per split and overall) of every column of a :func:`tightness` table.

    Returns
    -------
    pandas.DataFrame
        Long form, one row per quantity and split: ``quantity, split, mean, se_data, se_mc, n``.

    Notes
    -----
    The two standard errors answer different questions, so they are kept apart:

    - ``se_data``, across datapoints: std_n(v_n) / sqrt(n), how much the mean would change on
      another sample of n datapoints from the same distribution;
    - ``se_mc``, Monte Carlo: sqrt(sum_n se_n^2) / n with se_n the standard error of datapoint
      n's IWAE estimate (``iwae_{k}_se``), how much the mean would change with other random
      draws on the same datapoints. Exact columns (log p(x), ELBOs, gaps) have ``se_mc = 0``.
    """
    rows = []
    quantities = [c for c in table.columns if c not in ("index", "split") and not str(c).endswith("_se")]
    for name, sub in _groups(table):
        n = len(sub)
        for q in quantities:
            values = sub[q].to_numpy(dtype=float)
            if onp.all(onp.isnan(values)):
                continue
            se_data = float(values.std(ddof=1) / onp.sqrt(n)) if n > 1 else onp.nan
            if f"{q}_se" in sub.columns:
                se_mc = float(onp.sqrt(onp.sum(sub[f"{q}_se"].to_numpy(dtype=float) ** 2)) / n)
            else:
                se_mc = 0.0
            rows.append({"quantity": q, "split": name, "mean": float(values.mean()), "se_data": se_data,
                         "se_mc": se_mc, "n": n})
    return frame(rows, ["quantity", "split", "mean", "se_data", "se_mc", "n"],
                 title="Bound tightness, averaged [nats]")


def iwae_curve(table):
    """Mean IWAE bound against k from a :func:`tightness` table, per split, with reference values.

    Returns
    -------
    pandas.DataFrame
        One row per split and k: ``split, k, iwae, iwae_se, iwae_se_data, log_px, elbo_local,
        elbo_amortized`` (means over the datapoints of the split); ``iwae_se`` is the Monte Carlo
        standard error of the mean (the error bars of a curve over fixed datapoints),
        ``iwae_se_data`` the standard error across datapoints.
    """
    ks = sorted(int(c[5:]) for c in table.columns if str(c).startswith("iwae_") and not str(c).endswith("_se"))
    rows = []
    for split in dict.fromkeys(table["split"]):
        sub = table[table["split"] == split]
        n = len(sub)
        for k in ks:
            values = sub[f"iwae_{k}"].to_numpy(dtype=float)
            rows.append({"split": split, "k": k, "iwae": float(values.mean()),
                         "iwae_se": float(onp.sqrt(onp.sum(sub[f"iwae_{k}_se"].to_numpy(dtype=float) ** 2)) / n),
                         "iwae_se_data": float(values.std(ddof=1) / onp.sqrt(n)) if n > 1 else onp.nan,
                         "log_px": float(sub["log_px"].mean()),
                         "elbo_local": float(sub["elbo_local"].mean()),
                         "elbo_amortized": float(sub["elbo_amortized"].mean())})
    return frame(rows, title="IWAE bound against k [nats]")
