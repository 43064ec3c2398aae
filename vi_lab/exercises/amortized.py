"""Checkers for the exercises of notebook 03 (amortized inference with an encoder).

- :func:`check_encoder_logits`: the forward pass of a one-hidden-layer tanh encoder.
- :func:`check_amortization_gap`: ELBO(best per-datapoint q) - ELBO(encoder's q), per datapoint.
- :func:`check_encoder_grad`: the exact gradient of the summed ELBO with respect to the encoder
  weights (the chain rule through the encoder).

The exact answers come from :class:`vi_lab.variational.Encoder`, :func:`vi_lab.inference.fit_local`
and :func:`vi_lab.exact.elbo_grad`.
"""
import autograd
import numpy as onp

from .. import exact
from ..nn import sigmoid
from ..variational import Encoder
from ._check import CheckResult, compare_arrays
from .bernoulli_model import _compare, _named_mistakes, _random_problem, _run_problems

__all__ = ["check_encoder_logits", "check_amortization_gap", "check_encoder_grad"]


class _EncoderProblem:
    def __init__(self, encoder, q_params, x, description):
        self.encoder, self.q_params, self.x, self.description = encoder, q_params, x, description


def _encoder_problem(seed, n_obs, n_latent, hidden, n_data):
    """A one-hidden-layer tanh encoder with random weights and non-zero biases, and binary inputs."""
    rng = onp.random.default_rng(seed)
    encoder = Encoder(n_obs, n_latent, hidden=(hidden,))
    q_params = encoder.init_params(rng, scale=1.5)
    q_params["b0"] = 0.5 * rng.standard_normal(hidden)
    q_params["b1"] = 0.5 * rng.standard_normal(n_latent)
    x = (rng.random((n_data, n_obs)) < 0.5).astype(float)
    return _EncoderProblem(encoder, q_params, x,
                           f"L = {n_obs} inputs, {hidden} hidden units, K = {n_latent} outputs, N = {n_data}")


def _copy(q_params):
    return {key: onp.array(value, dtype=float) for key, value in q_params.items()}


# ---------------------------------------------------------------------------- exercise 1
def check_encoder_logits(encoder_logits):
    """Check a student's forward pass of a one-hidden-layer tanh encoder.

    Parameters
    ----------
    encoder_logits : callable
        ``encoder_logits(q_params, x) -> ndarray of shape (N, K)`` for ``q_params`` with keys
        "W0" (L, H), "b0" (H,), "W1" (H, K), "b1" (K,) and ``x`` of shape (N, L):
        psi(x) = tanh(x W0 + b0) W1 + b1.

    Returns
    -------
    CheckResult
        Compared with :meth:`vi_lab.variational.Encoder.logits` on two encoders whose sizes all
        differ (so a transposed weight matrix raises an error rather than passing silently).

    Notes
    -----
    Named mistakes: no tanh, a bias left out, a sigmoid or tanh on the output (the output is a
    logit: any real number), a sigmoid instead of tanh in the hidden layer.
    """
    exercise = "the encoder's forward pass"

    def evaluate(problem, got):
        p, x = problem.q_params, problem.x
        expected = onp.asarray(problem.encoder.logits(p, x))
        hidden = onp.tanh(x @ p["W0"] + p["b0"])
        mistakes = [
            ("you left out the tanh: psi = tanh(x W0 + b0) W1 + b1", (x @ p["W0"] + p["b0"]) @ p["W1"] + p["b1"]),
            ("you left out the hidden bias b0", onp.tanh(x @ p["W0"]) @ p["W1"] + p["b1"]),
            ("you left out the output bias b1", hidden @ p["W1"]),
            ("you left out both biases", onp.tanh(x @ p["W0"]) @ p["W1"]),
            ("your output went through a sigmoid: the encoder returns logits, sigmoid(psi) would be the "
             "probabilities", onp.asarray(sigmoid(expected))),
            ("your output went through a tanh: only the hidden layer has one, the output is linear",
             onp.tanh(expected)),
            ("you used a sigmoid in the hidden layer; the encoder uses tanh",
             onp.asarray(sigmoid(x @ p["W0"] + p["b0"])) @ p["W1"] + p["b1"]),
        ]
        return _compare(exercise, got, expected, mistakes, rtol=1e-9, atol=1e-10, name="logits")

    problems = [_encoder_problem(0, 6, 3, 5, 7), _encoder_problem(1, 4, 2, 3, 5)]
    return _run_problems(exercise, encoder_logits, problems, lambda fn, p: fn(_copy(p.q_params), p.x.copy()),
                         evaluate, "matches Encoder.logits")


# ---------------------------------------------------------------------------- exercise 2
def _gap_problems():
    rng = onp.random.default_rng(21)
    problems = []
    for problem in (_random_problem(2), _random_problem(3, n_latent=4, n_obs=6, hidden=(5,), n_data=5)):
        problem.encoder_logits = 1.5 * rng.standard_normal((problem.x.shape[0], problem.model.n_latent))
        problem.description += ", random encoder logits"
        problems.append(problem)
    return problems


def check_amortization_gap(amortization_gap):
    """Check a student's per-datapoint amortization gap.

    Parameters
    ----------
    amortization_gap : callable
        ``amortization_gap(model, params, encoder_logits, x) -> ndarray of shape (N,)`` where
        ``encoder_logits`` (N, K) are the logits the encoder outputs for the rows of ``x``
        (N, L): ELBO(best mean-field q for x_n) - ELBO(encoder's q for x_n), each ELBO exact,
        the best q from ``vi_lab.inference.fit_local(model, params, x, init=encoder_logits)``.

    Returns
    -------
    CheckResult
        Compared on two small problems with random "encoder" logits.

    Notes
    -----
    log p(x) - ELBO(encoder) = [log p(x) - ELBO(best q)] + [ELBO(best q) - ELBO(encoder)]: the
    approximation gap (the price of the mean-field family) plus the amortization gap (the price of
    sharing one encoder). Starting the search at the encoder's logits makes the gap >= 0. Named
    mistakes: the total gap, the approximation gap, one of the two ELBOs alone.
    """
    from ..inference import fit_local

    exercise = "the amortization gap"

    def evaluate(problem, got):
        model, params, x, logits = problem.model, problem.params, problem.x, problem.encoder_logits
        elbo_encoder = exact.elbo(model, params, logits, x)
        elbo_best = exact.elbo(model, params, fit_local(model, params, x, init=logits), x)
        log_px = exact.log_marginal(model, params, x)
        expected = elbo_best - elbo_encoder
        mistakes = [
            ("you returned the total gap log p(x) - ELBO(encoder): subtract the approximation gap "
             "log p(x) - ELBO(best q), which the encoder could not remove anyway", log_px - elbo_encoder),
            ("you returned the approximation gap log p(x) - ELBO(best q); the amortization gap compares the "
             "best q with the encoder's q", log_px - elbo_best),
            ("you returned ELBO(best q) alone: subtract ELBO(encoder's q)", elbo_best),
            ("you returned ELBO(encoder's q) alone", elbo_encoder),
        ]
        result = _compare(exercise, got, expected, mistakes, rtol=1e-6, atol=1e-7, name="gap")
        if result.passed:
            result.details = [f"matches; the gaps here range from {expected.min():.3f} to {expected.max():.3f} nats"]
        return result

    return _run_problems(exercise, amortization_gap, _gap_problems(),
                         lambda fn, p: fn(p.model, p.params, p.encoder_logits.copy(), p.x.copy()), evaluate,
                         "matches ELBO(best q) - ELBO(encoder's q)")


# ---------------------------------------------------------------------------- exercise 3
def _grad_problems():
    problems = []
    for seed, (k, l, hidden_model, hidden_encoder, n) in enumerate([(3, 5, (6,), 4, 6), (4, 6, (5,), 3, 5)]):
        problem = _random_problem(30 + seed, n_latent=k, n_obs=l, hidden=hidden_model, n_data=n)
        enc = _encoder_problem(40 + seed, l, k, hidden_encoder, n)
        problem.encoder, problem.q_params = enc.encoder, enc.q_params
        problem.description += f", encoder with {hidden_encoder} hidden units"
        problems.append(problem)
    return problems


def _flat(tree, keys):
    return onp.concatenate([onp.ravel(tree[key]) for key in keys])


def _worst_entry(got, expected, keys):
    """Where the gradient dicts differ most, named by key and index within that array."""
    best = None
    for key in keys:
        diff = onp.abs(onp.asarray(got[key], dtype=float) - onp.asarray(expected[key], dtype=float))
        if diff.size and (best is None or diff.max() > best[0]):
            best = (diff.max(), key, onp.unravel_index(onp.argmax(diff), diff.shape))
    _, key, index = best
    value_got = onp.asarray(got[key], dtype=float)[index]
    value_exp = onp.asarray(expected[key], dtype=float)[index]
    where = f"[{', '.join(str(int(i)) for i in index)}]" if index else ""
    return f"largest mismatch at q_params[{key!r}]{where}: yours {value_got:.6g}, exact {value_exp:.6g}"


def check_encoder_grad(encoder_grad):
    """Check a student's gradient of the summed exact ELBO with respect to the encoder weights.

    Parameters
    ----------
    encoder_grad : callable
        ``encoder_grad(model, params, encoder, q_params, x) -> dict`` with the keys and shapes of
        ``q_params`` (a one-hidden-layer :class:`~vi_lab.variational.Encoder`): the gradient of
        sum_n ELBO(x_n) with q's logits psi_n = ``encoder.logits(q_params, x)[n]``.

    Returns
    -------
    CheckResult
        Compared with the chain rule applied to :func:`vi_lab.exact.elbo_grad` on two problems.

    Notes
    -----
    dELBO/dphi = sum_n (dpsi_n/dphi)^T dELBO_n/dpsi_n: every datapoint's gradient with respect to its
    own logits flows back into the same shared weights (``autograd.make_vjp`` of the encoder, or
    backpropagation by hand: with h = tanh(x W0 + b0), g = dELBO/dpsi,
    dW1 = h^T g, db1 = sum_n g_n, dW0 = x^T [(g W1^T) (1 - h^2)], db0 = sum_n of the bracket).
    Named mistakes: a mean over datapoints instead of the sum, the sign flipped, a missing
    tanh derivative (only W1 and b1 right).
    """
    exercise = "the ELBO gradient with respect to the encoder weights"

    def evaluate(problem, got):
        model, params, x, encoder, q_params = problem.model, problem.params, problem.x, problem.encoder, problem.q_params
        vjp, logits = autograd.make_vjp(lambda q: encoder.logits(q, x))(q_params)
        _, g_logits = exact.elbo_grad(model, params, onp.asarray(logits), x)
        expected = vjp(g_logits)
        keys = sorted(expected)
        if not isinstance(got, dict) or set(got) != set(expected):
            have = sorted(got) if isinstance(got, dict) else type(got).__name__
            return CheckResult(exercise, False, [f"expected a dict with keys {keys} (those of q_params), got {have}"])
        for key in keys:
            shape = onp.shape(got[key])
            if shape != onp.shape(expected[key]):
                return CheckResult(exercise, False, [
                    f"your gradient for {key!r} has shape {shape}, expected {onp.shape(expected[key])} "
                    f"(the shape of q_params[{key!r}])"])
        flat_got = _flat(got, keys)
        flat_expected = _flat(expected, keys)
        result = compare_arrays(exercise, flat_got, flat_expected, rtol=1e-6, atol=1e-9, name="gradient")
        if result.passed:
            return result
        n = x.shape[0]
        hints = _named_mistakes(flat_got, [
            (f"you averaged over the {n} datapoints; the exercise asks for the gradient of the sum",
             flat_expected / n)])
        right = [k for k in keys if onp.allclose(got[k], expected[k], rtol=1e-6, atol=1e-9)]
        wrong = [k for k in keys if k not in right]
        if right and not hints:
            extra = (": check the tanh derivative 1 - h**2 on the way back to the first layer"
                     if set(right) == {"W1", "b1"} else "")
            hints.append(f"{', '.join(right)} match but {', '.join(wrong)} do not{extra}")
        result.details = hints + [d for d in result.details if not d.startswith("largest mismatch")] + [
            _worst_entry(got, expected, keys)]
        return result

    return _run_problems(exercise, encoder_grad, _grad_problems(),
                         lambda fn, p: fn(p.model, p.params, p.encoder, _copy(p.q_params), p.x.copy()),
                         evaluate, "matches the chain rule through exact.elbo_grad")
