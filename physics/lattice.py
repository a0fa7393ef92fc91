"""Lattice-Boltzmann velocity sets as data objects built once (velocities, weights, opposite directions).

Only D3Q19 is needed by :mod:`physics.permeability`. Directions are ordered rest first, then a "positive"
half of nine directions, then their opposites in the same order, so ``opposite[q] = q + 9`` for
``1 <= q <= 9``; kernels that pair each direction with its opposite (TRT collision, bounce-back) loop over
``q = 1 … 9`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["D3Q19", "VelocitySet"]


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class VelocitySet:
    """A discrete velocity set of the lattice-Boltzmann method.

    Attributes
    ----------
    name : str
        Conventional name, for example ``"D3Q19"``.
    c : ndarray of int64 of shape (Q, D)
        Lattice velocities; component ``i`` is along array axis ``i`` of the volume (Z, Y, X).
    w : ndarray of float64 of shape (Q,)
        Quadrature weights, summing to 1.
    opposite : ndarray of int64 of shape (Q,)
        ``c[opposite[q]] == -c[q]``.
    cs2 : float
        Squared lattice speed of sound (1/3 for the standard sets).
    """

    name: str
    c: np.ndarray
    w: np.ndarray
    opposite: np.ndarray = field(init=False)
    cs2: float = 1.0 / 3.0

    def __post_init__(self) -> None:
        c = _read_only(np.asarray(self.c, dtype=np.int64))
        w = _read_only(np.asarray(self.w, dtype=np.float64))
        index = {tuple(v): q for q, v in enumerate(c.tolist())}
        opposite = _read_only(np.array([index[tuple(-v)] for v in c], dtype=np.int64))
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "opposite", opposite)

    @property
    def q(self) -> int:
        """Number of velocities."""
        return int(self.c.shape[0])

    @property
    def dim(self) -> int:
        """Number of space dimensions."""
        return int(self.c.shape[1])


def _d3q19() -> VelocitySet:
    half = [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 1, 0),
        (1, -1, 0),
        (1, 0, 1),
        (1, 0, -1),
        (0, 1, 1),
        (0, 1, -1),
    ]
    c = np.array([(0, 0, 0), *half, *[tuple(-v for v in h) for h in half]], dtype=np.int64)  # (19, 3)
    speed2 = (c**2).sum(axis=1)
    w = np.where(speed2 == 0, 1.0 / 3.0, np.where(speed2 == 1, 1.0 / 18.0, 1.0 / 36.0))
    return VelocitySet("D3Q19", c, w)


D3Q19 = _d3q19()
"""The D3Q19 set: rest, 6 face and 12 edge neighbours; ``opposite[q] = q + 9`` for ``1 <= q <= 9``."""
