"""Unbiasedness against the exact gradient on small random models (K 2..4, L 3..8, tanh decoder).

Each check takes R independent estimates (the ``n_reps`` vectorization), and asserts that their
mean lies within 4 standard errors of the exact gradient, coordinate by coordinate. Each check
is shown to fail on a deliberately wrong estimator written here (one term's sign flipped).
"""
import numpy as np
import pytest

import autograd
import autograd.numpy as anp
from autograd.scipy.special import logsumexp

from vi_lab import BernoulliLVM, estimators, exact
from vi_lab.estimators.arm import ARM
from vi_lab.estimators.base import bernoulli_from_uniform, score_grad, uniform_open
from vi_lab.estimators.score_function import ScoreFunction
from vi_lab.estimators.vimco import VIMCO, vimco_signals

MODELS = [  # (K, L, hidden, N, seed)
    (2, 3, (4,), 2, 0),
    (3, 5, (6,), 3, 1),
    (4, 8, (5,), 2, 2),
]


def make_problem(n_latent, n_obs, hidden, n_data, seed):
    model = BernoulliLVM(n_latent, n_obs, hidden=hidden)
    params = model.init_params(seed, scale=2.0)
    params["prior_logits"] = np.random.default_rng(seed + 10).normal(size=n_latent)
    _, x = model.sample(params, n_data, rng=seed + 20)
    q_logits = np.random.default_rng(seed + 30).normal(size=(n_data, n_latent))
    return model, params, q_logits, x


def max_z_score(estimates, target):
    """Largest |mean - target| / standard error over coordinates; exact matches give 0."""
    estimates = np.asarray(estimates)
    mean = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(estimates.shape[0])
    gap = np.abs(mean - target)
    exact_match = gap <= 1e-10 * (1.0 + np.abs(target))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(exact_match, 0.0, gap / se)
    return float(np.max(z))


def flat_params(tree):
    return np.concatenate([tree["prior_logits"].reshape(tree["prior_logits"].shape[0], -1)]
                          + [v.reshape(v.shape[0], -1) for v in tree["decoder"].values()], axis=1)


def flat_exact(tree):
    return np.concatenate([tree["prior_logits"].ravel()] + [v.ravel() for v in tree["decoder"].values()])


def elbo_z_scores(est, problem, n_samples, n_reps_logits, n_reps_params, seed=0):
    model, params, q_logits, x = problem
    g_params_exact, g_logits_exact = exact.elbo_grad(model, params, q_logits, x)
    _, g_logits = est(model, params, q_logits, x, n_samples, rng=seed, n_reps=n_reps_logits, params_grad=False)
    z_logits = max_z_score(g_logits, g_logits_exact)
    z_params = 0.0
    if n_reps_params:
        g_params, _ = est(model, params, q_logits, x, n_samples, rng=seed + 1, n_reps=n_reps_params)
        z_params = max_z_score(flat_params(g_params), flat_exact(g_params_exact))
    return z_logits, z_params


class FlippedEntropySignal(ScoreFunction):
    """Wrong on purpose: learning signal log p(x, z) + log q(z|x) (sign of one term flipped)."""

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=False):
        def f(z):
            return model.log_joint(params, x, z) + np.sum(z * q_logits - np.logaddexp(0, q_logits), axis=-1)
        return None, self.grad(f, q_logits, n_samples, rng, n_reps=n_reps)


class SelfIncludedLOO(ScoreFunction):
    """Wrong on purpose: the 'leave-one-out' mean divides by S - 1 but keeps the own sample."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        z = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        values = np.asarray(f(z))
        return score_grad(values - values.sum(axis=1, keepdims=True) / (n_samples - 1), z, logits)


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("options", [{}, {"baseline": "rloo"}, {"entropy": "analytic"},
                                     {"baseline": "rloo", "entropy": "analytic"}])
def test_score_function_unbiased(case, options):
    est = estimators.get("score_function", **options)
    z_logits, z_params = elbo_z_scores(est, make_problem(*case), 4, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


UNBIASED = [("arm", {}), ("arm", {"entropy": "analytic"}), ("disarm", {}), ("rebar", {}),
            ("rebar", {"tau": 2.0, "eta": 0.3, "entropy": "analytic"})]


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("name, options", UNBIASED)
def test_antithetic_and_rebar_unbiased(case, name, options):
    est = estimators.get(name, **options)
    z_logits, z_params = elbo_z_scores(est, make_problem(*case), 2, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


@pytest.mark.parametrize("case", MODELS)
def test_nvil_without_normalization_unbiased_with_a_trained_baseline(case):
    problem = make_problem(*case)
    model, params, q_logits, x = problem
    est = estimators.get("nvil", normalize=False)
    for step in range(30):
        est(model, params, q_logits, x, 4, rng=100 + step)
    est.learn = False
    z_logits, z_params = elbo_z_scores(est, problem, 2, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0
    # the learned baseline pays: lower variance than plain REINFORCE at the same cost
    _, g_nvil = est(model, params, q_logits, x, 2, rng=1, n_reps=2000, params_grad=False)
    _, g_sf = estimators.get("score_function")(model, params, q_logits, x, 2, rng=1, n_reps=2000, params_grad=False)
    assert g_nvil.var(axis=0).sum() < 0.5 * g_sf.var(axis=0).sum()


@pytest.mark.parametrize("case", MODELS[1:])
def test_relax_unbiased_after_training_its_control(case):
    problem = make_problem(*case)
    model, params, q_logits, x = problem
    est = estimators.get("relax")
    for step in range(20):
        est(model, params, q_logits, x, 2, rng=200 + step)
    assert est.state["steps"] == 20
    est.learn = False
    z_logits, z_params = elbo_z_scores(est, problem, 2, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


def exact_iwae_grad(model, params, q_logits, x, k):
    """Gradient of sum_n E[log (1/k) sum_s p(x_n, z_s) / q(z_s|x_n)] by enumerating all k-tuples."""
    states = exact.all_states(model.n_latent)
    tuples = np.array(list(np.ndindex(*(len(states),) * k)))                 # (M**k, k)

    def bound(params, psi):
        log_joint = model.log_joint(params, x[:, None, :], states[None])      # (N, M)
        log_q = anp.dot(psi, states.T) - anp.sum(anp.logaddexp(0, psi), axis=1, keepdims=True)
        log_w = (log_joint - log_q)[:, tuples]                                # (N, T, k)
        prob = anp.exp(anp.sum(log_q[:, tuples], axis=2))                     # (N, T)
        return anp.sum(prob * (logsumexp(log_w, axis=2) - np.log(k)))

    return autograd.grad(bound, (0, 1))(params, q_logits)


class VIMCOWithoutWeightTerm(VIMCO):
    """Wrong on purpose: forgets the -w~_s term (psi's explicit role in the log weights)."""

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=False):
        def f(z):
            return model.log_joint(params, x, z) - np.sum(z * q_logits - np.logaddexp(0, q_logits), axis=-1)
        return None, self.grad(f, q_logits, n_samples, rng, n_reps=n_reps)


@pytest.mark.parametrize("case", MODELS[:2])
def test_vimco_unbiased_for_the_iwae_gradient(case):
    model, params, q_logits, x = make_problem(*case)
    ref_params, ref_logits = exact_iwae_grad(model, params, q_logits, x, 3)
    est = estimators.get("vimco")
    _, g_logits = est(model, params, q_logits, x, 3, rng=0, n_reps=3000, params_grad=False)
    assert max_z_score(g_logits, ref_logits) < 4.0
    g_params, _ = est(model, params, q_logits, x, 3, rng=1, n_reps=150)
    assert max_z_score(flat_params(g_params), flat_exact(ref_params)) < 4.0
    _, wrong = VIMCOWithoutWeightTerm()(model, params, q_logits, x, 3, rng=0, n_reps=3000)
    assert max_z_score(wrong, ref_logits) > 4.0


class UncoupledARM(ARM):
    """Wrong on purpose: the two members of the pair use independent uniforms."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        shape = (n_reps, n_samples) + logits.shape
        u, u2 = uniform_open(rng, shape), uniform_open(rng, shape)
        b_up = (u > 1 / (1 + np.exp(logits))).astype(float)
        b_down = (u2 < 1 / (1 + np.exp(-logits))).astype(float)
        return np.mean((np.asarray(f(b_up)) - np.asarray(f(b_down)))[..., None] * (u - 0.5), axis=1)


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("wrong", [FlippedEntropySignal(), SelfIncludedLOO(baseline="rloo"), UncoupledARM()])
def test_wrong_estimators_fail_the_same_check(case, wrong):
    z_logits, _ = elbo_z_scores(wrong, make_problem(*case), 4, 3000, 0)
    assert z_logits > 4.0


def test_mean_baseline_is_biased_by_the_documented_factor():
    problem = make_problem(*MODELS[1])
    model, params, q_logits, x = problem
    _, target = exact.elbo_grad(model, params, q_logits, x)
    est = estimators.get("score_function", baseline="mean")
    _, g = est(model, params, q_logits, x, 3, rng=0, n_reps=4000, params_grad=False)
    assert max_z_score(g, target) > 4.0
    assert max_z_score(g, target * 2.0 / 3.0) < 4.0       # E = (1 - 1/S) * gradient


def test_exact_estimator_matches_enumeration_at_both_levels():
    model, params, q_logits, x = make_problem(*MODELS[2])
    g_params, g_logits = estimators.get("exact")(model, params, q_logits, x, 1, 0)
    ref_params, ref_logits = exact.elbo_grad(model, params, q_logits, x)
    np.testing.assert_allclose(g_logits, ref_logits)
    np.testing.assert_allclose(flat_exact(g_params), flat_exact(ref_params))
    # generic level against a finite difference of the enumerated expectation
    w = np.random.default_rng(0).normal(size=(3, 4))
    f = lambda z: np.sin(np.sum(z * w, axis=-1)) + z[..., 0] * z[..., 1]
    logits = np.random.default_rng(1).normal(size=(3, 4))
    states = exact.all_states(4)

    def expectation(psi):
        q = np.prod(np.where(states[:, None, :] == 1, 1 / (1 + np.exp(-psi)), 1 / (1 + np.exp(psi))), axis=-1)
        return np.sum(q * f(np.broadcast_to(states[:, None, :], (16, 3, 4))))

    fd = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        step = np.zeros_like(logits)
        step[idx] = 1e-6
        fd[idx] = (expectation(logits + step) - expectation(logits - step)) / 2e-6
    np.testing.assert_allclose(estimators.get("exact").grad(f, logits, 1, 0), fd, rtol=1e-6, atol=1e-8)


GENERIC = [("score_function", {}), ("score_function", {"baseline": "rloo"}), ("arm", {}), ("disarm", {}),
           ("rebar", {}), ("rebar", {"tau": 0.2, "eta": 2.0}), ("relax", {"learn": False})]


@pytest.mark.parametrize("name, options", GENERIC)
def test_generic_level_unbiased(name, options):
    rng = np.random.default_rng(3)
    w, c = rng.normal(size=(2, 3)), rng.normal(size=2)
    f = lambda z: np.tanh(np.sum(z * w, axis=-1) + c) + 0.5 * z[..., 0] * z[..., 2]
    logits = rng.normal(size=(2, 3))
    target = estimators.get("exact").grad(f, logits, 1, 0)
    g = estimators.get(name, **options).grad(f, logits, 4, rng=7, n_reps=4000)
    assert max_z_score(g, target) < 4.0


def test_generic_vimco_unbiased_for_the_multi_sample_objective():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(2, 2))
    f = lambda z: np.tanh(np.sum(z * w, axis=-1))
    logits = rng.normal(size=(2, 2))
    states = exact.all_states(2)
    tuples = np.array(list(np.ndindex(4, 4, 4)))

    def objective(psi):
        log_q = anp.dot(psi, states.T) - anp.sum(anp.logaddexp(0, psi), axis=1, keepdims=True)   # (2, 4)
        values = f(np.broadcast_to(states[:, None], (4, 2, 2))).T                               # (2, 4)
        prob = anp.exp(anp.sum(log_q[:, tuples], axis=2))
        return anp.sum(prob * (logsumexp(values[:, tuples], axis=2) - np.log(3)))

    target = autograd.grad(objective)(logits)
    g = estimators.get("vimco").grad(f, logits, 3, rng=0, n_reps=4000)
    assert max_z_score(g, target) < 4.0
    assert max_z_score(g, estimators.get("exact").grad(f, logits, 1, 0)) > 4.0   # not E[f]'s gradient


@pytest.mark.parametrize("scale", [5.0, 300.0])
def test_vimco_signals_match_a_loop(scale):
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    log_w = rng.normal(size=(3, 5, 4)) * scale
    log_w[0, :, 0] = [-1e4, 3.0, 3.0, -2.0, 7.0]                     # a tie below the top
    log_w[1, :, 1] = [50.0, 50.0, -50.0, 0.0, 1.0]                   # a tie at the top
    log_w[2, :, 2] = [800.0, 0.0, 1.0, 2.0, -800.0]                  # one sample dominates by e^798
    log_w[1, :, 3] = [-np.inf, 1.0, 2.0, -np.inf, 0.5]               # weights of zero
    bound, signals = vimco_signals(log_w)
    for r, s, n in np.ndindex(*log_w.shape):
        column = log_w[r, :, n]
        others = np.delete(column, s)
        replaced = np.append(others, others.mean())
        want_bound = logsumexp(column) - np.log(5)
        assert bound[r, 0, n] == pytest.approx(want_bound, rel=1e-13, abs=1e-12)
        want = want_bound - (logsumexp(replaced) - np.log(5))
        assert signals[r, s, n] == pytest.approx(want, rel=1e-9, abs=1e-9), (r, s, n)


def test_vimco_signals_without_the_second_maximum_would_cancel():
    # the top sample's others summed with the top's shift lose everything to rounding: exp(-800) = 0
    log_w = np.array([[800.0, 0.0, 1.0, 2.0]]).reshape(1, 4, 1)
    _, signals = vimco_signals(log_w)
    top = log_w.max()
    naive_others = np.exp(log_w - top).sum() - 1.0                    # 0.0: the others are lost
    assert naive_others == 0.0
    loo = log_w[0, 1:, 0].mean()
    from scipy.special import logsumexp
    want = (logsumexp(log_w) - logsumexp(np.append(log_w[0, 1:, 0], loo)))
    assert np.isfinite(signals[0, 0, 0]) and signals[0, 0, 0] == pytest.approx(want, rel=1e-12)
