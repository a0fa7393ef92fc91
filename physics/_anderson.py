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

__all__ = ["Anderson"]

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
        self._best = math.inf

    def mix(self, x, g):
        """The next state from the state ``x`` and its image ``g`` = G(x); ``x`` is not kept."""
        f = g - x
        norm = _norm(f)
        if norm > _RESTART_GROWTH * self._best:  # a bad combination: start the history again from here
            self._df.clear()
            self._dg.clear()
            self._g_prev = self._f_prev = None
        self._best = min(self._best, norm)
        if self._f_prev is not None:
            self._df.append(f - self._f_prev)
            self._dg.append(g - self._g_prev)
            if len(self._df) > self.depth:
                self._df.pop(0)
                self._dg.pop(0)
        self._f_prev, self._g_prev = f, g
        if not self._df:
            return g.clone() if hasattr(g, "clone") else g.copy()
        gamma = _least_squares(self._df, f)
        out = g.clone() if hasattr(g, "clone") else g.copy()
        for coefficient, dg in zip(gamma, self._dg, strict=True):
            out -= float(coefficient) * dg
        return out


def _dot(a, b) -> float:
    return float((a.reshape(-1) * b.reshape(-1)).sum(dtype=_float64(a)))


def _float64(a):
    if hasattr(a, "clone"):  # torch
        import torch

        return torch.float64
    import numpy as np

    return np.float64


def _norm(a) -> float:
    return math.sqrt(_dot(a, a))


def _least_squares(columns: list, target) -> list[float]:
    """γ minimising |target − Σ γ_j columns_j| by the (regularised) normal equations, in float64."""
    import numpy as np

    m = len(columns)
    gram = np.empty((m, m))
    for i in range(m):
        for j in range(i, m):
            gram[i, j] = gram[j, i] = _dot(columns[i], columns[j])
    rhs = np.array([_dot(c, target) for c in columns])
    gram[np.diag_indices(m)] += _REGULARIZATION * max(np.trace(gram), 1e-300)
    try:
        return list(np.linalg.solve(gram, rhs))
    except np.linalg.LinAlgError:
        return list(np.linalg.lstsq(gram, rhs, rcond=None)[0])
