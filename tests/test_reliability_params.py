"""One parameter check at every entry point: structure, shapes, real dtype, no NaN and no +-inf.

Before the check only NaN was refused: an infinite prior logit gave log p(x) = -inf and NaN
everywhere, a decoder dict with a layer missing silently became another network, and a
prior_logits of shape () or (1,) broadcast.
"""
import numpy as onp
import pytest

import vi_lab
from vi_lab import estimators, exact, objectives
from vi_lab._validation import check_params
from vi_lab.inference import fit, fit_local


@pytest.fixture
def problem():
    model = vi_lab.BernoulliLVM(n_latent=3, n_obs=5, hidden=(4,))
    params = model.init_params(0)
    params["prior_logits"] = onp.array([0.3, -0.2, 0.1])
    _, x = model.sample(params, 6, rng=1)
    logits = onp.random.default_rng(2).normal(size=(6, 3))
    return model, params, x, logits


def _copy(params):
    return {"prior_logits": onp.array(params["prior_logits"]),
            "decoder": {k: onp.array(v) for k, v in params["decoder"].items()}}


def _entry_points(model, x, logits):
    """Every public routine that takes Bernoulli-model parameters, as callables of params."""
    return {
        "exact.log_marginal": lambda p: exact.log_marginal(model, p, x),
        "exact.posterior": lambda p: exact.posterior(model, p, x),
        "exact.elbo": lambda p: exact.elbo(model, p, logits, x),
        "exact.elbo_grad": lambda p: exact.elbo_grad(model, p, logits, x),
        "exact.kl_to_posterior": lambda p: exact.kl_to_posterior(model, p, logits, x),
        "objectives.elbo": lambda p: objectives.elbo(model, p, logits, x, 2, rng=0),
        "objectives.elbo analytic": lambda p: objectives.elbo(model, p, logits, x, 2, rng=0, form="analytic_kl"),
        "objectives.iwae": lambda p: objectives.iwae(model, p, logits, x, 3, rng=0),
        "estimator score_function": lambda p: estimators.get("score_function")(model, p, logits, x, 4, rng=0),
        "estimator exact": lambda p: estimators.get("exact")(model, p, logits, x, 1, rng=0),
        "model.log_joint": lambda p: model.log_joint(p, x, onp.zeros((6, 3))),
        "model.log_likelihood": lambda p: model.log_likelihood(p, x, onp.zeros((6, 3))),
        "model.log_prior": lambda p: model.log_prior(p, onp.zeros((6, 3))),
        "fit_local": lambda p: fit_local(model, p, x, steps=2),
        "fit": lambda p: fit(model, x, method="exact_elbo", steps=1, params=p, progress=False),
    }


ENTRY_NAMES = list(_entry_points(None, None, None))


@pytest.mark.parametrize("entry", ENTRY_NAMES)
@pytest.mark.parametrize("bad", [onp.inf, -onp.inf, onp.nan])
def test_infinite_or_nan_prior_logit_is_refused_naming_the_leaf(problem, entry, bad):
    model, params, x, logits = problem
    call = _entry_points(model, x, logits)[entry]
    call(params)                                          # the good parameters pass
    broken = _copy(params)
    broken["prior_logits"][0] = bad
    with pytest.raises(ValueError, match=r'params\["prior_logits"\]') as err:
        call(broken)
    assert {"inf": "inf", "-inf": "-inf", "nan": "NaN"}[str(bad)] in str(err.value)


@pytest.mark.parametrize("entry", ["exact.log_marginal", "objectives.elbo", "estimator score_function",
                                   "fit_local", "model.log_joint"])
def test_infinite_decoder_weight_is_refused_naming_the_leaf(problem, entry):
    model, params, x, logits = problem
    broken = _copy(params)
    broken["decoder"]["W0"][1, 2] = onp.inf
    with pytest.raises(ValueError, match=r'params\["decoder"\]\["W0"\]: contains 1 \+inf'):
        _entry_points(model, x, logits)[entry](broken)


@pytest.mark.parametrize("entry", ["exact.log_marginal", "objectives.iwae", "estimator exact", "fit_local",
                                   "model.log_likelihood"])
def test_decoder_with_a_layer_missing_or_extra_is_refused(problem, entry):
    model, params, x, logits = problem
    call = _entry_points(model, x, logits)[entry]
    missing = _copy(params)
    # a linear decoder K -> L would be a valid *other* network: len(params) // 2 layers
    missing["decoder"] = {"W0": onp.zeros((3, 5)), "b0": onp.zeros(5)}
    with pytest.raises(ValueError, match=r'params\["decoder"\]: keys missing \[\'W1\', \'b1\'\]'):
        call(missing)
    extra = _copy(params)
    extra["decoder"]["W2"] = onp.zeros((5, 5))
    with pytest.raises(ValueError, match=r"unexpected \['W2'\]"):
        call(extra)


@pytest.mark.parametrize("shape", [(), (1,), (3, 1), (4,)])
@pytest.mark.parametrize("entry", ["exact.log_marginal", "objectives.elbo", "estimator score_function",
                                   "model.log_prior", "fit"])
def test_prior_logits_of_a_broadcastable_shape_is_refused(problem, entry, shape):
    model, params, x, logits = problem
    broken = _copy(params)
    broken["prior_logits"] = onp.full(shape, 0.1)
    with pytest.raises(ValueError, match=r'params\["prior_logits"\]'):
        _entry_points(model, x, logits)[entry](broken)


def test_check_params_refuses_complex_and_string_leaves_and_non_dicts(problem):
    model, params, _, _ = problem
    cplx = _copy(params)
    cplx["decoder"]["b0"] = cplx["decoder"]["b0"] + 1j
    with pytest.raises(ValueError, match=r'params\["decoder"\]\["b0"\].*complex'):
        check_params(model, cplx)
    with pytest.raises(ValueError, match=r'params\["decoder"\]: expected a dict'):
        check_params(model, {"prior_logits": params["prior_logits"], "decoder": [1, 2]})
    with pytest.raises(ValueError, match=r"params: keys missing \['decoder'\]"):
        check_params(model, {"prior_logits": params["prior_logits"]})


def test_gaussian_model_parameters_are_checked_too():
    model = vi_lab.GaussianLVM(n_latent=2, n_obs=4, hidden=(3,))
    params = model.init_params(0)
    check_params(model, params)
    params["decoder"]["b1"] = onp.array([0.0, -onp.inf, 0.0, 0.0])
    with pytest.raises(ValueError, match=r'params\["decoder"\]\["b1"\]: contains 1 -inf'):
        check_params(model, params)
    with pytest.raises(ValueError, match=r'params\["decoder"\]\["b1"\]'):
        model.log_joint(params, onp.zeros(4), onp.zeros(2))
    with pytest.raises(ValueError, match=r"unexpected \['prior_logits'\]"):
        check_params(model, {"decoder": model.init_params(0)["decoder"], "prior_logits": onp.zeros(2)})


@pytest.mark.parametrize("call", [
    lambda m, p, x, q: objectives.elbo(m, p, q, x, 2, rng=0),
    lambda m, p, x, q: objectives.iwae(m, p, q, x, 2, rng=0),
    lambda m, p, x, q: fit_local(m, p, x, steps=1),
    lambda m, p, x, q: exact.log_marginal(m, p, x),
    lambda m, p, x, q: estimators.get("disarm")(m, p, q, x, 2, rng=0),
], ids=["objectives.elbo", "objectives.iwae", "fit_local", "exact.log_marginal", "disarm"])
def test_bernoulli_only_entry_points_refuse_a_gaussian_model_by_name(call):
    model = vi_lab.GaussianLVM(n_latent=2, n_obs=4, hidden=(3,))
    params = model.init_params(0)
    x = onp.zeros((3, 4))
    with pytest.raises(ValueError, match=r"model: expected a model with bernoulli latents \(a BernoulliLVM\), "
                                         r"got GaussianLVM"):
        call(model, params, x, onp.zeros((3, 2)))
