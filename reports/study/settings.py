"""The study file: its settings as frozen dataclasses, read and checked from TOML.

A study file (see the README, "swnn study") names the references (files or ``builtin:NAME``), the
conditions (stochastic, or controlled target fractions), how many samples of which size, the training
settings and the metrics. :func:`load_study` reads and checks it into a :class:`Study`, reporting every
unknown key and bad value in one ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
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
    "default_study_path",
    "load_study",
    "study_from_dict",
]

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
    samples : int or None
        Samples per model of this reference (None: the study's ``samples``): a reference whose measures
        spread more needs more of them for the same power.
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
        """The same study trained with ``profile``'s settings as they are (the file's overrides dropped)."""
        from swnn.training import PROFILES

        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        return dataclasses.replace(self, training=TrainingSettings(profile=profile))

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
    "sample_seed",
    "physics_samples",
    "truth_samples",
    "rev",
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
    "samples",
)
_PHYSICS_KEYS = ("axes", "conductivities", "conductivity", "permeability")


def default_study_path() -> Path:
    """The built-in default study (``reports/default_study.toml``, package data)."""
    return Path(__file__).parents[1] / "default_study.toml"


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
        bool: isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        list: isinstance(value, list),
        dict: isinstance(value, dict),
    }[kind]
    if not ok:
        names = {
            int: "an integer",
            bool: "true or false",
            float: "a number",
            str: "a string",
            list: "an array",
            dict: "a table",
        }
        problems.add(f"{where}.{key} must be {names[kind]}, got {value!r}")
        return default
    return float(value) if kind is float else value


def _physics_samples(problems: _Problems, value) -> tuple[tuple[str, int], ...]:
    """``physics_samples``: one number for every physics metric, or a table per metric."""
    if value is None:
        return ()
    table = {m: value for m in PHYSICS_METRICS} if not isinstance(value, dict) else value
    out = []
    for metric, n in table.items():
        if metric not in PHYSICS_METRICS:
            problems.add(
                f"physics_samples: unknown metric {metric!r} (accepted: {', '.join(PHYSICS_METRICS)})"
            )
        elif isinstance(n, bool) or not isinstance(n, int) or n < 1:
            problems.add(f"physics_samples must be a positive integer or a table of them, got {value!r}")
            break
        else:
            out.append((metric, n))
    return tuple(sorted(out))


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
    samples = _typed(problems, table, "samples", int, where)
    if samples is not None and samples < 1:
        problems.add(f"{where}.samples must be at least 1, got {samples}")
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
        samples=samples,
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
    sample_seed = _typed(problems, data, "sample_seed", int, "study", None)
    physics_samples = _physics_samples(problems, data.get("physics_samples"))
    truth_samples = _typed(problems, data, "truth_samples", int, "study", None)
    rev = _typed(problems, data, "rev", bool, "study", False)
    if samples is not None and samples < 1:
        problems.add(f"samples must be at least 1, got {samples}")
    if sample_seed is not None and sample_seed < 0:
        problems.add(f"sample_seed must be a non-negative integer, got {sample_seed}")
    if truth_samples is not None and truth_samples < 0:
        problems.add(f"truth_samples must be 0 or more, got {truth_samples}")
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
        sample_seed=sample_seed,
        physics_samples=physics_samples,
        truth_samples=truth_samples,
        rev=bool(rev),
        metrics=metrics,
        training=training,
        physics=physics,
        source=origin,
    )
