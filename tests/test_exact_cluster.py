"""exact.log_marginal(..., scheduler=): the state enumeration mapped over a real Dask cluster.

Checked against the one-machine path (to round-off), against a brute-force logsumexp over all
states, between clusters of different sizes (same bits), at log p(x) far below what a plain sum
of exp() can hold, and for the limits: K above one machine's MAX_LATENT only with a scheduler,
an unreachable address refused within seconds.
"""
import socket
import time

import numpy as onp
import pytest
from scipy.special import logsumexp

import vi_lab
from vi_lab import _exact_cluster, exact

distributed = pytest.importorskip("distributed")   # a dev dependency: installed by make test


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def _problem(K=11):
    model = vi_lab.BernoulliLVM(K, 16, hidden=(8,))
    params = model.init_params(0)
    x = vi_lab.data.from_model(model, model.init_params(0), 6, rng=1)
    return model, params, x


def _brute(model, params, x):
    joint = onp.stack([model.log_joint(params, x, z) for z in exact.all_states(model.n_latent)], axis=1)
    return logsumexp(joint, axis=1)


def test_cluster_equals_one_machine_and_brute_force(cluster, monkeypatch):
    model, params, x = _problem()
    monkeypatch.setattr(_exact_cluster, "_PART_STATES", 2 ** 8)          # 8 parts of 256 states
    got = exact.log_marginal(model, params, x, scheduler=cluster)
    onp.testing.assert_allclose(got, exact.log_marginal(model, params, x), rtol=1e-13)
    onp.testing.assert_allclose(got, _brute(model, params, x), rtol=1e-12)
    with distributed.Client(cluster) as client:                          # a caller's client stays open
        again = exact.log_marginal(model, params, x, scheduler=client)
        assert client.status == "running"
    onp.testing.assert_array_equal(got, again)


# a second scheduler alive beside the fixture's finds its HTTP port (8787) taken and says so
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_the_parts_not_the_workers_fix_the_bits(cluster, monkeypatch):
    model, params, x = _problem()
    monkeypatch.setattr(_exact_cluster, "_PART_STATES", 2 ** 7)
    on_two = exact.log_marginal(model, params, x, scheduler=cluster)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as one:
        on_one = exact.log_marginal(model, params, x, scheduler=one)
    onp.testing.assert_array_equal(on_two, on_one)


def test_log_px_far_below_the_smallest_double_sum(cluster, monkeypatch):
    # output logits near +1e3 and mostly-zero images: log p(x) of about -1e4 nats, where
    # sum_z exp(log p(x, z)) is 0.0 in double precision
    model, params, x = _problem(K=9)
    params["decoder"]["b1"] = onp.full(16, 1e3)
    x = onp.zeros_like(x)
    x[:, :3] = 1.0
    monkeypatch.setattr(_exact_cluster, "_PART_STATES", 2 ** 6)
    got = exact.log_marginal(model, params, x, scheduler=cluster)
    want = _brute(model, params, x)
    assert (want < -5000).all() and onp.isfinite(got).all()
    onp.testing.assert_allclose(got, want, rtol=1e-12)
    onp.testing.assert_allclose(got, exact.log_marginal(model, params, x), rtol=1e-12)


def test_combine_matches_logsumexp_for_any_split():
    rng = onp.random.default_rng(0)
    terms = rng.normal(size=(3, 40)) * 300
    want = logsumexp(terms, axis=1)
    for cuts in ([20], [1, 2, 39], list(range(1, 40))):
        pieces = onp.split(terms, cuts, axis=1)
        parts = [(p.max(axis=1), onp.exp(p - p.max(axis=1, keepdims=True)).sum(axis=1)) for p in pieces]
        onp.testing.assert_allclose(_exact_cluster.combine(parts, 3), want, rtol=1e-13)
    # a combine that forgot to rescale the running sum would be off by orders of magnitude
    wrong = sum(s for _, s in parts)
    assert not onp.allclose(onp.log(wrong) + max(m.max() for m, _ in parts), want)


def test_k_limits_one_machine_and_cluster(cluster):
    big = vi_lab.BernoulliLVM(exact.MAX_LATENT + 1, 4, hidden=(2,))
    params = big.init_params(0)
    x = onp.zeros((1, 4))
    with pytest.raises(ValueError, match=r"K <= 24 on one machine \(up to 32 with scheduler="):
        exact.log_marginal(big, params, x)
    too_big = vi_lab.BernoulliLVM(_exact_cluster.MAX_LATENT_CLUSTER + 1, 4, hidden=(2,))
    with pytest.raises(ValueError, match="K <= 32"):
        exact.log_marginal(too_big, too_big.init_params(0), x, scheduler=cluster)


def test_unreachable_scheduler_fails_fast_naming_the_address():
    with socket.socket() as s:                       # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model, params, x = _problem(K=4)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"scheduler tcp://127.0.0.1:{port}: cannot connect"):
        exact.log_marginal(model, params, x, scheduler=f"tcp://127.0.0.1:{port}")
    assert time.perf_counter() - start < 15


def test_a_long_cluster_run_announces_its_estimate_for_the_cluster(cluster, monkeypatch, capsys):
    from vi_lab import _enumeration
    model, params, x = _problem(K=8)
    monkeypatch.setattr(_enumeration, "_FLOPS_ESTIMATE", 1.0)             # every run now "takes hours"
    exact.log_marginal(model, params, x, scheduler=cluster)
    err = capsys.readouterr().err
    assert "enumerating 2**8 = 256 states for N = 6 datapoints" in err
    assert "on 2 worker thread(s) of the cluster" in err
