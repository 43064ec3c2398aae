"""The shared exercise-checking machinery diagnoses typical mistakes."""
import numpy as onp

from vi_lab.exercises import CheckResult, compare_arrays, compare_monte_carlo, run_student


def test_compare_arrays_accepts_the_exact_answer():
    result = compare_arrays("ex", [1.0, 2.0], [1.0, 2.0 + 1e-12])
    assert result.passed and "matches" in repr(result)


def test_compare_arrays_names_typical_mistakes():
    expected = onp.array([1.0, -2.0, 3.5])
    assert "sign flipped" in repr(compare_arrays("ex", -expected, expected))
    assert "times 0.5" in repr(compare_arrays("ex", 0.5 * expected, expected))
    assert "constant 1" in repr(compare_arrays("ex", expected + 1.0, expected))
    assert "shape (1, 3)" in repr(compare_arrays("ex", expected[None], expected))
    assert "non-finite" in repr(compare_arrays("ex", [1.0, onp.nan, 3.5], expected))
    assert not compare_arrays("ex", expected + [0, 0, 1e-3], expected).passed


def test_compare_monte_carlo_passes_unbiased_and_fails_biased_estimates():
    rng = onp.random.default_rng(0)
    truth = onp.array([0.3, -1.0])
    unbiased = truth + rng.standard_normal((2000, 2))
    assert compare_monte_carlo("ex", unbiased, truth).passed
    biased = unbiased + onp.array([0.0, 0.3])          # 0.3 is about 13 standard errors
    result = compare_monte_carlo("ex", biased, truth)
    assert not result.passed and "biased" in repr(result)


def test_run_student_turns_errors_into_findings():
    def unfinished():
        raise NotImplementedError

    value, failure = run_student("ex", unfinished)
    assert value is None and "NotImplementedError" in repr(failure) and not failure
    value, failure = run_student("ex", lambda: 1 / 0)
    assert "ZeroDivisionError" in repr(failure)
    value, failure = run_student("ex", lambda: 7)
    assert value == 7 and failure is None


def test_assert_passed_raises_with_the_findings():
    result = CheckResult("ex", False, ["reason one"])
    try:
        result.assert_passed()
    except AssertionError as exc:
        assert "reason one" in str(exc)
    else:
        raise AssertionError("assert_passed did not raise")
    assert CheckResult("ex", True).assert_passed().passed


def test_every_notebook_checker_is_exported_and_used_by_its_notebook():
    import json
    import pathlib
    import vi_lab.exercises as ex
    root = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
    for notebook, names in ex.CHECKERS.items():
        source = "".join("".join(c["source"]) for c in json.loads((root / f"{notebook}.ipynb").read_text())["cells"])
        for name in names:
            assert callable(getattr(ex, name)) and name in ex.__all__
            assert name in source, f"{notebook} does not use {name}"
