"""benchmarks.rock_smoothing: the summary of paired samples (closed forms)."""

import json

import numpy as np
import pytest

from benchmarks.rock_smoothing import pooled, summary


def _row(sigma, sample, k, percolating=0.97, s2=0.008):
    return {
        "model": "m",
        "sigma": sigma,
        "sample": sample,
        "fraction": 0.2,
        "percolating": percolating,
        "s2_rmse": s2,
        "chord_mean": [8.0, 8.0, 8.0],
        "interfaces": 0.05,
        "r_c": 2.0,
        "k": k,
        "k_converged": True,
    }


def test_summary_pairs_each_sample_with_its_unsmoothed_self(tmp_path):
    k0 = np.linspace(0.03, 0.06, 8)
    ratios = np.linspace(1.1, 1.4, 8)
    rows = [_row(0.0, i, float(k)) for i, k in enumerate(k0)]
    rows += [
        _row(0.6, i, float(k * r), percolating=0.96, s2=0.009)
        for i, (k, r) in enumerate(zip(k0, ratios, strict=True))
    ]
    out = tmp_path / "rows.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))  # order does not matter
    table = summary(out)
    plain, smoothed = table["m sigma=0.0"], table["m sigma=0.6"]
    assert plain["n"] == smoothed["n"] == 8 and "paired" not in plain
    assert plain["k"]["median"] == pytest.approx(np.median(k0), abs=1e-5)  # rounded to 5 decimals
    assert plain["k"]["median_ci"] == pytest.approx([0.03, 0.06], abs=1e-5)  # 8 samples: [min, max]
    paired = smoothed["paired"]
    assert paired["k_ratio_median"] == pytest.approx(np.median(ratios), abs=1e-4)
    assert paired["k_ratio_range"] == pytest.approx([1.1, 1.4], abs=1e-4)
    # every one of 8 log-ratios positive: the exact two-sided signed-rank p is 2 / 2⁸
    assert paired["k_wilcoxon_p"] == pytest.approx(2 / 2**8, abs=1e-4)
    assert paired["percolating_change_mean"] == pytest.approx(-0.01, abs=1e-5)
    assert paired["s2_rmse_change_mean"] == pytest.approx(0.001, abs=1e-5)
    # a constant column has a zero-width interval around its value
    assert smoothed["fraction"] == pytest.approx([0.2, 0.2, 0.2])


def test_pooled_samples_count_the_spread_between_models(tmp_path):
    # two models whose samples are constant (k 1 and 3): the pooled median is 2, and the two-level bootstrap
    # draws both models or one twice, so its interval runs from one model's k to the other's
    rows = [{**_row(0.0, i, 1.0), "model": "a"} for i in range(4)]
    rows += [{**_row(0.5, i, 3.0, percolating=0.9), "model": "b"} for i in range(4)]
    out = tmp_path / "rows.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = pooled(out, ["a", "b"], draws=2000)
    assert entry["models"] == 2 and entry["n"] == 8
    assert entry["k"] == pytest.approx([2.0, 1.0, 3.0])
    assert entry["percolating"] == pytest.approx([0.935, 0.9, 0.97])
    assert entry["fraction"] == pytest.approx([0.2, 0.2, 0.2])  # the same in every sample
    with pytest.raises(ValueError, match="no samples of model"):
        pooled(out, ["a", "c"])


def test_summary_correlates_the_samples_s2_rmse_with_their_fraction(tmp_path):
    fractions = np.linspace(0.20, 0.23, 6)
    rows = [
        dict(_row(0.0, i, 0.05), fraction=float(f), s2_rmse=float(0.25 * f - 0.045))
        for i, f in enumerate(fractions)
    ]
    rows += [dict(_row(0.0, i, 0.05), model="flat") for i in range(6)]
    out = tmp_path / "rows.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = summary(out)
    # S2 RMSE an increasing linear function of the fraction: a Pearson correlation of exactly 1
    assert table["m sigma=0.0"]["s2_rmse_pearson_with_fraction"] == pytest.approx(1.0, abs=1e-9)
    assert table["flat sigma=0.0"]["s2_rmse_pearson_with_fraction"] is None  # constant columns
