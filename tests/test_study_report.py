"""The paper study's report (docs/study.md, README) quotes the committed summary, not stale numbers.

docs/figures/study_digits_summary.csv and .txt are what `vi-lab study studies/digits.toml` wrote;
the table and the rank correlations quoted in the docs are read back and compared with them.
"""
import pathlib
import re

import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"


def _doc_table():
    rows = []
    for line in (ROOT / "docs" / "study.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in ("2", "8") and cells[1].isdigit():
            rows.append(cells)
    return rows


def test_the_docs_table_is_the_committed_summary():
    summary = pd.read_csv(FIGURES / "study_digits_summary.csv")
    summary = summary[summary["estimator"].isin(summary["estimator"][summary["S"].notna()])]
    rows = _doc_table()
    assert len(rows) == 16
    for S, rank, estimator, log_px, interval, p_flip, var_cost, steps in rows:
        row = summary[(summary["S"] == float(S)) & (summary["estimator"] == estimator)].iloc[0]
        assert int(row["rank"]) == int(rank), estimator
        assert float(log_px) == pytest.approx(row["log_px_valid"], abs=0.006), estimator
        assert float(var_cost) == pytest.approx(row["var_x_cost_shared"], abs=0.51), estimator
        assert int(steps) == int(row["steps"]), estimator
        if p_flip:
            assert float(p_flip) == pytest.approx(row["p_flip_next"], abs=0.006), estimator


def test_the_quoted_rank_correlations_are_the_committed_ones():
    text = (FIGURES / "study_digits_summary.txt").read_text(encoding="utf-8")
    rho = {}
    for line in text.splitlines():
        m = re.match(r"^(\d)\s+(own|shared)\s+\d+\s+\d+\s+(-?[\d.]+)", line)
        if m:
            rho[(m.group(2), int(m.group(1)))] = float(m.group(3))
    assert len(rho) == 4
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "study.md").read_text(encoding="utf-8")
    shared = f"{rho[('shared', 2)]:.2f} at S = 2 and {rho[('shared', 8)]:.2f} at S = 8 on the shared run"
    assert shared in readme
    own = f"{rho[('own', 2)]:.2f} [" in readme and f"{rho[('own', 8)]:.2f} [" in readme
    assert own
    assert f"{rho[('shared', 2)]:.2f} at S = 2" in docs and f"{rho[('own', 2)]:.2f} (" in docs
