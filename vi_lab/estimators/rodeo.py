"""RODEO: REINFORCE with control variates from a discrete Stein operator (the Gibbs kernel of q)."""
import numbers

import autograd.numpy as np
import numpy as onp

from ..nn import sigmoid
from ..optimizers import Adam
from .base import bernoulli_from_uniform, uniform_open
from .dcv import _LearnedScales, _is_real, leave_one_out_mean, values_and_input_grads

__all__ = ["RODEO", "gibbs_stein", "gibbs_stein_score"]


def _init_net(hidden, seed):
    """Glorot-uniform weights of the 2 -> hidden -> 2 control network, zero biases."""
    rng = onp.random.default_rng(seed)
    lim1, lim2 = onp.sqrt(6.0 / (2 + hidden)), onp.sqrt(6.0 / (hidden + 2))
    return {"W1": rng.uniform(-lim1, lim1, (2, hidden)), "b1": onp.zeros(hidden),
            "W2": rng.uniform(-lim2, lim2, (hidden, 2)), "b2": onp.zeros(2)}


def _net(params, lin, level):
    """H(lin, level) with two outputs; lin (..., M), level broadcastable to (...,); returns (..., M, 2)."""
    pre = lin[..., None] * params["W1"][0] + level[..., None, None] * params["W1"][1] + params["b1"]
    hidden = np.where(pre > 0, pre, 0.3 * pre)                         # leaky ReLU, slope 0.3
    return np.dot(hidden, params["W2"]) + params["b2"]


def gibbs_stein(h_x, h_nbr, flip_prob):
    """(A h)(b) = (1/K) sum_i q(flip_i b_i | b_{-i}) [h(flip_i b) - h(b)]: the Gibbs-kernel Stein operator.

    Parameters
    ----------
    h_x : ndarray of shape (...,)
        h at b.
    h_nbr : ndarray of shape (..., K)
        h at the K one-bit neighbours of b.
    flip_prob : ndarray of shape (..., K)
        q of the flipped value of each coordinate, p_i (1 - b_i) + (1 - p_i) b_i.

    Returns
    -------
    ndarray of shape (...,)

    Notes
    -----
    A is the generator of the Markov chain "pick a coordinate uniformly, resample it from q":
    q is stationary for it, so E_q[(A h)(b)] = 0 for every h (the Stein identity).
    """
    return np.mean(flip_prob * (h_nbr - h_x[..., None]), axis=-1)


def gibbs_stein_score(h_x, h_nbr, flip_prob, b, p):
    """The Gibbs-kernel Stein operator applied to the vector function y -> h(y) (y - p).

    Parameters
    ----------
    h_x : ndarray of shape (...,)
    h_nbr : ndarray of shape (..., K)
        h at b and at its K one-bit neighbours b^(i).
    flip_prob : ndarray of shape (..., K)
    b : ndarray of shape (..., K), values in {0., 1.}
    p : ndarray broadcastable to (..., K)

    Returns
    -------
    ndarray of shape (..., K)
        (1/K) sum_i q(flip_i) [h(b^(i)) (b^(i) - p) - h(b) (b - p)]; coordinate k of b^(i) - p
        is b_k - p_k except for k = i (1 - b_i - p_i), which keeps the cost O(K), not O(K^2).
    """
    score = b - p
    common = np.sum(flip_prob * h_nbr, axis=-1) - h_x * np.sum(flip_prob, axis=-1)
    return (score * common[..., None] + flip_prob * h_nbr * (1.0 - 2.0 * b)) / b.shape[-1]


class RODEO(_LearnedScales):
    """RODEO (Shi, Zhou, Hwang, Titsias & Mackey, 2022): discrete Stein control variates. Unbiased. Stateful.

    Options
    -------
    hidden : int, default 100
        Width of the control network (leaky ReLU, slope 0.3), as in the paper's code.
    learning_rate : float > 0, default 0.01
        Adam step size for the network and the scales alpha, beta (the paper's code uses 1e-3
        over 10^6 training steps; vi_lab's runs are hundreds of steps).
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.
    learn : bool, default True
        Update the control on each call; set ``est.learn = False`` to freeze it.
    seed : int, default 0
        Seed of the network's initial weights.

    Notes
    -----
    A Stein operator A for q gives functions with known mean zero, E_q[(A h)(b)] = 0, for any h:
    here the generator of the Gibbs chain that resamples one uniformly chosen coordinate from q,
    (A h)(b) = (1/K) sum_i q(1 - b_i) [h(b^(i)) - h(b)] with b^(i) the neighbour of b with bit i
    flipped (:func:`gibbs_stein`). It costs evaluations of h, not of f. For sample s the
    function h_s = H(level_s, lin_s(.)) is a small network H with two outputs (h0, h1) applied
    to a leave-one-out first-order model of f: level_s = (1/(S-1)) sum_{j != s} f(b_j) and
    lin_s(y) = (1/(S-1)) sum_{j != s} grad f(b_j)^T (y - b_j), so h_s does not depend on b_s.
    With S draws b_s ~ q, score (b_s - p),

    g = (1/S) sum_s [ (f(b_s) - (1/(S-1)) sum_{j != s} (f(b_j) + alpha (A h0_j)(b_j))) (b_s - p)
                      + beta (A [h1_s (. - p)])(b_s) ],

    the second control being A applied to the vector function y -> h1_s(y) (y - p). Unbiased
    for every value of (alpha, beta, network): each A-term has mean zero given the other
    samples. The control (alpha, beta and the network, alpha = beta = 0 at first: the first
    estimates are RLOO's) is trained online by one Adam step per call on mean_r ||g_r||^2, as
    in the paper. This is the paper's "avg" control-variate input (the network applied to the
    leave-one-out averages; the variant the reference code runs with S = 2), the leave-one-out
    mean used for every term. f must be autograd-differentiable in z at 0/1 inputs.

    Cost: 1 evaluation of f per sample and one reverse pass for grad f (the K neighbours only
    evaluate the small network); needs S >= 2.

    References
    ----------
    Shi, Zhou, Hwang, Titsias & Mackey (2022), "Gradient estimation with discrete Stein
    operators", NeurIPS.
    """

    name = "rodeo"
    reference = "Shi, Zhou, Hwang, Titsias & Mackey (2022), Gradient estimation with discrete Stein operators, NeurIPS"
    options = {"hidden": 100, "learning_rate": 0.01, "entropy": "sampled", "learn": True, "seed": 0}

    def _validate_options(self):
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, numbers.Integral) or self.hidden < 1:
            raise ValueError(f"hidden: expected a positive int width of the control network, got {self.hidden!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {self.seed!r}")
        self._check_common()
        self.reset()

    def reset(self):
        """Forget the learned control (alpha = beta = 0, fresh network)."""
        self.state = {"control": None, "adam": None, "steps": 0}

    def _control_state(self):
        st = self.state
        if st["control"] is None:
            st["control"] = {"alpha": onp.array(0.0), "beta": onp.array(0.0), "net": _init_net(self.hidden, self.seed)}
            st["adam"] = Adam(self.learning_rate).init(st["control"])
        return st["control"]

    def _grad(self, f, logits, n_samples, rng, n_reps):
        b = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        values, grads = values_and_input_grads(f, b)
        p = onp.asarray(sigmoid(logits))
        score = b - p
        level = leave_one_out_mean(values)                                   # (R, S, *batch)
        slope = leave_one_out_mean(grads)                                    # (R, S, *batch, K)
        offset = leave_one_out_mean(onp.sum(grads * b, axis=-1))
        lin_x = onp.sum(slope * b, axis=-1) - offset                         # lin_s(b_s)
        lin_nbr = lin_x[..., None] + slope * (1.0 - 2.0 * b)                 # lin_s(b_s^(i))
        lin = onp.concatenate([lin_x[..., None], lin_nbr], axis=-1)          # (..., K + 1)
        flip_prob = p * (1.0 - b) + (1.0 - p) * b

        def estimate(control):
            h = _net(control["net"], lin, level)                             # (..., K + 1, 2)
            h0_x, h0_nbr, h1_x, h1_nbr = h[..., 0, 0], h[..., 1:, 0], h[..., 0, 1], h[..., 1:, 1]
            a_h0 = gibbs_stein(h0_x, h0_nbr, flip_prob)
            cv = gibbs_stein_score(h1_x, h1_nbr, flip_prob, b, p)
            signal = values - leave_one_out_mean(values + control["alpha"] * a_h0)
            return np.mean(signal[..., None] * score + control["beta"] * cv, axis=1)

        return self._run(estimate, n_reps)
