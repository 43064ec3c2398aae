"""vi_lab's gradient estimators against independent plain-torch implementations (issue 11, goal 4).

Run:  .venv/bin/python benchmarks/bench_torch.py  [--reps 2000 --repeats 5]
Needs torch (a benchmark-only extra: ``pip install -e '.[bench]'``).

Three problems, each estimator at S = 1, 2 and 10 samples, R replicates per call:

- ``toy``: the REBAR/ARM toy, f(z) = (z - 0.45)^2 on 5 independent logits (a batch of 5, K = 1);
- ``mlp``: f(z) = a random tanh MLP (K = 5 -> 16 -> 1) of z, one batch position, K = 5;
- ``elbo``: the ELBO of a BernoulliLVM with K = 5, L = 8, hidden (64,), N = 5 datapoints: the
  gradient with respect to q's logits (``params_grad=False`` on the vi_lab side; the torch side
  computes the same quantity and no model gradient).

The torch side is written here from the papers' formulas, vectorized over replicates and samples
with torch tensors (autograd only where the estimator differentiates f, i.e. Concrete); it shares
nothing with vi_lab but the random problem. Both sides run on one thread (BLAS and torch), the
times are CPU seconds of this process (robust to other jobs on the machine) per call, the minimum
over ``--repeats`` rounds of back-to-back calls lasting >= 20 ms each, vi_lab's and torch's rounds
alternating. Each side draws from one generator kept across calls (a numpy Generator, a torch
Generator). ``agree`` is the largest |mean_vilab - mean_torch| over the coordinates in units
of the standard error of the difference: two implementations of the same unbiased (or equally
biased) estimator give |z| of a few at most. ``ratio`` is vi_lab time / torch time (<= 1: vi_lab
is at least as fast).
"""
import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import autograd.numpy as anp          # noqa: E402
import numpy as onp                   # noqa: E402

try:
    import torch                      # noqa: E402
except ImportError:                   # pragma: no cover - benchmark-only dependency
    sys.exit("bench_torch.py needs torch: pip install -e '.[bench]'")

import vi_lab                         # noqa: E402
from vi_lab import estimators        # noqa: E402

torch.set_num_threads(1)
DT = torch.float64


# ---------------------------------------------------------------------------- torch estimators
def t_sample(logits, shape, gen):
    u = torch.rand(shape + tuple(logits.shape), generator=gen, dtype=DT)
    return u, (u < torch.sigmoid(logits)).to(DT)


def t_score(f, logits, S, R, gen, baseline=None):
    _, z = t_sample(logits, (R, S), gen)
    fz = f(z)                                                         # (R, S, *batch)
    if baseline == "rloo":
        fz = fz - (fz.sum(1, keepdim=True) - fz) / (S - 1)
    return (fz.unsqueeze(-1) * (z - torch.sigmoid(logits))).mean(1)


def t_arm(f, logits, S, R, gen, dis=False):
    u = torch.rand((R, S) + tuple(logits.shape), generator=gen, dtype=DT)
    b_up = (u > torch.sigmoid(-logits)).to(DT)
    b_down = (u < torch.sigmoid(logits)).to(DT)
    f_up, f_down = f(b_up), f(b_down)
    if not dis:
        return ((f_up - f_down).unsqueeze(-1) * (u - 0.5)).mean(1)
    weight = (1.0 - 2.0 * b_up) * (b_down != b_up).to(DT) * torch.sigmoid(logits.abs())
    return (0.5 * (f_down - f_up).unsqueeze(-1) * weight).mean(1)


def t_vimco_signals(log_w):
    S = log_w.shape[1]
    bound = torch.logsumexp(log_w, 1, keepdim=True) - onp.log(S)
    loo = (log_w.sum(1, keepdim=True) - log_w) / (S - 1)              # (R, S, ...)
    expanded = log_w.unsqueeze(1).expand((log_w.shape[0], S) + tuple(log_w.shape[1:])).clone()
    idx = torch.arange(S)
    expanded[:, idx, idx] = loo
    return bound - (torch.logsumexp(expanded, 2) - onp.log(S))


def t_vimco(f, logits, S, R, gen):
    _, z = t_sample(logits, (R, S), gen)
    signals = t_vimco_signals(f(z))
    return (signals.unsqueeze(-1) * (z - torch.sigmoid(logits))).sum(1)


def t_concrete(f, logits, S, R, gen, tau=0.5):
    u = torch.rand((R, S) + tuple(logits.shape), generator=gen, dtype=DT)
    noise = torch.log(u) - torch.log1p(-u)
    tiled = logits.expand((R,) + tuple(logits.shape)).clone().requires_grad_(True)
    z = torch.sigmoid((tiled.unsqueeze(1) + noise) / tau)
    (g,) = torch.autograd.grad(f(z).sum() / S, tiled)
    return g


# ---------------------------------------------------------------------------- problems
def make_problems():
    rng = onp.random.default_rng(0)
    problems = {}
    # toy: 5 logits, K = 1 each
    t = 0.45
    problems["toy"] = dict(
        logits=rng.normal(size=(5, 1)),
        f_np=lambda z: ((z - t) ** 2).sum(axis=-1),
        f_t=lambda z: ((z - t) ** 2).sum(-1))
    # mlp: random tanh MLP of K = 5 latents, one batch position
    W1, b1, W2 = rng.normal(size=(5, 16)), rng.normal(size=16) * 0.5, rng.normal(size=(16, 1)) / 4
    W1t, b1t, W2t = (torch.tensor(a) for a in (W1, b1, W2))
    problems["mlp"] = dict(
        logits=rng.normal(size=5),
        f_np=lambda z: (anp.tanh(anp.dot(z, W1) + b1) @ W2)[..., 0],
        f_t=lambda z: (torch.tanh(z @ W1t + b1t) @ W2t)[..., 0])
    return problems


def elbo_problem():
    model = vi_lab.BernoulliLVM(5, 8, hidden=(64,))
    params = model.init_params(3, scale=1.5)
    params["prior_logits"] = onp.random.default_rng(4).normal(size=5)
    x = vi_lab.data.from_model(model, params, 5, rng=5)
    q_logits = onp.random.default_rng(6).normal(size=(5, 5))
    dec = {k: torch.tensor(v) for k, v in params["decoder"].items()}
    b = torch.tensor(params["prior_logits"])
    xt = torch.tensor(x)

    def log_lik(z):                                                   # (..., N, K) -> (..., N)
        a = torch.tanh(z @ dec["W0"] + dec["b0"]) @ dec["W1"] + dec["b1"]
        return (xt * a - torch.nn.functional.softplus(a)).sum(-1)

    def log_prior(z):
        return (z * torch.nn.functional.logsigmoid(b) + (1 - z) * torch.nn.functional.logsigmoid(-b)).sum(-1)

    return model, params, x, q_logits, log_lik, log_prior


def torch_elbo_estimate(name, S, R, gen, log_lik, log_prior, psi):
    """Gradient of sum_n ELBO_n wrt q's logits psi (N, K), R replicates: (R, N, K)."""
    log_q_c = lambda z: (z * torch.nn.functional.logsigmoid(psi) + (1 - z) * torch.nn.functional.logsigmoid(-psi)).sum(-1)
    f = lambda z: log_lik(z) + log_prior(z) - log_q_c(z)              # psi constant inside f
    if name == "score_function":
        return t_score(f, psi, S, R, gen)
    if name == "rloo":
        return t_score(f, psi, S, R, gen, baseline="rloo")
    if name in ("arm", "disarm"):
        return t_arm(f, psi, S, R, gen, dis=name == "disarm")
    if name == "vimco":
        _, z = t_sample(psi, (R, S), gen)
        log_w = f(z)
        signals = t_vimco_signals(log_w)
        weights = torch.softmax(log_w, 1)
        return ((signals - weights).unsqueeze(-1) * (z - torch.sigmoid(psi))).sum(1)
    if name == "concrete":
        u = torch.rand((R, S) + tuple(psi.shape), generator=gen, dtype=DT)
        noise = torch.log(u) - torch.log1p(-u)
        tiled = psi.expand((R,) + tuple(psi.shape)).clone().requires_grad_(True)
        z = torch.sigmoid((tiled.unsqueeze(1) + noise) / 0.5)
        q = torch.sigmoid(tiled)
        bb = torch.tensor(0.0, dtype=DT) + b_prior_of(log_prior)
        kl = (q * (torch.nn.functional.logsigmoid(tiled) - torch.nn.functional.logsigmoid(bb))
              + (1 - q) * (torch.nn.functional.logsigmoid(-tiled) - torch.nn.functional.logsigmoid(-bb))).sum()
        (g,) = torch.autograd.grad(log_lik(z).sum() / S - kl, tiled)
        return g
    raise KeyError(name)


_PRIOR = {}


def b_prior_of(log_prior):
    return _PRIOR["b"]


# ---------------------------------------------------------------------------- timing
def cpu_pair(run_a, run_b, repeats, min_seconds=0.02):
    """CPU seconds per call of ``run_a`` and of ``run_b``, the minimum over ``repeats`` rounds.

    A round times enough back-to-back calls to last ``min_seconds`` (one call of a small problem
    takes a fraction of a millisecond, below the clock's resolution and at the mercy of one page
    fault), and the two sides alternate round by round, so a drift in the machine's speed
    reaches both alike.
    """
    outs = [run_a(), run_b()]                                 # warm-up, and the estimates compared
    counts = []
    for fn in (run_a, run_b):
        start = time.process_time()
        fn()
        counts.append(max(1, int(min_seconds / max(time.process_time() - start, 1e-6))))
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for side, fn in enumerate((run_a, run_b)):
            start = time.process_time()
            for _ in range(counts[side]):
                fn()
            best[side] = min(best[side], (time.process_time() - start) / counts[side])
    return best, outs


ESTIMATORS = {   # row name -> (vi_lab name, options, torch generic function, minimum S)
    "score_function": ("score_function", {}, lambda f, l, S, R, g: t_score(f, l, S, R, g), 1),
    "rloo": ("score_function", {"baseline": "rloo"}, lambda f, l, S, R, g: t_score(f, l, S, R, g, "rloo"), 2),
    "arm": ("arm", {}, lambda f, l, S, R, g: t_arm(f, l, S, R, g), 1),
    "disarm": ("disarm", {}, lambda f, l, S, R, g: t_arm(f, l, S, R, g, dis=True), 1),
    "vimco": ("vimco", {}, t_vimco, 2),
    "concrete": ("concrete", {"tau": 0.5}, t_concrete, 1),
}


def agreement(a, b):
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    se = onp.sqrt(a.var(0, ddof=1) / a.shape[0] + b.var(0, ddof=1) / b.shape[0])
    return float(onp.max(onp.abs(a.mean(0) - b.mean(0)) / onp.maximum(se, 1e-300)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 2, 10])
    parser.add_argument("--estimators", nargs="+", choices=list(ESTIMATORS), default=list(ESTIMATORS),
                        help="rows to time (default: all)")
    args = parser.parse_args(argv)
    R = args.reps
    gen = torch.Generator().manual_seed(0)
    print(f"vi_lab vs plain torch {torch.__version__}: R = {R} replicates per call, one thread each, "
          f"CPU time, min of {args.repeats}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'problem':<6} {'estimator':<15} {'S':>3} {'vi_lab us/est':>14} {'torch us/est':>13} {'ratio':>7} {'agree':>6}")
    ratios = []
    rng = onp.random.default_rng(0)             # one stream, as torch's generator ``gen``

    def row(problem, name, S, run_v, run_t):
        (t_v, t_t), (g_v, g_t) = cpu_pair(run_v, run_t, args.repeats)
        ratio = t_v / t_t
        ratios.append((problem, name, S, ratio))
        print(f"{problem:<6} {name:<15} {S:>3} {t_v / R * 1e6:>14.2f} {t_t / R * 1e6:>13.2f} {ratio:>7.2f} "
              f"{agreement(onp.asarray(g_v), g_t.detach().numpy()):>6.1f}", flush=True)

    for pname, prob in make_problems().items():
        logits, f_np, f_t = prob["logits"], prob["f_np"], prob["f_t"]
        lt = torch.tensor(logits)
        for name, (vname, opts, t_fn, s_min) in ESTIMATORS.items():
            if name not in args.estimators:
                continue
            est = estimators.get(vname, **opts)
            for S in args.samples:
                if S < s_min:
                    continue
                row(pname, name, S, lambda: est.grad(f_np, logits, S, rng=rng, n_reps=R),
                    lambda: t_fn(f_t, lt, S, R, gen))

    model, params, x, q_logits, log_lik, log_prior = elbo_problem()
    _PRIOR["b"] = torch.tensor(params["prior_logits"])
    psi = torch.tensor(q_logits)
    for name, (vname, opts, _, s_min) in ESTIMATORS.items():
        if name not in args.estimators:
            continue
        est = estimators.get(vname, **opts)
        for S in args.samples:
            if S < s_min:
                continue
            row("elbo", name, S,
                lambda: est(model, params, q_logits, x, S, rng=rng, n_reps=R, params_grad=False)[1],
                lambda: torch_elbo_estimate(name, S, R, gen, log_lik, log_prior, psi))

    values = onp.array([r[3] for r in ratios])
    print()
    print(f"vi_lab / torch time per estimate: median {onp.median(values):.2f}x, "
          f"min {values.min():.2f}x, max {values.max():.2f}x; "
          f"{int((values <= 1.0).sum())} of {len(values)} rows at or below torch")


if __name__ == "__main__":
    main()
