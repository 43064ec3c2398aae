"""Saved runs are consistent or clearly not: run id + content hash tie the .npz to the .json, and
every broken file is a ValueError naming the path at load time."""
import json
import os

import numpy as onp
import pytest

import vi_lab
from vi_lab.inference import FitResult, fit, load


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    model = vi_lab.BernoulliLVM(n_latent=2, n_obs=4, hidden=(3,))
    x = vi_lab.data.bars_and_stripes(2)
    out = tmp_path_factory.mktemp("runs")
    a = fit(model, x, method="per_datapoint", estimator="disarm", n_samples=2, steps=4, record_every=2,
            rng=0, progress=False)
    b = fit(model, x, method="per_datapoint", estimator="disarm", n_samples=2, steps=6, record_every=2,
            rng=1, progress=False)
    a.save(out / "a")
    b.save(out / "b")
    return out, a, b


def _copy_pair(src_dir, stem, dst):
    for ext in (".npz", ".json"):
        with open(src_dir / f"{stem}{ext}", "rb") as fh:
            data = fh.read()
        with open(f"{dst}{ext}", "wb") as fh:
            fh.write(data)


def test_round_trip_is_bit_identical(runs):
    out, a, _ = runs
    loaded = load(out / "a.json")
    for key in a.history:
        onp.testing.assert_array_equal(loaded.history[key], a.history[key])
    onp.testing.assert_array_equal(loaded.params["decoder"]["W0"], a.params["decoder"]["W0"])
    onp.testing.assert_array_equal(loaded.q_params["logits"], a.q_params["logits"])
    with onp.load(out / "a.npz") as data:
        assert str(data["__run_id__"]) == json.loads((out / "a.json").read_text())["run_id"]


def test_json_next_to_another_runs_npz_is_refused_naming_both(runs, tmp_path):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "mixed")
    with open(out / "b.json", "rb") as fh:            # b's history beside a's parameters
        (tmp_path / "mixed.json").write_bytes(fh.read())
    with pytest.raises(ValueError, match="belong to different runs") as err:
        load(tmp_path / "mixed")
    assert str(tmp_path / "mixed.json") in str(err.value) and str(tmp_path / "mixed.npz") in str(err.value)


def test_interrupt_between_the_two_writes_is_detected(runs, tmp_path, monkeypatch):
    out, a, b = runs
    stem = tmp_path / "run"
    a.save(stem)
    import vi_lab.inference.result as result_mod

    def die(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(result_mod, "write_text", die)    # Ctrl-C after the .npz, before the .json
    with pytest.raises(KeyboardInterrupt):
        b.save(stem)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="belong to different runs"):
        load(stem)


def test_npz_modified_after_saving_fails_the_content_hash(runs, tmp_path):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "r")
    with onp.load(tmp_path / "r.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["decoder/W0"] = arrays["decoder/W0"] + 1e-9
    with open(tmp_path / "r.npz", "wb") as fh:
        onp.savez(fh, **arrays)
    with pytest.raises(ValueError, match="does not match the content hash"):
        load(tmp_path / "r")


@pytest.mark.parametrize("damage, match", [
    (lambda p: open(p, "wb").close(), "not a readable .npz"),
    (lambda p: os.truncate(p, os.path.getsize(p) // 2), "not a readable .npz"),
])
def test_empty_or_truncated_npz(runs, tmp_path, damage, match):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "r")
    damage(tmp_path / "r.npz")
    with pytest.raises(ValueError, match=match) as err:
        load(tmp_path / "r")
    assert str(tmp_path / "r.npz") in str(err.value)


def _edit_json(path, edit):
    meta = json.loads(path.read_text())
    edit(meta)
    with open(path, "w") as fh:
        json.dump(meta, fh)


@pytest.mark.parametrize("damage, match", [
    (lambda p: os.truncate(p, os.path.getsize(p) // 2), "is not valid JSON"),
    (lambda p: p.write_text("[1, 2, 3]"), "holds a JSON list, expected an object"),
    (lambda p: _edit_json(p, lambda m: m.pop("history")), r"missing the key\(s\) \['history'\]"),
    (lambda p: _edit_json(p, lambda m: m.pop("run_id")), r"missing the key\(s\) \['run_id'\]"),
    (lambda p: _edit_json(p, lambda m: m["history"].__setitem__("step", [0, "x"])), "must be a list of numbers"),
    (lambda p: _edit_json(p, lambda m: m["history"]["step"].append(9)), "different lengths"),
    (lambda p: _edit_json(p, lambda m: m.__setitem__("format", "other")), "is not a saved vi_lab run"),
])
def test_broken_json(runs, tmp_path, damage, match):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "r")
    damage(tmp_path / "r.json")
    with pytest.raises(ValueError, match=match) as err:
        load(tmp_path / "r")
    assert str(tmp_path / "r.json") in str(err.value)


def test_run_of_a_different_model_is_refused(runs, tmp_path):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "r")
    # the same arrays claimed to belong to a model with another hidden width: hash and ids still match
    _edit_json(tmp_path / "r.json", lambda m: m["model"].__setitem__("hidden", [5]))
    with pytest.raises(ValueError, match=r"does not hold a run of the saved model.*decoder") as err:
        load(tmp_path / "r")
    assert str(tmp_path / "r.npz") in str(err.value)
    _copy_pair(out, "a", tmp_path / "s")
    _edit_json(tmp_path / "s.json", lambda m: m["family"].__setitem__("n_data", 3))
    with pytest.raises(ValueError, match="do not fit the saved family"):
        load(tmp_path / "s")


def test_missing_file_is_named(runs, tmp_path):
    out, _, _ = runs
    _copy_pair(out, "a", tmp_path / "r")
    os.remove(tmp_path / "r.npz")
    with pytest.raises(ValueError, match=r"r\.npz' does not exist"):
        FitResult.load(tmp_path / "r")
