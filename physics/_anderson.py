"""Anderson acceleration of the lattice-Boltzmann run towards its steady state.

A body-force run from rest is the fixed-point iteration x ← G(x) of the populations, G being a block of
steps. Its slowest modes are the pressure differences between pore bodies joined by thin throats: they
decay over tens of thousands of steps on a barely connected sample while everything else has settled. Anderson
mixing (Anderson 1965; Walker & Ni, SIAM J. Numer. Anal. 49, 2011, Eq. 2.1) takes the next state as the
combination of the last ``depth + 1`` images G(x_j) whose residuals G(x_j) − x_j combine to the smallest
norm. On the linear Stokes problem this is GMRES-like: the few slow modes are removed in a few blocks. The
fixed point is unchanged (a state with zero residual is the steady state of the plain run), so the run that
follows a mixed phase converges to the same k.
"""

from __future__ import annotations

import math
import os

import numpy as np
from numba import njit, prange

__all__ = ["Anderson", "copy_state", "fitting_depth"]

_REGULARIZATION = (
    1e-12  # relative Tikhonov term of the normal equations (the residuals become nearly dependent)
)
_RESTART_GROWTH = 10.0  # a residual this many times the smallest one seen restarts the history


class Anderson:
    """Anderson mixing of depth ``depth`` on arrays of one shape (numpy or torch, float32)."""

    def __init__(self, depth: int):
        self.depth = int(depth)
        self._g_prev = self._f_prev = None
        self._df: list = []  # differences of successive residuals
        self._dg: list = []  # differences of successive images
        self._gram: list[list[float]] = []  # dot products of the columns of _df, kept as columns come and go
        self._best = math.inf

    def mix(self, x, g):
        """The next state from the state ``x`` and its image ``g`` = G(x); ``x`` is overwritten (numpy) or
        dropped (torch). Numpy arrays are updated in place by parallel kernels, without temporaries: on the
        CPU a state is a memory-bound array of 76 bytes per pore node."""
        f = _difference(g, x, out=x)
        norm = _norm(f)
        if norm > _RESTART_GROWTH * self._best:  # a bad combination: start the history again from here
            self._df.clear()
            self._dg.clear()
            self._gram.clear()
            self._g_prev = self._f_prev = None
        self._best = min(self._best, norm)
        if self._f_prev is not None:  # the previous residual and image become the new differences
            self._append(
                _difference(f, self._f_prev, out=self._f_prev), _difference(g, self._g_prev, out=self._g_prev)
            )
        self._f_prev, self._g_prev = f, g
        out = copy_state(g)
        if self._df:
            gamma = _least_squares(self._gram, [_dot(c, f) for c in self._df])
            for coefficient, dg in zip(gamma, self._dg, strict=True):
                _subtract_scaled(out, float(coefficient), dg)
        return out

    def _append(self, df, dg) -> None:
        """Add a column, with its dot products against the kept ones; drop the oldest beyond ``depth``."""
        row = [_dot(c, df) for c in self._df]
        for kept, value in zip(self._gram, row, strict=True):
            kept.append(value)
        self._gram.append([*row, _dot(df, df)])
        self._df.append(df)
        self._dg.append(dg)
        if len(self._df) > self.depth:
            del self._df[0], self._dg[0], self._gram[0]
            for kept in self._gram:
                del kept[0]


def copy_state(array):
    """A copy of a numpy array or torch tensor."""
    return array.clone() if hasattr(array, "clone") else array.copy()


def _dot(a, b) -> float:
    """Σ a b in float64."""
    if isinstance(a, np.ndarray):
        return float(_dot_numba(a.reshape(-1), b.reshape(-1)))
    import torch

    return float((a.reshape(-1) * b.reshape(-1)).sum(dtype=torch.float64))


def _difference(a, b, *, out):
    """``a − b``, into ``out`` for numpy arrays (``out`` may be ``b``); a new tensor for torch."""
    if isinstance(a, np.ndarray):
        _difference_numba(a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out
    return a - b


def _subtract_scaled(out, coefficient: float, a) -> None:
    """``out −= coefficient · a`` in place."""
    if isinstance(out, np.ndarray):
        _subtract_scaled_numba(out.reshape(-1), np.float32(coefficient), a.reshape(-1))
    else:
        out.sub_(a, alpha=coefficient)


@njit(parallel=True, fastmath=True, cache=True)
def _dot_numba(a, b):  # pragma: no cover - compiled
    total = 0.0
    for i in prange(a.size):
        total += np.float64(a[i]) * np.float64(b[i])
    return total


@njit(parallel=True, cache=True)
def _difference_numba(a, b, out):  # pragma: no cover - compiled
    for i in prange(a.size):
        out[i] = a[i] - b[i]


@njit(parallel=True, cache=True)
def _subtract_scaled_numba(out, coefficient, a):  # pragma: no cover - compiled
    for i in prange(a.size):
        out[i] -= coefficient * a[i]


def _norm(a) -> float:
    return math.sqrt(_dot(a, a))


def _least_squares(gram: list[list[float]], rhs: list[float]) -> list[float]:
    """γ minimising |f − Σ γ_j columns_j| from the columns' dot products ``gram`` and ``rhs`` = columns · f,
    by the (regularised) normal equations, in float64."""
    gram, rhs = np.array(gram, dtype=np.float64), np.array(rhs, dtype=np.float64)
    gram[np.diag_indices(len(rhs))] += _REGULARIZATION * max(np.trace(gram), 1e-300)
    try:
        return list(np.linalg.solve(gram, rhs))
    except np.linalg.LinAlgError:
        return list(np.linalg.lstsq(gram, rhs, rcond=None)[0])


def fitting_depth(depth: int, nodes: int, populations) -> int:
    """``depth``, lowered so that the mixing's history (2 depth + 4 copies of the populations) takes at most
    half the free memory of the populations' device; 0 (a plain run) below depth 2."""
    if depth < 2:
        return 0
    state = 19 * 4 * nodes  # bytes of one copy of the float32 populations
    device = getattr(populations, "device", None)
    if getattr(device, "type", None) == "cuda":  # a torch tensor on a GPU
        import torch

        free = torch.cuda.mem_get_info(device)[0]
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 4 GB
            free = 4 << 30
    fits = int((free / 2 / state - 4) // 2)
    return depth if fits >= depth else (fits if fits >= 2 else 0)
