"""Exact enumeration at the edges: huge logits (mpmath references), the chunked underflow path,
threads, the hand-written backward against autograd, time estimates, memory."""
import itertools
import tracemalloc

import autograd
import mpmath
import numpy as onp
import pytest
from scipy.special import logsumexp

import vi_lab
from vi_lab import _enumeration, exact
from vi_lab._tree import flatten
from conftest import random_params

mpmath.mp.dps = 50


# ---------------------------------------------------------------------------- mpmath references
def mp_log_sigmoid(t):
    t = t if isinstance(t, mpmath.mpf) else mpmath.mpf(float(t))
    return -mpmath.log1p(mpmath.exp(-t)) if t >= 0 else t - mpmath.log1p(mpmath.exp(t))


def mp_log_joint(model, params, x_row, z):
    """log p(x, z) at 50 digits from the (float64) decoder logits: sum of log sigmoid(+-a)."""
    a = model.decoder_logits(params, z[None])[0]
    b = params["prior_logits"]
    terms = [mp_log_sigmoid(bk if zk else -bk) for zk, bk in zip(z, b)]
    terms += [mp_log_sigmoid(al if xl else -al) for xl, al in zip(x_row, a)]
    return mpmath.fsum(terms)


def mp_log_q(psi_row, z):
    return mpmath.fsum(mp_log_sigmoid(p if zk else -p) for zk, p in zip(z, psi_row))


def mp_states(k):
    return [onp.array(z, dtype=float) for z in itertools.product([0, 1], repeat=k)]


def mp_log_marginal(model, params, x_row):
    return mpmath.log(mpmath.fsum(mpmath.exp(mp_log_joint(model, params, x_row, z))
                                  for z in mp_states(model.n_latent)))


def mp_elbo(model, params, psi_row, x_row):
    """sum_z q(z) [log p(x, z) - log q(z)] at 50 digits."""
    total = mpmath.mpf(0)
    for z in mp_states(model.n_latent):
        log_q = mp_log_q(psi_row, z)
        q = mpmath.exp(log_q)
        if q != 0:
            total += q * (mp_log_joint(model, params, x_row, z) - log_q)
    return total


def huge_decoder_model(scale):
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=3, hidden=())
    params = model.init_params(0)
    params["prior_logits"] = onp.array([0.3, -0.8])
    params["decoder"]["W0"] = onp.array([[scale, -scale, 0.7], [0.4, 2.0 * scale, -1.1]])
    params["decoder"]["b0"] = onp.array([0.5 * scale, 0.2, 0.1])
    return model, params


@pytest.mark.parametrize("scale", [1e10, 1e13, 1e16])
def test_log_marginal_with_huge_decoder_logits_matches_mpmath(scale):
    model, params = huge_decoder_model(scale)
    # pixel 1 is on in every state, pixel 2 depends on z (logits 0.2 or +-2e10...), pixel 3 is
    # ordinary: the first four images have log p(x) of order -1, the last is impossible (~ -5e9)
    x = onp.array([[1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=float)
    log_px = exact.log_marginal(model, params, x)
    reference = onp.array([float(mp_log_marginal(model, params, row)) for row in x])
    assert (log_px <= 0).all()
    onp.testing.assert_allclose(log_px, reference, rtol=1e-12, atol=1e-12)
    assert -5 < reference[:4].min() and reference[:4].max() < -0.1 and reference[4] < -1e9
    onp.testing.assert_allclose(exact.posterior(model, params, x[:4]).sum(1), 1.0, rtol=1e-12)


def test_huge_logits_gradient_stays_finite_and_matches_the_moderate_formula():
    model, params = huge_decoder_model(1e12)
    x = onp.array([[1, 0, 1], [1, 1, 0]], dtype=float)
    grad = exact.log_marginal_grad(model, params, x)
    flat = flatten(grad)[0]
    assert onp.isfinite(flat).all()
    # d/db of sum_n log p(x_n) = sum_n (E_post[z] - sigmoid(b)), from the (exact) posterior marginals
    expected = (exact.posterior_marginals(model, params, x) - vi_lab.nn.sigmoid(params["prior_logits"])).sum(0)
    onp.testing.assert_allclose(grad["prior_logits"], expected, rtol=1e-12, atol=1e-14)


def mixed_q_problem():
    model = vi_lab.BernoulliLVM(n_latent=4, n_obs=5, hidden=(3,))
    params = random_params(model, 7)
    _, x = model.sample(params, 3, rng=2)
    q_logits = onp.array([[1e16, 1.0, -0.5, 2.0],
                          [-1e12, 0.3, 1e14, -1.2],
                          [0.7, -1e16, 1.5, 1e12]])
    return model, params, q_logits, x


def test_elbo_and_kl_with_rows_mixing_huge_and_ordinary_q_logits_match_mpmath():
    model, params, q_logits, x = mixed_q_problem()
    ours = exact.elbo(model, params, q_logits, x)
    reference = onp.array([float(mp_elbo(model, params, p, r)) for p, r in zip(q_logits, x)])
    onp.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    kl = exact.kl_to_posterior(model, params, q_logits, x)
    kl_ref = onp.array([float(mp_log_marginal(model, params, r) - mp_elbo(model, params, p, r))
                        for p, r in zip(q_logits, x)])
    assert (kl_ref > 0).all()
    onp.testing.assert_allclose(kl, kl_ref, rtol=1e-10, atol=1e-12)
    assert (kl >= 0).all()


def test_elbo_grad_with_mixed_q_logits_matches_mpmath_differences():
    model, params, q_logits, x = mixed_q_problem()
    g_params, g_logits = exact.elbo_grad(model, params, q_logits, x)
    h = mpmath.mpf("1e-20")
    for n in range(x.shape[0]):
        for k in range(model.n_latent):
            if abs(q_logits[n, k]) > 1e6:
                # q(z_k) is 0 or 1 to 1e-400000: the ELBO is flat in this coordinate
                assert g_logits[n, k] == 0.0
                continue
            psi = [mpmath.mpf(float(v)) for v in q_logits[n]]
            up, down = list(psi), list(psi)
            up[k] += h
            down[k] -= h
            fd = (mp_elbo(model, params, up, x[n]) - mp_elbo(model, params, down, x[n])) / (2 * h)
            onp.testing.assert_allclose(g_logits[n, k], float(fd), rtol=1e-9, atol=1e-12)
    # prior logits: the ELBO's derivative is sum_n (E_q[z] - sigmoid(b)), with E_q[z] = sigmoid(psi)
    expected = (vi_lab.nn.sigmoid(q_logits) - vi_lab.nn.sigmoid(params["prior_logits"])).sum(0)
    onp.testing.assert_allclose(g_params["prior_logits"], expected, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- chunks and the underflow path
def brute_force_log_marginal(model, params, x):
    terms = [model.log_joint(params, x, onp.array(z, dtype=float))
             for z in itertools.product([0.0, 1.0], repeat=model.n_latent)]
    return logsumexp(onp.stack(terms, axis=1), axis=1)


@pytest.mark.parametrize("best_state_last", [False, True])
def test_running_logsumexp_over_many_chunks_on_the_underflow_path(monkeypatch, best_state_last):
    # log p(x) ~ -1000: exp of every term underflows, so the max-subtracted running logsumexp
    # carries the answer; tiny chunks make it combine many chunks, and the best state sits in the
    # last chunk (the running max must be rescaled) or in the first.
    model = vi_lab.BernoulliLVM(n_latent=5, n_obs=40, hidden=())
    params = random_params(model, 12)
    params["decoder"]["b0"] = onp.full(40, 30.0)
    sign = -1.0 if best_state_last else 1.0     # the images are mostly off: negative weights favour z = 1
    params["decoder"]["W0"] = sign * onp.abs(params["decoder"]["W0"]) * 3.0   # all-ones (last) or all-zeros state best
    x = (onp.random.default_rng(0).random((4, 40)) < 0.1).astype(float)
    reference = brute_force_log_marginal(model, params, x)
    assert reference.max() < -600
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 64)      # a chunk of 1 state (L = 40): 32 chunks
    assert _enumeration._chunk_size(model, x.shape[0]) == 1
    calls = []
    original = exact._log_marginal_rows_shifted
    monkeypatch.setattr(exact, "_log_marginal_rows_shifted",
                        lambda *a: calls.append(a[2].shape[0]) or original(*a))
    for n_threads in (1, 2):
        onp.testing.assert_allclose(exact.log_marginal(model, params, x, n_threads=n_threads), reference, rtol=1e-12)
    assert calls == [4, 4]
    joint = onp.stack([model.log_joint(params, x, z) for z in exact.all_states(5)], axis=1)
    assert (joint.argmax(1) == (31 if best_state_last else 0)).all()


# ---------------------------------------------------------------------------- threads
def test_every_routine_gives_the_same_bits_for_every_thread_count(monkeypatch):
    model = vi_lab.BernoulliLVM(n_latent=7, n_obs=6, hidden=(5,))
    params = random_params(model, 4)
    _, x = model.sample(params, 9, rng=3)
    q_logits = onp.random.default_rng(5).standard_normal((9, 7))
    reference = brute_force_log_marginal(model, params, x)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 128)      # row blocks of 8 and 1, 8 and 16 chunks
    assert len(_enumeration._row_blocks(9)) == 2 and 2 ** 7 // _enumeration._chunk_size(model, 8) == 8
    routines = {
        "log_marginal": lambda t: exact.log_marginal(model, params, x, n_threads=t),
        "posterior": lambda t: exact.posterior(model, params, x, n_threads=t),
        "posterior_marginals": lambda t: exact.posterior_marginals(model, params, x, n_threads=t),
        "elbo": lambda t: exact.elbo(model, params, q_logits, x, n_threads=t),
        "kl_to_posterior": lambda t: exact.kl_to_posterior(model, params, q_logits, x, n_threads=t),
        "elbo_grad": lambda t: flatten(exact.elbo_grad(model, params, q_logits, x, n_threads=t))[0],
        "log_marginal_grad": lambda t: flatten(exact.log_marginal_grad(model, params, x, n_threads=t))[0],
    }
    for name, routine in routines.items():
        serial = routine(1)
        for t in (2, 3, None):
            onp.testing.assert_array_equal(routine(t), serial, err_msg=f"{name}, n_threads={t}")
        onp.testing.assert_array_equal(routine(2), routine(2), err_msg=name)
    onp.testing.assert_allclose(routines["log_marginal"](2), reference, rtol=1e-12)
    monkeypatch.undo()                                      # one chunk: the serial path, same numbers
    onp.testing.assert_allclose(exact.log_marginal(model, params, x), routines["log_marginal"](2), rtol=1e-13)


@pytest.mark.parametrize("huge", [False, True])
def test_log_marginal_grad_keeping_the_first_pass_matches_recomputing_it(monkeypatch, huge):
    # the kept per-state factors (the default up to _KEEP_BYTES) against recomputing the decoder in the
    # second pass (_KEEP_BYTES = 0), over several row blocks and chunks, on 1 and 2 threads; with
    # ``huge`` decoder logits some chunks take the per-coordinate form, whose factor is not kept
    model = vi_lab.BernoulliLVM(n_latent=7, n_obs=6, hidden=(5,))
    params = random_params(model, 4)
    if huge:
        # hidden unit 0 is +-1 by z_1 alone and drives a_1 to +-4e6: the states with z_1 = 1 (the
        # second half, whole chunks) are unfoldable, the others fold
        params["decoder"]["W0"][:, 0] = [50.0, 0, 0, 0, 0, 0, 0]
        params["decoder"]["b0"][0] = -25.0
        params["decoder"]["W1"][0] = [4e6, 0, 0, 0, 0, 0]
    _, x = model.sample(params, 9, rng=3)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 128)
    seen = []
    original = exact._kept_block
    monkeypatch.setattr(exact, "_kept_block", lambda *a: seen.append(1) or original(*a))
    kept = {t: flatten(exact.log_marginal_grad(model, params, x, n_threads=t))[0] for t in (1, 2)}
    assert seen                                       # the kept path ran
    monkeypatch.setattr(exact, "_KEEP_BYTES", 0)
    seen.clear()
    again = flatten(exact.log_marginal_grad(model, params, x, n_threads=1))[0]
    assert not seen
    onp.testing.assert_array_equal(kept[1], kept[2])
    onp.testing.assert_allclose(kept[1], again, rtol=1e-12, atol=1e-12 * onp.abs(again).max())
    assert onp.isfinite(kept[1]).all()


def test_log_marginal_grad_row_blocks_with_other_chunks_keep_their_own_factors(monkeypatch):
    # narrow outputs: a block of 8 rows cuts the states into chunks of 16, the last row (a block of
    # its own) into chunks of 64; a factor kept for one cut must not be used for the other
    model = vi_lab.BernoulliLVM(n_latent=9, n_obs=2, hidden=(2,))
    params = random_params(model, 5)
    _, x = model.sample(params, 9, rng=2)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 128)
    assert len(_enumeration._row_blocks(9)) == 2
    assert _enumeration._chunk_size(model, 8) != _enumeration._chunk_size(model, 1)
    kept = flatten(exact.log_marginal_grad(model, params, x))[0]
    monkeypatch.setattr(exact, "_KEEP_BYTES", 0)
    again = flatten(exact.log_marginal_grad(model, params, x))[0]
    onp.testing.assert_allclose(kept, again, rtol=1e-12, atol=1e-13)


def test_threads_really_run_and_bad_thread_counts_are_refused(monkeypatch, small_model):
    model = vi_lab.BernoulliLVM(n_latent=6, n_obs=4, hidden=(3,))
    params = random_params(model, 1)
    _, x = model.sample(params, 5, rng=0)
    monkeypatch.setattr(_enumeration, "_BLOCK_ELEMENTS", 8)
    import threading
    seen = set()
    original = exact._joint_block
    monkeypatch.setattr(exact, "_joint_block", lambda *a, **k: seen.add(threading.current_thread().name) or original(*a, **k))
    exact.log_marginal(model, params, x, n_threads=2)
    assert len(seen) == 2 and all(name.startswith("vi_lab.exact") for name in seen)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_threads"):
            exact.log_marginal(model, params, x, n_threads=bad)


# ---------------------------------------------------------------------------- hand-written backward
class _OwnDecoder(vi_lab.BernoulliLVM):
    """Same densities, but a decoder method of its own: exact must fall back to autograd."""

    def decoder_logits(self, params, z):
        return vi_lab.nn.mlp(params["decoder"], z, self.activation)


@pytest.mark.parametrize("activation", sorted(vi_lab.nn.ACTIVATIONS))
def test_hand_written_backward_equals_autograd_for_every_activation(activation):
    kwargs = dict(n_latent=4, n_obs=6, hidden=(5, 3), activation=activation)
    model, fallback = vi_lab.BernoulliLVM(**kwargs), _OwnDecoder(**kwargs)
    assert exact._hand_backward(model) and not exact._hand_backward(fallback)
    params = random_params(model, 6)
    _, x = model.sample(params, 7, rng=1)
    q_logits = onp.random.default_rng(2).standard_normal((7, 4))
    onp.testing.assert_allclose(flatten(exact.log_marginal_grad(model, params, x))[0],
                                flatten(exact.log_marginal_grad(fallback, params, x))[0], rtol=1e-12, atol=1e-14)
    ours, theirs = exact.elbo_grad(model, params, q_logits, x), exact.elbo_grad(fallback, params, q_logits, x)
    onp.testing.assert_allclose(flatten(ours)[0], flatten(theirs)[0], rtol=1e-12, atol=1e-14)
    # and the gradient of log p(x) is the gradient of an independent autograd log p(x)
    states = exact.all_states(4)

    def log_px(p):
        joint = model.log_joint(p, x[:, None, :], states[None, :, :])
        top = autograd.numpy.max(autograd.tracer.getval(joint), axis=1, keepdims=True)
        return autograd.numpy.sum(autograd.numpy.log(autograd.numpy.sum(autograd.numpy.exp(joint - top), axis=1)) + top[:, 0])

    onp.testing.assert_allclose(flatten(exact.log_marginal_grad(model, params, x))[0],
                                flatten(autograd.grad(log_px)(params))[0], rtol=1e-11, atol=1e-13)


# ---------------------------------------------------------------------------- long runs, memory
def test_long_runs_announce_a_time_estimate_and_short_ones_do_not(monkeypatch, capsys, small_model):
    model, params = small_model
    x = model.sample(params, 4, rng=0)[1]
    exact.log_marginal(model, params, x)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_enumeration, "_FLOPS_ESTIMATE", 1.0)        # pretend the machine is very slow
    exact.log_marginal_grad(model, params, x)
    err = capsys.readouterr().err
    assert "log_marginal_grad" in err and "2**3 = 8 states" in err and "estimated" in err
    seconds = _enumeration._announce("log_marginal", vi_lab.BernoulliLVM(24, 64, hidden=(100,)), 100, 1)
    monkeypatch.setattr(_enumeration, "_FLOPS_ESTIMATE", 1.5e10)
    assert seconds > 1e3


def test_memory_stays_bounded_with_threads():
    model = vi_lab.BernoulliLVM(n_latent=15, n_obs=16, hidden=(8,))
    params = random_params(model, 0)
    _, x = model.sample(params, 200, rng=0)                   # the full (N, 2**K) table: 52 MB
    tracemalloc.start()
    try:
        exact.log_marginal(model, params, x, n_threads=2)
        exact.log_marginal_grad(model, params, x, n_threads=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak
