"""The estimators' fast paths (issue 11, goal 4) give the same bits as the plain ones they replace.

Each fast path is a rewrite of the same arithmetic in a cheaper order or with fewer temporaries,
so it is compared bit for bit, not to a tolerance, with the obvious numpy or autograd expression.
"""
import sys

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import vi_lab
from vi_lab import estimators
from vi_lab.estimators.base import sample_mean, sample_sum
from vi_lab.estimators.relaxed import relaxed_sample


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=2, max_size=5), seed=st.integers(0, 10 ** 6),
       keepdims=st.booleans(), transpose=st.booleans())
def test_sample_sum_and_mean_are_numpys_bit_for_bit(shape, seed, keepdims, transpose):
    values = np.random.default_rng(seed).normal(size=shape) * np.exp(np.random.default_rng(seed + 1).normal(size=shape) * 5)
    if transpose and len(shape) > 2:
        values = np.swapaxes(values, 1, -1)                # a non-contiguous view takes numpy's own path
    got, want = sample_sum(values, keepdims), values.sum(axis=1, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(sample_mean(values, keepdims), values.mean(axis=1, keepdims=keepdims))


@pytest.mark.parametrize("shape", [(2000, 10, 5), (2000, 10, 1), (300, 7, 5, 5), (40, 3, 1, 1), (5, 2)])
def test_sample_sum_at_the_benchmarks_shapes(shape):
    values = np.random.default_rng(0).normal(size=shape)
    np.testing.assert_array_equal(sample_sum(values), values.sum(axis=1))


def test_sample_sum_keeps_integer_and_bool_sums_as_numpy_does():
    counts = np.ones((4, 3, 2), dtype=bool)
    assert sample_sum(counts).dtype == counts.sum(axis=1).dtype
    np.testing.assert_array_equal(sample_sum(counts), np.full((4, 2), 3))


def test_a_naive_sample_sum_in_another_order_would_fail_the_bitwise_check():
    # pairwise and sequential summation differ somewhere in the last bits: bit-for-bit checks can fail
    values = np.random.default_rng(3).normal(size=(2000, 64, 1)) * 1e3
    reverse = values[:, ::-1].sum(axis=1)
    assert not np.array_equal(reverse, values.sum(axis=1))


def _taped(est):
    """The same estimator with the general path: psi + L, / tau and sigmoid traced by autograd."""
    slow = estimators.get(est.name, tau=est.tau)
    slow.sigmoid_relaxation = False
    return slow


PROBLEMS = {
    "toy": (np.random.default_rng(0).normal(size=(5, 1)), lambda z: anp.sum((z - 0.45) ** 2, axis=-1)),
    "mlp": (np.random.default_rng(1).normal(size=4), lambda z: anp.tanh(anp.dot(z, np.linspace(-1, 2, 4)) + 0.3)),
    "batch": (np.random.default_rng(2).normal(size=(3, 4)) * 3, lambda z: anp.sum(anp.sin(3 * z) * z, axis=-1)),
    "one": (np.array([0.7]), lambda z: anp.sum(anp.exp(z), axis=-1)),
}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", ["concrete", "straight_through"])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_relaxed_chain_rule_by_hand_is_the_taped_gradient_bit_for_bit(problem, name, n_samples):
    logits, f = PROBLEMS[problem]
    est = estimators.get(name, tau=0.3)
    assert est.sigmoid_relaxation
    fast = est.grad(f, logits, n_samples, rng=7, n_reps=50)
    slow = _taped(est).grad(f, logits, n_samples, rng=7, n_reps=50)
    np.testing.assert_array_equal(fast, slow)


def test_relaxed_chain_rule_matches_finite_differences_of_the_relaxed_objective():
    # independent of autograd: d/dpsi (1/S) sum_s f(sigmoid((psi + L_s) / tau)) by central differences
    logits, f = PROBLEMS["batch"]
    est, n_samples, tau = estimators.get("concrete", tau=0.4), 4, 0.4
    g = est.grad(f, logits, n_samples, rng=11, n_reps=3)
    from vi_lab.estimators.base import logistic_noise, uniform_open
    noise = logistic_noise(uniform_open(np.random.default_rng(11), (3, n_samples) + logits.shape))
    eps = 1e-6
    for r in range(3):
        for idx in np.ndindex(*logits.shape):
            step = np.zeros_like(logits)
            step[idx] = eps
            up = np.sum(f(np.asarray(relaxed_sample(logits + step, noise[r], tau)))) / n_samples
            down = np.sum(f(np.asarray(relaxed_sample(logits - step, noise[r], tau)))) / n_samples
            assert abs(g[r][idx] - (up - down) / (2 * eps)) < 1e-7


def test_a_chain_rule_without_the_temperature_fails_the_comparison():
    class NoTemperature(type(estimators.get("concrete"))):
        def _sigmoid_chain(self, grad_z, soft):
            return grad_z * soft * (1.0 - soft)              # missing the 1 / tau
    logits, f = PROBLEMS["toy"]
    wrong = NoTemperature(tau=0.3).grad(f, logits, 2, rng=7, n_reps=50)
    right = _taped(estimators.get("concrete", tau=0.3)).grad(f, logits, 2, rng=7, n_reps=50)
    assert not np.allclose(wrong, right)


def test_straight_through_evaluates_f_at_the_hard_sample():
    seen = []

    def f(z):
        seen.append(np.asarray(autograd.tracer.getval(z)))
        return anp.sum(z ** 2, axis=-1)
    estimators.get("straight_through").grad(f, np.zeros(3), 4, rng=0, n_reps=5)
    assert set(np.unique(seen[0])) <= {0.0, 1.0}


@pytest.mark.parametrize("name", ["score_function", "arm", "disarm", "concrete", "straight_through"])
def test_elbo_level_estimates_unchanged_by_the_fast_reductions(name, monkeypatch):
    # the ELBO level runs through the same fast reductions: against numpy's own, patched in
    # wherever an estimator module holds sample_sum
    model = vi_lab.BernoulliLVM(4, 6, hidden=(8,))
    params = model.init_params(0)
    x = vi_lab.data.from_model(model, params, 3, rng=1)
    q_logits = np.random.default_rng(2).normal(size=(3, 4))
    est = estimators.get(name)
    _, fast = est(model, params, q_logits, x, 5, rng=3, n_reps=40, params_grad=False)
    patched = 0
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("vi_lab.estimators") and getattr(module, "sample_sum", None) is sample_sum:
            monkeypatch.setattr(module, "sample_sum", lambda v, keepdims=False: np.asarray(v).sum(axis=1, keepdims=keepdims))
            patched += 1
    assert patched >= 3
    slow_est = _taped(est) if hasattr(est, "sigmoid_relaxation") else est
    _, slow = slow_est(model, params, q_logits, x, 5, rng=3, n_reps=40, params_grad=False)
    np.testing.assert_array_equal(fast, slow)


def _plain_pair(logits, n_samples, n_reps, seed):
    """ARM's antithetic pair from the same uniforms, the obvious way."""
    from vi_lab.estimators.base import uniform_open
    u = uniform_open(np.random.default_rng(seed), (n_reps, n_samples) + logits.shape)
    p = 1.0 / (1.0 + np.exp(-logits))
    return u, (u > 1.0 / (1.0 + np.exp(logits))).astype(float), (u < p).astype(float)


@pytest.mark.parametrize("problem", ["toy", "batch"])
@pytest.mark.parametrize("n_samples", [1, 4])
def test_arm_and_disarm_are_the_papers_formulas_on_the_same_draws(problem, n_samples):
    # the fast paths (f on each member of the pair, u reused in place, DisARM's weight as b - b~)
    # against Yin & Zhou's and Dong et al.'s formulas written plainly, on the same uniforms
    logits, f = PROBLEMS[problem]
    u, b_up, b_down = _plain_pair(logits, n_samples, 30, 5)
    f_up, f_down = (np.asarray(f(b.reshape((-1,) + logits.shape))).reshape(b.shape[:-1]) for b in (b_up, b_down))
    arm = np.mean((f_up - f_down)[..., None] * (u - 0.5), axis=1)
    sign = np.where(b_up == 1.0, -1.0, 1.0)                         # (-1)^{b~}
    disarm = np.mean(0.5 * (f_down - f_up)[..., None] * sign * (b_down != b_up)
                     / (1.0 + np.exp(-np.abs(logits))), axis=1)
    np.testing.assert_allclose(estimators.get("arm").grad(f, logits, n_samples, rng=5, n_reps=30), arm, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(estimators.get("disarm").grad(f, logits, n_samples, rng=5, n_reps=30), disarm, rtol=1e-13, atol=1e-15)


def test_a_disarm_weight_without_the_sign_fails_the_formula_check():
    logits, f = PROBLEMS["toy"]
    u, b_up, b_down = _plain_pair(logits, 4, 30, 5)
    f_up, f_down = (np.asarray(f(b.reshape((-1,) + logits.shape))).reshape(b.shape[:-1]) for b in (b_up, b_down))
    unsigned = np.mean(0.5 * (f_down - f_up)[..., None] * (b_down != b_up) / (1.0 + np.exp(-np.abs(logits))), axis=1)
    assert not np.allclose(estimators.get("disarm").grad(f, logits, 4, rng=5, n_reps=30), unsigned)
