"""Regression check of a study's fidelity against a stored baseline (``swnn regress``), with known error rates.

A baseline (:func:`write_baseline`) stores, per reference × condition, the per-sample values of each checked
measure of a study folder's ``metrics.csv``, the tolerances and the study's design. :func:`check` compares a
study with it measure by measure:

- ``fraction_error`` (sample fraction − target; worse: its mean moves away from 0), ``conductivity_ratio``
  and ``permeability_ratio`` (ln of the sample's property over the reference's; permeability over the samples
  that percolate; worse: the mean moves away from 0) are tested for a shift either way (two-sided Welch t);
- ``s2_rmse`` and ``lineal_path_rmse`` are tested for growth (one-sided Welch t);
- ``percolation_probability`` (the fraction of samples with a flow path) for a change of proportion (Fisher's
  exact test).

**Rule.** A measure regresses when (a) its difference from the baseline is significant at the Holm-adjusted
level of a family false-alarm probability of :data:`ALPHA` (1%) over all judged measures, (b) the estimated
difference exceeds half its tolerance, and (c) it goes the worse way. Half, not the whole tolerance: a change
of exactly one tolerance then fires with the probability the power states, whereas a threshold at the
tolerance itself would catch it only half of the time; a significant but small change (other hardware,
another training run) stays below it.

**Power.** For each measure, the probability that the rule fires when the measure degrades by one tolerance
is computed from the baseline's spread and both sample counts, at the Bonferroni level ALPHA/m (Holm's power is
at least that). A measure whose power is under :data:`POWER` (90%) is reported as *not judged, power X%* and
left out of the family; nothing is passed silently. Measures leave one at a time, the least powerful first, with
the level recomputed for those left, so every measure with that power at the family's level is judged. More
samples, not wider tolerances, raise it.

A study is *comparable* with a baseline when it has the same runs (reference × condition), the same checked
measures, the same sample side in voxels and the same arithmetic precision of training and generation; the
number of samples may differ (the power says what it buys), and so may the code version and the training
settings (that is what is checked). :func:`check` raises :class:`NotComparable` otherwise (``swnn regress``
exits with status 4). Given a folder of baselines, it compares with the one of the study's precision
(:func:`select_baseline`).

Tolerances (:data:`TOLERANCES`, stored in each baseline): ``fraction_error`` 0.01, ``s2_rmse`` 0.005,
``lineal_path_rmse`` 0.01, ``conductivity_ratio`` 0.10 and ``permeability_ratio`` 0.25 in ln (10% and 28%),
``percolation_probability`` 0.20.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reports import statistics

__all__ = [
    "ALPHA",
    "BASELINE_FORMAT",
    "POWER",
    "TOLERANCES",
    "Change",
    "NotComparable",
    "RegressionReport",
    "check",
    "measure_values",
    "planned_power",
    "select_baseline",
    "write_baseline",
]

BASELINE_FORMAT = "swnn-regress-baseline/2"

ALPHA = 0.01
"""Family false-alarm probability of a check on an unchanged code (Holm over the judged measures)."""

POWER = 0.90
"""Smallest probability of catching a one-tolerance degradation for a measure to be judged."""

TOLERANCES: dict[str, float] = {
    "fraction_error": 0.01,
    "s2_rmse": 0.005,
    "lineal_path_rmse": 0.01,
    "conductivity_ratio": 0.10,
    "permeability_ratio": 0.25,
    "percolation_probability": 0.20,
}
"""The change of each measure that counts as a degradation (ratios: of ln ratio); see the module docstring."""

_KIND = {
    "fraction_error": "shift",
    "s2_rmse": "growth",
    "lineal_path_rmse": "growth",
    "conductivity_ratio": "shift",
    "permeability_ratio": "shift",
    "percolation_probability": "proportion",
}


class NotComparable(ValueError):
    """The study and the baseline measure different things (runs, measures or sample side)."""


def _read_metrics(study_dir: Path):
    import pandas as pd

    path = Path(study_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; is {study_dir} a study folder written by `swnn study`?"
        )
    return pd.read_csv(path)


def measure_values(frame) -> dict[str, dict[str, list[float]]]:
    """Per ``"reference / condition"`` and checked measure, the per-sample values that are tested.

    ``fraction_error``, ``s2_rmse``, ``lineal_path_rmse``: one value per sample. ``conductivity_ratio`` and
    ``permeability_ratio``: ln of the ratio, one value per sample and axis of the physics (a permeability of
    zero is left out here and counted by ``percolation_probability``: 1.0 for a sample and axis with flow,
    0.0 without).
    """
    samples = frame[frame["role"] == "sample"]
    out: dict[str, dict[str, list[float]]] = {}
    for (reference, condition), group in samples.groupby(["reference", "condition"], sort=False):
        run = out.setdefault(f"{reference} / {condition}", {})
        for metric in ("fraction_error", "s2_rmse", "lineal_path_rmse"):
            values = group.loc[group["metric"] == metric, "value"].astype(float).to_numpy()
            if values.size:
                run[metric] = [float(v) for v in values]
        ratios = group.loc[group["metric"] == "conductivity_ratio", "value"].astype(float).to_numpy()
        if ratios.size:
            run["conductivity_ratio"] = [math.log(v) for v in ratios if v > 0]
        k = group.loc[group["metric"] == "permeability_ratio", "value"].astype(float).to_numpy()
        if k.size:
            run["permeability_ratio"] = [math.log(v) for v in k if v > 0]
            run["percolation_probability"] = [1.0 if v > 0 else 0.0 for v in k if math.isfinite(v)]
    return out


def planned_power(
    metric: str, baseline: np.ndarray, *, n_study: int, alpha: float, tolerance: float | None = None
) -> float:
    """Probability that the rule catches a one-tolerance degradation of ``metric`` (see the module docstring).

    ``baseline`` holds the baseline's per-sample values; its spread stands for the study's too.
    """
    baseline = np.asarray(baseline, dtype=float)
    tolerance = TOLERANCES[metric] if tolerance is None else tolerance
    n_baseline = int(baseline.size)
    if n_baseline < 2 or n_study < 2:
        return 0.0
    if _KIND[metric] == "proportion":
        return statistics.proportion_power(
            p_baseline=float(baseline.mean()),
            n_study=n_study,
            n_baseline=n_baseline,
            tolerance=tolerance,
            alpha=alpha,
        )
    sigma = float(np.std(baseline, ddof=1))
    if sigma == 0:  # every sample alike: a one-tolerance shift is certain to be seen
        return 1.0
    return statistics.power(
        sigma_study=sigma,
        n_study=n_study,
        sigma_baseline=sigma,
        n_baseline=n_baseline,
        tolerance=tolerance,
        alpha=alpha,
        alternative="greater" if _KIND[metric] == "growth" else "two-sided",
    )


@dataclass(frozen=True)
class Change:
    """One checked measure of one run.

    Attributes
    ----------
    run, metric : str
    baseline, value : float
        Means over samples (NaN when there are none); ln ratios for the ratios.
    n_baseline, n_study : int
    tolerance : float
    power : float
        Probability of catching a one-tolerance degradation at the family's Bonferroni level.
    pvalue : float
        Of the test of a difference (NaN when not judged).
    status : str
        ``ok``, ``regressed``, ``improved`` (significant, beyond half the tolerance, the better way) or
        ``not judged`` (power under :data:`POWER`).
    """

    run: str
    metric: str
    baseline: float
    value: float
    n_baseline: int
    n_study: int
    tolerance: float
    power: float
    pvalue: float = math.nan
    status: str = "ok"

    def line(self) -> str:
        scale = " (ln)" if self.metric.endswith("_ratio") else ""
        text = (
            f"{self.run:<28} {self.metric + scale:<28} {self.baseline:+.4g} (n={self.n_baseline}) -> "
            f"{self.value:+.4g} (n={self.n_study}), tolerance {self.tolerance:g}, power {self.power:.0%}"
        )
        if math.isfinite(self.pvalue):
            text += f", p = {self.pvalue:.2g}"
        return text

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "metric": self.metric,
            "baseline": self.baseline,
            "value": self.value,
            "n_baseline": self.n_baseline,
            "n_study": self.n_study,
            "tolerance": self.tolerance,
            "power": self.power,
            "pvalue": self.pvalue,
            "status": self.status,
        }


@dataclass(frozen=True)
class RegressionReport:
    """The outcome of :func:`check`.

    Attributes
    ----------
    passed : bool
        No judged measure regressed.
    changes : list of Change
    extra : list of str
        Runs of the study that the baseline does not hold (not checked).
    alpha : float
        Family false-alarm probability (Holm).
    """

    passed: bool
    changes: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    study: str = ""
    baseline: str = ""
    alpha: float = ALPHA

    def text(self) -> str:
        """What moved, readable in a terminal."""
        groups = {
            "REGRESSED:": "regressed",
            "improved (significant; consider updating the baseline):": "improved",
            f"not judged (power to catch a one-tolerance degradation under {POWER:.0%}):": "not judged",
        }
        lines = [f"study {self.study} against baseline {self.baseline}"]
        for title, status in groups.items():
            chosen = [c for c in self.changes if c.status == status]
            if chosen:
                lines.append(title)
                lines += [f"  {c.line()}" for c in chosen]
        judged = [c for c in self.changes if c.status != "not judged"]
        if judged:
            lines.append("judged:")
            lines += [f"  {c.line()}" for c in judged if c.status == "ok"]
        if self.extra:
            lines.append(f"not in the baseline (not checked): {', '.join(self.extra)}")
        count = {
            s: sum(c.status == s for c in self.changes) for s in ("regressed", "ok", "improved", "not judged")
        }
        verdict = "FAILED" if not self.passed else "passed"
        lines.append(
            f"{verdict}: {count['regressed']} regressed, {count['ok']} unchanged, {count['improved']} improved, "
            f"{count['not judged']} not judged; family false-alarm probability {self.alpha:.0%} (Holm), "
            f"power ≥ {POWER:.0%} for every judged measure"
        )
        return "\n".join(lines)


def _design(study_dir: Path) -> dict:
    study_json = study_dir / "study.json"
    if not study_json.is_file():
        return {}
    data = json.loads(study_json.read_text())
    settings = data.get("settings", {})
    return {
        "study": data.get("name"),
        "versions": data.get("versions"),
        "device": data.get("device"),
        "size": settings.get("size"),
        "samples": settings.get("samples"),
    }


def write_baseline(
    study_dir: str | os.PathLike,
    path: str | os.PathLike,
    *,
    tolerances: Mapping[str, float] | None = None,
    force: bool = False,
) -> Path:
    """Store the per-sample values of the checked measures of the study in ``study_dir`` as a baseline."""
    from swnn.io import atomic_write

    study_dir, path = Path(study_dir), Path(path)
    values = measure_values(_read_metrics(study_dir))
    baseline = {
        "format": BASELINE_FORMAT,
        **_design(study_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "alpha": ALPHA,
        "power": POWER,
        "tolerances": dict(tolerances or TOLERANCES),
        "runs": values,
    }
    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(baseline, indent=1) + "\n")
    return path


def _read_baseline(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"baseline {path} does not exist; write one with write_baseline")
    try:
        baseline = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"baseline {path} is not valid JSON ({exc})") from None
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        found = baseline.get("format") if isinstance(baseline, dict) else None
        raise NotComparable(
            f"baseline {path} is not a {BASELINE_FORMAT} file (found {found!r}); rewrite it from a study "
            "with write_baseline"
        )
    return baseline


def _precision_problems(stored: dict, device: dict) -> list[str]:
    """The arithmetic precisions (training, generation) in which the study and the baseline differ.

    A model trained in bfloat16 and one trained in float32 are different reconstructions of the same reference:
    their samples' measures differ by more than the tolerances (the default study's S2 and lineal-path RMSE of
    the sandstone moved by 0.003 and 0.006 between a float32 and a bfloat16 machine), so such a comparison would
    judge the machine, not the code. ``auto`` resolves to bfloat16 only on CPUs with AVX-512 BF16 and on GPUs.
    """
    differ = []
    for key, what in (("training_precision", "training"), ("generation_precision", "generation")):
        ours, theirs = device.get(key), stored.get(key)
        if ours and theirs and ours != theirs:
            differ.append(f"{what} ran in {ours}, the baseline's in {theirs}")
    if not differ:
        return []
    return [
        "; ".join(differ) + " (run the study where the baseline's precision is native, or write a baseline "
        "of this machine with write_baseline)"
    ]


def _comparable(stored: dict, values: dict, design: dict, study_dir: Path, baseline: Path) -> None:
    problems = []
    missing = [run for run in stored["runs"] if run not in values]
    if missing:
        problems.append(f"runs of the baseline missing from the study: {', '.join(missing)}")
    for run, measures in stored["runs"].items():
        lacking = [m for m in measures if m not in values.get(run, {})]
        if run in values and lacking:
            problems.append(f"{run}: measures missing from the study: {', '.join(lacking)}")
    if stored.get("size") is not None and design.get("size") is not None and stored["size"] != design["size"]:
        problems.append(f"sample side {design['size']} voxels, the baseline's is {stored['size']}")
    problems += _precision_problems(stored.get("device") or {}, design.get("device") or {})
    if problems:
        raise NotComparable(
            f"study {study_dir} is not comparable with baseline {baseline}: " + "; ".join(problems)
        )


def _precisions(device: dict) -> str:
    return "/".join(str(device.get(k)) for k in ("training_precision", "generation_precision"))


def select_baseline(study_dir: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """The baseline in ``folder`` written from the same study, sample side and arithmetic precision.

    A folder holds one baseline per precision of a study (``reports/baselines`` holds the default study's
    in bfloat16 and in float32), so that a study gives a verdict on any machine.

    Raises
    ------
    NotComparable
        When no baseline in the folder, or more than one, matches the study.
    """
    study_dir, folder = Path(study_dir), Path(folder)
    design = _design(study_dir)
    ours = design.get("device") or {}
    found, matches = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(stored, dict) or stored.get("format") != BASELINE_FORMAT:
            continue
        device = stored.get("device") or {}
        found.append(
            f"{path.name} (study {stored.get('study')!r}, side {stored.get('size')}, {_precisions(device)})"
        )
        same = all(
            design.get(key) is None or stored.get(key) is None or design[key] == stored[key]
            for key in ("study", "size")
        ) and not _precision_problems(device, ours)
        if same:
            matches.append(path)
    if len(matches) == 1:
        return matches[0]
    wanted = (
        f"study {design.get('study')!r}, side {design.get('size')}, precision {_precisions(ours)} "
        "(training/generation)"
    )
    if not matches:
        held = "; ".join(found) if found else f"no {BASELINE_FORMAT} files"
        raise NotComparable(f"no baseline in {folder} matches {wanted}; it holds: {held}")
    raise NotComparable(
        f"{len(matches)} baselines in {folder} match {wanted}: {', '.join(p.name for p in matches)}; "
        "pass one file as baseline"
    )


def check(study_dir: str | os.PathLike, baseline: str | os.PathLike) -> RegressionReport:
    """Compare the study in ``study_dir`` with a baseline (see the module docstring for the rule).

    ``baseline`` is a baseline file, or a folder of them from which :func:`select_baseline` takes the one of
    the study's name, sample side and arithmetic precision.

    Raises
    ------
    NotComparable
        When the study and the baseline do not hold the same runs, measures and sample side, or ran in
        different arithmetic precisions (or no baseline of the folder matches).
    """
    study_dir, baseline_path = Path(study_dir), Path(baseline)
    if baseline_path.is_dir():
        baseline_path = select_baseline(study_dir, baseline_path)
    values = measure_values(_read_metrics(study_dir))
    stored = _read_baseline(baseline_path)
    _comparable(stored, values, _design(study_dir), study_dir, baseline_path)
    tolerances = {**TOLERANCES, **stored.get("tolerances", {})}
    alpha = float(stored.get("alpha", ALPHA))
    items = [
        (run, metric, np.asarray(stored_values, dtype=float), np.asarray(values[run][metric], dtype=float))
        for run, measures in stored["runs"].items()
        for metric, stored_values in measures.items()
    ]
    # the family: measures with enough power at the Bonferroni level of the family they form. The least powerful
    # measure leaves first, one at a time, since each departure raises the level and the power of those left
    judged = list(range(len(items)))
    powers: dict[int, float] = {}
    while True:
        m = max(len(judged), 1)
        for i in judged:
            powers[i] = planned_power(
                items[i][1],
                items[i][2],
                n_study=items[i][3].size,
                alpha=alpha / m,
                tolerance=tolerances[items[i][1]],
            )
        weakest = min(judged, key=powers.__getitem__, default=None)
        if weakest is None or powers[weakest] >= POWER:
            break
        judged.remove(weakest)  # its power stays the one it left with, under POWER
    tests = {}
    for i in judged:
        run, metric, base, now = items[i]
        tolerance = tolerances[metric]
        if _KIND[metric] == "proportion":
            tests[i] = statistics.proportion_test(
                int(round(now.sum())), now.size, int(round(base.sum())), base.size, tolerance=tolerance
            )
        elif _KIND[metric] == "growth" and now.mean() < base.mean():
            # the one-sided test in the direction the estimate points: an improvement is tested as such; the
            # false-alarm rate of "regressed" is unchanged, since p < 1/2 already needs a larger mean
            tests[i] = statistics.shift_test(base, now, tolerance=tolerance, alternative="greater")
        else:
            tests[i] = statistics.shift_test(
                now,
                base,
                tolerance=tolerance,
                alternative="greater" if _KIND[metric] == "growth" else "two-sided",
            )
    reject, _ = statistics.holm([tests[i].pvalue for i in judged], alpha=alpha) if judged else ([], [])
    rejected = {i for i, r in zip(judged, reject, strict=True) if r}
    changes = []
    for i, (run, metric, base, now) in enumerate(items):
        tolerance = tolerances[metric]
        mean_base = float(base.mean()) if base.size else math.nan
        mean_now = float(now.mean()) if now.size else math.nan
        if i not in tests:
            status, pvalue = "not judged", math.nan
        else:
            pvalue = float(tests[i].pvalue)
            difference = mean_now - mean_base
            status = "ok"
            if i in rejected and abs(difference) > tolerance / 2:
                if _KIND[metric] == "shift":  # away from 0 (the target, or the reference's property)
                    worse = abs(mean_now) > abs(mean_base)
                else:  # an error grows, or flow paths are lost
                    worse = difference > 0 if _KIND[metric] == "growth" else difference < 0
                status = "regressed" if worse else "improved"
        changes.append(
            Change(
                run, metric, mean_base, mean_now, base.size, now.size, tolerance, powers[i], pvalue, status
            )
        )
    extra = [run for run in values if run not in stored["runs"]]
    passed = not any(c.status == "regressed" for c in changes)
    return RegressionReport(
        passed, changes, extra, study=str(study_dir), baseline=str(baseline_path), alpha=alpha
    )


def self_power(frame, *, alpha: float = ALPHA, target: float = POWER) -> list[dict]:
    """For each run and measure of a study, the power of a rerun of the same size against it as a baseline.

    Also the number of samples per run that would reach ``target`` (None when unreachable). What a study
    stores in ``study.json``, so that its design can be judged before a regression check is ever run.
    """
    values = measure_values(frame)
    items = [
        (run, metric, np.asarray(v, dtype=float)) for run, ms in values.items() for metric, v in ms.items()
    ]
    m = max(len(items), 1)
    rows = []
    for run, metric, base in items:
        power = planned_power(metric, base, n_study=base.size, alpha=alpha / m)
        needed = None
        if base.size >= 2 and _KIND[metric] != "proportion" and np.std(base) == 0:
            needed = 2  # the smallest run that has a spread
        elif base.size >= 2 and _KIND[metric] != "proportion":
            needed = statistics.samples_for_power(
                sigma=float(np.std(base, ddof=1)),
                n_baseline=None,
                tolerance=TOLERANCES[metric],
                alpha=alpha / m,
                alternative="greater" if _KIND[metric] == "growth" else "two-sided",
                target=target,
            )
        rows.append(
            {"run": run, "metric": metric, "n": int(base.size), "power": power, "samples_needed": needed}
        )
    return rows
