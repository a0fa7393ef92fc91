"""A large volume generated into zarr in one process and on a Dask LocalCluster: wall time, peak memory per
worker, equality of the two volumes, and the time per block (from which N workers or GPUs scale).

    python -m benchmarks.dask_generation MODEL --size 1024 --block 128 --workers 2 --out dask.jsonl --scratch DIR

The single-process run is the command ``swnn generate MODEL -o DIR/serial.zarr --size N --block B`` (its peak
resident memory from ``/usr/bin/time -v`` where present); the distributed one is
``swnn.generate_to(DIR/dask.zarr, ..., client=Client(LocalCluster(n_workers=W, threads_per_worker=1)))``, with
each worker's peak resident memory read from ``getrusage`` after the run. The volumes are compared chunk by
chunk.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._info import record_line


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--skip-serial", action="store_true")
    args = parser.parse_args(argv)
    import zarr
    from distributed import Client, LocalCluster

    import swnn

    args.scratch.mkdir(parents=True, exist_ok=True)
    serial, parallel = args.scratch / "serial.zarr", args.scratch / "dask.zarr"
    with args.out.open("a") as out:
        record_line(out, kind="machine", node=platform.node(), processor=platform.processor(), cpus=os.cpu_count(),
                    date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), size=args.size, block=args.block)  # fmt: skip
        if not args.skip_serial:
            command = [sys.executable, "-m", "swnn", "generate", args.model, "-o", str(serial), "--size",
                       str(args.size), "--block", str(args.block), "--force", "--quiet", "--device", "cpu"]  # fmt: skip
            timed = (
                ["/usr/bin/time", "-v", *command]
                if shutil.which("time") or Path("/usr/bin/time").exists()
                else command
            )
            start = time.perf_counter()
            done = subprocess.run(timed, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
            record_line(out, kind="serial", command=" ".join(command[1:]), seconds=round(seconds, 1), returncode=done.returncode,
                        peak_rss_mib=round(int(match.group(1)) / 1024, 1) if match else None)  # fmt: skip
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            start = time.perf_counter()
            swnn.generate_to(
                parallel, args.model, args.size, block=args.block, device="cpu", force=True, client=client
            )
            seconds = time.perf_counter() - start
            peaks = client.run(_peak_rss_mib)
        blocks = -((-args.size // args.block) ** 3)
        record_line(out, kind="dask", workers=args.workers, seconds=round(seconds, 1), blocks=blocks,
                    seconds_per_block_per_worker=round(seconds * args.workers / blocks, 3),
                    peak_rss_mib_per_worker=sorted(round(v, 1) for v in peaks.values()))  # fmt: skip
        if not args.skip_serial:
            a, b = (
                zarr.open_array(store=str(serial), mode="r"),
                zarr.open_array(store=str(parallel), mode="r"),
            )
            equal = all(
                np.array_equal(a[z : z + args.block], b[z : z + args.block])
                for z in range(0, args.size, args.block)
            )
            record_line(out, kind="compare", equal=bool(equal))


if __name__ == "__main__":
    main()
