"""The exact gradient by enumeration, registered as an estimator so experiments treat it as one row."""
import numpy as onp
from autograd.tracer import getval

from .. import exact as _exact
from .._tree import tree_map
from .._validation import check_bool, check_rng
from ..nn import sigmoid
from ..variational import log_prob_states
from .base import Estimator, tile_reps

#: Bound on the (states x batch x K) entries one chunk of the generic gradient holds.
_CHUNK_ENTRIES = 2 ** 20

__all__ = ["Exact"]


class Exact(Estimator):
    """The exact gradient by enumerating all 2**K latent states (zero variance).

    Notes
    -----
    Generic level: d/dpsi E_q[f] = d/dpsi sum_z q(z; psi) f(z), a finite sum over the 2**K
    states z, differentiated with autograd with f(z) held constant. ELBO level:
    :func:`vi_lab.exact.elbo_grad`.

    Unbiased (exact). Cost: 2**K decoder evaluations per datapoint whatever ``n_samples``
    is (``evals_per_sample`` is None; ``cost(model)`` returns 2**K); ``n_samples`` and ``rng``
    are validated and otherwise ignored. With ``n_reps`` the same answer is repeated R times.

    References
    ----------
    Enumeration; see :mod:`vi_lab.exact`.
    """

    name = "exact"
    unbiased = True
    evals_per_sample = None
    reference = "exact enumeration of all 2**K states (vi_lab.exact)"

    def cost(self, model):
        """2**K decoder evaluations, independent of n_samples."""
        return 2 ** model.n_latent

    def _grad(self, f, logits, n_samples, rng, n_reps):
        """sum_m q(z_m) f(z_m) (z_m - sigmoid(psi)), over chunks of states so memory stays bounded.

        d/dpsi q(z; psi) = q(z; psi) (z - sigmoid(psi)) for the mean-field Bernoulli. One chunk
        holds c states for every batch position, c * B * K <= ``_CHUNK_ENTRIES`` entries.
        """
        n_latent = logits.shape[-1]
        batch = logits.shape[:-1]
        n_batch = int(onp.prod(batch, dtype=onp.int64))
        _exact.check_enumerable(n_latent, n_batch)
        n_states = 2 ** n_latent
        psi = logits.reshape(n_batch, n_latent)                     # (B, K)
        chunk = max(1, min(n_states, _CHUNK_ENTRIES // max(1, n_batch * n_latent)))
        expand = (slice(None),) + (None,) * len(batch) + (slice(None),)
        weighted = onp.zeros((n_batch, n_latent))                  # sum_m q_m f_m z_m
        total = onp.zeros(n_batch)                                  # sum_m q_m f_m
        for start in range(0, n_states, chunk):
            states = _exact._states_range(n_latent, start, min(start + chunk, n_states))   # (c, K)
            z = onp.broadcast_to(states[expand], states.shape[:1] + batch + (n_latent,))
            values = onp.asarray(getval(f(z[None])))[0].reshape(states.shape[0], n_batch)  # (c, B)
            qf = onp.exp(log_prob_states(psi, states)) * values.T   # (B, c)
            weighted += qf @ states
            total += qf.sum(axis=1)
        g = (weighted - total[:, None] * sigmoid(psi)).reshape(logits.shape)
        return tile_reps(g, n_reps)

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """Exact gradient of sum_n ELBO_n; same signature and shapes as every estimator."""
        x, q_logits, _, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        check_rng(rng)                          # unused, but a bad rng is a bug in the caller
        params_grad = check_bool(params_grad, "params_grad")
        g_params, g_logits = _exact.elbo_grad(model, params, q_logits, x)
        if n_reps is None:
            return (g_params if params_grad else None), g_logits
        g_params = tree_map(lambda leaf: tile_reps(onp.asarray(leaf), reps), g_params) if params_grad else None
        return g_params, tile_reps(g_logits, reps)
