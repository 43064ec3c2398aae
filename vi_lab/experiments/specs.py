"""Estimator specifications as the experiments and the CLI accept them.

A specification is a registered name (``"arm"``), an alias (``"rloo"``), or a name with
options after a colon: ``"concrete:tau=0.5"``, ``"score_function:baseline=rloo,entropy=analytic"``.
The specification string is also the label used in tables and figures.
"""
import difflib
import zlib

import numpy as onp

__all__ = ["ALIASES", "parse", "build", "default_specs", "spec_rng", "as_seed", "without_option"]

#: Short names for common option settings: alias -> (registered name, options).
ALIASES = {
    "reinforce": ("score_function", {}),
    "rloo": ("score_function", {"baseline": "rloo"}),
}


def _value(text):
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse(spec):
    """Split a specification into (registered name, options dict).

    Raises
    ------
    ValueError
        If the option part is not ``key=value`` pairs separated by commas.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"estimators: expected a name such as 'arm' or 'concrete:tau=0.5', got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    options = {}
    if name in ALIASES:
        name, base = ALIASES[name]
        options.update(base)
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"estimators: cannot read option {item!r} in {spec!r}; "
                             f"write options as name:key=value,key=value (e.g. concrete:tau=0.5)")
        options[key.strip()] = _value(value)
    return name, options


def build(spec):
    """A fresh estimator object for a specification (ValueError naming the fix if unknown)."""
    from .. import estimators
    name, options = parse(spec)
    try:
        return estimators.get(name, **options)
    except ValueError as exc:
        if name not in estimators.names() and name not in ALIASES:
            known = sorted(set(estimators.names("bernoulli")) | set(ALIASES))
            hint = difflib.get_close_matches(name, known, n=1)
            did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
            raise ValueError(f"estimators: unknown estimator {spec!r}; {did_you_mean}available: {', '.join(known)} "
                             f"(options as name:key=value)") from None
        raise ValueError(f"estimators: {spec!r}: {exc}") from None


def default_specs(latent="bernoulli"):
    """Every registered estimator for ``latent`` latents, plus the rloo alias (after score_function)."""
    from .. import estimators
    out = []
    for name in estimators.names(latent):
        out.append(name)
        if name == "score_function" and latent == "bernoulli":
            out.append("rloo")
    return out


def spec_rng(seed, *keys):
    """A Generator that depends only on the seed and the keys (e.g. label and S), not on run order."""
    words = [int(seed)]
    for key in keys:
        if isinstance(key, (int, onp.integer)) and key >= 0:
            words.append(int(key))
        else:
            words.append(zlib.crc32(repr(key).encode()))
    return onp.random.default_rng(words)


def as_seed(rng):
    """An int seed from ``rng`` (a non-negative int, or a Generator from which one is drawn)."""
    if isinstance(rng, onp.random.Generator):
        return int(rng.integers(2 ** 62))
    if rng is None:
        raise ValueError("rng: the experiments need a seed (an int) so that results can be reproduced")
    if isinstance(rng, bool) or not isinstance(rng, (int, onp.integer)) or rng < 0:
        raise ValueError(f"rng: expected a non-negative int seed, got {rng!r}")
    return int(rng)


def without_option(spec, key):
    """The specification with option ``key`` removed (``"concrete:tau=0.5"`` -> ``"concrete"``)."""
    name, _, rest = spec.partition(":")
    kept = [item for item in (p.strip() for p in rest.split(",")) if item and item.partition("=")[0].strip() != key]
    return f"{name}:{','.join(kept)}" if kept else name
