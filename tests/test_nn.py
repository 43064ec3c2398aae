"""The MLP's hand-written backward and its untraced fast path, against autograd and finite differences."""
import autograd
import numpy as onp
import pytest

from vi_lab import nn
from vi_lab._tree import flatten

ACTIVATIONS = sorted(nn.ACTIVATIONS)
SHAPES = [(3, (), 4), (3, (5,), 4), (4, (6, 3), 2)]


def make(shape, seed, scale=1.5):
    d_in, hidden, d_out = shape
    rng = onp.random.default_rng(seed)
    params = nn.init_mlp((d_in,) + hidden + (d_out,), rng, scale=scale)
    for key in params:
        if key.startswith("b"):
            params[key] = 0.7 * rng.standard_normal(params[key].shape)
    inputs = (rng.random((9, d_in)) < 0.5).astype(float)
    inputs[0] = rng.standard_normal(d_in)                 # a real-valued row too
    upstream = rng.standard_normal((9, d_out))
    return params, inputs, upstream


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_is_bit_identical_to_mlp_and_to_the_traced_path(activation, shape):
    params, inputs, _ = make(shape, 0)
    out, cache = nn.mlp_forward(params, inputs, activation)
    onp.testing.assert_array_equal(out, nn.mlp(params, inputs, activation))
    # the traced branch (autograd boxes) computes the same function as the untraced fast path
    _, traced = autograd.make_vjp(lambda p: nn.mlp(p, inputs, activation))(params)
    onp.testing.assert_allclose(traced, out, rtol=1e-13, atol=1e-13)
    assert len(cache) == len(shape[1]) + 1


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_autograd(activation, shape):
    params, inputs, upstream = make(shape, 1)
    _, cache = nn.mlp_forward(params, inputs, activation)
    ours = nn.mlp_backward(params, cache, upstream, activation)
    reference = autograd.grad(lambda p: onp.sum(upstream * nn.mlp(p, inputs, activation)))(params)
    assert list(ours) == list(params)
    for key in params:
        assert ours[key].shape == params[key].shape
        onp.testing.assert_allclose(ours[key], reference[key], rtol=1e-12, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_finite_differences(activation):
    params, inputs, upstream = make((3, (4, 3), 2), 2)
    _, cache = nn.mlp_forward(params, inputs, activation)
    ours, _ = flatten(nn.mlp_backward(params, cache, upstream, activation))
    flat, unflatten = flatten(params)
    objective = lambda v: onp.sum(upstream * nn.mlp(unflatten(v), inputs, activation))
    eps = 1e-6
    fd = onp.array([(objective(flat + eps * e) - objective(flat - eps * e)) / (2 * eps)
                    for e in onp.eye(flat.size)])
    onp.testing.assert_allclose(ours, fd, rtol=1e-6, atol=1e-7)


def test_relu_at_a_tie_splits_the_gradient_like_autograd():
    # binary inputs and zero biases put pre-activations exactly at 0 (the all-zeros state)
    params = nn.init_mlp((2, 3, 1), 0)
    inputs = onp.array([[0.0, 0.0], [1.0, 0.0]])
    _, cache = nn.mlp_forward(params, inputs, "relu")
    assert (cache[1][0][0] == 0.0).all()
    ours = nn.mlp_backward(params, cache, onp.ones((2, 1)), "relu")
    reference = autograd.grad(lambda p: onp.sum(nn.mlp(p, inputs, "relu")))(params)
    for key in params:
        onp.testing.assert_allclose(ours[key], reference[key], rtol=1e-14, atol=0, err_msg=key)


def test_unknown_activation_is_refused():
    params, inputs, upstream = make((3, (2,), 2), 3)
    with pytest.raises(ValueError, match="activation"):
        nn.mlp_forward(params, inputs, "sigmoidish")
