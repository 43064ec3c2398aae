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
