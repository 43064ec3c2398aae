"""The estimators published since 2015-2023 (ARMS, LEG, double CV, RODEO, Gumbel-Rao, ReinMax) against exact answers.

Unbiased ones: the mean of R independent estimates within 4 standard errors of the exact gradient
on the three random models of test_estimators_unbiased (ELBO level, logits and model gradients)
and at the generic level. Each check is shown to fail on a plausible wrong version written here.
Exact variances on the one-latent toy come from vi_lab.toy.exact_moments (enumeration or
quadrature, written independently of the estimators); a brute-force enumeration checks LEG's.
"""
import itertools

import autograd.numpy as anp
import numpy as np
import pytest

from vi_lab import estimators, toy
from vi_lab.estimators.arms import ARMS, dirichlet_copula
from vi_lab.estimators.base import bernoulli_from_uniform, uniform_open
from vi_lab.estimators.dcv import DoubleCV
from vi_lab.estimators.leg import LocalExpectation
from vi_lab.estimators.rodeo import RODEO
from test_estimators_unbiased import MODELS, elbo_z_scores, make_problem, max_z_score
from test_toy import variance_z

N_REPS = 20000


def trained(name, problem, steps=20, **options):
    """A stateful estimator after ``steps`` learning calls at this problem, then frozen."""
    model, params, q_logits, x = problem
    est = estimators.get(name, **options)
    for step in range(steps):
        est(model, params, q_logits, x, 4, rng=500 + step, params_grad=False)
    est.learn = False
    return est


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("name, options", [("arms", {}), ("arms", {"entropy": "analytic"}), ("leg", {}),
                                           ("leg", {"entropy": "analytic"}),
                                           ("dcv", {"alpha": 0.8, "learn": False})])
def test_new_estimators_unbiased_at_the_elbo_level(case, name, options):
    est = estimators.get(name, **options)
    z_logits, z_params = elbo_z_scores(est, make_problem(*case), 3, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("name", ["dcv", "rodeo"])
def test_learned_controls_stay_unbiased_after_training(case, name):
    problem = make_problem(*case)
    est = trained(name, problem, learning_rate=0.05)
    assert est.state["steps"] == 20
    control = est.state["control"]
    assert abs(float(control["alpha"])) > 0.01                 # it moved away from plain RLOO
    z_logits, z_params = elbo_z_scores(est, problem, 3, 3000, 150)
    assert z_logits < 4.0 and z_params < 4.0


GENERIC = [("arms", {}), ("leg", {}), ("dcv", {"alpha": -1.3, "learn": False}), ("rodeo", {"learn": False})]


def generic_problem():
    rng = np.random.default_rng(3)
    w, c = rng.normal(size=(2, 3)), rng.normal(size=2)
    f = lambda z: anp.tanh(anp.sum(z * w, axis=-1) + c) + 0.5 * z[..., 0] * z[..., 2]   # noqa: E731
    logits = rng.normal(size=(2, 3))
    return f, logits, estimators.get("exact").grad(f, logits, 1, 0)


def nontrivial_control(est):
    """RODEO with alpha = beta = 1.5 and a random network whose outputs are offset by (1.5, -2).

    A constant part of h is the easiest test of a Stein operator: A maps it to zero exactly.
    """
    control = est._control_state()
    control["alpha"], control["beta"] = np.array(1.5), np.array(1.5)
    control["net"]["b2"] = np.array([1.5, -2.0])


@pytest.mark.parametrize("name, options", GENERIC)
@pytest.mark.parametrize("n_samples", [2, 5])
def test_generic_level_unbiased(name, options, n_samples):
    f, logits, target = generic_problem()
    est = estimators.get(name, **options)
    if name == "rodeo":
        nontrivial_control(est)
    g = est.grad(f, logits, n_samples, rng=7, n_reps=4000)
    assert max_z_score(g, target) < 4.0


# ------------------------------------------------------------------ plausible wrong versions fail
class UndebiasedARMS(ARMS):
    """Wrong on purpose: leave-one-out REINFORCE on the correlated copula samples, no debiasing factor."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        u = dirichlet_copula(uniform_open(rng, (n_reps, n_samples) + logits.shape))
        p = 1 / (1 + np.exp(-logits))
        b = np.where(logits < 0, u < p, u > 1 - p).astype(float)
        values = np.asarray(f(b))
        loo = values - (values.sum(axis=1, keepdims=True) - values) / (n_samples - 1)
        return np.mean(loo[..., None] * (b - p), axis=1)


class UnsignedLEG(LocalExpectation):
    """Wrong on purpose: f(z) - f(flip_k z) without the sign (2 z_k - 1)."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        z = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        flips = np.stack([np.where(np.arange(logits.shape[-1]) == k, 1 - z, z) for k in range(logits.shape[-1])], 2)
        f_z = np.asarray(f(z))
        f_flip = np.stack([np.asarray(f(flips[:, :, k], hard=False)) for k in range(logits.shape[-1])], -1)
        p = 1 / (1 + np.exp(-logits))
        return p * (1 - p) * (f_z[..., None] - f_flip).mean(axis=1)


class DCVNoCorrection(DoubleCV):
    """Wrong on purpose: the Taylor control without its closed-form expectation (-alpha Gbar p (1 - p))."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        state = rng.bit_generator.state
        g = super()._grad(f, logits, n_samples, rng, n_reps)
        rng.bit_generator.state = state                           # the same draws again
        b = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        from vi_lab.estimators.dcv import values_and_input_grads
        _, grads = values_and_input_grads(f, b)
        p = 1 / (1 + np.exp(-logits))
        return g + self.alpha * grads.mean(axis=1) * p * (1 - p)


class NoCentreStein(RODEO):
    """Wrong on purpose: the Stein operator without its -h(b) term, (1/K) sum_i q(flip) h(b^(i)) (not mean zero)."""

    def _grad(self, f, logits, n_samples, rng, n_reps):
        import vi_lab.estimators.rodeo as rodeo
        originals = rodeo.gibbs_stein, rodeo.gibbs_stein_score
        rodeo.gibbs_stein = lambda h_x, h_nbr, flip_prob: originals[0](0.0 * h_x, h_nbr, flip_prob)
        rodeo.gibbs_stein_score = lambda h_x, h_nbr, flip_prob, b, p: originals[1](0.0 * h_x, h_nbr, flip_prob, b, p)
        try:
            return super()._grad(f, logits, n_samples, rng, n_reps)
        finally:
            rodeo.gibbs_stein, rodeo.gibbs_stein_score = originals


@pytest.mark.parametrize("wrong", [UndebiasedARMS(), UnsignedLEG(), DCVNoCorrection(alpha=1.5, learn=False),
                                   NoCentreStein(learn=False)])
def test_wrong_versions_fail_the_same_check(wrong):
    f, logits, target = generic_problem()
    if isinstance(wrong, RODEO):
        nontrivial_control(wrong)
    g = wrong.grad(f, logits, 4, rng=7, n_reps=4000)
    assert max_z_score(g, target) > 4.0


def test_gibbs_stein_operators_have_mean_zero_by_enumeration():
    """E_q[(A h)(b)] = 0 for an arbitrary h, summing over all 2**K states (K = 3)."""
    from vi_lab.estimators.rodeo import gibbs_stein, gibbs_stein_score
    rng = np.random.default_rng(0)
    psi = rng.normal(size=3)
    p = 1 / (1 + np.exp(-psi))
    states = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    prob = np.prod(np.where(states == 1, p, 1 - p), axis=1)
    table = dict(zip(map(tuple, states), rng.normal(size=8)))
    h = lambda z: np.array([table[tuple(row)] for row in z])             # noqa: E731
    nbrs = np.stack([np.where(np.arange(3) == i, 1 - states, states) for i in range(3)], axis=1)   # (8, K, K)
    h_nbr = np.stack([h(nbrs[:, i]) for i in range(3)], axis=1)
    flip_prob = p * (1 - states) + (1 - p) * states
    a_h = gibbs_stein(h(states), h_nbr, flip_prob)
    assert abs(np.sum(prob * a_h)) < 1e-14 and np.abs(a_h).max() > 0.05
    a_vec = gibbs_stein_score(h(states), h_nbr, flip_prob, states, p)
    brute = np.mean([flip_prob[:, [i]] * (h_nbr[:, [i]] * (nbrs[:, i] - p) - h(states)[:, None] * (states - p))
                     for i in range(3)], axis=0)
    np.testing.assert_allclose(a_vec, brute, atol=1e-14)
    np.testing.assert_allclose(prob @ a_vec, 0.0, atol=1e-14)


@pytest.mark.parametrize("name", ["gumbel_rao", "reinmax"])
def test_hard_forward_estimators_have_an_unbiased_model_gradient_and_a_biased_logits_one(name):
    """The decoder sees 0/1 samples of q, so the model-parameter gradient is the unbiased pathwise one."""
    problem = make_problem(*MODELS[1])
    est = estimators.get(name)
    z_logits, z_params = elbo_z_scores(est, problem, 2, 3000, 150)
    assert z_params < 4.0
    assert z_logits > 4.0                         # biased for q's logits, as documented
    assert not est.unbiased


def test_leg_variance_matches_a_brute_force_enumeration():
    """K = 3: one LEG draw is a function of z in {0, 1}^3; its exact mean and variance by a loop over the 8 states."""
    rng = np.random.default_rng(5)
    w, c = rng.normal(size=3), 0.3
    f = lambda z: np.tanh(np.sum(z * w, axis=-1) + c) + z[..., 0] * z[..., 1]       # noqa: E731
    psi = rng.normal(size=3)
    p = 1 / (1 + np.exp(-psi))
    mean = np.zeros(3)
    second = np.zeros(3)
    for z in itertools.product([0.0, 1.0], repeat=3):
        z = np.array(z)
        prob = np.prod(np.where(z == 1, p, 1 - p))
        g = np.empty(3)
        for k in range(3):
            up, down = z.copy(), z.copy()
            up[k], down[k] = 1.0, 0.0
            g[k] = p[k] * (1 - p[k]) * (f(up) - f(down))
        mean += prob * g
        second += prob * g ** 2
    var = second - mean ** 2
    np.testing.assert_allclose(mean, estimators.get("exact").grad(f, psi, 1, 0), rtol=1e-10)
    draws = estimators.get("leg").grad(f, psi, 2, rng=0, n_reps=N_REPS)
    for k in range(3):
        assert variance_z(draws[:, k], var[k] / 2) < 4.0


@pytest.mark.parametrize("name", ["arms", "leg", "dcv", "rodeo", "gumbel_rao", "reinmax"])
def test_extreme_logits_give_finite_estimates_and_zero_where_q_is_deterministic(name):
    w = np.array([0.5, -1.0, 2.0])
    f = lambda z: anp.tanh(anp.sum(z * w, axis=-1))                  # noqa: E731
    logits = np.array([1e4, -1e4, 0.3])
    with np.errstate(over="raise", invalid="raise", divide="raise"):      # underflow to 0 is fine
        g = estimators.get(name).grad(f, logits, 3, rng=0, n_reps=50)
    assert np.isfinite(g).all()
    np.testing.assert_array_equal(g[:, :2], 0.0)


def test_tau_sweep_shows_gumbel_rao_and_reinmax_beside_straight_through():
    """experiments.tau_sweep on the shared K = 3 problem (S = 1, R = 500), the bias against the exact gradient.

    Measured: at tau = 0.5 Gumbel-Rao's squared bias 0.088 +- 0.008 against straight-through's
    0.075 +- 0.010 (the same bias), its variance 0.28 against 0.79; at tau = 1 ReinMax's squared
    bias 0.029 +- 0.005 against straight-through's 0.184 +- 0.010.
    """
    from conftest import estimator_problem
    from vi_lab import experiments
    model, params, q_logits, x = estimator_problem()
    table = experiments.tau_sweep(model, params, q_logits, x, estimators=["straight_through", "gumbel_rao", "reinmax"],
                                  taus=(0.5, 1.0), n_samples=1, reps=500)
    row = {(r["estimator"], r["tau"]): r for r in table.to_dict("records")}
    st, gr = row[("straight_through", 0.5)], row[("gumbel_rao", 0.5)]
    assert abs(gr["bias2_q"] - st["bias2_q"]) < 4 * np.hypot(gr["bias2_q_se"], st["bias2_q_se"])
    assert gr["var_q"] < 0.6 * st["var_q"]
    assert row[("reinmax", 1.0)]["bias2_q"] + 4 * row[("reinmax", 1.0)]["bias2_q_se"] < row[("straight_through", 1.0)]["bias2_q"]


@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5), (2000, 10, 5, 1)])
def test_uniform_open_is_the_documented_formula_bit_for_bit(shape):
    # the integers are Generator.integers(0, 2**52)'s, so every stream drawn before stays as it was;
    # the generator is left where integers() leaves it
    # (m + 1/2) / 2**52 from the same integers m, written the slow obvious way
    for seed in range(3):
        m = np.random.default_rng(seed).integers(0, 2 ** 52, size=shape)
        want = (np.asarray(m, dtype=np.float64) + 0.5) * 2.0 ** -52
        rng = np.random.default_rng(seed)
        got = uniform_open(rng, shape)
        assert got.dtype == np.float64 and np.shape(got) == shape
        np.testing.assert_array_equal(got, want)
        after = np.random.default_rng(seed)
        after.integers(0, 2 ** 52, size=shape)
        assert rng.random() == after.random()


def test_uniform_open_at_the_extreme_integers():
    class Extremes:                                    # a generator whose raw draws give the end points
        class bit_generator:
            @staticmethod
            def random_raw(size=None):
                # m = 0, 1, 2**51, 2**52 - 1 in the top 52 bits, the low 12 bits set to be thrown away
                return (np.array([0, 1, 2 ** 51, 2 ** 52 - 1], dtype=np.uint64) << np.uint64(12)) | np.uint64(0xFFF)

    u = uniform_open(Extremes(), (4,))
    np.testing.assert_array_equal(u, [2.0 ** -53, 3 * 2.0 ** -53, 0.5 + 2.0 ** -53, 1 - 2.0 ** -53])
    assert (u > 0).all() and (u < 1).all()
