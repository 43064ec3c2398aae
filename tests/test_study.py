"""vi_lab.study: a tiny study through the API and the CLI function, checked against independent computations."""
import argparse
import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vi_lab import exact
from vi_lab.inference import load as load_run
from vi_lab.study import Study, load, run
from vi_lab.study import aggregate
from vi_lab.study import cli as study_cli
from vi_lab.study.data import load_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(name="tiny", data=["bars"], K=[3], hidden=[[8]], estimators=["rloo", "disarm", "exact_elbo"], S=[2],
            seeds=[0, 1], budget_evals=60, batch_size=40, encoder_hidden=[8], records=3, reps=5, rows=10,
            warmup=2, learning_rate=0.03)


def tiny(**changes):
    return Study(**dict(TINY, **changes))


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "tiny"
    return run(tiny(), out, jobs=1, progress=False, log=lambda m: None)


def test_steps_follow_the_equal_budget(done):
    runs = done["runs"]
    n_train = load_split("bars", 3, 0.25, 0)[0].shape[0]
    cost = {"rloo": 1 * 2, "disarm": 2 * 2, "exact_elbo": 2 ** 3}            # evaluations per datapoint per step
    for _, row in runs.iterrows():
        expected = math.floor(60 * n_train / (40 * cost[row["estimator"]]))
        assert row["steps"] == expected
        # spent = steps * batch * cost / N: at most the budget, and within one step of it
        assert 60 - 40 * cost[row["estimator"]] / n_train < row["evals_per_datapoint"] <= 60 + 1e-9
    assert len(runs) == 6 and set(runs["estimator"]) == {"rloo", "disarm", "exact_elbo"}


def test_final_log_px_is_the_exact_value_of_the_saved_run(done):
    x_train, x_valid = load_split("bars", 3, 0.25, 0)
    for name in os.listdir(os.path.join(done.out, "cells")):
        if not name.startswith("train-"):
            continue
        result = load_run(os.path.join(done.out, "cells", name, "run"))
        est = result.config["estimator"]["name"] if result.config["estimator"] else result.method
        seed = int(name.split("-seed")[1].split("-")[0])
        row = done["runs"][(done["runs"]["seed"] == seed) & (done["runs"]["steps"] == result.config["steps"])]
        value = float(np.mean(exact.log_marginal(result.model, result.params, x_valid)))
        assert value in set(row["log_px_valid"]), (est, value)
        # the run says which split it trained on
        assert np.array_equal(load_split(**result.config["study_data"])[1], x_valid)


def test_seeds_pair_the_initialization_across_estimators(done):
    start = done["curves"][done["curves"]["step"] == 0]
    per_seed = start.groupby("seed")["log_px_valid"].agg(["min", "max"])
    assert (per_seed["max"] - per_seed["min"]).abs().max() < 1e-12      # same init for every estimator
    assert per_seed["min"].nunique() == 2                                # but another init per seed


def test_final_table_intervals_and_ranks(done):
    final, runs = done["final"], done["runs"]
    est = final[final["rank"].notna()]
    for _, row in est.iterrows():
        values = runs.loc[runs["estimator"] == row["estimator"], "log_px_valid"].to_numpy()
        lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert row["log_px_valid"] == pytest.approx(values.mean())
        assert (row["log_px_valid_lo"], row["log_px_valid_hi"]) == pytest.approx((lo, hi))
    assert list(est.sort_values("rank")["log_px_valid"]) == sorted(est["log_px_valid"], reverse=True)
    assert 0.0 <= est["p_flip_next"].dropna().iloc[0] <= 1.0
    ref = final[final["estimator"] == "exact_elbo"]
    assert len(ref) == 1 and pd.isna(ref["rank"].iloc[0])
    assert set(done["variance"]["run"]) == {"own", "shared"}
    v = done["variance"]
    # three checkpoints per run: 10%, 50%, 100% on the record grid
    assert v.groupby(["estimator", "seed", "run"]).size().eq(3).all()
    assert (v["var_q_x_cost"] == v["var_q"] * v["evals"]).all()


def test_flip_probability_by_paired_bootstrap():
    idx = aggregate._bootstrap_indices(0, ["t"], 5)
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert aggregate._flip(a, a - 0.1, idx) == 0.0            # better on every seed: never flips
    assert aggregate._flip(a, a + 0.1, idx) == 1.0
    noisy = a + np.array([0.5, -0.5, 0.5, -0.5, 0.0])
    assert 0.2 < aggregate._flip(a, noisy, idx) < 0.8


def test_rerun_reuses_every_cell_and_gives_the_same_tables(done):
    messages = []
    again = run(tiny(), done.out, jobs=1, progress=False, log=messages.append)
    assert again.reused == 10 and again.ran == 0
    assert "reusing 10 of 10 finished cells" in messages[0]
    for name in ("runs", "curves", "variance", "final", "summary"):
        pd.testing.assert_frame_equal(again[name], done[name])


def test_changed_config_refuses_to_mix_unless_forced(done, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(done.out, out)
    more = tiny(seeds=[0, 1, 2])
    with pytest.raises(ValueError, match="different config"):
        run(more, out, jobs=1, progress=False, log=lambda m: None)
    forced = run(more, out, jobs=1, force=True, progress=False, log=lambda m: None)
    assert forced.reused == 10 and forced.ran == 5            # only the new seed's cells ran
    old = forced["runs"][forced["runs"]["seed"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, done["runs"])


def test_cli_function_runs_quick_toml_in_tiny_form(tmp_path, capsys):
    study = load(os.path.join(ROOT, "studies", "quick.toml"))
    assert study.name == "quick" and "exact_elbo" in study.estimators
    small = dataclasses.replace(study, seeds=(0,), S=(2,), budget_evals=40, reps=4, rows=8, records=2, warmup=2)
    path = tmp_path / "quick-tiny.toml"
    path.write_text(_toml(small))
    parser = study_cli.configure(argparse.ArgumentParser())
    status = study_cli.run(parser.parse_args([str(path), "--jobs", "1", "--out", str(tmp_path / "q"), "--quiet"]))
    assert status == 0
    printed = capsys.readouterr().out
    assert "Which estimator?" in printed and "disarm" in printed and "Spearman" in printed
    assert sorted(os.listdir(tmp_path / "q" / "figures")) == ["study_log_px.png", "study_variance.png"]
    assert os.path.isfile(tmp_path / "q" / "tables" / "summary.csv")


def _toml(study):
    """A study as TOML text (the keys of spec.from_dict)."""
    import json
    d = study.to_dict()
    grid = {k: d.pop(k) for k in ("data", "K", "hidden", "method", "estimators", "S", "seeds")}
    train = {k: d.pop(k) for k in ("budget_evals", "batch_size", "encoder_hidden", "valid_fraction", "learning_rate",
                                   "eval_size", "records", "reference_steps")}
    variance = {k: d.pop(k) for k in ("checkpoints", "reps", "rows", "warmup", "model_grad")}

    def section(table):
        return "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items() if v is not None)
    return section(d) + "[grid]\n" + section(grid) + "[train]\n" + section(train) + "[variance]\n" + section(variance)


def test_toml_round_trip(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(_toml(tiny()))
    assert load(path) == tiny()
    assert load(path).config_hash() == tiny().config_hash()
    assert tiny(seeds=[0, 1, 2]).config_hash() != tiny().config_hash()


def test_average_ranks_and_t_interval_match_scipy_stats():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, size=(30, 7)).astype(float)              # many ties
    np.testing.assert_array_equal(aggregate._average_ranks(a), stats.rankdata(a, axis=-1))
    a[3, 2] = np.nan
    assert np.isnan(aggregate._average_ranks(a)[3]).all() and not np.isnan(aggregate._average_ranks(a)[4]).any()
    for n in (2, 3, 5, 40):
        v = rng.normal(size=n)
        want = stats.t.interval(0.95, n - 1, loc=v.mean(), scale=stats.sem(v))
        assert aggregate.t_interval(v)[1:] == pytest.approx(want, rel=1e-12)
        assert aggregate.t_interval(v, level=0.5)[1:] == pytest.approx(
            stats.t.interval(0.5, n - 1, loc=v.mean(), scale=stats.sem(v)), rel=1e-12)


def test_spearman_matches_scipy_with_ties_and_in_batches():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    b[:, 3] = b[:, 4]                                            # ties
    got = aggregate._spearman(a, b)
    want = [stats.spearmanr(x, y).statistic for x, y in zip(a, b)]
    assert got == pytest.approx(want, abs=1e-12)
    assert aggregate._spearman(a[0], b[0]) == pytest.approx(want[0], abs=1e-12)
    assert np.isnan(aggregate._spearman(np.ones(5), np.arange(5.0)))
