"""Checkers for the exercises of notebook 02 (the ELBO and per-datapoint VI).

- :func:`check_elbo`: the exact ELBO of a mean-field q by enumeration.
- :func:`check_elbo_estimate`: an unbiased Monte Carlo estimate of the ELBO.
- :func:`check_elbo_grad_logits`: the exact gradient of the ELBO with respect to q's logits.

The exact answers come from :func:`vi_lab.exact.elbo` and :func:`vi_lab.exact.elbo_grad`.
"""
import autograd
import numpy as onp

from .. import exact, variational
from ..nn import sigmoid
from ._check import CheckResult, compare_monte_carlo, run_student
from .bernoulli_model import _compare, _extreme_problem, _joint_table, _random_problem, _run_problems

__all__ = ["check_elbo", "check_elbo_estimate", "check_elbo_grad_logits"]


def _with_q(problem, q_logits, note):
    problem.q_logits = onp.asarray(q_logits, dtype=float)
    problem.description += note
    return problem


def _q_problems(extreme_logits=1e4):
    """Three (model, params, x, q_logits) problems; the second has a q equal to the prior and a
    near-deterministic q (logits +-``extreme_logits``), the third has log p(x) near -3000."""
    rng = onp.random.default_rng(11)
    first = _random_problem(0)
    first = _with_q(first, 1.5 * rng.standard_normal(first.x.shape[0:1] + (first.model.n_latent,)),
                    ", random q logits")
    second = _random_problem(1, n_latent=4, n_obs=6, hidden=(5, 4), n_data=4)
    logits = 1.5 * rng.standard_normal((4, 4))
    logits[1] = second.params["prior_logits"]
    logits[2] = extreme_logits * onp.array([1.0, -1.0, -1.0, 1.0])
    second = _with_q(second, logits, f", q = prior for row 1, q logits +-{extreme_logits:g} for row 2")
    third = _with_q(_extreme_problem(), rng.standard_normal((3, 3)), ", random q logits")
    return [first, second, third]


def _pieces(problem):
    """Exact ELBO, entropy, KL to the prior, log p(x) and E_q[log p(x, z)] for one problem."""
    model, params, q_logits, x = problem.model, problem.params, problem.q_logits, problem.x
    elbo = exact.elbo(model, params, q_logits, x)
    entropy = onp.asarray(variational.entropy(q_logits))
    kl_prior = onp.asarray(variational.kl_to_prior(q_logits, params["prior_logits"]))
    log_px = exact.log_marginal(model, params, x)
    return elbo, entropy, kl_prior, log_px


def _call(fn, p):
    return fn(p.model, p.params, p.q_logits.copy(), p.x.copy())


# ---------------------------------------------------------------------------- exercise 1
def check_elbo(elbo):
    """Check a student's exact ELBO.

    Parameters
    ----------
    elbo : callable
        ``elbo(model, params, q_logits, x) -> ndarray of shape (N,)`` for ``q_logits`` of shape
        (N, K) and ``x`` of shape (N, L): ELBO_n = sum_z q(z|x_n) [log p(x_n, z) - log q(z|x_n)].

    Returns
    -------
    CheckResult
        Compared with :func:`vi_lab.exact.elbo` on three small problems, including a
        near-deterministic q (logits +-1e4, where 0 * log 0 must count as 0) and a model
        with log p(x) near -3000.

    Notes
    -----
    Named mistakes: the entropy term left out (E_q[log p(x, z)]), the reconstruction term
    alone (E_q[log p(x|z)]), the KL to the prior added instead of subtracted, the entropy
    subtracted instead of added, log p(x) or the gap KL(q || p(z|x)) returned, the states
    averaged uniformly instead of weighted by q.
    """
    exercise = "the exact ELBO"

    def evaluate(problem, got):
        expected, entropy, kl_prior, log_px = _pieces(problem)
        table, _, states = _joint_table(problem)
        log_q = onp.asarray(variational.log_prob(problem.q_logits, states[:, None, :])).T     # (N, M)
        mistakes = [
            ("you left out the entropy term -E_q[log q(z|x)]: you computed E_q[log p(x, z)]", expected - entropy),
            ("you computed only the reconstruction term E_q[log p(x|z)]: subtract KL(q(z|x) || p(z))",
             expected + kl_prior),
            ("you added KL(q(z|x) || p(z)) instead of subtracting it", expected + 2.0 * kl_prior),
            ("the entropy has the wrong sign: ELBO = E_q[log p(x, z) - log q(z|x)]", expected - 2.0 * entropy),
            ("you returned log p(x), the quantity the ELBO bounds", log_px),
            ("you returned the gap KL(q || p(z|x)) = log p(x) - ELBO", log_px - expected),
            ("you averaged over the states uniformly: weight each state by q(z|x)",
             onp.mean(table - log_q, axis=1)),
        ]
        result = _compare(exercise, got, expected, mistakes, rtol=1e-7, atol=1e-8, name="ELBO")
        if not result.passed:
            result.details = _zero_log_zero_hint(got, problem.q_logits) + result.details
        return result

    return _run_problems(exercise, elbo, _q_problems(), _call, evaluate, "matches exact.elbo")


def _zero_log_zero_hint(got, q_logits, extreme=30.0):
    """The 0 * log 0 hint when the non-finite values sit exactly in the rows with a near-deterministic q."""
    try:
        got = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return []
    if got.shape != q_logits.shape[:1]:
        return []
    bad = ~onp.isfinite(got)
    sharp = onp.any(onp.abs(q_logits) > extreme, axis=1)
    if bad.any() and onp.all(sharp[bad]):
        return ["your ELBO is not finite for the near-deterministic q (logits +-1e4): there some states have "
                "q(z) = 0 exactly, and 0 * log 0 = 0 * (-inf) = nan. A product of probabilities "
                "prod_k sigma(psi_k)^z_k (1 - sigma(psi_k))^(1 - z_k) rounds to 0; compute log q(z) in log "
                "space (variational.log_prob, softplus) and weight by exp(log q), or use the closed-form "
                "entropy"]
    return []


# ---------------------------------------------------------------------------- exercise 2
def _estimates(exercise, fn, problem, n_samples, reps, rng):
    """``reps`` calls of the student's estimator as a (reps, N) array, or a failed CheckResult."""
    n = problem.x.shape[0]
    out = onp.empty((reps, n))
    for r in range(reps):
        got, failure = run_student(exercise, fn, problem.model, problem.params, problem.q_logits.copy(),
                                   problem.x.copy(), n_samples, rng)
        if failure is not None:
            return None, failure
        try:
            got = onp.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return None, CheckResult(exercise, False, [f"your estimate is not a numeric array ({type(got).__name__})"])
        if got.shape != (n,):
            extra = " (one value per draw? average over the n_samples axis)" if got.shape == (n_samples, n) else ""
            return None, CheckResult(exercise, False, [
                f"your estimate has shape {got.shape}, expected ({n},): one value per datapoint{extra}"])
        if not onp.all(onp.isfinite(got)):
            return None, CheckResult(exercise, False, ["your estimate contains non-finite values"])
        out[r] = got
    return out, None


def _close_in_se(samples, value, n_se=4.5):
    se = samples.std(axis=0, ddof=1) / onp.sqrt(samples.shape[0])
    return bool(onp.all(onp.abs(samples.mean(axis=0) - value) <= n_se * se + 1e-9 * (1 + onp.abs(value))))


def check_elbo_estimate(elbo_estimate, reps=400):
    """Check that a student's Monte Carlo ELBO estimate is unbiased and averages its draws.

    Parameters
    ----------
    elbo_estimate : callable
        ``elbo_estimate(model, params, q_logits, x, n_samples, rng) -> ndarray of shape (N,)``:
        an average over ``n_samples`` draws z ~ q(z|x_n) of log p(x_n, z) - log q(z|x_n), with all
        randomness from the ``numpy.random.Generator`` ``rng``.
    reps : int, default 400
        Independent calls with ``n_samples = 1`` (and ``reps // 4`` with ``n_samples = 20``).

    Returns
    -------
    CheckResult
        Passes when the same seed reproduces the estimate, the mean of the estimates is within
        4 standard errors of :func:`vi_lab.exact.elbo` for both sample sizes, and the variance
        with 20 samples is well below the variance with one.

    Notes
    -----
    E_{z ~ q}[log p(x, z) - log q(z|x)] = ELBO, so the average of S such terms is unbiased for
    any S, and its variance falls as 1/S. Named mistakes: the -log q term left out, only
    log p(x|z) used, a sum over draws instead of a mean, a log-mean-exp over draws (that is
    the importance-weighted bound of notebook 07, biased for the ELBO).
    """
    exercise = "Monte Carlo ELBO estimate"
    problem = _q_problems(extreme_logits=3.0)[0]
    expected, entropy, kl_prior, _ = _pieces(problem)

    first, failure = _estimates(exercise, elbo_estimate, problem, 1, 1, onp.random.default_rng(0))
    if failure is not None:
        return failure
    again, failure = _estimates(exercise, elbo_estimate, problem, 1, 1, onp.random.default_rng(0))
    if failure is not None:
        return failure
    if not onp.array_equal(first, again):
        return CheckResult(exercise, False, [
            "two calls with the same seed gave different estimates: draw z with the rng argument "
            "(e.g. vi_lab.variational.sample(q_logits, n_samples, rng)), never with np.random.*"])

    rng = onp.random.default_rng(1)
    single, failure = _estimates(exercise, elbo_estimate, problem, 1, reps, rng)
    if failure is not None:
        return failure
    if onp.all(single == single[0]):
        return CheckResult(exercise, False, [
            "every call returned the same numbers: the estimate must use fresh draws z ~ q(z|x) from rng"])
    result = compare_monte_carlo(exercise, single, expected, n_se=4.0, name="estimate")
    if not result.passed:
        for hint, value in [
                ("your estimates average to E_q[log p(x, z)]: the -log q(z|x) term is missing", expected - entropy),
                ("your estimates average to E_q[log p(x|z)]: the prior and the -log q(z|x) terms are missing "
                 "(or subtract KL(q || p(z)))", expected + kl_prior)]:
            if _close_in_se(single, value):
                result.details.insert(0, hint)
        result.details.append("with n_samples = 1")
        return result

    n_many = 20
    many, failure = _estimates(exercise, elbo_estimate, problem, n_many, max(reps // 4, 20), rng)
    if failure is not None:
        return failure
    result = compare_monte_carlo(exercise, many, expected, n_se=4.0, name="estimate")
    if not result.passed:
        if _close_in_se(many, n_many * expected):
            result.details.insert(0, f"with n_samples = {n_many} your estimates are {n_many} times the ELBO: "
                                     "average the draws instead of summing them")
        else:
            result.details.insert(0, f"unbiased with n_samples = 1 but not with n_samples = {n_many}: average "
                                     "log p(x, z_s) - log q(z_s|x) over the draws (a log-mean-exp of the weights "
                                     "is the importance-weighted bound of notebook 07, not the ELBO)")
        return result
    ratio = single.var(axis=0, ddof=1).sum() / max(many.var(axis=0, ddof=1).sum(), 1e-300)
    if ratio < 5.0:
        return CheckResult(exercise, False, [
            f"the variance with n_samples = {n_many} is only {ratio:.1f} times smaller than with one draw "
            f"(expected about {n_many}): average over n_samples independent draws"])
    return CheckResult(exercise, True, [
        f"unbiased: the mean of {reps} estimates is within 4 standard errors of exact.elbo for every datapoint "
        f"(and with n_samples = {n_many})",
        f"averaging {n_many} draws cut the variance by a factor {ratio:.1f} (about {n_many} expected)"])


# ---------------------------------------------------------------------------- exercise 3
def _kl_prior_sum(q_logits, prior_logits):
    return autograd.numpy.sum(variational.kl_to_prior(q_logits, prior_logits))


_grad_kl_prior = autograd.grad(_kl_prior_sum)


def check_elbo_grad_logits(elbo_grad_logits):
    """Check a student's exact gradient of the ELBO with respect to the logits of q.

    Parameters
    ----------
    elbo_grad_logits : callable
        ``elbo_grad_logits(model, params, q_logits, x) -> ndarray of shape (N, K)``, row n the
        gradient of ELBO_n with respect to psi_n = ``q_logits[n]``.

    Returns
    -------
    CheckResult
        Compared with the ``g_logits`` of :func:`vi_lab.exact.elbo_grad` on three small problems.

    Notes
    -----
    dELBO/dpsi = sum_z q(z|x) [log p(x, z) - log q(z|x)] (z - sigmoid(psi)), because
    d log q(z|x)/dpsi = z - sigmoid(psi) and sum_z q(z|x) (z - sigmoid(psi)) = 0 (the
    score-function identity, exact here because the sum runs over every z). Named mistakes: the
    entropy's gradient left out, the gradient with respect to the probabilities sigmoid(psi)
    instead of the logits, the KL to the prior's gradient left out.
    """
    exercise = "the exact ELBO gradient with respect to q's logits"

    def evaluate(problem, got):
        model, params, q_logits, x = problem.model, problem.params, problem.q_logits, problem.x
        _, expected = exact.elbo_grad(model, params, q_logits, x)
        s = onp.asarray(sigmoid(q_logits))
        slope = s * (1.0 - s)
        with onp.errstate(divide="ignore", invalid="ignore"):
            per_prob = onp.where(slope > 0, expected / onp.where(slope > 0, slope, 1.0), 0.0)
        mistakes = [
            ("you left out the gradient of the entropy: you differentiated E_q[log p(x, z)] only "
             "(the -log q(z|x) term inside the sum is missing)", expected + slope * q_logits),
            ("you returned the gradient with respect to the probabilities sigmoid(psi); multiply by "
             "sigmoid(psi) (1 - sigmoid(psi)) for the logits", per_prob),
            ("you differentiated E_q[log p(x|z)] only: the KL(q || p(z)) term's gradient is missing",
             expected + onp.asarray(_grad_kl_prior(q_logits, params["prior_logits"]))),
        ]
        return _compare(exercise, got, expected, mistakes, rtol=1e-6, atol=1e-8, name="gradient")

    return _run_problems(exercise, elbo_grad_logits, _q_problems(extreme_logits=20.0), _call, evaluate,
                         "matches the q-gradient of exact.elbo_grad")
