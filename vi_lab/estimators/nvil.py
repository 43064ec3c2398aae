"""NVIL: the score function with a learned, input-dependent baseline and variance normalization."""
import numbers

import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .._validation import check_bool, check_rng
from ..optimizers import Adam
from ..nn import init_mlp, mlp
from .base import Estimator, bernoulli_from_uniform, score_grad, uniform_open, _grad_neg_kl

__all__ = ["NVIL"]

_ENTROPY = ("sampled", "analytic")


def _baseline_loss(net, x, target):
    """Mean squared error of the baseline network C(x) (N,) against target (R, S, N)."""
    return np.mean((target - mlp(net, x)[:, 0]) ** 2)


_grad_baseline_loss = autograd.grad(_baseline_loss)


class NVIL(Estimator):
    """NVIL (Mnih & Gregor, 2014): REINFORCE with a learned input-dependent baseline. Stateful.

    Options
    -------
    hidden : int, default 32
        Width of the baseline network's hidden layer (tanh), C(x) = MLP(x) -> scalar.
    learning_rate : float > 0, default 0.01
        Adam step size for the baseline network.
    alpha : float in [0, 1), default 0.8
        Decay of the running mean c and variance v of the centred signal.
    normalize : bool, default True
        Divide the centred signal by max(1, sqrt(v)) (variance normalization).
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.
    learn : bool, default True
        Update the state on each call; set ``est.learn = False`` to freeze it (e.g. to measure
        the variance of a trained baseline).
    seed : int, default 0
        Seed of the baseline network's initial weights.

    Notes
    -----
    With learning signal l(x, z) = log p(x, z) - log q(z|x), running mean c and baseline
    network C(x),

    g_psi = (1/S) sum_s (l(x, z_s) - c - C(x)) / max(1, sqrt(v)) d/dpsi log q(z_s).

    The baseline c + C(x) does not depend on the current samples (it is the state before this
    call), so without normalization the estimate is unbiased. Normalization rescales the q
    gradient by the positive factor 1/max(1, sqrt(v)): the direction is unbiased, the length
    is not, so ``unbiased`` is False unless ``normalize=False``. After computing the estimate
    the call updates c <- alpha c + (1 - alpha) mean(l - C(x)),
    v <- alpha v + (1 - alpha) var(l - C(x)), and takes one Adam step on the network to
    reduce mean (l - c - C(x))^2. All ``n_reps`` replicates use the same state; the state is
    updated once per call from all of their samples. The model gradient is the pathwise
    (1/S) sum_s grad_theta log p(x, z_s).

    Generic level: there is no x, so the baseline is the running mean c of f alone, one per
    batch position, with the same normalization.

    Cost: 1 decoder evaluation per sample (the baseline network is cheap: input L, one hidden
    layer).

    References
    ----------
    Mnih & Gregor (2014), "Neural variational inference and learning in belief networks", ICML.
    """

    name = "nvil"
    stateful = True
    reference = "Mnih & Gregor (2014), Neural variational inference and learning in belief networks, ICML"
    options = {"hidden": 32, "learning_rate": 0.01, "alpha": 0.8, "normalize": True,
               "entropy": "sampled", "learn": True, "seed": 0}

    def _validate_options(self):
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, numbers.Integral) or self.hidden < 1:
            raise ValueError(f"hidden: expected a positive int width of the baseline network, got {self.hidden!r}")
        if not _is_real(self.learning_rate) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive step size (e.g. 0.01), got {self.learning_rate!r}")
        if not _is_real(self.alpha) or not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha: expected a decay in [0, 1) (e.g. alpha=0.8), got {self.alpha!r}")
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")
        for key in ("normalize", "learn"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key}: expected True or False, got {getattr(self, key)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {self.seed!r}")
        self.unbiased = not self.normalize
        self.reset()

    def reset(self):
        """Forget the learned state (baseline network, running mean and variance)."""
        self.state = {"net": None, "adam": None, "mean": 0.0, "var": 0.0, "steps": 0,
                      "generic_mean": None, "generic_var": None}

    def _scale(self, var):
        return onp.maximum(1.0, onp.sqrt(var)) if self.normalize else 1.0

    # ------------------------------------------------------------------ generic level
    def _grad(self, f, logits, n_samples, rng, n_reps):
        z = bernoulli_from_uniform(logits, uniform_open(rng, (n_reps, n_samples) + logits.shape))
        values = onp.asarray(getval(f(z)))                                  # (R, S, *batch)
        batch = logits.shape[:-1]
        st = self.state
        if st["generic_mean"] is None or onp.shape(st["generic_mean"]) != batch:
            st["generic_mean"], st["generic_var"] = onp.zeros(batch), onp.zeros(batch)
        g = score_grad((values - st["generic_mean"]) / self._scale(st["generic_var"]), z, logits)
        if self.learn:
            a = self.alpha
            st["generic_mean"] = a * st["generic_mean"] + (1 - a) * values.mean(axis=(0, 1))
            st["generic_var"] = a * st["generic_var"] + (1 - a) * values.var(axis=(0, 1))
        return g

    # ------------------------------------------------------------------ ELBO level
    def _net(self, n_obs):
        st = self.state
        if st["net"] is None:
            st["net"] = init_mlp((n_obs, self.hidden, 1), self.seed, scale=0.1)
            st["adam"] = Adam(self.learning_rate).init(st["net"])
        elif st["net"]["W0"].shape[0] != n_obs:
            raise ValueError(f"x: this NVIL baseline was trained on L = {st['net']['W0'].shape[0]} observed "
                             f"variables, got L = {n_obs}; call est.reset() or use a new estimator")
        return st["net"]

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """NVIL estimate of the gradient of sum_n ELBO_n; updates the state if ``self.learn``.

        Same parameters and returns as :meth:`vi_lab.estimators.base.Estimator.__call__`.
        """
        params_grad = check_bool(params_grad, "params_grad")
        x, q_logits, n_samples, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        rng = check_rng(rng)
        analytic = self.entropy == "analytic"
        net = self._net(model.n_obs)
        z = bernoulli_from_uniform(q_logits, uniform_open(rng, (reps, n_samples) + q_logits.shape))
        if analytic:
            signal = onp.asarray(model.log_likelihood(params, x, z))
        else:
            log_q = onp.sum(z * q_logits - onp.logaddexp(0.0, q_logits), axis=-1)
            signal = onp.asarray(model.log_joint(params, x, z)) - log_q            # (R, S, N)
        net_out = onp.asarray(mlp(net, x))[:, 0]                                  # (N,)
        st = self.state
        centred = (signal - st["mean"] - net_out) / self._scale(st["var"])
        g_logits = score_grad(centred, z, q_logits)
        kl_params = None
        if analytic:
            kl_params, kl_logits = _grad_neg_kl(params, q_logits)
            g_logits = g_logits + kl_logits
        g_params = None
        if params_grad:
            g_params = self._params_grad_from_samples(model, params, x, [z], reps, analytic, kl_params)
        if self.learn:
            self._update(x, signal, net_out)
        return self._finish(g_params, g_logits, n_reps)

    def _update(self, x, signal, net_out):
        st, a = self.state, self.alpha
        residual = signal - net_out
        st["mean"] = a * st["mean"] + (1 - a) * float(residual.mean())
        st["var"] = a * st["var"] + (1 - a) * float(residual.var())
        grad = _grad_baseline_loss(st["net"], x, signal - st["mean"])
        st["steps"] += 1
        # descend: the baseline/control minimizes its loss
        st["net"], st["adam"] = Adam(self.learning_rate, maximize=False).update(st["net"], grad, st["adam"])


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and onp.isfinite(value)
