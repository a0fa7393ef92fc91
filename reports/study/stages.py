"""The stages of a study: train, generate and evaluate one item each (the runner is :mod:`.runner`).

:func:`train_model`, :func:`generate_sample` and :func:`evaluate` each take one item of the plan and the cache,
return the cached result when the item is finished, compute and store it otherwise, and return a typed record.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reports.truth import piece_array

from .cache import _Cache, _save_npz
from .measures import _describe, _solve, solver_device
from .plan import (
    EvaluationItem,
    ModelItem,
    SampleItem,
    TruthSource,
)
from .settings import Condition, ReferenceSettings

__all__ = [
    "EvaluationRecord",
    "ModelRecord",
    "Run",
    "SampleRecord",
    "evaluate",
    "generate_sample",
    "train_model",
]


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRecord:
    """A trained model.

    Attributes
    ----------
    key : str
    record : dict
        Its cache record: ``settings``, ``seconds`` (whole training), ``seconds_iterations``,
        ``seconds_per_iteration``, ``iterations``, ``final_loss``, ``target_fraction``, ``reference_fraction``,
        ``reference_fraction_std`` (how well the training input knows its fraction, from its integral range),
        ``fraction_at_zero_logit``, ``threshold``, ``warnings`` (what training warned of: a small image).
    cached : bool
        Read from the cache rather than trained now.
    """

    key: str
    record: dict
    cached: bool


@dataclass(frozen=True)
class EvaluationRecord:
    """One metric group measured on a reference or a sample.

    Attributes
    ----------
    key : str
    group : str
    result : dict
        :func:`physics.describe`'s output, or a physics record ``{"axes": [...], "notes": [...]}``.
    seconds : float
        Time the measurement took (when it was computed).
    cached : bool
    fields : Path or None
        The ``.npz`` of field slices, where the solver returned some.
    """

    key: str
    group: str
    result: dict
    seconds: float
    cached: bool
    fields: Path | None = None


@dataclass
class SampleRecord:
    """One generated sample and what was measured on it."""

    index: int
    key: str
    path: Path
    seconds_generate: float
    cached: bool
    description: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)
    physics: dict = field(default_factory=dict)  # metric -> {"axes": [...], "notes": [...]}
    fields: dict = field(default_factory=dict)  # name -> 2D array (first axis of the physics)
    seconds_evaluate: dict = field(default_factory=dict)  # group -> seconds

    @property
    def fraction(self) -> float:
        return float(self.description["fraction"])


@dataclass
class Run:
    """One reference × condition: its model, samples and the reference's own measurements."""

    reference: ReferenceSettings
    condition: Condition
    truth: np.ndarray
    n_phases: int
    target_fraction: float
    model_key: str
    model_record: dict
    model_cached: bool
    reference_description: dict
    reference_physics: dict  # metric -> record, when the reference has a 3D ground truth
    reference_fields: dict
    samples: list[SampleRecord] = field(default_factory=list)
    truth_pieces: list[SampleRecord] = field(
        default_factory=list
    )  # pieces of the 3D truth, measured like samples
    truth_plan: object = None  # reports.truth.TruthPlan, when there are pieces
    rev: dict = field(default_factory=dict)  # "truth" / "sample" -> {prop: reports.rev.RevCurve}

    @property
    def label(self) -> str:
        return f"{self.reference.name} / {self.condition.label}"

    @property
    def title(self) -> str:
        return f"{self.reference.name}, {self.condition.title}"

    @property
    def slug(self) -> str:
        """File-name part: ``labyrinth-eta0.3``."""
        return f"{self.reference_slug}-{_slug(self.condition.label.replace('=', ''))}"

    @property
    def reference_slug(self) -> str:
        return _slug(self.reference.name)

    @property
    def has_volume(self) -> bool:
        return self.truth.ndim == 3


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


# ---------------------------------------------------------------------------------------------------------
# One item each
# ---------------------------------------------------------------------------------------------------------


def train_model(item: ModelItem, cache: _Cache, *, device, progress: bool = False) -> ModelRecord:
    """Train the model of ``item`` into the cache, or read it there; training resumes from its checkpoint."""
    from swnn import training
    from swnn.calibration import SmoothingWarning

    record = cache.get("models", item.key)
    if record is not None and item.path.is_file():
        return ModelRecord(item.key, record, cached=True)
    ref = item.reference
    item.path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    noted = (training.RepresentativityWarning, SmoothingWarning)  # notes of the report
    with warnings.catch_warnings(record=True) as caught:  # a small training image, a stalled training
        for category in noted:
            warnings.simplefilter("always", category)
        result = training.train(
            ref.training_input,
            config=item.config,
            output=item.path,
            phase=ref.settings.phase,
            target_fraction=item.condition.target_fraction,
            n_phases=ref.n_phases,
            reference_name=ref.settings.source,
            device=device,
            progress=progress,
            resume=True,
            force=True,
        )
    notes = []
    for warning in caught:
        if issubclass(warning.category, noted):
            notes.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    meta = result.model.metadata
    record = cache.put(
        "models",
        item.key,
        {
            "settings": item.settings,
            "seconds": time.perf_counter() - t,
            "seconds_iterations": result.seconds,
            "seconds_per_iteration": result.seconds_per_iteration,
            "iterations": item.config.iterations,
            "final_loss": meta.training["final_loss"],
            "target_fraction": meta.target_fraction,
            "reference_fraction": meta.reference.fraction,
            "reference_fraction_std": meta.reference.fraction_std,
            "fraction_at_zero_logit": meta.fraction_at_zero_logit,
            "threshold": meta.threshold,
            "warnings": notes,
        },
    )
    return ModelRecord(item.key, record, cached=False)


def generate_sample(
    item: SampleItem, cache: _Cache, *, device, load_model: Callable | None = None
) -> SampleRecord:
    """Generate the sample of ``item`` into the cache (with its provenance sidecar), or read it there.

    ``load_model(path)`` loads the model when the sample must be generated (default
    :func:`swnn.model.load_model`; the runner passes one that keeps the last model in memory).
    """
    from swnn import generation
    from swnn.io import sidecar_path, write_volume
    from swnn.model import load_model as load_model_file

    record = cache.get("samples", item.key)
    if record is None or not (item.path.is_file() and sidecar_path(item.path).is_file()):
        model = (load_model or load_model_file)(item.model_path)
        t = time.perf_counter()
        transforms, control = [], {}
        if item.condition.generate:
            from swnn.conditions import noise_control

            transforms, control = noise_control(
                model, (item.size,) * 3, device=device, **dict(item.condition.generate)
            )
        volume = generation.generate(
            model,
            (item.size,) * 3,
            settings=item.generation,
            sample=item.index,
            device=device,
            transforms=transforms,
        )
        seconds = time.perf_counter() - t
        metadata = generation.provenance(
            model,
            settings=item.generation,
            sample=item.index,
            model_path=item.model_path,
            voxel_size=item.voxel_size,
        )
        metadata.update(control)
        item.path.parent.mkdir(parents=True, exist_ok=True)
        write_volume(item.path, volume, metadata=metadata, force=True)
        record = cache.put("samples", item.key, {"settings": item.settings, "seconds": seconds})
        cached = False
    else:
        cached = True
    return SampleRecord(
        index=item.index,
        key=item.key,
        path=item.path,
        seconds_generate=float(record["seconds"]),
        cached=cached,
    )


def _read_volume(volume) -> np.ndarray:
    """An item's volume: the array itself, a piece of the truth, or the ``.npy`` file's content."""
    if isinstance(volume, TruthSource):
        return piece_array(volume.plan, volume.piece, volume.volume, builtin=volume.builtin)
    return volume if isinstance(volume, np.ndarray) else np.load(volume, allow_pickle=False)


def evaluate(
    item: EvaluationItem, cache: _Cache, *, device=None, read_volume: Callable = _read_volume
) -> EvaluationRecord:
    """Measure the group of ``item`` (descriptors, or one physics solver on every axis), or read it in the cache.

    ``device``: where the physics solvers compute (the study's device; the descriptors compute on the CPU). A
    cached result is read whatever device computed it. ``read_volume(item.volume)`` gives the volume when it
    must be measured (the runner passes one that keeps the last sample in memory, for the groups measured on it
    one after the other).
    """
    record = cache.get("evaluations", item.key)
    cached = record is not None
    if not cached:
        volume = read_volume(item.volume)
        solver = None if item.group == "descriptors" else solver_device(item.group, item.physics, device)
        t = time.perf_counter()
        if item.group == "descriptors":
            result = _describe(volume, phase=item.phase, metrics=item.metrics, r_max=item.r_max)
        else:
            result, slices = _solve(
                item.group,
                volume,
                phase=item.phase,
                physics=item.physics,
                voxel_size=item.voxel_size,
                device=solver,
            )
            if slices:
                _save_npz(item.fields_path, slices)
        seconds = time.perf_counter() - t
        where = "cpu" if solver is None else getattr(solver, "type", str(solver))
        record = cache.put("evaluations", item.key, {"result": result, "seconds": seconds, "device": where})
    fields = item.fields_path if item.fields_path.is_file() else None
    return EvaluationRecord(item.key, item.group, record["result"], float(record["seconds"]), cached, fields)


def _read_fields(path: Path | None) -> dict:
    if path is None:
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
