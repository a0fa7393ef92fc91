"""A study on Dask: every item of the plan is one task, run after the items it needs.

The items are those of the serial runner (:mod:`~reports.study.stages`), with the same cache: a task reads a
finished item from ``DIR/cache`` or computes it there, and returns its record. Training, the truth's pieces and
the references' evaluations need nothing; a sample waits for its model; a sample's evaluations wait for the
sample; the representative-volume stage waits for the models. An item that several runs share (the pieces of
one truth, for references of one source) is one task. The records are then kept in the plan's order,
so the tables and the report are built exactly as in a serial run. The workers must see the study folder
(one machine, or a shared file system).

Floating-point sums depend on how many threads share them, so every task runs with a fixed number of torch and
numba threads (``threads``, 1 by default on a cluster); a serial run with the same ``threads`` writes the same
``metrics.csv`` and ``summary.csv``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from swnn._threads import fixed_threads

from .stages import evaluate, generate_sample, train_model

__all__ = ["run_on_client"]

_INLINE_BYTES = 1 << 20  # arrays larger than this are scattered once rather than sent with each task


def _train(item, cache, device, threads):
    with fixed_threads(threads):
        return train_model(item, cache, device=device, progress=False)


def _generate(item, cache, device, threads, model=None):
    """``model``: the record of the item's model (a dependency; the model itself is read from its file)."""
    with fixed_threads(threads):
        return generate_sample(item, cache, device=device)


def _evaluate(item, cache, device, threads, sample=None, volume=None, array=None):
    """``sample``: the record of the sample measured (a dependency); ``volume``: a truth's volume, and
    ``array``: the reference's array, sent once."""
    if volume is not None:
        item = dataclasses.replace(item, volume=dataclasses.replace(item.volume, volume=volume))
    if array is not None:
        item = dataclasses.replace(item, volume=array)
    with fixed_threads(threads):
        return evaluate(item, cache, device=device)


def _rev(study, plan, cache, device, threads, models=None):
    from .rev_stage import rev_records

    with fixed_threads(threads):
        return rev_records(study, plan, cache, device=device, progress=False)


def _cached(kind: str, item, cache, device):
    """The record of ``item`` when the cache holds it finished (read here, without a task), else None."""
    if kind == "model":
        finished = cache.get("models", item.key) is not None and item.path.is_file()
        return train_model(item, cache, device=device) if finished else None
    if kind == "sample":
        from swnn.io import sidecar_path

        files = item.path.is_file() and sidecar_path(item.path).is_file()
        finished = files and cache.get("samples", item.key) is not None
        return generate_sample(item, cache, device=device) if finished else None
    return evaluate(item, cache) if cache.get("evaluations", item.key) is not None else None


def _results(client, group: list) -> list:
    """The records of ``group``: futures gathered from the workers, records read from the cache as they are."""
    from distributed import Future

    gathered = iter(client.gather([x for x in group if isinstance(x, Future)]))
    return [next(gathered) if isinstance(x, Future) else x for x in group]


def _wait(client, futures: list, *, progress: bool) -> None:
    """Wait for ``futures`` (a progress bar when ``progress``); the first task's error is raised at once and
    cancels the rest."""
    from distributed import as_completed

    done = as_completed(futures)
    if progress:
        from tqdm.auto import tqdm

        done = tqdm(done, total=len(futures), desc="study tasks", unit="task", dynamic_ncols=True)
    try:
        for future in done:
            future.result()
    except BaseException:
        client.cancel(futures)
        raise


def run_on_client(runner, client, *, threads: int | None = 1) -> None:
    """Compute every item of ``runner``'s plan as Dask tasks on ``client`` and keep their records in ``runner``.

    Parameters
    ----------
    runner : reports.study.runner._Runner
        A checked runner (its plan built).
    client : dask.distributed.Client
    threads : int or None
        torch and numba threads per task; None leaves the workers' settings.
    """
    plan, cache, device = runner.plan, runner.cache, runner.device
    sent: dict[int, object] = {}  # id of a truth volume -> its future: each volume crosses the network once
    submitted: dict[tuple[str, str], object] = {}  # (kind, key) -> future: an item that runs share runs once
    records: dict[tuple[str, str], object] = {}  # (kind, key) -> record of an item the cache already holds

    def once(kind: str, item, submit):
        """The item's future; its record at once when the cache holds it, so that a resumed study sends only
        the work left and no finished item waits in a worker's queue behind a training."""
        key = (kind, item.key)
        if key not in submitted and key not in records:
            record = _cached(kind, item, cache, device)
            if record is None:
                submitted[key] = submit()
            else:
                records[key] = record
        return records[key] if key in records else submitted[key]

    def send(array):
        if id(array) not in sent:
            sent[id(array)] = client.scatter(array, hash=False, broadcast=False)
        return sent[id(array)]

    def evaluation(item, **kwargs):
        def submit(item=item):
            source = item.volume
            if getattr(source, "volume", None) is not None:
                kwargs["volume"] = send(source.volume)
                item = dataclasses.replace(item, volume=dataclasses.replace(source, volume=None))
            elif isinstance(source, np.ndarray) and source.nbytes > _INLINE_BYTES:
                kwargs["array"] = send(source)
                item = dataclasses.replace(item, volume=None)
            return client.submit(_evaluate, item, cache, device, threads, pure=False, **kwargs)

        return once("evaluation", item, submit)

    workers = sorted(client.scheduler_info().get("workers", {})) or [None]

    def training(index, item):
        # the longest tasks, and the first on the critical path: spread over the workers from the start (Dask
        # would queue them on one worker, as their length is unknown), without the truth the task does not need
        light = dataclasses.replace(item, reference=dataclasses.replace(item.reference, truth=None))
        where = workers[index % len(workers)]
        return client.submit(
            _train,
            light,
            cache,
            device,
            threads,
            pure=False,
            priority=1,
            workers=None if where is None else [where],
            allow_other_workers=True,
        )

    models = [
        once("model", item, lambda index=index, item=item: training(index, item))
        for index, item in enumerate(plan.models)
    ]
    references = [evaluation(item) for item in plan.reference_evaluations]
    truth = [evaluation(item) for item in plan.truth_evaluations]
    model_of = {item.key: future for item, future in zip(plan.models, models, strict=True)}
    samples = [
        once(
            "sample",
            item,
            lambda item=item: client.submit(
                _generate, item, cache, device, threads, model=model_of[item.model_key], pure=False
            ),
        )
        for item in plan.samples
    ]
    sample_of = {item.key: future for item, future in zip(plan.samples, samples, strict=True)}
    evaluations = [evaluation(item, sample=sample_of[item.sample.key]) for item in plan.sample_evaluations]
    rev = (
        [client.submit(_rev, runner.study, plan, cache, device, threads, models=models, pure=False)]
        if runner.study.rev
        else []
    )
    _wait(client, list(submitted.values()) + rev, progress=runner.progress)
    for items, group, keep in (
        (plan.reference_evaluations, references, runner.keep_reference),
        (plan.truth_evaluations, truth, runner.keep_truth),
        (plan.models, models, runner.keep_model),
        (plan.samples, samples, runner.keep_sample),
        (plan.sample_evaluations, evaluations, runner.keep_sample_evaluation),
    ):
        for item, record in zip(items, _results(client, group), strict=True):
            keep(item, record)
    if rev:
        runner.rev = rev[0].result()
