"""Shared machinery for the notebook exercise checkers.

A checker runs the student's function on small problems whose exact answer vi_lab can
compute, and returns a :class:`CheckResult` that says whether it matches and, when it
does not, what the mismatch looks like (wrong shape, sign flipped, off by a constant
factor, biased beyond Monte Carlo error, ...). Checkers never raise on a wrong answer,
only on a checker misuse, so a notebook cell always shows a readable verdict.
"""
import numpy as onp

__all__ = ["CheckResult", "compare_arrays", "compare_monte_carlo", "run_student"]


class CheckResult:
    """Verdict of one exercise check.

    Attributes
    ----------
    passed : bool
    exercise : str
        The exercise name.
    details : list of str
        Human-readable findings, most important first.
    """

    def __init__(self, exercise, passed, details=()):
        self.exercise = exercise
        self.passed = bool(passed)
        self.details = list(details)

    def __bool__(self):
        return self.passed

    def __repr__(self):
        mark = "correct" if self.passed else "not yet"
        lines = [f"[{mark}] {self.exercise}"] + [f"  - {d}" for d in self.details]
        return "\n".join(lines)

    def _repr_markdown_(self):
        mark = "**correct**" if self.passed else "**not yet**"
        items = "".join(f"\n- {d}" for d in self.details)
        return f"{mark}: {self.exercise}{items}"

    def assert_passed(self):
        """Raise AssertionError with the findings unless the check passed (used by the solutions)."""
        if not self.passed:
            raise AssertionError(repr(self))
        return self


def run_student(exercise, fn, *args, **kwargs):
    """Call the student's function; turn an exception into a failed CheckResult.

    Returns
    -------
    (value, None) on success, (None, CheckResult) if the call raised.
    """
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        return None, CheckResult(exercise, False, ["the function still raises NotImplementedError: fill it in"])
    except Exception as exc:  # the student's code, any error is a finding
        return None, CheckResult(exercise, False, [f"calling your function raised {type(exc).__name__}: {exc}"])


def _diagnose(got, expected):
    """Guess what kind of mistake turns ``expected`` into ``got``."""
    hints = []
    scale = onp.vdot(got, expected) / max(onp.vdot(expected, expected), 1e-300)
    if onp.allclose(got, -expected, rtol=1e-6, atol=1e-9):
        hints.append("your values are the exact answer with the sign flipped")
    elif abs(scale) > 1e-12 and onp.allclose(got, scale * expected, rtol=1e-6, atol=1e-9):
        hints.append(f"your values are the exact answer times {scale:.4g}: a missing or extra factor")
    else:
        diff = got - expected
        if diff.size > 1 and onp.allclose(diff, diff.flat[0], rtol=1e-6, atol=1e-9):
            hints.append(f"your values differ from the exact answer by the constant {diff.flat[0]:.6g}: "
                         "a missing or extra additive term")
    return hints


def compare_arrays(exercise, got, expected, rtol=1e-7, atol=1e-9, name="value"):
    """Compare a deterministic answer with the exact one, explaining any mismatch.

    Parameters
    ----------
    exercise : str
    got, expected : array_like of the same shape
    rtol, atol : float
        Tolerances of ``numpy.allclose``.
    name : str
        What the arrays are, for the messages.

    Returns
    -------
    CheckResult
    """
    expected = onp.asarray(expected, dtype=float)
    try:
        got = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return CheckResult(exercise, False, [f"your {name} is not a numeric array (got {type(got).__name__})"])
    if got.shape != expected.shape:
        if got.size == expected.size:
            return CheckResult(exercise, False, [
                f"your {name} has shape {got.shape}, expected {expected.shape} (same number of entries: "
                "check which axis is which)"])
        return CheckResult(exercise, False, [f"your {name} has shape {got.shape}, expected {expected.shape}"])
    if not onp.all(onp.isfinite(got)):
        return CheckResult(exercise, False, [
            f"your {name} contains {int((~onp.isfinite(got)).sum())} non-finite value(s): "
            "use softplus / logsumexp instead of log(sigmoid) or log(sum(exp))"])
    if onp.allclose(got, expected, rtol=rtol, atol=atol):
        err = onp.max(onp.abs(got - expected))
        return CheckResult(exercise, True, [f"matches the exact {name} (largest difference {err:.2e})"])
    worst = onp.unravel_index(onp.argmax(onp.abs(got - expected)), got.shape)
    details = [f"largest mismatch at index {tuple(int(i) for i in worst)}: yours {got[worst]:.6g}, "
               f"exact {expected[worst]:.6g}"]
    return CheckResult(exercise, False, _diagnose(got, expected) + details)


def compare_monte_carlo(exercise, samples, expected, n_se=4.0, name="estimate"):
    """Check that independent estimates average to ``expected`` within ``n_se`` standard errors.

    Parameters
    ----------
    exercise : str
    samples : ndarray of shape (R, ...)
        R independent estimates from the student's estimator.
    expected : ndarray of shape (...)
        The exact value (e.g. the exact gradient).
    n_se : float, default 4.0
        Tolerance in standard errors, coordinate by coordinate (a small absolute floor avoids
        failing on coordinates whose estimates have zero variance).

    Returns
    -------
    CheckResult
        Also reports the empirical variance, summed over coordinates.
    """
    samples = onp.asarray(samples, dtype=float)
    expected = onp.asarray(expected, dtype=float)
    if samples.shape[1:] != expected.shape:
        return CheckResult(exercise, False, [
            f"each {name} has shape {samples.shape[1:]}, expected {expected.shape}"])
    if not onp.all(onp.isfinite(samples)):
        return CheckResult(exercise, False, [f"some {name}s are not finite"])
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / onp.sqrt(samples.shape[0])
    z = onp.abs(mean - expected) / (se + 1e-12 + 1e-9 * onp.abs(expected))
    variance = float(samples.var(axis=0, ddof=1).sum())
    if onp.all(z < n_se):
        return CheckResult(exercise, True, [
            f"the mean of {samples.shape[0]} {name}s is within {n_se:g} standard errors of the exact value "
            f"in every coordinate (worst: {z.max():.1f} SE); total variance {variance:.4g}"])
    details = _diagnose(mean, expected)
    worst = onp.unravel_index(onp.argmax(z), z.shape)
    details.append(f"coordinate {tuple(int(i) for i in worst)}: mean {mean[worst]:.5g} +- {se[worst]:.2g}, "
                   f"exact {expected[worst]:.5g} ({z[worst]:.1f} standard errors away): biased")
    return CheckResult(exercise, False, details)
