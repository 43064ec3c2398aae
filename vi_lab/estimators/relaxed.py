"""Biased reparametrization estimators on the Concrete (Gumbel-sigmoid) relaxation."""
import autograd
import autograd.numpy as np
import numpy as onp
from autograd.core import make_vjp
from autograd.extend import defvjp, primitive
from autograd.tracer import getval

from .._validation import check_bool, check_rng
from ..nn import sigmoid_into
from ..variational import kl_to_prior
from .base import Estimator, _grad_neg_kl, logistic_noise, sample_sum, tile_reps, uniform_open, weighted_log_density_grads

__all__ = ["Concrete", "StraightThrough", "relaxed_sample"]


def relaxed_sample(logits, noise, tau):
    """Binary Concrete sample sigmoid((logits + noise) / tau), differentiable in ``logits``.

    Parameters
    ----------
    logits : ndarray of shape (..., K)
    noise : ndarray broadcastable with ``logits``
        Logistic(0, 1) noise log u - log(1 - u).
    tau : float > 0

    Returns
    -------
    ndarray of the broadcast shape, values in [0, 1]
    """
    return _sigmoid_vectorized((logits + noise) / tau)


@primitive
def _sigmoid_vectorized(a):
    # numpy's vectorized exp (nn.sigmoid_into) rather than scipy's expit, a scalar loop 2.7 times
    # slower on these (R, S, ..., K) arrays; the two differ by a couple of ulp at most
    return sigmoid_into(onp.asarray(a, dtype=float))


defvjp(_sigmoid_vectorized, lambda ans, a: lambda g: g * ans * (1.0 - ans))


@primitive
def _straight_through(soft, hard):
    """Forward: ``hard``. Backward: the gradient passes to ``soft`` unchanged."""
    return hard


defvjp(_straight_through, lambda ans, soft, hard: lambda g: g, None)


class _Relaxed(Estimator):
    unbiased = False
    evals_per_sample = 1
    options = {"tau": 0.5}
    #: True when the relaxation is z~ = sigmoid((psi + L) / tau) (Concrete; straight-through
    #: evaluates f at its hard value): then only f is traced and dz~/dpsi is applied by hand
    sigmoid_relaxation = False

    def _validate_options(self):
        self.tau = self._check_tau(self.tau)

    def _relax(self, logits, noise):
        raise NotImplementedError

    def _forward_value(self, soft, logits, noise):
        """Where f is evaluated, given the relaxed sample ``soft`` (Concrete: at ``soft`` itself)."""
        return soft

    def _sigmoid_chain(self, grad_z, soft):
        """d/dpsi per sample from d/dz~: grad_z z~ (1 - z~) / tau, in the order of autograd's own
        reverse pass through sigmoid and the division by tau, so the bits are the same as tracing it."""
        g = onp.multiply(grad_z, soft)
        g *= 1.0 - soft
        g /= self.tau
        return g

    def _chain_rule_grad(self, f, logits, noise, n_samples):
        """d/dpsi (1/S) sum_s f(z~_s) for R replicates, with only f traced (``sigmoid_relaxation``).

        Tracing psi + L, the division by tau and the sigmoid would put four (R, S, *batch, K) arrays
        on the tape and reduce one over its middle axis; the chain rule by hand gives the same bits.
        Returns the (R, *batch, K) gradient and the (R, S, *batch, K) values f was evaluated at.
        """
        soft = onp.asarray(relaxed_sample(logits, noise, self.tau))
        at = self._forward_value(soft, logits, noise)
        # the cotangent of (1/S) sum f(z) is 1/S everywhere: handing it to f's own VJP is the
        # gradient of that sum, the same bits, without the sum and the division on the tape
        # (and, for the generic level's f, without its reshapes: f is traced on the rows)
        rows = getattr(f, "on_rows", None)
        if rows is None:
            vjp, values = make_vjp(f, at)
            grad_z = vjp(onp.broadcast_to(1.0 / n_samples, onp.shape(values)))
        else:
            vjp, values = make_vjp(rows, at.reshape((-1,) + at.shape[2:]))
            grad_z = vjp(onp.broadcast_to(1.0 / n_samples, onp.shape(values))).reshape(at.shape)
        return sample_sum(self._sigmoid_chain(grad_z, soft)), at

    def _grad(self, f, logits, n_samples, rng, n_reps):
        noise = logistic_noise(uniform_open(rng, (n_reps, n_samples) + logits.shape))
        if self.sigmoid_relaxation:
            return self._chain_rule_grad(f, logits, noise, n_samples)[0]

        def surrogate(tiled):
            return np.sum(f(self._relax(tiled[:, None], noise), hard=False)) / n_samples

        return autograd.grad(surrogate)(tile_reps(logits, n_reps))

    def __call__(self, model, params, q_logits, x, n_samples, rng=None, n_reps=None, params_grad=True):
        """Relaxed estimate of the gradient of sum_n ELBO_n (see the class Notes).

        Same parameters and returns as :meth:`vi_lab.estimators.base.Estimator.__call__`.
        """
        params_grad = check_bool(params_grad, "params_grad")
        x, q_logits, n_samples, reps = self._check_elbo_inputs(model, params, q_logits, x, n_samples, n_reps)
        noise = logistic_noise(uniform_open(check_rng(rng), (reps, n_samples) + q_logits.shape))

        kl_params, kl_logits = _grad_neg_kl(params, q_logits)                    # of -KL, one replicate's
        if self.sigmoid_relaxation:
            g_logits, z = self._chain_rule_grad(lambda z: model.log_likelihood(params, x, z), q_logits, noise, n_samples)
            # the KL's part, the same for every replicate (the taped sum adds it the same way)
            g_logits = g_logits + onp.asarray(kl_logits)
        else:
            def surrogate(params, tiled, noise):
                z = self._relax(tiled[:, None], noise)                       # (R, S, N, K)
                expected = np.sum(model.log_likelihood(params, x, z)) / n_samples
                return expected - np.sum(kl_to_prior(tiled, params["prior_logits"]))

            g_logits = autograd.grad(surrogate, 1)(params, tile_reps(q_logits, reps), noise)
            z = None
        if not params_grad:
            return None, self._unstack(g_logits, n_reps)
        # The model gradient holds z fixed at its (relaxed) value: all R replicates in one pass,
        # plus the KL's gradient wrt the prior logits, which is the same for every replicate.
        if z is None:
            z = onp.asarray(getval(self._relax(q_logits[None, None], noise)))  # (R, S, N, K)
        g_params = weighted_log_density_grads(model, params, x, z, 1.0 / n_samples, analytic=True)
        g_params["prior_logits"] = g_params["prior_logits"] + onp.asarray(kl_params["prior_logits"])[None]
        return self._finish(g_params, g_logits, n_reps)

    @staticmethod
    def _unstack(g_logits, n_reps):
        return g_logits if n_reps is not None else g_logits[0]


class Concrete(_Relaxed):
    """Reparametrization gradient through the Concrete / Gumbel-sigmoid relaxation. Biased.

    Options
    -------
    tau : float > 0, default 0.5
        Temperature. The bias shrinks as tau -> 0 while the variance grows (roughly like 1/tau).

    Notes
    -----
    With logistic noise L = log u - log(1 - u), the relaxed sample
    z~ = sigmoid((psi + L) / tau) lies in (0, 1) and tends to the Bernoulli sample
    1[psi + L > 0] as tau -> 0. The estimator is the pathwise gradient

    g = (1/S) sum_s d/dpsi f(z~_s(psi)),

    so f must accept relaxed inputs and be autograd-differentiable. It is the exact gradient of
    E[f(z~)], not of E[f(z)]: biased for every tau > 0.

    At the ELBO level only the likelihood term is relaxed: the decoder is fed z~ in [0, 1], and
    the KL to the prior is differentiated in closed form, so the estimate is the gradient of
    (1/S) sum_s log p(x|z~_s) - KL(q || p(z)) with respect to both the model parameters and psi.

    Cost: 1 decoder evaluation per sample (plus its reverse pass).

    References
    ----------
    Maddison, Mnih & Teh (2017), "The Concrete distribution: a continuous relaxation of discrete
    random variables", ICLR; Jang, Gu & Poole (2017), "Categorical reparameterization with
    Gumbel-softmax", ICLR.
    """

    name = "concrete"
    reference = "Maddison, Mnih & Teh (2017); Jang, Gu & Poole (2017), ICLR"
    sigmoid_relaxation = True

    def _relax(self, logits, noise):
        return relaxed_sample(logits, noise, self.tau)


class StraightThrough(_Relaxed):
    """Straight-through Gumbel-sigmoid: hard z forward, relaxed gradient backward. Biased.

    Options
    -------
    tau : float > 0, default 0.5
        Temperature of the relaxation used in the backward pass only.

    Notes
    -----
    Forward, f sees the 0/1 sample b = 1[psi + L > 0] (distributed as q); backward, the
    derivative of b is replaced by that of z~ = sigmoid((psi + L) / tau):

    g = (1/S) sum_s f'(b_s) dz~_s/dpsi,

    the derivative of f taken at the hard sample. Biased for every tau (the chain rule is
    applied to a function other than the one evaluated), and the bias does not vanish as tau
    -> 0. At the ELBO level the decoder sees 0/1 samples, so the model-parameter gradient
    (1/S) sum_s grad_theta log p(x|b_s) is the unbiased pathwise one; the KL to the prior is
    differentiated in closed form.

    Cost: 1 decoder evaluation per sample (plus its reverse pass).

    References
    ----------
    Bengio, Leonard & Courville (2013), "Estimating or propagating gradients through stochastic
    neurons for conditional computation", arXiv:1308.3432; Jang, Gu & Poole (2017), ICLR.
    """

    name = "straight_through"
    reference = "Bengio, Leonard & Courville (2013); Jang, Gu & Poole (2017), ICLR"
    sigmoid_relaxation = True

    def _forward_value(self, soft, logits, noise):
        return (logits + noise > 0).astype(onp.float64)

    def _relax(self, logits, noise):
        soft = relaxed_sample(logits, noise, self.tau)
        hard = self._forward_value(soft, autograd.tracer.getval(logits), noise)
        return _straight_through(soft, hard)
