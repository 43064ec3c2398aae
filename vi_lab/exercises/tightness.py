"""Checkers for the exercises of notebook 7: how tight is the ELBO?

Checkers
--------
- :func:`check_iwae`: the student's Monte Carlo IWAE bound ``iwae(model, params, logits, x, k, rng)``
  -> (N,), judged against its exact expectation, computed by enumerating every k-tuple of latent
  states of a small model (K = 3, so 8**k tuples).
- :func:`check_gaps`: ``gaps(model, params, encoder_logits, best_logits, x)`` -> the approximation
  gap and the amortization gap per datapoint, against enumeration.
"""
import functools
import itertools

import numpy as onp
from scipy.special import logsumexp

from .. import exact, variational
from ..inference import fit_local
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student
from .wake_sleep import small_problem

__all__ = ["check_iwae", "check_gaps", "expected_iwae"]

_N_SE = 4.0


def expected_iwae(model, params, logits, x, k):
    """Exact E[IWAE_k] per datapoint by enumerating all (2**K)**k tuples of latent states.

    Parameters
    ----------
    model : BernoulliLVM
        Small: (2**K)**k tuples are enumerated (512 for K = 3, k = 3).
    params : dict
    logits : ndarray of shape (N, K)
    x : ndarray of shape (N, L), values in {0., 1.}
    k : int

    Returns
    -------
    ndarray of shape (N,)

    Notes
    -----
    E[IWAE_k] = sum_{z_1..z_k} prod_i q(z_i|x) log (1/k) sum_i p(x, z_i) / q(z_i|x); k = 1 is the
    ELBO, and the value rises towards log p(x) as k grows (Burda et al., 2016, Theorem 1).
    """
    states = exact.all_states(model.n_latent)
    log_q = onp.asarray(variational.log_prob(logits, states[:, None, :]))            # (M, N)
    log_w = onp.asarray(model.log_joint(params, x[None], states[:, None, :])) - log_q
    tuples = onp.array(list(itertools.product(range(states.shape[0]), repeat=k)))   # (T, k)
    log_prob = log_q[tuples].sum(axis=1)                                            # (T, N)
    bound = logsumexp(log_w[tuples], axis=1) - onp.log(k)                           # (T, N)
    return onp.sum(onp.exp(log_prob) * bound, axis=0)


def _iwae_reps(exercise, iwae, problem, k, n_reps, seed):
    model, params, x, logits = problem
    rng = onp.random.default_rng(seed)
    out = onp.empty((n_reps, x.shape[0]))
    for r in range(n_reps):
        value, failure = run_student(exercise, iwae, model, params, logits.copy(), x.copy(), k, rng)
        if failure is not None:
            return None, failure
        try:
            value = onp.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return None, CheckResult(exercise, False, [f"your bound is not a numeric array (got {type(value).__name__})"])
        if value.shape != (x.shape[0],):
            hint = " (one value per datapoint: reduce over the k samples, axis 0)" if value.shape[-1:] == (x.shape[0],) \
                else ""
            if value.shape == (k,):
                hint = (f" (one value per sample: you reduced over the datapoints, axis 1; take the log-mean-exp "
                        f"over the k samples, axis 0)")
            return None, CheckResult(exercise, False, [
                f"your bound has shape {value.shape}, expected ({x.shape[0]},){hint}"])
        if not onp.all(onp.isfinite(value)):
            return None, CheckResult(exercise, False, [
                "your bound is not finite: log weights of hundreds of nats are normal, so take the log of the "
                "mean weight with logsumexp(log_w, axis=0) - log k (the maximum subtracted), never "
                "log(mean(exp(log_w)))"])
        out[r] = value
    return out, None


def _far_problem():
    """A sharp decoder and data it finds very unlikely: every log weight is below -800 nats."""
    model, params, x, logits = small_problem(1, sharp=300.0)
    return model, params, 1.0 - x, logits


def check_iwae(iwae, n_reps=300, rng=0):
    """Check a Monte Carlo IWAE bound against its exact expectation.

    Parameters
    ----------
    iwae : callable
        ``iwae(model, params, logits, x, k, rng)``: draws k samples z_i ~ q(z|x_n) (logits (N, K))
        with the Generator ``rng`` and returns log (1/k) sum_i p(x_n, z_i) / q(z_i|x_n), shape (N,).
    n_reps : int, default 300
        Independent calls per setting.
    rng : int, default 0

    Returns
    -------
    CheckResult
        Passed if, for k = 1 and k = 3, the average of the estimates is within 4 standard errors
        of the exact expectation for every datapoint, and the bound stays finite for a model whose
        log-likelihoods are hundreds of nats below zero.

    Notes
    -----
    IWAE_k = log (1/k) sum_i w_i, w_i = p(x, z_i) / q(z_i|x) (Burda, Grosse & Salakhutdinov, 2016).
    """
    exercise = "importance-weighted (IWAE) bound"
    details = []
    problems = [("", small_problem(0)), (" (log weights near -1000)", _far_problem())]
    for label, problem in problems:
        model, params, x, logits = problem
        for k in (1, 3):
            samples, failure = _iwae_reps(exercise, iwae, problem, k, n_reps, rng + k)
            if failure is not None:
                return failure
            expected = expected_iwae(model, params, logits, x, k)
            if onp.all(samples == samples[0]) and not onp.allclose(samples[0], expected):
                return CheckResult(exercise, False, [
                    "your bound is the same on every call: draw the k samples with the rng argument"])
            result = compare_monte_carlo(exercise, samples, expected, n_se=_N_SE, name=f"IWAE_{k} estimate")
            if not result.passed:
                where = [f"k = {k}{label}, " + d for d in result.details]
                return CheckResult(exercise, False, _iwae_hints(samples, problem, k) + where)
            if k == 3 and not label:
                elbo = exact.elbo(model, params, logits, x)
                log_px = exact.log_marginal(model, params, x)
                details.append(f"k = 3: the mean of your bounds is within {_N_SE:g} SE of the exact E[IWAE_3] "
                               f"for every datapoint; on average it sits {onp.mean(expected - elbo):.3f} nats above "
                               f"the ELBO and {onp.mean(log_px - expected):.3f} below log p(x)")
    details.append("k = 1 reproduces the ELBO, and the bound stays finite when log weights are hundreds "
                   "of nats below zero")
    return CheckResult(exercise, True, details)


def _iwae_hints(samples, problem, k):
    model, params, x, logits = problem
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / onp.sqrt(samples.shape[0]) + 1e-12
    elbo = exact.elbo(model, params, logits, x)
    expected = expected_iwae(model, params, logits, x, k)
    log_px = exact.log_marginal(model, params, x)
    candidates = [
        (elbo, "your estimates average to the ELBO: you averaged the log weights; IWAE takes the log of the "
               "averaged weights, log (1/k) sum_i w_i"),
        (expected + onp.log(k), "your estimates are log k too high: divide the sum of the weights by k "
                                "(subtract log k)"),
        (log_px, "your estimates average to log p(x) itself: are you enumerating instead of sampling k "
                 "latents from q?"),
    ]
    for value, hint in candidates:
        if onp.all(onp.abs(mean - value) < _N_SE * se):
            return [hint]
    return []


def gaps_reference(model, params, encoder_logits, best_logits, x):
    """(approximation gap, amortization gap), each of shape (N,), by enumeration."""
    log_px = exact.log_marginal(model, params, x)
    elbo_best = exact.elbo(model, params, best_logits, x)
    elbo_enc = exact.elbo(model, params, encoder_logits, x)
    return log_px - elbo_best, elbo_best - elbo_enc


@functools.lru_cache(maxsize=1)
def _gaps_problem_cached():
    model, params, x, encoder_logits = small_problem(4, n_data=5, sharp=3.0)
    return model, params, x, encoder_logits, fit_local(model, params, x, rng=0)


def _gaps_problem():
    """The gap checker's problem, with fresh copies of every array (the student may modify them)."""
    model, params, x, encoder_logits, best_logits = _gaps_problem_cached()
    params = {"prior_logits": params["prior_logits"].copy(),
              "decoder": {key: value.copy() for key, value in params["decoder"].items()}}
    return model, params, x.copy(), encoder_logits.copy(), best_logits.copy()


def check_gaps(gaps):
    """Check the split of log p(x) - ELBO into the approximation and the amortization gap.

    Parameters
    ----------
    gaps : callable
        ``gaps(model, params, encoder_logits, best_logits, x)`` with the logits (N, K) an encoder
        outputs, the logits (N, K) of the best mean-field q per datapoint (from
        :func:`vi_lab.inference.fit_local`) and data x (N, L); returns the pair
        ``(approximation_gap, amortization_gap)`` of arrays of shape (N,).

    Returns
    -------
    CheckResult

    Notes
    -----
    log p(x) - ELBO(q_encoder) = [log p(x) - ELBO(q*)] + [ELBO(q*) - ELBO(q_encoder)], with q* the
    best mean-field q for that x: the first term is the approximation gap (the family's fault),
    the second the amortization gap (the encoder's fault) (Cremer, Li & Duvenaud, 2018). Both
    are non-negative when q* really is optimal.
    """
    exercise = "approximation gap and amortization gap"
    model, params, x, encoder_logits, best_logits = _gaps_problem()
    approx, amort = gaps_reference(model, params, encoder_logits, best_logits, x)
    got, failure = run_student(exercise, gaps, model, params, encoder_logits.copy(), best_logits.copy(), x.copy())
    if failure is not None:
        return failure
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return CheckResult(exercise, False, [
            "return a pair (approximation_gap, amortization_gap) of arrays of shape (N,), got "
            f"{type(got).__name__}" + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")])
    try:
        got_approx, got_amort = (onp.asarray(g, dtype=float) for g in got)
    except (TypeError, ValueError):
        return CheckResult(exercise, False, ["both gaps must be numeric arrays of shape (N,)"])
    if got_approx.shape == approx.shape and got_amort.shape == amort.shape:
        if onp.allclose(got_approx, amort, rtol=1e-7, atol=1e-9) and onp.allclose(got_amort, approx, rtol=1e-7,
                                                                                  atol=1e-9):
            return CheckResult(exercise, False, [
                "your two gaps are swapped: the approximation gap is log p(x) - ELBO(best q), the "
                "amortization gap ELBO(best q) - ELBO(encoder's q)"])
    first = compare_arrays(exercise, got_approx, approx, rtol=1e-7, atol=1e-9, name="approximation gap")
    second = compare_arrays(exercise, got_amort, amort, rtol=1e-7, atol=1e-9, name="amortization gap")
    if first.passed and second.passed:
        return CheckResult(exercise, True, [
            "both gaps match enumeration and add up to log p(x) - ELBO(encoder's q)",
            f"here: approximation gap {approx.mean():.3f} nats, amortization gap {amort.mean():.3f} nats on "
            "average (the 'encoder' logits are random, so the second is large)"])
    details = []
    total = approx + amort
    for name, got_gap, check in (("approximation", got_approx, first), ("amortization", got_amort, second)):
        if check.passed:
            continue
        if got_gap.shape == total.shape and onp.allclose(got_gap, total, rtol=1e-7, atol=1e-9):
            details.append(f"your {name} gap is the total gap log p(x) - ELBO(encoder's q); split it at "
                           "ELBO(best q)")
        details.extend(check.details)
    return CheckResult(exercise, False, details)
