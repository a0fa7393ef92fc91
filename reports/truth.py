"""The ground truth as a distribution: pieces of a reference's 3D truth at the samples' size.

A reconstruction is a draw of a random structure, and so is any sub-volume of the real material: comparing
samples with one crop of the truth mixes the generator's error with the crop's own luck. Here the truth is cut
into many pieces of the samples' size and each piece is evaluated like a sample, so that every metric of the
samples can be read against the truth's own spread.

- A CT or other 3D volume is tiled into disjoint pieces when enough fit; otherwise the tiling overlaps with
  the smallest stride that yields the pieces asked for, and :attr:`TruthPlan.overlap` says by how much.
- A built-in reference is a stationary random process with a known generator: its pieces are cut from further
  draws of that generator (:func:`swnn.references.builtin_realization`, other seeds), each draw twice the
  samples' side so that its exact overall fraction does not pin the pieces' fractions. They are independent of
  the built-in volume the model was trained on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["TruthPiece", "TruthPlan", "piece_array", "plan_truth", "truth_pieces"]

DRAW_SEED = 7_000_000
"""Seed of a built-in's first further draw (its own volumes use seeds below 10,000)."""


@dataclass(frozen=True)
class TruthPiece:
    """One piece of the truth.

    Attributes
    ----------
    index : int
        Position in the plan (0, 1, …).
    origin : tuple of 3 int
        ``(z, y, x)`` of the piece's first voxel in its source.
    draw : int or None
        Seed of the built-in draw it is cut from; None when cut from the reference's own volume.
    """

    index: int
    origin: tuple[int, int, int]
    draw: int | None = None

    def to_dict(self) -> dict:
        return {"index": self.index, "origin": list(self.origin), "draw": self.draw}


@dataclass(frozen=True)
class TruthPlan:
    """Which pieces of the truth are evaluated.

    Attributes
    ----------
    size : int
        Side of a piece (the samples' side).
    pieces : tuple of TruthPiece
    source : str
        ``"volume"`` (tiles of the reference's 3D volume) or ``"draws"`` (tiles of further draws of a
        built-in's generator).
    overlap : float
        Fraction of a piece's side shared with its neighbour along each axis (0 for disjoint pieces).
    draw_side : int or None
        Side of each built-in draw.
    """

    size: int
    pieces: tuple[TruthPiece, ...]
    source: str
    overlap: float = 0.0
    draw_side: int | None = None

    @property
    def n(self) -> int:
        return len(self.pieces)

    def description(self) -> str:
        """One sentence for a report."""
        n, side = self.n, f"{self.size}³"
        if self.source == "draws":
            draws = len({p.draw for p in self.pieces})
            return (
                f"{n} disjoint {side} pieces of {draws} further draw(s) of {self.draw_side}³ of the built-in's "
                "generator (independent of the training volume)"
            )
        if self.overlap > 0:
            return f"{n} {side} pieces of the 3D truth, overlapping by {self.overlap:.0%} of their side"
        return f"{n} disjoint {side} pieces of the 3D truth"

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "n": self.n,
            "source": self.source,
            "overlap": self.overlap,
            "draw_side": self.draw_side,
            "description": self.description(),
        }


def _grid(shape: tuple[int, ...], size: int, stride: int) -> list[tuple[int, int, int]]:
    starts = [range(0, n - size + 1, stride) for n in shape]
    return [(z, y, x) for z in starts[0] for y in starts[1] for x in starts[2]]


def plan_truth(
    shape: tuple[int, int, int],
    size: int,
    count: int,
    *,
    builtin: str | None = None,
    seed: int = 0,
) -> TruthPlan:
    """Plan ``count`` pieces of side ``size`` of a 3D truth of ``shape``.

    Parameters
    ----------
    shape : tuple of 3 int
        Shape of the reference's volume.
    size : int
        Side of each piece.
    count : int
        Pieces wanted. From a volume, fewer when even a stride of one voxel does not yield them all.
    builtin : str, optional
        Name of a built-in reference: cut the pieces from further draws of its generator instead.
    seed : int
        Offsets the draws' seeds (a study's seed), and picks which disjoint tiles of a volume are used when
        more fit than are wanted.

    Returns
    -------
    TruthPlan
    """
    if len(shape) != 3:
        raise ValueError(f"the truth must be a 3D volume, got shape {tuple(shape)}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer of at least 2, got {size!r}")
    if builtin is not None:
        side = 2 * size
        per_draw = _grid((side,) * 3, size, size)
        draws = math.ceil(count / len(per_draw))
        pieces = []
        for d in range(draws):
            draw = DRAW_SEED + 1000 * seed + d
            for origin in per_draw:
                if len(pieces) < count:
                    pieces.append(TruthPiece(len(pieces), origin, draw))
        return TruthPlan(size, tuple(pieces), "draws", 0.0, side)
    if size > min(shape):
        raise ValueError(
            f"size {size} exceeds the truth's smallest side ({min(shape)} of shape {tuple(shape)})"
        )
    origins = _grid(shape, size, size)
    stride = size
    while len(origins) < count and stride > 1:
        stride -= 1
        origins = _grid(shape, size, stride)
    if len(origins) > count:  # an even spread of the tiles, not the first corner's
        order = np.random.default_rng(seed).permutation(len(origins))[:count]
        origins = [origins[i] for i in sorted(order)]
    pieces = tuple(TruthPiece(i, tuple(int(v) for v in o)) for i, o in enumerate(origins))
    return TruthPlan(size, pieces, "volume", 1.0 - stride / size)


def truth_pieces(
    plan: TruthPlan, volume: np.ndarray | None = None, *, builtin: str | None = None
) -> Iterator[tuple[TruthPiece, np.ndarray]]:
    """The pieces of ``plan``, in order, each a C-contiguous uint8 array of shape ``(size,) * 3``.

    ``volume`` is the reference's volume for a ``"volume"`` plan; ``builtin`` the built-in's name for a
    ``"draws"`` plan (each draw is generated once, when its first piece is reached).
    """
    for piece in plan.pieces:
        yield piece, piece_array(plan, piece, volume, builtin=builtin)


def piece_array(
    plan: TruthPlan, piece: TruthPiece, volume: np.ndarray | None = None, *, builtin: str | None = None
) -> np.ndarray:
    """One piece of ``plan`` as a C-contiguous uint8 array (the last built-in draw is kept in memory)."""
    if plan.source == "draws":
        if builtin is None:
            raise ValueError("builtin must name the built-in reference of a plan of draws")
        volume = _draw(builtin, piece.draw, plan.draw_side)
    elif volume is None:
        raise ValueError("volume is needed for a plan of sub-volumes")
    z, y, x = piece.origin
    size = plan.size
    return np.ascontiguousarray(volume[z : z + size, y : y + size, x : x + size], dtype=np.uint8)


@functools.lru_cache(maxsize=1)
def _draw(builtin: str, seed: int, side: int) -> np.ndarray:
    from swnn.references import builtin_realization

    return builtin_realization(builtin, seed=seed, shape=(side,) * 3)
