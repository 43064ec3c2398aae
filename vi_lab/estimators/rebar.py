"""REBAR: the score function with a relaxed, reparametrized control variate (unbiased)."""
import autograd
import autograd.numpy as np
import numpy as onp
from autograd.tracer import Box, getval

from ..nn import log_sigmoid, sigmoid, softplus
from ..optimizers import Adam
from .base import Estimator, logistic_noise, tile_reps, uniform_open

__all__ = ["REBAR", "conditional_logistic"]

_ENTROPY = ("sampled", "analytic")


def conditional_logistic(logits, b, v):
    """Logistic pre-activation z~ ~ p(z | b), reparametrized by v ~ U(0, 1).

    Parameters
    ----------
    logits : ndarray of shape (..., K)
        psi; z = psi + L with L ~ Logistic(0, 1) and b = 1[z > 0].
    b : ndarray broadcastable with ``logits``, values in {0., 1.}
    v : ndarray of the shape of ``b``, values in (0, 1)

    Returns
    -------
    ndarray of the broadcast shape
        z~ = psi + log u' - log(1 - u') with u' = 1 - p + v p if b = 1 and u' = v (1 - p) if
        b = 0 (p = sigmoid(psi)): uniform on the part of (0, 1) that produces b.

    Notes
    -----
    Computed in log space (log u' and log(1 - u') as log-sum-exps of log-sigmoids), so it is
    finite and differentiable for psi = +-1e4.
    """
    log_p, log_1mp = log_sigmoid(logits), log_sigmoid(-logits)
    log_v, log_1mv = onp.log(v), onp.log1p(-v)
    log_u_one = np.logaddexp(log_1mp, log_v + log_p)
    log_1mu_one = log_p + log_1mv
    log_u_zero = log_v + log_1mp
    log_1mu_zero = np.logaddexp(log_p, log_1mv + log_1mp)
    return logits + np.where(b > 0.5, log_u_one - log_1mu_one, log_u_zero - log_1mu_zero)


def _strip_top(value):
    """Remove the innermost trace only (the psi derivative), keeping an outer one (the control's)."""
    return value._value if isinstance(value, Box) else value


class REBAR(Estimator):
    """REBAR (Tucker et al., 2017): score function with a Concrete control variate. Unbiased.

    Options
    -------
    tau : float > 0, default 0.5
        Temperature of the relaxation inside the control variate (the initial value if tuned).
    eta : float, default 1.0
        Scale of the control variate (eta = 0 gives plain REINFORCE; the initial value if tuned).
    tune : bool, default True
        Tune eta and log tau online by minimizing the estimator's variance, as the paper runs
        it (the estimator is then stateful). ``tune=False`` keeps them fixed, for variance
        studies at a chosen (tau, eta), e.g. the spec ``rebar:tune=false,tau=0.2``.
    learning_rate : float > 0, default 0.01
        Adam step size for (eta, log tau) when tuning.
    learn : bool, default True
        When tuning, update (eta, tau) on each call; set ``est.learn = False`` to freeze them.
    entropy : {"sampled", "analytic"}, default "sampled"
        ELBO level only, as for score_function.

    Notes
    -----
    Draw z = psi + L (L logistic), b = 1[z > 0] ~ q, and z~ ~ p(z | b) by the conditional
    reparametrization :func:`conditional_logistic`. With sigma_tau(z) = sigmoid(z / tau),

    g = [f(b) - eta f(sigma_tau(z~))] d/dpsi log q(b) + eta d/dpsi f(sigma_tau(z))
        - eta d/dpsi f(sigma_tau(z~)),

    the first bracket held constant. The last two terms are reparametrization gradients whose
    expectations equal that of eta f(sigma_tau(z~)) d/dpsi log q(b), so the sum is unbiased
    for every tau > 0 and every eta; tau and eta only change the variance. f must accept
    relaxed inputs in [0, 1] and be autograd-differentiable. At the ELBO level the model
    gradient is the pathwise (1/S) sum_s grad_theta log p(x, b_s) at the hard samples.

    Tuning (``tune=True``, the paper's procedure): since E[g] does not depend on (eta, tau),
    d/d(eta, log tau) E||g||^2 is the gradient of the variance; after each estimate one Adam
    step descends d/d(eta, log tau) of mean_r ||g_r||^2, differentiated through the control
    variate (reverse over reverse, so f must be twice differentiable). All ``n_reps``
    replicates of a call use the same (eta, tau); they are updated once per call, so every
    estimate is unbiased. ``est.state["control"]`` holds the current eta and log tau.
    The exact variance on the one-latent toy, by integration over both noises, is
    :func:`vi_lab.toy.exact_moments` ("rebar").

    Cost: 3 decoder evaluations per draw (f(b), f(sigma(z)), f(sigma(z~))), plus a
    second-order reverse pass when tuning.

    References
    ----------
    Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), "REBAR: Low-variance, unbiased
    gradient estimates for discrete latent variable models", NeurIPS.
    """

    name = "rebar"
    evals_per_sample = 3
    reference = "Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), REBAR, NeurIPS"
    options = {"tau": 0.5, "eta": 1.0, "tune": True, "learning_rate": 0.01, "learn": True, "entropy": "sampled"}

    def _validate_options(self):
        self.tau = self._check_tau(self.tau)
        try:
            eta = float(self.eta)
        except (TypeError, ValueError):
            eta = onp.nan
        if not onp.isfinite(eta):
            raise ValueError(f"eta: expected a finite control-variate scale (e.g. eta=1.0), got {self.eta!r}")
        self.eta = eta
        if self.entropy not in _ENTROPY:
            raise ValueError(f"entropy: expected 'sampled' or 'analytic', got {self.entropy!r}")
        for key in ("tune", "learn"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key}: expected True or False, got {getattr(self, key)!r}")
        try:
            ok = float(self.learning_rate) > 0 and onp.isfinite(float(self.learning_rate))
        except (TypeError, ValueError):
            ok = False
        if isinstance(self.learning_rate, bool) or not ok:
            raise ValueError(f"learning_rate: expected a positive step size (e.g. 0.01), got {self.learning_rate!r}")
        self.learning_rate = float(self.learning_rate)
        self.stateful = self.tune
        self.reset()

    def reset(self):
        """Forget the tuned (eta, tau): back to the initial values."""
        self.state = {"control": {"log_tau": onp.log(self.tau), "eta": self.eta}, "adam": None, "steps": 0}

    def _draw(self, f, logits, n_samples, rng, n_reps):
        shape = (n_reps, n_samples) + logits.shape
        noise = logistic_noise(uniform_open(rng, shape))
        v = uniform_open(rng, shape)
        b = (logits + noise > 0).astype(onp.float64)
        return shape, noise, v, b, onp.asarray(getval(f(b)))            # f(b): (R, S, *batch)

    def _grad(self, f, logits, n_samples, rng, n_reps):
        if self.tune:
            return self._tuned_grad(f, logits, n_samples, rng, n_reps)
        shape, noise, v, b, f_hard = self._draw(f, logits, n_samples, rng, n_reps)
        tau, eta = self.tau, self.eta

        def surrogate(tiled):
            psi = tiled[:, None]
            relaxed = np.concatenate([np.reshape(psi + noise, shape),
                                      conditional_logistic(psi, b, v)], axis=1)
            f_relaxed = f(sigmoid(relaxed / tau), hard=False)
            f_z, f_cond = f_relaxed[:, :n_samples], f_relaxed[:, n_samples:]
            signal = f_hard - eta * getval(f_cond)
            log_q = np.sum(b * psi - softplus(psi), axis=-1)
            return np.sum(signal * log_q + eta * (f_z - f_cond)) / n_samples

        return autograd.grad(surrogate)(tile_reps(logits, n_reps))

    def _tuned_grad(self, f, logits, n_samples, rng, n_reps):
        shape, noise, v, b, f_hard = self._draw(f, logits, n_samples, rng, n_reps)
        score = b - onp.asarray(sigmoid(logits))
        tiled = tile_reps(logits, n_reps)

        def estimate(control):
            stash = {}

            def relaxed_terms(tiled_psi):
                psi = tiled_psi[:, None]
                pre = np.concatenate([np.reshape(psi + noise, shape), conditional_logistic(psi, b, v)], axis=1)
                c = control["eta"] * f(sigmoid(pre / np.exp(control["log_tau"])), hard=False)
                stash["c_cond"] = _strip_top(c)[:, n_samples:]
                return np.sum(c[:, :n_samples] - c[:, n_samples:]) / n_samples

            pathwise = autograd.grad(relaxed_terms)(tiled)
            return np.mean((f_hard - stash["c_cond"])[..., None] * score, axis=1) + pathwise

        st = self.state
        if not self.learn:
            return onp.asarray(estimate(st["control"]))
        out = {}

        def variance_loss(control):
            g = estimate(control)
            out["g"] = getval(g)
            return np.sum(g ** 2) / n_reps

        grad = autograd.grad(variance_loss)(st["control"])
        opt = Adam(self.learning_rate, maximize=False)
        if st["adam"] is None:
            st["adam"] = opt.init(st["control"])
        st["control"], st["adam"] = opt.update(st["control"], grad, st["adam"])
        st["steps"] += 1
        return onp.asarray(out["g"])

    @property
    def tuned(self):
        """The current (eta, tau): the initial ones if not tuned (yet)."""
        control = self.state["control"]
        return float(control["eta"]), float(onp.exp(control["log_tau"]))
