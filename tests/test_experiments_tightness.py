"""The tightness experiment: gaps against an independent enumeration, IWAE ordered in k, reproducible."""
import itertools

import numpy as onp
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp

import vi_lab
from vi_lab import exact, objectives
from vi_lab.experiments import tightness, tightness_summary, iwae_curve, sleep_encoder, run_tightness
from vi_lab.variational import log_prob, sample

from conftest import random_params

N_SE = 4.0
KS = (1, 3, 10, 30)


@pytest.fixture(scope="module")
def problem():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=5, hidden=(6,))
    params = random_params(model, 0)
    _, x = model.sample(params, 12, rng=1)
    rng = onp.random.default_rng(2)
    return model, params, x, rng.normal(size=(12, 3)), rng.normal(size=(12, 3))


def _split(df, split):
    return df[df["split"] == split].reset_index(drop=True)


def _one(df, **conditions):
    mask = onp.ones(len(df), dtype=bool)
    for key, value in conditions.items():
        mask &= (df[key] == value).to_numpy()
    assert mask.sum() == 1
    return df[mask].iloc[0]


@pytest.fixture(scope="module")
def table(problem):
    model, params, x, q_logits, ws_logits = problem
    split = ["train"] * 8 + ["valid"] * 4
    return tightness(model, params, x, q_logits, ws_logits, ks=KS, iwae_reps=20, split=split, rng=0)


def _brute(model, params, x):
    """log p(x, z) for every datapoint and state by enumeration, independently of vi_lab.exact: (N, M)."""
    states = onp.array(list(itertools.product([0.0, 1.0], repeat=model.n_latent)))
    return onp.asarray(model.log_joint(params, x[:, None, :], states[None])), states


def _brute_elbo(log_joint, states, logits):
    """sum_z q(z) [log p(x, z) - log q(z)] per row, log q written per coordinate."""
    log_q = (states[None] * -onp.logaddexp(0, -logits[:, None, :])
             + (1 - states[None]) * -onp.logaddexp(0, logits[:, None, :])).sum(-1)
    return onp.sum(onp.exp(log_q) * (log_joint - log_q), axis=1)


def _best_mean_field(log_joint, states, starts):
    """max over psi of the ELBO per row, by L-BFGS from several starts (independent of fit_local's CAVI)."""
    best = onp.full(log_joint.shape[0], -onp.inf)
    for n in range(log_joint.shape[0]):
        for psi0 in starts(n):
            res = minimize(lambda p: -_brute_elbo(log_joint[n:n + 1], states, p[None])[0], psi0,
                           method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 2000})
            best[n] = max(best[n], -res.fun)
    return best


def test_gaps_against_an_independent_enumeration_and_optimizer(table, problem):
    model, params, x, q_logits, ws_logits = problem
    log_joint, states = _brute(model, params, x)
    log_px = logsumexp(log_joint, axis=1)
    onp.testing.assert_allclose(table["log_px"].to_numpy(), log_px, rtol=0, atol=1e-12)
    elbo_q = _brute_elbo(log_joint, states, q_logits)
    onp.testing.assert_allclose(table["elbo_amortized"].to_numpy(), elbo_q, atol=1e-12)
    # the best mean-field q, found by another optimizer from the amortized logits and every corner
    corners = 4.0 * (2 * states - 1)
    best = _best_mean_field(log_joint, states, lambda n: [q_logits[n], onp.zeros(3)] + list(corners))
    onp.testing.assert_allclose(table["elbo_local"].to_numpy(), best, atol=1e-7)
    onp.testing.assert_allclose(table["approximation_gap"].to_numpy(), log_px - best, atol=1e-7)
    onp.testing.assert_allclose(table["amortization_gap"].to_numpy(), best - elbo_q, atol=1e-7)
    onp.testing.assert_allclose(table["wake_sleep_gap"].to_numpy(),
                                log_px - _brute_elbo(log_joint, states, ws_logits), atol=1e-12)
    assert onp.all(table["approximation_gap"].to_numpy() > 0) and onp.all(table["amortization_gap"].to_numpy() > 0)


def test_an_encoder_that_beats_fit_local_sets_the_best_mean_field_elbo(problem, monkeypatch):
    """The max() safety net: if fit_local returned a worse q than the encoder's, the encoder's ELBO counts."""
    import vi_lab.inference

    model, params, x, _, _ = problem
    log_joint, states = _brute(model, params, x)
    post = onp.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)) @ states     # exact marginals
    good = onp.log(post) - onp.log1p(-post)
    # a fit_local that fails (uniform q, whatever it is given): the encoder's q is better everywhere
    monkeypatch.setattr(vi_lab.inference, "fit_local", lambda model, params, x, **kw: onp.zeros((x.shape[0], 3)))
    t = tightness(model, params, x, good, ks=(1,), iwae_reps=2, rng=0)
    elbo_good = _brute_elbo(log_joint, states, good)
    assert onp.all(elbo_good > _brute_elbo(log_joint, states, onp.zeros((12, 3))))
    onp.testing.assert_allclose(t["elbo_local"].to_numpy(), elbo_good, atol=1e-12)
    onp.testing.assert_allclose(t["amortization_gap"].to_numpy(), 0.0, atol=1e-12)
    onp.testing.assert_allclose(t["approximation_gap"].to_numpy(), logsumexp(log_joint, axis=1) - elbo_good,
                                atol=1e-12)


def test_best_mean_field_elbo_beats_the_posterior_marginals_and_random_q(table, problem):
    model, params, x, _, _ = problem
    marg = onp.clip(exact.posterior_marginals(model, params, x), 1e-6, 1 - 1e-6)
    candidates = [onp.log(marg) - onp.log1p(-marg)] + [onp.random.default_rng(s).normal(size=(12, 3)) * 3
                                                        for s in range(5)]
    for logits in candidates:
        assert onp.all(table["elbo_local"].to_numpy() >= exact.elbo(model, params, logits, x) - 1e-9)


def _non_decreasing(curve_table, column="iwae"):
    """Consecutive means may decrease by at most N_SE standard errors of their difference."""
    values, ses = curve_table[column].to_numpy(), curve_table[f"{column}_se"].to_numpy()
    diffs = onp.diff(values)
    tol = N_SE * onp.hypot(ses[1:], ses[:-1])
    return bool(onp.all(diffs >= -tol))


def test_iwae_is_non_decreasing_in_k_and_below_log_px(table):
    for split in ("train", "valid"):
        curve = _split(iwae_curve(table), split)
        assert curve["k"].to_numpy().tolist() == list(KS)
        assert _non_decreasing(curve)
        # IWAE_1 is an unbiased estimate of the ELBO; every IWAE_k is below log p(x) in expectation
        first = curve.iloc[0]
        assert abs(first["iwae"] - first["elbo_amortized"]) < N_SE * first["iwae_se"]
        assert onp.all(curve["iwae"].to_numpy() <= curve["log_px"].to_numpy() + N_SE * curve["iwae_se"].to_numpy())
    # the gap to log p(x) closes visibly from k = 1 to k = 30 with this poor q
    curve = _split(iwae_curve(table), "train")
    assert curve["iwae"].to_numpy()[-1] - curve["iwae"].to_numpy()[0] > N_SE * onp.hypot(*curve["iwae_se"].to_numpy()[[0, -1]])


def test_the_monotonicity_check_rejects_a_wrong_bound(problem):
    """log-MIN-exp of the weights instead of log-mean-exp decreases with k, and the same check catches it."""
    model, params, x, q_logits, _ = problem
    rng = onp.random.default_rng(5)
    rows = []
    for k in KS:
        draws = []
        for _ in range(6):
            z = sample(q_logits, k, rng)
            log_w = model.log_joint(params, x, z) - log_prob(q_logits, z)
            draws.append(onp.min(log_w, axis=0))
        draws = onp.array(draws)
        rows.append({"k": k, "iwae": draws.mean(), "iwae_se": draws.mean(axis=1).std(ddof=1) / onp.sqrt(6)})
    assert not _non_decreasing(pd.DataFrame(rows))


def test_iwae_column_matches_the_objectives_module(problem):
    model, params, x, q_logits, _ = problem
    t = tightness(model, params, x, q_logits, ks=(10,), iwae_reps=2, rng=0, local_restarts=1)
    from vi_lab.experiments.specs import spec_rng
    rng = spec_rng(0, "iwae", 10)
    expected = onp.mean([objectives.iwae(model, params, q_logits, x, 10, rng) for _ in range(2)], axis=0)
    onp.testing.assert_allclose(t["iwae_10"].to_numpy(), expected, rtol=1e-12)
    assert onp.all(onp.isnan(t["elbo_wake_sleep"].to_numpy()))


def test_summary_means_match_the_columns(table):
    summary = tightness_summary(table)
    assert set(summary["split"]) == {"all", "train", "valid"}
    row = _one(summary, quantity="log_px", split="train")
    assert row["mean"] == pytest.approx(_split(table, "train")["log_px"].to_numpy().mean())
    assert row["n"] == 8
    gap = _one(summary, quantity="approximation_gap", split="all")
    assert gap["se_data"] == pytest.approx(table["approximation_gap"].to_numpy().std(ddof=1) / onp.sqrt(12))
    assert gap["se_mc"] == 0.0                                  # exact: no Monte Carlo error


def test_summary_keeps_the_two_standard_errors_of_iwae_apart(table):
    summary = tightness_summary(table)
    row = _one(summary, quantity="iwae_10", split="valid")
    part = _split(table, "valid")
    values, ses = part["iwae_10"].to_numpy(), part["iwae_10_se"].to_numpy()
    # across datapoints: the spread of the 4 per-datapoint means
    assert row["se_data"] == pytest.approx(values.std(ddof=1) / 2.0, rel=1e-12)
    # Monte Carlo: the draws' own error, which with 20 draws per point is much smaller here
    assert row["se_mc"] == pytest.approx(onp.sqrt(onp.sum(ses ** 2)) / 4.0, rel=1e-12)
    assert row["se_mc"] < row["se_data"]


def test_same_seed_same_numbers(problem, table):
    model, params, x, q_logits, ws_logits = problem
    again = tightness(model, params, x, q_logits, ws_logits, ks=KS, iwae_reps=20, split=["train"] * 8 + ["valid"] * 4,
                      rng=0)
    pd.testing.assert_frame_equal(again, table)
    other = tightness(model, params, x, q_logits, ws_logits, ks=KS, iwae_reps=6, rng=1)
    assert not onp.array_equal(other["iwae_3"].to_numpy(), table["iwae_3"].to_numpy())


@pytest.mark.parametrize("kwargs, match", [
    (dict(q_logits=onp.zeros((12, 2))), "q_logits"),
    (dict(iwae_reps=1), "iwae_reps"),
    (dict(ks=(0,)), "ks"),
    (dict(rng=-1), "rng"),
])
def test_bad_input(problem, kwargs, match):
    model, params, x, q_logits, _ = problem
    args = dict(q_logits=q_logits, iwae_reps=2, ks=(1,))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tightness(model, params, x, **args)


def test_sleep_encoder_learns_the_posterior_of_dreamed_data(problem):
    model, params, _, _, _ = problem
    z, x = model.sample(params, 500, rng=9)

    def mean_log_q(family, q_params):
        return float(onp.mean(log_prob(family.logits(q_params, x, None), z)))

    untrained = sleep_encoder(model, params, steps=1, rng=0)
    trained = sleep_encoder(model, params, steps=300, rng=0)
    assert mean_log_q(*trained) > mean_log_q(*untrained) + 0.1


def test_run_tightness_end_to_end_is_reproducible():
    kw = dict(latent=3, train_steps=5, ks=(1, 4), iwae_reps=2, sleep_steps=5, local_restarts=1, seed=0)
    a, b = run_tightness(**kw), run_tightness(**kw)
    assert set(a) == {"tightness", "tightness_summary", "iwae"}
    assert len(a["tightness"]) == 180 and list(dict.fromkeys(a["tightness"]["split"])) == ["train", "valid"]
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert set(a.params) == {"params", "q_params", "sleep_q_params"}
