"""The tables of a study: the tidy ``metrics.csv`` and the timing table (Table 1 of the paper)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .settings import PHYSICS_METRICS, Study

if TYPE_CHECKING:
    from .stages import Run

__all__ = ["METRIC_UNITS", "metrics_frame", "timing_table"]

METRIC_UNITS = {
    "fraction": "1",
    "fraction_error": "1",
    "fraction_std": "1",
    "reference_fraction_error": "1",
    "s2_rmse": "1",
    "lineal_path_rmse": "1",
    "specific_surface": "1/voxel",
    "mean_chord_length": "voxel",
    "percolating_fraction": "1",
    "conductivity": "W/(m·K)",
    "conductivity_ratio": "1",
    "conductivity_converged": "1",
    "permeability_converged": "1",
    "permeability": "voxel²",
    "permeability_m2": "m²",
    "permeability_ratio": "1",
}
"""Metrics of ``metrics.csv`` and their units."""


def _physics_rows(metric: str, record: Mapping | None, reference: Mapping | None) -> list[tuple]:
    """(metric, axis, value) rows of one physics record; ratios against the reference's record."""
    if record is None:
        return []
    value_key = "k_eff" if metric == "conductivity" else "k"
    ref_axes = {row["axis"]: row for row in (reference or {}).get("axes", [])}
    rows = []
    for row in record["axes"]:
        axis, value = row["axis"], row.get(value_key)
        if value is None:  # not computed (see the record's notes)
            continue
        converged = bool(row.get("converged", True)) or row.get("reason") is not None and value == 0.0
        rows.append((f"{metric}_converged", axis, float(converged)))
        if not converged:  # recorded, but not a measurement: left out of every statistic (see the notes)
            value = math.nan
        rows.append((metric, axis, value))
        if row.get("k_m2") is not None:
            rows.append(("permeability_m2", axis, row["k_m2"] if converged else math.nan))
        reference_value = ref_axes.get(axis, {}).get(value_key)
        if reference_value:
            rows.append((f"{metric}_ratio", axis, value / reference_value))
    return rows


def _descriptor_rows(description: Mapping) -> list[tuple]:
    rows = [("fraction", None, description["fraction"])]
    if description.get("fraction_std") is not None:  # a 2D reference's own uncertainty (integral range)
        rows.append(("fraction_std", None, description["fraction_std"]))
    if "specific_surface" in description:
        rows.append(("specific_surface", None, description["specific_surface"]))
    if "chord_length" in description:
        for axis, mean in enumerate(description["chord_length"]["mean"]):
            rows.append(("mean_chord_length", axis, math.nan if mean is None else mean))
    if "connectivity" in description:
        for axis, value in enumerate(description["connectivity"]["percolating_fraction"]):
            rows.append(("percolating_fraction", axis, value))
    return rows


def _measured_rows(record, run: Run, role: str) -> list[tuple]:
    """(metric, axis, value) rows of a sample or truth piece: descriptors, fidelity, physics and its ratios."""
    fraction, *descriptors = _descriptor_rows(record.description)
    rows = [fraction]
    if role == "sample":  # a truth piece has no target
        rows.append(("fraction_error", None, record.fraction - run.target_fraction))
    rows += [
        ("reference_fraction_error", None, record.fidelity["reference_fraction_error"]),
        ("s2_rmse", None, record.fidelity["s2_rmse"]),
        ("lineal_path_rmse", None, record.fidelity["lineal_path_rmse"]),
        *descriptors,
    ]
    for metric in PHYSICS_METRICS:
        rows += _physics_rows(metric, record.physics.get(metric), run.reference_physics.get(metric))
    return rows


def metrics_frame(runs: Sequence[Run], study: Study):
    """The tidy table of ``metrics.csv``: one row per reference × condition × (reference or sample) × metric.

    Columns: ``reference, condition, target_fraction, role`` (``reference``, ``truth`` for a piece of the 3D
    truth of the samples' size, see :mod:`reports.truth`, or ``sample``), ``sample`` (the sample's or piece's
    index; empty for the reference), ``metric, axis`` (empty for scalars), ``value, unit``. The truth's pieces
    are repeated under every condition of their reference. ``fraction_error`` is the sample
    fraction minus the target (η, or the training image's fraction when stochastic);
    ``reference_fraction_error`` is minus the ground truth's (or 2D image's) fraction; ``*_ratio`` are the
    sample's property over the reference's (its central crop of the samples' size).
    """
    import pandas as pd

    rows = []
    for run in runs:
        base = {
            "reference": run.reference.name,
            "condition": run.condition.label,
            "target_fraction": run.target_fraction,
        }
        reference_rows = _descriptor_rows(run.reference_description)
        for metric in PHYSICS_METRICS:
            reference_rows += _physics_rows(metric, run.reference_physics.get(metric), None)
        for metric, axis, value in reference_rows:
            rows.append(
                {**base, "role": "reference", "sample": None, "metric": metric, "axis": axis, "value": value}
            )
        for role, records in (("truth", run.truth_pieces), ("sample", run.samples)):
            for record in records:
                for metric, axis, value in _measured_rows(record, run, role):
                    rows.append(
                        {
                            **base,
                            "role": role,
                            "sample": record.index,
                            "metric": metric,
                            "axis": axis,
                            "value": value,
                        }
                    )
    frame = pd.DataFrame(
        rows,
        columns=["reference", "condition", "target_fraction", "role", "sample", "metric", "axis", "value"],
    )
    frame["sample"] = frame["sample"].astype("Int64")
    frame["axis"] = frame["axis"].astype("Int64")
    frame["unit"] = frame["metric"].map(METRIC_UNITS)
    return frame


def timing_table(runs: Sequence[Run], study: Study) -> list[dict]:
    """One row per reference × condition, like Table 1 of the paper (seconds; cached items keep their time)."""
    rows = []
    for run in runs:
        record = run.model_record
        n = max(len(run.samples), 1)
        row = {
            "reference": run.reference.name,
            "condition": run.condition.label,
            "iterations": record.get("iterations"),
            "seconds_per_iteration": record.get("seconds_per_iteration"),
            "training_s": record.get("seconds"),
            "size": study.size,
            "generation_s": sum(s.seconds_generate for s in run.samples) / n,
            "descriptors_s": sum(s.seconds_evaluate.get("descriptors", 0.0) for s in run.samples) / n,
        }
        for metric in PHYSICS_METRICS:
            if any(metric in s.seconds_evaluate for s in run.samples):
                row[f"{metric}_s"] = sum(s.seconds_evaluate.get(metric, 0.0) for s in run.samples) / n
        rows.append(row)
    return rows
