"""Training and generation speed (the paper's Table 1 and the authors' code on the same CPU).

Authors' code on this 2-core CPU (../shared/REFERENCES.md): 6.6 s per training iteration (one target, 512
directions, 24 channels) and 9–11 s per 128³ block (input 144³).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks._info import machine_info, synchronize
from swnn.generation import GenerationSettings, generate
from swnn.model import TrainedModel
from swnn.network import SWNN
from swnn.training import PROFILES, TrainingState


def _reference(size: int) -> np.ndarray:
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(size, size)), 3)
    return (field > np.quantile(field, 0.6)).astype(np.uint8)


@pytest.mark.sizes(full=[128], tiny=[32])
@pytest.mark.parametrize("profile", ["paper", "quick"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_iteration(benchmark, profile, precision, size):
    """Seconds per training iteration, 2D→3D, a size² reference."""
    training_iteration_case(benchmark, profile, precision, size, device="cpu", rounds=3)


def training_iteration_case(benchmark, profile: str, precision: str, size: int, *, device: str, rounds: int):
    """Time ``rounds`` training iterations on ``device`` after one warm-up (kernel selection, handles)."""
    config = PROFILES[profile].replace(precision=precision)
    if size < 128:  # tiny check: same code path, small sections
        config = config.replace(section=24, scales=(1, 2), template=5, directions=16)
    state = TrainingState.create(_reference(size), config, device=device)
    state.step()  # warm-up (oneDNN kernel selection, cuDNN handles and algorithm choice)
    synchronize(state.device)

    def step():
        loss = state.step()
        synchronize(state.device)
        return loss

    loss = benchmark.pedantic(step, rounds=rounds if size >= 128 else 1, iterations=1)
    assert np.isfinite(loss)
    benchmark.extra_info.update(
        machine_info(state.device),
        profile=profile,
        precision=state.precision,
        reference=f"{size}x{size}",
        section=config.section,
        directions=config.directions,
    )


@pytest.mark.sizes(full=[128], tiny=[16])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_generation_block(benchmark, precision, size):
    """One size³ block (input (size + 16)³) of the 8-block, 24-channel network."""
    torch.manual_seed(0)
    net = SWNN().eval()
    model = TrainedModel.from_network(net, threshold=0.0)
    settings = GenerationSettings(block=size, seed=0, precision=precision)
    generate(model, (size,) * 3, settings=settings, device="cpu")  # warm-up

    volume = benchmark.pedantic(
        lambda: generate(model, (size,) * 3, settings=settings, device="cpu"),
        rounds=3 if size >= 128 else 1,
        iterations=1,
    )
    assert volume.shape == (size,) * 3 and volume.dtype == np.uint8
    benchmark.extra_info.update(machine_info("cpu"), precision=precision, block=size)
