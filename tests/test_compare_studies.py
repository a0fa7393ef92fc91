"""benchmarks/compare_studies.py on hand-made study tables: identical, and one value moved by a known amount."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmarks.compare_studies import compare_tables, main


def _write(folder, k):
    folder.mkdir()
    rows = [
        ("a", "fraction", 0.25, "1"),
        ("a", "permeability", k, "voxel²"),
        ("a", "conductivity", None, "W"),
    ]
    frame = pd.DataFrame(rows, columns=["reference", "metric", "value", "unit"])
    for name in ("metrics.csv", "summary.csv"):
        frame.to_csv(folder / name, index=False)
    return folder


def test_identical_and_moved_tables(tmp_path):
    first, same = _write(tmp_path / "a", 0.5), _write(tmp_path / "b", 0.5)
    assert compare_tables(first, same, "metrics.csv") == {"table": "metrics.csv", "identical": True}
    moved = _write(tmp_path / "c", 0.5 * (1 + 1e-6))
    result = compare_tables(first, moved, "metrics.csv")
    assert result["text_equal"] and result["missing_equal"] and result["rows_differing"] == 1
    assert result["largest_relative_difference"] == {
        "permeability": pytest.approx(1e-6 / (1 + 1e-6), rel=1e-6)
    }
    assert main([str(first), str(moved), "--json", str(tmp_path / "c.json")]) == 0
    assert [t["table"] for t in json.loads((tmp_path / "c.json").read_text())] == [
        "metrics.csv",
        "summary.csv",
    ]
