"""Silent wrong numbers: +-inf q logits in the objectives, rows mixing huge and ordinary logits,
input checks of the model densities, complex input, bool options, data.split, and the exact
estimator's rng. References are computed with mpmath at 50 digits where the claim is a number.
"""
import itertools

import mpmath
import numpy as onp
import pytest

import vi_lab
from vi_lab import data, estimators, exact, objectives, variational
from vi_lab._validation import check_bool
from vi_lab.inference import fit_local

mpmath.mp.dps = 50


def _mp_log_sigmoid(a):
    a = mpmath.mpf(a)
    return -mpmath.log1p(mpmath.exp(-a)) if a > 0 else a - mpmath.log1p(mpmath.exp(a))


def _mp_log_q(psi, z):
    return sum(_mp_log_sigmoid(p) if zk else _mp_log_sigmoid(-p) for p, zk in zip(psi, z))


def _linear_model(W, b, prior):
    """A linear-decoder BernoulliLVM with the given weights (hidden=())."""
    model = vi_lab.BernoulliLVM(n_latent=len(prior), n_obs=len(b), hidden=())
    return model, {"prior_logits": onp.array(prior, float), "decoder": {"W0": onp.array(W, float),
                                                                         "b0": onp.array(b, float)}}


def _mp_log_joint(params, x, z):
    W, b, prior = params["decoder"]["W0"], params["decoder"]["b0"], params["prior_logits"]
    total = _mp_log_q(prior, z)
    for l in range(len(b)):
        a = mpmath.mpf(b[l]) + sum(mpmath.mpf(W[k, l]) * z[k] for k in range(len(z)))
        total += _mp_log_sigmoid(a) if x[l] else _mp_log_sigmoid(-a)
    return total


def _mp_elbo(params, psi, x):
    total = mpmath.mpf(0)
    for z in itertools.product([0, 1], repeat=len(psi)):
        log_q = _mp_log_q(psi, z)
        q = mpmath.exp(log_q)
        if q != 0:
            total += q * (_mp_log_joint(params, x, z) - log_q)
    return total


# ---------------------------------------------------------------------------- +-inf logits
def test_log_prob_entropy_and_kl_are_exact_at_infinite_logits():
    psi = onp.array([[onp.inf, -onp.inf, 0.7]])
    z_ok = onp.array([[[1.0, 0.0, 1.0]]])
    z_impossible = onp.array([[[0.0, 0.0, 1.0]]])
    assert variational.log_prob(psi, z_ok)[0, 0] == pytest.approx(float(_mp_log_sigmoid(0.7)), rel=1e-15)
    assert variational.log_prob(psi, z_impossible)[0, 0] == -onp.inf
    h = float(-(mpmath.exp(_mp_log_sigmoid(0.7)) * _mp_log_sigmoid(0.7)
                + mpmath.exp(_mp_log_sigmoid(-0.7)) * _mp_log_sigmoid(-0.7)))
    assert variational.entropy(psi)[0] == pytest.approx(h, rel=1e-14)
    b = onp.array([0.5, -1.5, 0.2])
    # KL = sum_k E_q[log q_k - log p_k]; deterministic coordinates give -log p(z_k) of their value
    kl = float(-_mp_log_sigmoid(0.5) - _mp_log_sigmoid(1.5)) + float(
        mpmath.exp(_mp_log_sigmoid(0.7)) * (_mp_log_sigmoid(0.7) - _mp_log_sigmoid(0.2))
        + mpmath.exp(_mp_log_sigmoid(-0.7)) * (_mp_log_sigmoid(-0.7) - _mp_log_sigmoid(-0.2)))
    assert variational.kl_to_prior(psi, b)[0] == pytest.approx(kl, rel=1e-14)


@pytest.mark.parametrize("form", ["joint", "analytic_kl"])
def test_objectives_are_finite_and_correct_for_infinite_logits(form):
    model, params = _linear_model([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0]], [0.2, -0.1], [0.3, -0.4, 1.0])
    x = onp.array([[1.0, 0.0], [0.0, 1.0]])
    psi = onp.array([[onp.inf, -onp.inf, onp.inf], [-onp.inf, onp.inf, -onp.inf]])
    # q is a point mass: the ELBO is log p(x, z*) exactly, whatever the samples
    z_star = (psi > 0).astype(float)
    expected = [float(_mp_log_joint(params, x[n], z_star[n])) for n in range(2)]
    got = objectives.elbo(model, params, psi, x, n_samples=3, rng=0, form=form)
    onp.testing.assert_allclose(got, expected, rtol=1e-14)
    onp.testing.assert_allclose(objectives.iwae(model, params, psi, x, k=4, rng=0), expected, rtol=1e-14)


def test_iwae_with_some_infinite_logits_matches_its_definition():
    model, params = _linear_model([[1.0, -2.0], [0.5, 0.3]], [0.2, -0.1], [0.3, -0.4])
    x = onp.array([[1.0, 0.0]])
    psi = onp.array([[onp.inf, 0.4]])
    z = variational.sample(psi, 5, onp.random.default_rng(3))          # the draws iwae makes with rng=3
    log_w = [float(_mp_log_joint(params, x[0], z[s, 0]) - _mp_log_q(psi[0], z[s, 0])) for s in range(5)]
    expected = float(mpmath.log(sum(mpmath.exp(v) for v in log_w) / 5))
    assert objectives.iwae(model, params, psi, x, k=5, rng=3)[0] == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------------------- mixed magnitudes
def test_log_prob_of_a_row_mixing_huge_and_ordinary_logits():
    psi = onp.array([[1e16, 0.3, -1.2, 1e12]])
    z = onp.array([[[1.0, 1.0, 0.0, 1.0]], [[1.0, 0.0, 1.0, 1.0]]])
    got = variational.log_prob(psi, z)[:, 0]
    expected = [float(_mp_log_q(psi[0], z[s, 0])) for s in range(2)]
    onp.testing.assert_allclose(got, expected, rtol=1e-14)
    states = exact.all_states(4)
    table = variational.log_prob_states(psi, states)[0]
    onp.testing.assert_allclose(table[[13, 11]], expected, rtol=1e-14)   # 1101 and 1011
    assert variational.entropy(psi)[0] == pytest.approx(
        float(sum(-(mpmath.exp(_mp_log_sigmoid(p)) * _mp_log_sigmoid(p)
                    + mpmath.exp(_mp_log_sigmoid(-p)) * _mp_log_sigmoid(-p)) for p in (0.3, -1.2))), rel=1e-14)


def test_fit_local_elbo_is_exact_when_the_optimum_mixes_huge_and_ordinary_logits():
    # z_1 = 1 is forced by a decoder weight of 2e15 (the optimal psi_1 is ~ +2e15), the others are ordinary
    W = [[2e15, 0.0, 0.0], [0.0, 1.0, -0.5], [0.0, -0.7, 0.9]]
    model, params = _linear_model(W, [-1e15, 0.1, -0.2], [0.2, -0.3, 0.4])
    x = onp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    psi, info = fit_local(model, params, x, n_restarts=2, return_info=True)
    assert (psi[:, 0] > 1e14).all() and (onp.abs(psi[:, 1:]) < 20).all()
    for n in range(2):
        reference = _mp_elbo(params, psi[n], x[n])
        assert info["elbo"][n] == pytest.approx(float(reference), abs=1e-12)
    # and the optimum is a true optimum of the reference ELBO in the ordinary coordinates
    for n in range(2):
        for k in (1, 2):
            bumped = psi[n].copy()
            bumped[k] += 1e-3
            assert _mp_elbo(params, bumped, x[n]) <= _mp_elbo(params, psi[n], x[n])


def test_fit_local_chunked_over_states_matches_one_chunk(monkeypatch):
    from vi_lab.inference import local

    model = vi_lab.BernoulliLVM(n_latent=5, n_obs=6, hidden=(4,))
    params = model.init_params(3, scale=2.0)
    _, x = model.sample(params, 7, rng=4)
    psi, info = fit_local(model, params, x, return_info=True)
    monkeypatch.setattr(local, "_TABLE_ENTRIES", 13)      # several ragged chunks of states and rows
    monkeypatch.setattr(local, "_STATES_ENTRIES", 1)      # states regenerated per chunk, never all held
    psi_small, info_small = fit_local(model, params, x, return_info=True)
    # both converged to |grad| < 1e-9 (blocks stop at different sweeps): same optimum, same ELBO
    assert info["converged"] and info_small["converged"]
    onp.testing.assert_allclose(psi_small, psi, rtol=1e-6, atol=1e-6)
    onp.testing.assert_allclose(info_small["elbo"], exact.elbo(model, params, psi_small, x), rtol=1e-12)
    onp.testing.assert_allclose(info["elbo"], info_small["elbo"], rtol=1e-12)


# ---------------------------------------------------------------------------- exact estimator
def test_exact_generic_grad_chunked_matches_brute_force(monkeypatch):
    from vi_lab.estimators import exact as exact_est

    rng = onp.random.default_rng(5)
    logits = rng.normal(size=(3, 4)) * 2
    coef = rng.normal(size=(3, 4))

    def f(z):
        return onp.sin(z @ onp.arange(1.0, 5.0)) + onp.sum(z * coef, axis=-1) ** 2

    # brute force: d/dpsi sum_z q(z) f(z) = sum_z q(z) f(z) (z - sigmoid(psi)), one row at a time
    states = exact.all_states(4)
    expected = onp.zeros((3, 4))
    s = 1 / (1 + onp.exp(-logits))
    for b in range(3):
        for z in states:
            q = onp.prod(onp.where(z == 1, s[b], 1 - s[b]))
            expected[b] += q * f(onp.broadcast_to(z, (3, 4)))[b] * (z - s[b])
    est = estimators.get("exact")
    onp.testing.assert_allclose(est.grad(f, logits, 1, rng=0), expected, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(exact_est, "_CHUNK_ENTRIES", 7)     # 1 state per chunk: ragged, many chunks
    onp.testing.assert_allclose(est.grad(f, logits, 1, rng=0), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rng", ["seed", -1, 1.5])
def test_exact_estimator_refuses_an_invalid_rng(rng):
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=())
    params = model.init_params(0)
    with pytest.raises(ValueError, match="rng:"):
        estimators.get("exact")(model, params, onp.zeros((1, 2)), onp.zeros((1, 3)), 1, rng=rng)
    with pytest.raises(ValueError, match="params_grad: expected True or False"):
        estimators.get("exact")(model, params, onp.zeros((1, 2)), onp.zeros((1, 3)), 1, rng=0, params_grad="no")


# ---------------------------------------------------------------------------- model densities
@pytest.fixture
def model_params():
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=(4,))
    return model, model.init_params(0)


@pytest.mark.parametrize("method", ["log_joint", "log_likelihood"])
@pytest.mark.parametrize("x, match", [
    ([0.5, 0.0, 1.0], r"x: expected binary values in \{0, 1\}"),
    ([onp.nan, 0.0, 1.0], r"x: expected binary values"),
    ([1.0, 0.0], r"x: expected shape \(\.\.\., 3\)"),
    ([1 + 1j, 0, 1], "x: expected real values, got complex"),
])
def test_model_densities_check_x(model_params, method, x, match):
    model, params = model_params
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(params, onp.array(x), onp.zeros(2))


@pytest.mark.parametrize("method", ["log_joint", "log_prior"])
@pytest.mark.parametrize("z, match", [
    ([7.0, 0.0], r"z: expected binary latents in \{0, 1\} \(or relaxed values in \[0, 1\]\)"),
    ([-0.1, 1.0], "z: expected binary latents"),
    ([onp.nan, 1.0], "z: expected binary latents"),
    ([1.0, 0.0, 1.0], r"z: expected shape \(\.\.\., 2\)"),
    ([1j, 0], "z: expected real values, got complex"),
])
def test_model_densities_check_z(model_params, method, z, match):
    model, params = model_params
    args = (onp.array(z),) if method == "log_prior" else (onp.zeros(3), onp.array(z))
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(params, *args)


def test_model_densities_still_accept_relaxed_latents_and_broadcast(model_params):
    model, params = model_params
    z = onp.array([[0.25, 1.0], [0.0, 0.6]])
    x = onp.array([1.0, 0.0, 1.0])
    a = vi_lab.nn.mlp(params["decoder"], z)
    expected = (onp.sum(z * params["prior_logits"] - onp.logaddexp(0, params["prior_logits"]), axis=-1)
                + onp.sum(x * a - onp.logaddexp(0, a), axis=-1))
    onp.testing.assert_allclose(model.log_joint(params, x, z), expected, rtol=1e-14)


def test_gaussian_model_checks_x_and_z():
    model = vi_lab.GaussianLVM(n_latent=2, n_obs=3, hidden=())
    params = model.init_params(0)
    model.log_joint(params, onp.zeros(3), onp.array([7.0, -3.0]))   # real latents: 7 is fine
    with pytest.raises(ValueError, match="z: contains NaN or"):
        model.log_joint(params, onp.zeros(3), onp.array([onp.inf, 0.0]))
    with pytest.raises(ValueError, match="x: expected binary"):
        model.log_likelihood(params, onp.full(3, 0.5), onp.zeros(2))


@pytest.mark.parametrize("call", [
    lambda m, p: exact.log_marginal(m, p, onp.array([[1 + 1e-3j, 0, 1]])),
    lambda m, p: objectives.elbo(m, p, onp.zeros((1, 2)) + 0j, onp.zeros((1, 3)), 1, rng=0),
    lambda m, p: exact.elbo(m, p, onp.array([[0.5 + 2j, 0.1]]), onp.zeros((1, 3))),
    lambda m, p: estimators.get("score_function")(m, p, onp.zeros((1, 2)) + 1j, onp.zeros((1, 3)), 2, rng=0),
], ids=["x exact", "logits objectives", "logits exact", "logits estimator"])
def test_complex_inputs_are_refused_not_cast(model_params, call):
    model, params = model_params
    with pytest.raises(ValueError, match="complex"):
        call(model, params)


# ---------------------------------------------------------------------------- options and data
@pytest.mark.parametrize("value", ["no", "False", 0, 1, 0.0, None, []])
def test_bool_options_accept_only_real_bools(value):
    with pytest.raises(ValueError, match="expected True or False"):
        check_bool(value, "flag")
    assert check_bool(onp.bool_(True), "flag") is True and check_bool(False, "flag") is False
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=())
    params = model.init_params(0)
    with pytest.raises(ValueError, match="return_info: expected True or False"):
        fit_local(model, params, onp.zeros((1, 3)), return_info=value)
    with pytest.raises(ValueError, match="progress: expected True or False"):
        fit_local(model, params, onp.zeros((1, 3)), progress=value)
    with pytest.raises(ValueError, match="return_labels: expected True or False"):
        data.digits(return_labels=value)


def test_split_refuses_1d_x_and_splits_rows():
    with pytest.raises(ValueError, match=r"x: expected a data matrix of shape \(N, L\), got an array with shape \(10,\)"):
        data.split(onp.arange(10.0))
    x = onp.arange(20.0).reshape(10, 2)
    train, valid = data.split(x, 0.3, rng=0)
    assert train.shape == (7, 2) and valid.shape == (3, 2)
    rows = {tuple(r) for r in onp.concatenate([train, valid])}
    assert rows == {tuple(r) for r in x}
    with pytest.raises(ValueError, match="valid_fraction"):
        data.split(x, True)


def test_fit_local_announces_a_long_run_before_it_starts(capsys):
    from vi_lab.inference import local

    assert local._announce(5, 10, 24, 100) > local._ANNOUNCE_SECONDS
    assert "about" in capsys.readouterr().err
    assert local._announce(5, 10, 4, 100) < local._ANNOUNCE_SECONDS
    assert capsys.readouterr().err == ""
