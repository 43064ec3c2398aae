"""How much memory an experiment will need, estimated before it starts, and the limits it must keep.

The variance experiment keeps R estimates of the gradient for its statistics and takes them in
calls of bounded working memory (:data:`CALL_BYTES`); the IWAE bounds of the tightness experiment
push k samples of one datapoint through the decoder at once. Both are estimated here from the sizes
alone, so that an impossible request is refused with its estimated size and the option to change
before any work starts (and the same chunks are made whichever process runs them).
"""
import os

__all__ = ["CALL_BYTES", "bytes_per_rep", "retained_bytes", "memory_budget", "check_size", "measurement_chunks",
           "iwae_bytes", "check_iwae_size"]

#: Working memory one estimator call may use; the R replicates are measured in chunks below it.
CALL_BYTES = 2 ** 29


def _gib(n_bytes):
    return f"{n_bytes / 2 ** 30:,.1f} GiB" if n_bytes >= 2 ** 30 else f"{n_bytes / 2 ** 20:,.0f} MiB"


def _n_params(model):
    sizes = [model.n_latent]
    widths = [model.n_latent, *model.hidden, model.n_obs]
    sizes += [a * b + b for a, b in zip(widths[:-1], widths[1:])]
    return int(sum(sizes))


def bytes_per_rep(est, model, n_data, n_samples):
    """Estimated working memory (bytes) of one replicate of ``est`` on N = n_data rows at S = n_samples.

    Calibrated with tracemalloc on the registered estimators (K = 10, L = 16, hidden (32,), N = 30):
    about 8 bytes x S x N x (L + sum(hidden) + K) per decoder evaluation, times a factor of 2 to 8
    depending on the estimator (this model takes 8), plus, for the leave-one-out IWAE weights of
    VIMCO, 6 arrays of S x S x N floats.
    """
    width = model.n_obs + sum(model.hidden) + model.n_latent
    if getattr(est, "name", "") == "exact":       # enumeration is chunked inside vi_lab.exact
        return 8 * n_data * (model.n_latent + _n_params(model))
    per_sample = est.cost(model) if callable(getattr(est, "cost", None)) else getattr(est, "evals_per_sample", 1)
    per_sample = max(int(per_sample or 1), 1) * int(getattr(est, "n_mc", 1) or 1)
    out = 8 * 8 * per_sample * n_samples * n_data * width
    if getattr(est, "objective", "elbo") != "elbo":
        out += 8 * 6 * n_samples * n_samples * n_data
    return int(out)


def retained_bytes(model, n_data, reps):
    """Memory (bytes) of the R kept estimates of both gradient blocks and their statistics."""
    dim = n_data * model.n_latent + _n_params(model)
    return int(8 * (3 * reps * dim + min(reps, dim) ** 2))


def memory_budget():
    """Bytes an experiment may keep at once: a quarter of this machine's physical memory (at least 1 GiB)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):   # not POSIX: assume a small laptop
        total = 8 * 2 ** 30
    return max(2 ** 30, total // 4)


def check_size(model, n_data, pairs, samples, reps, names=None):
    """Refuse, before any work, a variance measurement that would not fit in memory.

    Parameters
    ----------
    model : BernoulliLVM
    n_data : int
    pairs : list of (label, spec, estimator)
    samples : list of int
    reps : int
    names : dict, optional
        How to call ``samples``, ``reps`` and ``n_data`` in the message (the CLI passes its options).

    Raises
    ------
    ValueError
        With the estimated size, the limit, and the option to change.
    """
    names = {"samples": "samples", "reps": "reps", "n_data": "n_data", **(names or {})}
    budget = memory_budget()
    kept = retained_bytes(model, n_data, reps)
    if kept > budget:
        dim = n_data * model.n_latent + _n_params(model)
        raise ValueError(f"{names['reps']}: R = {reps:,} estimates of a {dim:,}-dimensional gradient are kept for "
                         f"the statistics, about {_gib(kept)}, over this machine's limit of {_gib(budget)} "
                         f"(a quarter of its memory); lower {names['reps']}")
    for label, _, est in pairs:
        for s in samples:
            if s < getattr(est, "min_samples", 1):
                continue
            one = bytes_per_rep(est, model, n_data, s)
            if one > CALL_BYTES:
                what = "its S x S leave-one-out weights" if getattr(est, "objective", "elbo") != "elbo" else \
                    "its decoder evaluations"
                raise ValueError(f"{names['samples']}: {label} at S = {s:,} needs about {_gib(one)} for one estimate "
                                 f"({what} for N = {n_data} datapoints), more than the {_gib(CALL_BYTES)} one call "
                                 f"may use; lower {names['samples']} or {names['n_data']}")


def measurement_chunks(est, model, n_data, n_samples, reps):
    """Replicate counts of the calls that take ``reps`` estimates within :data:`CALL_BYTES` each.

    They depend only on the estimator and the sizes, so the serial and the parallel runs make the
    same calls with the same streams and give the same numbers.
    """
    per_call = max(1, min(reps, CALL_BYTES // max(1, bytes_per_rep(est, model, n_data, n_samples))))
    sizes = [per_call] * (reps // per_call)
    if reps % per_call:
        sizes.append(reps % per_call)
    return sizes



def iwae_bytes(model, k):
    """Estimated memory (bytes) of the IWAE_k bound of one datapoint: k samples through the decoder."""
    return int(8 * 3 * k * (model.n_obs + sum(model.hidden) + model.n_latent))


def check_iwae_size(model, ks, name="ks"):
    """Refuse, before any work, an IWAE k whose samples for a single datapoint would not fit in one call."""
    for k in ks:
        need = iwae_bytes(model, k)
        if need > CALL_BYTES:
            largest = CALL_BYTES // iwae_bytes(model, 1)
            raise ValueError(f"{name}: k = {k:,} importance samples need about {_gib(need)} for a single datapoint "
                             f"(and k x N x reps decoder evaluations in all), more than the {_gib(CALL_BYTES)} one "
                             f"call may use; use k <= {largest:,}")
