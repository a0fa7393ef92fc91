"""The runner of a study: checks it, builds the plan and runs every item, stage by stage, with progress bars."""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path

from swnn._threads import fixed_threads

from .cache import _Cache
from .measures import fidelity
from .plan import Plan, _Modules, _physics_modules, build_plan
from .references import prepare_study
from .settings import Study
from .stages import Run, SampleRecord, _read_fields, _read_volume, evaluate, generate_sample, train_model
from .tasks import run_on_client

__all__ = ["run_study"]


# ---------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------


def _check_output(output: Path, force: bool) -> None:
    from swnn.io import check_folder

    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} exists and is not a folder")
    existing = next(folder for folder in (output, *output.parents) if folder.exists())
    check_folder(existing)  # writable, before any work
    if output.is_dir() and any(output.iterdir()):
        is_study = (output / "study.json").exists() or (output / "cache").is_dir()
        if not is_study and not force:
            raise FileExistsError(
                f"{output} is a non-empty folder that holds no study; choose another output folder or pass force=True"
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
            self.keep_reference(item, evaluate(item, self.cache, device=self.device))

    def keep_reference(self, item, record) -> None:
        self.reference_records[(item.reference, item.group)] = record

    def evaluate_truth(self) -> None:
        """Measure each piece of each 3D truth like a sample (physics on the first pieces, ``Study.physics_of``)."""
        for item in self._bar(self.plan.truth_evaluations, "evaluate truth pieces", "piece"):
            self.keep_truth(item, evaluate(item, self.cache, device=self.device))

    def keep_truth(self, item, record) -> None:
        key = (item.reference, item.piece.index)
        piece = self.truth_records.setdefault(
            key,
            SampleRecord(index=item.piece.index, key=item.key, path=None, seconds_generate=0.0, cached=True),
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
            self.keep_model(item, train_model(item, self.cache, device=self.device, progress=self.progress))

    def keep_model(self, item, record) -> None:
        self.models[(item.reference.settings.name, item.condition)] = record
        self.notes += [f"{item.label}: {warning}" for warning in record.record.get("warnings", ())]

    def generate_samples(self) -> None:
        from swnn.model import load_model

        load = functools.lru_cache(maxsize=1)(load_model)  # one model in memory at a time
        for item in self._bar(self.plan.samples, "generate samples", "sample"):
            self.keep_sample(item, generate_sample(item, self.cache, device=self.device, load_model=load))

    def keep_sample(self, item, record) -> None:
        self.samples[(item.reference, item.condition, item.index)] = record

    def evaluate_samples(self) -> None:
        read = functools.lru_cache(maxsize=1)(_read_volume)  # one sample in memory, for all of its groups
        for item in self._bar(self.plan.sample_evaluations, "evaluate samples"):
            self.keep_sample_evaluation(
                item, evaluate(item, self.cache, device=self.device, read_volume=read)
            )

    def keep_sample_evaluation(self, item, record) -> None:
        sample = self.samples[(item.reference, item.sample.condition, item.sample.index)]
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


def _execution_of(client) -> dict:
    """The scheduler's address and its number of workers."""
    info = client.scheduler_info()
    return {"scheduler": str(info.get("address", "dask")), "workers": len(info.get("workers", {}))}


def run_study(
    study: Study,
    output: str | os.PathLike,
    *,
    force: bool = False,
    device: str = "auto",
    progress: bool = True,
    client=None,
    threads: int | None = None,
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
        Redo everything, ignoring the cache (and allow a non-empty folder that holds no study). The old cache
        is set aside and deleted only when the run succeeds; a failed or interrupted run restores it.
    device : str
        ``auto``, ``cpu`` or ``cuda`` for training, generation and the solvers' inputs.
    progress : bool
        Progress bars per stage (tqdm, with an ETA); one bar over the tasks with a ``client``.
    client : dask.distributed.Client, optional
        Run every item as a Dask task on this client's workers (:mod:`~reports.study.tasks`), which must see
        ``output``. The tables and the report are those of a serial run with the same ``threads``.
    threads : int, optional
        torch and numba threads per item; default: as set (all cores) without ``client``, 1 with one.

    Returns
    -------
    StudyResult
    """
    from swnn._device import resolve_device

    from .outputs import write_outputs

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a whole number of at least 1, received {threads!r}")
    started = time.time()
    t0 = time.perf_counter()
    output = Path(output)
    _check_output(output, force)
    runner = _Runner(study, output, resolve_device(device), progress)
    runner.check()
    runner.stages["check"] = time.perf_counter() - t0
    # only now is anything written; with force, the old cache is set aside, and restored if the run fails
    cache, old_cache = output / "cache", output / ".cache-replaced"
    shutil.rmtree(old_cache, ignore_errors=True)  # left by a run that was killed outright
    set_aside = force and cache.exists()
    if set_aside:
        cache.rename(old_cache)
    output.mkdir(parents=True, exist_ok=True)
    if client is not None and threads is None:
        threads = 1
    try:
        if client is not None:
            t0 = time.perf_counter()
            run_on_client(runner, client, threads=threads)
            runner.stages["tasks on Dask"] = time.perf_counter() - t0
        else:
            with fixed_threads(threads):
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
    except BaseException:
        if set_aside:
            shutil.rmtree(cache, ignore_errors=True)
            old_cache.rename(cache)
        raise
    shutil.rmtree(old_cache, ignore_errors=True)
    execution = {"scheduler": "local"} if client is None else _execution_of(client)
    if threads:
        execution["threads"] = threads
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
        execution=execution,
    )
