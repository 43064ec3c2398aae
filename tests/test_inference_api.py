"""fit's plumbing: history, reproducibility, estimators as objects, saving, interrupts, bad input."""
import json

import numpy as onp
import pytest

import vi_lab
from vi_lab import exact
from vi_lab._tree import flatten
from vi_lab.inference import fit, load, METHODS, FitResult
from vi_lab.variational import Encoder, MeanField


@pytest.fixture(scope="module")
def small():
    model = vi_lab.BernoulliLVM(3, 6, hidden=(8,))
    truth = model.init_params(5, scale=3.0)
    _, x = model.sample(truth, 40, rng=1)
    return model, x[:30], x[30:]


def run(small, **kwargs):
    model, x, x_valid = small
    options = dict(method="amortized", estimator="disarm", n_samples=2, steps=12, batch_size=10,
                   learning_rate=0.05, x_valid=x_valid, record_every=5, rng=0, progress=False,
                   family=Encoder(6, 3, hidden=(8,)))
    options.update(kwargs)
    return fit(model, x, **options)


class ExactAsEstimator:
    """A plug-in estimator object built in the test: the exact ELBO gradient."""
    name = "exact_test"

    def __call__(self, model, params, q_logits, x, n_samples, rng):
        return exact.elbo_grad(model, params, q_logits, x)


def test_methods_registry_lists_the_six_methods():
    assert sorted(METHODS) == sorted(["per_datapoint", "amortized", "wake_sleep", "reweighted_wake_sleep",
                                      "exact_ml", "exact_elbo"])
    assert all(m.summary and m.reference for m in METHODS.values())


def test_history_columns_and_record_steps(small):
    result = run(small)
    h = result.history
    assert set(h) == {"step", "wall_time", "decoder_evals", "log_px_train", "log_px_valid", "elbo_exact",
                      "kl_gap", "objective", "grad_norm"}
    onp.testing.assert_array_equal(h["step"], [0, 5, 10, 12])
    assert all(v.ndim == 1 and v.shape == (4,) for v in h.values())
    # disarm: 2 decoder evaluations per draw, 10 datapoints x 2 draws per step
    onp.testing.assert_array_equal(h["decoder_evals"], 40 * h["step"])
    model, x, x_valid = small
    assert h["log_px_train"][-1] == pytest.approx(exact.log_marginal(model, result.params, x).mean(), abs=1e-12)
    assert h["log_px_valid"][-1] == pytest.approx(exact.log_marginal(model, result.params, x_valid).mean(), abs=1e-12)
    logits = result.q_logits(x)
    assert h["elbo_exact"][-1] == pytest.approx(exact.elbo(model, result.params, logits, x).mean(), abs=1e-12)
    assert (h["grad_norm"] > 0).all() and onp.all(onp.diff(h["wall_time"]) >= 0)
    assert result.config["steps_done"] == 12 and not result.interrupted
    assert "amortized" in repr(result)


def test_same_seed_same_history_different_seed_different(small):
    first, again, other = run(small), run(small), run(small, rng=1)
    for key in first.history:
        if key != "wall_time":
            onp.testing.assert_array_equal(first.history[key], again.history[key])
    onp.testing.assert_array_equal(flatten(first.params)[0], flatten(again.params)[0])
    assert not onp.array_equal(first.history["objective"], other.history["objective"])
    # a Generator is accepted and advances like the equivalent seed
    from_generator = run(small, rng=onp.random.default_rng(0))
    onp.testing.assert_array_equal(first.history["log_px_train"], from_generator.history["log_px_train"])


def test_record_every_does_not_change_the_training_trajectory(small):
    coarse, fine = run(small, record_every=12), run(small, record_every=1)
    onp.testing.assert_array_equal(flatten(coarse.params)[0], flatten(fine.params)[0])
    assert len(fine.history["step"]) == 13


def test_an_estimator_object_plugs_in_and_matches_exact_elbo(small):
    # amortized VI with the exact gradient as the estimator is the exact_elbo method
    with_object = run(small, estimator=ExactAsEstimator())
    exact_method = run(small, method="exact_elbo", estimator=None)
    onp.testing.assert_allclose(flatten(with_object.params)[0], flatten(exact_method.params)[0], rtol=1e-12)
    onp.testing.assert_allclose(flatten(with_object.q_params)[0], flatten(exact_method.q_params)[0], rtol=1e-12)
    assert with_object.config["estimator"]["name"] == "exact_test"


def test_encoder_chain_rule_matches_finite_differences(small):
    # the phi-gradient fit ascends for exact_elbo equals d/dphi of the mean exact ELBO
    from vi_lab.inference.fit import _Context
    model, x, _ = small
    family = Encoder(6, 3, hidden=(4,))
    params, q = model.init_params(0), family.init_params(0)
    ctx = _Context(model, x, family, None, 1, {})
    _, g_q, _ = METHODS["exact_elbo"].gradient(ctx, params, q, onp.arange(30), None)

    def mean_elbo(qq):
        return exact.elbo(model, params, family.logits(qq, x), x).mean()

    for key, index in (("W0", (2, 1)), ("b0", (3,)), ("W1", (0, 2)), ("b1", (1,))):
        bumped = []
        for sign in (1, -1):
            qq = {k: v.copy() for k, v in q.items()}
            qq[key][index] += sign * 1e-6
            bumped.append(mean_elbo(qq))
        assert g_q[key][index] == pytest.approx((bumped[0] - bumped[1]) / 2e-6, rel=1e-5, abs=1e-8)


def test_starting_params_are_used_and_not_modified(small):
    model, x, _ = small
    start = model.init_params(9, scale=2.0)
    before = flatten(start)[0].copy()
    result = run(small, params=start, steps=3, record_every=3)
    onp.testing.assert_array_equal(flatten(start)[0], before)
    assert result.history["log_px_train"][0] == pytest.approx(exact.log_marginal(model, start, x).mean())


def test_keyboard_interrupt_returns_the_run_so_far(small):
    def interrupt_at_10(result, step):
        if step == 10:
            raise KeyboardInterrupt

    stopped = run(small, steps=100, callback=interrupt_at_10)
    assert stopped.interrupted and "interrupted" in repr(stopped)
    onp.testing.assert_array_equal(stopped.history["step"], [0, 5, 10])
    # the parameters are those after exactly 10 updates
    onp.testing.assert_array_equal(flatten(stopped.params)[0], flatten(run(small, steps=10).params)[0])


def test_callback_returning_true_stops_early(small):
    result = run(small, steps=100, callback=lambda res, step: step >= 5)
    assert not result.interrupted and result.history["step"][-1] == 5


def test_progress_bar_can_be_switched_on_and_off(small, capsys):
    run(small, steps=3, progress=True)
    assert "fit amortized" in capsys.readouterr().err
    run(small, steps=3, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("method", sorted(METHODS))
def test_save_and_load_round_trip(small, tmp_path, method):
    family = {"exact_ml": None, "per_datapoint": "mean_field"}.get(method, Encoder(6, 3, hidden=(8,)))
    estimator = "disarm" if METHODS[method].uses_estimator else None
    result = run(small, method=method, family=family, estimator=estimator, steps=4, record_every=2)
    npz_path, json_path = result.save(tmp_path / "runs" / "r.npz")
    loaded = load(tmp_path / "runs" / "r")
    assert isinstance(loaded, FitResult) and loaded.method == method
    assert loaded.model.config() == result.model.config() and loaded.config == json.loads(json.dumps(result.config))
    onp.testing.assert_array_equal(flatten(loaded.params)[0], flatten(result.params)[0])
    for key, values in result.history.items():
        onp.testing.assert_array_equal(loaded.history[key], values)
        assert loaded.history[key].dtype == values.dtype
    if result.family is None:
        assert loaded.family is None and loaded.q_params is None
    else:
        assert loaded.family.config() == result.family.config()
        model, x, _ = small
        onp.testing.assert_array_equal(loaded.q_logits(x), result.q_logits(x))
    keys = set(onp.load(npz_path).files)
    assert {"prior_logits", "decoder/W0", "decoder/b1"} <= keys
    assert json.load(open(json_path))["history"]["step"] == [0, 2, 4]


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="path: .* does not exist"):
        load(tmp_path / "missing")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    onp.savez(tmp_path / "other.npz", a=onp.zeros(1))
    with pytest.raises(ValueError, match="not a saved vi_lab run"):
        load(tmp_path / "other.json")


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "vae"}, "method: unknown method 'vae'"),
    ({"n_samples": 0}, "n_samples: expected an integer >= 1"),
    ({"steps": -1}, "steps"),
    ({"batch_size": 0}, "batch_size"),
    ({"record_every": 0}, "record_every"),
    ({"optimizer": "lbfgs"}, "optimizer: unknown optimizer"),
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"method": "per_datapoint", "family": MeanField(29, 3)}, r"family: .* \(29 rows\) but x has 30 rows"),
    ({"family": Encoder(6, 4)}, "family: .* n_latent = 4 but the model has K = 3"),
    ({"family": Encoder(7, 3)}, "family: .* width 7 but the model has L = 6"),
    ({"method": "per_datapoint", "family": Encoder(6, 3)}, "family: method 'per_datapoint' needs a mean_field"),
    ({"family": "flow"}, "family: unknown family 'flow'"),
    ({"method": "exact_ml", "estimator": None}, "family: method 'exact_ml' has no variational family"),
    ({"method": "exact_ml", "family": None}, "estimator: method 'exact_ml' does not use"),
    ({"estimator": "no_such_estimator"}, "no_such_estimator"),
    ({"estimator": "vimco", "n_samples": 1}, "n_samples: estimator 'vimco' needs n_samples >= 2"),
    ({"estimator": 3}, "estimator: expected a registered name or an estimator object"),
    ({"method": "wake_sleep", "estimator": None, "method_options": {"k": 2}}, "method_options: unknown option"),
    ({"method": "reweighted_wake_sleep", "estimator": None, "family": "mean_field",
      "method_options": {"sleep_phi": True}}, "family: the sleep phase needs an amortized Encoder"),
    ({"params": {"prior_logits": onp.zeros(4), "decoder": {}}}, r'params\["prior_logits"\]: expected shape'),
    ({"q_params": {"W0": onp.zeros((6, 8))}}, "q_params: expected a dict with keys"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(small, **kwargs)


def test_bad_data_raise(small):
    model, x, _ = small
    with pytest.raises(ValueError, match="x: expected 6 columns"):
        fit(model, x[:, :5], progress=False)
    with pytest.raises(ValueError, match="x_valid: expected binary"):
        fit(model, x, x_valid=x + 0.5, progress=False)
