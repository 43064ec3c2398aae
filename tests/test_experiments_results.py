"""Tidy result tables (pandas) and the run directory: formats, round trips, atomic writes."""
import json
import os

import numpy as onp
import pandas as pd
import pytest

from vi_lab.experiments import RunWriter, read_table, read_config, load_params, save_params, frame, format_table, \
    without_wall_clock, write_table
from vi_lab.experiments.table import table_from_json, table_to_json, parquet_available
from vi_lab.experiments.results import atomic_path, check_writable_dir


@pytest.fixture
def table():
    return frame([{"estimator": "arm", "S": 1, "seconds": 0.25, "var": 2.5, "bias": None},
                  {"estimator": "exact", "S": 1, "seconds": 0.5, "var": 0.0, "bias": float("nan")},
                  {"estimator": "rloo", "S": 10, "seconds": 1.0, "var": float("inf")}], title="t")


def test_frame_is_a_tidy_dataframe_with_the_wall_clock_last(table):
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["estimator", "S", "var", "bias", "seconds"]
    assert table.attrs == {"title": "t", "wall_clock_columns": ["seconds"]}
    assert onp.isnan(table["bias"].iloc[0]) and table["S"].dtype.kind == "i"
    assert list(without_wall_clock(table).columns) == ["estimator", "S", "var", "bias"]
    by_columns = frame({"a": [1, 2], "b": onp.array([0.5, 1.5])})
    assert by_columns.to_dict("records") == [{"a": 1, "b": 0.5}, {"a": 2, "b": 1.5}]
    with pytest.raises(ValueError, match="equal lengths"):
        frame({"a": [1], "b": [1, 2]})


def test_json_is_strict_and_round_trips(table, tmp_path):
    text = table_to_json(table)
    obj = json.loads(text)                      # strict JSON: NaN and inf became null
    assert "NaN" not in text and "Infinity" not in text
    assert obj["rows"][1]["bias"] is None and obj["rows"][2]["var"] == "inf"
    assert obj["wall_clock_columns"] == ["seconds"] and obj["title"] == "t"
    back = table_from_json(text)
    assert list(back.columns) == list(table.columns) and back.attrs["title"] == "t"
    pd.testing.assert_frame_equal(back, table)
    with pytest.raises(ValueError, match="not valid JSON"):
        table_from_json("{", "x.json")
    with pytest.raises(ValueError, match="not a vi_lab table"):
        table_from_json("[1, 2]", "x.json")


def test_csv_keeps_full_precision_and_reads_back(tmp_path):
    t = frame([{"x": 1 / 3, "name": "a,b", "n": 3}])
    paths = write_table(t, tmp_path / "t")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "x,name,n"
    assert float(lines[1].split(",")[0]) == 1 / 3
    assert '"a,b"' in lines[1]
    for path in paths:
        back = read_table(path)
        assert back["x"].iloc[0] == 1 / 3 and back["name"].iloc[0] == "a,b" and back["n"].iloc[0] == 3
    assert (tmp_path / "t.parquet").exists() == parquet_available()


def test_pretty_print_aligns_numbers(table):
    text = format_table(table)
    lines = text.splitlines()
    assert lines[0] == "t"
    assert len({len(line) for line in lines[1:3]}) == 1
    assert "inf" in text and "-" in lines[3]
    assert lines[3].split()[:3] == ["arm", "1", "2.5"]
    assert format_table(table, ["S"], title="").splitlines()[0].strip() == "S"
    with pytest.raises(KeyError, match="no column"):
        format_table(table, ["nope"])


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
    pd.testing.assert_frame_equal(read_table(out / "var.json"), table)
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
