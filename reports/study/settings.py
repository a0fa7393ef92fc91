"""The settings of a study as frozen dataclasses (read from a study file by :mod:`.study_file`).

A study (see docs/guide.md, "swnn study") names the references (files or ``builtin:NAME``), the conditions
(stochastic, or controlled target fractions), how many samples of which size, the training settings and the
metrics.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ALL_METRICS",
    "CORE_METRICS",
    "DESCRIPTOR_METRICS",
    "PHYSICS_METRICS",
    "Condition",
    "PhysicsSettings",
    "ReferenceSettings",
    "Study",
    "TrainingSettings",
]

CORE_METRICS = ("fraction", "s2", "lineal_path")
"""Always computed: the fidelity measures (fraction error, S2 and lineal-path RMSE)."""

DESCRIPTOR_METRICS = ("fraction", "s2", "lineal_path", "chord_length", "specific_surface", "connectivity")
PHYSICS_METRICS = ("conductivity", "permeability")
ALL_METRICS = DESCRIPTOR_METRICS + PHYSICS_METRICS

_PHYSICS_MODULES = {"conductivity": "physics.conductivity", "permeability": "physics.permeability"}
# keyword arguments the study sets itself (the device from `swnn study --device`); a [physics.conductivity] /
# [physics.permeability] table may not
_RESERVED = {
    "conductivity": {"volume", "conductivities", "axis", "return_field", "device"},
    "permeability": {"volume", "phase", "axis", "voxel_size", "return_velocity", "device"},
}


# ---------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One reconstruction condition.

    Attributes
    ----------
    target_fraction : float or None
        η, the fraction of the study phase the control strategy aims at; None for stochastic reconstruction
        (the reference's own pattern distribution).
    generate : tuple of (str, value)
        Conditions on generation from the stochastic model (:mod:`swnn.conditions`): ``fraction`` (continuous
        control), ``fraction_profile`` (``"AXIS:A..B"``), or ``mask`` with ``mask_mode``.
    """

    target_fraction: float | None = None
    generate: tuple = ()

    @property
    def controlled(self) -> bool:
        return self.target_fraction is not None

    @property
    def label(self) -> str:
        """``stochastic``, ``eta=0.3``, ``fraction=0.3``, ``profile=2:0.25..0.55`` or ``mask=SPEC`` (the
        ``condition`` column of metrics.csv)."""
        if self.target_fraction is not None:
            return f"eta={self.target_fraction:g}"
        options = dict(self.generate)
        if "fraction" in options:
            return f"fraction={options['fraction']:g}"
        if "fraction_profile" in options:
            return f"profile={options['fraction_profile']}"
        if "mask" in options:
            mode = options.get("mask_mode", "multiply")
            return f"mask={options['mask']}" + ("" if mode == "multiply" else f"({mode})")
        return "stochastic"

    @property
    def title(self) -> str:
        """Label for figures: ``stochastic``, ``η = 0.3``, or the generation condition."""
        if self.target_fraction is not None:
            return f"η = {self.target_fraction:g}"
        return self.label.replace("=", " ", 1) if self.generate else "stochastic"


@dataclass(frozen=True)
class ReferenceSettings:
    """One reference of a study.

    Attributes
    ----------
    source : str
        ``builtin:NAME`` or a file path (relative paths are resolved against the study file's folder).
    name : str
        Short label (default: the built-in's name or the file's stem); unique in a study.
    phase : int
        The phase of interest: the controlled phase, and the pore phase of the physics (``0`` for CT data
        whose pores are black).
    voxel_size : float or None
        Metres per voxel; gives lengths in µm and permeability in m²/darcy. None: voxel units.
    threshold : float or None
        Segment a grey-scale file: values above it become phase 1.
    raw_shape, raw_dtype :
        Shape and voxel type of a RAW file.
    conditions : tuple of Condition
        The conditions this reference is reconstructed under.
    samples : int or None
        Samples per model of this reference (None: the study's ``samples``): a reference whose measures
        spread more needs more of them for the same power.
    truth : str or None
        A 3D volume file of the same material, with the same labels: the ground truth that samples are
        compared with and cut into truth pieces, in place of ``source`` (which is still what the model is
        trained on). For a CT crop trained on, the larger scan it was cut from. None: ``source`` itself.
    training : TrainingSettings or None
        This reference's training settings: the study's ``[training]`` with the reference's own table laid
        over it (None: the study's). Several references of one source with different names and training
        settings compare the settings on the same truth.
    slices : tuple of (axis, index) or None
        Train on these 2D sections of a 3D ``source`` (pooled, as several images), and compare with the whole
        volume: a CT user's one slice, or three orthogonal ones. None: a 3D source is trained on its sections
        axis by axis.
    """

    source: str
    name: str
    phase: int = 1
    voxel_size: float | None = None
    threshold: float | None = None
    raw_shape: tuple[int, ...] | None = None
    raw_dtype: str | None = None
    conditions: tuple[Condition, ...] = (Condition(),)
    samples: int | None = None
    truth: str | None = None
    training: TrainingSettings | None = None
    slices: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class TrainingSettings:
    """A training profile plus overrides of its :class:`~swnn.training.TrainConfig` fields.

    Attributes
    ----------
    profile : str
        ``quick``, ``paper`` or ``rock`` (:data:`swnn.training.PROFILES`).
    overrides : tuple of (str, value)
        Changed fields, sorted by name (lists become tuples).
    """

    profile: str = "quick"
    overrides: tuple[tuple[str, Any], ...] = ()

    def config(self, *, seed: int = 0):
        """The :class:`~swnn.training.TrainConfig` (``seed`` unless the overrides set one)."""
        from swnn.training import PROFILES

        changes = {"seed": seed, **dict(self.overrides)}
        return dataclasses.replace(PROFILES[self.profile], **changes)


@dataclass(frozen=True)
class PhysicsSettings:
    """Settings of the conductivity and permeability solvers.

    Attributes
    ----------
    axes : tuple of int
        Axes along which both are solved (the first also gives the field slices of the report).
    conductivities : tuple of float
        W/(m·K) of the other phase(s) and of the study phase, in that order: the study phase is label 1 of
        the indicator the solver receives. Default (1.4, 0.026): silica and air, as in the paper.
    conductivity : tuple of (str, value)
        Further keyword arguments of :func:`physics.conductivity.effective_conductivity` (``sides``, ``tol``...).
    permeability : tuple of (str, value)
        Further keyword arguments of :func:`physics.permeability.permeability`.
    """

    axes: tuple[int, ...] = (0,)
    conductivities: tuple[float, float] = (1.4, 0.026)
    conductivity: tuple[tuple[str, Any], ...] = ()
    permeability: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Study:
    """A study: references × conditions, sampled, measured.

    Attributes
    ----------
    name : str
    references : tuple of ReferenceSettings
    samples : int
        Samples generated per model.
    size : int
        Side N of the N³ samples.
    seed : int
        Training seed (unless ``[training]`` sets one), and noise seed of the samples unless ``sample_seed``
        is given.
    sample_seed : int or None
        Noise seed of the samples (None: ``seed``). Another value draws other samples of the same models.
    physics_samples : tuple of (str, int)
        The costly physics is measured on the first this many samples of each model and truth pieces of each
        reference, per metric (``conductivity``, ``permeability``; a metric not named: every one). The file
        gives one number for both or a table ``{conductivity = 64, permeability = 8}``.
    truth_samples : int or None
        Pieces of the 3D truth of the samples' size evaluated like samples, for the truth's own spread
        (:mod:`reports.truth`; None: as many as ``samples``; 0: none). References without a 3D truth have none.
    rev : bool
        Also measure the representative-volume curve (:mod:`reports.rev`) of each 3D truth and of one sample
        of twice the samples' side.
    r_max : int
        Largest lag of S2 and of the lineal path, voxels.
    metrics : tuple of str
        Measured on reference and samples; :data:`CORE_METRICS` are always included.
    training : TrainingSettings
    physics : PhysicsSettings
    source : str or None
        The TOML file it was read from.
    """

    name: str
    references: tuple[ReferenceSettings, ...]
    samples: int = 2
    size: int = 64
    seed: int = 0
    r_max: int = 32
    sample_seed: int | None = None
    physics_samples: tuple[tuple[str, int], ...] = ()
    truth_samples: int | None = None
    rev: bool = False
    metrics: tuple[str, ...] = ALL_METRICS
    training: TrainingSettings = TrainingSettings()
    physics: PhysicsSettings = PhysicsSettings()
    source: str | None = None

    def with_profile(self, profile: str) -> Study:
        """The same study trained with ``profile``'s settings as they are (the file's overrides, and the
        references' own training settings, dropped)."""
        from swnn.training import PROFILES

        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        references = tuple(dataclasses.replace(r, training=None) for r in self.references)
        return dataclasses.replace(self, training=TrainingSettings(profile=profile), references=references)

    @property
    def generation_seed(self) -> int:
        """Noise seed of the samples."""
        return self.seed if self.sample_seed is None else self.sample_seed

    def samples_of(self, reference: ReferenceSettings) -> int:
        """Samples per model of ``reference``."""
        return self.samples if reference.samples is None else reference.samples

    def truth_of(self, reference: ReferenceSettings) -> int:
        """Truth pieces of ``reference`` (when it has a 3D truth)."""
        return self.samples_of(reference) if self.truth_samples is None else self.truth_samples

    def physics_of(self, reference: ReferenceSettings, metric: str) -> int:
        """Samples (and truth pieces) of ``reference`` that get the physics ``metric``."""
        limit = dict(self.physics_samples).get(metric)
        n = max(self.samples_of(reference), self.truth_of(reference))
        return n if limit is None else min(limit, n)

    def training_config(self, reference: ReferenceSettings | None = None):
        """The training configuration of ``reference`` (its own settings, else the study's)."""
        settings = self.training if reference is None or reference.training is None else reference.training
        return settings.config(seed=self.seed)

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``settings`` of study.json); override tables as dicts, as in the file."""
        data = dataclasses.asdict(self)
        data["training"]["overrides"] = dict(self.training.overrides)
        for reference, settings in zip(data["references"], self.references, strict=True):
            if settings.training is None:
                del reference["training"]
            else:
                reference["training"]["overrides"] = dict(settings.training.overrides)
        data["physics"]["conductivity"] = dict(self.physics.conductivity)
        data["physics"]["permeability"] = dict(self.physics.permeability)
        return _jsonable(data)


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------------------
# Reading a study file
# ---------------------------------------------------------------------------------------------------------
