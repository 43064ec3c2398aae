"""Per-datapoint variational inference for a fixed model: :func:`fit_local`.

The tool the tightness experiments use: for every datapoint, find the mean-field q(z|x_n)
with the highest ELBO, so that log p(x) - ELBO* is the gap that no better optimizer or
estimator can close, only a richer family.
"""
import inspect

import numpy as onp

from .. import exact, objectives
from .._validation import check_binary, check_bool, check_rng, check_positive_int, check_params, check_logits, check_model
from ..nn import sigmoid, log_sigmoid
from ..optimizers import Adam
from ..variational import entropy, log_prob_states
from .fit import resolve_estimator, get_method

__all__ = ["fit_local"]

#: Bound on the (restarts x rows x states) entries held per block of datapoints.
_TABLE_ENTRIES = 2 ** 20
#: Largest (states x K) table kept in memory; beyond it state chunks are regenerated when used
#: (at K = 24 the full table would be 3.2 GB).
_STATES_ENTRIES = 2 ** 22


class _States:
    """The 2**K binary states in enumeration order, materialized only when small.

    ``states[a:b]`` is the (b - a, K) block of rows a..b-1, as :func:`vi_lab.exact.all_states`
    would give it; ``shape`` is (2**K, K).
    """

    def __init__(self, n_latent):
        self.shape = (2 ** n_latent, n_latent)
        self._all = exact.all_states(n_latent) if self.shape[0] * n_latent <= _STATES_ENTRIES else None

    def __getitem__(self, rows):
        if self._all is not None:
            return self._all[rows]
        if isinstance(rows, slice):
            start, stop, _ = rows.indices(self.shape[0])
            return exact._states_range(self.shape[1], start, stop)
        rows = onp.asarray(rows)                     # integer indices: bits of the index
        shifts = onp.arange(self.shape[1] - 1, -1, -1, dtype=onp.int64)
        return ((rows[..., None] >> shifts) & 1).astype(onp.float64)


def _log_joint_table(model, params, x, states):
    """log p(x_n, z_m) for all states: x (n, L), states (M, K) -> (n, M).

    The decoder runs on bounded chunks of states; log p(x|z) = sum_l [x_l log sigmoid(a_l) +
    (1 - x_l) log sigmoid(-a_l)] is two matrix products of non-positive terms per chunk, which
    cannot cancel (the folded x . a - sum_l softplus(a_l) loses everything at |a| ~ 1e10).
    """
    table = onp.empty((x.shape[0], states.shape[0]))
    width = max((model.n_obs,) + tuple(getattr(model, "hidden", ())))
    chunk = max(1, _TABLE_ENTRIES // width)
    for start in range(0, states.shape[0], chunk):
        z = states[start:start + chunk]
        a = onp.asarray(model.decoder_logits(params, z))                           # (c, L)
        table[:, start:start + z.shape[0]] = (x @ log_sigmoid(a).T + (1.0 - x) @ log_sigmoid(-a).T
                                              + onp.asarray(model.log_prior(params, z)))
    return table


#: Seconds above which fit_local prints its time estimate before starting.
_ANNOUNCE_SECONDS = 10.0


def _announce(n_restarts, n_rows, n_latent, max_sweeps):
    """Print on stderr a time estimate per CAVI sweep when one sweep is expected to be slow."""
    import sys

    n_states = 2 ** n_latent
    # per sweep: K coordinate updates, each two (R n, K) x (K, M) products, an exp and a product
    flops = n_restarts * n_rows * n_states * n_latent * (4.0 * n_latent + 6.0)
    seconds = flops / exact._FLOPS_ESTIMATE
    if seconds > _ANNOUNCE_SECONDS:
        print(f"vi_lab.inference.fit_local: 2**{n_latent} = {n_states:,} states x {n_restarts} restarts x "
              f"N = {n_rows}: about {seconds:,.0f} s per CAVI sweep (up to {max_sweeps} sweeps; "
              f"lower n_restarts or steps to bound it)", file=sys.stderr, flush=True)
    return seconds


def _chunks(n_states, n_rows):
    """State slices such that one (R, n, chunk) block holds at most ``_TABLE_ENTRIES`` entries."""
    chunk = max(1, min(n_states, _TABLE_ENTRIES // max(1, n_rows)))
    return [slice(start, min(start + chunk, n_states)) for start in range(0, n_states, chunk)]


def _elbo_and_grad(psi, table, states):
    """Exact ELBO per row and its gradient wrt the logits, for a fixed log-joint table.

    psi (R, n, K), table (n, M), states (M, K) -> elbo (R, n), grad (R, n, K).
    ELBO = sum_m q_m A_m + H(q); dELBO/dpsi = sum_m q_m A_m (z_m - s) - s (1 - s) psi, s = sigmoid(psi).
    The states are processed in chunks (memory bounded whatever K is); log q is formed per
    coordinate (:func:`vi_lab.variational.log_prob_states`), so rows mixing huge and ordinary
    logits stay exact.
    """
    expected = onp.zeros(psi.shape[:-1])
    qa_z = onp.zeros(psi.shape)
    for cols in _chunks(states.shape[0], psi.shape[0] * psi.shape[1]):
        z = states[cols]
        qa = onp.exp(log_prob_states(psi, z)) * table[:, cols]                      # (R, n, c)
        expected += qa.sum(axis=-1)
        qa_z += qa @ z
    s = sigmoid(psi)
    grad = qa_z - expected[..., None] * s - s * (1.0 - s) * psi
    return expected + onp.asarray(entropy(psi)), grad


def _cavi(psi, table, states, tol, max_sweeps, bar):
    """Coordinate-ascent VI on every row at once until every |dELBO/dpsi| < tol.

    psi (R, n, K) starting logits, table (n, M) log-joint -> psi, elbo (R, n), grad (R, n, K), sweeps.
    Each coordinate update is the exact maximizer of the ELBO in psi_k with the others fixed,
    psi_k = E_{q_{-k}}[log p(x, z_k = 1, z_{-k}) - log p(x, z_k = 0, z_{-k})], so the ELBO never
    decreases; rows (datapoints, restarts) are independent problems updated in parallel.
    """
    psi = onp.array(psi, dtype=float)
    chunks = _chunks(states.shape[0], psi.shape[0] * psi.shape[1])
    elbo, grad = _elbo_and_grad(psi, table, states)
    sweeps = 0
    while sweeps < max_sweeps and onp.abs(grad).max() >= tol:
        for k in range(states.shape[1]):
            # log q_{-k}(z_{-k}) per coordinate (no cancellation): coordinate k left out of both sums;
            # every z_{-k} appears once with z_k = 1 and once with z_k = 0
            on, off = log_sigmoid(psi), log_sigmoid(-psi)
            on[..., k] = 0.0
            off[..., k] = 0.0
            new = onp.zeros(psi.shape[:-1])
            for cols in chunks:
                z = states[cols]
                log_q_rest = on @ z.T + off @ (1.0 - z).T                            # (R, n, c)
                sign = 2.0 * z[:, k] - 1.0                                           # (c,)
                new += onp.sum(onp.exp(log_q_rest) * (table[:, cols] * sign), axis=-1)
            psi[..., k] = new
        elbo, grad = _elbo_and_grad(psi, table, states)
        sweeps += 1
        bar.update(1)
    return psi, elbo, grad, sweeps


def _inits(model, params, x, init, n_restarts, rng, table=None, states=None):
    """Starting logits (R, n, K).

    Restart 0: ``init``; else the logits of the exact posterior marginals (K enumerable) or
    zeros. Restarts 1, 2, ...: when ``table`` is given, a soft q (logits +-3) at each of the
    most probable posterior states of the datapoint, so that every major posterior mode gets
    a chance (the mean-field optimum locks onto one mode); beyond those, logits ~ N(0, 2^2).
    """
    n, k = x.shape[0], model.n_latent
    if init is not None:
        first = onp.asarray(init, dtype=float)
    elif model.n_latent > exact.MAX_LATENT:
        first = onp.zeros((n, k))
    else:
        marg = onp.clip(exact.posterior_marginals(model, params, x), 1e-4, 1.0 - 1e-4)
        first = onp.log(marg) - onp.log1p(-marg)
    out = [first[None]]
    n_modes = 0 if table is None else min(n_restarts - 1, table.shape[1])
    if n_modes:
        if table.shape[1] <= _TABLE_ENTRIES:
            top = onp.argsort(-table, axis=1, kind="stable")[:, :n_modes]          # (n, n_modes)
        else:       # 2**K large: partition first, then order the few candidates
            part = onp.argpartition(-table, n_modes - 1, axis=1)[:, :n_modes]
            order = onp.argsort(-onp.take_along_axis(table, part, axis=1), axis=1, kind="stable")
            top = onp.take_along_axis(part, order, axis=1)
        out.append(3.0 * (2.0 * states[top.T] - 1.0))
    out.append(2.0 * rng.standard_normal((n_restarts - 1 - n_modes, n, k)))
    return onp.concatenate(out)


def fit_local(model, params, x, estimator=None, n_samples=1, steps=None, learning_rate=0.1,
              n_restarts=5, init=None, tol=1e-9, rng=0, progress=False, return_info=False):
    """Best mean-field q(z|x_n) for every datapoint under a fixed model.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
        The fixed model parameters.
    x : ndarray of shape (N, L), values in {0., 1.}
    estimator : str or estimator object, optional
        ``None`` (default): exact coordinate-ascent VI (CAVI) with the expectations summed
        over all 2**K states, run until converged (needs K <= ``exact.MAX_LATENT``).
        Otherwise a name or object from :mod:`vi_lab.estimators`, used with Adam for ``steps``
        steps on the Monte Carlo gradient.
    n_samples : int, default 1
        Draws per step for an estimator (unused by the exact default).
    steps : int, optional
        Maximum CAVI sweeps (default 10000) or Adam steps (default 1000).
    learning_rate : float or callable, default 0.1
        Adam step size (estimator path only).
    n_restarts : int, default 5
        Starting points per datapoint; the best is kept per datapoint, because the
        mean-field ELBO is not concave and has one local optimum per posterior mode it can
        lock onto. Exact path: restart 0 starts at ``init`` or, by default, at the logits of
        the exact posterior marginals p(z_k = 1 | x); restarts 1.. start near the most probable
        posterior states; any further ones at random logits ~ N(0, 2^2).
    init : ndarray of shape (N, K), optional
        Logits to start restart 0 from.
    tol : float, default 1e-9
        Exact path: stop when every component of every datapoint's ELBO gradient is below
        ``tol`` in size.
    rng : int or numpy.random.Generator, default 0
    progress : bool, default False
        Show a tqdm progress bar.
    return_info : bool, default False
        Also return a dict: ``elbo`` (N,) exact ELBO at the returned logits (estimator path
        with K > MAX_LATENT: a 1000-sample estimate), ``grad_norm`` (N,) exact gradient norm per
        datapoint (exact path; None otherwise), ``restart`` (N,) index of the winning restart,
        ``n_iter`` CAVI sweeps or Adam steps run, ``converged`` (exact path) whether ``tol``
        was reached.

    Returns
    -------
    ndarray of shape (N, K)
        Logits psi_n of the best q found for each datapoint.

    Notes
    -----
    psi_n* = argmax_psi ELBO(psi, x_n), ELBO = sum_z q_psi(z) log p(x_n, z) + H(q_psi), by
    coordinate ascent (Jordan et al., 1999; Blei, Kucukelbir & McAuliffe, 2017, sec. 2.4):
    psi_k <- E_{q_{-k}}[log p(x, z_k = 1, z_{-k}) - log p(x, z_k = 0, z_{-k})]. With the model fixed,
    the table log p(x_n, z_m) is computed once per block of datapoints; the sweeps are matrix
    products over that table, for all datapoints and restarts at once, with no decoder
    evaluations.
    """
    check_model(model, "bernoulli")
    check_params(model, params)
    x = check_binary(x, model.n_obs, "x")
    progress = check_bool(progress, "progress")
    return_info = check_bool(return_info, "return_info")
    n_restarts = check_positive_int(n_restarts, "n_restarts")
    n_samples = check_positive_int(n_samples, "n_samples")
    if steps is not None:
        steps = check_positive_int(steps, "steps")
    if not tol > 0:
        raise ValueError(f"tol: expected a positive gradient tolerance, got {tol!r}")
    n, k = x.shape[0], model.n_latent
    if init is not None:
        check_logits(init, (n, k), "init")
        if not onp.isfinite(onp.asarray(init, dtype=float)).all():
            raise ValueError("init: contains +-inf; expected finite logits (e.g. +-30 for a near-deterministic q)")
    rng = check_rng(rng)
    from tqdm import tqdm

    if estimator is None:
        exact.check_enumerable(k, n, model.n_obs)
        states = _States(k)
        _announce(n_restarts, n, k, steps or 10000)
        # rows per block: the (rows, 2**K) log-joint table is the one array that cannot be chunked
        # over states; the (R, rows, states) work arrays are chunked (see _chunks)
        block = max(1, _TABLE_ENTRIES // (n_restarts * states.shape[0]))
        psi, elbo, grad = onp.empty((n_restarts, n, k)), onp.empty((n_restarts, n)), onp.empty((n_restarts, n, k))
        sweeps = 0
        with tqdm(desc="fit_local (CAVI)", unit="sweep", disable=not progress, leave=False) as bar:
            for start in range(0, n, block):
                rows = slice(start, start + block)
                table = _log_joint_table(model, params, x[rows], states)
                psi0 = _inits(model, params, x[rows], None if init is None else init[rows],
                              n_restarts, rng, table, states)
                psi[:, rows], elbo[:, rows], grad[:, rows], done = _cavi(psi0, table, states, tol,
                                                                         steps or 10000, bar)
                sweeps = max(sweeps, done)
        best = onp.argmax(elbo, axis=0)
        cols = onp.arange(n)
        grad_best = grad[best, cols]
        info = {"elbo": elbo[best, cols], "grad_norm": onp.linalg.norm(grad_best, axis=-1), "restart": best,
                "n_iter": sweeps, "converged": bool(onp.abs(grad).max() < tol)}
        return (psi[best, cols], info) if return_info else psi[best, cols]

    est = resolve_estimator(get_method("per_datapoint"), estimator, n_samples)
    enumerable = k <= exact.MAX_LATENT
    psi0 = _inits(model, params, x, init, n_restarts, rng)
    x_all = onp.tile(x, (n_restarts, 1))
    q = {"logits": psi0.reshape(n_restarts * n, k)}
    opt = Adam(learning_rate)
    state = opt.init(q)
    # the model is fixed: skip the parameter gradient when the estimator allows it
    extra = {"params_grad": False} if "params_grad" in inspect.signature(est).parameters else {}
    for _ in tqdm(range(steps or 1000), desc="fit_local", unit="step", disable=not progress, leave=False):
        _, g_logits = est(model, params, q["logits"], x_all, n_samples, rng, **extra)
        q, state = opt.update(q, {"logits": onp.asarray(g_logits)}, state)
    psi = q["logits"].reshape(n_restarts, n, k)
    if enumerable:
        elbo = exact.elbo(model, params, q["logits"], x_all).reshape(n_restarts, n)
    else:
        elbo = onp.asarray(objectives.elbo(model, params, q["logits"], x_all, 1000, rng)).reshape(n_restarts, n)
    best = onp.argmax(elbo, axis=0)
    cols = onp.arange(n)
    info = {"elbo": elbo[best, cols], "grad_norm": None, "restart": best, "n_iter": steps or 1000,
            "converged": None}
    return (psi[best, cols], info) if return_info else psi[best, cols]
