"""Checkers for the exercises of notebook 08, the capstone on binarized digits.

- :func:`check_chunked_log_marginal`: exact log p(x) with the 2**K states visited in chunks, the
  way it is computed when the (N, 2**K) table of log p(x, z) does not fit in memory.
- :func:`check_effective_sample_size`: the effective sample size (sum w)^2 / sum w^2 of importance
  weights given in log space, per datapoint.

The references are :func:`vi_lab.exact.log_marginal` and a log-space formula evaluated here.
"""
import numpy as onp
from scipy.special import logsumexp

from .. import exact
from ._check import CheckResult
from .bernoulli_model import _compare, _extreme_problem, _random_problem, _run_problems

__all__ = ["check_chunked_log_marginal", "check_effective_sample_size"]


def _chunk_tables(problem, chunk_size):
    """The per-chunk log-sum-exps of log p(x_n, z) over the states, shape (n_chunks, N)."""
    model, params, x = problem.model, problem.params, problem.x
    states = exact.all_states(model.n_latent)
    parts = []
    for start in range(0, states.shape[0], chunk_size):
        block = model.log_joint(params, x[:, None, :], states[None, start:start + chunk_size])   # (N, C)
        parts.append(logsumexp(block, axis=1))
    return onp.array(parts), states.shape[0]


def check_chunked_log_marginal(log_marginal_chunked):
    """Check exact log p(x) accumulated over chunks of latent states.

    Parameters
    ----------
    log_marginal_chunked : callable
        ``log_marginal_chunked(model, params, x, chunk_size) -> ndarray of shape (N,)``: log p(x_n)
        summed over all 2**K states, visiting at most ``chunk_size`` states at a time (so memory is
        N x chunk_size, not N x 2**K).

    Returns
    -------
    CheckResult
        Compared with :func:`vi_lab.exact.log_marginal` for chunk sizes that divide 2**K, that do
        not (a last, shorter chunk), and that exceed it, and on a model with log p(x) near -3000.

    Notes
    -----
    log p(x) = log sum_c exp(l_c) with l_c = log sum_{z in chunk c} p(x, z): the chunk results combine
    with another log-sum-exp (or a running one, m <- logaddexp(m, l_c)). Named mistakes: the last
    partial chunk dropped, the chunk log-sums added instead of log-sum-exp'ed, the best chunk only, a
    mean over chunks.
    """
    exercise = "exact log p(x) in chunks of states"
    problems = []
    for seed, chunk in ((5, 16), (6, 20), (7, 1000)):
        problem = _random_problem(seed, n_latent=7, n_obs=9, hidden=(6,), n_data=5)
        problem.chunk_size = chunk
        problem.description += f", K = 7 (128 states), chunk_size = {chunk}"
        problems.append(problem)
    extreme = _extreme_problem()
    extreme.chunk_size = 3
    extreme.description += ", chunk_size = 3"
    problems.append(extreme)

    def evaluate(problem, got):
        expected = exact.log_marginal(problem.model, problem.params, problem.x)
        parts, n_states = _chunk_tables(problem, problem.chunk_size)
        mistakes = [
            ("you added the chunks' log-sums: log p(x) is the log of the SUM of the chunks' probabilities, so "
             "combine them with logsumexp (or a running logaddexp), not with +", parts.sum(axis=0)),
            ("you kept only the best chunk: every chunk's probability adds to p(x)", parts.max(axis=0)),
            ("you averaged the chunks' log-sums; combine them with logsumexp", parts.mean(axis=0)),
        ]
        if n_states % problem.chunk_size:
            mistakes.append(("you dropped the last, shorter chunk: with chunk_size = "
                             f"{problem.chunk_size} the {n_states} states end with a chunk of "
                             f"{n_states % problem.chunk_size} (range(0, M, chunk_size) and slicing handle it)",
                             logsumexp(parts[:-1], axis=0)))
        return _compare(exercise, got, expected, mistakes, rtol=1e-9, atol=1e-9, name="log p(x)")

    return _run_problems(exercise, log_marginal_chunked, problems,
                         lambda fn, p: fn(p.model, p.params, p.x.copy(), p.chunk_size), evaluate,
                         "matches exact.log_marginal for chunks that divide 2**K, that do not, and that exceed it,")


class _WeightsProblem:
    def __init__(self, log_w, description):
        self.log_w, self.description = log_w, description


def _ess_reference(log_w):
    return onp.exp(2.0 * logsumexp(log_w, axis=0) - logsumexp(2.0 * log_w, axis=0))


def check_effective_sample_size(effective_sample_size):
    """Check the effective sample size of importance weights given as log weights.

    Parameters
    ----------
    effective_sample_size : callable
        ``effective_sample_size(log_w) -> ndarray of shape (N,)`` for log weights ``log_w`` of shape
        (k, N), k samples per datapoint: ESS_n = (sum_i w_in)^2 / sum_i w_in^2.

    Returns
    -------
    CheckResult
        Compared with the log-space formula on moderate weights, equal weights (ESS = k), one
        dominant weight (ESS close to 1), and log weights around -800 and +800 nats, where
        exp(log_w) under- or overflows.

    Notes
    -----
    ESS = exp(2 logsumexp(log w) - logsumexp(2 log w)) lies between 1 and k: k when all weights are
    equal, 1 when one weight dominates. It measures how many of the k draws from q effectively count
    as draws from the posterior (Kong, 1992). Named mistakes: the ESS divided by k, the weights
    normalized over the datapoints (axis 1) instead of the samples, its inverse.
    """
    exercise = "effective sample size of importance weights"
    rng = onp.random.default_rng(8)
    k, n = 50, 6
    moderate = 1.5 * rng.standard_normal((k, n))
    special = onp.zeros((k, 2))
    special[0, 1] = 30.0                                                # one dominant weight
    problems = [_WeightsProblem(moderate, "k = 50, N = 6, log weights ~ N(0, 1.5^2)"),
                _WeightsProblem(onp.concatenate([moderate[:, :2], special], axis=1),
                                "equal weights in column 2, one dominant weight in column 3"),
                _WeightsProblem(moderate - 800.0, "log weights around -800 nats (exp underflows)"),
                _WeightsProblem(moderate + 800.0, "log weights around +800 nats (exp overflows)")]

    def evaluate(problem, got):
        log_w = problem.log_w
        expected = _ess_reference(log_w)
        k = log_w.shape[0]
        mistakes = [("you divided by k: the effective sample size counts samples, from 1 to k "
                     "(ESS / k is the efficiency)", expected / k),
                    ("you returned 1 / ESS = sum of the squared normalized weights", 1.0 / expected)]
        if log_w.shape[1] > 1:
            wbar = onp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))    # normalized over datapoints
            mistakes.append(("you normalized the weights over the datapoints (axis 1); normalize over the k "
                             "samples of each datapoint (axis 0)", 1.0 / onp.sum(wbar ** 2, axis=0)))
        result = _compare(exercise, got, expected, mistakes, rtol=1e-8, atol=1e-9, name="ESS")
        if not result.passed and abs(log_w.mean()) > 100:
            with onp.errstate(all="ignore"):
                got_arr = onp.asarray(got, dtype=float) if onp.ndim(got) else onp.array([got], float)
            if not onp.all(onp.isfinite(got_arr)):
                result.details.insert(0, "exp(log_w) under- or overflows at hundreds of nats: subtract the "
                                         "maximum per datapoint first (the ESS does not change when every "
                                         "weight of a datapoint is multiplied by the same constant)")
        return result

    return _run_problems(exercise, effective_sample_size, problems, lambda fn, p: fn(p.log_w.copy()), evaluate,
                         "matches the log-space formula")
