"""Figures of a study's ensembles: samples against the pieces of the 3D truth.

- ``crossplot-<reference>.png``: effective conductivity κ against the phase fraction φ, with the
  Hashin–Shtrikman bounds, and ln k against φ, for every truth piece and sample (samples without a flow path are
  counted in the legend and marked on the lower edge, not hidden);
- ``distributions.png``: for each fidelity measure and property, the samples' distribution beside the truth's
  (box: quartiles; whiskers: 1.5 IQR; the dot and bar: mean and its 95% t interval).

Lengths are in µm when the reference's voxel size is known, else in voxels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from reports.figures import Figure, _pyplot, _save
from reports.statistics import summarize

__all__ = ["crossplot_figure", "distributions_figure", "hashin_shtrikman"]

_TRUTH = "#7f7f7f"
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def hashin_shtrikman(fraction, k_phase: float, k_other: float) -> tuple[np.ndarray, np.ndarray]:
    """Hashin–Shtrikman bounds (lower, upper) on the conductivity of an isotropic two-phase medium.

    ``fraction`` is the volume fraction of the phase of conductivity ``k_phase``; the other phase has
    ``k_other``. Hashin & Shtrikman (1962): with k1 ≤ k2 and fractions f1, f2,
    lower = k1 + f2 / (1/(k2 − k1) + f1/(3 k1)), upper = k2 + f1 / (1/(k1 − k2) + f2/(3 k2)).
    """
    f = np.asarray(fraction, dtype=float)
    (k1, f1), (k2, f2) = sorted(((k_phase, f), (k_other, 1.0 - f)), key=lambda item: item[0])
    if k1 == k2:
        return np.full_like(f, k1), np.full_like(f, k1)
    lower = k1 + f2 / (1.0 / (k2 - k1) + f1 / (3.0 * k1))
    upper = k2 + f1 / (1.0 / (k1 - k2) + f2 / (3.0 * k2))
    return lower, upper


def _per_item(frame, role: str, metric: str, axis: int | None = None) -> dict[int, float]:
    rows = frame[(frame["role"] == role) & (frame["metric"] == metric)]
    if axis is not None:
        rows = rows[rows["axis"] == axis]
    return {int(s): float(v) for s, v in zip(rows["sample"], rows["value"], strict=True)}


def crossplot_figure(
    frame, reference: str, path: Path, *, conductivities: tuple[float, float] | None, axis: int = 0
) -> Figure | None:
    """κ–φ and k–φ crossplots of one reference's truth pieces and samples (all its conditions)."""
    frame = frame[frame["reference"] == reference]
    has_k = (frame["metric"] == "conductivity").any()
    has_perm = (frame["metric"] == "permeability").any()
    if not (has_k or has_perm):
        return None
    plt = _pyplot()
    panels = [m for m, present in (("conductivity", has_k), ("permeability", has_perm)) if present]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.4), squeeze=False)
    groups = [("truth", "truth pieces", _TRUTH, None)]
    for i, condition in enumerate(frame["condition"].drop_duplicates()):
        groups.append(("sample", f"samples, {condition}", _COLOURS[i % len(_COLOURS)], condition))
    fractions_seen = []
    for ax, metric in zip(axes[0], panels, strict=True):
        for role, label, colour, condition in groups:
            part = frame if condition is None else frame[frame["condition"] == condition]
            if condition is None:  # the truth rows repeat for every condition: take one
                part = frame[frame["condition"] == frame["condition"].iloc[0]]
            phi = _per_item(part, role, "fraction")
            values = _per_item(part, role, metric, axis)
            pairs = [(phi[s], v) for s, v in values.items() if s in phi and math.isfinite(v)]
            if not pairs:
                continue
            x, y = np.array(pairs).T
            fractions_seen += list(x)
            if metric == "permeability":
                flow = y > 0
                ax.scatter(
                    x[flow],
                    np.log(y[flow]),
                    s=16,
                    color=colour,
                    alpha=0.75,
                    label=f"{label} (n={flow.sum()})",
                )
                if (~flow).any():
                    ax.scatter(
                        x[~flow],
                        np.zeros((~flow).sum()),
                        s=22,
                        marker="v",
                        facecolors="none",
                        edgecolors=colour,
                        transform=ax.get_xaxis_transform(),
                        clip_on=False,
                        label=f"{label}: no flow path (n={(~flow).sum()})",
                    )
            else:
                ax.scatter(x, y, s=16, color=colour, alpha=0.75, label=f"{label} (n={len(x)})")
        ax.set_xlabel("phase fraction φ")
        if metric == "conductivity":
            ax.set_ylabel("κ_eff (W/(m·K))")
            ax.set_title(f"conductivity along axis {axis}")
            if conductivities is not None and fractions_seen:
                lo, hi = min(fractions_seen), max(fractions_seen)
                pad = 0.1 * (hi - lo) + 0.005
                grid = np.linspace(max(lo - pad, 0.0), min(hi + pad, 1.0), 100)
                lower, upper = hashin_shtrikman(grid, conductivities[1], conductivities[0])
                ax.plot(grid, lower, "k--", lw=1, label="Hashin–Shtrikman bounds")
                ax.plot(grid, upper, "k--", lw=1)
        else:
            ax.set_ylabel("ln k (k in voxel²)")
            ax.set_title(f"permeability along axis {axis}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
        else:  # every value was left out (no converged solver result): say so in the panel
            ax.text(0.5, 0.5, "no converged value", transform=ax.transAxes, ha="center", va="center")
    fig.suptitle(reference)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "ensembles",
        f"{reference}: properties against phase fraction",
        "Each point is one truth piece (grey) or one sample (colour), all of the samples' size. κ: effective "
        "conductivity with the Hashin–Shtrikman bounds for the two conductivities (dashed). ln k: permeability "
        "of the pieces and samples with a flow path; those without one are marked ▽ on the lower edge and "
        "counted in the legend.",
    )


_DISTRIBUTED = (
    ("fraction", None, "phase fraction φ", 1.0, ""),
    ("s2_rmse", None, "S2 RMSE against the truth", 1.0, ""),
    ("lineal_path_rmse", None, "L RMSE against the truth", 1.0, ""),
    ("specific_surface", None, "specific surface", None, "1/len"),
    ("mean_chord_length", 0, "mean chord length, axis 0", None, "len"),
    ("conductivity", 0, "κ_eff, axis 0 (W/(m·K))", 1.0, ""),
    ("permeability", 0, "ln k, axis 0 (k in voxel²; flow only)", 1.0, "log"),
)


def distributions_figure(frame, path: Path, *, voxel_sizes: Mapping[str, float | None]) -> Figure | None:
    """Box plots of each measure: samples of every run against its reference's truth pieces."""
    runs = list(frame[["reference", "condition"]].drop_duplicates().itertuples(index=False, name=None))
    metrics = [m for m in _DISTRIBUTED if (frame["metric"] == m[0]).any()]
    if not runs or not metrics:
        return None
    plt = _pyplot()
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols, 3.6 * nrows), squeeze=False)
    # lengths in µm only when every reference shares one voxel size, so that a panel has one unit
    shared = {voxel_sizes.get(reference) for reference, _ in runs}
    voxel = shared.pop() if len(shared) == 1 else None
    scale_of = {"len": (voxel * 1e6, "µm"), "1/len": (1.0 / (voxel * 1e6), "1/µm")} if voxel else {}
    for ax, (metric, axis, title, _, unit) in zip(axes.flat, metrics, strict=False):
        data, labels, colours = [], [], []
        scale, unit_name = scale_of.get(unit, (1.0, "voxels" if unit == "len" else "1/voxel"))
        for reference, condition in runs:
            run = frame[(frame["reference"] == reference) & (frame["condition"] == condition)]
            for role, colour in (("truth", _TRUTH), ("sample", "#1f77b4")):
                if role == "truth" and (reference, condition) != next(r for r in runs if r[0] == reference):
                    continue  # one truth box per reference
                rows = run[(run["role"] == role) & (run["metric"] == metric)]
                if axis is not None:
                    rows = rows[rows["axis"] == axis]
                values = rows["value"].astype(float).to_numpy()
                values = values[np.isfinite(values)]
                if unit == "log":
                    values = np.log(values[values > 0])
                if not values.size:
                    continue
                data.append(values * scale)
                labels.append(f"{reference}\n{'truth' if role == 'truth' else condition}")
                colours.append(colour)
        if not data:
            ax.set_visible(False)
            continue
        boxes = ax.boxplot(data, patch_artist=True, widths=0.55, showfliers=True)
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.35)
        for i, values in enumerate(data, start=1):
            s = summarize(values)
            if s.n >= 2:
                ax.errorbar(
                    i, s.mean, yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]], fmt="o", color="k", ms=3
                )
        ax.set_xticks(range(1, len(data) + 1), labels, fontsize=7.5)
        suffix = {"len": f" ({unit_name})", "1/len": f" ({unit_name})"}.get(unit, "")
        ax.set_title(title + suffix, fontsize=10)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "ensembles",
        "Distributions: samples against the truth",
        "Grey: pieces of the 3D truth of the samples' size; blue: samples. Boxes span the quartiles, whiskers "
        "1.5 times the interquartile range, circles beyond them are single values; the black dot and bar are "
        "the mean and its 95% confidence interval (Student's t). ln k counts only pieces and samples with a "
        "flow path.",
    )
