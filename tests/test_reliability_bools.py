"""A bool option given a non-bool ("no", 0, None) is an error naming the option, never silently truthy."""
import numpy as np
import pytest

from vi_lab import BernoulliLVM, GaussianLVM, estimators, experiments, optimizers
from vi_lab.inference import fit


@pytest.fixture(scope="module")
def small():
    model = BernoulliLVM(3, 5, hidden=(4,))
    params = model.init_params(0)
    _, x = model.sample(params, 4, rng=1)
    return model, params, np.zeros((4, 3)), x


BERNOULLI = [n for n in estimators.names("bernoulli") if n != "exact"]


@pytest.mark.parametrize("name", BERNOULLI + ["exact"])
@pytest.mark.parametrize("bad", ["no", "False", 0, None])
def test_estimator_params_grad_must_be_a_bool(small, name, bad):
    model, params, q_logits, x = small
    est = estimators.get(name)
    with pytest.raises(ValueError, match="params_grad: expected True or False"):
        est(model, params, q_logits, x, 2, rng=0, params_grad=bad)


@pytest.mark.parametrize("name", ["reparam", "gaussian_score_function"])
def test_gaussian_estimator_params_grad_must_be_a_bool(name):
    model = GaussianLVM(2, 5, hidden=(4,))
    params = model.init_params(0)
    x = (np.arange(20).reshape(4, 5) % 3 == 0).astype(float)
    q_params = {"mean": np.zeros((4, 2)), "log_std": np.zeros((4, 2))}
    with pytest.raises(ValueError, match="params_grad: expected True or False"):
        estimators.get(name)(model, params, q_params, x, 2, rng=0, params_grad="no")


@pytest.mark.parametrize("option", ["progress", "record_exact", "train_model"])
def test_fit_bool_options(small, option):
    model, _, _, x = small
    with pytest.raises(ValueError, match=f"{option}: expected True or False"):
        fit(model, x, method="exact_elbo", steps=1, **{option: "no"})


@pytest.mark.parametrize("cls", [optimizers.Adam, optimizers.SGD])
def test_optimizer_maximize(cls):
    with pytest.raises(ValueError, match="maximize: expected True or False"):
        cls(maximize="no")
    assert cls(maximize=False).sign == -1.0


@pytest.mark.parametrize("option", ["model_grad", "progress"])
def test_variance_bool_options(small, option):
    model, params, q_logits, x = small
    with pytest.raises(ValueError, match=f"{option}: expected True or False"):
        experiments.variance(model, params, q_logits, x, estimators=["arm"], samples=[2], reps=2,
                             **{option: "no"})
