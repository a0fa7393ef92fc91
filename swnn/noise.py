"""Input noise as a function of the seed and the global voxel position.

The noise of a volume is cut into fixed-size tiles; each tile is drawn from its own generator keyed by
(seed, sample, tile index), so any region of it can be produced without the rest: block-wise generation with
halos reads exactly the noise a whole pass would read, whatever the block size, and memory grows with the block,
not with the volume.

Noise coordinates are those of the network's *input* grid: output voxel (z, y, x) depends on the noise in
[z, z + 2·l_a] × [y, y + 2·l_a] × [x, x + 2·l_a].

Transforms (spatial masks, fraction-shift fields, later work) are callables ``f(noise, origin) -> noise`` applied
to each region with its global origin, so they too are functions of position only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NoiseField", "NoiseTransform"]

NoiseTransform = Callable[[np.ndarray, tuple[int, int, int]], np.ndarray]


@dataclass
class NoiseField:
    """Standard normal noise of ``channels`` channels over the unbounded non-negative input grid.

    Parameters
    ----------
    seed : int
        Seed of the whole field.
    sample : int
        Index of the sample (each sample has an independent field).
    channels : int
        Noise channels (the network's ``noise_channels``).
    tile : int
        Side of the noise tiles. Changing it changes the field.
    transforms : sequence of NoiseTransform
        Applied in order to every region produced.
    cache_bytes : int
        Tiles kept for reuse by neighbouring blocks.
    """

    seed: int
    sample: int = 0
    channels: int = 3
    tile: int = 32
    transforms: Sequence[NoiseTransform] = ()
    cache_bytes: int = 256 * 2**20
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    def _tile(self, index: tuple[int, int, int]) -> np.ndarray:
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        sequence = np.random.SeedSequence([self.seed, self.sample, *index])
        rng = np.random.Generator(np.random.PCG64(sequence))
        values = rng.standard_normal((self.channels, self.tile, self.tile, self.tile), dtype=np.float32)
        self._cache[index] = values
        while len(self._cache) * values.nbytes > self.cache_bytes:
            self._cache.popitem(last=False)
        return values

    def region(self, origin: Sequence[int], shape: Sequence[int]) -> np.ndarray:
        """Noise on [origin, origin + shape) of the input grid.

        Returns
        -------
        ndarray of shape (channels, Z, Y, X), float32
        """
        origin = tuple(int(o) for o in origin)
        shape = tuple(int(s) for s in shape)
        if len(origin) != 3 or len(shape) != 3 or min(origin) < 0 or min(shape) < 1:
            raise ValueError(
                f"region needs a non-negative 3D origin and a positive 3D shape, got {origin}, {shape}"
            )
        out = np.empty((self.channels, *shape), dtype=np.float32)
        t = self.tile
        first = [o // t for o in origin]
        last = [(o + s - 1) // t for o, s in zip(origin, shape, strict=True)]
        for tz in range(first[0], last[0] + 1):
            for ty in range(first[1], last[1] + 1):
                for tx in range(first[2], last[2] + 1):
                    tile = self._tile((tz, ty, tx))
                    src, dst = [], []
                    for axis, ti in enumerate((tz, ty, tx)):
                        lo = max(origin[axis], ti * t)
                        hi = min(origin[axis] + shape[axis], (ti + 1) * t)
                        src.append(slice(lo - ti * t, hi - ti * t))
                        dst.append(slice(lo - origin[axis], hi - origin[axis]))
                    out[(slice(None), *dst)] = tile[(slice(None), *src)]
        for transform in self.transforms:
            out = transform(out, origin)
        return out
