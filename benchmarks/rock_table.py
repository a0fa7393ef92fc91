"""The real-rock table of a study: does each run's pore space connect and conduct like the rock's truth pieces?

For every run of a study whose reference has a 3D truth (for example ``reports/studies/berea_rock.toml``), one
row with n samples against the truth's pieces of the same size:

- the fraction of the samples (mean, 95 % t interval) against the training input's (± its own 95 % half-width
  from the integral range) and the truth pieces' mean;
- the percolating fraction of the pore space along the flow axis: samples' mean [95 % CI] against the truth
  pieces' mean (target: within 10 points);
- permeability: the samples' median, with its distribution-free 95 % interval, against the interquartile range
  of the truth pieces' (same solver and boundary for both; target: the interval inside);
- S2 RMSE against the whole 3D truth: mean [95 % CI] (target: at most 0.010, the interval's upper end);
- training time of the run's model.

Usage::

    python -m benchmarks.rock_table out/berea_rock [--axis 0] [--json rows.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from reports.statistics import median_interval, summarize


def rock_rows(folder: Path, *, axis: int = 0) -> list[dict]:
    """One dict per run of the study in ``folder`` with a 3D truth (see the module docstring)."""
    frame = pd.read_csv(folder / "metrics.csv")
    study = json.loads((folder / "study.json").read_text())
    seconds = {m["run"]: m["seconds"] for m in study["timings"]["models"]}
    runs = {(r["reference"], r["condition"]): r for r in study["runs"]}
    rows = []
    for (reference, condition), group in frame.groupby(["reference", "condition"], sort=False):
        truth = group[group["role"] == "truth"]
        if truth.empty:
            continue
        samples = group[group["role"] == "sample"]

        def values(part, metric, along=None):
            chosen = part[part["metric"] == metric]
            if along is not None:
                chosen = chosen[chosen["axis"] == along]
            return chosen["value"].astype(float).to_numpy()

        run = runs[(reference, condition)]
        fraction = summarize(values(samples, "fraction"))
        percolating = summarize(values(samples, "percolating_fraction", axis))
        truth_percolating = float(np.mean(values(truth, "percolating_fraction", axis)))
        k, k_truth = values(samples, "permeability", axis), values(truth, "permeability", axis)
        q25, q75 = (float(q) for q in np.quantile(k_truth, [0.25, 0.75])) if k_truth.size else (np.nan,) * 2
        s2 = summarize(values(samples, "s2_rmse"))
        median = median_interval(k)
        std = run.get("training_fraction_std")
        rows.append(
            {
                "run": f"{reference} / {condition}",
                "n": fraction.n,
                "truth_pieces": int(values(truth, "fraction").size),
                "fraction": [fraction.mean, fraction.ci_low, fraction.ci_high],
                "training_fraction": run.get("training_fraction"),
                "training_fraction_half_width": None if std is None else 1.96 * std,
                "truth_fraction": float(np.mean(values(truth, "fraction"))),
                "percolating": [percolating.mean, percolating.ci_low, percolating.ci_high],
                "truth_percolating": truth_percolating,
                "percolating_within_10_points": bool(
                    truth_percolating - 0.10 <= percolating.ci_low
                    and percolating.ci_high <= truth_percolating + 0.10
                ),
                "k_median": median.median if k.size else None,
                "k_median_ci": [median.ci_low, median.ci_high],
                "k_n": int(k.size),
                "truth_k_iqr": [q25, q75],
                "truth_k_n": int(k_truth.size),
                # NaN ends (too few samples for the interval) compare False: not met
                "k_median_in_iqr": bool(q25 <= median.ci_low and median.ci_high <= q75),
                "s2_rmse": [s2.mean, s2.ci_low, s2.ci_high],
                "s2_at_most_0.010": bool(s2.ci_high <= 0.010),
                "training_s": seconds.get(f"{reference} / {condition}"),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (k in voxel², intervals at 95 %; nan where too few samples give one)."""

    def interval(v, digits=3):
        return f"{v[0]:.{digits}f} [{v[1]:.{digits}f}, {v[2]:.{digits}f}]"

    lines = [
        "| run | n | fraction | percolating (truth) | k median, voxel² (truth IQR) | S2 RMSE | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = "—" if r["k_median"] is None else interval([r["k_median"], *r["k_median_ci"]], 4)
        training = "—" if r["training_s"] is None else f"{r['training_s']:.0f} s"
        lines.append(
            f"| {r['run']} | {r['n']} | {interval(r['fraction'], 4)} (truth {r['truth_fraction']:.4f}) | "
            f"{interval(r['percolating'])} ({r['truth_percolating']:.3f}) | "
            f"{k} ({r['truth_k_iqr'][0]:.4f}–{r['truth_k_iqr'][1]:.4f}) | {interval(r['s2_rmse'], 4)} | "
            f"{training} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a study folder written by `swnn study`")
    parser.add_argument("--axis", type=int, default=0, help="the flow axis of the permeability (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also append the rows to this JSONL file")
    args = parser.parse_args(argv)
    rows = rock_rows(args.study, axis=args.axis)
    print(markdown(rows))
    if args.json is not None:
        with open(args.json, "a") as out:
            for row in rows:
                out.write(json.dumps({"study": str(args.study), **row}, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
