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

__all__ = ["Anderson", "fitting_depth"]

_REGULARIZATION = (
    1e-12  # relative Tikhonov term of the normal equations (the residuals become nearly dependent)
)
_RESTART_GROWTH = 10.0  # a residual this many times the smallest one seen restarts the history
_CHUNK = 8_192  # elements per task of the numba passes: a chunk of each of ~12 streams stays in L2


class Anderson:
    """Anderson mixing of depth ``depth`` of a state held in place (a numpy or torch float32 array).

    :meth:`start` takes the state x₀ at the start of a block of steps; after each block, :meth:`mix` takes
    the state G(x) the block left and overwrites it with the mixed state, the start of the next block. The
    history is ``depth`` differences of residuals and of images, kept in two ``(depth, size)`` buffers
    (``2 depth + 3`` copies of the state in all, with the previous residual, image and state). On the CPU
    a mixing of a numpy state is three parallel passes over the buffers (a state is a memory-bound array of 76
    bytes per pore node): the residual and the new differences; their dot products with the kept differences;
    the combination, written to the state. The state must be contiguous (it is updated through a flat view)."""

    def __init__(self, depth: int):
        if int(depth) < 1:
            raise ValueError(f"depth must be at least 1; received {depth}")
        self.depth = int(depth)
        self._x = self._f_prev = self._g_prev = None
        self._df = self._dg = None  # (depth, size) buffers of the differences, rows in ``_slots``
        self._slots: list[int] = []  # the rows in use, oldest first
        self._gram = np.zeros((self.depth, self.depth))  # dot products of the rows of _df, by row
        self._best = math.inf

    def start(self, state) -> None:
        """Begin (or begin again) from ``state``, which is copied."""
        contiguous = state.is_contiguous() if hasattr(state, "is_contiguous") else state.flags.c_contiguous
        if not contiguous:
            raise ValueError("state must be a contiguous array: the mixing writes it through a flat view")
        self._x = state.clone() if hasattr(state, "clone") else state.copy()
        self._f_prev = self._g_prev = self._df = self._dg = None
        self._slots.clear()
        self._best = math.inf

    def mix(self, state) -> None:
        """Overwrite ``state`` = G(x), the image of the last state x, with the next state (Walker & Ni,
        Eq. 2.1): G(x) − Σ γ_j ΔG_j, with γ minimising |f − Σ γ_j Δf_j| for the residual f = G(x) − x."""
        if self._f_prev is None:  # the first image: a residual, and no differences yet
            self._f_prev, self._g_prev = _empty_like(state), _empty_like(state)
            norm = math.sqrt(_first(state, self._x, self._f_prev, self._g_prev))
            self._best = min(self._best, norm)
            self._x[...] = state
            return
        if self._df is None:
            self._df = _empty_like(state, rows=self.depth)
            self._dg = _empty_like(state, rows=self.depth)
        slot = self._slots.pop(0) if len(self._slots) == self.depth else len(self._slots)
        norm = math.sqrt(
            _differences(state, self._x, self._f_prev, self._g_prev, self._df[slot], self._dg[slot])
        )
        if norm > _RESTART_GROWTH * self._best:  # a bad combination: start the history again from here
            self._slots.clear()
            self._x[...] = state
            return
        self._best = min(self._best, norm)
        self._slots.append(slot)
        row, rhs = _dots(self._df, self._slots, self._df[slot], self._f_prev)
        self._gram[slot, self._slots] = row
        self._gram[self._slots, slot] = row
        gamma = _least_squares(self._gram[np.ix_(self._slots, self._slots)], rhs)
        _combine(state, self._x, self._dg, self._slots, gamma)


def _empty_like(state, rows: int | None = None):
    """An uninitialised flat array (or ``rows`` of them) of ``state``'s size, dtype and device."""
    shape = (state.numel() if hasattr(state, "numel") else state.size,)
    if rows is not None:
        shape = (rows, *shape)
    if isinstance(state, np.ndarray):
        return np.empty(shape, dtype=state.dtype)
    import torch

    return torch.empty(shape, dtype=state.dtype, device=state.device)


def _flat(a):
    return a.reshape(-1)


def _first(g, x, f_out, g_out) -> float:
    """``f_out = g − x``, ``g_out = g``; returns |f|²."""
    if isinstance(g, np.ndarray):
        return float(_first_numba(_flat(g), _flat(x), f_out, g_out))
    import torch

    torch.sub(_flat(g), _flat(x), out=f_out)
    g_out.copy_(_flat(g))
    return float(f_out.square().sum(dtype=torch.float64))


def _differences(g, x, f_prev, g_prev, df, dg) -> float:
    """With f = g − x: ``df = f − f_prev``, ``dg = g − g_prev``, then ``f_prev = f``, ``g_prev = g``;
    returns |f|²."""
    if isinstance(g, np.ndarray):
        return float(_differences_numba(_flat(g), _flat(x), f_prev, g_prev, df, dg))
    import torch

    f = _flat(g) - _flat(x)
    torch.sub(f, f_prev, out=df)
    torch.sub(_flat(g), g_prev, out=dg)
    f_prev.copy_(f)
    g_prev.copy_(_flat(g))
    return float(f.square().sum(dtype=torch.float64))


def _dots(rows, slots: list[int], a, b) -> tuple[np.ndarray, np.ndarray]:
    """The dot products (float64) of each row ``rows[s]``, s in ``slots``, with ``a`` and with ``b``."""
    if isinstance(rows, np.ndarray):
        return _dots_numba(rows, np.asarray(slots, dtype=np.int64), a, b)
    import torch

    with_a = [float((rows[s] * a).sum(dtype=torch.float64)) for s in slots]
    with_b = [float((rows[s] * b).sum(dtype=torch.float64)) for s in slots]
    return np.array(with_a), np.array(with_b)


def _combine(g, x, rows, slots: list[int], gamma: np.ndarray) -> None:
    """``g = x = g − Σ γ_j rows[slots[j]]``."""
    if isinstance(g, np.ndarray):
        _combine_numba(_flat(g), _flat(x), rows, np.asarray(slots, dtype=np.int64), gamma)
        return
    flat = _flat(g)
    for s, coefficient in zip(slots, gamma, strict=True):
        flat.sub_(rows[s], alpha=float(coefficient))
    x.copy_(g)


@njit(parallel=True, fastmath=True, cache=True)
def _first_numba(g, x, f_out, g_out):  # pragma: no cover - compiled
    total = 0.0
    for i in prange(g.size):
        f = g[i] - x[i]
        f_out[i] = f
        g_out[i] = g[i]
        total += np.float64(f) * np.float64(f)
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _differences_numba(g, x, f_prev, g_prev, df, dg):  # pragma: no cover - compiled
    total = 0.0
    for i in prange(g.size):
        gi = g[i]
        f = gi - x[i]
        df[i] = f - f_prev[i]
        dg[i] = gi - g_prev[i]
        f_prev[i] = f
        g_prev[i] = gi
        total += np.float64(f) * np.float64(f)
    return total


@njit(parallel=True, fastmath=True, cache=True)
def _dots_numba(rows, slots, a, b):  # pragma: no cover - compiled
    size, m = a.size, slots.size
    chunks = (size + _CHUNK - 1) // _CHUNK
    partial = np.zeros((chunks, 2, m))
    for c in prange(chunks):
        lo, hi = c * _CHUNK, min(size, (c + 1) * _CHUNK)
        for j in range(m):
            row = rows[slots[j]]
            sum_a = 0.0
            sum_b = 0.0
            for i in range(lo, hi):
                r = np.float64(row[i])
                sum_a += r * np.float64(a[i])
                sum_b += r * np.float64(b[i])
            partial[c, 0, j] = sum_a
            partial[c, 1, j] = sum_b
    totals = partial.sum(axis=0)
    return totals[0].copy(), totals[1].copy()


@njit(parallel=True, fastmath=True, cache=True)
def _combine_numba(g, x, rows, slots, gamma):  # pragma: no cover - compiled
    size, m = g.size, slots.size
    chunks = (size + _CHUNK - 1) // _CHUNK
    for c in prange(chunks):
        lo, hi = c * _CHUNK, min(size, (c + 1) * _CHUNK)
        out = g[lo:hi].astype(np.float64)
        for j in range(m):
            row = rows[slots[j]]
            coefficient = gamma[j]
            for i in range(hi - lo):
                out[i] -= coefficient * row[lo + i]
        for i in range(hi - lo):
            value = np.float32(out[i])
            g[lo + i] = value
            x[lo + i] = value


def _least_squares(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """γ minimising |f − Σ γ_j columns_j| from the columns' dot products ``gram`` and ``rhs`` = columns · f,
    by the (regularised) normal equations, in float64."""
    gram = np.array(gram, dtype=np.float64)
    rhs = np.asarray(rhs, dtype=np.float64)
    gram[np.diag_indices(len(rhs))] += _REGULARIZATION * max(np.trace(gram), 1e-300)
    try:
        return np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]


def fitting_depth(depth: int, nodes: int, populations) -> int:
    """``depth``, lowered so that the mixing's history (2 depth + 3 copies of the populations, and two more
    at a time on a GPU) takes at most half the free memory of the populations' device; 0 (a plain run) below
    depth 2."""
    if depth < 2:
        return 0
    state = 19 * 4 * nodes  # bytes of one copy of the float32 populations
    device = getattr(populations, "device", None)
    copies = 3  # the last state, residual and image, besides the 2 depth differences
    if getattr(device, "type", None) == "cuda":  # a torch tensor on a GPU
        import torch

        free = torch.cuda.mem_get_info(device)[0]
        copies = 5  # and the temporaries of the residual and its square
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 4 GB
            free = 4 << 30
    fits = int((free / 2 / state - copies) // 2)
    return depth if fits >= depth else (fits if fits >= 2 else 0)
