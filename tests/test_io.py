"""Atomic writes get ordinary permissions; the flat parameter format round-trips.

(All-or-nothing writing is tested in test_experiments_results.py.)
"""
import os
import stat

import numpy as onp
import pytest

from vi_lab._io import flatten_params, load_params, save_params, unflatten_params, write_text


def test_written_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644


def test_params_round_trip_through_npz(tmp_path):
    params = {"prior_logits": onp.arange(3.0), "decoder": {"W0": onp.ones((3, 2)), "b0": onp.zeros(2)}}
    assert set(flatten_params(params)) == {"prior_logits", "decoder/W0", "decoder/b0"}
    save_params(tmp_path / "p.npz", params)
    back = load_params(tmp_path / "p.npz")
    onp.testing.assert_array_equal(back["decoder"]["W0"], params["decoder"]["W0"])
    onp.testing.assert_array_equal(unflatten_params(flatten_params(params))["prior_logits"], params["prior_logits"])
    with pytest.raises(ValueError, match="reserved"):
        flatten_params({"a/b": onp.zeros(1)})
