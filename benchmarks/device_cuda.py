"""The Table 1 benchmarks on a GPU, and physics cases larger than the CPU suite's, for benchmarks/run_device.sh.

bench_reconstruction.py and bench_generation.py time the CPU only (``device="cpu"`` fixed, ``extra_info``
labelled cpu); this module times the same cases on ``SWNN_BENCH_DEVICE`` (default ``cuda``), under the same
test names and parameters so that ``python -m benchmarks.table`` puts them in Table 1 and the Eq. 22 fit:

- ``test_training_iteration``: seconds per training iteration, 128² reference, paper and quick profiles;
- ``test_generation_block``: one block in memory (``generate``, CPU noise included), 128³, 256³ and 512³,
  with the noise alone (``noise_s``) and the network alone on the device (``network_s``) in ``extra_info``;
- ``test_generate_volume``: ``swnn generate --device cuda`` to a zarr store, 128³ and 512³;
- ``test_lbm_mlups``: the lattice-Boltzmann MLUPS at 256³ (bench_permeability.py stops at 128³);
- ``test_ours``: multigrid-PCG conductivity at 512³ (bench_conductivity.py stops at 256³).

Its name does not match ``bench_*.py``, so plain ``pytest`` does not collect it; name it on the command line::

    pytest benchmarks/device_cuda.py --benchmark --benchmark-json=out.json     # on a GPU machine
    SWNN_BENCH_DEVICE=cpu pytest benchmarks/device_cuda.py -p no:cacheprovider  # tiny dry run, no GPU

Every case skips when the device is ``cuda`` and no GPU is present.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import torch

from benchmarks._info import machine_info, synchronize
from benchmarks.bench_generation import (
    generate_volume_case,
    model_path,  # noqa: F401  (fixture: the paper architecture, saved)
)
from benchmarks.bench_reconstruction import training_iteration_case

DEVICE = os.environ.get("SWNN_BENCH_DEVICE", "cuda")

pytestmark = pytest.mark.skipif(
    DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU (SWNN_BENCH_DEVICE=cuda)"
)


# ----------------------------------------------------------------------------------------------------------
# Table 1: training and generation
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.sizes(full=[128], tiny=[32])
@pytest.mark.parametrize("profile", ["paper", "quick"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_iteration(benchmark, profile, precision, size):
    """Seconds per training iteration, 2D→3D, a size² reference (as bench_reconstruction.py, on DEVICE)."""
    training_iteration_case(benchmark, profile, precision, size, device=DEVICE, rounds=5)


def _untrained_model():
    from swnn.model import TrainedModel
    from swnn.network import SWNN

    torch.manual_seed(0)
    net = SWNN().eval()
    return TrainedModel.from_network(net, threshold=0.0)


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(DEVICE)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _noise_seconds(model, size: int) -> float:
    """Seconds to make one block's noise on the CPU (``NoiseField.region``), as ``generate`` does."""
    from swnn.noise import NoiseField

    field = NoiseField(
        seed=0,
        sample=0,
        channels=model.network.noise_channels,
        tile=model.noise_tile,
        whiten=model.noise_whiten,
    )
    extent = [size + 2 * model.network.halo] * 3
    start = time.perf_counter()
    field.region([0, 0, 0], extent)
    return time.perf_counter() - start


def _network_seconds(model, size: int, precision: str, repeats: int) -> float:
    """Median seconds of the network and threshold alone on DEVICE, on random noise already there."""
    from swnn._device import autocast, resolve_device
    from swnn.generation import logits_to_labels

    dev = resolve_device(DEVICE)
    network = model.network.to(dev).eval()
    extent = size + 2 * network.halo
    noise = torch.randn(1, network.noise_channels, extent, extent, extent, device=dev)

    @torch.no_grad()
    def run():
        with autocast(dev, precision):
            logits = network(noise)
        return logits_to_labels(logits.float(), model, precision)

    run()  # warm-up at this shape
    return _median_seconds(run, repeats)


@pytest.mark.sizes(full=[128, 256, 512], tiny=[16])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_generation_block(benchmark, precision, size):
    """One size³ block (input (size + 16)³) of the 8-block, 24-channel network, noise made on the CPU."""
    from swnn.generation import GenerationSettings, generate

    model = _untrained_model()
    settings = GenerationSettings(block=size, seed=0, precision=precision)
    if size <= 256:
        generate(model, (size,) * 3, settings=settings, device=DEVICE)  # warm-up
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def run():
        volume = generate(model, (size,) * 3, settings=settings, device=DEVICE)
        synchronize(DEVICE)
        return volume

    volume = benchmark.pedantic(run, rounds=3 if size <= 128 else (2 if size <= 256 else 1), iterations=1)
    assert volume.shape == (size,) * 3 and volume.dtype == np.uint8
    info = {}
    if DEVICE == "cuda":
        info["gpu_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    benchmark.extra_info.update(
        machine_info(DEVICE),
        precision=precision,
        block=size,
        warmup=size <= 256,
        noise_s=round(_noise_seconds(model, size), 4),
        network_s=round(_network_seconds(model, size, precision, repeats=5 if size <= 256 else 2), 5),
        **info,
    )


@pytest.mark.sizes(full=[128, 512], tiny=[24])
def test_generate_volume(benchmark, model_path, tmp_path, size):  # noqa: F811
    """One size³ volume, block 128, precision auto, written to a zarr store by ``swnn generate`` on DEVICE."""
    generate_volume_case(benchmark, model_path, tmp_path, size, device=DEVICE)


# ----------------------------------------------------------------------------------------------------------
# Physics at sizes that fill a GPU
# ----------------------------------------------------------------------------------------------------------

LBM_STEPS = {16: 20, 256: 400}


@pytest.mark.sizes(full=[256], tiny=[16])
def test_lbm_mlups(benchmark, size):
    """As bench_permeability.py's test_lbm_mlups (fixed steps, MLUPS over fluid nodes), at 256³, on DEVICE."""
    from benchmarks.bench_permeability import mlups_case

    mlups_case(benchmark, size, device=DEVICE, steps=LBM_STEPS[size])


@pytest.mark.sizes(full=[512], tiny=[16])
def test_ours(benchmark, size):
    """As bench_conductivity.py's test_ours (multigrid-PCG, tol 1e-4, insulated sides), at 512³, on DEVICE."""
    from benchmarks.bench_conductivity import _hashin_shtrikman, blob_structure
    from physics.conductivity import effective_conductivity

    benchmark.group = f"conductivity {size}^3"
    volume = torch.from_numpy(blob_structure(size)).to(DEVICE)
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def solve():
        result = effective_conductivity(volume, sides="insulated", preconditioner="multigrid")
        synchronize(DEVICE)
        return result

    result = benchmark.pedantic(solve, rounds=1, warmup_rounds=1, iterations=1)
    assert result.converged and result.flux_imbalance <= 1e-4
    lower, upper = _hashin_shtrikman(float(volume.float().mean()))
    assert lower < result.k_eff < upper
    info = {}
    if DEVICE == "cuda":
        info["gpu_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    benchmark.extra_info.update(
        machine_info(DEVICE),
        solver="swnn multigrid-PCG",
        size=size,
        iterations=result.iterations,
        k_eff=result.k_eff,
        flux_imbalance=result.flux_imbalance,
        **info,
    )
