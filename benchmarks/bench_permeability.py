"""Lattice-Boltzmann permeability speed: MLUPS over fluid nodes, and time to a converged k.

MLUPS here always counts fluid-node updates (only pore nodes connected along the flow are stored and
updated), per second of stepping, set-up and compilation excluded (``PermeabilityResult.mlups``).
Bar on this 2-core CPU (../shared/REFERENCES.md): eager ``torch.roll`` D3Q19 code runs at 8–19 MLUPS at
64³ and 2.4–8 at 128³; memory bandwidth allows roughly 130–200.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from benchmarks._info import machine_info, synchronize
from physics.permeability import PermeabilityWarning, permeability

# Fixed number of steps timed for the MLUPS figure, per size (enough to dwarf the per-call set-up).
STEPS = {16: 20, 64: 400, 128: 200}
BYTES_PER_UPDATE = 188  # see physics/_lbm_kernels.py


def porous_volume(size: int, porosity: float = 0.35, seed: int = 0) -> np.ndarray:
    """Periodic Gaussian-blob structure (σ = 2 voxels) with the given pore fraction; percolating at 0.35."""
    field = ndimage.gaussian_filter(
        np.random.default_rng(seed).standard_normal((size,) * 3), 2.0, mode="wrap"
    )
    return (field > np.quantile(field, 1 - porosity)).astype(np.uint8)


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.sizes(full=[64, 128], tiny=[16])
def test_lbm_mlups(benchmark, size):
    """A fixed number of steps on a size³ porous volume (φ ≈ 0.35); MLUPS over fluid nodes."""
    mlups_case(benchmark, size, device=_device(), steps=STEPS[size])


def mlups_case(benchmark, size: int, *, device: str, steps: int) -> None:
    """Time ``steps`` steps on a size³ porous volume on ``device``; MLUPS and the bandwidth limit in extra_info."""
    volume = porous_volume(size)
    source = torch.from_numpy(volume).to(device) if device == "cuda" else volume
    _fixed_steps(source, 2)  # warm-up: numba loads or compiles its kernels

    def run():
        result = _fixed_steps(source, steps)
        synchronize(device)
        return result

    result = benchmark.pedantic(run, rounds=3 if size >= 64 else 1, iterations=1)
    assert result.steps == steps and math.isfinite(result.k) and result.k > 0
    assert result.mlups is not None and result.mlups > 0
    info = _run_info(device, size, volume, result)
    info.update(backend="torch" if device == "cuda" else "numba")
    # Against the memory-bandwidth limit: the in-place (AA) D3Q19 float32 step moves 152 B of populations
    # per node, plus the 72 B neighbour table every other step: 188 B per update on average.
    bandwidth = _copy_bandwidth(device, large=size >= 64)
    info.update(
        bytes_per_update=BYTES_PER_UPDATE,
        copy_bandwidth_gb_s=round(bandwidth, 1),
        bandwidth_limit_mlups=round(bandwidth * 1e9 / BYTES_PER_UPDATE / 1e6, 1),
        fraction_of_bandwidth_limit=round(result.mlups * 1e6 * BYTES_PER_UPDATE / (bandwidth * 1e9), 3),
    )
    benchmark.extra_info.update(info)


@pytest.mark.sizes(full=[128], tiny=[16])
def test_lbm_time_to_converged_k(benchmark, size):
    """Wall time from volume to converged k (the defaults: τ from the geometry, extrapolated k), set-up included."""
    volume = porous_volume(size)
    device = _device()
    source = torch.from_numpy(volume).to(device) if device == "cuda" else volume
    _fixed_steps(source, 2)  # warm-up (compilation is not the point)

    def run():
        result = permeability(source)
        synchronize(device)
        return result

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    assert result.converged and result.k > 0
    benchmark.extra_info.update(_run_info(device, size, volume, result))


@pytest.mark.sizes(full=[128], tiny=[16])
@pytest.mark.parametrize("name", ["labyrinth", "sandstone", "cellular"])
def test_lbm_builtin_time_to_converged_k(benchmark, size, name):
    """Issue 15's case: a built-in volume (cut to size³) in its mirror box, flow along axis 0, defaults.

    The k to compare with is a τ = 1 run to a relative change below 1e-8 per 100 steps
    (``convergence="change"``); benchmarks/results/permeability-fast-cpu-xeon-2core.md holds both.
    """
    from swnn.references import builtin_volume

    volume = np.ascontiguousarray(builtin_volume(name)[:size, :size, :size])
    device = _device()
    source = torch.from_numpy(volume).to(device) if device == "cuda" else volume
    _fixed_steps(source, 2)

    def run():
        result = permeability(source, boundary="mirror")
        synchronize(device)
        return result

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    assert result.converged
    info = _run_info(device, size, volume, result) if result.k > 0 else {**machine_info(device)}
    info.update(reference=name, boundary="mirror", error_estimate=result.error_estimate)
    benchmark.extra_info.update(info)


def _run_info(device: str, size: int, volume: np.ndarray, result) -> dict:
    """What both cases record of a run: machine, structure, steps, MLUPS over fluid nodes and k."""
    return {
        **machine_info(device),
        "size": f"{size}^3",
        "porosity": float(volume.mean()),
        "fluid_nodes": result.fluid_nodes,
        "steps": result.steps,
        "mlups_fluid_nodes": round(result.mlups, 2),
        "k_voxel2": result.k,
        "numba_threads": _numba_threads(),
    }


def _fixed_steps(volume, steps: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PermeabilityWarning)  # a fixed step count is not converged
        return permeability(volume, max_steps=steps, check_every=steps, tol=1e-12)


def _copy_bandwidth(device: str, *, large: bool) -> float:
    """Memory bandwidth (GB/s, bytes read + written) of a large tensor copy on ``device``."""
    source = torch.empty((1 << 27) if large else (1 << 20), dtype=torch.float32, device=device)  # 512 MiB
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    repeats = 5
    start = time.perf_counter()
    for _ in range(repeats):
        target.copy_(source)
    synchronize(device)
    return repeats * 2 * source.numel() * 4 / (time.perf_counter() - start) / 1e9


def _numba_threads() -> int:
    import numba

    return int(numba.get_num_threads())
