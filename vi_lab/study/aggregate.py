"""A study's long-form tables, and their aggregation across seeds.

Per-cell tables (tidy, one row per observation):

- ``runs``: one row per trained cell: final held-out (``log_px_valid``) and training exact log p(x),
  steps, decoder evaluations per training datapoint spent.
- ``curves``: one row per record along each run (the learning curves).
- ``variance``: one row per (cell, run, checkpoint): gradient variance of the estimator along its
  own run (``run = "own"``) and along the shared exact_elbo run (``run = "shared"``); ``var_q_x_cost``
  is the variance times the decoder evaluations per datapoint of one estimate (variance at equal cost).

Aggregates across seeds (paired: seed s gives every estimator the same initialization and split):

- ``final``: per (grid point, estimator): mean held-out log p(x) with a 95% Student-t interval across
  seeds, its rank among the estimators of the grid point (1 = best), and ``p_flip_next``: the
  probability that it and the next-ranked estimator swap places, from a paired bootstrap over seeds
  (the fraction of 2000 resamples of the seeds in which the mean paired difference is <= 0).
- ``variance_summary``: per (grid point, estimator, run, checkpoint): geometric mean of the variance
  across seeds with a 95% t interval computed on log10.
- ``correlation``: per grid point and run kind: Spearman's rank correlation between the estimators'
  variance at equal cost (lower first: each seed's mean of log10 var_q_x_cost over the checkpoints)
  and their final held-out log p(x) (higher first). +1: the variance ranking predicts the log p(x)
  ranking exactly. Two 95% intervals: ``rho_lo, rho_hi`` a percentile bootstrap over seeds (how
  stable the two rankings are to the seeds), ``rho_fisher_lo, rho_fisher_hi`` Fisher's z with the
  Spearman variance 1.06 / (n - 3) over the n estimators (how far the correlation generalizes beyond
  these n estimators; wide for n = 8).
- ``summary``: ``final`` in one screen, best first per grid point.

A grid point is (data, K, hidden, method, S); the references (exact_elbo, exact_ml) have no S, are
not ranked, and are listed with every grid point of their (data, K, hidden).
"""
import os

import numpy as onp
import pandas as pd

from ..experiments.table import format_table, frame, write_table
from ..parallel import cell_seed

__all__ = ["tables", "write_tables", "format_summary", "t_interval", "KEY", "GRID", "N_BOOT"]

KEY = ["data", "K", "hidden", "method", "estimator", "S", "seed"]
GRID = ["data", "K", "hidden", "method", "S"]
N_BOOT = 2000


def t_interval(values, level=0.95):
    """(mean, low, high) of a Student-t interval for the mean of ``values`` (NaN bounds for n < 2)."""
    # the t quantile from scipy.special (stdtrit(df, p) = t.ppf(p, df)): importing scipy.stats would
    # add about 0.7 s to the end of every study
    from scipy.special import stdtrit

    v = onp.asarray(values, dtype=float)
    v = v[onp.isfinite(v)]
    if v.size == 0:
        return onp.nan, onp.nan, onp.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, onp.nan, onp.nan
    half = float(stdtrit(v.size - 1, 0.5 + level / 2) * v.std(ddof=1) / onp.sqrt(v.size))
    return mean, mean - half, mean + half


def _key(cell):
    return {"data": cell["data"], "K": cell["K"], "hidden": "x".join(map(str, cell["hidden"])),
            "method": cell["method"], "estimator": cell["estimator"], "S": cell["S"], "seed": cell["seed"]}


def _last(history, name):
    values = history.get(name)
    return float(values[-1]) if values else onp.nan


def _runs_and_curves(study, records):
    runs, curves, variance = [], [], []
    for rec in records["train"]:
        key, hist, n = _key(rec["key"]), rec["history"], rec["n_train"]
        reference = rec["key"]["S"] is None
        runs.append(dict(key, reference=reference, equal_budget=not (reference and study.reference_steps),
                         steps=rec["steps"], cost_per_step=rec["cost_per_step"],
                         evals_per_datapoint=_last(hist, "decoder_evals") / n,
                         log_px_valid=_last(hist, "log_px_valid"), log_px_train=_last(hist, "log_px_train"),
                         elbo_exact=_last(hist, "elbo_exact"), wall_time=_last(hist, "wall_time"),
                         seconds=rec["seconds"]))
        for i, step in enumerate(hist["step"]):
            curves.append(dict(key, step=step, progress=step / rec["steps"],
                               evals_per_datapoint=hist["decoder_evals"][i] / n,
                               **{c: hist[c][i] if c in hist else onp.nan
                                  for c in ("log_px_valid", "log_px_train", "elbo_exact")},
                               wall_time=hist["wall_time"][i]))
        variance += [dict(key, **row) for row in rec["variance"]]
    for rec in records["shared"]:
        variance += [dict(_key(rec["key"]), **row) for row in rec["variance"]]
    order = {"run": ["own", "shared"]}
    runs = frame(runs, title=f"Study {study.name}: one row per trained cell")
    curves = frame(curves, title=f"Study {study.name}: learning curves")
    variance = frame(variance, title=f"Study {study.name}: gradient variance at checkpoints")
    for df in (runs, curves, variance):
        if len(df):
            df["S"] = df["S"].astype("Int64")
    if len(variance):
        variance["run"] = pd.Categorical(variance["run"], order["run"]).astype(str)
    return runs, curves, variance


def _bootstrap_indices(seed, key, n):
    rng = onp.random.default_rng(cell_seed(seed, {"bootstrap": key}))
    return rng.integers(0, n, size=(N_BOOT, n))


def _flip(a, b, idx):
    """P(b would rank above or equal a) under a paired bootstrap of the seeds."""
    d = (a - b)[idx].mean(axis=1)
    return float(onp.mean(d < 0) + 0.5 * onp.mean(d == 0))


def _grid_key(row):
    return tuple(None if pd.isna(row[c]) else row[c] for c in GRID)


def _variance_score(variance, runs_kind):
    """Per (grid point, estimator, seed): mean over checkpoints of log10 var_q_x_cost, for one run kind."""
    v = variance[(variance["run"] == runs_kind) & (variance["var_q_x_cost"] > 0)].copy()
    v["log10_var"] = onp.log10(v["var_q_x_cost"].astype(float))
    return v.groupby(KEY, dropna=False)["log10_var"].mean()


def _final(study, runs, variance):
    rows = []
    est_runs = runs[~runs["reference"]]
    shared_last = own_last = None
    if len(variance):
        last = variance.groupby(["run"] + KEY, dropna=False)["checkpoint"].transform("max") == variance["checkpoint"]
        lastv = variance[last]
        shared_last = lastv[lastv["run"] == "shared"].set_index(KEY)["var_q_x_cost"]
        own_last = lastv[lastv["run"] == "own"].set_index(KEY)["var_q_x_cost"]
    for gkey, group in est_runs.groupby(GRID, dropna=False, sort=False):
        wide = group.pivot_table(index="seed", columns="estimator", values="log_px_valid").dropna()
        means = {e: t_interval(group.loc[group["estimator"] == e, "log_px_valid"]) for e in group["estimator"].unique()}
        order = sorted(means, key=lambda e: -means[e][0])
        idx = _bootstrap_indices(study.seed, list(map(str, gkey)), len(wide)) if len(wide) >= 2 else None
        for rank, est in enumerate(order, 1):
            sub = group[group["estimator"] == est]
            p_flip = onp.nan
            if rank < len(order) and idx is not None:
                p_flip = _flip(wide[est].to_numpy(), wide[order[rank]].to_numpy(), idx)
            row = dict(zip(GRID, gkey), estimator=est, n_seeds=len(sub), log_px_valid=means[est][0],
                       log_px_valid_lo=means[est][1], log_px_valid_hi=means[est][2],
                       log_px_train=float(sub["log_px_train"].mean()), rank=rank, p_flip_next=p_flip,
                       next_estimator=order[rank] if rank < len(order) else None,
                       steps=int(sub["steps"].iloc[0]), evals_per_datapoint=float(sub["evals_per_datapoint"].mean()))
            for name, series in (("var_x_cost_own", own_last), ("var_x_cost_shared", shared_last)):
                row[name] = row[name + "_lo"] = row[name + "_hi"] = onp.nan
                if series is not None and len(series):
                    keys = [tuple(r[c] for c in KEY) for _, r in sub.iterrows()]
                    vals = [series.get(k, onp.nan) for k in keys]
                    m, lo, hi = t_interval(_log10(vals))
                    row[name], row[name + "_lo"], row[name + "_hi"] = 10 ** m, 10 ** lo, 10 ** hi
            row["wall_time"] = float(sub["wall_time"].mean())
            rows.append(row)
    for ekey, group in runs[runs["reference"]].groupby(["data", "K", "hidden", "method", "estimator"], sort=False):
        m, lo, hi = t_interval(group["log_px_valid"])
        rows.append(dict(zip(["data", "K", "hidden", "method", "estimator"], ekey), S=None, n_seeds=len(group),
                         log_px_valid=m, log_px_valid_lo=lo, log_px_valid_hi=hi,
                         log_px_train=float(group["log_px_train"].mean()), rank=None, p_flip_next=onp.nan,
                         next_estimator=None, steps=int(group["steps"].iloc[0]),
                         evals_per_datapoint=float(group["evals_per_datapoint"].mean()),
                         wall_time=float(group["wall_time"].mean())))
    df = frame(rows, title=f"Study {study.name}: final held-out log p(x), mean and 95% t interval across seeds")
    if len(df):
        df["S"] = df["S"].astype("Int64")
        df["rank"] = df["rank"].astype("Int64")
    return df



def _log10(values):
    """log10 of variances; an exact estimator's zero variance gives -inf, whose mean is -inf and
    10 ** -inf = 0, the right summary, so the divide-by-zero warning is expected and silenced."""
    with onp.errstate(divide="ignore"):
        return onp.log10(onp.asarray(values, dtype=float))

def _variance_summary(study, variance):
    rows = []
    if not len(variance):
        return frame([], title="no variance measured")
    for key, group in variance.groupby(GRID[:-1] + ["estimator", "S", "run", "checkpoint"], dropna=False, sort=False):
        logs = _log10(group["var_q_x_cost"].astype(float).to_numpy())
        m, lo, hi = t_interval(logs)
        mq = t_interval(_log10(group["var_q"].astype(float).to_numpy()))[0]
        rows.append(dict(zip(GRID[:-1] + ["estimator", "S", "run", "checkpoint"], key),
                         progress=float(group["progress"].mean()), n_seeds=len(group), var_q=10 ** mq,
                         var_q_x_cost=10 ** m, var_q_x_cost_lo=10 ** lo, var_q_x_cost_hi=10 ** hi,
                         evals=int(group["evals"].iloc[0])))
    df = frame(rows, title=f"Study {study.name}: variance at equal cost, geometric mean and 95% t interval (log10)")
    df["S"] = df["S"].astype("Int64")
    return df


def _average_ranks(a):
    """Ranks 1..n along the last axis, ties given their mean rank (scipy.stats.rankdata's "average")."""
    # rank_i = #{j: a_j < a_i} + (#{j: a_j = a_i} + 1) / 2; n is a handful of estimators, so the n x n
    # comparison is cheaper than importing scipy.stats
    a = onp.asarray(a, dtype=float)
    below = (a[..., None, :] < a[..., :, None]).sum(axis=-1)
    tied = (a[..., None, :] == a[..., :, None]).sum(axis=-1)
    # a NaN makes its whole slice NaN, as rankdata does, rather than a rank that looks real
    return onp.where(onp.isnan(a).any(axis=-1, keepdims=True), onp.nan, below + (tied + 1) / 2.0)


def _spearman(a, b):
    """Spearman's rho of the last axis of ``a`` and ``b`` (average ranks for ties); NaN if one is constant."""
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(axis=-1, keepdims=True), rb - rb.mean(axis=-1, keepdims=True)
    denom = onp.sqrt((ra ** 2).sum(axis=-1) * (rb ** 2).sum(axis=-1))
    with onp.errstate(invalid="ignore", divide="ignore"):
        rho = onp.where(denom > 0, (ra * rb).sum(axis=-1) / onp.where(denom > 0, denom, 1.0), onp.nan)
    return float(rho) if rho.ndim == 0 else rho


def _correlation(study, runs, variance):
    rows = []
    est_runs = runs[~runs["reference"]]
    for kind in ("own", "shared"):
        if not len(variance) or not (variance["run"] == kind).any():
            continue
        score = _variance_score(variance, kind).rename("log10_var").reset_index()
        merged = est_runs.merge(score, on=KEY, how="inner")
        for gkey, group in merged.groupby(GRID, dropna=False, sort=False):
            lp = group.pivot_table(index="seed", columns="estimator", values="log_px_valid")
            lv = group.pivot_table(index="seed", columns="estimator", values="log10_var")
            both = lp.dropna().index.intersection(lv.dropna().index)
            lp, lv = lp.loc[both], lv.loc[both, lp.columns]
            if lp.shape[1] < 3 or len(both) < 1:
                continue
            rho = _spearman(-lv.mean().to_numpy(), lp.mean().to_numpy())
            lo = hi = onp.nan
            if len(both) >= 2:
                idx = _bootstrap_indices(study.seed, ["rho", kind] + list(map(str, gkey)), len(both))
                # (N_BOOT, n) per-estimator means over each resample of the seeds, ranked row by row
                boots = _spearman(-lv.to_numpy()[idx].mean(axis=1), lp.to_numpy()[idx].mean(axis=1))
                boots = boots[onp.isfinite(boots)]
                if boots.size:
                    lo, hi = (float(q) for q in onp.percentile(boots, [2.5, 97.5]))
            n = lp.shape[1]
            # across estimators: Fisher z with the Spearman variance 1.06 / (n - 3) (Fieller et al. 1957)
            f_lo = f_hi = onp.nan
            if n > 3 and onp.isfinite(rho):
                z, half = onp.arctanh(onp.clip(rho, -0.999999, 0.999999)), 1.96 * onp.sqrt(1.06 / (n - 3))
                f_lo, f_hi = float(onp.tanh(z - half)), float(onp.tanh(z + half))
            rows.append(dict(zip(GRID, gkey), run=kind, n_estimators=n, n_seeds=len(both), rho=rho,
                             rho_lo=lo, rho_hi=hi, rho_fisher_lo=f_lo, rho_fisher_hi=f_hi))
    df = frame(rows, title=f"Study {study.name}: does the variance ranking predict the log p(x) ranking? "
                           f"(Spearman rho; 95% intervals: bootstrap over seeds, Fisher z over estimators)")
    if len(df):
        df["S"] = df["S"].astype("Int64")
    return df


def _summary(final):
    cols = ["data", "K", "hidden", "method", "S", "rank", "estimator", "log_px_valid", "log_px_valid_lo",
            "log_px_valid_hi", "p_flip_next", "var_x_cost_shared", "var_x_cost_own", "steps", "n_seeds", "wall_time"]
    if not len(final):
        return frame([], cols)
    est = final[final["rank"].notna()].sort_values(["data", "K", "hidden", "method", "S", "rank"], kind="stable")
    refs = final[final["rank"].isna()]
    df = pd.concat([est, refs], ignore_index=True)
    return frame(df[[c for c in cols if c in df.columns]],
                 title="Which estimator? Held-out exact log p(x) at equal decoder evaluations (mean, 95% t interval "
                       "over seeds), rank (1 = best), P(swap with the next) by paired bootstrap, variance x cost")


def tables(study, records):
    """All tables of a study from its cell records (``{"train": [...], "shared": [...]}``)."""
    runs, curves, variance = _runs_and_curves(study, records)
    final = _final(study, runs, variance)
    return {"runs": runs, "curves": curves, "variance": variance, "final": final,
            "variance_summary": _variance_summary(study, variance),
            "correlation": _correlation(study, runs, variance), "summary": _summary(final)}


def write_tables(tables_, directory):
    """Each table as ``<directory>/<name>.csv`` + ``.json`` (+ ``.parquet`` with pyarrow), atomically."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, df in tables_.items():
        paths += write_table(df, os.path.join(directory, name))
    return paths


def format_summary(result, digits=4):
    """The summary and the rank correlations as plain text (what ``vi-lab study`` prints)."""
    tabs = result.tables if hasattr(result, "tables") else result
    summary = tabs["summary"].copy()
    fixed = {c: summary[c].dropna().iloc[0] for c in ("data", "K", "hidden", "method")
             if c in summary and summary[c].dropna().nunique() == 1}
    est = summary["rank"].notna() if "rank" in summary else summary.index == summary.index
    for c in ("method",):
        # references carry their own method name; the estimators' is what the grid fixed
        if c in summary and summary.loc[est, c].nunique() == 1:
            fixed[c] = summary.loc[est, c].iloc[0]
    shown = summary.drop(columns=[c for c in fixed if c != "method"] + (["method"] if "method" in fixed else []))
    if len(shown):
        ci = [f"[{lo:.{digits - 1}g}, {hi:.{digits - 1}g}]" if onp.isfinite(lo) else "-"
              for lo, hi in zip(shown["log_px_valid_lo"], shown["log_px_valid_hi"])]
        at = list(shown.columns).index("log_px_valid_lo")
        shown = shown.drop(columns=["log_px_valid_lo", "log_px_valid_hi"])
        shown.insert(at, "95% t interval", ci)
    where = ", ".join(f"{k}={v}" for k, v in fixed.items())
    title = f"{summary.attrs.get('title', '')}" + (f"\n[{where}]" if where else "")
    text = [format_table(shown, digits=digits, title=title)]
    corr = tabs["correlation"]
    if len(corr):
        text.append("")
        text.append(format_table(corr.drop(columns=[c for c in fixed if c in corr]), digits=3))
    return "\n".join(text)
