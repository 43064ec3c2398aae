"""Mean-field Bernoulli q: closed forms against enumeration, and the two families."""
import itertools

import autograd
import numpy as onp
import pytest

from vi_lab import variational
from vi_lab.nn import sigmoid, mlp
from vi_lab.variational import MeanField, Encoder, family_from_config


def brute_force_log_q(logits, z):
    """log prod_k p_k^z_k (1 - p_k)^(1 - z_k) by an explicit loop, for one row."""
    total = 0.0
    for psi_k, z_k in zip(logits, z):
        p = 1.0 / (1.0 + onp.exp(-psi_k))
        total += onp.log(p) if z_k else onp.log(1.0 - p)
    return total


STATES = onp.array(list(itertools.product([0.0, 1.0], repeat=3)))
LOGITS = onp.array([[0.3, -1.2, 2.0], [-0.5, 0.0, 1.5]])
PRIOR = onp.array([0.4, -0.8, 0.1])


def test_log_prob_matches_brute_force_and_normalizes():
    z = onp.broadcast_to(STATES[:, None, :], (8, 2, 3))
    log_q = variational.log_prob(LOGITS, z)
    assert log_q.shape == (8, 2)
    for m, n in itertools.product(range(8), range(2)):
        assert log_q[m, n] == pytest.approx(brute_force_log_q(LOGITS[n], STATES[m]), abs=1e-12)
    onp.testing.assert_allclose(onp.exp(log_q).sum(axis=0), 1.0, atol=1e-12)


def test_entropy_kl_and_expected_log_prior_match_enumeration():
    q = onp.exp(variational.log_prob(LOGITS, STATES[:, None, :]))            # (8, 2)
    log_prior = onp.array([brute_force_log_q(PRIOR, s) for s in STATES])     # (8,)
    log_q = onp.log(q)
    onp.testing.assert_allclose(variational.entropy(LOGITS), -(q * log_q).sum(0), atol=1e-12)
    onp.testing.assert_allclose(variational.expected_log_prior(LOGITS, PRIOR), q.T @ log_prior, atol=1e-12)
    onp.testing.assert_allclose(variational.kl_to_prior(LOGITS, PRIOR),
                                (q * (log_q - log_prior[:, None])).sum(0), atol=1e-12)
    onp.testing.assert_allclose(variational.kl_to_prior(onp.tile(PRIOR, (2, 1)), PRIOR), 0.0, atol=1e-14)


def test_closed_forms_are_finite_and_right_at_extreme_logits():
    logits = onp.array([[1e4, -1e4, 0.0]])
    assert variational.entropy(logits)[0] == pytest.approx(onp.log(2.0), abs=1e-12)
    assert variational.log_prob(logits, onp.array([[1.0, 0.0, 1.0]]))[0] == pytest.approx(-onp.log(2.0))
    kl = variational.kl_to_prior(logits, onp.array([1e4, 0.0, 0.0]))
    assert onp.isfinite(kl).all() and kl[0] == pytest.approx(onp.log(2.0), abs=1e-9)


def test_sample_shape_and_frequencies_within_four_standard_errors():
    # 20000 draws per (n, k): SE of a frequency is sqrt(p (1 - p) / S) <= 0.0036
    z = variational.sample(LOGITS, 20000, rng=0)
    assert z.shape == (20000, 2, 3) and set(onp.unique(z)) <= {0.0, 1.0}
    p = sigmoid(LOGITS)
    se = onp.sqrt(p * (1 - p) / 20000)
    assert (onp.abs(z.mean(0) - p) < 4 * se).all()
    # the check can fail: frequencies of a mis-specified q (logits + 0.1) are caught
    assert (onp.abs(z.mean(0) - sigmoid(LOGITS + 0.1)) >= 4 * se).any()
    onp.testing.assert_array_equal(z, variational.sample(LOGITS, 20000, rng=0))


# ---------------------------------------------------------------------------- MeanField
def test_mean_field_table_rows_and_size_grow_with_data():
    family = MeanField(n_data=6, n_latent=3)
    q = family.init_params(0)
    assert q["logits"].shape == (6, 3)
    assert family.n_params(q) == 18 and MeanField(60, 3).n_params(MeanField(60, 3).init_params(0)) == 180
    x = onp.zeros((2, 4))
    onp.testing.assert_array_equal(family.logits(q, x, idx=[4, 1]), q["logits"][[4, 1]])
    onp.testing.assert_array_equal(family.logits(q, onp.zeros((6, 4))), q["logits"])
    assert not onp.array_equal(q["logits"], family.init_params(1)["logits"])
    assert "grows" in MeanField.__doc__


def test_mean_field_gradient_flows_only_to_batch_rows():
    family = MeanField(n_data=5, n_latent=2)
    q = family.init_params(0)
    g = autograd.grad(lambda qq: onp.sum(family.logits(qq, onp.zeros((2, 3)), [3, 0]) * onp.array([[1., 2.], [3., 4.]])))(q)
    expected = onp.zeros((5, 2))
    expected[3], expected[0] = [1.0, 2.0], [3.0, 4.0]
    onp.testing.assert_array_equal(g["logits"], expected)


@pytest.mark.parametrize("x, idx, match", [
    (onp.zeros((3, 4)), None, "x: has 3 rows"),
    (onp.zeros((2, 4)), [0, 7], "idx: indices must lie in"),
    (onp.zeros((2, 4)), [0], "idx: has 1 indices but x has 2"),
    (onp.zeros((2, 4)), [0.5, 1.0], "idx: expected a 1-D array of integer"),
])
def test_mean_field_bad_batches_raise(x, idx, match):
    family = MeanField(5, 2)
    with pytest.raises(ValueError, match=match):
        family.logits(family.init_params(0), x, idx)


def test_mean_field_rejects_a_table_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"q_params\['logits'\]: expected shape \(5, 2\)"):
        MeanField(5, 2).logits({"logits": onp.zeros((4, 2))}, onp.zeros((4, 3)))
    with pytest.raises(ValueError, match="n_data"):
        MeanField(0, 2)


# ---------------------------------------------------------------------------- Encoder
def test_encoder_is_the_mlp_and_its_size_does_not_depend_on_n():
    family = Encoder(n_obs=4, n_latent=3, hidden=(5,))
    q = family.init_params(0)
    x = onp.random.default_rng(0).integers(0, 2, (7, 4)).astype(float)
    onp.testing.assert_allclose(family.logits(q, x, idx=onp.arange(7)), mlp(q, x, "tanh"), atol=0)
    by_hand = onp.tanh(x @ q["W0"] + q["b0"]) @ q["W1"] + q["b1"]
    onp.testing.assert_allclose(family.logits(q, x), by_hand, atol=1e-12)
    assert family.n_params(q) == 4 * 5 + 5 + 5 * 3 + 3
    assert family.amortized and not MeanField(3, 3).amortized


def test_encoder_bad_inputs_raise():
    family = Encoder(4, 3, hidden=())
    q = family.init_params(0)
    with pytest.raises(ValueError, match=r"x: expected 4 columns"):
        family.logits(q, onp.zeros((2, 5)))
    with pytest.raises(ValueError, match="x: expected binary values"):
        family.logits(q, onp.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="q_params: expected encoder weights"):
        family.logits(Encoder(5, 3).init_params(0), onp.zeros((2, 4)))
    with pytest.raises(ValueError, match="activation"):
        Encoder(4, 3, activation="sigmoid")


def test_family_config_round_trip():
    for family in (MeanField(7, 2), Encoder(4, 3, hidden=(5, 6), activation="relu")):
        rebuilt = family_from_config(family.config())
        assert type(rebuilt) is type(family) and rebuilt.config() == family.config()
    with pytest.raises(ValueError, match="config: unknown family class"):
        family_from_config({"class": "Flow"})
