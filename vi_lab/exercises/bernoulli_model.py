"""Checkers for the exercises of notebook 01 (the Bernoulli latent-variable model).

- :func:`check_log_marginal`: log p(x) by summing over all 2**K latent states.
- :func:`check_posterior_marginals`: p(z_k = 1 | x) from the exact posterior.
- :func:`check_sample`: ancestral sampling z ~ p(z), x ~ p(x|z).

Each runs the student's function on small models whose answers :mod:`vi_lab.exact`
computes by enumeration, and returns a :class:`~vi_lab.exercises.CheckResult`. The small
problems and the "named mistake" matching defined here are shared with the checkers of
notebooks 02 and 03.
"""
import numpy as onp

from .. import exact
from ..model import BernoulliLVM
from ..nn import sigmoid
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student

__all__ = ["check_log_marginal", "check_posterior_marginals", "check_sample"]


# ---------------------------------------------------------------------------- shared helpers
class _Problem:
    """A small model, its parameters and data, with a one-line description for messages."""

    def __init__(self, model, params, x, description):
        self.model, self.params, self.x, self.description = model, params, x, description


def _random_problem(seed, n_latent=3, n_obs=5, hidden=(6,), n_data=6, scale=1.5):
    """A model with non-zero prior logits and biases (so that every term matters) and data drawn from it."""
    rng = onp.random.default_rng(seed)
    model = BernoulliLVM(n_latent, n_obs, hidden=hidden)
    params = model.init_params(rng, scale=scale)
    params["prior_logits"] = rng.standard_normal(n_latent)
    for key in params["decoder"]:
        if key.startswith("b"):
            params["decoder"][key] = 0.5 * rng.standard_normal(params["decoder"][key].shape)
    _, x = model.sample(params, n_data, rng)
    return _Problem(model, params, x, f"K = {n_latent}, L = {n_obs}, hidden = {hidden}, N = {n_data}")


def _extreme_problem():
    """A linear decoder with huge weights: log p(x, z) is about -3000 for the first datapoint.

    exp(log p(x, z)) underflows to 0 for every z, so a sum of probabilities gives log(0) = -inf;
    only a log-sum-exp with the maximum subtracted survives.
    """
    rng = onp.random.default_rng(7)
    model = BernoulliLVM(n_latent=3, n_obs=8, hidden=())
    params = model.init_params(rng)
    params["prior_logits"] = onp.array([2.0, -1.0, 0.5])
    params["decoder"]["W0"] = 60.0 * rng.standard_normal((3, 8))
    params["decoder"]["b0"] = onp.full(8, -400.0)
    x = onp.array([onp.ones(8), onp.zeros(8), (onp.arange(8) % 2).astype(float)])
    return _Problem(model, params, x, "K = 3, L = 8, linear decoder with huge weights "
                    "(log p(x) is about -3000 for the first datapoint)")


def _standard_problems():
    return [_random_problem(0), _random_problem(1, n_latent=4, n_obs=6, hidden=(5, 4), n_data=4),
            _extreme_problem()]


def _named_mistakes(got, mistakes, rtol=1e-6, atol=1e-8):
    """The descriptions of the known mistakes whose result ``got`` reproduces."""
    try:
        got = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return []
    hints = []
    for hint, value in mistakes:
        value = onp.asarray(value, dtype=float)
        if value.shape != got.shape:
            continue
        both = onp.isfinite(got) & onp.isfinite(value)
        same_inf = (got == value) & ~onp.isfinite(value)
        if onp.all(both | same_inf) and onp.allclose(got[both], value[both], rtol=rtol, atol=atol):
            hints.append(hint)
    return hints


def _compare(exercise, got, expected, mistakes=(), rtol=1e-7, atol=1e-9, name="value", shape_hints=None):
    """:func:`compare_arrays`, with the matching known mistakes named first when it fails.

    ``shape_hints`` maps a wrong shape to what it usually means (e.g. a reduction over the wrong axis).
    """
    result = compare_arrays(exercise, got, expected, rtol=rtol, atol=atol, name=name)
    if not result.passed:
        hints = _named_mistakes(got, mistakes)
        if shape_hints:
            hints += [hint for shape, hint in shape_hints.items() if onp.shape(got) == tuple(shape)]
        result.details = hints + result.details
    return result


def _run_problems(exercise, fn, problems, call, evaluate, summary):
    """Run ``fn`` on each problem; return the first failure (saying which problem) or a pass.

    ``call(fn, problem)`` calls the student's function, ``evaluate(problem, got)`` returns a
    CheckResult.
    """
    worst = []
    for i, problem in enumerate(problems):
        got, failure = run_student(exercise, call, fn, problem)
        if failure is None:
            failure = evaluate(problem, got)
            if failure.passed:
                worst.extend(failure.details)
                continue
        failure.details.append(f"on problem {i + 1} of {len(problems)}: {problem.description}")
        return failure
    return CheckResult(exercise, True, [f"{summary} on all {len(problems)} test problems"] + worst[-1:])


def _logsumexp(a, axis):
    top = onp.max(a, axis=axis, keepdims=True)
    return onp.squeeze(top, axis) + onp.log(onp.sum(onp.exp(a - top), axis=axis))


def _joint_table(problem):
    """log p(x_n, z_m) for every datapoint and state: (N, 2**K); also log p(x_n|z_m) and the states."""
    model, params = problem.model, problem.params
    states = exact.all_states(model.n_latent)
    loglik = model.log_likelihood(params, problem.x[:, None, :], states[None, :, :])
    log_prior = model.log_prior(params, states)
    return loglik + log_prior[None, :], loglik, states


# ---------------------------------------------------------------------------- exercise 1
def check_log_marginal(log_marginal):
    """Check a student's exact log p(x) by enumeration.

    Parameters
    ----------
    log_marginal : callable
        ``log_marginal(model, params, x) -> ndarray of shape (N,)`` for ``x`` of shape (N, L),
        values in {0., 1.}: log p(x_n) = log sum_z p(z) p(x_n|z), summed over all 2**K states.

    Returns
    -------
    CheckResult
        Compared with :func:`vi_lab.exact.log_marginal` on three small models, the last with
        log p(x) near -3000 (a sum of exp(log p(x, z)) underflows there: use log-sum-exp).

    Notes
    -----
    log p(x) = log sum_z exp(log p(z) + log p(x|z)). Named mistakes: the prior left out, the
    single best z instead of the sum, p(x) instead of log p(x), a mean over states instead of
    a sum.
    """
    exercise = "log p(x) by enumeration"

    def evaluate(problem, got):
        table, loglik, _ = _joint_table(problem)
        expected = exact.log_marginal(problem.model, problem.params, problem.x)
        n_states = table.shape[1]
        mistakes = [
            ("you left out the prior: p(x) = sum_z p(z) p(x|z), not sum_z p(x|z)", _logsumexp(loglik, 1)),
            ("you returned the log-joint of the single most probable z; p(x) sums over all z",
             table.max(axis=1)),
            ("you returned p(x); the exercise asks for log p(x)", onp.exp(expected)),
            (f"you averaged over the {n_states} states; p(x) is their sum weighted by the prior",
             expected - onp.log(n_states)),
        ]
        wrong_axis = {(n_states,): f"your result has one value per latent state ({n_states}): you reduced over "
                                   "the datapoints (axis 0); log-sum-exp over the states (axis 1) instead"}
        return _compare(exercise, got, expected, mistakes, name="log p(x)", shape_hints=wrong_axis)

    return _run_problems(exercise, log_marginal, _standard_problems(),
                         lambda fn, p: fn(p.model, p.params, p.x.copy()), evaluate,
                         "matches exact.log_marginal")


# ---------------------------------------------------------------------------- exercise 2
def check_posterior_marginals(posterior_marginals):
    """Check a student's posterior marginals p(z_k = 1 | x_n).

    Parameters
    ----------
    posterior_marginals : callable
        ``posterior_marginals(model, params, x) -> ndarray of shape (N, K)``, entry (n, k) the
        posterior probability that latent k is on given datapoint n.

    Returns
    -------
    CheckResult
        Compared with :func:`vi_lab.exact.posterior_marginals` on three small models, the
        last with log p(x) near -3000 (normalize in log space).

    Notes
    -----
    p(z_k = 1 | x) = sum_z p(z|x) z_k with p(z|x) = exp(log p(x, z) - log p(x)). Named
    mistakes: the prior returned, p(z_k = 0 | x) instead, no division by p(x), the
    posterior weighting replaced by the likelihood alone.
    """
    exercise = "posterior marginals p(z_k = 1 | x)"

    def evaluate(problem, got):
        table, loglik, states = _joint_table(problem)
        expected = exact.posterior_marginals(problem.model, problem.params, problem.x)
        prior = onp.broadcast_to(onp.asarray(sigmoid(problem.params["prior_logits"])), expected.shape)
        lik_weights = onp.exp(loglik - _logsumexp(loglik, 1)[:, None])
        mistakes = [
            ("you returned the prior probabilities sigmoid(prior_logits): the posterior also weighs "
             "each z by how well it explains x", prior),
            ("you returned p(z_k = 0 | x); the exercise asks for p(z_k = 1 | x)", 1.0 - expected),
            ("you did not divide by p(x): the weights p(x, z) must be normalized to p(z|x)",
             onp.exp(table) @ states),
            ("you weighted the states by p(x|z) alone: the prior p(z) is missing from the posterior",
             lik_weights @ states),
            ("you normalized over the wrong axis: p(z|x_n) sums to one over the states z (axis 1 of the "
             "(N, 2**K) table), not over the datapoints (axis 0)",
             onp.exp(table - _logsumexp(table, 0)[None, :]) @ states),
        ]
        return _compare(exercise, got, expected, mistakes, rtol=1e-6, atol=1e-9, name="posterior marginals")

    return _run_problems(exercise, posterior_marginals, _standard_problems(),
                         lambda fn, p: fn(p.model, p.params, p.x.copy()), evaluate,
                         "matches exact.posterior_marginals")


# ---------------------------------------------------------------------------- exercise 3
def _sampling_problem():
    """K = 2, L = 3: 32 (z, x) cells, each with probability above 0.3%, and x clearly depends on z."""
    rng = onp.random.default_rng(3)
    model = BernoulliLVM(n_latent=2, n_obs=3, hidden=(4,))
    params = model.init_params(rng, scale=1.0)
    params["prior_logits"] = onp.array([0.8, -0.6])
    params["decoder"]["b1"] = onp.array([0.7, -0.5, 0.2])
    return model, params


def _cell_index(z, x):
    """Row-wise index of the (z, x) pattern, z bits first, as in ``all_states(K + L)``."""
    bits = onp.concatenate([z, x], axis=1)
    return (bits @ (2 ** onp.arange(bits.shape[1] - 1, -1, -1))).astype(int)


def _one_hot(index, size):
    out = onp.zeros((index.size, size))
    out[onp.arange(index.size), index] = 1.0
    return out


def _check_pair(exercise, out, n, model):
    """The student's (z, x) as float arrays, or a failed CheckResult saying what is wrong."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return None, CheckResult(exercise, False, [
            f"your function returned {type(out).__name__}; expected the pair (z, x)"])
    arrays = []
    for name, value, width in (("z", out[0], model.n_latent), ("x", out[1], model.n_obs)):
        try:
            value = onp.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return None, CheckResult(exercise, False, [f"your {name} is not a numeric array"])
        if value.shape != (n, width):
            return None, CheckResult(exercise, False, [
                f"your {name} has shape {value.shape}, expected ({n}, {width}): one row per sample"])
        if not onp.all((value == 0.0) | (value == 1.0)):
            return None, CheckResult(exercise, False, [
                f"your {name} has values other than 0 and 1: threshold the uniforms "
                f"(u < probability) instead of returning probabilities"])
        arrays.append(value)
    return arrays, None


def check_sample(sample, n=20000):
    """Check a student's ancestral sampler against the exact joint distribution.

    Parameters
    ----------
    sample : callable
        ``sample(model, params, n, rng) -> (z, x)`` with ``z`` of shape (n, K) and ``x`` of
        shape (n, L), values in {0., 1.}, every random number drawn from the
        ``numpy.random.Generator`` ``rng``.
    n : int, default 20000
        Samples requested per call.

    Returns
    -------
    CheckResult
        Passes when the same seed gives the same samples, another seed other samples, and
        the frequency of each of the 2**(K+L) = 32 (z, x) patterns of a small model lies within
        4.5 standard errors of its exact probability p(z) p(x|z).

    Notes
    -----
    The frequencies of z are checked first (against the prior p(z)), then the (z, x) pairs,
    then the frequencies of x alone, so the message says which step of the generative
    story is off.
    """
    exercise = "ancestral sampling"
    model, params = _sampling_problem()
    out, failure = run_student(exercise, sample, model, params, n, onp.random.default_rng(0))
    if failure is not None:
        return failure
    pair, failure = _check_pair(exercise, out, n, model)
    if failure is not None:
        return failure
    z, x = pair
    again, failure = run_student(exercise, sample, model, params, n, onp.random.default_rng(0))
    if failure is not None:
        return failure
    pair, failure = _check_pair(exercise, again, n, model)
    if failure is not None:
        return failure
    if not (onp.array_equal(pair[0], z) and onp.array_equal(pair[1], x)):
        return CheckResult(exercise, False, [
            "two calls with the same seed gave different samples: draw every random number from "
            "the rng argument (rng.random(...)), never from np.random.* or a fresh generator"])
    other, failure = run_student(exercise, sample, model, params, n, onp.random.default_rng(1))
    if failure is not None:
        return failure
    pair, failure = _check_pair(exercise, other, n, model)
    if failure is not None:
        return failure
    if onp.array_equal(pair[0], z) and onp.array_equal(pair[1], x):
        return CheckResult(exercise, False, [
            "two different seeds gave identical samples: your function ignores its rng argument"])

    states_z = exact.all_states(model.n_latent)
    prior = onp.exp(model.log_prior(params, states_z))
    freq_z = _one_hot(_cell_index(z, x[:, :0]), prior.size)
    if not compare_monte_carlo(exercise, freq_z, prior, n_se=4.5).passed:
        return CheckResult(exercise, False, [
            "your z do not follow the prior: z_k must be 1 with probability sigmoid(prior_logits[k]) "
            "(logits are not probabilities)", _worst_pattern(freq_z, prior, states_z, "z")])
    cells = exact.all_states(model.n_latent + model.n_obs)
    joint = onp.exp(model.log_joint(params, cells[:, model.n_latent:], cells[:, :model.n_latent]))
    freq = _one_hot(_cell_index(z, x), joint.size)
    if compare_monte_carlo(exercise, freq, joint, n_se=4.5).passed:
        return CheckResult(exercise, True, [
            "the same seed gives the same samples and another seed other samples",
            f"the frequency of each of the {joint.size} (z, x) patterns in {n} samples is within 4.5 standard "
            f"errors of p(z) p(x|z)"])
    states_x = exact.all_states(model.n_obs)
    p_x = onp.exp(exact.log_marginal(model, params, states_x))
    if compare_monte_carlo(exercise, _one_hot(_cell_index(x[:, :0], x), p_x.size), p_x, n_se=4.5).passed:
        hint = ("your x have the right overall frequencies but the wrong relation to z: draw x for each "
                "row from p(x|z) with the z of that same row")
    else:
        hint = ("your z are right but x given z is not: x_l must be 1 with probability "
                "sigmoid(model.decoder_logits(params, z))[l]")
    labels = [f"{_bits(c[:model.n_latent])}, x = {_bits(c[model.n_latent:])}" for c in cells]
    return CheckResult(exercise, False, [hint, _worst_pattern(freq, joint, labels, "z")])


def _bits(values):
    return "".join(str(int(v)) for v in values)


def _worst_pattern(indicators, probs, labels, what):
    """One line about the pattern whose frequency is furthest (in standard errors) from its probability."""
    freq = indicators.mean(axis=0)
    se = onp.sqrt(probs * (1.0 - probs) / indicators.shape[0])
    worst = int(onp.argmax(onp.abs(freq - probs) / se))
    label = labels[worst] if isinstance(labels[worst], str) else _bits(labels[worst])
    return (f"pattern {what} = {label}: frequency {freq[worst]:.4f} in {indicators.shape[0]} samples, "
            f"probability {probs[worst]:.4f} ({abs(freq[worst] - probs[worst]) / se[worst]:.1f} standard errors off)")
