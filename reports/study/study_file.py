"""Reading a study file: TOML into a checked :class:`~reports.study.settings.Study`.

:func:`load_study` reads a file (or the default study) and :func:`study_from_dict` checks a parsed table,
reporting every unknown key and bad value in one ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .settings import (
    _RESERVED,
    ALL_METRICS,
    CORE_METRICS,
    PHYSICS_METRICS,
    Condition,
    PhysicsSettings,
    ReferenceSettings,
    Study,
    TrainingSettings,
)

__all__ = ["default_study_path", "load_study", "study_from_dict"]


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
    "truth",
    "training",
    "slices",
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
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a valid TOML study file ({exc})") from None


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


_GENERATE_KEYS = ("fraction", "fraction_profile", "mask", "mask_mode")


def _generation_condition(problems: _Problems, table: dict, where: str) -> Condition | None:
    """A table of generation conditions: {fraction = F}, {fraction_profile = "AXIS:A..B"} or
    {mask = "SPEC", mask_mode = "multiply" | "offset"}."""
    from swnn.masks import MASK_MODES

    unknown = sorted(set(table) - set(_GENERATE_KEYS))
    chosen = [k for k in ("fraction", "fraction_profile", "mask") if k in table]
    if unknown or len(chosen) != 1:
        problems.add(
            f"{where}: {table!r} is not a condition table (one of fraction, fraction_profile or mask, "
            "with mask_mode for a mask)"
        )
        return None
    value = table[chosen[0]]
    if chosen[0] == "fraction" and not (isinstance(value, float) and 0 < value < 1):
        problems.add(f"{where}: fraction must be a number in (0, 1), got {value!r}")
        return None
    if chosen[0] != "fraction" and not isinstance(value, str):
        problems.add(f"{where}: {chosen[0]} must be a string, got {value!r}")
        return None
    if table.get("mask_mode", "multiply") not in MASK_MODES or ("mask_mode" in table and chosen[0] != "mask"):
        problems.add(f"{where}: mask_mode must be one of {', '.join(MASK_MODES)}, with a mask")
        return None
    return Condition(generate=tuple(sorted(table.items())))


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
        elif isinstance(value, dict):
            condition = _generation_condition(problems, value, where)
            if condition is not None:
                out.append(condition)
        else:
            problems.add(
                f'{where}: {value!r} is not a condition (accepted: "stochastic", a fraction in (0, 1), or a '
                'table {fraction = F}, {fraction_profile = "AXIS:A..B"} or {mask = "SPEC"})'
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


def _training(problems: _Problems, table: Mapping, where: str = "[training]") -> TrainingSettings:
    from swnn.training import PROFILES, TrainConfig

    profile = _typed(problems, table, "profile", str, where, "quick")
    if profile not in PROFILES:
        problems.add(f"{where}.profile must be one of {', '.join(PROFILES)}, got {profile!r}")
        profile = "quick"
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    problems.unknown(table, ["profile", *fields], where)
    overrides = {k: _freeze(v) for k, v in table.items() if k in fields}
    settings = TrainingSettings(profile=profile, overrides=tuple(sorted(overrides.items())))
    try:
        settings.config()
    except (TypeError, ValueError) as exc:
        problems.add(f"{where}: {exc}")
    return settings


def _slices(problems: _Problems, table: Mapping, where: str) -> tuple[tuple[int, int], ...] | None:
    """``slices = ["AXIS:INDEX", ...]``: the 2D sections of a 3D source to train on, as (axis, index)."""
    values = _typed(problems, table, "slices", list, where)
    if values is None:
        return None
    from swnn.api import parse_slice

    slices = []
    for value in values:
        try:
            slices.append(parse_slice(value))
        except ValueError:
            problems.add(
                f"{where}.slices: {value!r} is not AXIS:INDEX (an axis 0, 1 or 2 and a section index)"
            )
    if not values:
        problems.add(f"{where}.slices must name at least one section AXIS:INDEX")
    return tuple(slices)


def _own_training(problems: _Problems, table: Mapping, study: Mapping, where: str) -> TrainingSettings | None:
    """The study's ``[training]`` with the reference's ``training`` table over it; None without one."""
    if "training" not in table:
        return None
    own = table["training"]
    if not isinstance(own, dict):
        problems.add(f"{where}.training must be a table of training settings, got {own!r}")
        return None
    return _training(problems, {**study, **own}, f"{where}.training")


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
    problems: _Problems, table, index: int, base: Path, default_conditions, training: Mapping
) -> ReferenceSettings | None:
    """One ``[[references]]`` table; its ``training`` table is laid over the study's ``[training]``."""
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
    truth = _typed(problems, table, "truth", str, where)
    if truth is not None:
        path = Path(truth).expanduser()
        truth = os.path.abspath(path if path.is_absolute() else base / path)
    slices = _slices(problems, table, where)
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
        truth=truth,
        training=_own_training(problems, table, training, where),
        slices=slices,
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
    training_table = _typed(problems, data, "training", dict, "study", {}) or {}
    training = _training(problems, training_table)
    physics = _physics(problems, _typed(problems, data, "physics", dict, "study", {}))
    tables = _typed(problems, data, "references", list, "study", [])
    if not tables:
        problems.add("a study needs at least one [[references]] table")
    references = [
        _reference(problems, t, i, Path(base), default_conditions, training_table)
        for i, t in enumerate(tables)
    ]
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
