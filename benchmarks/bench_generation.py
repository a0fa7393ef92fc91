"""Whole-volume generation streamed to disk: the paper's Table 1 sizes (128³, 512³, 1024³), with peak memory.

Each round runs ``swnn generate`` as a child process, exactly as a user would, writing a zarr store; the child's
peak resident memory comes from ``os.wait4``. The model has the paper's architecture (8 blocks, 24 channels) with
untrained weights: the time depends on the architecture, not on the weights. The authors' figures (RTX 4070 Ti,
../shared/REFERENCES.md): 0.94 s, 16–18 s and 140–157 s for 128³, 512³ and 1024³.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from benchmarks._info import machine_info
from swnn.model import TrainedModel
from swnn.network import SWNN


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = SWNN()
    # BatchNorm statistics from one noise volume (as training ends), then the median logit as threshold:
    # half the voxels are phase 1, so no chunk is empty and the zarr writer compresses and writes every one
    # (zarr skips chunks that hold only the fill value)
    noise = torch.randn(1, net.noise_channels, 64, 64, 64)
    for norm in net.norms:
        norm.momentum = None  # cumulative: the statistics of this one pass
    with torch.no_grad():
        net.train()(noise)
        logits = net.eval()(noise)
    median = float(logits.median())
    model = TrainedModel.from_network(net, threshold=median)
    return model.save(tmp_path_factory.mktemp("model") / "paper-architecture.pt")


def _run_generate(model: Path, out: Path, size: int, block: int, device: str) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one ``swnn generate --device DEVICE`` child process."""
    command = [sys.executable, "-m", "swnn", "generate", str(model), "-o", str(out), "--size", str(size)]
    command += ["--block", str(block), "--device", device, "--quiet", "--force"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace")
    child.stdout.close()
    child.stderr.close()
    if child.returncode != 0:
        raise AssertionError(f"swnn generate failed ({child.returncode}):\n{stderr}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.sizes(full=[128, 512, 1024], tiny=[24])
def test_generate_volume(benchmark, model_path, tmp_path, size):
    """One size³ volume, block 128, precision auto, written to a zarr store by ``swnn generate``."""
    generate_volume_case(benchmark, model_path, tmp_path, size, device="cpu")


def generate_volume_case(benchmark, model_path: Path, tmp_path: Path, size: int, *, device: str) -> None:
    """Time ``swnn generate --device DEVICE`` of one size³ volume (block 128) to zarr; peak memory in extra_info."""
    out = tmp_path / f"v{size}.zarr"
    block = min(size, 128)
    peaks = []

    def run():
        seconds, peak = _run_generate(model_path, out, size, block, device)
        peaks.append(peak)
        return seconds

    benchmark.pedantic(run, rounds=3 if size <= 128 else 1, iterations=1)
    volume = zarr.open(str(out), mode="r")
    assert volume.shape == (size,) * 3 and volume.dtype == np.uint8
    corner = np.asarray(volume[: min(size, 64), : min(size, 64), : min(size, 64)])
    assert set(np.unique(corner)) == {0, 1}  # both phases: the writer had real data to store
    benchmark.extra_info.update(
        machine_info(device),
        size=size,
        block=block,
        output="zarr",
        peak_rss_mib=round(max(peaks), 1),
        voxels=size**3,
    )
