"""vi_lab._tree: leaves and squared norm agree with autograd's flatten (an independent traversal)."""
import numpy as onp
from hypothesis import given, settings, strategies as st

from vi_lab._tree import flatten, tree_leaves, tree_sq_norm

_leaf = st.builds(lambda shape, seed: onp.random.default_rng(seed).normal(size=shape) * 10.0 ** seed % 7,
                  st.lists(st.integers(0, 3), max_size=3).map(tuple), st.integers(0, 5))
_tree = st.recursive(_leaf, lambda children: st.one_of(
    st.dictionaries(st.text("abcdW01", min_size=1, max_size=3), children, min_size=1, max_size=3),
    st.lists(children, min_size=1, max_size=3), st.lists(children, min_size=1, max_size=2).map(tuple)),
    max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(_tree)
def test_leaves_and_sq_norm_match_flatten(tree):
    flat, _ = flatten(tree)
    leaves = tree_leaves(tree)
    joined = onp.concatenate([onp.ravel(leaf) for leaf in leaves]) if leaves else onp.zeros(0)
    # the same entries (autograd's flatten visits dict keys sorted, tree_leaves in insertion order)
    onp.testing.assert_array_equal(onp.sort(joined), onp.sort(flat))
    onp.testing.assert_allclose(tree_sq_norm(tree), onp.dot(flat, flat), rtol=1e-13)


def test_sq_norm_of_a_parameter_dict():
    params = {"decoder": {"W0": onp.arange(6.0).reshape(2, 3), "b0": onp.array([-1.0, 2.0])}, "prior_logits": 3.0}
    assert tree_sq_norm(params) == sum(v * v for v in range(6)) + 1.0 + 4.0 + 9.0
