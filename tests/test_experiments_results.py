"""The tidy Table and the run directory: formats, round trips, atomic writes."""
import json
import os

import numpy as onp
import pytest

from vi_lab.experiments import Table, RunWriter, read_table, read_config, load_params, save_params
from vi_lab.experiments.results import atomic_path, check_writable_dir


@pytest.fixture
def table():
    return Table([{"estimator": "arm", "S": 1, "var": 2.5, "bias": None},
                  {"estimator": "exact", "S": 1, "var": 0.0, "bias": float("nan")},
                  {"estimator": "rloo", "S": 10, "var": float("inf")}], title="t")


def test_columns_rows_and_selection(table):
    assert table.columns == ["estimator", "S", "var", "bias"]
    assert len(table) == 3 and table[2]["bias"] is None
    onp.testing.assert_array_equal(table["S"], [1, 1, 10])
    assert table.where(S=1).unique("estimator") == ["arm", "exact"]
    assert table.select(["var", "S"]).columns == ["var", "S"]
    with pytest.raises(KeyError, match="no column"):
        table.column("nope")
    assert Table.from_columns({"a": [1, 2], "b": onp.array([0.5, 1.5])}).rows == [{"a": 1, "b": 0.5},
                                                                                   {"a": 2, "b": 1.5}]
    with pytest.raises(ValueError, match="equal lengths"):
        Table.from_columns({"a": [1], "b": [1, 2]})


def test_json_is_strict_and_round_trips(table):
    text = table.to_json()
    obj = json.loads(text)                      # strict JSON: NaN and inf became null
    assert "NaN" not in text and "Infinity" not in text
    assert obj["rows"][1]["bias"] is None and obj["rows"][2]["var"] is None
    back = Table.from_json(text)
    assert back.columns == table.columns and back.rows[0] == table.rows[0]


def test_csv_keeps_full_precision():
    t = Table([{"x": 1 / 3, "name": "a,b"}])
    lines = t.to_csv().splitlines()
    assert lines[0] == "x,name"
    assert float(lines[1].split(",")[0]) == 1 / 3
    assert lines[1].endswith('"a,b"')


def test_pretty_print_aligns_numbers(table):
    text = table.format()
    lines = text.splitlines()
    assert lines[0] == "t"
    assert len({len(line) for line in lines[1:3]}) == 1
    assert "inf" in text and "-" in lines[3]


def test_run_writer_writes_every_file_atomically_and_lists_them(tmp_path, table):
    out = tmp_path / "run"
    writer = RunWriter(out, "demo", {"seed": 3, "reps": 5})
    writer.table("var", table)
    writer.params("params", {"prior_logits": onp.arange(3.0), "decoder": {"W0": onp.ones((2, 3))}})
    writer.close()
    config = read_config(out)
    assert config["seed"] == 3 and config["config"]["reps"] == 5 and config["command"] == "demo"
    assert "vi_lab" in config["versions"] and "numpy" in config["versions"]
    assert sorted(config["files"]) == sorted(["config.json", "var.csv", "var.json", "params.npz"])
    assert sorted(os.listdir(out)) == sorted(config["files"])           # no temporary files left behind
    assert read_table(out / "var.json").rows[0] == table.rows[0]
    params = load_params(out / "params.npz")
    onp.testing.assert_array_equal(params["decoder"]["W0"], onp.ones((2, 3)))

    # a second run into the same directory replaces the first one's files
    writer = RunWriter(out, "demo", {"seed": 4})
    writer.table("other", table)
    writer.close()
    assert sorted(os.listdir(out)) == ["config.json", "other.csv", "other.json"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_unwritable_directory_is_reported_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="--out: .* exists and is not a directory"):
        check_writable_dir(blocker, "--out")
    with pytest.raises(ValueError, match="--out: cannot write results"):
        check_writable_dir(blocker / "sub", "--out")


def test_save_params_round_trip(tmp_path):
    tree = {"a": onp.array([1.0, 2.0]), "b": {"c": onp.eye(2)}}
    save_params(tmp_path / "p.npz", tree)
    back = load_params(tmp_path / "p.npz")
    onp.testing.assert_array_equal(back["b"]["c"], onp.eye(2))
