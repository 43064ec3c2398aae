"""Monte Carlo variational objectives: the ELBO (two forms) and the importance-weighted bound.

Both take the logits psi (N, K) of a mean-field Bernoulli q(z|x), draw all samples at once
as an (S, N, K) array and return one value per datapoint. They are differentiable with
respect to the model parameters (autograd traces ``params``); the samples are thresholded
uniforms, so no gradient flows into ``logits`` through them: gradients with respect to q come
from the estimators in :mod:`vi_lab.estimators`.

The exact values they estimate are in :mod:`vi_lab.exact` (``exact.elbo``,
``exact.log_marginal``), which the tests compare against.
"""
import autograd.numpy as np
from ._special import logsumexp
from autograd.tracer import getval

from ._validation import check_binary, check_logits, check_model, check_params, check_positive_int
from .variational import sample, log_prob, kl_to_prior

__all__ = ["elbo", "iwae", "log_weights", "ELBO_FORMS"]

#: The two Monte Carlo forms of the ELBO that :func:`elbo` computes.
ELBO_FORMS = ("joint", "analytic_kl")


def _check_inputs(model, params, logits, x):
    # Bernoulli latents only: z ~ q is thresholded, which means nothing for a GaussianLVM
    check_model(model, "bernoulli")
    check_params(model, params)
    x = check_binary(x, model.n_obs, "x")
    check_logits(logits, (x.shape[0], model.n_latent), "logits")
    return x


def log_weights(model, params, logits, x, z):
    """Log importance weights log w = log p(x, z) - log q(z|x).

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    logits : ndarray of shape (N, K)
        psi, the logits of q(z|x_n).
    x : ndarray of shape (N, L), values in {0., 1.}
    z : ndarray of shape (S, N, K), values in {0., 1.}

    Returns
    -------
    ndarray of shape (S, N)

    Notes
    -----
    E_q[log w] is the ELBO and E_q[w] = p(x), the two facts both bounds are built on.
    """
    return model.log_joint(params, x, z) - log_prob(logits, z)


def elbo(model, params, logits, x, n_samples=1, rng=None, form="joint"):
    """Monte Carlo estimate of the ELBO of every datapoint.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    logits : ndarray of shape (N, K)
        psi, the logits of the mean-field q(z|x_n) = prod_k Bernoulli(sigmoid(psi_nk)); +-inf is
        allowed (a deterministic coordinate) and gives finite values.
    x : ndarray of shape (N, L), values in {0., 1.}
    n_samples : int, default 1
        S, draws z ~ q(z|x_n) per datapoint (all drawn at once, shape (S, N, K)).
    rng : int or numpy.random.Generator
    form : {"joint", "analytic_kl"}, default "joint"
        Which of the two textbook forms to average (see Notes).

    Returns
    -------
    ndarray of shape (N,)
        An unbiased estimate of ELBO(x_n) for each n.

    Notes
    -----
    ``form="joint"``:
        ELBO(x) = E_q[log p(x, z) - log q(z|x)] ~= 1/S sum_s [log p(x, z_s) - log q(z_s|x)].
    ``form="analytic_kl"``:
        ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) ~= 1/S sum_s log p(x|z_s) - KL,
        with the KL between the two factorized Bernoullis in closed form
        (:func:`vi_lab.variational.kl_to_prior`); usually the lower-variance form
        (Kingma & Welling, 2014, eq. 7).

    Both are unbiased for the same ELBO <= log p(x). Differentiable with respect to
    ``params`` only; the samples carry no gradient to ``logits``.
    """
    if form not in ELBO_FORMS:
        raise ValueError(f"form: unknown ELBO form {form!r}; expected one of {list(ELBO_FORMS)}")
    n_samples = check_positive_int(n_samples, "n_samples")
    x = _check_inputs(model, params, logits, x)
    z = sample(getval(logits), n_samples, rng)                      # (S, N, K)
    if form == "joint":
        return np.mean(log_weights(model, params, logits, x, z), axis=0)
    expected_loglik = np.mean(model.log_likelihood(params, x, z), axis=0)
    return expected_loglik - kl_to_prior(logits, params["prior_logits"])


def iwae(model, params, logits, x, k=1, rng=None):
    """Monte Carlo importance-weighted bound (IWAE) of every datapoint.

    Parameters
    ----------
    model : BernoulliLVM
    params : dict
    logits : ndarray of shape (N, K)
        psi, the logits of the proposal q(z|x_n).
    x : ndarray of shape (N, L), values in {0., 1.}
    k : int, default 1
        Number of importance samples per datapoint (drawn at once, shape (k, N, K)).
    rng : int or numpy.random.Generator

    Returns
    -------
    ndarray of shape (N,)
        One draw of the bound L_k(x_n) for each n.

    Notes
    -----
    L_k(x) = E[log (1/k) sum_i w_i], w_i = p(x, z_i) / q(z_i|x), z_i ~ q(z|x) i.i.d.
    (Burda, Grosse & Salakhutdinov, 2016). The log-mean-exp is computed as
    logsumexp(log w) - log k with the maximum subtracted, so it is finite for any logits.
    Jensen gives ELBO = L_1 <= L_k <= L_{k+1} <= log p(x), and L_k -> log p(x) as k -> inf.
    The returned value is an unbiased estimate of L_k (not of log p(x)). Differentiable with
    respect to ``params`` only.
    """
    k = check_positive_int(k, "k")
    x = _check_inputs(model, params, logits, x)
    z = sample(getval(logits), k, rng)                              # (k, N, K)
    return logsumexp(log_weights(model, params, logits, x, z), axis=0) - np.log(k)
