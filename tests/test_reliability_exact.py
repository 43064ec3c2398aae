"""Exact enumeration on its hard paths, against independent references.

- The running logsumexp over many chunks on the underflow path (log p(x) ~ -1000): one state
  per chunk, so the running maximum moves and the old sum must be rescaled each time.
- Decoder logits of 1e10 and more: the folded matmul x . a - sum softplus(a) cancels there;
  the answer must still match mpmath (and never exceed 0).
"""
import itertools

import mpmath
import numpy as onp
import pytest
from scipy.special import logsumexp

import vi_lab
from vi_lab import _enumeration, exact

mpmath.mp.dps = 50


def _linear_model(W, b, prior):
    model = vi_lab.BernoulliLVM(n_latent=len(prior), n_obs=len(b), hidden=())
    return model, {"prior_logits": onp.array(prior, float),
                   "decoder": {"W0": onp.array(W, float), "b0": onp.array(b, float)}}


def _mp_log_marginal(params, x):
    W, b, prior = params["decoder"]["W0"], params["decoder"]["b0"], params["prior_logits"]
    K, L = W.shape

    def log_sig(a):
        return -mpmath.log1p(mpmath.exp(-a)) if a > 0 else a - mpmath.log1p(mpmath.exp(a))

    terms = []
    for z in itertools.product([0, 1], repeat=K):
        total = sum(log_sig(mpmath.mpf(prior[k])) if z[k] else log_sig(-mpmath.mpf(prior[k])) for k in range(K))
        for l in range(L):
            a = mpmath.mpf(b[l]) + sum(mpmath.mpf(W[k, l]) * z[k] for k in range(K))
            total += log_sig(a) if x[l] else log_sig(-a)
        terms.append(total)
    top = max(terms)
    return top + mpmath.log(sum(mpmath.exp(t - top) for t in terms))


def test_underflow_path_with_one_state_per_chunk_matches_brute_force(monkeypatch):
    rng = onp.random.default_rng(0)
    K, L = 4, 20
    model, params = _linear_model(10.0 * rng.standard_normal((K, L)), onp.full(L, -60.0), rng.normal(size=K))
    x = onp.ones((3, L))
    x[1, :5] = 0.0
    x[2, ::3] = 0.0
    states = onp.array(list(itertools.product([0.0, 1.0], repeat=K)))
    reference = logsumexp(onp.asarray(model.log_joint(params, x[:, None, :], states[None])), axis=1)
    assert (reference < -600).all()                       # every row underflows exp()
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 1)    # one state per chunk: 16 chunks
    monkeypatch.setattr(_enumeration, "_MIN_CHUNK_STATES", 1, raising=False)
    got = exact.log_marginal(model, params, x)
    onp.testing.assert_allclose(got, reference, rtol=1e-13)
    for n in range(3):
        assert got[n] == pytest.approx(float(_mp_log_marginal(params, x[n])), rel=1e-13)


@pytest.mark.parametrize("scale", [1e10, 1e14])
def test_huge_decoder_logits_match_mpmath(scale):
    # pixel 0 is certainly on (a = +scale), pixel 1 off (a = -scale); the others are ordinary
    W = [[0.0, 0.0, 1.0, -0.5], [0.0, 0.0, -0.7, 0.9]]
    model, params = _linear_model(W, [scale, -scale, 0.3, -0.2], [0.2, -0.4])
    x = onp.array([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]])
    got = exact.log_marginal(model, params, x)
    assert (got < 0).all()
    for n in range(2):
        assert got[n] == pytest.approx(float(_mp_log_marginal(params, x[n])), rel=1e-12, abs=1e-12)
