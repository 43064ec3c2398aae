"""Small helpers for nested dicts of arrays (the parameter format used everywhere)."""
import numpy as onp
from autograd.misc import flatten

__all__ = ["tree_map", "tree_add", "tree_scale", "tree_zeros_like", "flatten", "tree_leaves", "tree_sq_norm"]


def tree_map(fn, *trees):
    """Apply ``fn`` leafwise to trees of the same structure (dicts, lists, tuples of arrays)."""
    first = trees[0]
    if isinstance(first, dict):
        return {k: tree_map(fn, *(t[k] for t in trees)) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(tree_map(fn, *children) for children in zip(*trees))
    return fn(*trees)


def tree_add(a, b):
    """Leafwise a + b."""
    return tree_map(lambda u, v: u + v, a, b)


def tree_scale(a, c):
    """Leafwise c * a."""
    return tree_map(lambda u: c * u, a)


def tree_zeros_like(a):
    """A tree of float zeros with the structure and shapes of ``a``."""
    return tree_map(lambda u: onp.zeros(onp.shape(u)), a)


def tree_leaves(a):
    """The leaves of a tree (dicts in insertion order, lists, tuples), depth first."""
    if isinstance(a, dict):
        return [leaf for k in a for leaf in tree_leaves(a[k])]
    if isinstance(a, (list, tuple)):
        return [leaf for child in a for leaf in tree_leaves(child)]
    return [a]


def tree_sq_norm(a):
    """Sum of squares of every entry of every leaf."""
    # leaf by leaf: autograd's flatten concatenates through its tracer (a third of a small fit's step)
    return float(sum(onp.vdot(leaf, leaf) for leaf in map(onp.asarray, tree_leaves(a))))
