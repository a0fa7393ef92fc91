"""The outputs of a study: ``metrics.csv``, ``figures/``, ``study.json`` and ``index.html``, each written atomically."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reports.regress import self_power
from reports.summary import summary_frame

from .settings import PHYSICS_METRICS, Study, _jsonable
from .tables import metrics_frame, timing_table

if TYPE_CHECKING:
    from .stages import Run

__all__ = ["FORMAT", "StudyResult", "write_outputs"]

FORMAT = "swnn-study/1"
"""Written into ``study.json``; bump when its layout changes."""


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` wrote and measured.

    Attributes
    ----------
    output : Path
        The study folder.
    metrics : pandas.DataFrame
        The tidy table written to ``metrics.csv``.
    summary : dict
        ``study.json``'s content.
    runs : list of Run
    """

    output: Path
    metrics: Any
    summary: dict
    runs: list

    @property
    def index(self) -> Path:
        return self.output / "index.html"


def _versions() -> dict:
    from importlib import metadata

    import torch

    from swnn._version import __version__

    versions = {"swnn": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for package in ("numpy", "scipy", "pandas", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _device_info(device) -> dict:
    import torch

    info = {"type": device.type, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        info["name"] = name
        info["cores"] = os.cpu_count()
    return info


def _run_notes(runs: Sequence[Run], physics: Sequence[str]) -> list[str]:
    """Notes of the report on the runs: 2D references without physics values, the solvers' warnings, empty samples."""
    notes = []
    for run in runs:
        if not run.has_volume and physics:
            notes.append(
                f"{run.reference.name}: a 2D reference has no 3D ground truth; its samples' "
                f"{' and '.join(physics)} are shown without a reference value"
            )
        for record in run.reference_physics.values():
            notes += [f"{run.reference.name} (reference): {n}" for n in record.get("notes", [])]
        for sample in run.samples:
            for record in sample.physics.values():
                notes += [f"{run.label} sample {sample.index}: {n}" for n in record.get("notes", [])]
            if sample.fraction == 0.0:
                notes.append(f"{run.label} sample {sample.index}: the phase does not occur in the sample")
    return notes


def write_outputs(
    study: Study,
    output: Path,
    runs: Sequence[Run],
    *,
    config,
    device,
    precisions: tuple[str, str],
    physics: Sequence[str],
    stages: Mapping[str, float],
    evaluations: Sequence[Mapping],
    notes: Sequence[str],
    started: float,
    progress: bool = False,
    execution: Mapping | None = None,
) -> StudyResult:
    """Write metrics.csv, figures/, study.json and index.html of a finished study into ``output``.

    Parameters
    ----------
    study : Study
    output : Path
        The study folder (it exists).
    runs : sequence of Run
    config : swnn.training.TrainConfig
        The resolved training configuration.
    device : torch.device
    precisions : (str, str)
        Resolved precisions of training and generation.
    physics : sequence of str
        The physics metrics whose solvers ran.
    stages : mapping
        Seconds of each stage so far; ``report`` is added.
    evaluations : sequence of dict
        ``key``, ``group``, ``seconds``, ``cached`` of each evaluation of a sample.
    notes : sequence of str
        Notes of the run so far (missing solvers).
    started : float
        ``time.time()`` when the study started.
    progress : bool
        A progress bar while the figures are drawn.
    execution : mapping, optional
        How the items ran (``scheduler``, ``workers``, ``threads`` per item), stored with the device.
    """
    from reports import figures as figures_module
    from reports import html as html_module

    t0 = time.perf_counter()
    notes = list(notes) + _run_notes(runs, physics)
    frame = metrics_frame(runs, study)
    _write_csv(output / "metrics.csv", frame)
    timing_rows = timing_table(runs, study)
    (output / "figures").mkdir(exist_ok=True)
    device_info = {
        **_device_info(device),
        "training_precision": precisions[0],
        "generation_precision": precisions[1],
        **(execution or {}),
    }
    figures, figure_notes = figures_module.render_all(
        runs,
        study,
        timing_rows,
        output / "figures",
        physics=tuple(physics),
        device=device_info["name"],
        progress=progress,
    )
    table = summary_frame(frame)
    _write_csv(output / "summary.csv", table)
    figures = _ensemble_figures(runs, study, frame, output / "figures") + list(figures)
    power = self_power(frame)
    notes = list(dict.fromkeys(notes + figure_notes))
    stages = {**stages, "report": time.perf_counter() - t0}
    summary = {
        "format": FORMAT,
        "name": study.name,
        "source": study.source,
        "settings": study.to_dict(),
        "training_config": config.to_dict(),
        "versions": _versions(),
        "device": device_info,
        "physics": {m: (m in physics) for m in PHYSICS_METRICS if m in study.metrics},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": time.time() - started,
        "timings": {
            "stages": stages,
            "models": [
                {
                    "run": run.label,
                    "key": run.model_key,
                    "seconds": run.model_record["seconds"],
                    "cached": run.model_cached,
                }
                for run in runs
            ],
            "samples": [
                {
                    "run": run.label,
                    "sample": s.index,
                    "key": s.key,
                    "seconds": s.seconds_generate,
                    "cached": s.cached,
                }
                for run in runs
                for s in run.samples
            ],
            "evaluations": list(evaluations),
            "table": timing_rows,
        },
        "runs": [
            {
                "reference": run.reference.name,
                "source": run.reference.source,
                "condition": run.condition.label,
                "target_fraction": run.target_fraction,
                "training_fraction": run.model_record.get("reference_fraction"),
                "training_fraction_std": run.model_record.get("reference_fraction_std"),
                "model": run.model_key,
                "samples": [s.key for s in run.samples],
                "ground_truth": "3D volume" if run.has_volume else "2D image",
            }
            for run in runs
        ],
        "truth": {run.reference.name: run.truth_plan.to_dict() for run in runs if run.truth_plan is not None},
        "regress_power": power,
        "representative_volume": {
            run.reference.name: {
                role: {prop: curve.to_dict() for prop, curve in curves.items()}
                for role, curves in run.rev.items()
            }
            for run in runs
            if run.rev
        },
        "figures": [f.name for f in figures],
        "notes": notes,
    }
    _write_text(output / "index.html", html_module.render(summary, frame, figures, timing_rows, table))
    _write_text(output / "study.json", json.dumps(_jsonable(summary), indent=1, allow_nan=False) + "\n")
    return StudyResult(output=output, metrics=frame, summary=summary, runs=list(runs))


def _ensemble_figures(runs: Sequence[Run], study: Study, frame, folder: Path) -> list:
    """Crossplots per reference, the distributions, and the representative volume, when there is data."""
    from reports.ensemble_figures import crossplot_figure, distributions_figure
    from reports.rev import rev_figure

    figures = []
    references = {}
    for run in runs:
        references.setdefault(run.reference.name, run)
    if any(run.truth_pieces or run.samples for run in runs):
        voxel_sizes = {name: run.reference.voxel_size for name, run in references.items()}
        figure = distributions_figure(frame, folder / "distributions.png", voxel_sizes=voxel_sizes)
        if figure is not None:
            figures.append(figure)
    axis = study.physics.axes[0] if study.physics.axes else 0
    for name, run in references.items():
        figure = crossplot_figure(
            frame,
            name,
            folder / f"crossplot-{run.reference_slug}.png",
            conductivities=tuple(study.physics.conductivities),
            axis=axis,
        )
        if figure is not None:
            figures.append(figure)
    curves: dict = {}
    for name, run in references.items():
        for role, by_prop in run.rev.items():
            label = f"{'truth' if role == 'truth' else 'one sample'}, {name}"
            for prop, curve in by_prop.items():
                curves.setdefault(prop, []).append((label, curve))
    if curves:
        figure = rev_figure(curves, folder / "representative-volume.png")
        if figure is not None:
            figures.append(figure)
    return figures


def _write_text(path: Path, text: str) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _write_csv(path: Path, frame) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        frame.to_csv(tmp, index=False)
