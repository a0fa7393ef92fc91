"""Descriptor speed: S2 per axis, lineal path, radial S2, and radial S2 against porespy 3.2.

All cases use one structure per size: Gaussian-filtered white noise (σ = 2 voxels, periodic) thresholded to
35 % of phase 1, uint8. Per-axis S2 and the lineal path use r_max = 32 (N/2 at the tiny size) on all three
axes. The radial S2 uses porespy's range r_max = N/2 up to 512³ and r_max = 256 at 1024³: with r_max = 512
its padded spectra alone would take about 16 GB in float32 (about 8 GB at r_max = 256; estimated from the
array sizes).

porespy's ``two_point_correlation`` pads every axis to 2 N in float64: at 256³ it takes about 50 s and 12 GB
on the 2-core CPU, so 512³ (about 8 times the memory) would not fit in 24 GB; it is timed at 128³ and 256³.

Memory: ``extra_info`` holds ``ru_maxrss`` of the whole pytest process before the first timed round and after
the last (``process_peak_rss_*_mib``); it only ever rises, so a case's own peak shows when the figure rises or
when the case runs alone (``-k``). The structures are made in a forked child process so that their float32
temporaries (about 13 GB at 1024³) do not set this peak. On a GPU, ``gpu_peak_allocated_mib`` is the case's
own peak.
"""

from __future__ import annotations

import functools
import mmap
import os
import resource
import statistics
import time
import traceback

import numpy as np
import pytest
import torch

from benchmarks._info import machine_info, synchronize
from physics.correlation import porespy_bins, radial_two_point, two_point_probability
from physics.lineal_path import lineal_path

POROSITY = 0.35
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# Exactness of the integer-count descriptors: S2(0) and L(0) divide the same integer counts as the porosity.
EXACT = 1e-9
# float32 FFTs in the radial S2: round-off ~1e-7 of S2 (6e-8 measured against float64 at 256³), so 1e-6 as in
# tests/test_descriptors.py::test_radial_two_point_matches_porespy.
FLOAT32_FFT = 1e-6


def blob_structure(size: int, *, sigma: float = 2.0, porosity: float = POROSITY, seed: int = 0) -> np.ndarray:
    """Periodic Gaussian-blob structure: phase 1 on the ``porosity`` fraction, shape (size,) * 3, uint8."""
    from scipy import ndimage

    noise = np.random.default_rng(seed).standard_normal((size,) * 3, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, sigma, mode="wrap", output=np.float32)
    del noise
    return (field > np.quantile(field, 1 - porosity)).astype(np.uint8)


@functools.cache
def _structure(size: int) -> np.ndarray:
    """``blob_structure(size)`` computed in a forked child, into memory shared with this process."""
    shared = mmap.mmap(-1, size**3)  # anonymous shared memory, written by the child
    pid = os.fork()
    if pid == 0:  # child: numpy and scipy only, then leave without running any of pytest's clean-up
        try:
            np.frombuffer(shared, dtype=np.uint8).reshape((size,) * 3)[...] = blob_structure(size)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"making the {size}³ structure failed in the child process (status {status})")
    volume = np.frombuffer(shared, dtype=np.uint8).reshape((size,) * 3)
    volume.flags.writeable = False
    return volume


def _volume(size: int, device: str) -> np.ndarray | torch.Tensor:
    """The structure as the descriptors take it: the numpy array on the CPU, a tensor on a GPU."""
    volume = _structure(size)
    if device == "cpu":
        return volume
    return torch.from_numpy(np.array(volume)).to(device)  # a writable copy: torch warns on read-only arrays


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _time(benchmark, function, device: str, size: int) -> tuple[object, dict]:
    """Run ``function`` under ``benchmark.pedantic``; memory figures for ``extra_info``."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = _peak_rss_mib()

    def run():
        result = function()
        synchronize(device)
        return result

    rounds = 3 if size <= 256 else 1
    result = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1 if size <= 256 else 0, iterations=1)
    memory = {"process_peak_rss_before_mib": before, "process_peak_rss_after_mib": _peak_rss_mib()}
    if device == "cuda":
        memory["gpu_peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result, memory


@pytest.mark.sizes(full=[128, 256, 512, 1024], tiny=[24])
@pytest.mark.parametrize("device", DEVICES)
def test_s2_per_axis(benchmark, size, device):
    """``two_point_probability``: S2 along the three axes, r_max = 32, non-periodic."""
    benchmark.group = f"descriptors {size}^3"
    volume = _volume(size, device)
    r_max = min(32, size // 2)
    result, memory = _time(benchmark, lambda: two_point_probability(volume, r_max=r_max), device, size)
    fraction = float(_structure(size).mean(dtype=np.float64))
    # threshold at a quantile of the smoothed field; float32 ties at 1024³ may shift it slightly
    assert abs(fraction - POROSITY) <= 1e-4
    np.testing.assert_allclose(result.per_axis[:, 0], fraction, rtol=0, atol=EXACT)
    assert np.all((result.per_axis >= 0) & (result.per_axis <= 1))
    benchmark.extra_info.update(
        machine_info(device), descriptor="S2 per axis", size=size, r_max=r_max, porosity=fraction, **memory
    )


@pytest.mark.sizes(full=[128, 256, 512, 1024], tiny=[24])
@pytest.mark.parametrize("device", DEVICES)
def test_lineal_path(benchmark, size, device):
    """``lineal_path``: L along the three axes, r_max = 32, non-periodic."""
    benchmark.group = f"descriptors {size}^3"
    volume = _volume(size, device)
    r_max = min(32, size // 2)
    result, memory = _time(benchmark, lambda: lineal_path(volume, r_max=r_max), device, size)
    fraction = float(_structure(size).mean(dtype=np.float64))
    np.testing.assert_allclose(result.per_axis[:, 0], fraction, rtol=0, atol=EXACT)
    assert np.all(np.diff(result.per_axis, axis=1) <= 0)  # L is non-increasing, exactly (integer counts)
    benchmark.extra_info.update(
        machine_info(device), descriptor="lineal path", size=size, r_max=r_max, porosity=fraction, **memory
    )


@pytest.mark.sizes(full=[128, 256, 512, 1024], tiny=[24])
@pytest.mark.parametrize("device", DEVICES)
def test_radial_s2(benchmark, size, device):
    """``radial_two_point``: direction-averaged S2, float32 FFTs, r_max = min(N/2, 256)."""
    benchmark.group = f"descriptors {size}^3"
    volume = _volume(size, device)
    r_max = min(size // 2, 256)
    result, memory = _time(benchmark, lambda: radial_two_point(volume, r_max=r_max), device, size)
    fraction = float(_structure(size).mean(dtype=np.float64))
    assert np.all(np.isfinite(result.s2))
    assert abs(result.s2[0] - fraction) <= FLOAT32_FFT
    assert np.all((result.s2 >= -FLOAT32_FFT) & (result.s2 <= 1 + FLOAT32_FFT))
    benchmark.extra_info.update(
        machine_info(device),
        descriptor="radial S2",
        size=size,
        r_max=r_max,
        precision="float32",
        porosity=fraction,
        **memory,
    )


@pytest.mark.sizes(full=[128, 256], tiny=[24])
def test_s2_vs_porespy(benchmark, size):
    """porespy 3.2 ``two_point_correlation`` (timed) against ``radial_two_point`` on its bins, on the CPU.

    Ours is run once to warm up, then timed over three runs with ``time.perf_counter`` in the same process;
    ``speedup`` is porespy's mean time over ours.
    """
    porespy = pytest.importorskip("porespy", reason="porespy is the reference being compared with")
    benchmark.group = f"descriptors {size}^3"
    volume = _structure(size)
    image = volume.astype(bool)
    edges = porespy_bins(volume.shape)

    before = _peak_rss_mib()
    ours = radial_two_point(volume, bins=edges)  # warm-up, and the curve compared below
    ours_times = []
    for _ in range(3):
        start = time.perf_counter()
        radial_two_point(volume, bins=edges)
        ours_times.append(time.perf_counter() - start)
    ours_peak = _peak_rss_mib()

    porespy.metrics.two_point_correlation(image[:16, :16, :16])  # warm-up: first-call costs are not timed
    porespy_times = []

    def run():
        start = time.perf_counter()
        result = porespy.metrics.two_point_correlation(image)
        porespy_times.append(time.perf_counter() - start)
        return result

    theirs = benchmark.pedantic(run, rounds=3 if size <= 128 else 1, iterations=1)
    np.testing.assert_allclose(ours.s2, theirs.probability_scaled, rtol=0, atol=FLOAT32_FFT)
    np.testing.assert_allclose(ours.r, theirs.distance, rtol=0, atol=1e-12)
    ours_s, porespy_s = statistics.mean(ours_times), statistics.mean(porespy_times)
    benchmark.extra_info.update(
        machine_info("cpu"),
        descriptor="radial S2 vs porespy",
        size=size,
        bins=int(edges.size - 1),
        porespy=porespy.__version__,
        porespy_workers=int(porespy.settings.ncores),
        ours_s=round(ours_s, 4),
        porespy_s=round(porespy_s, 4),
        speedup=round(porespy_s / ours_s, 2),
        max_abs_difference=float(np.max(np.abs(ours.s2 - theirs.probability_scaled))),
        process_peak_rss_before_mib=before,
        process_peak_rss_after_ours_mib=ours_peak,
        process_peak_rss_after_mib=_peak_rss_mib(),
    )
