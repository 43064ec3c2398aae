"""Per-datapoint variational inference for a fixed model: :func:`fit_local`.

The tool the tightness experiments use: for every datapoint, find the mean-field q(z|x_n)
with the highest ELBO, so that log p(x) - ELBO* is the gap that no better optimizer or
estimator can close, only a richer family.
"""
import numpy as onp
import scipy.optimize

from .. import exact, objectives
from .._validation import check_binary, check_rng, check_positive_int, check_finite_tree, check_logits
from ..nn import softplus, sigmoid
from ..optimizers import Adam
from ..variational import entropy
from .fit import resolve_estimator, get_method

__all__ = ["fit_local"]

#: Bound on (rows x states) entries of the log-joint table held per block of datapoints.
_TABLE_ENTRIES = 2 ** 20


def _log_joint_table(model, params, x):
    """log p(x_n, z_m) for all 2**K states: (n, 2**K), computed in bounded state chunks."""
    blocks = [onp.asarray(exact._log_joint_block(model, params, x, states))
              for _, states in exact._state_chunks(model, x.shape[0])]
    return onp.concatenate(blocks, axis=1)


def _elbo_and_grad(psi, table, states):
    """Exact ELBO per row and its gradient wrt the logits, for a fixed log-joint table.

    psi (R, n, K), table (n, M), states (M, K) -> elbo (R, n), grad (R, n, K).
    ELBO = sum_m q_m A_m + H(q); dELBO/dpsi = sum_m q_m A_m (z_m - s) - s (1 - s) psi, s = sigmoid(psi).
    """
    log_q = psi @ states.T - onp.sum(softplus(psi), axis=-1)[..., None]        # (R, n, M)
    qa = onp.exp(log_q) * table                                                   # (R, n, M)
    expected = qa.sum(axis=-1)
    s = sigmoid(psi)
    grad = qa @ states - expected[..., None] * s - s * (1.0 - s) * psi
    return expected + onp.asarray(entropy(psi)), grad


def _inits(model, params, x, init, n_restarts, rng):
    """Restart 0: ``init``, else the logits of the exact posterior marginals if K is enumerable,
    else zeros; the other restarts random."""
    n, k = x.shape[0], model.n_latent
    if init is None and model.n_latent > exact.MAX_LATENT:
        first = onp.zeros((n, k))
    elif init is None:
        marg = onp.clip(exact.posterior_marginals(model, params, x), 1e-4, 1.0 - 1e-4)
        first = onp.log(marg) - onp.log1p(-marg)
    else:
        first = onp.array(check_logits(init, (n, k), "init"), dtype=float)
        if not onp.isfinite(first).all():
            raise ValueError("init: contains +-inf; expected finite logits")
    rest = 2.0 * rng.standard_normal((n_restarts - 1, n, k))
    return onp.concatenate([first[None], rest])


def _lbfgs_block(psi0, table, states, tol, max_iter, bar):
    shape = psi0.shape

    def value_and_grad(flat):
        elbo, grad = _elbo_and_grad(flat.reshape(shape), table, states)
        return -float(elbo.sum()), -grad.ravel()

    res = scipy.optimize.minimize(
        value_and_grad, psi0.ravel(), jac=True, method="L-BFGS-B",
        callback=lambda *_: bar.update(1),
        options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-16, "maxcor": 20})
    psi = res.x.reshape(shape)
    elbo, grad = _elbo_and_grad(psi, table, states)
    return psi, elbo, grad, int(res.nit)


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
        ``None`` (default): the exact ELBO and its exact gradient by enumeration, maximized
        with L-BFGS to the tolerance ``tol`` (needs K <= ``exact.MAX_LATENT``). Otherwise a
        name or object from :mod:`vi_lab.estimators`, used with Adam for ``steps`` steps.
    n_samples : int, default 1
        Draws per step for an estimator (unused by the exact default).
    steps : int, optional
        Maximum L-BFGS iterations (default 10000) or Adam steps (default 1000).
    learning_rate : float or callable, default 0.1
        Adam step size (estimator path only).
    n_restarts : int, default 5
        Starting points per datapoint. Restart 0 starts at ``init``, or, by default, at the
        logits of the exact posterior marginals p(z_k = 1 | x); the others at logits ~ N(0, 2^2).
        The best restart is kept per datapoint (the mean-field ELBO is not concave).
    init : ndarray of shape (N, K), optional
        Logits to start restart 0 from.
    tol : float, default 1e-9
        L-BFGS stops when every component of the ELBO gradient is below ``tol`` in size.
    rng : int or numpy.random.Generator, default 0
    progress : bool, default False
        Show a tqdm progress bar.
    return_info : bool, default False
        Also return a dict with ``elbo`` (N,), exact ELBO at the returned logits (estimator
        path: exact if enumerable, else a 1000-sample estimate), ``grad_norm`` (N,), exact
        per-datapoint gradient norm (exact path only), ``restart`` (N,), index of the winning
        restart, and ``n_iter``, total optimizer iterations.

    Returns
    -------
    ndarray of shape (N, K)
        Logits psi_n of the best q found for each datapoint.

    Notes
    -----
    psi_n* = argmax_psi ELBO(psi, x_n), ELBO = sum_z q_psi(z) log p(x_n, z) + H(q_psi)
    (Jordan et al., 1999). With the model fixed, the table log p(x_n, z_m) is computed once;
    then the ELBO and its gradient, sum_m q_m log p(x_n, z_m)(z_m - sigmoid(psi)) -
    sigmoid'(psi) psi, are matrix products with no decoder evaluations. The data are cut into
    blocks of datapoints (each block an independent problem) so memory stays bounded.
    """
    x = check_binary(x, model.n_obs, "x")
    check_finite_tree(params)
    n_restarts = check_positive_int(n_restarts, "n_restarts")
    n_samples = check_positive_int(n_samples, "n_samples")
    if steps is not None:
        steps = check_positive_int(steps, "steps")
    if not tol > 0:
        raise ValueError(f"tol: expected a positive gradient tolerance, got {tol!r}")
    rng = check_rng(rng)
    from tqdm import tqdm

    if estimator is None:
        exact.check_enumerable(model.n_latent, x.shape[0], model.n_obs)
        psi0 = _inits(model, params, x, init, n_restarts, rng)
        states = exact.all_states(model.n_latent)
        block = max(1, _TABLE_ENTRIES // (n_restarts * states.shape[0]))
        psi, elbo, grad = onp.empty_like(psi0), onp.empty(psi0.shape[:2]), onp.empty_like(psi0)
        n_iter = 0
        with tqdm(desc="fit_local (L-BFGS)", unit="iter", disable=not progress, leave=False) as bar:
            for start in range(0, x.shape[0], block):
                rows = slice(start, start + block)
                table = _log_joint_table(model, params, x[rows])
                out = _lbfgs_block(psi0[:, rows], table, states, tol, steps or 10000, bar)
                psi[:, rows], elbo[:, rows], grad[:, rows] = out[:3]
                n_iter += out[3]
        best = onp.argmax(elbo, axis=0)
        cols = onp.arange(x.shape[0])
        logits = psi[best, cols]
        info = {"elbo": elbo[best, cols], "grad_norm": onp.linalg.norm(grad[best, cols], axis=-1),
                "restart": best, "n_iter": n_iter}
        return (logits, info) if return_info else logits

    est = resolve_estimator(get_method("per_datapoint"), estimator, n_samples)
    enumerable = model.n_latent <= exact.MAX_LATENT
    psi0 = _inits(model, params, x, init, n_restarts, rng)
    n, k = x.shape[0], model.n_latent
    x_all = onp.tile(x, (n_restarts, 1))
    q = {"logits": psi0.reshape(n_restarts * n, k)}
    opt = Adam(learning_rate)
    state = opt.init(q)
    for _ in tqdm(range(steps or 1000), desc="fit_local", unit="step", disable=not progress, leave=False):
        _, g_logits = est(model, params, q["logits"], x_all, n_samples, rng)
        q, state = opt.update(q, {"logits": onp.asarray(g_logits)}, state)
    psi = q["logits"].reshape(n_restarts, n, k)
    if enumerable:
        elbo = exact.elbo(model, params, q["logits"], x_all).reshape(n_restarts, n)
    else:
        elbo = onp.asarray(objectives.elbo(model, params, q["logits"], x_all, 1000, rng)).reshape(n_restarts, n)
    best = onp.argmax(elbo, axis=0)
    cols = onp.arange(n)
    logits = psi[best, cols]
    info = {"elbo": elbo[best, cols], "grad_norm": None, "restart": best, "n_iter": steps or 1000}
    return (logits, info) if return_info else logits
