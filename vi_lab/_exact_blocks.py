"""Per-block kernels of :mod:`vi_lab.exact`: log p(x, z), q(z|x) and their gradients on one (rows, states) block.

Each kernel works on N datapoints against one chunk of M states (from :mod:`vi_lab._enumeration`)
and writes its (N, M) temporaries into the calling thread's :class:`vi_lab.nn.Workspace`.

Private: the public routines are in :mod:`vi_lab.exact`.
"""
from functools import cached_property

import autograd
import autograd.numpy as np
import numpy as onp

from ._tree import tree_zeros_like
from .model import BernoulliLVM, DecoderModel
from .nn import log_sigmoid, mlp_backward, mlp_forward, sigmoid, sigmoid_into, softplus, softplus_row_sums

#: The folded likelihood x . a - sum_l softplus(a_l) loses about eps * sum_l softplus(a_l) nats to
#: cancellation; a chunk where that sum exceeds this (error bound ~1e-10 nats) takes the
#: per-coordinate form sum_l log sigmoid(+-a_l) instead (twice the matmul, nothing cancels).
_FOLD_MAX_ABS = 1e6


# ---------------------------------------------------------------------------- log p(x, z), q(z|x)
class _Rows:
    """The datapoints of one row block, in the two layouts the block matmul uses."""

    def __init__(self, x, shift=None):
        self.x = x
        # x with a column of ones: the per-state constant rides along in the matmul
        self.aug = onp.hstack([x, onp.ones((x.shape[0], 1))])
        # and optionally a column -shift_n (e.g. -log p(x_n)), so the block comes out shifted
        self.shift = None if shift is None else -onp.asarray(shift, dtype=float)[:, None]

    @cached_property
    def split(self):
        # [x, 1 - x, 1] for the per-coordinate (non-cancelling) form; computed only if needed
        return self._with_shift(onp.hstack([self.x, 1.0 - self.x, onp.ones((self.x.shape[0], 1))]))

    @cached_property
    def folded(self):
        return self._with_shift(self.aug)

    def _with_shift(self, columns):
        return columns if self.shift is None else onp.hstack([columns, self.shift])


def _joint_block(model, params, rows, states, a, ws, include_prior=True, keep=False):
    """log p(x_n, z_m) (or log p(x_n|z_m)) for a block of states from their decoder logits.

    Parameters
    ----------
    rows : _Rows of N datapoints
    states : ndarray of shape (M, K)
    a : ndarray of shape (M, L), the decoder logits a(z_m)
    ws : Workspace
    keep : bool
        Build the per-state factor in a fresh array rather than in ``ws`` and return it too, so
        that a second pass over the same states can skip the decoder (see :func:`_kept_block`).

    Returns
    -------
    ndarray of shape (N, M), in ``ws`` (valid until the next block of this thread); with ``keep``
    also the (M, L + 1 + shift column) factor, or None where the per-coordinate form was used.

    Notes
    -----
    log p(x|z) = x . a(z) - sum_l softplus(a_l(z)), so the N x M x L work is one matmul, with the
    per-state constant log p(z) - sum_l softplus(a_l(z)) folded in as an extra column. That form
    cancels when |a| is huge (x . a and sum softplus(a) both ~1e10, the answer ~1), so a chunk
    with sum_l softplus(a_l) > _FOLD_MAX_ABS (a bound on what can cancel) uses sum_l [x_l log sigmoid(a_l) + (1 - x_l) log sigmoid(-a_l)]:
    every term <= 0, nothing cancels, at twice the matmul.
    """
    n_states, n_obs = a.shape
    extra = 0 if rows.shift is None else 1               # a column of ones against -shift_n
    row_sums = softplus_row_sums(a, out=ws.array("abs", a.shape), scratch=ws.array("abs2", a.shape))
    # Cancellation needs a huge positive a_l (x_l a_l ~ softplus(a_l), both huge), so
    # sum_l softplus(a_l) >= sum_l max(a_l, 0) bounds it; a huge negative a_l with x_l = 1 makes
    # log p(x, z) itself huge and negative, so its rounding is relative and harmless.
    folded = row_sums.max() <= _FOLD_MAX_ABS
    if folded:
        shape = (n_states, n_obs + 1 + extra)
        a_aug = onp.empty(shape) if keep else ws.array("a_aug", shape)
        a_aug[:, :n_obs] = a
        a_aug[:, n_obs] = onp.negative(row_sums, out=row_sums)
        x_in = rows.folded
    else:
        a_aug = ws.array("a_aug_split", (n_states, 2 * n_obs + 1 + extra))
        a_aug[:, :n_obs] = log_sigmoid(a)
        a_aug[:, n_obs:2 * n_obs] = log_sigmoid(-a)
        a_aug[:, 2 * n_obs] = 0.0
        x_in = rows.split
    if extra:
        a_aug[:, -1] = 1.0
    if include_prior:
        a_aug[:, -1 - extra] += model.log_prior(params, states)
    block = onp.matmul(x_in, a_aug.T, out=ws.array("block", (x_in.shape[0], n_states)))
    if not keep:
        return block
    return block, (a_aug if folded else None)


def _kept_block(rows, a_aug, ws):
    """The block of :func:`_joint_block` from a factor it kept: one matmul, no decoder, no softplus.

    ``a_aug`` (M, L + 2) holds [a(z_m), log p(z_m) - sum_l softplus(a_ml), 1]; ``rows`` must carry
    its shift column (``_Rows(x, shift=...)``) so the layouts match.
    """
    return onp.matmul(rows.folded, a_aug.T, out=ws.array("block", (rows.x.shape[0], a_aug.shape[0])))


def _q_block(q_split, states, ws):
    """q(z_m|x_n) (N, M) from log q = sum_k [z_mk log sigmoid(psi_nk) + (1 - z_mk) log sigmoid(-psi_nk)].

    ``q_split`` is [log sigmoid(psi), log sigmoid(-psi)] (N, 2K). Every term is <= 0, so a row
    mixing psi ~ 1e16 with psi ~ 1 keeps its small coordinates (psi . z - sum softplus(psi) does not).
    """
    log_q = onp.matmul(q_split, onp.hstack([states, 1.0 - states]).T,
                       out=ws.array("q", (q_split.shape[0], states.shape[0])))
    return onp.exp(log_q, out=log_q)


def _q_split(q_logits):
    return onp.hstack([log_sigmoid(q_logits), log_sigmoid(-q_logits)])


def _hand_backward(model):
    """Whether the decoder is the stock MLP, so its hand-written backward (nn.mlp_backward) applies."""
    cls = type(model)
    return (cls.decoder_logits is DecoderModel.decoder_logits and cls.log_prior is BernoulliLVM.log_prior
            and cls.log_likelihood is DecoderModel.log_likelihood)


def _decoder_pass(model, params, states, hand, ws):
    """Decoder logits of ``states`` (M, L) and the cache for the hand-written backward (or None)."""
    if hand:
        return mlp_forward(params["decoder"], states, model.activation, ws)
    return model.decoder_logits(params, states), None


def _logits(model, params, states, ws):
    return _decoder_pass(model, params, states, _hand_backward(model), ws)[0]


# ---------------------------------------------------------------------------- gradients
def _state_weighted_objective(params, model, states, state_weight, weighted_x, prior_weight):
    """sum_m [prior_weight_m log p(z_m) + weighted_x_m . a(z_m) - state_weight_m sum_l softplus(a_ml)].

    With state_weight_m = sum_n w_nm and weighted_x_m = sum_n w_nm x_n this equals
    sum_nm w_nm log p(x_n, z_m) (prior_weight = state_weight) or sum_nm w_nm log p(x_n|z_m)
    (prior_weight = 0), but autograd only traces (M, L) arrays, never the (N, M) block.
    """
    a = model.decoder_logits(params, states)
    value = np.sum(weighted_x * a) - np.sum(state_weight * np.sum(softplus(a), axis=-1))
    return value + np.sum(prior_weight * model.log_prior(params, states))


_grad_state_weighted = autograd.grad(_state_weighted_objective)


def _state_weighted_grad(model, params, states, weights, rows, a, cache, ws, with_prior):
    """Gradient of sum_nm w_nm log p(x_n, z_m) (or of log p(x_n|z_m)) with the weights held fixed.

    Parameters
    ----------
    weights : ndarray of shape (N, M)
    a, cache : the decoder logits of ``states`` and the :func:`nn.mlp_forward` cache (None: autograd)
    ws : Workspace

    Notes
    -----
    Everything is summed over the datapoints first: with s_m = sum_n w_nm and
    X_m = sum_n w_nm x_n (one matmul, w^T [x, 1]), d/da(z_m) = X_m - s_m sigmoid(a(z_m)) and
    d/db = sum_m s_m (z_m - sigmoid(b)); the decoder's backward then runs over (M, L) only.
    """
    n_states, n_obs = states.shape[0], rows.x.shape[1]
    wx = onp.matmul(weights.T, rows.aug, out=ws.array("wx", (n_states, n_obs + 1)))   # [X_m, s_m]
    state_weight = wx[:, -1]
    if cache is None:                                           # a model with its own densities
        prior_weight = state_weight if with_prior else 0.0
        return _grad_state_weighted(params, model, states, state_weight, wx[:, :-1].copy(), prior_weight)
    sig = sigmoid_into(a, out=ws.array("sigmoid", a.shape))
    sig *= state_weight[:, None]
    grad_a = wx[:, :-1]
    grad_a -= sig
    g_prior = (state_weight @ states - state_weight.sum() * sigmoid(params["prior_logits"])
               if with_prior else onp.zeros_like(params["prior_logits"], dtype=float))
    return {"prior_logits": g_prior,
            "decoder": mlp_backward(params["decoder"], cache, grad_a, model.activation, ws)}


def _neg_kl_prior_grad(params, q_logits):
    """Gradient of -sum_n KL(q_n || p(z)) in closed form: d/dpsi = -q (1 - q) (psi - b), d/db = sum_n (q - sigmoid(b))."""
    b = onp.asarray(params["prior_logits"], dtype=float)
    q = sigmoid(q_logits)
    g_logits = -(q * sigmoid(-q_logits)) * (q_logits - b)
    g_prior = q.sum(axis=0) - q_logits.shape[0] * sigmoid(b)
    grad = tree_zeros_like(params)
    grad["prior_logits"] = g_prior
    return grad, g_logits
