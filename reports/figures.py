"""Figures of a study, as in the SWNN paper (matplotlib, Agg backend, imported when a figure is drawn).

- ``sections-<run>.png``: reference and samples cut in three directions;
- ``curves-<run>.png``: S2(r) and L(r) of reference and samples, with a zoom on r = 0 annotated with fractions;
- ``profile-<run>.png``: for a fraction-profile condition, the fraction along the graded axis against the request;
- ``properties.png``: effective conductivity and permeability per sample against the reference;
- ``fields-<reference>.png``: temperature and velocity-magnitude slices of the reference and a sample;
- ``control.png``: target against achieved fraction;
- ``timings.png``: training, generation and evaluation times (like Table 1 of the paper).

Every function writes one PNG atomically and returns a :class:`Figure`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Figure",
    "control_figure",
    "curves_figure",
    "fields_figure",
    "properties_figure",
    "render_all",
    "profile_figure",
    "sections_figure",
    "timing_figure",
]

DARCY = 9.869233e-13  # m²
_DPI = 110
_SAMPLE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_AXIS_NAMES = ("z", "y", "x")


@dataclass(frozen=True)
class Figure:
    """A written figure.

    Attributes
    ----------
    name : str
        File name inside ``figures/``.
    path : Path
    group : str
        ``sections``, ``curves``, ``properties``, ``fields``, ``control`` or ``timings``.
    title, caption : str
    """

    name: str
    path: Path
    group: str
    title: str
    caption: str


def _row_label(ax, text: str, x: float) -> None:
    """A row's label, rotated, left of the axes at ``x`` (axes fraction)."""
    ax.text(x, 0.5, text, transform=ax.transAxes, rotation=90, va="center", ha="center", fontsize=10.5)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10.5,
            "legend.fontsize": 9,
            "figure.dpi": _DPI,
            "savefig.dpi": _DPI,
        }
    )
    return plt


def _save(fig, path: Path) -> None:
    from swnn.io import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)
    with atomic_write(path, force=True) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())


def _length_unit(voxel_size: float | None) -> tuple[float, str]:
    """Scale from voxels to the plotted unit, and its name."""
    if voxel_size is None:
        return 1.0, "voxels"
    return voxel_size * 1e6, "µm"


def _display(labels: np.ndarray, phase: int, n_phases: int) -> tuple[np.ndarray, dict]:
    if n_phases == 2:
        return (labels == phase).astype(np.uint8), {"cmap": "gray", "vmin": 0, "vmax": 1}
    return labels, {"cmap": "viridis", "vmin": 0, "vmax": n_phases - 1}


def _central_crop(array: np.ndarray, size: int) -> np.ndarray:
    index = tuple(slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in array.shape)
    return array[index]


def _sections(volume: np.ndarray) -> list[tuple[np.ndarray, tuple[str, str]]]:
    """Central sections normal to z, y, x with the names of their (row, column) axes."""
    z, y, x = (n // 2 for n in volume.shape)
    return [(volume[z], ("y", "x")), (volume[:, y], ("z", "x")), (volume[:, :, x], ("z", "y"))]


def sections_figure(run, study, path: Path, *, max_samples: int = 2) -> Figure:
    """Reference and up to ``max_samples`` samples, central sections normal to each axis."""
    plt = _pyplot()
    scale, unit = _length_unit(run.reference.voxel_size)
    samples = run.samples[:max_samples]
    rows = 1 + len(samples)
    fig, axes = plt.subplots(rows, 3, figsize=(9.0, 3.0 * rows + 0.4), squeeze=False)
    phase, n_phases = run.reference.phase, run.n_phases

    def show(ax, image, names, row_label=None):
        shown, style = _display(image, phase, n_phases)
        h, w = image.shape
        ax.imshow(shown, extent=(0, w * scale, h * scale, 0), interpolation="nearest", **style)
        ax.set_xlabel(f"{names[1]} ({unit})")
        ax.set_ylabel(f"{names[0]} ({unit})")
        if row_label:
            _row_label(ax, row_label, -0.42)

    # the reference's central crop of the samples' size: both shown at the same scale
    truth = _central_crop(run.truth, study.size)
    fraction = float(np.mean(run.truth == phase))
    full = "×".join(str(n) for n in run.truth.shape)
    crop = "" if truth.shape == run.truth.shape else f", central {'×'.join(str(n) for n in truth.shape)}"
    if truth.ndim == 3:
        for col, (image, names) in enumerate(_sections(truth)):
            show(
                axes[0, col],
                image,
                names,
                f"reference {full}{crop}\nφ = {fraction:.3f}" if col == 0 else None,
            )
    else:
        show(axes[0, 0], truth, ("y", "x"), f"reference (2D image){crop}\nφ = {fraction:.3f}")
        for col in (1, 2):
            axes[0, col].axis("off")
            axes[0, col].text(
                0.5,
                0.5,
                "2D reference: the target\nof all three directions",
                ha="center",
                va="center",
                transform=axes[0, col].transAxes,
            )
    for row, sample in enumerate(samples, start=1):
        volume = np.load(sample.path, allow_pickle=False)
        label = f"sample {sample.index} {study.size}³\nφ = {sample.fraction:.3f}"
        for col, (image, names) in enumerate(_sections(volume)):
            show(axes[row, col], image, names, label if col == 0 else None)
    for col, name in enumerate(_AXIS_NAMES):
        axes[0, col].set_title(f"normal to {name} (axis {col})")
    shown = "white" if n_phases == 2 else "coloured by label"
    fig.suptitle(f"{run.title}: sections (phase {phase} {shown})", fontsize=12)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "sections",
        f"Sections — {run.title}",
        f"Central sections of the reference (its central crop of the samples' size, so that both are shown at "
        f"the same scale; φ of the whole reference) and of {len(samples)} sample(s), normal to each axis; phase "
        f"{phase} is {shown}. Lengths in {unit}.",
    )


def profile_figure(run, study, path: Path) -> Figure:
    """The fraction along the graded axis of each sample of a fraction-profile condition, against the
    requested line."""
    plt = _pyplot()
    axis, _, ends = str(dict(run.condition.generate)["fraction_profile"]).partition(":")
    axis = int(axis)
    low, high = (float(v) for v in ends.split(".."))
    phase = run.reference.phase
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    profiles = []
    for i, sample in enumerate(run.samples):
        volume = np.load(sample.path, allow_pickle=False) == phase
        profile = np.moveaxis(volume, axis, 0).reshape(volume.shape[axis], -1).mean(axis=1)
        profiles.append(profile)
        colour = _SAMPLE_COLOURS[i % len(_SAMPLE_COLOURS)]
        ax.plot(
            profile,
            color=colour,
            alpha=0.35,
            linewidth=0.8,
            label=f"sample {sample.index}" if i < 4 else None,
        )
    n = len(profiles[0]) if profiles else study.size
    wanted = low + (high - low) * np.arange(n) / max(n - 1, 1)
    if profiles:
        ax.plot(np.mean(profiles, axis=0), color="black", linewidth=1.6, label=f"mean of {len(profiles)}")
    ax.plot(wanted, color="#d62728", linestyle="--", linewidth=1.4, label="requested")
    rmse = float(np.sqrt(np.mean((np.mean(profiles, axis=0) - wanted) ** 2))) if profiles else float("nan")
    ax.set_xlabel(f"index along axis {axis} ({_AXIS_NAMES[axis]}), voxels")
    ax.set_ylabel(f"fraction of phase {phase} per slice")
    ax.set_title(f"{run.title}: fraction profile (RMSE of the mean {rmse:.4f})", fontsize=11)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "control",
        f"Fraction profile — {run.title}",
        f"Fraction of phase {phase} in each slice normal to axis {axis} of every sample (thin lines), their mean "
        f"(black) and the requested linear profile {low:g} → {high:g} (dashed); RMSE of the mean against the "
        f"request {rmse:.4f}.",
    )


def _curve_panel(ax, run, key: str, symbol: str, scale: float, unit: str) -> None:
    reference = run.reference_description[key]
    r = np.asarray(reference["r"], dtype=float) * scale
    ax.plot(r, reference["mean"], color="black", lw=2.4, label="reference", zorder=3)
    few = len(run.samples) <= len(_SAMPLE_COLOURS)  # one legend entry per colour; beyond, one for all
    for i, sample in enumerate(run.samples):
        ax.plot(
            np.asarray(sample.description[key]["r"], dtype=float) * scale,
            sample.description[key]["mean"],
            color=_SAMPLE_COLOURS[i % len(_SAMPLE_COLOURS)],
            lw=1.3,
            alpha=0.85,
            label=f"sample {sample.index}"
            if few
            else (f"{len(run.samples)} samples" if i == 0 else "_nolegend_"),
        )
    ax.set_xlabel(f"r ({unit})")
    ax.set_ylabel(f"{symbol}(r)")
    ax.set_xlim(0, r[-1])
    ax.grid(alpha=0.3)
    # zoom on r = 0, where S2(0) = L(0) = φ, in the upper right: above the curves' tails (r > r_max / 3)
    curves = [reference["mean"]] + [s.description[key]["mean"] for s in run.samples]
    top = max(max(c) for c in curves)
    tail = max(max(c[len(c) // 3 :]) for c in curves)
    bottom_of_inset = 0.5
    top = max(top * 1.04, (tail / top + 0.08) * top / bottom_of_inset)
    ax.set_ylim(0, top)
    inset = ax.inset_axes([0.47, bottom_of_inset, 0.5, 0.46])
    lags = 3
    inset.plot(r[:lags], reference["mean"][:lags], "o-", color="black", lw=2, ms=4)
    for i, sample in enumerate(run.samples):
        colour = _SAMPLE_COLOURS[i % len(_SAMPLE_COLOURS)]
        inset.plot(r[:lags], sample.description[key]["mean"][:lags], "s-", color=colour, lw=1, ms=3)
    values = np.concatenate([np.asarray(c[:lags], dtype=float) for c in curves])
    low, high = float(values.min()), float(values.max())
    span = max(high - low, 0.01)
    inset.set_xlim(-0.15 * r[1], r[lags - 1] * 1.1)
    inset.set_ylim(low - 0.08 * span, low + span / 0.55)  # the data in the lower 55 %, the text above
    inset.set_xlabel(f"r ({unit})", fontsize=8, labelpad=1)
    inset.tick_params(labelsize=8)
    inset.grid(alpha=0.3)
    fractions = [s.fraction for s in run.samples]
    text = f"at r = 0: reference φ = {run.reference_description['fraction']:.4f}"
    text += f"\nsamples φ = {np.mean(fractions):.4f}"
    text += f" ± {np.std(fractions):.4f}" if len(fractions) > 1 else ""
    if run.condition.controlled:
        text += f"\ntarget η = {run.target_fraction:.4f}"
    inset.text(0.04, 0.96, text, transform=inset.transAxes, va="top", ha="left", fontsize=8, linespacing=1.3)


def curves_figure(run, study, path: Path) -> Figure:
    """S2(r) and L(r) of the reference and the samples, mean over axes, with a zoom on r = 0."""
    plt = _pyplot()
    scale, unit = _length_unit(run.reference.voxel_size)
    # constrained layout: tight_layout cannot place the zoom insets and gives up on some runs
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    _curve_panel(axes[0], run, "s2", "S₂", scale, unit)
    _curve_panel(axes[1], run, "lineal_path", "L", scale, unit)
    s2 = np.mean([s.fidelity["s2_rmse"] for s in run.samples])
    lp = np.mean([s.fidelity["lineal_path_rmse"] for s in run.samples])
    axes[0].set_title(f"two-point probability S₂ (RMSE {s2:.4f})")
    axes[1].set_title(f"lineal path L (RMSE {lp:.4f})")
    axes[0].legend(loc="lower left")
    against = "3D ground truth, axis by axis" if run.has_volume else "2D image (mean of its two axes)"
    fig.suptitle(f"{run.title}: correlation functions against the {against}", fontsize=12)
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "curves",
        f"S₂ and lineal path — {run.title}",
        f"Mean over the axes of S₂(r) and L(r) for the reference (black) and each sample; RMSE over r ≤ "
        f"{study.r_max} voxels, mean of the samples, against the {against}. The insets zoom on r = 0, where both "
        "equal the fraction φ.",
    )


def _property_values(run, metric: str, unit_mode: str) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """((axis, value) per sample and axis, {axis: reference value}) in the plotted unit."""

    def value(row):
        if metric == "conductivity":
            return row.get("k_eff")
        if unit_mode == "darcy":
            return None if row.get("k_m2") is None else row["k_m2"] / DARCY
        return row.get("k")

    rows = [row for s in run.samples for row in s.physics.get(metric, {}).get("axes", [])]
    samples = [(row["axis"], value(row)) for row in rows if value(row) is not None]
    reference_rows = run.reference_physics.get(metric, {}).get("axes", [])
    reference = {row["axis"]: value(row) for row in reference_rows if value(row) is not None}
    return samples, reference


def properties_figure(runs: Sequence, study, path: Path, physics: Sequence[str]) -> Figure:
    """Effective conductivity and permeability of every sample (dots) against the reference (bar)."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(physics), figsize=(max(5.0, 1.4 * len(runs) + 2.5) * len(physics), 4.4), squeeze=False
    )
    markers = {0: "o", 1: "s", 2: "^"}
    for ax, metric in zip(axes[0], physics, strict=True):
        unit_mode = "voxel"
        if metric == "permeability" and all(
            row.get("k_m2") is not None
            for run in runs
            for s in run.samples
            for row in s.physics.get(metric, {}).get("axes", [])
        ):
            unit_mode = "darcy"
        all_values = []
        for x, run in enumerate(runs):
            samples, reference = _property_values(run, metric, unit_mode)
            for axis, ref_value in reference.items():
                ax.hlines(
                    ref_value,
                    x - 0.32,
                    x + 0.32,
                    color="black",
                    lw=2.6,
                    zorder=2,
                    label="reference (central crop)" if x == 0 and axis == study.physics.axes[0] else None,
                )
                all_values.append(ref_value)
            for j, (axis, value) in enumerate(samples):
                offset = (j - (len(samples) - 1) / 2) * 0.12
                ax.plot(
                    x + offset,
                    value,
                    markers.get(axis, "o"),
                    color=_SAMPLE_COLOURS[x % 8],
                    ms=7,
                    mec="black",
                    mew=0.6,
                    zorder=3,
                )
                all_values.append(value)
        for axis in study.physics.axes:
            ax.plot(
                [],
                [],
                markers.get(axis, "o"),
                color="grey",
                mec="black",
                label=f"samples, flow along {_AXIS_NAMES[axis]}",
            )
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([f"{r.reference.name}\n{r.condition.title}" for r in runs])
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        positive = [v for v in all_values if v is not None and math.isfinite(v)]
        if positive and min(positive) > 0 and max(positive) / min(positive) > 30:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        if metric == "conductivity":
            k = study.physics.conductivities
            ax.set_ylabel("effective conductivity k_eff (W m⁻¹ K⁻¹)")
            ax.set_title(f"thermal conductivity (phases {k[0]:g} / {k[1]:g} W m⁻¹ K⁻¹)")
        else:
            ax.set_ylabel("permeability k (darcy)" if unit_mode == "darcy" else "permeability k (voxel²)")
            ax.set_title("permeability (Stokes flow in the study phase)")
        ax.legend(loc="best")
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "properties",
        "Effective properties",
        "Effective properties of each sample (dots, one per flow axis) against the reference's (black bar: the "
        f"central {study.size}³ crop of its 3D ground truth, the samples' size; none for a 2D reference).",
    )


def fields_figure(run, study, path: Path) -> Figure:
    """Temperature and velocity-magnitude slices (plane containing the flow axis) of reference and sample 0."""
    plt = _pyplot()
    rows = []
    if run.reference_fields:
        rows.append((f"reference\n(central {study.size}³ crop)", run.reference_fields))
    sample = run.samples[0]
    rows.append((f"sample {sample.index}", sample.fields))
    columns = [c for c in ("structure", "temperature", "speed") if any(c in f for _, f in rows)]
    fig, axes = plt.subplots(
        len(rows), len(columns), figsize=(3.6 * len(columns) + 0.6, 3.4 * len(rows)), squeeze=False
    )
    axis = study.physics.axes[0]
    normal = 2 if axis != 2 else 0
    plane = [n for i, n in enumerate(_AXIS_NAMES) if i != normal]
    scale, unit = _length_unit(run.reference.voxel_size)
    limits = {c: max(float(np.nanmax(f[c])) for _, f in rows if c in f) for c in columns}
    limits["temperature"] = 1.0
    titles = {
        "structure": f"phase {run.reference.phase} (white)",
        "temperature": "temperature T (T = 1 → 0 across)",
        "speed": "speed |u| / max |u|",
    }
    for r, (label, fields) in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            if column not in fields:
                ax.axis("off")
                continue
            image = fields[column]
            if column == "speed":
                image = image / (limits["speed"] or 1.0)  # one scale for the column: the largest speed in it
            h, w = image.shape
            extent = (0, w * scale, h * scale, 0)
            if column == "structure":
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, extent=extent, interpolation="nearest")
            else:
                cmap = "inferno" if column == "temperature" else "viridis"
                im = ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
                bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
                bar.set_label("T" if column == "temperature" else "|u| / max |u|")
            ax.set_xlabel(f"{plane[1]} ({unit})")
            ax.set_ylabel(f"{plane[0]} ({unit})")
            if r == 0:
                ax.set_title(titles[column])
            if c == 0:
                _row_label(ax, label, -0.45)
    fig.suptitle(
        f"{run.title}: fields, flow along {_AXIS_NAMES[axis]} (axis {axis}), central {_AXIS_NAMES[normal]}-section",
        fontsize=12,
    )
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "fields",
        f"Fields — {run.title}",
        f"Temperature (conduction, T = 1 and 0 on the faces normal to {_AXIS_NAMES[axis]}) and velocity magnitude "
        f"(pressure-driven flow along {_AXIS_NAMES[axis]}) in the central plane containing the flow axis, for the "
        "reference's crop and one sample. One colour scale per column.",
    )


def control_figure(runs: Sequence, study, path: Path) -> Figure:
    """Achieved against target fraction (controlled runs; stochastic runs target the reference's fraction)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    names = list(dict.fromkeys(r.reference.name for r in runs))
    targets, achieved = [], []
    for run in runs:
        colour = _SAMPLE_COLOURS[names.index(run.reference.name) % 8]
        fractions = [s.fraction for s in run.samples]
        filled = run.condition.controlled
        ax.plot(
            [run.target_fraction] * len(fractions),
            fractions,
            "o",
            ms=5,
            alpha=0.55,
            color=colour,
            mfc=colour if filled else "none",
        )
        mean = float(np.mean(fractions))
        ax.plot(
            run.target_fraction,
            mean,
            "D" if filled else "o",
            ms=9,
            color=colour,
            mec="black" if filled else colour,
            mew=1.0 if filled else 2.2,
            mfc=colour if filled else "white",
        )
        ax.annotate(
            f"{mean - run.target_fraction:+.3f}",
            (run.target_fraction, mean),
            xytext=(8, -4),
            textcoords="offset points",
            fontsize=8.5,
        )
        targets.append(run.target_fraction)
        achieved += fractions
    low = min(targets + achieved) - 0.04
    high = max(targets + achieved) + 0.04
    ax.plot([low, high], [low, high], "--", color="grey", lw=1, label="achieved = target")
    for name in names:
        ax.plot([], [], "s", color=_SAMPLE_COLOURS[names.index(name) % 8], label=name)
    ax.plot([], [], "D", color="grey", mec="black", label="controlled (η), mean")
    ax.plot([], [], "o", color="white", mec="black", label="stochastic, mean")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("target fraction η (stochastic: the reference image's)")
    ax.set_ylabel("achieved fraction of the samples")
    ax.set_title("control of the fraction (labels: mean − target)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8.5)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "control",
        "Target against achieved fraction",
        "Fraction of the study phase in each sample (small dots) and their mean (large marker) against the target: η "
        "for controlled runs (filled), the training image's fraction for stochastic runs (open). The fixed "
        "threshold of each model was set on calibration noise, so each sample's fraction varies with its structure.",
    )


_TIMING_COLUMNS = (
    ("reference", "reference", "{}"),
    ("condition", "condition", "{}"),
    ("iterations", "iterations", "{}"),
    ("seconds_per_iteration", "s / iteration", "{:.2f}"),
    ("training_s", "training (s)", "{:.0f}"),
    ("generation_s", "generation (s / sample)", "{:.2f}"),
    ("descriptors_s", "descriptors (s / sample)", "{:.2f}"),
    ("conductivity_s", "conductivity (s / sample)", "{:.2f}"),
    ("permeability_s", "permeability (s / sample)", "{:.2f}"),
)


def timing_columns(rows: Sequence[dict]) -> list[tuple[str, str, str]]:
    """The columns of the timing table present in ``rows``: (key, header, format)."""
    return [c for c in _TIMING_COLUMNS if any(c[0] in row for row in rows)]


def format_timing(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return fmt.format(value)


def timing_figure(rows: Sequence[dict], study, path: Path, device: str = "") -> Figure:
    """The timing table as an image (like Table 1 of the paper)."""
    plt = _pyplot()
    columns = timing_columns(rows)
    cells = [[format_timing(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    headers = [header.replace(" (", "\n(") for _, header, _ in columns]
    fig, ax = plt.subplots(figsize=(1.25 * len(columns) + 1.0, 0.42 * len(rows) + 1.3))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=headers, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9.5)
    table.scale(1.0, 1.6)
    for (row, _), cell in table.get_celld().items():
        if row == 0:
            cell.set_facecolor("#e8e8e8")
            cell.set_height(cell.get_height() * 1.6)
    ax.set_title(f"timings ({study.size}³ samples{', ' + device if device else ''})", fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "timings",
        "Timings",
        "Wall time of each stage (seconds): training (all iterations plus the threshold calibration), and per sample "
        "the generation, the statistical descriptors and the solvers. Cached items keep the time of the run that "
        "computed them.",
    )


def render_all(
    runs: Sequence,
    study,
    timing_rows: Sequence[dict],
    folder: Path,
    *,
    physics: Sequence[str] = (),
    device: str = "",
    progress: bool = False,
) -> tuple[list[Figure], list[str]]:
    """Draw every figure of a study into ``folder``; returns the figures and notes on those left out."""
    jobs, notes = [], []
    for run in runs:
        jobs.append((sections_figure, (run, study, folder / f"sections-{run.slug}.png")))
        jobs.append((curves_figure, (run, study, folder / f"curves-{run.slug}.png")))
        if "fraction_profile" in dict(run.condition.generate):
            jobs.append((profile_figure, (run, study, folder / f"profile-{run.slug}.png")))
    if physics:
        jobs.append((properties_figure, (runs, study, folder / "properties.png", tuple(physics))))
        shown = set()
        for run in sorted(runs, key=lambda r: r.condition.controlled):  # stochastic first
            if run.reference.name in shown or not run.samples or not run.samples[0].fields:
                continue
            shown.add(run.reference.name)
            jobs.append((fields_figure, (run, study, folder / f"fields-{run.reference_slug}.png")))
        missing = [m for m in ("conductivity", "permeability") if m in study.metrics and m not in physics]
        if missing:
            notes.append(f"figures without {' and '.join(missing)}: the solver module is not available")
    else:
        notes.append(
            "no property or field figures: neither physics.conductivity nor physics.permeability was run"
        )
    jobs.append((control_figure, (runs, study, folder / "control.png")))
    jobs.append((timing_figure, (timing_rows, study, folder / "timings.png", device)))
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="figures", unit="figure", dynamic_ncols=True)
    figures = [function(*args) for function, args in jobs]
    return figures, notes
