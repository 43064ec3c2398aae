"""RELAX: REBAR's control variate made learnable and trained online to minimize the variance."""
import numbers

import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import Box, getval

from ..optimizers import Adam
from ..nn import init_mlp, mlp, sigmoid
from .base import Estimator, logistic_noise, tile_reps, uniform_open
from .rebar import conditional_logistic

__all__ = ["RELAX"]

_ENTROPY = ("sampled", "analytic")


def _strip_top(value):
    """Remove the innermost trace only (the psi derivative), keeping an outer one (the control's)."""
    return value._value if isinstance(value, Box) else value


class RELAX(Estimator):
    """RELAX (Grathwohl et al., 2018): a learned control variate trained to reduce variance. Unbiased. Stateful.

    Options
    -------
    tau : float > 0, default 0.5
        Initial temperature of the relaxation (learned afterwards, as log tau).
    eta : float, default 1.0
        Initial scale of the relaxed-f part of the control (learned afterwards).
    hidden : int, default 16
        Width of the hidden layer (tanh) of the surrogate network r_rho.
    learning_rate : float > 0, default 0.01
        Adam step size for the control's parameters (log tau, eta, rho).
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.
    learn : bool, default True
        Update the control on each call; set ``est.learn = False`` to freeze it.
    seed : int, default 0
        Seed of the surrogate network's initial weights.

    Notes
    -----
    With z = psi + L (L logistic), b = 1[z > 0], z~ ~ p(z | b) as in REBAR, and the control
    c(z) = eta f(sigmoid(z / tau)) + r_rho(sigmoid(z / tau)) (r_rho a one-hidden-layer network of
    the relaxed latents, summed over nothing: one output per batch position),

    g = [f(b) - c(z~)] d/dpsi log q(b) + d/dpsi c(z) - d/dpsi c(z~),

    the bracket held constant in psi. It is unbiased for every value of the control's
    parameters (log tau, eta, rho), so they can be trained on the estimator's own output: after
    each estimate, one Adam step on d/d(control) mean_r ||g_r||^2, whose expectation is the
    gradient of the variance (the mean does not depend on the control). That derivative goes
    through the psi-gradient, so f must be twice differentiable (autograd reverse over reverse).
    All ``n_reps`` replicates use the same control; it is updated once per call.

    Cost: 3 evaluations of f per draw (f(b), f(sigmoid(z/tau)), f(sigmoid(z~/tau))), plus a
    second-order reverse pass when learning.

    References
    ----------
    Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), "Backpropagation through the void:
    optimizing control variates for black-box gradient estimation", ICLR.
    """

    name = "relax"
    stateful = True
    evals_per_sample = 3
    reference = "Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), Backpropagation through the void, ICLR"
    options = {"tau": 0.5, "eta": 1.0, "hidden": 16, "learning_rate": 0.01, "entropy": "sampled",
               "learn": True, "seed": 0}

    def _validate_options(self):
        self.tau = self._check_tau(self.tau)
        if not _is_real(self.eta):
            raise ValueError(f"eta: expected a finite control-variate scale (e.g. eta=1.0), got {self.eta!r}")
        self.eta = float(self.eta)
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, numbers.Integral) or self.hidden < 1:
            raise ValueError(f"hidden: expected a positive int width of the surrogate network, got {self.hidden!r}")
        if not _is_real(self.learning_rate) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive step size (e.g. 0.01), got {self.learning_rate!r}")
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")
        if not isinstance(self.learn, bool):
            raise ValueError(f"learn: expected True or False, got {self.learn!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {self.seed!r}")
        self.reset()

    def reset(self):
        """Forget the learned control (back to the initial tau, eta and network)."""
        self.state = {"control": None, "adam": None, "steps": 0}

    def _control(self, n_latent):
        st = self.state
        if st["control"] is None:
            st["control"] = {"log_tau": onp.log(self.tau), "eta": self.eta,
                             "net": init_mlp((n_latent, self.hidden, 1), self.seed, scale=0.1)}
            st["adam"] = Adam(self.learning_rate).init(st["control"])
        elif st["control"]["net"]["W0"].shape[0] != n_latent:
            raise ValueError(f"logits: this RELAX control was trained on K = {st['control']['net']['W0'].shape[0]} "
                             f"latents, got K = {n_latent}; call est.reset() or use a new estimator")
        return st["control"]

    def _grad(self, f, logits, n_samples, rng, n_reps):
        shape = (n_reps, n_samples) + logits.shape
        noise = logistic_noise(uniform_open(rng, shape))
        v = uniform_open(rng, shape)
        b = (logits + noise > 0).astype(onp.float64)
        f_hard = onp.asarray(getval(f(b)))                               # (R, S, *batch)
        score = b - onp.asarray(sigmoid(logits))
        tiled = tile_reps(logits, n_reps)
        control = self._control(logits.shape[-1])

        def estimate(control):
            stash = {}

            def relaxed_terms(tiled_psi):
                psi = tiled_psi[:, None]
                pre = np.concatenate([psi + noise, conditional_logistic(psi, b, v)], axis=1)
                soft = sigmoid(pre / np.exp(control["log_tau"]))
                c = control["eta"] * f(soft, hard=False) + mlp(control["net"], soft)[..., 0]
                stash["c_cond"] = _strip_top(c)[:, n_samples:]
                return np.sum(c[:, :n_samples] - c[:, n_samples:]) / n_samples

            pathwise = autograd.grad(relaxed_terms)(tiled)
            signal = f_hard - stash["c_cond"]
            return np.mean(signal[..., None] * score, axis=1) + pathwise

        if not self.learn:
            return onp.asarray(estimate(control))
        out = {}

        def variance_loss(control):
            g = estimate(control)
            out["g"] = getval(g)
            return np.sum(g ** 2) / n_reps

        grad = autograd.grad(variance_loss)(control)
        self._adam_step(grad)
        return onp.asarray(out["g"])

    def _adam_step(self, grad):
        st = self.state
        st["steps"] += 1
        # descend: the baseline/control minimizes its loss
        st["control"], st["adam"] = Adam(self.learning_rate, maximize=False).update(st["control"], grad, st["adam"])


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and onp.isfinite(value)
