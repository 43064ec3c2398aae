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


def test_decoder_evaluations_count_the_2_to_the_K_of_exact_methods(result):
    history, summary = result["history"], result["summary"]
    n_train = result.config["n_train"]
    steps = history[history["method"] == "exact_ml"]["step"].to_numpy()
    ml = history[history["method"] == "exact_ml"]
    # every step of exact ML sums over all 2**K states for each datapoint of the batch
    onp.testing.assert_array_equal(ml["decoder_evals"].to_numpy(), steps * 100 * 2 ** 3)
    arm = history[history["method"] == "arm"]
    onp.testing.assert_array_equal(arm["decoder_evals"].to_numpy(), steps * 100 * 2 * 2)   # 2 per sample, S = 2
    onp.testing.assert_allclose(history["evals_per_datapoint"], history["decoder_evals"] / n_train)
    row = summary[summary["method"] == "exact_ml"].iloc[0]
    assert row["evals_per_datapoint"] == pytest.approx(20 * 100 * 8 / n_train)


def test_default_data_are_large_and_every_run_can_stop_early():
    res = train_compare(estimators=["rloo"], methods=["exact_ml"], latent=3, steps=60, record_every=5, n_samples=2,
                        bars_copies=2, batch_size=None, patience=1, learning_rate=0.3, seed=0)
    assert res.config["n_train"] == 40 and res.config["n_valid"] == 20
    assert "early stopping on held-out exact log p(x) (patience 1 records" in res.config["overfitting_control"]
    summary, history = res["summary"], res["history"]
    for _, row in summary.iterrows():
        curve = history[history["method"] == row["method"]]
        valid = curve["log_px_valid"].to_numpy()
        # stopped exactly one record after the best one (patience 1), or ran to the end
        assert row["stopped_step"] == curve["step"].iloc[-1]
        if row["stopped_early"]:
            assert valid[-1] <= valid.max() and curve["step"].iloc[-2] == row["best_step"]
    big = train_compare(estimators=[], methods=["exact_elbo"], latent=3, steps=2, record_every=1, seed=0)
    assert big.config["n_train"] == 800 and big.config["bars_copies"] == 40


def test_encoder_width_held_out_fraction_and_batch_size_are_used():
    res = train_compare(estimators=["arm"], methods=[], latent=3, steps=4, record_every=2, encoder_hidden=(5,),
                        valid_fraction=0.25, bars_copies=4, batch_size=7, seed=0)
    assert res.config["n_train"] == 90 and res.config["n_valid"] == 30
    arm = res["history"][res["history"]["method"] == "arm"]
    assert arm["decoder_evals"].iloc[-1] == 4 * 7 * 2 * 2
    with pytest.raises(ValueError, match="encoder_hidden"):
        train_compare(estimators=["arm"], methods=[], latent=3, steps=2, encoder_hidden=(0,))
    with pytest.raises(ValueError, match="valid_fraction"):
        train_compare(estimators=["arm"], methods=[], latent=3, steps=2, valid_fraction=1.0)
