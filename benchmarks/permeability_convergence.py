"""Steps, wall time and accuracy of the permeability fast path against converged τ = 1 reference runs.

For each case (the 128³ built-ins, the 128³ Berea crop, Berea reconstructions, the central 256³ crop of the
Berea scan; flow along axis 0, ``boundary="mirror"``) it runs

- ``fast``: :func:`physics.permeability` with its defaults (``tau="auto"``, extrapolated limit, tol 1e-3);
- ``plain`` (with ``--plain``): the fast path without its Anderson mixing (``anderson=0``), to show what
  the mixing saves;
- ``coarse`` (with ``--coarse``): the fast path started from the flow through the 2× coarsened geometry
  (``start="coarse"``);
- ``fast_tau1``: the same stopping rule at τ = 1, to separate the τ-dependence of k from the error of the
  extrapolation;
- ``reference``: τ = 1, ``convergence="change"``, tol 1e-8 (relative change of k per 100 steps), with a
  step limit from the measured speed and a time cap per case (a capped run says ``converged: false``);

and, first, the lattice-update rate (MLUPS over fluid nodes) of the step kernels on porous volumes. One JSON
line per measurement goes to ``--out`` as it is made, so a run stopped by its time limit keeps what it did.
It is not a pytest-benchmark module: the reference runs take minutes and are measured once, not repeated.

    python -m benchmarks.permeability_convergence --device cuda --data DIR --out results.jsonl
    python -m benchmarks.permeability_convergence --device cpu --cases builtin --budget 600 --out r.jsonl

``DIR`` holds ``berea_crop128.npy`` and ``berea_400.zip`` (../shared/data/berea) and any Berea
reconstructions as ``berea_sample_*.npy``; cases whose files are missing are skipped.
"""

from __future__ import annotations

import argparse
import io
import math
import platform
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from benchmarks._info import record_line
from physics.permeability import permeability


def _cases(data: Path | None, which: set[str]):
    """(name, volume, phase) of every case whose data is present, cheapest first within each group."""
    if "builtin" in which:
        from swnn.references import builtin_volume

        for name in ("labyrinth", "sandstone", "cellular", "particles"):
            yield f"builtin:{name}", builtin_volume(name), 1
    if data is None:
        return
    if "berea" in which:
        for path in sorted(data.glob("berea_sample_*.npy")):
            yield f"berea-reconstruction:{path.stem.removeprefix('berea_sample_')}", np.load(path), 0
        if (data / "berea_crop128.npy").exists():
            yield "berea:crop128", np.load(data / "berea_crop128.npy"), 0
    if "berea256" in which and (data / "berea_400.zip").exists():
        yield "berea:central256", central_crop(data), 0


def central_crop(data: Path, side: int = 256) -> np.ndarray:
    """The central ``side``³ crop of the Berea scan ``data / berea_400.zip`` (its values: pores are 0)."""
    import tifffile

    with zipfile.ZipFile(data / "berea_400.zip") as archive:
        scan = tifffile.imread(io.BytesIO(archive.read("berea.tif")))
    start = [(s - side) // 2 for s in scan.shape]
    return np.ascontiguousarray(scan[tuple(slice(a, a + side) for a in start)])


def _summary(result, wall: float) -> dict:
    return {
        "k": result.k,
        "steps": result.steps,
        "wall_s": round(wall, 3),
        "converged": result.converged,
        "error_estimate": result.error_estimate,
        "mlups": result.mlups,
        "fluid_nodes": result.fluid_nodes,
        "tau": result.tau,
        "coarse_steps": result.coarse_steps,
    }


def _timed(volume, device, **kwargs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = permeability(volume, axis=0, boundary="mirror", device=device, **kwargs)
    return result, time.perf_counter() - start


def _mlups(out, device: torch.device, sizes) -> None:
    """MLUPS of the step kernels on the benchmarks' porous volume (φ = 0.35), 400 steps at τ = 1."""
    from benchmarks.bench_permeability import porous_volume
    from physics._lbm_run import build_lattice

    for size in sizes:
        pore = porous_volume(size) == 1
        variants = ["numba"] if device.type == "cpu" else ["triton+graphs", "triton", "torch-ops"]
        for variant in variants:
            backend = "numba" if variant == "numba" else "torch"
            lattice = build_lattice(pore, axis=0, tau=1.0, force=1e-6, backend=backend, device=device)
            if variant == "torch-ops":
                lattice.triton = False
            lattice.step_pair()
            lattice.step_pairs(50)
            lattice.synchronize()
            start = time.perf_counter()
            if variant == "triton":
                for _ in range(200):
                    lattice.step_pair()
            else:
                for _ in range(4):
                    lattice.step_pairs(50)
            lattice.synchronize()
            wall = time.perf_counter() - start
            nodes = lattice.f.shape[1]
            record_line(out, kind="mlups", size=size, variant=variant, fluid_nodes=nodes, steps=400,
                    wall_s=round(wall, 4), mlups=round(nodes * 400 / wall / 1e6, 1))  # fmt: skip
            del lattice
            if device.type == "cuda":
                torch.cuda.empty_cache()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cases", default="builtin,berea,berea256")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run")
    parser.add_argument("--reference-cap", type=float, default=40.0, help="seconds per reference run")
    parser.add_argument("--mlups-sizes", default="64,128,256")
    parser.add_argument("--plain", action="store_true", help="also run each case without Anderson mixing")
    parser.add_argument("--coarse", action="store_true", help='also run each case with start="coarse"')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    begin = time.perf_counter()
    which = set(args.cases.split(","))
    with args.out.open("a") as out:
        record_line(out, kind="machine", device=str(device), node=platform.node(), torch=torch.__version__,
                gpu=torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                cpu=platform.processor(), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
        _timed(np.pad(np.ones((8, 8, 8), np.uint8), 1), device, max_steps=200)  # compile the kernels
        if args.mlups_sizes:
            _mlups(out, device, [int(s) for s in args.mlups_sizes.split(",")])
        cases = list(_cases(args.data, which))
        rows = {}
        for name, volume, phase in cases:  # the fast path everywhere first: it is what users run
            result, wall = _timed(volume, device, phase=phase)
            rows[name] = result
            record_line(out, kind="fast", case=name, shape=volume.shape, **_summary(result, wall))
            if args.plain:
                result, wall = _timed(volume, device, phase=phase, anderson=0, max_steps=400_000)
                record_line(out, kind="plain", case=name, **_summary(result, wall))
            if args.coarse:
                result, wall = _timed(volume, device, phase=phase, start="coarse")
                record_line(out, kind="coarse", case=name, **_summary(result, wall))
        for name, volume, phase in cases:
            if time.perf_counter() - begin > args.budget:
                break
            result, wall = _timed(volume, device, phase=phase, tau=1.0, max_steps=400_000)
            record_line(out, kind="fast_tau1", case=name, **_summary(result, wall))
        for name, volume, phase in cases:
            left = args.budget - (time.perf_counter() - begin)
            fast = rows[name]
            if left < 10 or fast.k == 0.0:
                continue
            cap = min(args.reference_cap * (3 if "256" in name else 1), left)
            rate = (fast.mlups or 1.0) * 1e6 / max(fast.fluid_nodes, 1)  # steps per second
            max_steps = max(200, int(cap * rate) // 100 * 100)
            result, wall = _timed(
                volume, device, phase=phase, tau=1.0, tol=1e-8, convergence="change", max_steps=max_steps
            )
            error = (fast.k - result.k) / result.k if result.k else math.nan
            record_line(
                out,
                kind="reference",
                case=name,
                max_steps=max_steps,
                fast_error=error,
                **_summary(result, wall),
            )
        record_line(out, kind="done", elapsed_s=round(time.perf_counter() - begin, 1))


if __name__ == "__main__":
    main()
