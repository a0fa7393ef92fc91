"""benchmarks/rock_table.py on a hand-made study folder: the real-rock verdicts from known values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.rock_table import main, rock_rows


def _folder(tmp_path, percolating, k):
    rows = []
    for i in range(4):  # truth pieces: fraction 0.2, percolating 0.9, k 1, 2, 3, 4 (IQR 1.75–3.25)
        for metric, axis, value in (
            ("fraction", None, 0.2),
            ("percolating_fraction", 0, 0.9),
            ("permeability", 0, i + 1),
        ):
            rows.append(("rock", "stochastic", 0.2, "truth", i, metric, axis, value))
    for i, (p, kk) in enumerate(zip(percolating, k, strict=True)):  # samples
        for metric, axis, value in (
            ("fraction", None, 0.2 + 0.01 * (i % 2)),
            ("percolating_fraction", 0, p),
            ("permeability", 0, kk),
            ("s2_rmse", None, 0.005 + 0.001 * (i % 2)),
        ):
            rows.append(("rock", "stochastic", 0.2, "sample", i, metric, axis, value))
    columns = ["reference", "condition", "target_fraction", "role", "sample", "metric", "axis", "value"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "metrics.csv", index=False)
    run = {
        "reference": "rock",
        "condition": "stochastic",
        "training_fraction": 0.21,
        "training_fraction_std": 0.01,
    }
    study = {"runs": [run], "timings": {"models": [{"run": "rock / stochastic", "seconds": 12.0}]}}
    (tmp_path / "study.json").write_text(json.dumps(study))
    return tmp_path


def test_verdicts_follow_the_targets(tmp_path, capsys):
    k_inside = [2.0, 2.5, 3.0, 2.2, 2.4, 2.6, 2.1, 2.3]
    good = rock_rows(_folder(tmp_path, [0.85, 0.86, 0.84, 0.85] * 2, k_inside))[0]
    assert good["n"] == 8 and good["truth_pieces"] == 4 and good["training_s"] == 12.0
    assert good["truth_k_iqr"] == [1.75, 3.25]  # numpy's linear quantiles
    assert good["k_median"] == pytest.approx(2.35, abs=1e-12)  # (2.3 + 2.4) / 2
    # 8 samples: the median's 95 % interval is [min, max] (coverage 1 − 2/2⁸), here inside the IQR
    assert good["k_median_ci"] == [2.0, 3.0]
    assert good["percolating_within_10_points"] and good["k_median_in_iqr"] and good["s2_at_most_0.010"]
    assert good["training_fraction_half_width"] == pytest.approx(0.0196)
    bad = rock_rows(_folder(tmp_path, [0.3, 0.5, 0.4, 0.2], [0.01, 0.02, 0.03, 0.5]))[0]
    assert not bad["percolating_within_10_points"] and not bad["k_median_in_iqr"]
    # a median inside the IQR is not enough when its interval is not: one sample of 8 outside it
    edge = rock_rows(_folder(tmp_path, [0.85] * 8, [*k_inside[:-1], 9.0]))[0]
    assert 1.75 <= edge["k_median"] <= 3.25 and not edge["k_median_in_iqr"]
    # 4 samples give no 95 % interval of the median (coverage 1 − 2/2⁴ at most): not met
    few = rock_rows(_folder(tmp_path, [0.85] * 4, k_inside[:4]))[0]
    assert np.isnan(few["k_median_ci"][0]) and not few["k_median_in_iqr"]
    assert main([str(tmp_path), "--json", str(tmp_path / "rows.jsonl")]) == 0
    table = capsys.readouterr().out
    assert "| rock / stochastic | 4 |" in table
    # the median, its interval (none from 4 samples) and the truth's IQR
    assert "| 2.3500 [nan, nan] (1.7500–3.2500) |" in table
    assert json.loads((tmp_path / "rows.jsonl").read_text())["run"] == "rock / stochastic"
