"""Input noise as a function of the seed and the global voxel position.

The noise of a volume is cut into fixed-size tiles; each tile is drawn from its own generator keyed by
(seed, sample, tile index), so any region of it can be produced without the rest: block-wise generation with
halos reads exactly the noise a whole pass would read, whatever the block size, and memory grows with the block,
not with the volume.

Noise coordinates are those of the network's *input* grid: output voxel (z, y, x) depends on the noise in
[z, z + 2·l_a] × [y, y + 2·l_a] × [x, x + 2·l_a].

Whitened cells (``whiten``): a sample's fraction fluctuates about its expectation partly because the noise of a
finite volume does: its local means, variances and cross-channel covariances drift from 0, 1 and 0, and the
network turns that drift into more or less of a phase over whole regions. With ``whiten = w``, every w³ cell of
every tile is shifted and linearly transformed (ZCA) so that its channels have mean 0 and identity covariance
exactly; the drift over regions larger than a cell is gone. Cells must be well larger than the network's
receptive field: the network was trained on plain noise and reads windows of (2·l_a + 1)³ voxels, and the means of
such windows lose a share (2·l_a + 1)³/w³ of their variance (15 % for w = 32 and 8 blocks; 100 % for w = 16, which
moved the built-in sandstone's fraction by −0.018). Whitening is a function of the tile alone, so it keeps the
field a function of seed and position.

Transforms (spatial masks, fraction-shift fields, later work) are callables ``f(noise, origin) -> noise`` applied
to each region with its global origin, so they too are functions of position only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["NoiseField", "NoiseTransform", "TILE", "valid_whiten"]

TILE = 32
"""Side of the noise tiles of every model (stored in its metadata; changing it changes the field)."""

NoiseTransform = Callable[[np.ndarray, tuple[int, int, int]], np.ndarray]
_Index = tuple[int, int, int]


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
    whiten : int
        Side of the cells, a divisor of ``tile``, whose channels are whitened (mean 0, identity covariance);
        0 leaves the noise plain (the noise of models whose metadata has no whiten entry).
    transforms : sequence of NoiseTransform
        Applied in order to every region produced.
    cache_bytes : int
        Tiles kept for reuse by neighbouring blocks.

    Notes
    -----
    A region's missing tiles are drawn on ``torch.get_num_threads()`` threads (each tile has its own generator,
    and numpy draws without holding the interpreter lock), so the field does not depend on the thread count.
    """

    seed: int
    sample: int = 0
    channels: int = 3
    tile: int = TILE
    whiten: int = 0
    transforms: Sequence[NoiseTransform] = ()
    cache_bytes: int = 256 * 2**20
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    def __post_init__(self):
        if self.tile < 1:
            raise ValueError(f"noise tile must be a positive number of voxels, got {self.tile}")
        if not valid_whiten(self.whiten, self.tile, self.channels):
            raise ValueError(
                f"noise whiten cell {self.whiten} must divide the tile ({self.tile}) and hold more voxels than "
                f"there are channels ({self.channels}); 0 turns whitening off"
            )

    def _draw(self, index: _Index) -> np.ndarray:
        sequence = np.random.SeedSequence([self.seed, self.sample, *index])
        rng = np.random.Generator(np.random.PCG64(sequence))
        values = rng.standard_normal((self.channels, self.tile, self.tile, self.tile), dtype=np.float32)
        if self.whiten:
            values = _whiten_cells(values, self.whiten)
        return values

    def _keep(self, index: _Index, values: np.ndarray) -> None:
        self._cache[index] = values
        while len(self._cache) * values.nbytes > self.cache_bytes:
            self._cache.popitem(last=False)

    def _tile(self, index: _Index) -> np.ndarray:
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        values = self._draw(index)
        self._keep(index, values)
        return values

    def _tiles(self, indices: list[_Index]) -> Iterator[tuple[_Index, np.ndarray]]:
        """(index, tile) for each of ``indices`` in order, the tiles not cached drawn on parallel threads."""
        threads = min(torch.get_num_threads(), sum(index not in self._cache for index in indices))
        if threads < 2:
            for index in indices:
                yield index, self._tile(index)
            return
        batch = 8 * threads  # tiles in memory beside the region: a bounded number, whatever its size
        with ThreadPoolExecutor(threads) as pool:
            for start in range(0, len(indices), batch):
                chunk = indices[start : start + batch]
                missing = [index for index in chunk if index not in self._cache]
                drawn = dict(zip(missing, pool.map(self._draw, missing), strict=True))
                for index in chunk:
                    if index in drawn:
                        self._keep(index, drawn[index])
                        yield index, drawn[index]
                    else:
                        yield index, self._tile(index)

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
        indices = [
            (tz, ty, tx)
            for tz in range(first[0], last[0] + 1)
            for ty in range(first[1], last[1] + 1)
            for tx in range(first[2], last[2] + 1)
        ]
        for index, tile in self._tiles(indices):
            src, dst = [], []
            for axis, ti in enumerate(index):
                lo = max(origin[axis], ti * t)
                hi = min(origin[axis] + shape[axis], (ti + 1) * t)
                src.append(slice(lo - ti * t, hi - ti * t))
                dst.append(slice(lo - origin[axis], hi - origin[axis]))
            out[(slice(None), *dst)] = tile[(slice(None), *src)]
        for transform in self.transforms:
            out = transform(out, origin)
        return out


def valid_whiten(whiten: int, tile: int, channels: int) -> bool:
    """Whether ``whiten`` is 0 (off) or a cell side that divides ``tile`` and holds more voxels than channels."""
    return whiten == 0 or (whiten >= 1 and tile % whiten == 0 and whiten**3 > channels)


def _whiten_cells(values: np.ndarray, cell: int) -> np.ndarray:
    """Each ``cell``³ block of a (C, t, t, t) tile shifted and ZCA-transformed to mean 0, identity covariance."""
    c, t = values.shape[0], values.shape[1]
    n = t // cell
    cells = (
        values.astype(np.float64)
        .reshape(c, n, cell, n, cell, n, cell)
        .transpose(1, 3, 5, 0, 2, 4, 6)
        .reshape(n**3, c, cell**3)
    )
    cells -= cells.mean(axis=2, keepdims=True)
    covariance = cells @ cells.transpose(0, 2, 1) / cell**3
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    zca = eigenvectors @ (eigenvectors.transpose(0, 2, 1) / np.sqrt(eigenvalues)[:, :, None])
    cells = zca @ cells
    return (
        cells.reshape(n, n, n, c, cell, cell, cell)
        .transpose(3, 0, 4, 1, 5, 2, 6)
        .reshape(c, t, t, t)
        .astype(np.float32)
    )
