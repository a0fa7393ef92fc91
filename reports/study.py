"""Studies: references × conditions → trained models → samples → fidelity and physics, with a cache.

A study is a TOML file (see the README, "swnn study"): which references (files or ``builtin:NAME``), which
conditions (stochastic, or controlled target fractions), how many samples of which size, which training
settings, which metrics. :func:`load_study` reads and checks it into a frozen :class:`Study`; :func:`run_study`
checks that every reference loads and every target fraction is reachable *before* any work starts, then, for
each reference and condition, trains once (:func:`swnn.training.train`), generates the samples
(:func:`swnn.generation.generate`) and evaluates reference and samples (:func:`physics.describe`; conductivity
and permeability when :mod:`physics.conductivity` and :mod:`physics.permeability` are installed).

Every finished item is stored in ``DIR/cache/`` under a hash of its settings:

- model: reference labels' hash + phase + training settings + condition (+ package version, precision);
- sample: model key + seed + sample index + size (+ generation precision);
- evaluation: sample (or reference) key + the metric's settings (+ the solver module's source hash).

so that rerunning or extending a study redoes only what changed, and an interrupted study resumes (training
itself resumes from its checkpoint). The outputs are ``metrics.csv``, ``study.json``, ``figures/*.png`` and a
self-contained ``index.html``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import platform
import re
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ALL_METRICS",
    "CORE_METRICS",
    "Condition",
    "PhysicsSettings",
    "ReferenceSettings",
    "Run",
    "SampleRecord",
    "Study",
    "StudyResult",
    "TrainingSettings",
    "default_study_path",
    "fidelity",
    "load_study",
    "metrics_frame",
    "prepare_study",
    "run_study",
    "study_from_dict",
    "timing_table",
]

FORMAT = "swnn-study/1"
"""Written into ``study.json``; bump when its layout changes."""

_CACHE_SCHEMA = 1
"""Part of every cache key: bump when what an item stores changes, so old items are not read."""

CORE_METRICS = ("fraction", "s2", "lineal_path")
"""Always computed: the fidelity measures (fraction error, S2 and lineal-path RMSE)."""

DESCRIPTOR_METRICS = ("fraction", "s2", "lineal_path", "chord_length", "specific_surface", "connectivity")
PHYSICS_METRICS = ("conductivity", "permeability")
ALL_METRICS = DESCRIPTOR_METRICS + PHYSICS_METRICS

_PHYSICS_MODULES = {"conductivity": "physics.conductivity", "permeability": "physics.permeability"}
# keyword arguments the study sets itself; a [physics.conductivity] / [physics.permeability] table may not
_RESERVED = {
    "conductivity": {"volume", "conductivities", "axis", "return_field"},
    "permeability": {"volume", "phase", "axis", "voxel_size", "return_velocity"},
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
    """

    target_fraction: float | None = None

    @property
    def controlled(self) -> bool:
        return self.target_fraction is not None

    @property
    def label(self) -> str:
        """``stochastic`` or ``eta=0.3`` (the ``condition`` column of metrics.csv)."""
        return "stochastic" if self.target_fraction is None else f"eta={self.target_fraction:g}"

    @property
    def title(self) -> str:
        """Label for figures: ``stochastic`` or ``η = 0.3``."""
        return "stochastic" if self.target_fraction is None else f"η = {self.target_fraction:g}"


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
    """

    source: str
    name: str
    phase: int = 1
    voxel_size: float | None = None
    threshold: float | None = None
    raw_shape: tuple[int, ...] | None = None
    raw_dtype: str | None = None
    conditions: tuple[Condition, ...] = (Condition(),)


@dataclass(frozen=True)
class TrainingSettings:
    """A training profile plus overrides of its :class:`~swnn.training.TrainConfig` fields.

    Attributes
    ----------
    profile : str
        ``quick`` or ``paper`` (:data:`swnn.training.PROFILES`).
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
        Training seed (unless ``[training]`` sets one) and noise seed of the samples.
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
    metrics: tuple[str, ...] = ALL_METRICS
    training: TrainingSettings = TrainingSettings()
    physics: PhysicsSettings = PhysicsSettings()
    source: str | None = None

    def with_profile(self, profile: str) -> Study:
        """The same study trained with ``profile``'s settings as they are (the file's overrides dropped)."""
        from swnn.training import PROFILES

        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        return dataclasses.replace(self, training=TrainingSettings(profile=profile))

    def training_config(self):
        return self.training.config(seed=self.seed)

    def to_dict(self) -> dict:
        """JSON-ready dict (the ``settings`` of study.json); override tables as dicts, as in the file."""
        data = dataclasses.asdict(self)
        data["training"]["overrides"] = dict(self.training.overrides)
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

_TOP_KEYS = (
    "name",
    "samples",
    "size",
    "seed",
    "r_max",
    "metrics",
    "conditions",
    "training",
    "physics",
    "references",
)
_REFERENCE_KEYS = (
    "source",
    "name",
    "phase",
    "voxel_size",
    "threshold",
    "raw_shape",
    "raw_dtype",
    "conditions",
)
_PHYSICS_KEYS = ("axes", "conductivities", "conductivity", "permeability")


def default_study_path() -> Path:
    """The built-in default study (``reports/default_study.toml``, package data)."""
    return Path(__file__).with_name("default_study.toml")


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError("reading a study file on Python 3.10 needs tomli: pip install tomli") from None
    if not path.is_file():
        raise FileNotFoundError(f"study file {path} does not exist")
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not a valid TOML file ({exc})") from None


def load_study(path: str | os.PathLike | None = None) -> Study:
    """Read and check a study file; None reads the built-in default study.

    Raises
    ------
    ValueError
        Listing every unknown key and bad value of the file in one message.
    FileNotFoundError
        For a missing study file or reference file.
    """
    path = default_study_path() if path is None else Path(path)
    return study_from_dict(_read_toml(path), base=path.parent, origin=str(path))


class _Problems:
    """Collects the problems of a study file, raised together as one ValueError."""

    def __init__(self, origin: str):
        self.origin = origin
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def unknown(self, table: Mapping, accepted: Sequence[str], where: str) -> None:
        for key in table:
            if key not in accepted:
                self.add(f"unknown key {key!r} in {where} (accepted: {', '.join(accepted)})")

    def raise_if_any(self) -> None:
        if self.lines:
            if len(self.lines) == 1:
                raise ValueError(f"{self.origin}: {self.lines[0]}")
            raise ValueError(f"{self.origin}: {len(self.lines)} problems:\n  " + "\n  ".join(self.lines))


def _typed(problems: _Problems, table: Mapping, key: str, kind, where: str, default=None):
    """``table[key]`` checked against ``kind`` (int accepts no bool; float accepts int); default if absent."""
    if key not in table:
        return default
    value = table[key]
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        list: isinstance(value, list),
        dict: isinstance(value, dict),
    }[kind]
    if not ok:
        names = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
        problems.add(f"{where}.{key} must be {names[kind]}, got {value!r}")
        return default
    return float(value) if kind is float else value


def _conditions(problems: _Problems, values, where: str) -> tuple[Condition, ...]:
    if not isinstance(values, list) or not values:
        problems.add(
            f'{where} must be a non-empty array of "stochastic" and target fractions, got {values!r}'
        )
        return ()
    out = []
    for value in values:
        if value == "stochastic":
            out.append(Condition())
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
            out.append(Condition(float(value)))
        else:
            problems.add(
                f'{where}: {value!r} is not a condition (accepted: "stochastic" or a fraction in (0, 1))'
            )
    if len(set(out)) != len(out):
        problems.add(f"{where} lists a condition twice: {values!r}")
    return tuple(dict.fromkeys(out))


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _training(problems: _Problems, table: Mapping) -> TrainingSettings:
    from swnn.training import PROFILES, TrainConfig

    profile = _typed(problems, table, "profile", str, "[training]", "quick")
    if profile not in PROFILES:
        problems.add(f"[training].profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        profile = "quick"
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    problems.unknown(table, ["profile", *fields], "[training]")
    overrides = {k: _freeze(v) for k, v in table.items() if k in fields}
    settings = TrainingSettings(profile=profile, overrides=tuple(sorted(overrides.items())))
    try:
        settings.config()
    except (TypeError, ValueError) as exc:
        problems.add(f"[training]: {exc}")
    return settings


def _kwargs_table(problems: _Problems, table, where: str, metric: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(table, dict):
        problems.add(f"{where} must be a table of keyword arguments, got {table!r}")
        return ()
    for key in table:
        if key in _RESERVED[metric]:
            problems.add(f"{where}.{key} is set by the study itself; remove it")
    return tuple(sorted((k, _freeze(v)) for k, v in table.items()))


def _physics(problems: _Problems, table: Mapping) -> PhysicsSettings:
    problems.unknown(table, _PHYSICS_KEYS, "[physics]")
    default = PhysicsSettings()
    axes = _typed(problems, table, "axes", list, "[physics]", list(default.axes))
    if (
        not axes
        or any(a not in (0, 1, 2) or isinstance(a, bool) for a in axes)
        or len(set(axes)) != len(axes)
    ):
        problems.add(f"[physics].axes must be distinct axes among 0, 1, 2, got {axes!r}")
        axes = list(default.axes)
    conductivities = _typed(
        problems, table, "conductivities", list, "[physics]", list(default.conductivities)
    )
    if len(conductivities) != 2 or not all(
        isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in conductivities
    ):
        problems.add(
            "[physics].conductivities must be two positive numbers, W/(m·K) of the other phase and of the "
            f"study phase, got {conductivities!r}"
        )
        conductivities = list(default.conductivities)
    return PhysicsSettings(
        axes=tuple(int(a) for a in axes),
        conductivities=tuple(float(c) for c in conductivities),
        conductivity=_kwargs_table(
            problems, table.get("conductivity", {}), "[physics.conductivity]", "conductivity"
        ),
        permeability=_kwargs_table(
            problems, table.get("permeability", {}), "[physics.permeability]", "permeability"
        ),
    )


def _reference(
    problems: _Problems, table, index: int, base: Path, default_conditions
) -> ReferenceSettings | None:
    from swnn.references import BUILTIN_PREFIX, REFERENCES

    where = f"[[references]] #{index + 1}"
    if not isinstance(table, dict):
        problems.add(f"{where} must be a table, got {table!r}")
        return None
    problems.unknown(table, _REFERENCE_KEYS, where)
    source = _typed(problems, table, "source", str, where)
    if source is None:
        if "source" not in table:
            problems.add(f"{where} has no source (a file path or builtin:NAME)")
        return None
    if source.startswith(BUILTIN_PREFIX):
        builtin = source[len(BUILTIN_PREFIX) :]
        if builtin not in REFERENCES:
            problems.add(
                f"{where}: unknown built-in reference {source!r}; available: {', '.join(REFERENCES)}"
            )
        default_name = builtin
        for key in ("threshold", "raw_shape", "raw_dtype"):
            if key in table:
                problems.add(f"{where}.{key} applies to files, not to built-in references")
    else:
        path = Path(source).expanduser()
        source = os.path.abspath(path if path.is_absolute() else base / path)
        default_name = Path(source).name.split(".")[0]
    phase = _typed(problems, table, "phase", int, where, 1)
    if phase is not None and phase < 0:
        problems.add(f"{where}.phase must be a label 0, 1, ..., got {phase}")
    voxel_size = _typed(problems, table, "voxel_size", float, where)
    if voxel_size is not None and not voxel_size > 0:
        problems.add(f"{where}.voxel_size must be positive (metres per voxel), got {voxel_size}")
    raw_shape = _typed(problems, table, "raw_shape", list, where)
    if raw_shape is not None and not (
        len(raw_shape) in (2, 3) and all(isinstance(n, int) and n > 0 for n in raw_shape)
    ):
        problems.add(f"{where}.raw_shape must be [H, W] or [Z, Y, X], got {raw_shape!r}")
    conditions = (
        _conditions(problems, table["conditions"], f"{where}.conditions")
        if "conditions" in table
        else default_conditions
    )
    return ReferenceSettings(
        source=source,
        name=_typed(problems, table, "name", str, where, default_name),
        phase=phase,
        voxel_size=voxel_size,
        threshold=_typed(problems, table, "threshold", float, where),
        raw_shape=tuple(raw_shape) if raw_shape else None,
        raw_dtype=_typed(problems, table, "raw_dtype", str, where),
        conditions=conditions,
    )


def study_from_dict(data: Mapping, *, base: str | os.PathLike = ".", origin: str = "study") -> Study:
    """A :class:`Study` from the parsed TOML ``data`` (relative reference paths resolved against ``base``).

    Raises
    ------
    ValueError
        Listing every unknown key and bad value in one message.
    FileNotFoundError
        For a reference file that does not exist.
    """
    problems = _Problems(origin)
    problems.unknown(data, _TOP_KEYS, "the study")
    name = _typed(problems, data, "name", str, "study", Path(origin).stem)
    samples = _typed(problems, data, "samples", int, "study", 2)
    size = _typed(problems, data, "size", int, "study", 64)
    seed = _typed(problems, data, "seed", int, "study", 0)
    r_max = _typed(problems, data, "r_max", int, "study", 32)
    if samples is not None and samples < 1:
        problems.add(f"samples must be at least 1, got {samples}")
    if size is not None and size < 8:
        problems.add(f"size must be at least 8 voxels, got {size}")
    if r_max is not None and (r_max < 1 or (size is not None and r_max >= size)):
        problems.add(f"r_max must be between 1 and size - 1 = {size - 1}, got {r_max}")
    metrics = _typed(problems, data, "metrics", list, "study", list(ALL_METRICS))
    bad = [m for m in metrics if m not in ALL_METRICS]
    if bad:
        problems.add(f"unknown metrics {bad} (accepted: {', '.join(ALL_METRICS)})")
    metrics = tuple(m for m in ALL_METRICS if m in metrics or m in CORE_METRICS)
    default_conditions = _conditions(problems, data.get("conditions", ["stochastic"]), "conditions")
    training = _training(problems, _typed(problems, data, "training", dict, "study", {}))
    physics = _physics(problems, _typed(problems, data, "physics", dict, "study", {}))
    tables = _typed(problems, data, "references", list, "study", [])
    if not tables:
        problems.add("a study needs at least one [[references]] table")
    references = [_reference(problems, t, i, Path(base), default_conditions) for i, t in enumerate(tables)]
    references = tuple(r for r in references if r is not None)
    names = [r.name for r in references]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.add(f"two references are named {duplicate!r}; give them distinct name = ...")
    problems.raise_if_any()
    for ref in references:
        if not ref.source.startswith("builtin:") and not Path(ref.source).exists():
            raise FileNotFoundError(f"{origin}: reference {ref.name!r}: file {ref.source} does not exist")
    return Study(
        name=name,
        references=references,
        samples=samples,
        size=size,
        seed=seed,
        r_max=r_max,
        metrics=metrics,
        training=training,
        physics=physics,
        source=origin,
    )


# ---------------------------------------------------------------------------------------------------------
# Checking a study against its references, before any work
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _LoadedReference:
    settings: ReferenceSettings
    training_input: Any  # what train() receives: a list of 2D images, or a 3D volume
    truth: np.ndarray  # what samples are compared with: the 3D ground truth, or the 2D image
    n_phases: int
    sha256: str
    target_fractions: dict  # Condition -> the model's target fraction (η, or the training image's fraction)

    @property
    def has_volume(self) -> bool:
        return self.truth.ndim == 3


@dataclass(frozen=True)
class _Modules:
    """The optional physics modules found, and why the others are missing."""

    found: dict
    notes: tuple[str, ...]
    tags: dict = field(default_factory=dict)  # metric -> hash of the solver's source, read once per run


def _physics_modules(study: Study) -> _Modules:
    import inspect

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
    return _Modules(found, tuple(notes), {m: _code_tag(module) for m, module in found.items()})


def _hash_array(array: np.ndarray) -> str:
    digest = hashlib.sha256()
    array = np.ascontiguousarray(array)
    digest.update(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def prepare_study(study: Study) -> list[_LoadedReference]:
    """Load every reference and check every condition (phase present, target fraction reachable, r_max).

    Raises one ``ValueError`` / ``FileNotFoundError`` naming the reference and the condition; nothing is
    trained or written.
    """
    import torch

    from swnn.references import load_reference
    from swnn.training import prepare_target

    config = study.training_config()
    loaded = []
    for ref in study.references:
        reference = load_reference(
            ref.source, threshold=ref.threshold, shape=ref.raw_shape, dtype=ref.raw_dtype
        )
        where = f"{study.source}: reference {ref.name!r}"
        if not 0 <= ref.phase < reference.n_phases:
            raise ValueError(
                f"{where}: phase {ref.phase} is not one of its labels 0..{reference.n_phases - 1}"
            )
        builtin = ref.source.startswith("builtin:")
        truth = reference.volume if reference.volume is not None else reference.image
        if not (truth == ref.phase).any():
            raise ValueError(f"{where}: phase {ref.phase} does not occur in it")
        if study.r_max >= min(truth.shape):
            raise ValueError(
                f"{where}: r_max = {study.r_max} must be smaller than its smallest side {min(truth.shape)}"
            )
        # as `swnn train`: a 3D file trains each axis on its own sections, a built-in on its 2D section
        training_input = (
            reference.volume if (reference.volume is not None and not builtin) else list(reference.images)
        )
        targets = {}
        for condition in ref.conditions:
            try:
                target = prepare_target(
                    training_input,
                    config,
                    n_phases=reference.n_phases,
                    phase=ref.phase,
                    target_fraction=condition.target_fraction,
                    generator=torch.Generator().manual_seed(0),
                )
            except ValueError as exc:
                raise ValueError(f"{where}, condition {condition.label}: {exc}") from None
            targets[condition] = target.target_fraction
        loaded.append(
            _LoadedReference(ref, training_input, truth, reference.n_phases, _hash_array(truth), targets)
        )
    return loaded


# ---------------------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------------------


def _key(kind: str, payload: Mapping) -> str:
    blob = json.dumps({"kind": kind, "schema": _CACHE_SCHEMA, **_jsonable(payload)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class _Cache:
    """``DIR/cache/<kind>/<key>.json`` records (written last: an item is finished when its record exists)."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, key: str, suffix: str) -> Path:
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}{suffix}"

    def get(self, kind: str, key: str) -> dict | None:
        path = self.root / kind / f"{key}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # an unreadable record is redone

    def put(self, kind: str, key: str, record: Mapping) -> dict:
        from swnn.io import atomic_write

        record = _jsonable(dict(record, key=key))
        with atomic_write(self.path(kind, key, ".json"), force=True) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
        return record


def _save_npy(path: Path, array: np.ndarray) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


# ---------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------


def _rmse(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def fidelity(description: Mapping, truth: Mapping) -> dict:
    """Fraction error, S2 and lineal-path RMSE of a described volume against a described reference.

    The same numbers as :func:`physics.compare` (axis by axis when both have the same number of dimensions,
    otherwise the mean over the volume's axes against the mean over the reference's axes), from
    :func:`physics.describe` outputs, so that a large reference is described once.
    """
    axis_by_axis = len(description["shape"]) == len(truth["shape"])
    which = "per_axis" if axis_by_axis else "mean"
    return {
        "reference_fraction_error": description["fraction"] - truth["fraction"],
        "s2_rmse": _rmse(description["s2"][which], truth["s2"][which]),
        "lineal_path_rmse": _rmse(description["lineal_path"][which], truth["lineal_path"][which]),
        "axis_by_axis": axis_by_axis,
    }


def _describe(volume: np.ndarray, *, phase: int, metrics: Sequence[str], r_max: int) -> dict:
    from physics import describe

    fraction = float(np.mean(volume == phase))
    if fraction == 0.0:
        # physics.describe refuses a volume without the phase; record what is meaningful
        r = list(range(r_max + 1))
        zeros = {"r": r, "per_axis": [[0.0] * len(r)] * volume.ndim, "mean": [0.0] * len(r)}
        return {
            "shape": list(volume.shape),
            "phase": phase,
            "fraction": 0.0,
            "s2": zeros,
            "lineal_path": zeros,
        }
    return describe(volume, metrics=[m for m in metrics if m in DESCRIPTOR_METRICS], phase=phase, r_max=r_max)


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _field_slice(field_: np.ndarray, axis: int) -> np.ndarray:
    """The central plane of a 3D field that contains the flow ``axis`` (flow along the slice's rows or columns)."""
    normal = 2 if axis != 2 else 0
    return np.ascontiguousarray(np.take(field_, field_.shape[normal] // 2, axis=normal))


def _speed(velocity: np.ndarray, shape) -> np.ndarray:
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.ndim == len(shape):
        return np.abs(velocity)
    component_axis = 0 if velocity.shape[0] in (2, 3) and tuple(velocity.shape[1:]) == tuple(shape) else -1
    return np.sqrt(np.sum(velocity**2, axis=component_axis))


def _solve(
    metric: str, module, volume: np.ndarray, *, phase: int, study: Study, voxel_size
) -> tuple[dict, dict]:
    """One physics metric on one volume, every axis of the study; (record, field slices)."""
    indicator = (volume == phase).astype(np.uint8)  # the study phase is label 1 for the solvers
    physics = study.physics
    if metric == "permeability" and (indicator.all() or not indicator.any()):
        # no flow path, or no solid (k unbounded): nothing to simulate, said in a note
        k, why = (0.0, "the phase does not occur") if not indicator.any() else (math.nan, "no solid at all")
        rows = [{"axis": axis, "k": k, "converged": False, "reason": why} for axis in physics.axes]
        return {"axes": rows, "notes": [f"permeability not computed: {why}"]}, {}
    results, slices, notes = [], {}, []
    for axis in physics.axes:
        first = axis == physics.axes[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if metric == "conductivity":
                result = module.effective_conductivity(
                    indicator,
                    conductivities=physics.conductivities,
                    axis=axis,
                    return_field=first,
                    **dict(physics.conductivity),
                )
                row = {
                    "axis": axis,
                    "k_eff": float(result.k_eff),
                    "iterations": int(result.iterations),
                    "residual": float(result.residual),
                    "flux_imbalance": float(result.flux_imbalance),
                    "converged": bool(result.converged),
                }
                if first and getattr(result, "temperature", None) is not None:
                    slices["temperature"] = _field_slice(_as_numpy(result.temperature), axis).astype(
                        np.float32
                    )
            else:
                result = module.permeability(
                    indicator,
                    phase=1,
                    axis=axis,
                    voxel_size=voxel_size,
                    return_velocity=first,
                    **dict(physics.permeability),
                )
                row = {"axis": axis, "k": float(result.k)}
                for name in ("k_m2", "k_darcy", "steps", "mlups", "converged", "reason", "boundary"):
                    value = getattr(result, name, None)
                    row[name] = value if isinstance(value, (str, bool, type(None))) else float(value)
                if first and getattr(result, "velocity", None) is not None:
                    speed = _speed(_as_numpy(result.velocity), indicator.shape)
                    slices["speed"] = _field_slice(speed, axis).astype(np.float32)
        notes += [f"{metric} axis {axis}: {w.message}" for w in caught]
        results.append(row)
    if slices:
        slices["structure"] = _field_slice(indicator, physics.axes[0])
    return {"axes": results, "notes": notes}, slices


def _code_tag(module) -> str:
    """Hash of a solver module's source: a changed solver recomputes its cached results."""
    try:
        return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]
    except (OSError, TypeError, AttributeError):
        return "unknown"


def _physics_payload(study: Study, metric: str, code: str, voxel_size) -> dict:
    physics = study.physics
    payload = {"metric": metric, "axes": physics.axes, "code": code}
    if metric == "conductivity":
        payload.update(conductivities=physics.conductivities, options=physics.conductivity)
    else:
        payload.update(voxel_size=voxel_size, options=physics.permeability)
    return payload


# ---------------------------------------------------------------------------------------------------------
# Running a study
# ---------------------------------------------------------------------------------------------------------


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


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        is_study = (output / "study.json").exists() or (output / "cache").is_dir()
        if not is_study and not force:
            raise FileExistsError(
                f"{output} is a non-empty folder that holds no study; choose another -o or pass --force"
            )


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


def run_study(
    study: Study,
    output: str | os.PathLike,
    *,
    force: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> StudyResult:
    """Run (or resume, or extend) a study into the folder ``output``.

    Every reference is loaded and every condition checked first (:func:`prepare_study`); a problem raises before
    anything is trained or written.

    Parameters
    ----------
    study : Study
    output : path
        The study folder; created. Finished items in ``output/cache`` are reused.
    force : bool
        Discard the cache and redo everything (and allow a non-empty folder that holds no study).
    device : str
        ``auto``, ``cpu`` or ``cuda`` for training, generation and the solvers' inputs.
    progress : bool
        Progress bars per stage (tqdm, with an ETA).

    Returns
    -------
    StudyResult
    """
    from swnn._device import resolve_device

    started = time.time()
    t0 = time.perf_counter()
    output = Path(output)
    _check_output(output, force)
    runner = _Runner(study, output, resolve_device(device), progress)
    runner.loaded = prepare_study(study)
    runner.modules = _physics_modules(study)
    runner.notes += runner.modules.notes
    runner.stages["check"] = time.perf_counter() - t0
    # only now is anything written
    if force and (output / "cache").exists():
        shutil.rmtree(output / "cache")
    output.mkdir(parents=True, exist_ok=True)
    for name, stage in (
        ("evaluate references", runner.evaluate_references),
        ("train", runner.train_models),
        ("generate", runner.generate_samples),
        ("evaluate samples", runner.evaluate_samples),
    ):
        t0 = time.perf_counter()
        stage()
        runner.stages[name] = time.perf_counter() - t0
    return runner.write_outputs(started)


class _Runner:
    """The stages of :func:`run_study`; each reads finished items from the cache and computes the others."""

    def __init__(self, study: Study, output: Path, device, progress: bool):
        from swnn._device import resolve_precision

        self.study, self.output, self.device, self.progress = study, output, device, progress
        self.cache = _Cache(output / "cache")
        self.config = study.training_config()
        self.train_precision = resolve_precision(self.config.precision, device)
        self.generate_precision = resolve_precision("auto", device)
        self.versions = _versions()
        self.descriptor_payload = {
            "metrics": [m for m in study.metrics if m in DESCRIPTOR_METRICS],
            "r_max": study.r_max,
        }
        self.loaded: list[_LoadedReference] = []
        self.modules = _Modules({}, ())
        self.notes: list[str] = []
        self.stages: dict[str, float] = {}
        self.reference_records: dict = {}  # (reference name, group) -> evaluation record
        self.models: dict = {}  # (reference name, condition) -> (key, record, cached)
        self.samples: dict = {}  # (reference name, condition, index) -> SampleRecord
        self.evaluation_timings: list[dict] = []

    # -- plans
    @property
    def groups(self) -> tuple[str, ...]:
        """Evaluation groups: the descriptors, then each physics metric whose module is installed."""
        return ("descriptors", *self.modules.found)

    @property
    def plan(self) -> list[tuple[_LoadedReference, Condition]]:
        return [(ref, condition) for ref in self.loaded for condition in ref.settings.conditions]

    @property
    def sample_plan(self) -> list[tuple[_LoadedReference, Condition, int]]:
        return [(ref, c, i) for ref, c in self.plan for i in range(self.study.samples)]

    def _bar(self, items: list, desc: str, unit: str = "item"):
        if not self.progress:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, total=len(items), desc=desc, unit=unit, dynamic_ncols=True)

    def _evaluate(self, group: str, volume: np.ndarray, ref: _LoadedReference, key: str) -> tuple[dict, bool]:
        """The cached evaluation record ``key``, computing it when missing; (record, cached)."""
        record = self.cache.get("evaluations", key)
        if record is not None:
            return record, True
        phase = ref.settings.phase
        t = time.perf_counter()
        if group == "descriptors":
            result = _describe(volume, phase=phase, metrics=self.study.metrics, r_max=self.study.r_max)
        else:
            result, slices = _solve(
                group,
                self.modules.found[group],
                volume,
                phase=phase,
                study=self.study,
                voxel_size=ref.settings.voxel_size,
            )
            if slices:
                _save_npz(self.cache.path("evaluations", key, ".npz"), slices)
        seconds = time.perf_counter() - t
        return self.cache.put("evaluations", key, {"result": result, "seconds": seconds}), False

    def _evaluation_key(self, kind: str, group: str, base: Mapping, ref: _LoadedReference) -> str:
        if group == "descriptors":
            return _key(f"{kind}-descriptors", {**base, **self.descriptor_payload})
        code = self.modules.tags[group]
        return _key(
            f"{kind}-{group}",
            {**base, **_physics_payload(self.study, group, code, ref.settings.voxel_size)},
        )

    # -- stages
    def evaluate_references(self) -> None:
        """Describe each reference's ground truth (or 2D image); physics on its central crop of the samples' size."""
        items = [(ref, g) for ref in self.loaded for g in self.groups if g == "descriptors" or ref.has_volume]
        for ref, group in self._bar(items, "evaluate references"):
            base = {"reference": ref.sha256, "phase": ref.settings.phase}
            if group == "descriptors":
                volume = ref.truth
            else:
                base["crop"] = self.study.size
                volume = _central_crop(ref.truth, self.study.size)
            key = self._evaluation_key("reference", group, base, ref)
            record, _ = self._evaluate(group, volume, ref, key)
            self.reference_records[(ref.settings.name, group)] = record

    def train_models(self) -> None:
        """One model per reference × condition (training resumes from its checkpoint after an interruption)."""
        from swnn import training

        for ref, condition in self._bar(self.plan, "train models", "model"):
            payload = {
                "reference": ref.sha256,
                "trained_on": "volume" if isinstance(ref.training_input, np.ndarray) else "sections",
                "phase": ref.settings.phase,
                "n_phases": ref.n_phases,
                "training": self.config.to_dict(),
                "target_fraction": condition.target_fraction,
                "precision": self.train_precision,
                "version": self.versions["swnn"],
            }
            key = _key("model", payload)
            path = self.cache.path("models", key, ".pt")
            record = self.cache.get("models", key)
            cached = record is not None and path.is_file()
            if not cached:
                t = time.perf_counter()
                result = training.train(
                    ref.training_input,
                    config=self.config,
                    output=path,
                    phase=ref.settings.phase,
                    target_fraction=condition.target_fraction,
                    n_phases=ref.n_phases,
                    reference_name=ref.settings.source,
                    device=self.device,
                    progress=self.progress,
                    resume=True,
                    force=True,
                )
                meta = result.model.metadata
                record = self.cache.put(
                    "models",
                    key,
                    {
                        "settings": payload,
                        "seconds": time.perf_counter() - t,
                        "seconds_iterations": result.seconds,
                        "seconds_per_iteration": result.seconds_per_iteration,
                        "iterations": self.config.iterations,
                        "final_loss": meta["training"]["final_loss"],
                        "target_fraction": meta["target_fraction"],
                        "reference_fraction": meta["reference"]["fraction"],
                        "fraction_at_zero_logit": meta["fraction_at_zero_logit"],
                        "threshold": meta["threshold"],
                    },
                )
            self.models[(ref.settings.name, condition)] = (key, record, cached)

    def generate_samples(self) -> None:
        from swnn import generation
        from swnn.model import load_model

        study = self.study
        settings = generation.GenerationSettings(seed=study.seed, precision=self.generate_precision)
        models: dict = {}
        for ref, condition, index in self._bar(self.sample_plan, "generate samples", "sample"):
            model_key = self.models[(ref.settings.name, condition)][0]
            payload = {
                "model": model_key,
                "seed": study.seed,
                "sample": index,
                "size": study.size,
                "precision": self.generate_precision,
            }
            key = _key("sample", payload)
            path = self.cache.path("samples", key, ".npy")
            record = self.cache.get("samples", key)
            cached = record is not None and path.is_file()
            if not cached:
                if model_key not in models:
                    models.clear()  # one model in memory at a time
                    models[model_key] = load_model(self.cache.path("models", model_key, ".pt"))
                t = time.perf_counter()
                volume = generation.generate(
                    models[model_key], (study.size,) * 3, settings=settings, sample=index, device=self.device
                )
                seconds = time.perf_counter() - t
                _save_npy(path, volume)
                record = self.cache.put("samples", key, {"settings": payload, "seconds": seconds})
            self.samples[(ref.settings.name, condition, index)] = SampleRecord(
                index=index, key=key, path=path, seconds_generate=float(record["seconds"]), cached=cached
            )

    def evaluate_samples(self) -> None:
        items = [(ref, c, i, g) for ref, c, i in self.sample_plan for g in self.groups]
        volume_key, volume = None, None
        for ref, condition, index, group in self._bar(items, "evaluate samples"):
            sample = self.samples[(ref.settings.name, condition, index)]
            key = self._evaluation_key(
                "sample", group, {"sample": sample.key, "phase": ref.settings.phase}, ref
            )
            if self.cache.get("evaluations", key) is None and volume_key != sample.key:
                volume_key, volume = sample.key, np.load(sample.path, allow_pickle=False)
            record, cached = self._evaluate(group, volume, ref, key)
            sample.seconds_evaluate[group] = float(record["seconds"])
            self.evaluation_timings.append(
                {"key": key, "group": group, "seconds": record["seconds"], "cached": cached}
            )
            if group == "descriptors":
                sample.description = record["result"]
            else:
                sample.physics[group] = record["result"]
                npz = self.cache.path("evaluations", key, ".npz")
                if index == 0 and npz.is_file():
                    with np.load(npz, allow_pickle=False) as data:
                        sample.fields.update({k: data[k] for k in data.files})

    # -- results
    def runs(self) -> list[Run]:
        runs = []
        for ref, condition in self.plan:
            name = ref.settings.name
            model_key, model_record, model_cached = self.models[(name, condition)]
            truth = self.reference_records[(name, "descriptors")]["result"]
            reference_physics, reference_fields = {}, {}
            for metric in self.modules.found:
                record = self.reference_records.get((name, metric))
                if record is None:
                    continue
                reference_physics[metric] = record["result"]
                npz = self.cache.path("evaluations", record["key"], ".npz")
                if npz.is_file():
                    with np.load(npz, allow_pickle=False) as data:
                        reference_fields.update({k: data[k] for k in data.files})
            run = Run(
                reference=ref.settings,
                condition=condition,
                truth=ref.truth,
                n_phases=ref.n_phases,
                target_fraction=float(model_record["target_fraction"]),
                model_key=model_key,
                model_record=model_record,
                model_cached=model_cached,
                reference_description=truth,
                reference_physics=reference_physics,
                reference_fields=reference_fields,
            )
            for index in range(self.study.samples):
                sample = self.samples[(name, condition, index)]
                sample.fidelity = fidelity(sample.description, truth)
                run.samples.append(sample)
            runs.append(run)
        return runs

    def _run_notes(self, runs: Sequence[Run]) -> list[str]:
        notes = []
        for run in runs:
            if not run.has_volume and self.modules.found:
                notes.append(
                    f"{run.reference.name}: a 2D reference has no 3D ground truth; its samples' "
                    f"{' and '.join(self.modules.found)} are shown without a reference value"
                )
            for record in run.reference_physics.values():
                notes += [f"{run.reference.name} (reference): {n}" for n in record.get("notes", [])]
            for sample in run.samples:
                for record in sample.physics.values():
                    notes += [f"{run.label} sample {sample.index}: {n}" for n in record.get("notes", [])]
                if sample.fraction == 0.0:
                    notes.append(f"{run.label} sample {sample.index}: the phase does not occur in the sample")
        return notes

    def write_outputs(self, started: float) -> StudyResult:
        """metrics.csv, figures/, study.json and index.html (each written atomically)."""
        from reports import figures as figures_module
        from reports import html as html_module

        t0 = time.perf_counter()
        study, output = self.study, self.output
        runs = self.runs()
        notes = list(self.notes) + self._run_notes(runs)
        frame = metrics_frame(runs, study)
        _write_csv(output / "metrics.csv", frame)
        timing_rows = timing_table(runs, study)
        (output / "figures").mkdir(exist_ok=True)
        device_info = {
            **_device_info(self.device),
            "training_precision": self.train_precision,
            "generation_precision": self.generate_precision,
        }
        figures, figure_notes = figures_module.render_all(
            runs,
            study,
            timing_rows,
            output / "figures",
            physics=tuple(self.modules.found),
            device=device_info["name"],
            progress=self.progress,
        )
        notes = list(dict.fromkeys(notes + figure_notes))
        self.stages["report"] = time.perf_counter() - t0
        summary = {
            "format": FORMAT,
            "name": study.name,
            "source": study.source,
            "settings": study.to_dict(),
            "training_config": self.config.to_dict(),
            "versions": self.versions,
            "device": device_info,
            "physics": {m: (m in self.modules.found) for m in PHYSICS_METRICS if m in study.metrics},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": time.time() - started,
            "timings": {
                "stages": self.stages,
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
                "evaluations": self.evaluation_timings,
                "table": timing_rows,
            },
            "runs": [
                {
                    "reference": run.reference.name,
                    "source": run.reference.source,
                    "condition": run.condition.label,
                    "target_fraction": run.target_fraction,
                    "model": run.model_key,
                    "samples": [s.key for s in run.samples],
                    "ground_truth": "3D volume" if run.has_volume else "2D image",
                }
                for run in runs
            ],
            "figures": [f.name for f in figures],
            "notes": notes,
        }
        _write_text(output / "index.html", html_module.render(summary, frame, figures, timing_rows))
        _write_text(output / "study.json", json.dumps(_jsonable(summary), indent=1, allow_nan=False) + "\n")
        return StudyResult(output=output, metrics=frame, summary=summary, runs=runs)


def _central_crop(volume: np.ndarray, size: int) -> np.ndarray:
    index = tuple(
        slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in volume.shape
    )
    return np.ascontiguousarray(volume[index])


def _write_text(path: Path, text: str) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _write_csv(path: Path, frame) -> None:
    from swnn.io import atomic_write

    with atomic_write(path, force=True) as tmp:
        frame.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------

METRIC_UNITS = {
    "fraction": "1",
    "fraction_error": "1",
    "reference_fraction_error": "1",
    "s2_rmse": "1",
    "lineal_path_rmse": "1",
    "specific_surface": "1/voxel",
    "mean_chord_length": "voxel",
    "percolating_fraction": "1",
    "conductivity": "W/(m·K)",
    "conductivity_ratio": "1",
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
        rows.append((metric, axis, value))
        if row.get("k_m2") is not None:
            rows.append(("permeability_m2", axis, row["k_m2"]))
        reference_value = ref_axes.get(axis, {}).get(value_key)
        if reference_value:
            rows.append((f"{metric}_ratio", axis, value / reference_value))
    return rows


def _descriptor_rows(description: Mapping) -> list[tuple]:
    rows = [("fraction", None, description["fraction"])]
    if "specific_surface" in description:
        rows.append(("specific_surface", None, description["specific_surface"]))
    if "chord_length" in description:
        for axis, mean in enumerate(description["chord_length"]["mean"]):
            rows.append(("mean_chord_length", axis, math.nan if mean is None else mean))
    if "connectivity" in description:
        for axis, value in enumerate(description["connectivity"]["percolating_fraction"]):
            rows.append(("percolating_fraction", axis, value))
    return rows


def metrics_frame(runs: Sequence[Run], study: Study):
    """The tidy table of ``metrics.csv``: one row per reference × condition × (reference or sample) × metric.

    Columns: ``reference, condition, target_fraction, role`` (``reference`` or ``sample``), ``sample`` (empty
    for the reference), ``metric, axis`` (empty for scalars), ``value, unit``. ``fraction_error`` is the sample
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
        for sample in run.samples:
            fraction, *descriptors = _descriptor_rows(sample.description)
            sample_rows = [
                fraction,
                ("fraction_error", None, sample.fraction - run.target_fraction),
                ("reference_fraction_error", None, sample.fidelity["reference_fraction_error"]),
                ("s2_rmse", None, sample.fidelity["s2_rmse"]),
                ("lineal_path_rmse", None, sample.fidelity["lineal_path_rmse"]),
                *descriptors,
            ]
            for metric in PHYSICS_METRICS:
                sample_rows += _physics_rows(
                    metric, sample.physics.get(metric), run.reference_physics.get(metric)
                )
            for metric, axis, value in sample_rows:
                rows.append(
                    {
                        **base,
                        "role": "sample",
                        "sample": sample.index,
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
