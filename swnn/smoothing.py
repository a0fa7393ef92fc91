"""Gaussian smoothing of the logits before they become labels (an extension of the paper).

The network's logits are noisy at the scale of one voxel: where a logit sits near the threshold, the threshold
turns that noise into rough interfaces, isolated voxels and cut throats. Smoothing the logits with a Gaussian of
standard deviation σ (voxels) before the threshold, or before the argmax of several phases, removes that roughness
and leaves the larger structure to the network. The threshold is calibrated on the smoothed logits, so the fraction
does not move; training does not see the smoothing (a network would learn to undo it).

The kernel is separable and truncated at r = ⌈3σ⌉ voxels, normalised to sum 1, and applied without padding: the
output trims r voxels on each side, like a block A of the network trims one. Generation block by block reads r more
voxels of halo, and stays exact (:mod:`swnn.generation`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["SIGMA_LIMIT", "gaussian_kernel", "smooth_logits", "smoothing_radius"]

TRUNCATE = 3.0  # kernel radius in units of σ: the weight left out beyond it is below 0.3 % of the total
SIGMA_LIMIT = 4.0  # the largest σ a model may have (voxels): a halo of 12 voxels more


def smoothing_radius(sigma: float) -> int:
    """Voxels the smoothing trims on each side: ⌈3σ⌉, 0 for σ = 0."""
    bad = ValueError(f"smoothing must be a finite σ ≥ 0 in voxels, got {sigma!r}")
    if isinstance(sigma, (str, bool)):
        raise bad
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise bad from None
    if not (math.isfinite(sigma) and sigma >= 0):
        raise bad
    return math.ceil(TRUNCATE * sigma) if sigma > 0 else 0


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The 1D kernel (2r + 1 taps, float32, sum 1) of standard deviation ``sigma`` voxels."""
    radius = smoothing_radius(sigma)
    if radius == 0:
        return torch.ones(1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).float()


def smooth_logits(logits: torch.Tensor, sigma: float) -> torch.Tensor:
    """Logits (B, C, Z, Y, X) smoothed channel by channel, trimmed by r = ⌈3σ⌉ on each side.

    σ = 0 returns ``logits`` itself. The result is float32 whatever the input's precision.
    """
    radius = smoothing_radius(sigma)
    if radius == 0:
        return logits
    if logits.ndim != 5 or min(logits.shape[2:]) <= 2 * radius:
        raise ValueError(
            f"logits must be (B, C, Z, Y, X) with every side above {2 * radius} for smoothing {sigma}, "
            f"got {tuple(logits.shape)}"
        )
    channels = logits.shape[1]
    kernel = gaussian_kernel(sigma).to(logits.device)
    out = logits.float()
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = kernel.numel()
        weight = kernel.reshape(1, 1, *shape).repeat(channels, 1, 1, 1, 1)
        out = F.conv3d(out, weight, groups=channels)
    return out
