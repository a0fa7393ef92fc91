"""Do two runs of one study write the same tables? ``metrics.csv`` and ``summary.csv``, cell by cell.

For each table: whether the files are byte-identical; otherwise whether the text columns and the pattern of
missing values agree, how many rows differ, and per metric the largest relative difference of a value.

Usage::

    python -m benchmarks.compare_studies out/serial out/dask [--json compare.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

TABLES = ("metrics.csv", "summary.csv")


def compare_tables(first: Path, second: Path, name: str) -> dict:
    """The comparison of table ``name`` of two study folders (see the module docstring)."""
    if (first / name).read_bytes() == (second / name).read_bytes():
        return {"table": name, "identical": True}
    a, b = pd.read_csv(first / name), pd.read_csv(second / name)
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return {"table": name, "identical": False, "same_shape": False}
    numbers = list(a.select_dtypes("number").columns)
    text = [c for c in a.columns if c not in numbers]
    x, y = a[numbers].to_numpy(float), b[numbers].to_numpy(float)
    equal = (x == y) | (np.isnan(x) & np.isnan(y))
    rows = ~equal.all(axis=1)
    relative = np.where(equal, 0.0, np.abs(x - y) / np.maximum(np.abs(y), 1e-300))
    worst = {}
    for metric, value in zip(a.loc[rows, "metric"], relative[rows].max(axis=1), strict=True):
        worst[metric] = max(worst.get(metric, 0.0), float(value))
    return {
        "table": name,
        "identical": False,
        "same_shape": True,
        "text_equal": bool((a[text].astype(str) == b[text].astype(str)).all().all()),
        "missing_equal": bool((np.isnan(x) == np.isnan(y)).all()),
        "rows": len(a),
        "rows_differing": int(rows.sum()),
        "largest_relative_difference": worst,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the comparison to this JSON file")
    args = parser.parse_args(argv)
    result = [compare_tables(args.first, args.second, name) for name in TABLES]
    text = json.dumps(result, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
