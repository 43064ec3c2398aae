"""The estimator registry: names, construction, attributes, option checks, shapes of every output."""
import numpy as np
import pytest

from vi_lab import BernoulliLVM, estimators, exact

BERNOULLI = ["exact", "score_function", "nvil", "concrete", "straight_through", "arm", "disarm", "rebar", "vimco",
             "relax", "arms", "leg", "dcv", "rodeo", "gumbel_rao", "reinmax"]
#: evaluations that depend on the model: exact enumerates 2**K states, LEG adds K flips to each draw
_MODEL_COST = {"exact": lambda k: 2 ** k, "leg": lambda k: k + 1}


@pytest.fixture(scope="module")
def small():
    model = BernoulliLVM(3, 5, hidden=(4,))
    params = model.init_params(0, scale=2.0)
    _, x = model.sample(params, 4, rng=1)
    q_logits = np.random.default_rng(2).normal(size=(4, 3))
    return model, params, q_logits, x


def test_names_lists_every_bernoulli_estimator_in_registry_order():
    listed = estimators.names(latent="bernoulli")
    assert listed == BERNOULLI
    assert set(listed) <= set(estimators.names())
    rows = estimators.describe(latent="bernoulli")
    assert [r["name"] for r in rows] == listed


def test_gaussian_names_only_listed_when_importable():
    import importlib.util
    present = importlib.util.find_spec("vi_lab.estimators.gaussian") is not None
    listed = {"reparam", "gaussian_score_function"} & set(estimators.names())
    assert listed == ({"reparam", "gaussian_score_function"} if present else set())


@pytest.mark.parametrize("name", BERNOULLI)
def test_attributes(name):
    est = estimators.get(name)
    assert est.name == name
    assert isinstance(est.unbiased, bool) and isinstance(est.stateful, bool)
    assert est.latent == "bernoulli"
    assert est.min_samples in (1, 2)
    assert isinstance(est.reference, str) and est.reference
    assert est.evals_per_sample is None or est.evals_per_sample in (1, 2, 3)
    expected = _MODEL_COST[name](5) if name in _MODEL_COST else est.evals_per_sample
    assert est.cost(BernoulliLVM(5, 3)) == expected
    assert est.__doc__ and "Notes" in est.__doc__ and "References" in est.__doc__
    rebuilt = estimators.get(**est.config())
    assert rebuilt.config() == est.config()


def test_documented_bias_flags():
    unbiased = {n: estimators.get(n).unbiased for n in BERNOULLI}
    assert unbiased == {"exact": True, "score_function": True, "nvil": False, "concrete": False,
                        "straight_through": False, "arm": True, "disarm": True, "rebar": True,
                        "vimco": True, "relax": True, "arms": True, "leg": True, "dcv": True, "rodeo": True,
                        "gumbel_rao": False, "reinmax": False}
    assert not estimators.get("score_function", baseline="mean").unbiased
    assert estimators.get("nvil", normalize=False).unbiased
    assert estimators.get("score_function", baseline="rloo").min_samples == 2
    assert estimators.get("vimco").min_samples == 2


def test_unknown_name_suggests_a_fix():
    with pytest.raises(ValueError, match="unknown estimator 'score_fuction'.*did you mean 'score_function'"):
        estimators.get("score_fuction")
    with pytest.raises(ValueError, match="available: exact, score_function"):
        estimators.get("nope")
    with pytest.raises(ValueError, match="latent"):
        estimators.names(latent="poisson")


@pytest.mark.parametrize("name, options, pattern", [
    ("score_function", {"baseline": "loo"}, "baseline: expected None, 'rloo' or 'mean'"),
    ("score_function", {"entropy": "exact"}, "entropy: expected 'sampled' or 'analytic'"),
    ("score_function", {"basline": "rloo"}, "basline: unknown option.*did you mean 'baseline'"),
    ("exact", {"tau": 1.0}, "tau: unknown option for estimator 'exact'; it accepts no options"),
    ("concrete", {"tau": 0.0}, r"tau: expected a temperature > 0 \(e.g. tau=0.5\)"),
    ("concrete", {"tau": -1.0}, "tau: expected a temperature > 0"),
    ("straight_through", {"tau": "hot"}, "tau: expected a temperature > 0"),
    ("rebar", {"tau": 0}, "tau: expected a temperature > 0"),
    ("rebar", {"eta": float("nan")}, "eta: expected a finite"),
    ("nvil", {"alpha": 1.5}, r"alpha: expected a decay in \[0, 1\)"),
    ("nvil", {"hidden": 0}, "hidden"),
    ("nvil", {"learning_rate": -1.0}, "learning_rate: expected a positive"),
    ("relax", {"tau": -0.5}, "tau: expected a temperature > 0"),
    ("relax", {"eta": "one"}, "eta: expected a finite"),
    ("relax", {"learn": 1}, "learn: expected True or False"),
])
def test_bad_options_raise(name, options, pattern):
    with pytest.raises(ValueError, match=pattern):
        estimators.get(name, **options)


def test_rloo_with_one_sample_names_the_fix(small):
    model, params, q_logits, x = small
    est = estimators.get("score_function", baseline="rloo")
    with pytest.raises(ValueError, match="n_samples: baseline='rloo'.*n_samples >= 2 or baseline=None"):
        est(model, params, q_logits, x, 1, 0)
    with pytest.raises(ValueError, match="n_samples >= 2"):
        est.grad(lambda z: z.sum(-1), np.zeros(2), 1, 0)
    with pytest.raises(ValueError, match="n_samples: .*vimco.*>= 2"):
        estimators.get("vimco")(model, params, q_logits, x, 1, 0)


def test_bad_inputs_raise(small):
    model, params, q_logits, x = small
    est = estimators.get("score_function")
    with pytest.raises(ValueError, match=r"q_logits: expected shape \(4, 3\)"):
        est(model, params, q_logits[:, :2], x, 2, 0)
    with pytest.raises(ValueError, match="x: expected binary"):
        est(model, params, q_logits, x + 0.5, 2, 0)
    with pytest.raises(ValueError, match="n_samples"):
        est(model, params, q_logits, x, 0, 0)
    with pytest.raises(ValueError, match="n_reps"):
        est(model, params, q_logits, x, 2, 0, n_reps=0)
    with pytest.raises(ValueError, match="rng"):
        est(model, params, q_logits, x, 2, rng="seed")
    with pytest.raises(ValueError, match="q_logits: contains"):
        est(model, params, np.full((4, 3), np.inf), x, 2, 0)
    with pytest.raises(ValueError, match="f: expected an output of shape"):
        est.grad(lambda z: z, np.zeros(2), 3, 0)
    with pytest.raises(ValueError, match="f: expected a callable"):
        est.grad(3.0, np.zeros(2), 3, 0)
    with pytest.raises(ValueError, match="logits: expected finite"):
        est.grad(lambda z: z.sum(-1), np.array([np.nan, 0.0]), 3, 0)


@pytest.mark.parametrize("name", BERNOULLI)
def test_output_shapes_and_reproducibility(name, small):
    model, params, q_logits, x = small
    est = estimators.get(name)
    g_params, g_logits = est(model, params, q_logits, x, 3, rng=5)
    ref_params, _ = exact.elbo_grad(model, params, q_logits, x)
    assert g_logits.shape == (4, 3)
    assert g_params.keys() == ref_params.keys()
    for key, leaf in ref_params["decoder"].items():
        assert g_params["decoder"][key].shape == leaf.shape
    assert g_params["prior_logits"].shape == (3,)
    again = estimators.get(name)(model, params, q_logits, x, 3, rng=5)[1]
    np.testing.assert_array_equal(g_logits, again)
    gp_r, gl_r = est(model, params, q_logits, x, 3, rng=5, n_reps=4)
    assert gl_r.shape == (4, 4, 3)
    assert gp_r["decoder"]["W0"].shape == (4,) + ref_params["decoder"]["W0"].shape
    none_params, gl_only = est(model, params, q_logits, x, 3, rng=5, n_reps=4, params_grad=False)
    assert none_params is None and gl_only.shape == (4, 4, 3)
    f = lambda z: np.sum((z - 0.3) ** 2, axis=-1)
    assert est.grad(f, np.zeros((2, 3)), 3, 0).shape == (2, 3)
    assert est.grad(f, np.zeros(3), 3, 0, n_reps=6).shape == (6, 3)


@pytest.mark.parametrize("name", BERNOULLI)
def test_extreme_logits_are_finite(name):
    model = BernoulliLVM(2, 3, hidden=(3,))
    params = model.init_params(0)
    x = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    q_logits = np.array([[1e4, -1e4], [-1e4, 3.0]])
    g_params, g_logits = estimators.get(name)(model, params, q_logits, x, 4, rng=0)
    assert np.isfinite(g_logits).all()
    assert all(np.isfinite(v).all() for v in g_params["decoder"].values())
    # q is (almost) a point mass in the saturated coordinates: no gradient signal there
    np.testing.assert_allclose(g_logits[0], 0.0, atol=1e-12)


def test_bernoulli_estimators_reject_a_gaussian_model():
    import numpy as onp
    import vi_lab
    gauss = vi_lab.GaussianLVM(n_latent=2, n_obs=3, hidden=())
    est = vi_lab.estimators.get("score_function")
    with pytest.raises(ValueError, match="bernoulli latents"):
        est(gauss, gauss.init_params(0), onp.zeros((1, 2)), onp.zeros((1, 3)), 2, 0)
