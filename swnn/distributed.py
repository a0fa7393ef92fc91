"""Generation beyond one process: each output block is one Dask task, written straight into a zarr store.

The generator is fully convolutional with a fixed receptive field and its noise is a function of seed, sample
and global position (:class:`swnn.generation.BlockGenerator`), so the blocks of a volume are independent: a
task regenerates its block's noise with the halo, runs the network, and writes the block into its own zarr
chunk (chunks are the blocks, so no two tasks write one chunk). The model is sent once to each worker. The
volume is identical whatever the number of workers, the order of the blocks or the block size.

While it runs the store is ``OUT.zarr.partial`` and every finished block leaves a marker file in it, written
after its chunk. An interrupted generation (a worker lost, the client stopped, Ctrl-C) is resumed by the same
call: blocks with a marker are skipped, a block without one is redone. When every block is there, the markers
go, the provenance is written into the array's attributes and ``OUT.zarr.json``, and the store is renamed
``OUT.zarr``: one array at the store's root, which any zarr reader opens.

Where it runs (:func:`client_for`): ``"local"`` (no cluster: :func:`swnn.api.generate_to` as usual),
``"local:N"`` (a ``LocalCluster`` of N worker processes on this machine) or the address of a running Dask
scheduler (``"tcp://host:8786"``, started with ``dask scheduler`` and ``dask worker``; on HPC systems
dask-jobqueue, on Kubernetes dask-kubernetes). On a multi-GPU machine, dask-cuda's ``LocalCUDACluster`` gives
one worker per GPU; pass ``device="cuda"`` and each worker runs its blocks on its own GPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GenerationStats", "client_for", "generate_zarr", "parse_scheduler"]

_DONE = "swnn-done"  # the markers' folder inside the partial store
_KEY = "swnn_partial_key"  # the attribute holding what the partial store is a generation of


@dataclass(frozen=True)
class GenerationStats:
    """What a distributed generation did: blocks computed now, blocks found done, seconds."""

    path: Path
    computed: int
    skipped: int
    seconds: float


def parse_scheduler(scheduler: str) -> tuple[str, object]:
    """``"local"`` -> ("local", None); ``"local:N"`` -> ("cluster", N); an address -> ("address", it)."""
    text = str(scheduler).strip()
    if text == "local":
        return "local", None
    if text.startswith("local:"):
        count = text.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler {scheduler!r}: local:N needs a number of workers N >= 1")
        return "cluster", int(count)
    if "://" in text:
        return "address", text
    raise ValueError(
        f"scheduler must be 'local', 'local:N' (N worker processes) or a scheduler address such as "
        f"tcp://host:8786; received {scheduler!r}"
    )


@contextlib.contextmanager
def client_for(scheduler: str, *, threads_per_worker: int = 1) -> Iterator[object]:
    """A ``dask.distributed.Client`` for ``scheduler`` (None for ``"local"``), closed on exit; a cluster
    started here prints its dashboard address."""
    kind, value = parse_scheduler(scheduler)
    if kind == "local":
        yield None
        return
    from distributed import Client, LocalCluster

    if kind == "cluster":
        with (
            LocalCluster(
                n_workers=value, threads_per_worker=threads_per_worker, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
            yield client
    else:
        with Client(value) as client:
            print(f"Dask dashboard: {client.dashboard_link}", flush=True)
            yield client


def _marker(index: Sequence[slice]) -> str:
    return "_".join(str(s.start) for s in index)


_GENERATORS: dict = {}  # per worker process: one BlockGenerator per (model, seed, sample, ...)
# One block at a time per worker process: its threads share the generator (and its noise cache) and the
# process-wide thread counts that fixed_threads sets. A block already uses the cores it is given.
_GENERATING = threading.Lock()


def _block_task(
    model, settings, sample, device, transforms, index, store: str, threads: int, token: str
) -> str:
    """Generate one block and write it into the partial store, then its marker (runs on a worker)."""
    import zarr

    from swnn._threads import fixed_threads
    from swnn.generation import BlockGenerator

    with _GENERATING, fixed_threads(threads):
        generator = _GENERATORS.get(token)
        if generator is None:  # the first block of this generation on this worker
            _GENERATORS.clear()
            generator = _GENERATORS[token] = BlockGenerator(
                model, settings=settings, sample=sample, device=device, transforms=transforms
            )
        labels = generator.labels(index)
    zarr.open_array(store=store, mode="r+")[tuple(index)] = labels
    (Path(store) / _DONE / _marker(index)).touch()
    return _marker(index)


def generate_zarr(
    path: str | os.PathLike,
    model,
    shape: Sequence[int],
    *,
    client,
    settings,
    sample: int = 0,
    device="auto",
    transforms: Sequence = (),
    metadata: dict | None = None,
    force: bool = False,
    threads: int = 1,
    progress: bool = False,
    on_block=None,
) -> GenerationStats:
    """Generate one volume into the zarr store ``path`` (``.zarr``) with one task per block on ``client``.

    Parameters
    ----------
    client : dask.distributed.Client
    settings : swnn.generation.GenerationSettings
        Block size (the zarr chunk), seed and a resolved precision.
    metadata : dict
        Provenance written into the array's attributes and ``path + '.json'`` when complete.
    threads : int
        torch threads per task (0 leaves the worker's setting), so that tasks sharing a machine do not
        oversubscribe it.
    on_block : callable, optional
        Called with the number of blocks finished after each one (progress hooks, tests).

    Returns
    -------
    GenerationStats
    """
    import zarr

    from swnn.generation import iter_blocks
    from swnn.io import check_destination, sidecar_path

    path = Path(path)
    if path.suffix.lower() != ".zarr":
        raise ValueError(f"{path}: distributed generation writes a zarr store; give a path ending in .zarr")
    check_destination(path, force=force)
    shape = tuple(int(n) for n in shape)
    partial = path.with_name(path.name + ".partial")
    key = json.dumps(
        {"model": model.model_hash(), "shape": shape, "settings": [settings.block, settings.seed,
         settings.precision], "sample": sample, "metadata": metadata or {}},
        sort_keys=True, default=str,
    )  # fmt: skip
    if partial.exists():
        try:
            same = zarr.open_array(store=str(partial), mode="r").attrs.get(_KEY) == key
        except Exception:  # not a store this function wrote: start afresh
            same = False
        if not same:
            shutil.rmtree(partial)
    if not partial.exists():
        chunks = tuple(min(settings.block, n) for n in shape)
        array = zarr.open_array(
            store=str(partial), mode="w", shape=shape, chunks=chunks, dtype="uint8", fill_value=0
        )
        array.attrs[_KEY] = key
        (partial / _DONE).mkdir()
    done = {p.name for p in (partial / _DONE).iterdir()}
    blocks = list(iter_blocks(shape, settings.block))
    todo = [index for index in blocks if _marker(index) not in done]
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(blocks), initial=len(blocks) - len(todo), desc=f"generate {sample}", unit="block"
        )
    futures = []
    try:
        if todo:
            from distributed import as_completed

            model_future = client.scatter(model, broadcast=True, hash=False)  # a key of its own per call
            token = f"{key}|{time.time_ns()}"  # one generation: its workers build their generator once
            transforms = tuple(transforms)
            futures = [
                client.submit(
                    _block_task,
                    model_future,
                    settings,
                    sample,
                    device,
                    transforms,
                    index,
                    str(partial),
                    threads,
                    token,
                    pure=False,
                )  # fmt: skip
                for index in todo
            ]
            for finished, future in enumerate(as_completed(futures), start=1):
                future.result()  # raises a task's error here
                if bar is not None:
                    bar.update(1)
                if on_block is not None:
                    on_block(finished)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    array = zarr.open_array(store=str(partial), mode="r+")
    attributes = dict(metadata or {})
    array.attrs.update(attributes)
    del array.attrs[_KEY]
    shutil.rmtree(partial / _DONE)
    if path.exists():  # force was checked above
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.replace(partial, path)
    provenance = {**attributes, "shape": list(shape), "dtype": "uint8", "format": "zarr"}
    sidecar_path(path).write_text(json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n")
    return GenerationStats(
        path=path, computed=len(todo), skipped=len(blocks) - len(todo), seconds=time.perf_counter() - start
    )
