"""The prediction-question checker: right answers pass, slightly wrong ones fail, known mistakes get hints.

Numeric answers are recomputed here from their formulas (independently of questions.py), and every
notebook asks each of its questions.
"""
import json
import math
import pathlib

import pytest

from vi_lab import exercises, toy
from vi_lab.exercises.questions import QUESTIONS, questions_of

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"

# Independent computations of the numeric answers.
INDEPENDENT = {
    "01.cost_ratio": 2 ** 20 / 2 ** 10,
    "01.total_probability": 0.0,
    "02.rmse_ratio": math.sqrt(1024 / 16),
    "02.table_size": 1_000_000 * 8,
    "03.encoder_size": 16 * 64 + 64 + 64 * 8 + 8,
    "04.rws_k1": 0.0,
    "05.toy_gradient": float(toy.exact_grad(0.0, 0.45)),
    "05.crossover": 800.0,
    "06.mean_baseline": 3 / 4,
    "07.iwae_limit": 0.0,
    "08.n_states": 4096.0,
}


def test_every_numeric_question_has_an_independent_answer():
    numeric = {qid for qid, q in QUESTIONS.items() if q.kind == "number"}
    assert numeric == set(INDEPENDENT)


@pytest.mark.parametrize("qid", sorted(INDEPENDENT))
def test_numeric_answers(qid):
    truth = INDEPENDENT[qid]
    assert exercises.check_answer(qid, truth).passed
    assert exercises.check_answer(qid, str(truth)).passed                      # "0.025" is read as a number
    if truth != 0:
        for factor in (1.005, 0.995):
            result = exercises.check_answer(qid, truth * factor)
            assert not result.passed, repr(result)
            assert "% off" in repr(result)
    else:
        assert not exercises.check_answer(qid, 1e-3).passed


@pytest.mark.parametrize("qid", sorted(QUESTIONS))
def test_right_answer_passes_and_every_known_mistake_gets_its_hint(qid):
    q = QUESTIONS[qid]
    assert exercises.check_answer(qid, q.answer).passed
    for wrong, hint in q.mistakes:
        result = exercises.check_answer(qid, wrong)
        assert not result.passed and hint in repr(result), repr(result)
    unanswered = exercises.check_answer(qid, None)
    assert not unanswered.passed and "not answered yet" in repr(unanswered)


@pytest.mark.parametrize("qid", sorted(q for q in QUESTIONS if QUESTIONS[q].kind == "choice"))
def test_choice_questions_refuse_unknown_options(qid):
    q = QUESTIONS[qid]
    result = exercises.check_answer(qid, "zz")
    assert not result.passed and "not one of the options" in repr(result)
    assert exercises.check_answer(qid, q.answer.upper()).passed          # "B" and "b" are the same option
    for other in q.options:
        if other != q.answer:
            assert not exercises.check_answer(qid, other).passed


def test_bad_inputs():
    assert "single number" in repr(exercises.check_answer("05.toy_gradient", [0.1, 0.2]))
    assert "not a finite" in repr(exercises.check_answer("05.toy_gradient", float("nan")))
    with pytest.raises(ValueError, match="unknown question"):
        exercises.check_answer("05.nope", 1.0)


@pytest.mark.parametrize("notebook", sorted({qid[:2] for qid in QUESTIONS}))
def test_each_notebook_asks_its_questions(notebook):
    paths = sorted(NOTEBOOKS.glob(f"{notebook}_*.ipynb"))
    assert paths, f"no notebook {notebook}"
    source = "".join("".join(c["source"]) for c in json.loads(paths[0].read_text())["cells"])
    ids = questions_of(notebook)
    assert 2 <= len(ids) <= 3
    for qid in ids:
        assert f'check_answer("{qid}"' in source, f"{paths[0].name} does not ask {qid}"


def test_disarm_is_exact_with_one_latent_only_at_zero():
    """The statement behind question 06.disarm_one_latent, by enumeration (toy.estimator_moments)."""
    at = {phi: toy.estimator_moments(phi=phi, t=0.45, n_samples=2, n_reps=200, rng=0,
                                     variants={"disarm": ("disarm", {})})[0]["exact_variance"]
          for phi in (0.0, 1.0, -0.5)}
    assert at[0.0] < 1e-20
    assert at[1.0] > 1e-5 and at[-0.5] > 1e-5


def _early_stopping(run, step, patience=5):
    valid = run.history["log_px_valid"]
    return len(valid) > patience and max(valid[-patience:]) <= max(valid[:-patience])


@pytest.mark.slow
def test_notebook_03_gaps_are_measured_on_a_model_that_is_not_overfit():
    """Notebook 03's setting (480 images, early stopping): held-out log p(x) ends near its best, and the
    held-out amortization gap exceeds the training one (question 03.where_gap)."""
    import numpy as onp
    import vi_lab
    from vi_lab import experiments, variational
    rng = onp.random.default_rng(0)
    model = vi_lab.BernoulliLVM(n_latent=8, n_obs=16, hidden=(32,))
    x_train = vi_lab.data.bars_and_stripes(side=4, noise=0.05, n_repeats=16, rng=rng)
    x_valid = vi_lab.data.bars_and_stripes(side=4, noise=0.05, n_repeats=2, rng=rng)
    encoder = variational.Encoder(n_obs=16, n_latent=8, hidden=(64,))
    result = vi_lab.inference.fit(model, x_train, method="amortized", estimator="exact", family=encoder, steps=1000,
                                  learning_rate=0.03, x_valid=x_valid, record_every=10, rng=3, progress=False,
                                  callback=_early_stopping)
    valid = onp.array(result.history["log_px_valid"])
    assert result.history["step"][-1] < 1000 and valid.max() - valid[-1] < 0.25
    x_both = onp.vstack([x_train, x_valid])
    split = ["train"] * len(x_train) + ["valid"] * len(x_valid)
    gaps = experiments.tightness(model, result.params, x_both, encoder.logits(result.q_params, x_both), ks=(),
                                 split=split)
    mean = gaps.groupby("split")["amortization_gap"].mean()
    assert mean["valid"] > 2 * mean["train"]
    assert gaps["amortization_gap"].min() >= -1e-9                          # question 03.gap_sign


@pytest.mark.slow
def test_notebook_04_rws_is_best_on_training_data_only():
    """Notebook 04's statement: of the estimator-based methods RWS has the highest training and the
    lowest held-out log p(x) after 400 steps, and wake-sleep's encoder the largest KL(q || p)."""
    import vi_lab
    from vi_lab import estimators, inference
    model, _, x_train, x_valid = vi_lab.data.default(0)
    runs = {"amortized": dict(method="amortized", estimator=estimators.get("score_function", baseline="rloo"),
                              n_samples=2),
            "wake_sleep": dict(method="wake_sleep"),
            "reweighted_wake_sleep": dict(method="reweighted_wake_sleep", n_samples=5)}
    last = {}
    for name, options in runs.items():
        h = inference.fit(model, x_train, steps=400, learning_rate=0.01, x_valid=x_valid, record_every=400, rng=1,
                          progress=False, **options).history
        last[name] = (h["log_px_train"][-1], h["log_px_valid"][-1], h["kl_gap"][-1])
    assert max(last, key=lambda n: last[n][0]) == "reweighted_wake_sleep"
    assert min(last, key=lambda n: last[n][1]) == "reweighted_wake_sleep"
    assert max(last, key=lambda n: last[n][2]) == "wake_sleep"                # question 04.largest_gap


def test_notebook_01_ambiguous_image_has_several_explanations():
    """Notebook 01's setting: the chosen image's two best states predict different images and both carry
    real mass, while the highest-entropy (blank) image's two best states predict the same image."""
    import numpy as onp
    import vi_lab
    from vi_lab import exact
    rng = onp.random.default_rng(0)
    model = vi_lab.BernoulliLVM(n_latent=8, n_obs=16, hidden=(32,))
    model.sample(model.init_params(rng), 20, rng)              # the draws the notebook makes first
    x_train = vi_lab.data.bars_and_stripes(side=4, noise=0.05, n_repeats=4, rng=rng)
    params = vi_lab.inference.fit(model, x_train, method="exact_ml", steps=200, learning_rate=0.05, rng=1,
                                  progress=False).params
    states = exact.all_states(8)
    posterior = exact.posterior(model, params, x_train)
    predicted = vi_lab.nn.sigmoid(model.decoder_logits(params, states))
    best_two = onp.argsort(-posterior, axis=1)[:, :2]
    difference = onp.abs(predicted[best_two[:, 0]] - predicted[best_two[:, 1]]).sum(axis=1)
    second = onp.where(difference > 1.0, posterior[onp.arange(len(x_train)), best_two[:, 1]], 0.0)
    ambiguous = int(onp.argmax(second))
    assert second[ambiguous] > 0.2 and x_train[ambiguous].sum() > 0
    entropy = -onp.sum(posterior * onp.log(onp.maximum(posterior, 1e-300)), axis=1)
    blank = int(onp.argmax(entropy))
    assert x_train[blank].sum() == 0 and difference[blank] < 0.5
