"""The exact gradient by enumeration, registered as an estimator so experiments treat it as one row."""
import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .. import exact as _exact
from .._tree import tree_map
from ..nn import softplus
from .base import Estimator, tile_reps

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
        n_latent = logits.shape[-1]
        batch = logits.shape[:-1]
        states = _exact.all_states(n_latent)                        # (M, K)
        expand = (slice(None),) + (None,) * len(batch) + (slice(None),)
        z = onp.broadcast_to(states[expand], states.shape[:1] + batch + (n_latent,))
        values = onp.asarray(getval(f(z[None])))[0]                # (M, *batch)

        def expectation(psi):
            log_q = np.sum(z * psi - softplus(psi), axis=-1)       # (M, *batch)
            return np.sum(np.exp(log_q) * values)

        g = autograd.grad(expectation)(logits)
        return tile_reps(g, n_reps)

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """Exact gradient of sum_n ELBO_n; same signature and shapes as every estimator."""
        x, q_logits, _, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        g_params, g_logits = _exact.elbo_grad(model, params, q_logits, x)
        if n_reps is None:
            return (g_params if params_grad else None), g_logits
        g_params = tree_map(lambda leaf: tile_reps(onp.asarray(leaf), reps), g_params) if params_grad else None
        return g_params, tile_reps(g_logits, reps)
