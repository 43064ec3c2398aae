"""vi_lab._special: scipy's expit and logsumexp with hand-written vector-Jacobian products.

Checked against autograd's own wrappers (an independent implementation) and central finite
differences, over every axis form the package uses, and at the edges (+-inf, huge logits).
"""
import autograd.numpy as anp
import autograd.scipy.special as aspecial
import numpy as onp
import pytest
import scipy.special
from autograd import grad

from vi_lab._special import expit, logsumexp

AXES = [(None, False), (0, False), (1, False), (-1, True), (1, True), ((0, 2), False), ((0, 2), True)]


def _fd(f, a, eps=1e-6):
    out = onp.zeros_like(a)
    for i in onp.ndindex(a.shape):
        e = onp.zeros_like(a)
        e[i] = eps
        out[i] = (f(a + e) - f(a - e)) / (2 * eps)
    return out


@pytest.mark.parametrize("axis,keepdims", AXES)
def test_logsumexp_value_and_gradient(axis, keepdims):
    rng = onp.random.default_rng(0)
    a = rng.normal(size=(3, 4, 5)) * 3
    weights = rng.normal(size=scipy.special.logsumexp(a, axis=axis, keepdims=keepdims).shape)

    def ours(v):
        return anp.sum(weights * logsumexp(v, axis=axis, keepdims=keepdims))

    def theirs(v):
        return anp.sum(weights * aspecial.logsumexp(v, axis=axis, keepdims=keepdims))

    onp.testing.assert_allclose(logsumexp(a, axis=axis, keepdims=keepdims),
                                scipy.special.logsumexp(a, axis=axis, keepdims=keepdims), rtol=0, atol=0)
    onp.testing.assert_allclose(grad(ours)(a), grad(theirs)(a), rtol=1e-13, atol=1e-15)
    onp.testing.assert_allclose(grad(ours)(a), _fd(ours, a), rtol=1e-6, atol=1e-8)


def test_logsumexp_gradient_is_softmax_and_finite_at_extremes():
    a = onp.array([[1e300, 0.0, -onp.inf], [-1e4, -1e4, 3.0]])
    g = grad(lambda v: anp.sum(logsumexp(v, axis=1)))(a)
    assert onp.all(onp.isfinite(g))
    onp.testing.assert_allclose(g, scipy.special.softmax(onp.where(onp.isinf(a), -onp.inf, a - a.max(1, keepdims=True)),
                                                         axis=1), atol=1e-15)
    onp.testing.assert_allclose(g.sum(axis=1), 1.0, rtol=1e-15)


def test_logsumexp_gradient_catches_a_missing_axis_restore():
    # a wrong vjp (the answer not broadcast back along the summed axis) would give another matrix
    rng = onp.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    g = grad(lambda v: anp.sum(logsumexp(v, axis=0)))(a)
    wrong = onp.exp(a - scipy.special.logsumexp(a, axis=0)[:, None])
    assert not onp.allclose(g, wrong, atol=1e-3)
    onp.testing.assert_allclose(g, onp.exp(a - scipy.special.logsumexp(a, axis=0)[None, :]), rtol=1e-14)


def test_expit_value_and_gradient():
    a = onp.array([-800.0, -40.0, -1.0, 0.0, 2.5, 40.0, 800.0])
    onp.testing.assert_array_equal(expit(a), scipy.special.expit(a))
    g = grad(lambda v: anp.sum(expit(v)))(a)
    onp.testing.assert_allclose(g, grad(lambda v: anp.sum(aspecial.expit(v)))(a), rtol=1e-15)
    onp.testing.assert_allclose(g[2:-2], _fd(lambda v: onp.sum(scipy.special.expit(v)), a[2:-2]), rtol=1e-6)
    onp.testing.assert_allclose(g[1], onp.exp(-40.0), rtol=1e-12)          # the tail stays relative-accurate
    assert onp.all(onp.isfinite(g)) and g[0] == 0.0 and g[-1] == 0.0


def test_importing_vi_lab_does_not_import_autograd_scipy():
    import subprocess
    import sys

    code = ("import sys, vi_lab.study.cells, vi_lab.objectives, vi_lab.quadrature, vi_lab.inference, "
            "vi_lab.estimators; print(sorted(m for m in ('autograd.scipy', 'scipy.stats', 'scipy.integrate') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
