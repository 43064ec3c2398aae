"""The capstone's checkers (notebook 08) pass correct answers and name the usual mistakes.

Correct implementations are written here independently of the solution notebook; each wrong
one is a mistake a student makes, including answers only 0.5% off.
"""
import numpy as onp
import pytest
from scipy.special import logsumexp

from vi_lab import exact, exercises


def _chunks(model, params, x, chunk_size):
    states = exact.all_states(model.n_latent)
    return [logsumexp(model.log_joint(params, x[:, None, :], states[None, s:s + chunk_size]), axis=1)
            for s in range(0, states.shape[0], chunk_size)]


def good_chunked(model, params, x, chunk_size):
    running = onp.full(x.shape[0], -onp.inf)
    for part in _chunks(model, params, x, chunk_size):
        running = onp.logaddexp(running, part)
    return running


def _fails(result, *phrases):
    text = repr(result)
    assert not result.passed, text
    for phrase in phrases:
        assert phrase in text, text


def test_chunked_log_marginal_passes_correct_solutions():
    assert exercises.check_chunked_log_marginal(good_chunked).passed
    stacked = lambda m, p, x, c: logsumexp(onp.array(_chunks(m, p, x, c)), axis=0)  # noqa: E731
    assert exercises.check_chunked_log_marginal(stacked).passed


def _drops_last(model, params, x, chunk_size):
    n_states = 2 ** model.n_latent
    parts = _chunks(model, params, x, chunk_size)
    if n_states % chunk_size:
        parts = parts[:-1]
    return logsumexp(onp.array(parts), axis=0)


def _naive(model, params, x, chunk_size):
    states = exact.all_states(model.n_latent)
    total = onp.zeros(x.shape[0])
    for s in range(0, states.shape[0], chunk_size):
        total = total + onp.exp(model.log_joint(params, x[:, None, :], states[None, s:s + chunk_size])).sum(axis=1)
    with onp.errstate(divide="ignore"):
        return onp.log(total)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda m, p, x, c: onp.sum(_chunks(m, p, x, c), axis=0), "added the chunks' log-sums"),
    (lambda m, p, x, c: onp.max(_chunks(m, p, x, c), axis=0), "only the best chunk"),
    (lambda m, p, x, c: onp.mean(_chunks(m, p, x, c), axis=0), "averaged the chunks"),
    (_drops_last, "dropped the last, shorter chunk"),
    (_naive, "non-finite"),
    (lambda m, p, x, c: 1.005 * good_chunked(m, p, x, c), "largest mismatch"),
    (lambda m, p, x, c: good_chunked(m, p, x, c)[:, None], "shape"),
])
def test_chunked_log_marginal_names_the_mistake(wrong, phrase):
    _fails(exercises.check_chunked_log_marginal(wrong), phrase)


def good_ess(log_w):
    return onp.exp(2 * logsumexp(log_w, axis=0) - logsumexp(2 * log_w, axis=0))


def test_effective_sample_size_passes_correct_solutions():
    assert exercises.check_effective_sample_size(good_ess).passed

    def normalized_first(log_w):
        wbar = onp.exp(log_w - logsumexp(log_w, axis=0))
        return 1.0 / onp.sum(wbar ** 2, axis=0)
    assert exercises.check_effective_sample_size(normalized_first).passed


def _ess_naive(log_w):
    with onp.errstate(all="ignore"):
        w = onp.exp(log_w)
        return w.sum(axis=0) ** 2 / (w ** 2).sum(axis=0)


def _ess_wrong_axis(log_w):
    wbar = onp.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))
    return 1.0 / onp.sum(wbar ** 2, axis=0)


@pytest.mark.parametrize("wrong, phrase", [
    (lambda log_w: good_ess(log_w) / log_w.shape[0], "divided by k"),
    (lambda log_w: 1.0 / good_ess(log_w), "1 / ESS"),
    (_ess_wrong_axis, "over the datapoints (axis 1)"),
    (_ess_naive, "subtract the maximum"),
    (lambda log_w: 1.005 * good_ess(log_w), "largest mismatch"),
    (lambda log_w: 0.995 * good_ess(log_w), "largest mismatch"),
])
def test_effective_sample_size_names_the_mistake(wrong, phrase):
    _fails(exercises.check_effective_sample_size(wrong), phrase)
