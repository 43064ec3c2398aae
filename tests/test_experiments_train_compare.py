"""train-compare: every run starts from the same place, history and summary agree, reproducible."""
import numpy as onp
import pytest

from vi_lab.experiments import train_compare

KW = dict(latent=3, steps=20, record_every=10, n_samples=2, seed=0)


@pytest.fixture(scope="module")
def result():
    return train_compare(estimators=["arm", "rloo"], methods=["exact_ml", "wake_sleep"], **KW)


def test_history_has_one_curve_per_run_with_exact_log_px(result):
    history = result["history"]
    assert list(dict.fromkeys(history["method"])) == ["arm", "rloo", "exact_ml", "wake_sleep"]
    for name in ["arm", "rloo", "exact_ml", "wake_sleep"]:
        rows = history[history["method"] == name]
        assert rows["step"].to_numpy().tolist() == [0, 10, 20]
        assert onp.all(onp.isfinite(rows["log_px_valid"].to_numpy()))
        assert onp.all(onp.diff(rows["seconds"].to_numpy()) >= 0)
    # same initialization for every run: identical log p(x) at step 0
    start = history[history["step"] == 0]["log_px_train"].to_numpy()
    assert onp.ptp(start) == 0.0


def test_summary_matches_the_history(result):
    summary, history = result["summary"], result["history"]
    assert len(summary) == 4
    train = summary["final_log_px_train"].to_numpy()
    assert onp.all(onp.diff(train) <= 0)                     # sorted, best first
    for _, row in summary.iterrows():
        curve = history[history["method"] == row["method"]]
        assert row["final_log_px_valid"] == curve["log_px_valid"].to_numpy()[-1]
        assert row["best_log_px_valid"] == curve["log_px_valid"].to_numpy().max()
    # exact maximum likelihood ascends log p(x) itself: it must improve on the initialization
    ml = history[history["method"] == "exact_ml"]["log_px_train"].to_numpy()
    assert ml[-1] > ml[0]
    assert set(result.params["params"]) == {"arm", "rloo", "exact_ml", "wake_sleep"}


def test_same_seed_same_numbers(result):
    again = train_compare(estimators=["arm", "rloo"], methods=["exact_ml", "wake_sleep"], **KW)
    for col in ("log_px_train", "log_px_valid", "elbo_train", "decoder_evals"):
        onp.testing.assert_array_equal(again["history"][col].to_numpy(), result["history"][col].to_numpy())


def test_bad_input():
    with pytest.raises(ValueError, match="'vimco' needs S >= 2"):
        train_compare(estimators=["vimco"], methods=[], **{**KW, "n_samples": 1})
    with pytest.raises(ValueError, match="unknown method 'sleep'"):
        train_compare(estimators=[], methods=["sleep"], **KW)
    with pytest.raises(ValueError, match="nothing to train"):
        train_compare(estimators=[], methods=[], **KW)
    with pytest.raises(ValueError, match="unknown estimator"):
        train_compare(estimators=["armm"], methods=[], **KW)
