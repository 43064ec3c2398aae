"""Checkers for the exercises of notebooks 5 and 6: gradient estimators for Bernoulli latents.

Every checker runs the student's estimator many times on a small problem whose exact gradient
vi_lab computes by enumerating the 2**K latent states, and judges the *average* against it
within Monte Carlo error (4 standard errors per coordinate), so an unbiased estimator passes
whatever its variance and a biased one fails with a guess at the mistake. The problem:

- logits psi of shape (2, 3): two independent batch positions, K = 3 latents each;
- f(z) = (z . w - 0.6)^2 + 0.8 z_1 z_3 with w = (1, -0.7, 0.8), which couples the latents
  and is autograd-differentiable, so relaxed estimators can use it as well.

Checkers
--------
- :func:`check_score_function` (notebook 5): REINFORCE ``grad(f, logits, n_samples, rng)``.
- :func:`check_relaxed_sample` (notebook 5): the Gumbel-sigmoid sample ``relax(logits, u, tau)``.
- :func:`check_concrete_grad` (notebook 5): the pathwise gradient through the relaxation,
  ``grad(f, logits, n_samples, rng, tau)``.
- :func:`check_leave_one_out` (notebook 6): REINFORCE with the leave-one-out baseline.
- :func:`check_disarm` (notebook 6): DisARM, ``grad(f, logits, n_pairs, rng)``.
"""
import autograd.numpy as np
import numpy as onp

from .. import estimators as _estimators
from ..estimators.base import logistic_noise, uniform_open
from ..estimators.relaxed import relaxed_sample
from ..nn import sigmoid
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student

__all__ = ["check_score_function", "check_relaxed_sample", "check_concrete_grad", "check_leave_one_out",
           "check_disarm", "problem_objective", "PROBLEM_LOGITS"]

#: Logits of the checkers' problem: 2 batch positions, K = 3.
PROBLEM_LOGITS = onp.array([[0.4, -1.1, 1.8], [-0.3, 0.9, -2.2]])
_W = onp.array([1.0, -0.7, 0.8])
_N_SE = 4.0


def problem_objective(z):
    """The checkers' f: z of shape (S, ..., 3) -> (z . w - 0.6)^2 + 0.8 z_1 z_3 of shape (S, ...).

    Accepts 0/1 and relaxed z in [0, 1] and is autograd-differentiable.
    """
    return (np.dot(z, _W) - 0.6) ** 2 + 0.8 * z[..., 0] * z[..., 2]


def _shifted(f, shift):
    return lambda z: f(z) + shift


def _exact_grad(f=problem_objective, logits=PROBLEM_LOGITS):
    return _estimators.get("exact").grad(f, logits, 1, 0)


# ---------------------------------------------------------------------------- running the student
def _call_reps(exercise, fn, make_args, n_reps, shape, seed, name="gradient"):
    """Call ``fn(*make_args(rng))`` n_reps times with one Generator; stack the answers.

    Returns (samples of shape (R, *shape), None) or (None, failed CheckResult).
    """
    rng = onp.random.default_rng(seed)
    out = onp.empty((n_reps,) + tuple(shape))
    for r in range(n_reps):
        value, failure = run_student(exercise, fn, *make_args(rng))
        if failure is not None:
            return None, failure
        problem = _shape_problem(value, shape, name)
        if problem:
            return None, CheckResult(exercise, False, problem)
        out[r] = value
    if not onp.all(onp.isfinite(out)):
        return None, CheckResult(exercise, False, [
            f"some of your {name}s are not finite: compute log-probabilities with softplus / log_sigmoid"])
    return out, None


def _shape_problem(value, shape, name):
    try:
        arr = onp.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return [f"your {name} is not a numeric array (got {type(value).__name__})"]
    if arr.shape == tuple(shape):
        return []
    msg = f"your {name} has shape {arr.shape}, expected {tuple(shape)} (the shape of the logits)"
    if arr.shape[1:] == tuple(shape):
        msg += ": did you forget to average over the samples (axis 0)?"
    return [msg]


def _reproducible(exercise, fn, make_args, seed=12345):
    """A failed CheckResult if two calls with equally seeded Generators disagree, else None."""
    a, failure = run_student(exercise, fn, *make_args(onp.random.default_rng(seed)))
    if failure is not None:
        return failure
    b, failure = run_student(exercise, fn, *make_args(onp.random.default_rng(seed)))
    if failure is not None:
        return failure
    try:
        same = onp.array_equal(onp.asarray(a, dtype=float), onp.asarray(b, dtype=float), equal_nan=True)
    except (TypeError, ValueError):
        return None                     # the shape checks report it
    if not same:
        return CheckResult(exercise, False, [
            "two calls with identically seeded rng arguments gave different answers: draw every random "
            "number from the rng argument (rng.random(...)), never from np.random.* or a new generator"])
    return None


def _varies(exercise, samples, expected, name="gradient"):
    if onp.all(samples == samples[0]) and not onp.allclose(samples[0], expected, rtol=1e-6, atol=1e-9):
        return CheckResult(exercise, False, [
            f"your {name} is the same on every call: draw the samples with the rng argument, so that "
            "each call gives a new, independent estimate"])
    return None


def _scale_hints(mean, se, expected, n_samples, candidates=None):
    """Which simple transformation of ``expected`` is the mean consistent with (within 4 SE)?"""
    p = onp.asarray(sigmoid(PROBLEM_LOGITS))
    if candidates is None:
        candidates = [
            (-1.0, "your estimates average to minus the exact gradient: a sign is flipped (the score of "
                   "a Bernoulli with logit psi is d/dpsi log q(z) = z - sigmoid(psi))"),
            ((n_samples - 1) / n_samples,
             f"your estimates average to (S-1)/S = {(n_samples - 1) / n_samples:.3g} times the exact gradient: "
             "the baseline includes the sample's own f(z_s), which correlates it with z_s; leave that "
             "sample out"),
            (float(n_samples), f"your estimates average to S = {n_samples} times the exact gradient: average "
                               "over the samples instead of summing"),
            (1.0 / n_samples, f"your estimates average to 1/S = {1 / n_samples:.3g} times the exact gradient: "
                              "you divided by S twice"),
            (2.0, "your estimates average to twice the exact gradient: a factor 1/2 is missing"),
            (0.5, "your estimates average to half the exact gradient: an extra factor 1/2"),
            (1.0 / (p * (1.0 - p)), "your estimates average to the gradient with respect to the probabilities "
                                    "p = sigmoid(psi), not the logits psi: multiply by dp/dpsi = p (1 - p)"),
            (0.0, "your estimates average to zero: a gradient through thresholded 0/1 samples is zero, and "
                  "so is a learning signal that is centred using the sample itself"),
        ]
    hints = []
    for scale, text in candidates:
        target = scale * expected
        if onp.all(onp.abs(mean - target) < _N_SE * (se + 1e-12) + 1e-9 * onp.abs(target)):
            hints.append(text)
            break
    return hints


def _mc_check(exercise, samples, expected, n_samples, name="gradient", targets=()):
    """compare_monte_carlo plus a guess at the mistake when it fails.

    ``targets`` are (mean, hint) pairs: the exact expectation of a known wrong estimator and what
    to say when the student's estimates average to it; they are tried before the scale hints.
    """
    result = compare_monte_carlo(exercise, samples, expected, n_se=_N_SE, name=name)
    if result.passed:
        return result
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / onp.sqrt(samples.shape[0])
    hints = [hint for target, hint in targets
             if onp.all(onp.abs(mean - target) < _N_SE * (se + 1e-12) + 1e-9 * onp.abs(target))][:1]
    return CheckResult(exercise, False, (hints or _scale_hints(mean, se, expected, n_samples)) + result.details)


def _states_and_probs(logits=PROBLEM_LOGITS):
    """The 2**K states (M, K) and q(z) for every batch position, shape (M, N)."""
    n_latent = logits.shape[-1]
    states = ((onp.arange(2 ** n_latent)[:, None] >> onp.arange(n_latent - 1, -1, -1)) & 1).astype(float)
    p = onp.asarray(sigmoid(logits))                                            # (N, K)
    probs = onp.prod(onp.where(states[:, None, :] == 1.0, p[None], 1.0 - p[None]), axis=-1)
    return states, probs


def _expected_score_without_centring(f=problem_objective, logits=PROBLEM_LOGITS):
    """E_q[f(z) z]: the mean of REINFORCE with the score z instead of z - sigmoid(psi), shape (N, K)."""
    states, probs = _states_and_probs(logits)
    zs = onp.broadcast_to(states[:, None, :], (states.shape[0],) + logits.shape)
    return onp.einsum("mn,mn,mnk->nk", probs, onp.asarray(f(zs)), zs)


def _expected_disarm_independent(f=problem_objective, logits=PROBLEM_LOGITS):
    """The mean of the DisARM formula when b and b~ are drawn from two INDEPENDENT uniforms, (N, K)."""
    states, probs = _states_and_probs(logits)
    m = states.shape[0]
    zs = onp.broadcast_to(states[:, None, :], (m,) + logits.shape)
    fz = onp.asarray(f(zs))                                                     # (M, N)
    b, bt = states[:, None, None, :], states[None, :, None, :]                  # (M, 1, 1, K), (1, M, 1, K)
    weight = probs[:, None, :] * probs[None, :, :]                              # (M, M, N)
    diff = 0.5 * (fz[:, None, :] - fz[None, :, :])                              # (M, M, N)
    term = diff[..., None] * (-1.0) ** bt * (b != bt) * onp.asarray(sigmoid(onp.abs(logits)))
    return onp.einsum("abn,abnk->nk", weight, term)


def _reference_variance(name, n_samples, f=problem_objective, n_reps=4000, seed=99, **options):
    """Total variance (summed over coordinates) of a vi_lab estimator on the checkers' problem."""
    est = _estimators.get(name, **options)
    g = est.grad(f, PROBLEM_LOGITS, n_samples, seed, n_reps=n_reps)
    return float(g.var(axis=0, ddof=1).sum())


def _total_variance(samples):
    return float(samples.var(axis=0, ddof=1).sum())


def _generic_args(f, n_samples, logits=PROBLEM_LOGITS):
    return lambda rng: (f, logits.copy(), n_samples, rng)


# ---------------------------------------------------------------------------- notebook 5
def _unbiased_estimates(exercise, grad, expected, args, n_reps, rng, n_samples, targets=()):
    """The checks every unbiased-estimator exercise starts with.

    The student's estimator must repeat itself under a fixed seed, return ``n_reps`` estimates
    of the right shape that vary, and average to ``expected`` within Monte Carlo error.

    Returns
    -------
    (samples, result)
        ``result`` is the CheckResult of the first failed check, or the passing Monte Carlo
        check (with ``samples``, the (n_reps, ...) estimates, for further checks).
    """
    failure = _reproducible(exercise, grad, args)
    if failure is not None:
        return None, failure
    samples, failure = _call_reps(exercise, grad, args, n_reps, expected.shape, rng)
    if failure is not None:
        return None, failure
    failure = _varies(exercise, samples, expected)
    if failure is not None:
        return None, failure
    return samples, _mc_check(exercise, samples, expected, n_samples, targets=targets)


def check_score_function(grad, n_samples=3, n_reps=500, rng=0):
    """Check a score-function (REINFORCE) estimator for unbiasedness against the exact gradient.

    Parameters
    ----------
    grad : callable
        The student's ``grad(f, logits, n_samples, rng)``: ``logits`` of shape (N, K), ``f`` maps
        z of shape (S, N, K), values in {0., 1.}, to shape (S, N); returns an estimate of
        d/dlogits E_{z ~ Bern(sigmoid(logits))}[sum f(z)], shape (N, K).
    n_samples : int, default 3
        S passed to ``grad``.
    n_reps : int, default 500
        Independent calls whose average is compared with the exact gradient.
    rng : int, default 0
        Seed of the Generator handed to ``grad``.

    Returns
    -------
    CheckResult
        Passed if the mean of the estimates is within 4 standard errors of the exact gradient in
        every coordinate; reports the estimator's total variance next to vi_lab's REINFORCE.

    Notes
    -----
    The exact gradient is d/dpsi sum_z q_psi(z) f(z) over the 2**3 states, and the estimator
    (1/S) sum_s f(z_s) (z_s - sigmoid(psi)) is unbiased for it (Williams, 1992).
    """
    exercise = "score-function (REINFORCE) gradient estimator"
    expected = _exact_grad()
    args = _generic_args(problem_objective, n_samples)
    targets = [(_expected_score_without_centring(),
                "your estimates average to E_q[f(z) z]: the -sigmoid(psi) of the Bernoulli score is missing "
                "(d/dpsi log q(z) = z - sigmoid(psi), not z)")]
    samples, result = _unbiased_estimates(exercise, grad, expected, args, n_reps, rng, n_samples, targets)
    if not result.passed:
        return result
    ref = _reference_variance("score_function", n_samples)
    result.details.append(f"your total variance at S = {n_samples}: {_total_variance(samples):.4g} "
                          f"(vi_lab's score_function: {ref:.4g}); it falls like 1/S as S grows")
    return result


def check_relaxed_sample(relax, tau=0.5):
    """Check a Gumbel-sigmoid (binary Concrete) sample against vi_lab's.

    Parameters
    ----------
    relax : callable
        The student's ``relax(logits, u, tau)``: ``logits`` of shape (N, K), ``u`` uniform numbers
        in (0, 1) of shape (..., N, K); returns sigmoid((logits + log u - log(1 - u)) / tau), the
        shape of ``u``.
    tau : float, default 0.5
        The temperature passed to ``relax``.

    Returns
    -------
    CheckResult

    Notes
    -----
    L = log u - log(1 - u) is Logistic(0, 1) noise, and 1[logits + L > 0] ~ Bernoulli(sigmoid(logits)):
    the relaxation replaces the step function by a sigmoid of slope 1/tau (Maddison et al., 2017;
    Jang et al., 2017). Also checked: extreme logits (+-1e4) and u next to 0 or 1 give finite
    values in [0, 1].
    """
    exercise = "Gumbel-sigmoid (binary Concrete) relaxed sample"
    rng = onp.random.default_rng(3)
    logits = onp.array([[0.4, -1.1, 1.8], [-0.3, 0.9, -2.2], [1e4, -1e4, 0.0]])
    u = uniform_open(rng, (5,) + logits.shape)
    u[0, 2] = [1e-15, 1.0 - 1e-15, 0.5]
    expected = onp.asarray(relaxed_sample(logits, logistic_noise(u), tau))
    got, failure = run_student(exercise, relax, logits.copy(), u.copy(), tau)
    if failure is not None:
        return failure
    result = compare_arrays(exercise, got, expected, rtol=1e-7, atol=1e-10, name="relaxed sample")
    if result.passed:
        result.details.append("as tau -> 0 these values approach the 0/1 sample 1[logits + L > 0]")
        return result
    try:
        got = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return result
    if got.shape != expected.shape:
        return result
    alternatives = [
        (onp.asarray(relaxed_sample(logits, -logistic_noise(u), tau)), None),
        (onp.asarray(relaxed_sample(logits, logistic_noise(u), 1.0)),
         "your values match tau = 1: divide (logits + noise) by the temperature tau"),
        ((logits + logistic_noise(u) > 0).astype(float),
         "your values are the hard 0/1 sample 1[logits + L > 0]: the relaxation passes logits + L through "
         "sigmoid(. / tau) instead of a step, so that it can be differentiated"),
        (onp.asarray(relaxed_sample(logits, -onp.log(-onp.log(u)), tau)),
         "you used a single Gumbel noise -log(-log u); for two categories the relaxation needs the "
         "difference of two Gumbels, which is logistic: L = log u - log(1 - u)"),
        (onp.asarray(sigmoid(logits + logistic_noise(u) / tau)),
         "only the noise is divided by tau: divide the whole sum (logits + L) by tau"),
    ]
    with onp.errstate(all="ignore"):
        for alt, hint in alternatives:
            if onp.allclose(got, alt, rtol=1e-7, atol=1e-10, equal_nan=False):
                if hint is None:
                    return CheckResult(exercise, True, [
                        "correct in distribution: you used the noise -L = log(1 - u) - log u, which has the "
                        "same logistic distribution; the convention here is L = log u - log(1 - u)"])
                return CheckResult(exercise, False, [hint] + result.details)
    finite = onp.isfinite(got)
    if finite.all() and ((got < 0) | (got > 1)).any():
        return CheckResult(exercise, False, ["some of your values are outside [0, 1]: a relaxed Bernoulli "
                                             "sample is a sigmoid"] + result.details)
    return result


def check_concrete_grad(grad, tau=0.5, n_samples=4, n_reps=300, rng=0):
    """Check a Concrete (Gumbel-sigmoid reparametrization) gradient estimator.

    Parameters
    ----------
    grad : callable
        The student's ``grad(f, logits, n_samples, rng, tau)``: the average over S relaxed samples
        z~_s = sigmoid((logits + L_s) / tau) of d/dlogits f(z~_s), shape of ``logits`` (N, K). ``f``
        is autograd-differentiable and accepts relaxed z in [0, 1].
    tau : float, default 0.5
    n_samples : int, default 4
    n_reps : int, default 300
    rng : int, default 0

    Returns
    -------
    CheckResult
        Passed if the mean of the estimates agrees, within 4 combined standard errors, with the
        gradient of the relaxed objective E[f(z~)] (estimated precisely with vi_lab's ``concrete``
        estimator); reports the estimator's bias against the exact Bernoulli gradient.

    Notes
    -----
    The pathwise estimator is unbiased for d/dpsi E[f(z~)], not for d/dpsi E[f(z)] with z binary:
    the relaxation trades bias for low variance (Maddison et al., 2017; Jang et al., 2017).
    """
    exercise = "Concrete (relaxed reparametrization) gradient estimator"
    exact = _exact_grad()
    args = lambda r: (problem_objective, PROBLEM_LOGITS.copy(), n_samples, r, tau)  # noqa: E731
    failure = _reproducible(exercise, grad, args)
    if failure is not None:
        return failure
    samples, failure = _call_reps(exercise, grad, args, n_reps, exact.shape, rng)
    if failure is not None:
        return failure
    if onp.all(samples == 0):
        return CheckResult(exercise, False, [
            "your gradient is exactly zero: the derivative of a thresholded 0/1 sample is zero, so "
            "differentiate f at the relaxed sample sigmoid((logits + L) / tau)"])
    failure = _varies(exercise, samples, exact)
    if failure is not None:
        return failure
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / onp.sqrt(n_reps)

    def reference(t):
        g = _estimators.get("concrete", tau=t).grad(problem_objective, PROBLEM_LOGITS, 1, 7, n_reps=40000)
        return g.mean(axis=0), g.std(axis=0, ddof=1) / onp.sqrt(g.shape[0])

    def agrees(target, target_se):
        z = onp.abs(mean - target) / onp.sqrt(se ** 2 + target_se ** 2 + 1e-24)
        return bool(onp.all(z < _N_SE)), float(z.max())

    ref, ref_se = reference(tau)
    ok, worst = agrees(ref, ref_se)
    bias = float(onp.sqrt(onp.sum((ref - exact) ** 2)))
    if ok:
        return CheckResult(exercise, True, [
            f"the mean of {n_reps} estimates agrees with the gradient of the relaxed objective at tau = {tau:g} "
            f"(worst coordinate {worst:.1f} SE); total variance {_total_variance(samples):.4g}",
            f"its bias against the exact Bernoulli gradient is {bias:.3g} (Euclidean norm): the price of "
            "the relaxation, smaller for smaller tau"])
    details = []
    if agrees(exact, onp.zeros_like(exact))[0]:
        details.append("your estimates average to the exact Bernoulli gradient, not the relaxed one: the "
                       "Concrete estimator differentiates f at relaxed samples (you may have written a "
                       "score-function estimator)")
    elif tau != 1.0 and agrees(*reference(1.0))[0]:
        details.append("your estimates match the relaxation at tau = 1: divide (logits + L) by tau")
    elif agrees(-ref, ref_se)[0]:
        details.append("your estimates average to minus the relaxed gradient: a sign is flipped")
    worst_idx = onp.unravel_index(onp.argmax(onp.abs(mean - ref) / (se + 1e-12)), mean.shape)
    details.append(f"coordinate {tuple(int(i) for i in worst_idx)}: your mean {mean[worst_idx]:.5g} +- "
                   f"{se[worst_idx]:.2g}, relaxed gradient {ref[worst_idx]:.5g}, exact Bernoulli gradient "
                   f"{exact[worst_idx]:.5g}")
    return CheckResult(exercise, False, details)


# ---------------------------------------------------------------------------- notebook 6
def _shift_invariant(exercise, grad, f, n_samples, shift, what):
    """Failed CheckResult unless adding ``shift`` to f leaves the estimate unchanged (same random numbers)."""
    plain, failure = run_student(exercise, grad, f, PROBLEM_LOGITS.copy(), n_samples, onp.random.default_rng(5))
    if failure is not None:
        return failure
    moved, failure = run_student(exercise, grad, _shifted(f, shift), PROBLEM_LOGITS.copy(), n_samples,
                                 onp.random.default_rng(5))
    if failure is not None:
        return failure
    plain, moved = onp.asarray(plain, dtype=float), onp.asarray(moved, dtype=float)
    if not onp.allclose(plain, moved, rtol=1e-6, atol=1e-8 * shift):
        return CheckResult(exercise, False, [
            f"adding the constant {shift:g} to f changed your estimate (same random numbers): {what}"])
    return None


def check_leave_one_out(grad, n_samples=4, n_reps=500, shift=20.0, rng=0):
    """Check REINFORCE with the leave-one-out baseline: unbiased, blind to constants, lower variance.

    Parameters
    ----------
    grad : callable
        The student's ``grad(f, logits, n_samples, rng)`` (shapes as in
        :func:`check_score_function`; ``n_samples >= 2``).
    n_samples : int, default 4
    n_reps : int, default 500
    shift : float, default 20.0
        Constant added to f for the invariance and variance checks.
    rng : int, default 0

    Returns
    -------
    CheckResult

    Notes
    -----
    g = (1/S) sum_s (f(z_s) - b_s) (z_s - sigmoid(psi)) with b_s = (1/(S-1)) sum_{j != s} f(z_j).
    b_s is independent of z_s, so the baseline adds zero in expectation (unbiased); a constant
    added to f cancels in f(z_s) - b_s, so, unlike plain REINFORCE, the estimate does not get
    noisier when f is shifted (Kool, van Hoof & Welling, 2019).
    """
    exercise = "leave-one-out (RLOO) baseline"
    expected = _exact_grad()
    args = _generic_args(problem_objective, n_samples)
    samples, result = _unbiased_estimates(exercise, grad, expected, args, n_reps, rng, n_samples)
    if not result.passed:
        return result
    failure = _shift_invariant(exercise, grad, problem_objective, n_samples, shift,
                               "a baseline built from the other samples cancels any constant exactly; check "
                               "that every sample's signal subtracts the mean of the *other* S - 1 values")
    if failure is not None:
        return failure
    shifted = _shifted(problem_objective, shift)
    moved, failure = _call_reps(exercise, grad, _generic_args(shifted, n_samples), n_reps, expected.shape, rng + 1)
    if failure is not None:
        return failure
    mine, plain = _total_variance(moved), _reference_variance("score_function", n_samples, shifted)
    if not mine < plain:
        return CheckResult(exercise, False, [
            f"with f shifted by {shift:g} your variance {mine:.4g} is not below plain REINFORCE's {plain:.4g}"])
    result.details.append(f"adding {shift:g} to f leaves your estimate unchanged; its variance {mine:.4g} is "
                          f"{plain / mine:.3g} times smaller than plain REINFORCE's ({plain:.4g}) at S = {n_samples}")
    return result


def check_disarm(grad, n_pairs=4, n_reps=500, rng=0):
    """Check a DisARM estimator: unbiased, blind to constants, and no noisier than vi_lab's DisARM.

    Parameters
    ----------
    grad : callable
        The student's ``grad(f, logits, n_pairs, rng)``: ``n_pairs`` antithetic pairs (two
        evaluations of f each); shapes as in :func:`check_score_function`.
    n_pairs : int, default 4
    n_reps : int, default 500
    rng : int, default 0

    Returns
    -------
    CheckResult
        Passed if unbiased within 4 standard errors, unchanged when a constant is added to f,
        and with a total variance at most 1.3 times that of vi_lab's ``disarm`` (ARM, its
        unintegrated ancestor, is noisier and fails this part).

    Notes
    -----
    One uniform u per latent gives b = 1[u < sigmoid(psi)] and b~ = 1[u > sigmoid(-psi)], both
    distributed as q; g_k = 1/2 (f(b) - f(b~)) (-1)^{b~_k} 1[b_k != b~_k] sigmoid(|psi_k|)
    (Dong, Mnih & Tucker, 2020).
    """
    exercise = "DisARM antithetic gradient estimator"
    expected = _exact_grad()
    args = _generic_args(problem_objective, n_pairs)
    targets = [(_expected_disarm_independent(),
                "your estimates average to the DisARM formula with b and b~ drawn from two independent "
                "uniforms: draw ONE u per pair and build both b = 1[u < sigmoid(psi)] and "
                "b~ = 1[u > sigmoid(-psi)] from it (antithetic, not independent)")]
    samples, result = _unbiased_estimates(exercise, grad, expected, args, n_reps, rng, n_pairs, targets)
    if not result.passed:
        return result
    failure = _shift_invariant(exercise, grad, problem_objective, n_pairs, 20.0,
                               "both members of a pair must come from the same uniforms u, so that "
                               "f(b) - f(b~) cancels any constant")
    if failure is not None:
        return failure
    mine = _total_variance(samples)
    ref_disarm = _reference_variance("disarm", n_pairs)
    ref_arm = _reference_variance("arm", n_pairs)
    if mine > 1.3 * ref_disarm:
        looks_like = (" (close to ARM's: integrate out u, i.e. weight by sigmoid(|psi|) and keep only the "
                      "coordinates where b and b~ differ)" if mine > 0.75 * ref_arm else "")
        return CheckResult(exercise, False, [
            f"unbiased, but your total variance {mine:.4g} is well above DisARM's {ref_disarm:.4g} at "
            f"{n_pairs} pairs (ARM: {ref_arm:.4g}){looks_like}"])
    result.details.append(f"total variance {mine:.4g} with {n_pairs} pairs (vi_lab's disarm {ref_disarm:.4g}, "
                          f"arm {ref_arm:.4g})")
    return result
