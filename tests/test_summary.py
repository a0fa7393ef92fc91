"""Ensemble summaries of a study (reports.summary) and the figures of its ensembles (reports.ensemble_figures)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.ensemble_figures import crossplot_figure, distributions_figure, hashin_shtrikman
from reports.summary import COLUMNS, summary_frame


def _frame(
    rng, *, n_samples=12, n_truth=16, sample_mean=0.40, truth_mean=0.40, condition="stochastic", k=None
):
    rows = []
    for role, n, mean in (("sample", n_samples, sample_mean), ("truth", n_truth, truth_mean)):
        for i in range(n):
            fraction = mean + 0.01 * rng.standard_normal()
            rows.append(("lab", condition, role, i, "fraction", None, fraction))
            rows.append(("lab", condition, role, i, "conductivity", 0, 0.5 + fraction))
            if k is not None:
                rows.append(("lab", condition, role, i, "permeability", 0, k[role][i]))
    rows.append(("lab", condition, "reference", None, "fraction", None, 0.40))
    return pd.DataFrame(rows, columns=["reference", "condition", "role", "sample", "metric", "axis", "value"])


def test_a_row_per_metric_and_axis_with_the_t_interval_and_welch_test():
    frame = _frame(np.random.default_rng(1))
    table = summary_frame(frame)
    assert list(table.columns) == COLUMNS
    assert set(zip(table["metric"], table["axis"].astype(object), strict=True)) == {
        ("fraction", pd.NA),
        ("conductivity", 0),
    }
    row = table[table["metric"] == "fraction"].iloc[0]
    samples = frame[(frame["role"] == "sample") & (frame["metric"] == "fraction")]["value"].to_numpy()
    truth = frame[(frame["role"] == "truth") & (frame["metric"] == "fraction")]["value"].to_numpy()
    assert row["n"] == 12 and row["truth_n"] == 16
    half = stats.t.ppf(0.975, 11) * samples.std(ddof=1) / np.sqrt(12)  # Student's t interval, exactly
    assert row["ci_low"] == pytest.approx(samples.mean() - half) and row["ci_high"] == pytest.approx(
        samples.mean() + half
    )
    assert row["pvalue"] == pytest.approx(stats.ttest_ind(samples, truth, equal_var=False).pvalue)
    assert row["verdict"] == "agrees"


def test_samples_far_from_the_truth_differ_and_controlled_runs_have_no_verdict():
    table = summary_frame(_frame(np.random.default_rng(2), sample_mean=0.45))
    assert table.loc[table["metric"] == "fraction", "verdict"].iloc[0] == "differs"
    controlled = summary_frame(_frame(np.random.default_rng(2), sample_mean=0.30, condition="eta=0.3"))
    assert set(controlled["verdict"]) == {"controlled"}


def test_permeability_is_a_percolation_probability_and_ln_k_of_the_percolating():
    k = {"sample": [0.0] * 4 + [0.5] * 8, "truth": [0.0] * 2 + [0.25] * 14}
    table = summary_frame(_frame(np.random.default_rng(3), k=k)).set_index("metric")
    p = table.loc["percolation_probability"]
    assert (p["n"], p["mean"], p["truth_n"], p["truth_mean"]) == (
        12,
        pytest.approx(8 / 12),
        16,
        pytest.approx(14 / 16),
    )
    # exact Clopper–Pearson: the interval's ends are beta quantiles
    assert p["ci_low"] == pytest.approx(stats.beta.ppf(0.025, 8, 5)) and p["ci_high"] == pytest.approx(
        stats.beta.ppf(0.975, 9, 4)
    )
    assert p["pvalue"] == pytest.approx(stats.fisher_exact([[8, 4], [14, 2]]).pvalue)
    ln_k = table.loc["log_permeability"]
    assert (ln_k["n"], ln_k["mean"], ln_k["truth_mean"]) == (
        8,
        pytest.approx(np.log(0.5)),
        pytest.approx(np.log(0.25)),
    )


def test_hashin_shtrikman_bounds_closed_forms():
    # k1 = 1 (fraction 0.5), k2 = 2: lower 1 + 0.5/(1 + 0.5/3) = 10/7, upper 2 + 0.5/(−1 + 0.5/6) = 16/11
    lower, upper = hashin_shtrikman(np.array([0.5]), 1.0, 2.0)
    assert lower[0] == pytest.approx(10 / 7) and upper[0] == pytest.approx(16 / 11)
    lower, upper = hashin_shtrikman(np.array([0.0, 1.0]), 0.026, 1.4)
    np.testing.assert_allclose(lower, [1.4, 0.026])  # one phase alone: both bounds are its conductivity
    np.testing.assert_allclose(upper, [1.4, 0.026])
    phi = np.linspace(0.01, 0.99, 50)
    lower, upper = hashin_shtrikman(phi, 0.026, 1.4)
    assert np.all(lower <= upper) and np.all(np.diff(lower) < 0)


def test_ensemble_figures_are_written(tmp_path):
    k = {"sample": [0.0] * 4 + [0.5] * 8, "truth": [0.0] * 2 + [0.25] * 14}
    frame = _frame(np.random.default_rng(4), k=k)
    figure = crossplot_figure(frame, "lab", tmp_path / "cross.png", conductivities=(1.4, 0.026))
    assert figure.path.is_file() and figure.path.read_bytes()[:4] == b"\x89PNG"
    figure = distributions_figure(frame, tmp_path / "dist.png", voxel_sizes={"lab": 2e-6})
    assert figure.path.is_file() and "95% confidence interval" in figure.caption


def test_a_2d_reference_brings_its_own_fraction_uncertainty():
    from reports.study.measures import image_fraction_std

    # independent pixels: the integral range is one pixel, so the std is the binomial sqrt(φ(1 − φ)/area)
    image = (np.random.default_rng(5).random((256, 256)) < 0.3).astype(np.uint8)
    assert image_fraction_std(image, phase=1) == pytest.approx(np.sqrt(0.21 / 256**2), rel=0.05)
    rows = [("img", "stochastic", "reference", None, "fraction", None, 0.30)]
    rows.append(("img", "stochastic", "reference", None, "fraction_std", None, 0.02))
    rng = np.random.default_rng(6)
    for i in range(30):
        rows.append(("img", "stochastic", "sample", i, "fraction", None, 0.33 + 0.01 * rng.standard_normal()))
    frame = pd.DataFrame(
        rows, columns=["reference", "condition", "role", "sample", "metric", "axis", "value"]
    )
    row = summary_frame(frame).set_index("metric").loc["fraction"]
    assert row["truth_mean"] == 0.30 and row["truth_std"] == 0.02
    assert row["truth_ci_low"] == pytest.approx(0.30 - 1.959964 * 0.02)
    # 0.03 above the image with its own σ = 0.02: well within what one 2D image can say (z ≈ 1.5)
    samples = frame.loc[frame["role"] == "sample", "value"].to_numpy()
    z = (samples.mean() - 0.30) / np.sqrt(0.02**2 + samples.var(ddof=1) / 30)
    assert row["pvalue"] == pytest.approx(2 * stats.norm.sf(abs(z))) and row["verdict"] == "agrees"


def test_a_permeability_that_did_not_converge_is_recorded_but_left_out_of_the_statistics():
    from reports.study.tables import _physics_rows

    record = {
        "axes": [
            {"axis": 0, "k": 0.02, "converged": False, "reason": "not converged after 100 steps"},
            {"axis": 1, "k": 0.0, "converged": True, "reason": "no percolating path"},
            {"axis": 2, "k": 0.0, "converged": False, "reason": "the phase does not occur"},
        ]
    }
    rows = {
        (m, a): v for m, a, v in _physics_rows("permeability", record, {"axes": [{"axis": 0, "k": 0.04}]})
    }
    assert rows[("permeability_converged", 0)] == 0.0 and np.isnan(rows[("permeability", 0)])
    assert np.isnan(rows[("permeability_ratio", 0)])
    # no flow path is a measurement: k = 0, whether the solver ran or the phase is absent
    assert rows[("permeability", 1)] == 0.0 and rows[("permeability_converged", 1)] == 1.0
    assert rows[("permeability", 2)] == 0.0 and rows[("permeability_converged", 2)] == 1.0
