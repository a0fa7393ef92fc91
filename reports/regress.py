"""Regression check of a study's fidelity against a stored baseline (``swnn regress``).

From a study folder's ``metrics.csv``, :func:`fidelity_summary` takes, per reference × condition, the mean over
samples of:

- ``fraction_error``: |sample fraction − target| (the target is η, or the training image's fraction);
- ``s2_rmse`` and ``lineal_path_rmse``: against the 3D ground truth (or the 2D image);
- ``conductivity_ratio`` and ``permeability_ratio``: sample property / reference property (over the axes).

:func:`check` compares them with a baseline written by :func:`write_baseline`. An error measure regresses when
it grows by more than its tolerance; a ratio regresses when its distance from 1, measured as |ln ratio|, grows
by more than its tolerance. A measure that improves by more than the tolerance is reported, not failed (time to
update the baseline). A run or measure of the baseline that the study lacks, or a NaN, is a regression.

A ratio is judged only when it is steadier than its tolerance. The value checked is the mean of the samples,
whose own uncertainty is about half the spread between them; where the samples of the study or of the baseline
spread by more than twice the tolerance in |ln(largest/smallest)| (a sample with no flow path beside one with
flow spreads infinitely), a change of one tolerance cannot be told from chance, and the ratio is reported as
*unsteady*, not failed. This is the permeability of samples near their percolation threshold: the default
study's sandstone (φ ≈ 0.20, 64³ samples) gave permeability ratios {0.36, 0}, {0, 0} and {0.033, 0.023} in
three runs of nearly the same code. The error measures (fractions, RMSEs) vary far less between samples
and are always judged.

Default tolerances (:data:`TOLERANCES`), stored in each baseline so that they travel with it. They are meant to
pass a rerun of the same study on another machine (fp32/bf16, thread count and BLAS change the trained weights a
little) and to fail a change that makes the reconstruction visibly worse; for the default study (64³ samples,
two per model) they are about three times the spread between its samples:

- ``fraction_error`` 0.01 (a 64³ sample's fraction varies by about ±0.005 with its structure);
- ``s2_rmse`` 0.005 and ``lineal_path_rmse`` 0.01 (the README's fidelity is S2 RMSE ≈ 0.01 at 128³);
- ``conductivity_ratio`` 0.10 and ``permeability_ratio`` 0.25 in |ln ratio| (10 % and 28 %; permeability
  varies roughly as the cube of the open fraction, so it moves most between samples).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BASELINE_FORMAT",
    "TOLERANCES",
    "Change",
    "RegressionReport",
    "check",
    "fidelity_summary",
    "sample_spread",
    "write_baseline",
]

BASELINE_FORMAT = "swnn-regress-baseline/1"

TOLERANCES: dict[str, float] = {
    "fraction_error": 0.01,
    "s2_rmse": 0.005,
    "lineal_path_rmse": 0.01,
    "conductivity_ratio": 0.10,
    "permeability_ratio": 0.25,
}
"""Allowed growth of each measure (ratios: of |ln ratio|); see the module docstring."""

_RATIOS = ("conductivity_ratio", "permeability_ratio")


def _read_metrics(study_dir: Path):
    import pandas as pd

    path = Path(study_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; is {study_dir} a study folder written by `swnn study`?"
        )
    return pd.read_csv(path)


def _groups(frame):
    samples = frame[frame["role"] == "sample"]
    for (reference, condition), group in samples.groupby(["reference", "condition"], sort=False):
        for metric in TOLERANCES:
            rows = group.loc[group["metric"] == metric, "value"].astype(float)
            if not rows.empty:
                yield f"{reference} / {condition}", metric, rows


def fidelity_summary(frame) -> dict[str, dict[str, float]]:
    """Per ``"reference / condition"``, the mean over samples of the checked measures (see module docstring)."""
    summary: dict[str, dict[str, float]] = {}
    for run, metric, rows in _groups(frame):
        value = float(rows.abs().mean()) if metric == "fraction_error" else float(rows.mean())
        summary.setdefault(run, {})[metric] = value
    return summary


def sample_spread(frame) -> dict[str, dict[str, float]]:
    """Per run and measure, the spread between its samples in the measure's scale (see module docstring)."""
    spreads: dict[str, dict[str, float]] = {}
    for run, metric, rows in _groups(frame):
        values = [float(v) for v in (rows.abs() if metric == "fraction_error" else rows)]
        if metric in _RATIOS:  # spread of ln(ratio); a zero beside a non-zero ratio spreads infinitely
            logs = [math.log(v) if v > 0 else -math.inf for v in values]
            spread = 0.0 if max(logs) == min(logs) else max(logs) - min(logs)
        else:
            spread = max(values) - min(values)
        spreads.setdefault(run, {})[metric] = spread
    return spreads


def _distance(metric: str, value: float) -> float:
    """What must not grow: the value for errors, |ln value| for ratios."""
    if metric in _RATIOS:
        return abs(math.log(value)) if value > 0 else math.inf
    return value


@dataclass(frozen=True)
class Change:
    """One checked measure.

    Attributes
    ----------
    run, metric : str
    baseline, value : float
        ``value`` is NaN when the study lacks the measure.
    tolerance : float
    status : str
        ``ok``, ``regressed``, ``improved``, ``missing`` or ``unsteady`` (a ratio whose samples spread more
        than twice the tolerance, in the study or the baseline: not judged).
    spread : float
        The larger of the study's and the baseline's spread between samples (NaN when unknown).
    """

    run: str
    metric: str
    baseline: float
    value: float
    tolerance: float
    status: str
    spread: float = math.nan

    def line(self) -> str:
        if self.status == "missing":
            return f"{self.run:<28} {self.metric:<20} baseline {self.baseline:.4g}, missing from the study"
        if self.status == "unsteady":
            return (
                f"{self.run:<28} {self.metric:<20} {self.baseline:.4g} -> {self.value:.4g} "
                f"(samples spread {self.spread:.3g}, more than twice the tolerance {self.tolerance:g})"
            )
        scale = "|ln ratio|" if self.metric in _RATIOS else "change"
        delta = _distance(self.metric, self.value) - _distance(self.metric, self.baseline)
        return (
            f"{self.run:<28} {self.metric:<20} {self.baseline:.4g} -> {self.value:.4g} "
            f"({scale} {delta:+.4f}, tolerance {self.tolerance:g})"
        )


@dataclass(frozen=True)
class RegressionReport:
    """The outcome of :func:`check`.

    Attributes
    ----------
    passed : bool
        No measure regressed and none is missing.
    changes : list of Change
    extra : list of str
        Runs of the study that the baseline does not hold (not checked).
    """

    passed: bool
    changes: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    study: str = ""
    baseline: str = ""

    def text(self) -> str:
        """What moved, readable in a terminal."""
        bad = [c for c in self.changes if c.status in ("regressed", "missing")]
        better = [c for c in self.changes if c.status == "improved"]
        unsteady = [c for c in self.changes if c.status == "unsteady"]
        lines = [f"study {self.study} against baseline {self.baseline}"]
        if bad:
            lines.append("REGRESSED:")
            lines += [f"  {c.line()}" for c in bad]
        if better:
            lines.append("improved beyond tolerance (consider updating the baseline):")
            lines += [f"  {c.line()}" for c in better]
        if unsteady:
            lines.append("unsteady, not judged (the samples disagree by more than twice the tolerance):")
            lines += [f"  {c.line()}" for c in unsteady]
        if self.extra:
            lines.append(f"not in the baseline (not checked): {', '.join(self.extra)}")
        ok = sum(c.status == "ok" for c in self.changes)
        verdict = "FAILED" if not self.passed else "passed"
        lines.append(
            f"{verdict}: {len(bad)} regressed or missing, {ok} within tolerance, {len(better)} improved"
            + (f", {len(unsteady)} unsteady" if unsteady else "")
        )
        return "\n".join(lines)


def write_baseline(
    study_dir: str | os.PathLike,
    path: str | os.PathLike,
    *,
    tolerances: Mapping[str, float] | None = None,
    force: bool = False,
) -> Path:
    """Store the fidelity summary of the study in ``study_dir`` as a baseline JSON at ``path``."""
    from swnn.io import atomic_write

    study_dir, path = Path(study_dir), Path(path)
    frame = _read_metrics(study_dir)
    summary = fidelity_summary(frame)
    info = {}
    study_json = study_dir / "study.json"
    if study_json.is_file():
        data = json.loads(study_json.read_text())
        info = {"study": data.get("name"), "versions": data.get("versions"), "device": data.get("device")}
    baseline = {
        "format": BASELINE_FORMAT,
        **info,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tolerances": dict(tolerances or TOLERANCES),
        "runs": summary,
        "spreads": _finite(sample_spread(frame)),
    }
    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(baseline, indent=1) + "\n")
    return path


def _finite(spreads: dict) -> dict:
    """JSON has no infinity: an infinite spread (flow in one sample, none in another) is stored as null."""
    return {
        run: {m: (v if math.isfinite(v) else None) for m, v in measures.items()}
        for run, measures in spreads.items()
    }


def _read_baseline(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"baseline {path} does not exist; write one with --write-baseline")
    try:
        baseline = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"baseline {path} is not valid JSON ({exc})") from None
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        raise ValueError(f"baseline {path} is not a {BASELINE_FORMAT} file")
    return baseline


def check(study_dir: str | os.PathLike, baseline: str | os.PathLike) -> RegressionReport:
    """Compare the study in ``study_dir`` with the baseline file (its tolerances, else :data:`TOLERANCES`)."""
    study_dir, baseline_path = Path(study_dir), Path(baseline)
    stored = _read_baseline(baseline_path)
    frame = _read_metrics(study_dir)
    summary = fidelity_summary(frame)
    spreads = sample_spread(frame)
    stored_spreads = stored.get("spreads", {})  # absent from baselines written before it was stored
    tolerances = {**TOLERANCES, **stored.get("tolerances", {})}
    changes = []
    for run, measures in stored["runs"].items():
        current = summary.get(run, {})
        for metric, base in measures.items():
            tolerance = float(tolerances.get(metric, 0.0))
            value = current.get(metric, math.nan)
            if run not in summary or metric not in current or not math.isfinite(value):
                changes.append(Change(run, metric, base, value, tolerance, "missing"))
                continue
            before = stored_spreads.get(run, {}).get(metric, 0.0)
            spread = max(spreads[run][metric], math.inf if before is None else float(before))
            delta = _distance(metric, value) - _distance(metric, base)
            if metric in _RATIOS and spread > 2 * tolerance:
                status = "unsteady"
            else:
                status = "regressed" if delta > tolerance else "improved" if delta < -tolerance else "ok"
            changes.append(Change(run, metric, base, value, tolerance, status, spread))
    extra = [run for run in summary if run not in stored["runs"]]
    passed = not any(c.status in ("regressed", "missing") for c in changes)
    return RegressionReport(passed, changes, extra, study=str(study_dir), baseline=str(baseline_path))
