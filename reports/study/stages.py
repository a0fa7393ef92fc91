"""The stages of a study: train, generate and evaluate one item each, and the runner that walks the plan.

:func:`train_model`, :func:`generate_sample` and :func:`evaluate` each take one item of the plan and the cache,
return the cached result when the item is finished, compute and store it otherwise, and return a typed record.
:func:`run_study` checks the study, builds the plan and runs every item, stage by stage, with progress bars.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import _Cache, _save_npz
from .measures import _describe, _solve, fidelity
from .plan import (
    EvaluationItem,
    ModelItem,
    Plan,
    SampleItem,
    TruthSource,
    _Modules,
    _physics_modules,
    build_plan,
)
from .references import prepare_study
from .settings import Condition, ReferenceSettings, Study

__all__ = [
    "EvaluationRecord",
    "ModelRecord",
    "Run",
    "SampleRecord",
    "evaluate",
    "generate_sample",
    "run_study",
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
        ``fraction_at_zero_logit``, ``threshold``.
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

    record = cache.get("models", item.key)
    if record is not None and item.path.is_file():
        return ModelRecord(item.key, record, cached=True)
    ref = item.reference
    item.path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
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
            "final_loss": meta["training"]["final_loss"],
            "target_fraction": meta["target_fraction"],
            "reference_fraction": meta["reference"]["fraction"],
            "fraction_at_zero_logit": meta["fraction_at_zero_logit"],
            "threshold": meta["threshold"],
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
        volume = generation.generate(
            model, (item.size,) * 3, settings=item.generation, sample=item.index, device=device
        )
        seconds = time.perf_counter() - t
        metadata = generation.provenance(
            model,
            settings=item.generation,
            sample=item.index,
            model_path=item.model_path,
            voxel_size=item.voxel_size,
        )
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


@functools.lru_cache(maxsize=1)
def _draw(builtin: str, seed: int, side: int) -> np.ndarray:
    from swnn.references import builtin_realization

    return builtin_realization(builtin, seed=seed, shape=(side,) * 3)


def _read_volume(volume) -> np.ndarray:
    """An item's volume: the array itself, a piece of the truth, or the ``.npy`` file's content."""
    if isinstance(volume, TruthSource):
        size, (z, y, x) = volume.plan.size, volume.piece.origin
        source = volume.volume
        if volume.builtin is not None:  # one draw in memory, for its pieces one after the other
            source = _draw(volume.builtin, volume.piece.draw, volume.plan.draw_side)
        return np.ascontiguousarray(source[z : z + size, y : y + size, x : x + size])
    return volume if isinstance(volume, np.ndarray) else np.load(volume, allow_pickle=False)


def evaluate(
    item: EvaluationItem, cache: _Cache, *, read_volume: Callable = _read_volume
) -> EvaluationRecord:
    """Measure the group of ``item`` (descriptors, or one physics solver on every axis), or read it in the cache.

    ``read_volume(item.volume)`` gives the volume when it must be measured (the runner passes one that keeps
    the last sample in memory, for the groups measured on it one after the other).
    """
    record = cache.get("evaluations", item.key)
    cached = record is not None
    if not cached:
        volume = read_volume(item.volume)
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
            )
            if slices:
                _save_npz(item.fields_path, slices)
        seconds = time.perf_counter() - t
        record = cache.put("evaluations", item.key, {"result": result, "seconds": seconds})
    fields = item.fields_path if item.fields_path.is_file() else None
    return EvaluationRecord(item.key, item.group, record["result"], float(record["seconds"]), cached, fields)


def _read_fields(path: Path | None) -> dict:
    if path is None:
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ---------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()):
        is_study = (output / "study.json").exists() or (output / "cache").is_dir()
        if not is_study and not force:
            raise FileExistsError(
                f"{output} is a non-empty folder that holds no study; choose another -o or pass --force"
            )


class _Runner:
    """The stages of :func:`run_study` over the plan; each reads finished items from the cache and computes the others."""

    def __init__(self, study: Study, output: Path, device, progress: bool):
        from swnn._device import resolve_precision

        self.study, self.output, self.device, self.progress = study, output, device, progress
        self.cache = _Cache(output / "cache")
        self.config = study.training_config()
        self.train_precision = resolve_precision(self.config.precision, device)
        self.generate_precision = resolve_precision("auto", device)
        self.plan: Plan | None = None
        self.modules = _Modules({}, ())
        self.notes: list[str] = []
        self.stages: dict[str, float] = {}
        self.reference_records: dict = {}  # (reference name, group) -> EvaluationRecord
        self.models: dict = {}  # (reference name, condition) -> ModelRecord
        self.samples: dict = {}  # (reference name, condition, index) -> SampleRecord
        self.evaluation_timings: list[dict] = []
        self.truth_records: dict = {}  # (reference name, piece index) -> SampleRecord
        self.rev: dict = {}  # reference name -> {"truth" / "sample": {prop: RevCurve}}

    def check(self) -> None:
        """Load the references, check every condition and the physics settings, and plan every item."""
        references = prepare_study(self.study)
        self.modules = _physics_modules(self.study)
        self.notes += self.modules.notes
        self.plan = build_plan(
            self.study,
            references,
            self.modules,
            self.cache,
            train_precision=self.train_precision,
            generate_precision=self.generate_precision,
        )

    def _bar(self, items, desc: str, unit: str = "item"):
        if not self.progress:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, total=len(items), desc=desc, unit=unit, dynamic_ncols=True)

    # -- stages
    def evaluate_references(self) -> None:
        """Describe each reference's ground truth (or 2D image); physics on its central crop of the samples' size."""
        for item in self._bar(self.plan.reference_evaluations, "evaluate references"):
            self.reference_records[(item.reference, item.group)] = evaluate(item, self.cache)

    def evaluate_truth(self) -> None:
        """Measure each piece of each 3D truth like a sample (physics on the first pieces, ``Study.physics_of``)."""
        for item in self._bar(self.plan.truth_evaluations, "evaluate truth pieces", "piece"):
            record = evaluate(item, self.cache)
            key = (item.reference, item.piece.index)
            piece = self.truth_records.setdefault(
                key,
                SampleRecord(
                    index=item.piece.index, key=item.key, path=None, seconds_generate=0.0, cached=True
                ),
            )
            piece.seconds_evaluate[item.group] = record.seconds
            if item.group == "descriptors":
                piece.description = record.result
            else:
                piece.physics[item.group] = record.result

    def measure_rev(self) -> None:
        """Representative-volume curves of each 3D truth and of one sample of twice the samples' side."""
        from .rev_stage import rev_records

        if not self.study.rev:
            return
        self.rev = rev_records(self.study, self.plan, self.cache, device=self.device, progress=self.progress)

    def train_models(self) -> None:
        """One model per reference × condition (training resumes from its checkpoint after an interruption)."""
        for item in self._bar(self.plan.models, "train models", "model"):
            record = train_model(item, self.cache, device=self.device, progress=self.progress)
            self.models[(item.reference.settings.name, item.condition)] = record

    def generate_samples(self) -> None:
        from swnn.model import load_model

        load = functools.lru_cache(maxsize=1)(load_model)  # one model in memory at a time
        for item in self._bar(self.plan.samples, "generate samples", "sample"):
            record = generate_sample(item, self.cache, device=self.device, load_model=load)
            self.samples[(item.reference, item.condition, item.index)] = record

    def evaluate_samples(self) -> None:
        read = functools.lru_cache(maxsize=1)(_read_volume)  # one sample in memory, for all of its groups
        for item in self._bar(self.plan.sample_evaluations, "evaluate samples"):
            sample = self.samples[(item.reference, item.sample.condition, item.sample.index)]
            record = evaluate(item, self.cache, read_volume=read)
            sample.seconds_evaluate[item.group] = record.seconds
            self.evaluation_timings.append(
                {"key": record.key, "group": record.group, "seconds": record.seconds, "cached": record.cached}
            )
            if item.group == "descriptors":
                sample.description = record.result
            else:
                sample.physics[item.group] = record.result
                if sample.index == 0:
                    sample.fields.update(_read_fields(record.fields))

    # -- results
    def runs(self) -> list[Run]:
        """One :class:`Run` per reference × condition, with its samples' fidelity against the reference."""
        runs = []
        for item in self.plan.models:
            ref, condition = item.reference, item.condition
            name = ref.settings.name
            model = self.models[(name, condition)]
            truth = self.reference_records[(name, "descriptors")].result
            reference_physics, reference_fields = {}, {}
            for metric in self.modules.found:
                record = self.reference_records.get((name, metric))
                if record is None:
                    continue
                reference_physics[metric] = record.result
                reference_fields.update(_read_fields(record.fields))
            run = Run(
                reference=ref.settings,
                condition=condition,
                truth=ref.truth,
                n_phases=ref.n_phases,
                target_fraction=float(model.record["target_fraction"]),
                model_key=model.key,
                model_record=model.record,
                model_cached=model.cached,
                reference_description=truth,
                reference_physics=reference_physics,
                reference_fields=reference_fields,
            )
            for index in range(self.study.samples_of(ref.settings)):
                sample = self.samples[(name, condition, index)]
                sample.fidelity = fidelity(sample.description, truth)
                run.samples.append(sample)
            plan = self.plan.truth_plans.get(name)
            if plan is not None:
                run.truth_plan = plan
                for piece in plan.pieces:
                    record = self.truth_records[(name, piece.index)]
                    record.fidelity = fidelity(record.description, truth)
                    run.truth_pieces.append(record)
            run.rev = self.rev.get(name, {})
            runs.append(run)
        return runs


def run_study(
    study: Study,
    output: str | os.PathLike,
    *,
    force: bool = False,
    device: str = "auto",
    progress: bool = True,
):
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

    from .outputs import write_outputs

    started = time.time()
    t0 = time.perf_counter()
    output = Path(output)
    _check_output(output, force)
    runner = _Runner(study, output, resolve_device(device), progress)
    runner.check()
    runner.stages["check"] = time.perf_counter() - t0
    # only now is anything written
    if force and (output / "cache").exists():
        shutil.rmtree(output / "cache")
    output.mkdir(parents=True, exist_ok=True)
    for name, stage in (
        ("evaluate references", runner.evaluate_references),
        ("evaluate truth", runner.evaluate_truth),
        ("train", runner.train_models),
        ("generate", runner.generate_samples),
        ("evaluate samples", runner.evaluate_samples),
        ("representative volume", runner.measure_rev),
    ):
        t0 = time.perf_counter()
        stage()
        runner.stages[name] = time.perf_counter() - t0
    return write_outputs(
        study,
        output,
        runner.runs(),
        config=runner.config,
        device=runner.device,
        precisions=(runner.train_precision, runner.generate_precision),
        physics=tuple(runner.modules.found),
        stages=runner.stages,
        evaluations=runner.evaluation_timings,
        notes=runner.notes,
        started=started,
        progress=progress,
    )
