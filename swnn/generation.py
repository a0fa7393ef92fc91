"""Generating volumes with a trained SWNN, block by block (paper Sec. 3.4, Algorithm 1 lines 14–22).

The volume is cut into blocks; each block reads its noise with a halo of l_a voxels on each side (plus the radius of
the model's smoothing, :mod:`swnn.smoothing`) from a :class:`~swnn.noise.NoiseField` (a function of seed, sample and
global position), so the output equals one whole pass bit for bit whatever the block size, and memory grows with the
block, not with the volume. BatchNorm runs with the model's fixed statistics and labels come from the model's fixed
threshold.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from swnn._device import autocast, resolve_device, resolve_precision
from swnn._version import __version__
from swnn.model import TrainedModel
from swnn.noise import NoiseField, NoiseTransform
from swnn.smoothing import smooth_logits

__all__ = [
    "BlockGenerator",
    "GenerationSettings",
    "generate",
    "iter_blocks",
    "logits_to_labels",
    "provenance",
]


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate.

    Attributes
    ----------
    block : int
        Side of the output blocks (default 128); any value gives the same volume.
    seed : int
        Seed of the noise field.
    precision : str
        ``auto`` (default: bf16 where convolutions run natively in bfloat16, else fp32), ``fp32`` or ``bf16``.
        Each precision uses the threshold the model calibrated for it.
    """

    block: int = 128
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self):
        if self.block < 1:
            raise ValueError(f"block must be a positive number of voxels, got {self.block}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")


def iter_blocks(shape: Sequence[int], block: int) -> Iterator[tuple[slice, slice, slice]]:
    """Output blocks in z-slab order (z outermost), so TIFF pages can be written as slabs complete."""
    ranges = [range(0, n, block) for n in shape]
    for z, y, x in itertools.product(*ranges):
        yield (
            slice(z, min(z + block, shape[0])),
            slice(y, min(y + block, shape[1])),
            slice(x, min(x + block, shape[2])),
        )


def logits_to_labels(logits: torch.Tensor, model: TrainedModel, precision: str = "fp32") -> torch.Tensor:
    """Labels (uint8) from logits (B, C, Z, Y, X): the fixed threshold for two phases, argmax otherwise.

    The logits are those after the model's smoothing (:meth:`BlockGenerator.logits`), to which its thresholds
    belong.
    """
    if model.network.n_phases == 2:
        return (logits[:, 0] > model.threshold_for(precision)).to(torch.uint8)
    return logits.argmax(dim=1).to(torch.uint8)


def provenance(
    model: TrainedModel,
    *,
    settings: GenerationSettings,
    sample: int,
    model_path: str | os.PathLike,
    voxel_size: float | None = None,
) -> dict:
    """The provenance of one generated volume, written into its JSON sidecar by :class:`swnn.io.VolumeWriter`.

    Parameters
    ----------
    model : TrainedModel
    settings : GenerationSettings
        With a resolved ``precision`` (``fp32`` or ``bf16``): the threshold recorded is the one calibrated for it.
    sample : int
    model_path : path
        The model file, recorded as given.
    voxel_size : float or None
        Metres per voxel, when known.

    Returns
    -------
    dict
        ``seed``, ``sample``, ``model``, ``model_sha256``, ``swnn_version``, ``n_phases``, ``phase``,
        ``threshold`` (None for more than two phases), ``voxel_size``, ``block``, ``precision`` and
        ``reference`` (the name the model was trained on); the writer adds ``shape``, ``dtype`` and ``format``.
    """
    n_phases = model.network.n_phases
    return {
        "seed": settings.seed,
        "sample": sample,
        "model": str(model_path),
        "model_sha256": model.metadata.model_sha256 or model.model_hash(),
        "swnn_version": __version__,
        "n_phases": n_phases,
        "phase": model.metadata.phase,
        "threshold": model.threshold_for(settings.precision) if n_phases == 2 else None,
        "voxel_size": voxel_size,
        "block": settings.block,
        "precision": settings.precision,
        "reference": model.metadata.reference.name,
    }


class BlockGenerator:
    """The labels of any output block of one volume (seed, sample), each read from the noise with its halo.

    A function of the block's global position only, so blocks can be made in any order, in any process.
    """

    def __init__(self, model: TrainedModel, *, settings: GenerationSettings, sample: int = 0, device="auto",
                 transforms: Sequence[NoiseTransform] = ()):  # fmt: skip
        self.model = model
        self.device = resolve_device(device)
        self.precision = resolve_precision(settings.precision, self.device)
        # channels-last tensors run the CPU convolutions (oneDNN) 1.5–2× faster than contiguous ones
        cpu = self.device.type == "cpu"
        self.memory_format = torch.channels_last_3d if cpu else torch.contiguous_format
        self.network = model.network.to(self.device).eval().to(memory_format=self.memory_format)
        self.halo = model.halo
        self.field = NoiseField(
            seed=settings.seed,
            sample=sample,
            channels=self.network.noise_channels,
            tile=model.noise_tile,
            whiten=model.noise_whiten,
            transforms=tuple(transforms),
        )

    @torch.no_grad()
    def logits(self, index: Sequence[slice]) -> torch.Tensor:
        """float32 logits (1, C, bz, by, bx) of the output block ``index``, smoothed as the model says."""
        origin = [s.start for s in index]
        size = [s.stop - s.start + 2 * self.halo for s in index]
        noise = torch.from_numpy(self.field.region(origin, size))[None].to(self.device)  # (1, c_in, *size)
        noise = noise.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.precision):
            logits = self.network(noise)
        return smooth_logits(logits.float(), self.model.smoothing)

    @torch.no_grad()
    def labels(self, index: Sequence[slice]) -> np.ndarray:
        """uint8 labels of the output block ``index`` (three slices of step 1)."""
        logits = self.logits(index)
        return logits_to_labels(logits, self.model, self.precision)[0].cpu().numpy()  # (bz, by, bx)


@torch.no_grad()
def generate(
    model: TrainedModel,
    shape: Sequence[int],
    *,
    settings: GenerationSettings = GenerationSettings(),
    sample: int = 0,
    device: str | torch.device = "auto",
    writer=None,
    transforms: Sequence[NoiseTransform] = (),
    progress: bool = False,
) -> np.ndarray | None:
    """Generate one volume of ``shape``.

    Parameters
    ----------
    model : TrainedModel
    shape : (Z, Y, X)
        Output shape in voxels; (1, Y, X) gives a 2D image.
    settings : GenerationSettings
    sample : int
        Sample index: samples of one seed are independent noise fields.
    writer : object with ``write(index, block)``, optional
        Receives each block (uint8 labels) in z-slab order; then nothing is returned and memory stays bounded.
    transforms : sequence of NoiseTransform
        Applied to the noise of every block by global position (spatial masks, fraction shifts).

    Returns
    -------
    ndarray of shape ``shape``, uint8, or None when ``writer`` is given.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive sizes (Z, Y, X), got {shape}")
    blocks_of = BlockGenerator(model, settings=settings, sample=sample, device=device, transforms=transforms)
    out = None if writer is not None else np.empty(shape, dtype=np.uint8)
    blocks = list(iter_blocks(shape, settings.block))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(blocks), desc=f"generate {sample}", unit="block", dynamic_ncols=True)
    for index in blocks:
        labels = blocks_of.labels(index)
        if writer is not None:
            writer.write(index, labels)
        else:
            out[index] = labels
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out
