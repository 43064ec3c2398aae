"""Gradient-ascent optimizers against closed-form optima and a scalar reference loop."""
import numpy as onp
import pytest

from vi_lab import optimizers
from vi_lab.optimizers import Adam, SGD, adam, sgd, exponential_decay

TARGET = {"a": onp.array([1.0, -2.0, 3.0]), "nested": {"b": onp.array([[0.5, -0.5], [2.0, 0.0]])}}


def concave_grad(params, step):
    """Gradient of -1/2 ||params - TARGET||^2, maximized at TARGET."""
    return {"a": TARGET["a"] - params["a"], "nested": {"b": TARGET["nested"]["b"] - params["nested"]["b"]}}


def zeros():
    return {"a": onp.zeros(3), "nested": {"b": onp.zeros((2, 2))}}


@pytest.mark.parametrize("run", [
    lambda: adam(concave_grad, zeros(), num_iters=3000, step_size=0.05),
    lambda: adam(concave_grad, zeros(), num_iters=3000, step_size=exponential_decay(0.1, 0.5, 500)),
    lambda: sgd(concave_grad, zeros(), num_iters=300, step_size=0.5),
    lambda: sgd(concave_grad, zeros(), num_iters=300, step_size=lambda t: 0.5, mass=0.0),
])
def test_optimizers_ascend_to_the_maximum_of_a_concave_quadratic(run):
    out = run()
    onp.testing.assert_allclose(out["a"], TARGET["a"], atol=1e-4)
    onp.testing.assert_allclose(out["nested"]["b"], TARGET["nested"]["b"], atol=1e-4)


def test_maximize_false_descends():
    # grad of +1/2 ||params - TARGET||^2 descended also reaches TARGET; ascended it diverges
    loss_grad = lambda p, i: {"a": p["a"] - TARGET["a"], "nested": {"b": p["nested"]["b"] - TARGET["nested"]["b"]}}
    out = adam(loss_grad, zeros(), num_iters=3000, step_size=0.05, maximize=False)
    onp.testing.assert_allclose(out["a"], TARGET["a"], atol=1e-4)
    away = adam(loss_grad, zeros(), num_iters=50, step_size=0.05)
    assert onp.all(onp.abs(away["a"] - TARGET["a"]) > onp.abs(TARGET["a"]))


def test_adam_matches_a_scalar_reference_loop():
    def reference(x, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
        m = v = 0.0
        for t in range(1, steps + 1):
            g = -2.0 * (x - 0.7) + 0.3 * onp.sin(7 * x)      # any smooth gradient
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            x = x + lr * (m / (1 - b1 ** t)) / (onp.sqrt(v / (1 - b2 ** t)) + eps)
        return x

    grad = lambda p, i: {"x": -2.0 * (p["x"] - 0.7) + 0.3 * onp.sin(7 * p["x"])}
    out = adam(grad, {"x": onp.array([-1.0, 2.0])}, num_iters=25, step_size=0.1)
    onp.testing.assert_allclose(out["x"], [reference(-1.0, 25, 0.1), reference(2.0, 25, 0.1)], rtol=1e-13)


def test_sgd_without_momentum_steps_exactly_lr_times_gradient():
    opt = SGD(0.25, mass=0.0)
    params = zeros()
    new, state = opt.update(params, concave_grad(params, 0), opt.init(params))
    onp.testing.assert_array_equal(new["a"], 0.25 * TARGET["a"])
    assert state["step"] == 1 and params["a"].sum() == 0.0          # input untouched


def test_callback_sees_every_step_before_the_update():
    seen = []
    adam(concave_grad, zeros(), callback=lambda p, i, g: seen.append((i, p["a"][0], g["a"][0])), num_iters=4,
         step_size=0.1)
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert seen[0][1] == 0.0 and seen[0][2] == 1.0 and seen[1][1] == pytest.approx(0.1)


@pytest.mark.parametrize("opt", [Adam(0.1), SGD(0.1)])
def test_row_updates_touch_only_the_given_rows(opt):
    params = {"table": onp.arange(12.0).reshape(6, 2)}
    state = opt.init(params)
    for _ in range(3):       # three steps on rows 1 and 4, so momentum exists
        params, state = opt.update(params, {"table": onp.ones((2, 2))}, state, rows=onp.array([1, 4]))
    before = params["table"].copy()
    params, state = opt.update(params, {"table": onp.ones((2, 2))}, state, rows=onp.array([0, 5]))
    changed = onp.any(params["table"] != before, axis=1)
    onp.testing.assert_array_equal(changed, [True, False, False, False, False, True])


def test_adam_bias_correction_counts_updates_per_row():
    # Adam's first update of any row has size lr whatever the global step count
    opt = Adam(0.1)
    params = {"table": onp.zeros((4, 1))}
    state = opt.init(params)
    for _ in range(5):
        params, state = opt.update(params, {"table": onp.array([[2.0]])}, state, rows=onp.array([0]))
    params, state = opt.update(params, {"table": onp.array([[-3.0]])}, state, rows=onp.array([2]))
    assert params["table"][2, 0] == pytest.approx(-0.1, rel=1e-6)
    onp.testing.assert_array_equal(state["count"]["table"], [5, 0, 1, 0])


def test_schedules():
    decay = exponential_decay(0.1, 0.5, 10, minimum=0.01)
    assert decay(0) == 0.1 and decay(10) == pytest.approx(0.05) and decay(1000) == 0.01
    assert optimizers.as_schedule(0.3)(99) == 0.3
    assert decay.config()["schedule"] == "exponential_decay"
    # the schedule drives the step: SGD without momentum at step t moves by lr(t) * g
    opt = SGD(lambda t: 1.0 / (t + 1), mass=0.0)
    p, state = {"x": onp.zeros(1)}, opt.init({"x": onp.zeros(1)})
    for _ in range(3):
        p, state = opt.update(p, {"x": onp.ones(1)}, state)
    assert p["x"][0] == pytest.approx(1 + 1 / 2 + 1 / 3)


@pytest.mark.parametrize("make, match", [
    (lambda: Adam(0.0), "learning_rate: expected a positive number"),
    (lambda: Adam("fast"), "learning_rate"),
    (lambda: Adam(0.1, b1=1.0), "b1"),
    (lambda: SGD(0.1, mass=1.5), "mass"),
    (lambda: exponential_decay(0.1, 1.5, 10), "decay_rate"),
    (lambda: exponential_decay(0.1, 0.5, 0), "decay_steps"),
    (lambda: adam(concave_grad, zeros(), num_iters=-1), "num_iters"),
    (lambda: Adam(0.1).update(zeros(), zeros(), Adam(0.1).init(zeros()), rows=onp.array([0, 0])), "rows"),
    (lambda: SGD(lambda t: -1.0).update(zeros(), zeros(), SGD(0.1).init(zeros())), "learning_rate"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
