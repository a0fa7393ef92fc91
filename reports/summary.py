"""Ensemble summaries of a study: each metric of the samples beside the truth's own spread (``summary.csv``).

From the tidy ``metrics.csv`` table (:func:`reports.study.metrics_frame`), one row per reference × condition ×
metric × axis with the samples' n, mean, standard deviation and 95% confidence interval of the mean (Student's
t, exact for normal values), the same for the pieces of the 3D truth (:mod:`reports.truth`), and a verdict of
agreement between the two distributions (:func:`reports.statistics.agreement`: Welch's two-sided test of the
means at 5%, with the Kolmogorov–Smirnov test as a second opinion in ``ks_pvalue``).

Permeability is bimodal near percolation (a sample has a flow path or not), so it is summarised as two
metrics: ``percolation_probability`` (the fraction of samples and axes with flow; exact Clopper–Pearson
interval; Fisher's exact test against the truth) and ``log_permeability`` (ln k of those with flow, k in
voxel²). A 2D reference has no pieces: its fraction's own uncertainty, sqrt(φ(1 − φ)·A/area) with the
integral range A of its S2 (Kanit et al. 2003, the method behind ImageRep), gives the truth columns of the
fraction rows (a normal 95% interval; truth_n empty) and a z test of the samples' mean against it. Conditions
with a controlled fraction are compared with the uncontrolled truth; their verdict is left
empty (``controlled``), since the fraction moves every other metric.
"""

from __future__ import annotations

import math

import numpy as np

from reports import statistics

__all__ = ["COLUMNS", "SUMMARY_METRICS", "summary_frame"]

SUMMARY_METRICS = (
    "fraction",
    "reference_fraction_error",
    "s2_rmse",
    "lineal_path_rmse",
    "specific_surface",
    "mean_chord_length",
    "percolating_fraction",
    "conductivity",
    "percolation_probability",
    "log_permeability",
)
"""The metrics of ``summary.csv``, in its order."""

COLUMNS = [
    "reference",
    "condition",
    "metric",
    "axis",
    "unit",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "truth_n",
    "truth_mean",
    "truth_std",
    "truth_ci_low",
    "truth_ci_high",
    "pvalue",
    "ks_pvalue",
    "verdict",
    "method",
]

_UNITS = {"percolation_probability": "1", "log_permeability": "ln(voxel²)"}  # beside metrics.csv's units


def _unit(metric: str) -> str:
    from reports.study.tables import METRIC_UNITS

    return _UNITS.get(metric) or METRIC_UNITS[metric]


def _values(frame, role: str, metric: str, axis) -> np.ndarray:
    rows = frame[(frame["role"] == role)]
    if metric in ("percolation_probability", "log_permeability"):
        rows = rows[rows["metric"] == "permeability"]
    else:
        rows = rows[rows["metric"] == metric]
    rows = rows[rows["axis"].isna()] if axis is None else rows[rows["axis"] == axis]
    values = rows["value"].astype(float).to_numpy()
    values = values[np.isfinite(values)]
    if metric == "percolation_probability":
        return (values > 0).astype(float)
    if metric == "log_permeability":
        return np.log(values[values > 0])
    return values


def _axes(frame, metric: str) -> list:
    name = "permeability" if metric in ("percolation_probability", "log_permeability") else metric
    axes = frame.loc[frame["metric"] == name, "axis"]
    found = sorted({int(a) for a in axes.dropna()})
    return found if found else ([None] if (frame["metric"] == name).any() else [])


def _row(metric: str, samples: np.ndarray, truth: np.ndarray) -> dict:
    if metric == "percolation_probability":
        s = statistics.proportion(int(samples.sum()), int(samples.size))
        t = statistics.proportion(int(truth.sum()), int(truth.size)) if truth.size else None
        row = {"n": s.n, "mean": s.p, "std": math.nan, "ci_low": s.ci_low, "ci_high": s.ci_high}
        row["method"] = "Clopper-Pearson; Fisher exact"
        if t is not None:
            row.update(truth_n=t.n, truth_mean=t.p, truth_ci_low=t.ci_low, truth_ci_high=t.ci_high)
            if s.n and t.n:
                test = statistics.binomial_agreement(int(samples.sum()), s.n, int(truth.sum()), t.n)
                row.update(pvalue=test.pvalue, verdict=test.verdict)
        return row
    s = statistics.summarize(samples)
    row = {"n": s.n, "mean": s.mean, "std": s.std, "ci_low": s.ci_low, "ci_high": s.ci_high}
    row["method"] = "t interval; Welch t, KS"
    if truth.size:
        t = statistics.summarize(truth)
        row.update(
            truth_n=t.n, truth_mean=t.mean, truth_std=t.std, truth_ci_low=t.ci_low, truth_ci_high=t.ci_high
        )
        test = statistics.agreement(samples, truth)
        row.update(pvalue=test.pvalue, ks_pvalue=test.ks_pvalue, verdict=test.verdict)
    return row


def _image_spread(run, metric: str) -> tuple[float, float] | None:
    """(fraction, std) of a 2D reference's own fraction, for the fraction rows; None otherwise."""
    if metric not in ("fraction", "reference_fraction_error"):
        return None
    reference = run[run["role"] == "reference"]
    std = reference.loc[reference["metric"] == "fraction_std", "value"].astype(float)
    fraction = reference.loc[reference["metric"] == "fraction", "value"].astype(float)
    if std.empty or fraction.empty or not np.isfinite(std.iloc[0]):
        return None
    return (float(fraction.iloc[0]) if metric == "fraction" else 0.0), float(std.iloc[0])


def _against_image(samples: np.ndarray, mean: float, std: float) -> dict:
    """Truth columns from a 2D image's own uncertainty, and a z test of the samples' mean against it."""
    from scipy import stats

    s = statistics.summarize(samples)
    spread = math.sqrt(std**2 + (s.std**2 / s.n if s.n > 1 else 0.0))
    z = (s.mean - mean) / spread if spread > 0 else math.inf
    pvalue = float(2 * stats.norm.sf(abs(z)))
    half = float(stats.norm.ppf(0.975)) * std
    return {
        "truth_mean": mean,
        "truth_std": std,
        "truth_ci_low": mean - half,
        "truth_ci_high": mean + half,
        "pvalue": pvalue,
        "verdict": "agrees" if pvalue >= 0.05 else "differs",
        "method": "t interval; the image's own spread from its integral range (Kanit et al. 2003), z test",
    }


def summary_frame(metrics):
    """The ``summary.csv`` table (columns :data:`COLUMNS`) from a study's ``metrics.csv`` frame.

    Truth statistics come from the rows of role ``truth`` (pieces of the 3D truth at the samples' size); a
    reference without them (a 2D image) has empty truth columns and no verdict.
    """
    import pandas as pd

    rows = []
    for (reference, condition), run in metrics.groupby(["reference", "condition"], sort=False):
        controlled = condition != "stochastic"
        for metric in SUMMARY_METRICS:
            for axis in _axes(run, metric):
                samples = _values(run, "sample", metric, axis)
                if not samples.size:
                    continue
                truth = _values(run, "truth", metric, axis)
                image = _image_spread(run, metric) if not truth.size else None
                row = {
                    "reference": reference,
                    "condition": condition,
                    "metric": metric,
                    "axis": axis,
                    "unit": _unit(metric),
                    **_row(metric, samples, truth),
                }
                if image is not None:
                    row.update(_against_image(samples, *image))
                if controlled and "verdict" in row:
                    row["verdict"] = "controlled"
                rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["axis"] = frame["axis"].astype("Int64")
    frame["n"] = frame["n"].astype("Int64")
    frame["truth_n"] = frame["truth_n"].astype("Int64")
    return frame
