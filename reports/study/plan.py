"""The work of a study as typed items, each with its cache key: models, samples, evaluations.

:func:`build_plan` turns a :class:`~reports.study.settings.Study` and its loaded references into

- a :class:`ModelItem` per reference × condition (key: reference hash, phase, training settings, condition,
  precision, package version, training code tag);
- a :class:`SampleItem` per model × sample index (key: model key, seed, index, size, precision, generator code
  tag);
- an :class:`EvaluationItem` per (reference or sample) × metric group (key: reference hash or sample key,
  phase, the group's settings and, for a physics metric, its solver's code tag).

Each item carries what its stage needs (settings, input, file paths) and can be run on its own.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reports.truth import plan_truth

from . import cache as _cache  # _cache._code_tag looked up at call time, so that it can be replaced
from .references import LoadedReference, central_crop
from .settings import (
    _PHYSICS_MODULES,
    _RESERVED,
    DESCRIPTOR_METRICS,
    PHYSICS_METRICS,
    Condition,
    PhysicsSettings,
    Study,
)

__all__ = ["EvaluationItem", "ModelItem", "Plan", "SampleItem", "TruthSource", "build_plan"]


@dataclass(frozen=True)
class ModelItem:
    """Train one model: a reference under one condition. Items are equal when their keys are.

    Attributes
    ----------
    key : str
        Cache key, the hash of ``settings``.
    reference : LoadedReference
        What is trained on (training input, phase, number of phases, source).
    condition : Condition
    config : swnn.training.TrainConfig
    settings : dict
        What the key hashes; stored in the model's cache record.
    path : Path
        The model file in the cache (its checkpoint lies beside it).
    """

    key: str
    reference: LoadedReference = field(compare=False, repr=False)
    condition: Condition = field(compare=False)
    config: Any = field(compare=False, repr=False)
    settings: Mapping = field(compare=False, repr=False)
    path: Path = field(compare=False)

    @property
    def label(self) -> str:
        return f"{self.reference.settings.name} / {self.condition.label}"


@dataclass(frozen=True)
class SampleItem:
    """Generate one sample of a model. Items are equal when their keys are.

    Attributes
    ----------
    key : str
        Cache key, the hash of ``settings``.
    model_key : str
    model_path : Path
        The model file (written by the :class:`ModelItem` of ``model_key``).
    reference : str
        The reference's name.
    condition : Condition
    index : int
        Sample index: the samples of one seed are independent noise fields.
    size : int
        Side N of the N³ sample.
    generation : swnn.generation.GenerationSettings
        Seed, block and resolved precision.
    voxel_size : float or None
        Metres per voxel of the reference, recorded as provenance.
    settings : dict
        What the key hashes; stored in the sample's cache record.
    path : Path
        The ``.npy`` sample in the cache (with its provenance sidecar ``<path>.json``).
    """

    key: str
    model_key: str = field(compare=False)
    model_path: Path = field(compare=False, repr=False)
    reference: str = field(compare=False)
    condition: Condition = field(compare=False)
    index: int = field(compare=False)
    size: int = field(compare=False)
    generation: Any = field(compare=False, repr=False)
    voxel_size: float | None = field(compare=False, repr=False)
    settings: Mapping = field(compare=False, repr=False)
    path: Path = field(compare=False)


@dataclass(frozen=True)
class EvaluationItem:
    """Measure one metric group on a reference or a sample. Items are equal when their keys are.

    Attributes
    ----------
    key : str
        Cache key, the hash of ``settings``.
    group : str
        ``descriptors``, or a physics metric (``conductivity``, ``permeability``).
    reference : str
        The reference's name.
    sample : SampleItem or None
        The sample measured; None for the reference itself.
    volume : ndarray or Path
        The reference's array (its central crop of the samples' size for physics), or the sample's file.
    phase : int
        The study phase.
    metrics : tuple of str
        Descriptor metrics measured (``descriptors`` group).
    r_max : int
        Largest lag of S2 and of the lineal path, voxels.
    physics : PhysicsSettings
    voxel_size : float or None
    settings : dict
        What the key hashes.
    fields_path : Path
        Where a physics group stores its field slices (``.npz``).
    """

    key: str
    group: str = field(compare=False)
    reference: str = field(compare=False)
    sample: SampleItem | None = field(compare=False, repr=False)
    volume: Any = field(compare=False, repr=False)
    phase: int = field(compare=False)
    metrics: tuple[str, ...] = field(compare=False, repr=False)
    r_max: int = field(compare=False, repr=False)
    physics: PhysicsSettings = field(compare=False, repr=False)
    voxel_size: float | None = field(compare=False, repr=False)
    settings: Mapping = field(compare=False, repr=False)
    fields_path: Path = field(compare=False, repr=False)
    piece: Any = field(default=None, compare=False, repr=False)

    @property
    def role(self) -> str:
        """``reference``, ``truth`` (a piece of the 3D truth) or ``sample``."""
        if self.piece is not None:
            return "truth"
        return "reference" if self.sample is None else "sample"


@dataclass(frozen=True)
class TruthSource:
    """Where a piece of the truth comes from: the reference's volume, or a further draw of a built-in.

    Attributes
    ----------
    plan : reports.truth.TruthPlan
    piece : reports.truth.TruthPiece
    volume : ndarray or None
        The reference's 3D volume (``"volume"`` plans).
    builtin : str or None
        The built-in's name (``"draws"`` plans).
    """

    plan: Any = field(repr=False)
    piece: Any
    volume: Any = field(default=None, repr=False)
    builtin: str | None = None


@dataclass(frozen=True)
class Plan:
    """Every item of a study, in the order the stages run them.

    Attributes
    ----------
    references : tuple of LoadedReference
    groups : tuple of str
        Evaluation groups: ``descriptors``, then each physics metric whose solver is installed.
    models : tuple of ModelItem
        Reference by reference, condition by condition.
    samples : tuple of SampleItem
        Model by model, index by index.
    reference_evaluations : tuple of EvaluationItem
        Each group on each reference (physics only on a 3D ground truth).
    sample_evaluations : tuple of EvaluationItem
        Each group on each sample, sample by sample (physics on the first ``study.physics_of(reference, metric)`` only).
    truth_evaluations : tuple of EvaluationItem
        Each group on each piece of each 3D truth (physics on the first ``study.physics_of(reference, metric)`` only).
    truth_plans : dict
        Reference name -> :class:`reports.truth.TruthPlan`.
    """

    references: tuple[LoadedReference, ...]
    groups: tuple[str, ...]
    models: tuple[ModelItem, ...]
    samples: tuple[SampleItem, ...]
    reference_evaluations: tuple[EvaluationItem, ...]
    sample_evaluations: tuple[EvaluationItem, ...]
    truth_evaluations: tuple[EvaluationItem, ...] = ()
    truth_plans: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class _Modules:
    """The optional physics modules found, and why the others are missing."""

    found: dict
    notes: tuple[str, ...]


def _physics_modules(study: Study) -> _Modules:
    """Import the solvers of the study's physics metrics and check its ``[physics.*]`` keys against them."""
    found, notes = {}, []
    for metric in PHYSICS_METRICS:
        if metric not in study.metrics:
            continue
        try:
            module = importlib.import_module(_PHYSICS_MODULES[metric])
        except ImportError as exc:
            notes.append(
                f"{metric} skipped: {_PHYSICS_MODULES[metric]} is not available in this install ({exc})"
            )
            continue
        function = module.effective_conductivity if metric == "conductivity" else module.permeability
        accepted = inspect.signature(function).parameters
        extra = dict(getattr(study.physics, metric))
        unknown = [k for k in extra if k not in accepted]
        if unknown:
            raise ValueError(
                f"{study.source}: unknown key(s) {unknown} in [physics.{metric}] "
                f"(accepted: {', '.join(k for k in accepted if k not in _RESERVED[metric])})"
            )
        found[metric] = module
    return _Modules(found, tuple(notes))


def _code_tags(modules: _Modules) -> dict[str, str]:
    """Code tag of each computed kind: ``model``, ``sample``, and each physics metric found."""
    from swnn import generation, training

    tags = {"model": _cache._code_tag(training), "sample": _cache._code_tag(generation)}
    tags.update({metric: _cache._code_tag(module) for metric, module in modules.found.items()})
    return tags


def _physics_payload(physics: PhysicsSettings, metric: str, code: str, voxel_size) -> dict:
    payload = {"metric": metric, "axes": physics.axes, "code": code}
    if metric == "conductivity":
        payload.update(conductivities=physics.conductivities, options=physics.conductivity)
    else:
        payload.update(voxel_size=voxel_size, options=physics.permeability)
    return payload


def build_plan(
    study: Study,
    references: Sequence[LoadedReference],
    modules: _Modules,
    cache: _cache._Cache,
    *,
    train_precision: str,
    generate_precision: str,
) -> Plan:
    """Every model, sample and evaluation of ``study`` with its cache key and paths; nothing is read or written.

    Parameters
    ----------
    study : Study
    references : sequence of LoadedReference
        From :func:`~reports.study.references.prepare_study`.
    modules : _Modules
        The physics solvers found (:func:`_physics_modules`).
    cache : _Cache
        Where the items' files go.
    train_precision, generate_precision : str
        Resolved precisions (``fp32`` or ``bf16``) of training and generation.
    """
    from swnn._version import __version__
    from swnn.generation import GenerationSettings

    tags = _code_tags(modules)
    groups = ("descriptors", *modules.found)
    generation = GenerationSettings(seed=study.generation_seed, precision=generate_precision)
    descriptor_metrics = tuple(m for m in study.metrics if m in DESCRIPTOR_METRICS)

    def evaluation(kind, group, base, ref, volume, sample=None, piece=None) -> EvaluationItem:
        if group == "descriptors":
            payload = {**base, "metrics": list(descriptor_metrics), "r_max": study.r_max}
        else:
            payload = {**base, **_physics_payload(study.physics, group, tags[group], ref.settings.voxel_size)}
        key = _cache._key(f"{kind}-{group}", payload)
        return EvaluationItem(
            key=key,
            group=group,
            reference=ref.settings.name,
            sample=sample,
            volume=volume,
            phase=ref.settings.phase,
            metrics=descriptor_metrics,
            r_max=study.r_max,
            physics=study.physics,
            voxel_size=ref.settings.voxel_size,
            settings=payload,
            fields_path=cache.path("evaluations", key, ".npz"),
            piece=piece,
        )

    models, samples, reference_evaluations, sample_evaluations = [], [], [], []
    truth_evaluations, truth_plans = [], {}
    for ref in references:
        base = {"reference": ref.sha256, "phase": ref.settings.phase}
        n_samples, n_truth = study.samples_of(ref.settings), study.truth_of(ref.settings)
        measured = {g: study.physics_of(ref.settings, g) for g in groups[1:]}

        def groups_of(index: int, measured=measured) -> list[str]:
            return ["descriptors", *(g for g in groups[1:] if index < measured[g])]

        if ref.has_volume and n_truth > 0:
            source = ref.settings.source
            builtin = source[len("builtin:") :] if source.startswith("builtin:") else None
            truth_plan = plan_truth(ref.truth.shape, study.size, n_truth, builtin=builtin, seed=study.seed)
            truth_plans[ref.settings.name] = truth_plan
            for piece in truth_plan.pieces:
                origin = {"piece": list(piece.origin), "draw": piece.draw, "size": study.size}
                if builtin is not None:  # a draw of the generator: its code, not the reference's data
                    origin.update(builtin=builtin, draw_side=truth_plan.draw_side, code=tags["sample"])
                volume = TruthSource(truth_plan, piece, None if builtin else ref.truth, builtin)
                for group in groups_of(piece.index):
                    truth_evaluations.append(
                        evaluation("truth", group, {**base, **origin}, ref, volume, piece=piece)
                    )
        crop = central_crop(ref.truth, study.size) if ref.has_volume and len(groups) > 1 else None
        own = base if ref.has_volume else {**base, "uncertainty": "integral range"}  # a 2D image's own spread
        reference_evaluations.append(evaluation("reference", "descriptors", own, ref, ref.truth))
        if ref.has_volume:
            for group in groups[1:]:
                reference_evaluations.append(
                    evaluation("reference", group, {**base, "crop": study.size}, ref, crop)
                )
        config = study.training_config(ref.settings)
        for condition in ref.settings.conditions:
            settings = {
                "reference": ref.sha256,
                "training_input": ref.training_sha256,
                "trained_on": "volume" if isinstance(ref.training_input, np.ndarray) else "sections",
                "phase": ref.settings.phase,
                "n_phases": ref.n_phases,
                "training": config.to_dict(),
                "target_fraction": condition.target_fraction,
                "precision": train_precision,
                "version": __version__,
                "code": tags["model"],
            }
            key = _cache._key("model", settings)
            model = ModelItem(key, ref, condition, config, settings, cache.path("models", key, ".pt"))
            models.append(model)
            for index in range(n_samples):
                settings = {
                    "model": model.key,
                    "seed": study.generation_seed,
                    "sample": index,
                    "size": study.size,
                    "precision": generate_precision,
                    "code": tags["sample"],
                }
                if condition.generate:  # only then, so that other samples keep their keys
                    settings["generate"] = dict(condition.generate)
                key = _cache._key("sample", settings)
                sample = SampleItem(
                    key=key,
                    model_key=model.key,
                    model_path=model.path,
                    reference=ref.settings.name,
                    condition=condition,
                    index=index,
                    size=study.size,
                    generation=generation,
                    voxel_size=ref.settings.voxel_size,
                    settings=settings,
                    path=cache.path("samples", key, ".npy"),
                )
                samples.append(sample)
                base_sample = {"sample": sample.key, "phase": ref.settings.phase}
                for group in groups_of(index):
                    sample_evaluations.append(
                        evaluation("sample", group, base_sample, ref, sample.path, sample)
                    )
    return Plan(
        references=tuple(references),
        groups=groups,
        models=tuple(models),
        samples=tuple(samples),
        reference_evaluations=tuple(reference_evaluations),
        sample_evaluations=tuple(sample_evaluations),
        truth_evaluations=tuple(truth_evaluations),
        truth_plans=truth_plans,
    )
