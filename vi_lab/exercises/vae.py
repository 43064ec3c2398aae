"""Checkers for the exercises of notebook 09 (the variational autoencoder, Gaussian latents).

- :func:`check_reparam_sample`: z = mu + sigma * eps with sigma = exp(log_std).
- :func:`check_reparam_elbo`: the Monte Carlo ELBO of a Gaussian q for given noise eps.
- :func:`check_reparam_gradient`: autograd of that ELBO is an unbiased estimate of the ELBO's
  gradient with respect to (mu, log sigma); the reference is Gauss-Hermite quadrature.

The exact answers come from :mod:`vi_lab.gaussian` and :mod:`vi_lab.quadrature`. Each checker
names the usual mistakes: sigma taken to be the log-std, the variance used as the scale, the
entropy term -log q left out or with the wrong sign, a sum over samples instead of a mean.
"""
import autograd
import autograd.numpy as anp
import numpy as onp

from .. import gaussian, quadrature
from ..gaussian import GaussianLVM
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student

__all__ = ["check_reparam_sample", "check_reparam_elbo", "check_reparam_gradient"]


class _Problem:
    def __init__(self, seed, n_data=4, n_obs=6, log_std_range=(-1.5, 0.3)):
        rng = onp.random.default_rng(100 + seed)
        self.model = GaussianLVM(2, n_obs, hidden=(5,))
        self.params = self.model.init_params(seed, scale=1.5)
        _, self.x = self.model.sample(self.params, n_data, rng=seed + 1)
        self.mean = rng.normal(0.0, 1.0, (n_data, 2))
        self.log_std = rng.uniform(*log_std_range, (n_data, 2))
        self.description = f"GaussianLVM(K=2, L={n_obs}), {n_data} datapoints"


def _problems():
    return [_Problem(0), _Problem(1, n_data=3, n_obs=5, log_std_range=(-3.0, -1.0))]


def _mistake_hint(exercise, got, expected, mistakes, rtol=1e-7, atol=1e-9, name="value"):
    """compare_arrays, preceded by the first named mistake that reproduces ``got``."""
    result = compare_arrays(exercise, got, expected, rtol=rtol, atol=atol, name=name)
    if result.passed:
        return result
    try:
        got_arr = onp.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return result
    for message, wrong in mistakes:
        wrong = onp.asarray(wrong, dtype=float)
        if wrong.shape == got_arr.shape and onp.allclose(got_arr, wrong, rtol=1e-6, atol=1e-9):
            result.details.insert(0, message)
            break
    return result


# ---------------------------------------------------------------------------- exercise 1
def check_reparam_sample(reparam_sample):
    """Check z = mu + exp(log_std) * eps.

    Parameters
    ----------
    reparam_sample : callable
        ``reparam_sample(mean, log_std, eps) -> z`` with ``mean``, ``log_std`` of shape (N, K),
        ``eps`` of shape (S, N, K) standard normal, and z of shape (S, N, K).

    Returns
    -------
    CheckResult
    """
    exercise = "the reparametrized sample z = mu + sigma * eps"
    rng = onp.random.default_rng(7)
    for p in _problems():
        eps = rng.standard_normal((3,) + p.mean.shape)
        got, failure = run_student(exercise, reparam_sample, p.mean.copy(), p.log_std.copy(), eps.copy())
        if failure is not None:
            return failure
        expected = p.mean + onp.exp(p.log_std) * eps
        mistakes = [
            ("you used log_std itself as the standard deviation: sigma = exp(log_std)", p.mean + p.log_std * eps),
            ("you scaled eps by the variance sigma^2 = exp(2 log_std): the scale is sigma = exp(log_std)",
             p.mean + onp.exp(2 * p.log_std) * eps),
            ("you used exp(log_std / 2), which is right for a log-variance, not for a log-std",
             p.mean + onp.exp(p.log_std / 2) * eps),
            ("you forgot the mean: z = mu + sigma * eps", onp.exp(p.log_std) * eps),
        ]
        result = _mistake_hint(exercise, got, expected, mistakes, name="z")
        if not result.passed:
            result.details.append(f"on {p.description}")
            return result
    return CheckResult(exercise, True, ["matches mu + exp(log_std) * eps on two problems (shape (S, N, K))"])


# ---------------------------------------------------------------------------- exercise 2
def _sampled_elbo(p, mean, log_std, eps, xp=onp):
    z = mean + xp.exp(log_std) * eps
    q = {"mean": mean, "log_std": log_std}
    return xp.mean(p.model.log_joint(p.params, p.x, z) - gaussian.log_prob(q, z), axis=0)


def check_reparam_elbo(reparam_elbo):
    """Check a Monte Carlo ELBO of a Gaussian q for the given noise.

    Parameters
    ----------
    reparam_elbo : callable
        ``reparam_elbo(model, params, mean, log_std, x, eps) -> ndarray of shape (N,)``:
        (1/S) sum_s [log p(x_n, z_sn) - log q(z_sn | x_n)] with z_sn = mean_n + exp(log_std_n) eps_sn,
        ``eps`` of shape (S, N, K). ``model.log_joint`` and ``vi_lab.gaussian.log_prob`` may be used.

    Returns
    -------
    CheckResult
        The sampled-entropy form is expected; the analytic-KL form
        (1/S) sum_s log p(x|z_s) - KL(q || p(z)) is also accepted (it is unbiased too), with a note.
    """
    exercise = "the reparametrized Monte Carlo ELBO"
    rng = onp.random.default_rng(8)
    notes = []
    for p in _problems():
        eps = rng.standard_normal((5,) + p.mean.shape)
        got, failure = run_student(exercise, reparam_elbo, p.model, p.params, p.mean.copy(), p.log_std.copy(),
                                   p.x.copy(), eps.copy())
        if failure is not None:
            return failure
        expected = _sampled_elbo(p, p.mean, p.log_std, eps)
        z = p.mean + onp.exp(p.log_std) * eps
        q = {"mean": p.mean, "log_std": p.log_std}
        log_joint = p.model.log_joint(p.params, p.x, z)
        log_q = gaussian.log_prob(q, z)
        analytic = onp.mean(p.model.log_likelihood(p.params, p.x, z), axis=0) - gaussian.kl_to_prior(q)
        try:
            if onp.allclose(onp.asarray(got, dtype=float), analytic, rtol=1e-7, atol=1e-9) \
                    and not onp.allclose(analytic, expected, rtol=1e-7, atol=1e-9):
                notes.append("you used the analytic KL to the prior (Kingma & Welling's second estimator): "
                             "also unbiased, usually lower variance; the exercise's form samples log q")
                continue
        except (TypeError, ValueError):
            pass
        z_wrong = p.mean + p.log_std * eps
        mistakes = [
            ("you left out the entropy term -log q(z|x): you computed E_q[log p(x, z)] only", log_joint.mean(0)),
            ("-log q(z|x) has the wrong sign: ELBO = E_q[log p(x, z) - log q(z|x)]", (log_joint + log_q).mean(0)),
            ("you summed over the samples: average them (divide by S)", (log_joint - log_q).sum(0)),
            ("you used log_std as the standard deviation when drawing z",
             onp.mean(p.model.log_joint(p.params, p.x, z_wrong) - gaussian.log_prob(q, z_wrong), axis=0)),
            ("you averaged over the datapoints too: return one ELBO per datapoint, shape (N,)",
             onp.full(1, expected.mean())),
        ]
        result = _mistake_hint(exercise, got, expected, mistakes, name="ELBO estimate")
        if not result.passed:
            result.details.append(f"on {p.description}, S = 5")
            return result
    return CheckResult(exercise, True, (notes[:1] or []) + [
        "matches (1/S) sum_s [log p(x, z_s) - log q(z_s|x)] on two problems"])


# ---------------------------------------------------------------------------- exercise 3
def _pathwise_mismatch(p, student_grad, rng, n_samples, n_checks=3):
    """None if, for a few fixed eps, the student's gradient equals that of the sampled or the analytic-KL ELBO."""
    def sampled(mean, log_std, eps):
        return anp.sum(_sampled_elbo(p, mean, log_std, eps, anp))

    def analytic(mean, log_std, eps):
        z = mean + anp.exp(log_std) * eps
        return anp.sum(anp.mean(p.model.log_likelihood(p.params, p.x, z), axis=0)
                       - gaussian.kl_to_prior({"mean": mean, "log_std": log_std}))

    worst = {"sampled": 0.0, "analytic": 0.0}
    for _ in range(n_checks):
        eps = rng.standard_normal((n_samples,) + p.mean.shape)
        got = onp.concatenate([onp.ravel(a) for a in student_grad(p.mean.copy(), p.log_std.copy(), eps)])
        for name, fn in (("sampled", sampled), ("analytic", analytic)):
            want = onp.concatenate([onp.ravel(a) for a in autograd.grad(fn, argnum=(0, 1))(p.mean, p.log_std, eps)])
            rel = onp.max(onp.abs(got - want)) / max(onp.max(onp.abs(want)), 1e-12)
            worst[name] = max(worst[name], rel)
    best = min(worst.values())
    return None if best < 1e-6 else best


def check_reparam_gradient(reparam_elbo, n_draws=400, n_samples=2):
    """Check that autograd of your ELBO estimate is an unbiased gradient of the exact ELBO.

    Parameters
    ----------
    reparam_elbo : callable
        The function of exercise 2, written with ``autograd.numpy`` so autograd can differentiate
        it with respect to ``mean`` and ``log_std``.
    n_draws : int, default 400
        Independent gradient estimates (each from ``n_samples`` draws of eps).
    n_samples : int, default 2

    Returns
    -------
    CheckResult
        The mean of the estimates against the quadrature gradient
        (:func:`vi_lab.quadrature.gaussian_elbo_grad`), coordinate by coordinate within 4 SE.
    """
    exercise = "the reparametrization gradient of the ELBO"
    p = _Problem(2, n_data=3)
    rng = onp.random.default_rng(9)

    def total(mean, log_std, eps):
        return anp.sum(reparam_elbo(p.model, p.params, mean, log_std, p.x, eps))

    grad = autograd.grad(total, argnum=(0, 1))
    draws = []
    for _ in range(n_draws):
        eps = rng.standard_normal((n_samples,) + p.mean.shape)
        got, failure = run_student(exercise, grad, p.mean.copy(), p.log_std.copy(), eps)
        if failure is not None:
            failure.details.append("write the function with autograd.numpy (import autograd.numpy as np) so that "
                                   "autograd.grad can differentiate it")
            return failure
        draws.append(onp.concatenate([onp.ravel(got[0]), onp.ravel(got[1])]))
    _, g = quadrature.gaussian_elbo_grad(p.model, p.params, {"mean": p.mean, "log_std": p.log_std}, p.x)
    exact = onp.concatenate([g["mean"].ravel(), g["log_std"].ravel()])
    result = compare_monte_carlo(exercise, onp.array(draws), exact, n_se=4.0, name="gradient estimate")
    if result.passed:
        # Monte Carlo error hides small mistakes (a 2% factor): for fixed eps the estimate is a
        # deterministic function, which must equal the pathwise derivative of one of the two ELBO forms
        mismatch = _pathwise_mismatch(p, grad, onp.random.default_rng(10), n_samples)
        if mismatch is not None:
            return CheckResult(exercise, False, [
                "unbiased within Monte Carlo error, but for fixed eps your gradient is not the derivative of "
                f"the reparametrized ELBO (largest relative difference {mismatch:.2g}): a small extra factor "
                "or term that 400 noisy draws cannot reveal"] + result.details)
    if not result.passed:
        draws = onp.array(draws)
        mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / onp.sqrt(n_draws)
        half = exact.size // 2
        if onp.all(onp.abs(mean[half:] + 1.0 - exact[half:]) < 4.0 * se[half:] + 1e-9):
            result.details.insert(0, "the log_std gradient is about 1 too small in every coordinate: the entropy "
                                     "term (d/dlog sigma of -log q contributes +1 per dimension) is missing")
    return result
