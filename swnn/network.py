"""The SWNN generator (paper Eq. 12–15).

``l_a`` blocks A (Conv3d 3³ without padding, LeakyReLU, BatchNorm) followed by block B (Conv3d 1³). Every block A
trims one voxel on each side, so the receptive field is 2·l_a + 1 and an output of n³ needs an input of
(n + 2·l_a)³. The network is fully convolutional: any output shape can be produced, block by block with a halo of
l_a voxels, with exactly the voxels of one whole pass.

Dilated blocks (an extension of the paper): block A number i may space its 3³ taps ``d_i`` voxels apart
(Yu & Koltun 2016). It then trims ``d_i`` voxels on each side, so the halo is h = Σ d_i and the receptive field
2 h + 1, with the same weights and the same work per output voxel; only the input grows, to (n + 2h)³.

Coarse noise (an extension of the paper): with ``coarse = b`` the first block also reads the mean of the noise
over the b³ cube around each voxel, scaled to unit variance (b^{3/2} times the mean), as ``noise_channels`` more
channels. It is a fixed low-pass of the same noise, so the output still depends on a finite cube of noise, now
of side 2 h + b with h = l_a (or Σ d_i), and chunked generation stays exact; the halo becomes h + (b − 1) / 2. It
gives the blocks a view of the noise b voxels wide at the cost of one box filter. Several sides b_1 < b_2 < …
add one such set of channels each (a pyramid of views of the same noise); the largest side sets the halo.

Outputs are logits: one channel for two phases (sigmoid gives the probability of phase 1), n channels for n > 2
phases (softmax). :meth:`SWNN.phase_probabilities` returns the phase channels 1..n−1 used for patterns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SWNN", "blocks_for_correlation_length", "coarse_setting", "coarse_sides", "correlation_length"]

R_A = 3  # receptive field of one block A (Eq. 12)
R_B = 1  # receptive field of block B


def coarse_sides(coarse: int | Sequence[int] | None) -> tuple[int, ...]:
    """The sides of coarse noise as a tuple: 0 or None (none) gives (), b gives (b,), a sequence its items.

    Raises ValueError unless the sides are odd integers of at least 3, in increasing order."""
    sides = () if coarse is None or (isinstance(coarse, int) and coarse == 0) else coarse
    sides = (sides,) if isinstance(sides, int) else sides
    if isinstance(sides, Sequence) and len(sides) == 1 and sides[0] == 0:  # 0 given once, as a list, is none
        sides = ()
    if (
        not isinstance(sides, Sequence)
        or isinstance(sides, str | bytes)
        or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 3 and b % 2 == 1 for b in sides)
        or list(sides) != sorted(set(sides))
    ):
        raise ValueError(
            f"coarse must be 0 (none), an odd side of at least 3 voxels or increasing such sides, got {coarse}"
        )
    return tuple(sides)


def coarse_setting(sides: Sequence[int]) -> int | tuple[int, ...]:
    """The form of coarse noise that settings and model files store: 0 for none, b for one side, else the sides."""
    return (sides[0] if sides else 0) if len(sides) <= 1 else tuple(sides)


def blocks_for_correlation_length(correlation_length: float) -> int:
    """Number of blocks A so that the receptive field covers the correlation length (Eq. 12).

    l_a = ceil((l_c − R_B − 1) / (R_A − 1)), at least 1.
    """
    return max(1, math.ceil((correlation_length - R_B - 1) / (R_A - 1)))


def correlation_length(image, *, phase: int = 1, tolerance: float = 0.05, r_max: int | None = None) -> int:
    """Smallest lag r at which S2 along both image axes is within ``tolerance``·(φ − φ²) of φ².

    This is the l_c of Eq. 12: beyond it the two-point function is flat, so the network need not see further.
    """
    import numpy as np

    ind = (np.asarray(image) == phase).astype(np.float64)
    phi = ind.mean()
    span = phi - phi * phi
    if span <= 0:
        raise ValueError(f"phase {phase} fills none or all of the image; no correlation length")
    r_max = r_max or min(ind.shape) // 2
    for r in range(1, r_max + 1):
        s0 = (ind[r:, :] * ind[:-r, :]).mean()
        s1 = (ind[:, r:] * ind[:, :-r]).mean()
        if max(abs(s0 - phi * phi), abs(s1 - phi * phi)) <= tolerance * span:
            return r
    return r_max


class SWNN(nn.Module):
    """Fully convolutional generator G: noise (B, c_in, Z+2l_a, Y+2l_a, X+2l_a) → logits (B, c_out, Z, Y, X).

    Parameters
    ----------
    n_phases : int
        Phases of the microstructure (2 or more).
    blocks : int
        l_a, the number of blocks A (default 8 as the authors' code: receptive field 17).
    channels : int
        Feature channels of each block A (default 24).
    noise_channels : int
        Channels of the input noise (default 3).
    negative_slope : float
        LeakyReLU slope.
    dilations : sequence of int, optional
        Spacing of the taps of each block A (one per block, each ≥ 1); all 1 (the paper's network) by default.
    coarse : int or sequence of int
        Side b (odd, ≥ 3) of the cube over which the noise is averaged into extra input channels, or several
        increasing sides, one set of channels each; 0 or empty (default) for none.
    """

    def __init__(
        self,
        n_phases: int = 2,
        *,
        blocks: int = 8,
        channels: int = 24,
        noise_channels: int = 3,
        negative_slope: float = 0.2,
        dilations: Sequence[int] | None = None,
        coarse: int | Sequence[int] = 0,
    ):
        super().__init__()
        if n_phases < 2:
            raise ValueError(f"n_phases must be at least 2, got {n_phases}")
        if blocks < 1 or channels < 1 or noise_channels < 1:
            raise ValueError(
                f"blocks, channels and noise_channels must be positive, got {blocks}, {channels}, "
                f"{noise_channels}"
            )
        dilations = (1,) * blocks if not dilations else tuple(int(d) for d in dilations)
        if len(dilations) != blocks or min(dilations) < 1:
            raise ValueError(f"dilations must be {blocks} integers ≥ 1 (one per block A), got {dilations}")
        self.dilations = dilations
        self.coarse_sides = sides = coarse_sides(coarse)
        self.n_phases = n_phases
        self.blocks = blocks
        self.channels = channels
        self.noise_channels = noise_channels
        self.negative_slope = negative_slope
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in = noise_channels * (1 + len(sides))
        for dilation in dilations:
            self.convs.append(nn.Conv3d(c_in, channels, 3, dilation=dilation))
            self.norms.append(nn.BatchNorm3d(channels))
            c_in = channels
        self.head = nn.Conv3d(channels, 1 if n_phases == 2 else n_phases, 1)

    @property
    def coarse(self) -> int | tuple[int, ...]:
        """The coarse noise as a model's metadata stores it (:func:`coarse_setting`)."""
        return coarse_setting(self.coarse_sides)

    @property
    def halo(self) -> int:
        """Voxels trimmed on each side: l_a, or Σ d_i with dilated blocks, plus (b − 1) / 2 for the largest side b
        of coarse noise."""
        return sum(self.dilations) + max(self.coarse_sides, default=1) // 2

    @property
    def receptive_field(self) -> int:
        """Side of the cube of noise one output voxel depends on: 2·l_a + 1, or 2 Σ d_i + 1 (+ b − 1 with
        coarse noise)."""
        return 2 * self.halo + 1

    def forward(self, noise: torch.Tensor, *, permutation: Sequence[int] | None = None) -> torch.Tensor:
        """Logits for ``noise``.

        Parameters
        ----------
        noise : Tensor of shape (B, c_in, Z, Y, X)
        permutation : sequence of 3 ints, optional
            Evaluate the network on spatially permuted input: when ``noise`` is ``x.permute(2 + p)`` of some
            ``x``, the result is ``G(x).permute(2 + p)``. The kernels are permuted instead of the data, so a slab
            can be laid out with its thin axis where the convolution is fastest.
        """
        perm = None if permutation is None or tuple(permutation) == (0, 1, 2) else tuple(permutation)
        x = noise if not self.coarse_sides else self._with_coarse(noise)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            weight = conv.weight if perm is None else conv.weight.permute(0, 1, *(2 + p for p in perm))
            x = F.conv3d(x, weight, conv.bias, dilation=conv.dilation)
            x = F.leaky_relu(x, self.negative_slope)
            x = norm(x)
        return self.head(x)

    def _with_coarse(self, noise: torch.Tensor) -> torch.Tensor:
        """The noise's central part beside its means over b³ cubes (unit variance), valid voxels only."""
        r = self.coarse_sides[-1] // 2
        views = [noise[:, :, r:-r, r:-r, r:-r]]
        for b in self.coarse_sides:
            mean = noise
            # the cube's mean as three means along lines: 3b additions per voxel, not b³
            for axis in range(3):
                kernel = [1, 1, 1]
                kernel[axis] = b
                mean = F.avg_pool3d(mean, kernel, stride=1)
            c = r - b // 2  # the smaller cubes' means reach further than the largest's: keep its valid voxels
            views.append(
                mean[:, :, c : mean.shape[2] - c, c : mean.shape[3] - c, c : mean.shape[4] - c] * b**1.5
            )
        return torch.cat(views, dim=1)

    def phase_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Channels 1..n−1 of the phase probabilities, shape (B, n−1, ...)."""
        if self.n_phases == 2:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=1)[:, 1:]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
