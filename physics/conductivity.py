"""Effective thermal conductivity: steady conduction ∇·(k∇T) = 0 on the voxel grid of a label image.

Discretisation (cell-centred finite volumes, unit voxels; the voxel size cancels out of ``k_eff``):

- one unknown temperature per voxel, one conductivity per phase;
- the conductance of the face between two neighbouring voxels is the harmonic mean of their conductivities,
  ``2 k_a k_b / (k_a + k_b)``, so that layered media come out exact;
- along the flow axis, T = 1 and T = 0 are held *on the two outer faces* of the volume, half a voxel outside
  the first and last voxel centres (conductance ``2 k`` between a face and the voxel next to it), so that the
  length entering ``k_eff`` is the number of voxels ``N`` along the axis:
  ``k_eff = Q N / A`` with Q the heat flow for ΔT = 1 and A the number of voxels in a cross-section;
- the four (2D: two) sides are periodic (the paper) or insulated (as TauFactor).

Q is taken from the dissipation ``Σ_faces g ΔT²``, which equals the heat flow at the solution and exceeds it
by the squared energy norm of the error otherwise: its error is quadratic in the solver's, where a heat flow
read off the inlet face has a linear one (against a direct sparse solve, 1e-8 at the default tol).

This face-boundary form agrees with TauFactor's ``MultiPhaseSolver`` ``D_eff`` with no length correction
(../shared/REFERENCES.md, "Effective conductivity").

The linear system is solved matrix-free by preconditioned conjugate gradients in torch, on the device of the
input, with float32 storage and float64 reductions (inner products: pairwise float32 sums along rows, the
rows added in float64; heat flows and dissipation wholly in float64). The unknown is the departure ``u = T − T_lin`` from the
linear profile (the initial guess), whose right-hand side ``∇·(k∇T_lin)`` is exactly zero for uniform
volumes and for layers along the flow. The preconditioner is a geometric multigrid V-cycle (piecewise-constant
transfers, coarse conductances combined in series along each axis and in parallel across it, damped-Jacobi
smoothing, a dense Cholesky solve on the coarsest grid) or plain Jacobi. Measured at 128³ (Gaussian blobs,
1.4 / 0.026, one thread): Jacobi 375 iterations, 4.5 s; an FFT/DST Poisson preconditioner with the mean
conductivity 28 iterations, 2.4 s; the V-cycle 13 iterations, 0.6 s, and 13 again at 256³.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._device import resolve_device
from ._validation import ParameterTypeError, check_label_image

__all__ = [
    "DEFAULT_CONDUCTIVITIES",
    "PRECONDITIONERS",
    "SIDES",
    "ConductivityResult",
    "ConvergenceWarning",
    "conductivity_per_axis",
    "effective_conductivity",
]

DEFAULT_CONDUCTIVITIES = (1.4, 0.026)
"""W/(m·K) of phase 0 (solid) and phase 1 (pore) in the paper."""

SIDES = ("periodic", "insulated")
PRECONDITIONERS = ("auto", "multigrid", "jacobi")
DEFAULT_MAX_ITERATIONS = 2000

# Multigrid settings, measured on Gaussian-blob structures (σ = 2 voxels, 40 % pore, 1.4 / 0.026) at 64³-256³:
# weight 0.8 / 0.9 with one sweep needs 24-27 iterations, 0.85-0.9 with two sweeps 12-13 and with three 9,
# two and three sweeps costing the same time; weight 1.0 needs 40+ iterations.
_SMOOTHING_WEIGHT = 0.85  # damped Jacobi (≈ 6/7, the best smoothing weight for the 7-point Laplacian); < 1
# keeps the V-cycle symmetric positive definite
_SMOOTHING_SWEEPS = 2  # before and after the coarse correction on every level
_COARSEST_SIZE = 512  # cells; the coarsest grid is solved exactly by a dense Cholesky factorisation
_PATIENCE = 50  # stalled (float32 floor): max(_PATIENCE, checks to the last gain) checks without one


class ConvergenceWarning(RuntimeWarning):
    """The conductivity solve stopped before reaching its tolerance; the result says ``converged=False``."""


@dataclass(frozen=True)
class ConductivityResult:
    """Effective conductivity along one axis.

    Attributes
    ----------
    axis : int
        Axis of the heat flow (T = 1 on the face before index 0, T = 0 on the face after index N − 1).
    k_eff : float
        Effective conductivity, in the units of ``conductivities``: ``Q N / (A ΔT)`` with N the voxels along
        ``axis``, A the voxels in a cross-section and Q the heat flow, taken from the dissipation
        ``Σ g ΔT²`` (an upper estimate whose error is quadratic in the solver's).
    iterations : int
        Conjugate-gradient iterations (one preconditioner application each).
    residual : float
        Final relative residual ``‖b − A T‖ / ‖b − A T_lin‖`` (0 when the linear profile is exact).
    flux_imbalance : float
        ``|Q_in − Q_out| / ((Q_in + Q_out) / 2)``, the heat flows through the inlet and outlet faces.
    converged : bool
        Whether both ``residual`` and ``flux_imbalance`` reached ``tol``.
    sides : str
        ``"periodic"`` or ``"insulated"``.
    temperature : ndarray or Tensor of float32, same shape as the volume, or None
        Temperature at the voxel centres when asked for (``return_field=True``), on the input's framework
        and device.
    """

    axis: int
    k_eff: float
    iterations: int
    residual: float
    flux_imbalance: float
    converged: bool
    sides: str
    temperature: np.ndarray | torch.Tensor | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers (without the temperature field)."""
        return {
            "axis": int(self.axis),
            "k_eff": float(self.k_eff),
            "iterations": int(self.iterations),
            "residual": float(self.residual),
            "flux_imbalance": float(self.flux_imbalance),
            "converged": bool(self.converged),
        }


# ----------------------------------------------------------------------------------------------------------
# The operator: face conductances of one grid, flow along axis 0
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stencil:
    """Face conductances of the finite-volume operator ``(A T)_i = Σ_faces g (T_i − T_neighbour)``.

    The flow runs along axis 0 (callers move the chosen axis there). Shapes, for a grid of shape
    ``(N0, N1[, N2])``: ``faces[d]`` has ``N_d − 1`` entries along d (the face between cells i and i + 1);
    ``wrap[d]`` has one entry along d (the periodic face between the last cell and the first) or is None
    (insulated sides; always None for axis 0); ``inlet`` and ``outlet`` have one entry along axis 0 (the
    conductance between a held face and the cell next to it); ``diagonal`` has the grid's shape.
    """

    faces: tuple[torch.Tensor, ...]
    wrap: tuple[torch.Tensor | None, ...]
    inlet: torch.Tensor
    outlet: torch.Tensor
    diagonal: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.diagonal.shape)

    @classmethod
    def build(cls, faces, wrap, inlet, outlet) -> _Stencil:
        shape = (faces[0].shape[0] + 1, *inlet.shape[1:])
        diagonal = torch.zeros(shape, dtype=inlet.dtype, device=inlet.device)
        for d, g in enumerate(faces):
            n = diagonal.shape[d]
            if n > 1:
                diagonal.narrow(d, 0, n - 1).add_(g)
                diagonal.narrow(d, 1, n - 1).add_(g)
            if wrap[d] is not None:
                diagonal.narrow(d, 0, 1).add_(wrap[d])
                diagonal.narrow(d, n - 1, 1).add_(wrap[d])
        diagonal.narrow(0, 0, 1).add_(inlet)
        diagonal.narrow(0, diagonal.shape[0] - 1, 1).add_(outlet)
        return cls(tuple(faces), tuple(wrap), inlet, outlet, diagonal)

    @classmethod
    def from_phases(cls, phases: torch.Tensor, conductivities: Sequence[float], periodic: bool) -> _Stencil:
        """Harmonic-mean face conductances of a phase-index image (integer labels, flow along axis 0)."""
        n_phases = len(conductivities)
        k = torch.tensor(conductivities, dtype=torch.float64)
        # Pair table in float64 so that equal neighbours give exactly their own conductivity in float32.
        pairs = (2 * k[:, None] * k[None, :] / (k[:, None] + k[None, :])).to(torch.float32).to(phases.device)
        k32 = k.to(torch.float32).to(phases.device)
        small = phases.dtype == torch.uint8 and n_phases * n_phases <= 256  # pair index fits in a byte

        def pair_conductance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            index = (a * n_phases + b).to(torch.int64) if small else a.to(torch.int64) * n_phases + b
            return pairs.take(index)

        faces, wrap = [], []
        for d in range(phases.ndim):
            n = phases.shape[d]
            faces.append(pair_conductance(phases.narrow(d, 0, n - 1), phases.narrow(d, 1, n - 1)))
            periodic_side = periodic and d > 0
            wrap.append(
                pair_conductance(phases.narrow(d, n - 1, 1), phases.narrow(d, 0, 1))
                if periodic_side
                else None
            )
        inlet = 2 * k32.take(phases.narrow(0, 0, 1).to(torch.int64))
        outlet = 2 * k32.take(phases.narrow(0, phases.shape[0] - 1, 1).to(torch.int64))
        return cls.build(faces, wrap, inlet, outlet)

    def apply(self, x: torch.Tensor, out: torch.Tensor, rhs: torch.Tensor | None = None) -> torch.Tensor:
        """``out = A x``, or ``out = rhs − A x`` when ``rhs`` is given (the held faces add to the diagonal only).

        Seven passes over the grid: the diagonal, then one fused multiply-add per neighbour direction.
        """
        if rhs is None:
            torch.mul(self.diagonal, x, out=out)
            sign = -1
        else:
            torch.addcmul(rhs, self.diagonal, x, value=-1, out=out)
            sign = 1
        for d, g in enumerate(self.faces):
            n = x.shape[d]
            if n > 1:
                out.narrow(d, 0, n - 1).addcmul_(g, x.narrow(d, 1, n - 1), value=sign)
                out.narrow(d, 1, n - 1).addcmul_(g, x.narrow(d, 0, n - 1), value=sign)
            w = self.wrap[d]
            if w is not None:
                out.narrow(d, n - 1, 1).addcmul_(w, x.narrow(d, 0, 1), value=sign)
                out.narrow(d, 0, 1).addcmul_(w, x.narrow(d, n - 1, 1), value=sign)
        return out

    def residual(self, x: torch.Tensor, rhs: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = rhs − A x`` summed face by face as ``g (x_j − x_i)``: accurate where ``apply`` cancels.

        ``apply`` forms ``diagonal · x_i − Σ g x_j``, whose float32 rounding is relative to ``x`` itself,
        while the heat flows in a conductive layer are set by differences far smaller than ``x``. Here each
        difference of two stored values is rounded once, relative to the difference. It costs about twice
        ``apply`` and serves only the true-residual checks that drive the iterative refinement.
        """
        out.copy_(rhs)
        for d, g in enumerate(self.faces):
            n = x.shape[d]
            if n > 1:
                flow = (x.narrow(d, 1, n - 1) - x.narrow(d, 0, n - 1)).mul_(g)  # into cell i from i + 1
                out.narrow(d, 0, n - 1).add_(flow)
                out.narrow(d, 1, n - 1).sub_(flow)
            w = self.wrap[d]
            if w is not None:
                # into the last cell from the first
                flow = (x.narrow(d, 0, 1) - x.narrow(d, n - 1, 1)).mul_(w)
                out.narrow(d, n - 1, 1).add_(flow)
                out.narrow(d, 0, 1).sub_(flow)
        n = x.shape[0]
        out.narrow(0, 0, 1).addcmul_(self.inlet, x.narrow(0, 0, 1), value=-1)
        out.narrow(0, n - 1, 1).addcmul_(self.outlet, x.narrow(0, n - 1, 1), value=-1)
        return out

    def dissipation(self, u: torch.Tensor, chunk: int = 1 << 22) -> float:
        """``Σ_faces g ΔT²`` for ``T = T_lin + u``, held faces included.

        At the solution it equals the heat flow Q (for ΔT = 1, by the discrete Green identity); for any other
        T with the same held faces it exceeds Q by the squared energy norm of the error, so ``k_eff`` taken
        from it is an upper estimate whose error is quadratic in the solver's, where ``Q`` read off a face
        has a linear one (1e-8 against 3e-5 on a series stack at tol = 1e-4).

        Across the flow ΔT is a difference of two stored values, rounded once relative to itself, so float32
        terms summed in float64 rows suffice. Along the flow ``ΔT = u_i − u_(i+1) + 1/N`` can be far smaller
        than 1/N (a conductive layer), so those terms are formed in float64, in slabs of about ``chunk``
        values.
        """
        n = u.shape[0]
        total = 0.0
        step = max(1, chunk // max(1, u[0].numel()))
        for start in range(0, n - 1, step):
            stop = min(start + step, n - 1)  # faces start … stop − 1 along axis 0
            cells = u[start : stop + 1].to(torch.float64)
            drop = (cells[:-1] - cells[1:] + 1.0 / n).square_().mul_(self.faces[0][start:stop])
            total += float(drop.sum())
        for d in range(1, u.ndim):
            m = u.shape[d]
            pairs = [(self.faces[d], u.narrow(d, 0, m - 1) - u.narrow(d, 1, m - 1))]
            if self.wrap[d] is not None:
                pairs.append((self.wrap[d], u.narrow(d, m - 1, 1) - u.narrow(d, 0, 1)))
            for g, drop in pairs:
                drop.square_().mul_(g)
                total += float(drop.reshape(drop.shape[0], -1).sum(dim=1).sum(dtype=torch.float64))
        edge = 0.5 / n  # 1 − T_lin in the first cell and T_lin in the last
        inlet_drop = edge - u.narrow(0, 0, 1).to(torch.float64)
        outlet_drop = edge + u.narrow(0, n - 1, 1).to(torch.float64)
        total += float(torch.sum(self.inlet * inlet_drop.square()))
        total += float(torch.sum(self.outlet * outlet_drop.square()))
        return total

    def linear_profile_rhs(self) -> torch.Tensor:
        """``b − A T_lin``: the divergence of the heat flux of the linear profile ``T_lin = 1 − (i + ½)/N``.

        Only faces normal to the flow carry that flux (``g / N`` through an inner face, ``(g/2) / N`` through a
        held face), so the right-hand side is ``(g_before − g_after) / N``: exactly zero for uniform volumes
        and for layers along the flow (a difference of equal floats is exactly 0).
        """
        n = self.shape[0]
        g = self.faces[0]
        rhs = torch.empty_like(self.diagonal)
        torch.sub(self.inlet / 2, g[:1], out=rhs[:1])
        torch.sub(g[:-1], g[1:], out=rhs[1:-1])
        torch.sub(g[-1:], self.outlet / 2, out=rhs[-1:])
        return rhs.div_(n)

    def coarsen(self) -> tuple[_Stencil, tuple[bool, ...]]:
        """The stencil on the grid of 2 × 2 (× 2) aggregates (the last one single where a length is odd).

        Conductances between aggregate centres: along each coarsened axis, the fine path between two centres
        in series (half of each aggregate's inner link, the crossing face), then the 2 × 2 parallel paths
        across summed. Uniform k gives 2k on a coarse face (the conductance of a 2-voxel cell), not the
        Galerkin 4k.
        """
        coarsened = tuple(n >= 2 for n in self.shape)
        faces, wrap = [], []
        inner = []  # per axis: half the resistance of each aggregate's inner link, (n_coarse along d)
        for d, g in enumerate(self.faces):
            if coarsened[d]:
                half = 0.5 / g[_along(d, slice(0, None, 2))]
                if self.shape[d] % 2:
                    pad = list(half.shape)
                    pad[d] = 1
                    half = torch.cat([half, half.new_zeros(pad)], dim=d)
                inner.append(half)
                cross = 1.0 / g[_along(d, slice(1, None, 2))]
                n_c = half.shape[d]
                series = half.narrow(d, 0, n_c - 1) + cross + half.narrow(d, 1, n_c - 1)
                faces.append(_aggregate(series.reciprocal_(), coarsened, skip=d))
            else:
                inner.append(None)
                faces.append(_aggregate(g, coarsened, skip=d))
            w = self.wrap[d]
            if w is None:
                wrap.append(None)
            elif coarsened[d]:
                half = inner[d]
                n_c = half.shape[d]
                series = half.narrow(d, n_c - 1, 1) + 1.0 / w + half.narrow(d, 0, 1)
                wrap.append(_aggregate(series.reciprocal_(), coarsened, skip=d))
            else:
                wrap.append(_aggregate(w, coarsened, skip=d))
        if coarsened[0]:
            n_c = inner[0].shape[0]
            inlet = (1.0 / self.inlet + inner[0].narrow(0, 0, 1)).reciprocal_()
            outlet = (1.0 / self.outlet + inner[0].narrow(0, n_c - 1, 1)).reciprocal_()
        else:
            inlet, outlet = self.inlet, self.outlet
        inlet = _aggregate(inlet, coarsened, skip=0)
        outlet = _aggregate(outlet, coarsened, skip=0)
        return _Stencil.build(faces, wrap, inlet, outlet), coarsened

    def dense(self) -> torch.Tensor:
        """The operator as a dense float64 matrix (for the coarsest grid only)."""
        size = self.diagonal.numel()
        index = torch.arange(size, device=self.diagonal.device).reshape(self.shape)
        matrix = torch.diag(self.diagonal.reshape(-1).to(torch.float64))
        for d, g in enumerate(self.faces):
            n = self.shape[d]
            pairs = [(index.narrow(d, 0, n - 1), index.narrow(d, 1, n - 1), g)]
            if self.wrap[d] is not None:
                pairs.append((index.narrow(d, n - 1, 1), index.narrow(d, 0, 1), self.wrap[d]))
            for a, b, conductance in pairs:
                a, b, value = a.reshape(-1), b.reshape(-1), conductance.reshape(-1).to(torch.float64)
                matrix.index_put_((a, b), -value, accumulate=True)
                matrix.index_put_((b, a), -value, accumulate=True)
        return matrix


def _along(d: int, index: slice) -> tuple[slice, ...]:
    """Index selecting ``index`` along axis ``d``."""
    return (slice(None),) * d + (index,)


def _aggregate(t: torch.Tensor, coarsened: Sequence[bool], skip: int = -1) -> torch.Tensor:
    """Sum ``t`` over pairs of cells along every coarsened axis except ``skip`` (the restriction).

    One axis at a time, axis 0 first (its halves are long contiguous runs), which is several times faster
    than one reshape-and-sum over the interleaved pair axes.
    """
    for d in range(t.ndim):
        if coarsened[d] and d != skip:
            n = t.shape[d]
            if n % 2:  # the last aggregate holds one cell: pair it with a zero
                t = torch.cat([t, t.new_zeros(t.shape[:d] + (1,) + t.shape[d + 1 :])], dim=d)
            pairs = t.reshape(t.shape[:d] + ((n + 1) // 2, 2) + t.shape[d + 1 :])
            t = pairs.select(d + 1, 0) + pairs.select(d + 1, 1)
    return t


def _repeat_pairs(t: torch.Tensor, d: int, n: int) -> torch.Tensor:
    """Each entry along ``d`` twice, cut to length ``n`` (the piecewise-constant prolongation along d)."""
    m = t.shape[d]
    doubled = t.unsqueeze(d + 1).expand(t.shape[: d + 1] + (2,) + t.shape[d + 1 :])
    return doubled.reshape(t.shape[:d] + (2 * m,) + t.shape[d + 1 :]).narrow(d, 0, n)


def _prolong_add(x: torch.Tensor, coarse: torch.Tensor, coarsened: Sequence[bool]) -> None:
    """``x += P coarse``: each aggregate's value added to its cells.

    The last axis is expanded by a copy (a quarter of the fine size or less); the others are broadcast
    through a view of ``x`` when their lengths are even, so that the addition runs over contiguous rows.
    """
    last = x.ndim - 1
    if coarsened[last]:
        coarse = _repeat_pairs(coarse, last, x.shape[last])
    fine_view, coarse_view = [], []
    for d in range(x.ndim):
        if coarsened[d] and d != last and x.shape[d] % 2 == 0:
            fine_view += [coarse.shape[d], 2]
            coarse_view += [coarse.shape[d], 1]
        else:
            if coarsened[d] and d != last:
                coarse = _repeat_pairs(coarse, d, x.shape[d])
            fine_view.append(x.shape[d])
            coarse_view.append(coarse.shape[d])
    x.view(fine_view).add_(coarse.reshape(coarse_view))


# ----------------------------------------------------------------------------------------------------------
# Preconditioners: z = M⁻¹ r, symmetric positive definite
# ----------------------------------------------------------------------------------------------------------


class _Jacobi:
    def __init__(self, stencil: _Stencil):
        self.inverse_diagonal = stencil.diagonal.reciprocal()

    def __call__(self, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mul(self.inverse_diagonal, r, out=out)


class _Multigrid:
    """One symmetric V-cycle: damped Jacobi before and after each coarse correction, Cholesky at the bottom."""

    def __init__(
        self, stencil: _Stencil, *, sweeps: int = _SMOOTHING_SWEEPS, weight: float = _SMOOTHING_WEIGHT
    ):
        self.sweeps = sweeps
        self.levels = [stencil]
        self.transfers: list[tuple[bool, ...]] = []
        while stencil.diagonal.numel() > _COARSEST_SIZE:
            stencil, coarsened = stencil.coarsen()
            self.levels.append(stencil)
            self.transfers.append(coarsened)
        self.smoothing = [weight * level.diagonal.reciprocal() for level in self.levels[:-1]]
        # Workspaces: solution and residual per level (the finest solution is the caller's output).
        self.solution = [None] + [torch.empty_like(level.diagonal) for level in self.levels[1:]]
        self.rhs = [None] + [torch.empty_like(level.diagonal) for level in self.levels[1:]]
        self.scratch = [torch.empty_like(level.diagonal) for level in self.levels[:-1]]
        self.cholesky = torch.linalg.cholesky(self.levels[-1].dense())

    def __call__(self, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self._cycle(0, r, out)

    def _cycle(self, level: int, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if level == len(self.levels) - 1:
            solution = torch.cholesky_solve(b.reshape(-1, 1).to(torch.float64), self.cholesky)
            return x.copy_(solution.reshape(x.shape))
        stencil, weight, scratch = self.levels[level], self.smoothing[level], self.scratch[level]
        torch.mul(weight, b, out=x)  # first sweep from x = 0
        for _ in range(self.sweeps - 1):
            self._smooth(stencil, weight, b, x, scratch)
        stencil.apply(x, scratch, rhs=b)  # residual
        coarsened = self.transfers[level]
        rhs, solution = self.rhs[level + 1], self.solution[level + 1]
        rhs.copy_(_aggregate(scratch, coarsened))
        self._cycle(level + 1, rhs, solution)
        _prolong_add(x, solution, coarsened)
        for _ in range(self.sweeps):
            self._smooth(stencil, weight, b, x, scratch)
        return x

    @staticmethod
    def _smooth(stencil, weight, b, x, scratch) -> None:
        x.addcmul_(weight, stencil.apply(x, scratch, rhs=b))


# ----------------------------------------------------------------------------------------------------------
# The iteration loop
# ----------------------------------------------------------------------------------------------------------


def _dot(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> float:
    """Inner product: float32 products summed pairwise along rows of ``a.shape[0]`` rows, rows in float64.

    A plain ``torch.sum(a * b, dtype=torch.float64)`` casts every element and is 5× slower on the CPU; the
    pairwise float32 row sums keep the relative error near 1e-7, ample for the conjugate-gradient scalars.
    """
    torch.mul(a, b, out=scratch)
    return float(scratch.view(scratch.shape[0], -1).sum(dim=1).sum(dtype=torch.float64))


def _conjugate_gradients(
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    residual: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    precondition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    x: torch.Tensor,
    *,
    monitor: Callable[[torch.Tensor, float], str],
    max_iterations: int,
) -> tuple[int, bool]:
    """Preconditioned conjugate gradients for ``A x = rhs``, updating ``x`` in place.

    Hooks: ``apply(v, out)`` writes ``A v``; ``residual(x, rhs, out)`` writes ``rhs − A x`` accurately;
    ``precondition(r, out)`` writes ``M⁻¹ r``; ``monitor(x, ‖r‖)`` answers ``"converged"``, ``"refresh"``
    (the residual passes, something else does not), ``"running"`` or ``"stalled"``.

    The residual updated by the recurrence drifts from ``rhs − A x`` in float32. When it passes, it is
    recomputed from ``x`` and the search restarts from it (iterative refinement), so drift never passes
    for convergence; after a restart the next refresh waits until the updated residual has fallen a
    hundredfold. Returns the iterations done and whether the monitor accepted the result.
    """
    r, z, p, q, scratch = (torch.empty_like(x) for _ in range(5))
    residual(x, rhs, r)
    true_residual, restart, rz, refresh_below = True, True, 0.0, math.inf
    iterations = 0
    while True:
        norm = math.sqrt(_dot(r, r, scratch))
        status = monitor(x, norm)
        if true_residual:
            refresh_below = 0.01 * norm
        elif status == "converged" or (status == "refresh" and norm <= refresh_below):
            residual(x, rhs, r)
            true_residual, restart = True, True
            continue
        if status == "converged":
            return iterations, True
        if status == "stalled" or iterations >= max_iterations:
            return iterations, False
        precondition(r, z)
        rz_new = _dot(r, z, scratch)
        if restart:
            p.copy_(z)
        else:
            torch.add(z, p, alpha=rz_new / rz, out=p)
        rz, restart = rz_new, False
        apply(p, q)
        curvature = _dot(p, q, scratch)
        if not (math.isfinite(curvature) and curvature > 0 and rz > 0):
            return iterations, False  # breakdown: nothing left to gain in float32, or a non-positive operator
        alpha = rz / curvature
        x.add_(p, alpha=alpha)
        r.add_(q, alpha=-alpha)
        true_residual = False
        iterations += 1


class _Monitor:
    """The ``monitor`` hook: relative residual and inlet/outlet heat-flow balance, both against ``tol``."""

    def __init__(self, stencil: _Stencil, rhs: torch.Tensor, tol: float):
        self.stencil, self.tol = stencil, tol
        self.rhs_norm = float(torch.linalg.vector_norm(rhs, dtype=torch.float64))
        self.n = stencil.shape[0]
        self.inlet = stencil.inlet.to(torch.float64)
        self.outlet = stencil.outlet.to(torch.float64)
        self.residual = math.inf
        self.flux_imbalance = math.inf
        self.q_in = self.q_out = 0.0
        self.checks, self.best_at = 0, 0
        self.best_residual = self.best_flux_imbalance = math.inf

    def heat_flows(self, u: torch.Tensor) -> tuple[float, float]:
        """Q through the inlet and the outlet face: ``Σ g (1 − T_0)`` and ``Σ g T_{N−1}``, T = T_lin + u."""
        edge = 0.5 / self.n  # 1 − T_lin at the first cell and T_lin at the last
        q_in = torch.sum(self.inlet * (edge - u.narrow(0, 0, 1).to(torch.float64)))
        q_out = torch.sum(self.outlet * (edge + u.narrow(0, self.n - 1, 1).to(torch.float64)))
        return float(q_in), float(q_out)

    def k_eff(self, u: torch.Tensor) -> float:
        """``Q N / A`` with Q taken from the dissipation (see ``_Stencil.dissipation``), ΔT = 1."""
        cross_section = self.stencil.diagonal.numel() // self.n
        return self.stencil.dissipation(u) * self.n / cross_section

    def __call__(self, u: torch.Tensor, residual_norm: float) -> str:
        self.residual = residual_norm / self.rhs_norm if self.rhs_norm > 0 else 0.0
        self.q_in, self.q_out = self.heat_flows(u)
        mean = 0.5 * (self.q_in + self.q_out)
        self.flux_imbalance = abs(self.q_in - self.q_out) / mean if mean > 0 else math.inf
        error = max(self.residual, self.flux_imbalance)
        if error <= self.tol:
            return "converged"
        self.checks += 1
        # Progress is judged on each measure alone: while the heat has not yet crossed a tortuous, high-contrast
        # structure the flux imbalance swings (to infinity when no heat leaves yet) as the residual falls, and
        # their maximum then makes no progress for many checks although the solve is on its way.
        if self.residual < 0.99 * self.best_residual:
            self.best_residual, self.best_at = self.residual, self.checks
        if self.flux_imbalance < 0.99 * self.best_flux_imbalance:
            self.best_flux_imbalance, self.best_at = self.flux_imbalance, self.checks
        # Stalled: neither measure gained 1 % for as long as it took to reach the last gain (at least _PATIENCE
        # checks), which leaves room for the plateaus of Jacobi-PCG and stops at the float32 floor in at most
        # twice the work.
        if self.checks - self.best_at >= max(_PATIENCE, self.best_at):
            return "stalled"
        return "refresh" if self.residual <= self.tol else "running"


# ----------------------------------------------------------------------------------------------------------
# Argument checks and the public functions
# ----------------------------------------------------------------------------------------------------------


def _is_real_number(value: object) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )


def _check_conductivities(conductivities: object) -> tuple[float, ...]:
    if isinstance(conductivities, (str, bytes)) or not isinstance(
        conductivities, (Sequence, np.ndarray, torch.Tensor)
    ):
        raise ParameterTypeError(
            "conductivities must be a sequence of positive numbers, one per phase label 0, 1, ...; "
            f"received {conductivities!r}"
        )
    values = [
        v.item() if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 0 else v for v in conductivities
    ]
    for value in values:
        if not _is_real_number(value):
            raise ParameterTypeError(
                f"conductivities must hold real numbers, one per phase label; received {values!r} "
                f"(element {value!r} of type {type(value).__name__})"
            )
    values = [float(v) for v in values]
    if not values:
        raise ValueError(
            "conductivities must hold one positive value per phase label; received an empty sequence"
        )
    bad = [v for v in values if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(
            f"conductivities must all be positive and finite, one per phase label 0, 1, ...; received {values} "
            f"(e.g. {bad[0]!r}); give an insulating phase a small positive value"
        )
    return tuple(values)


def _phase_labels(volume: object, n_phases: int) -> torch.Tensor:
    """The validated label image as a tensor on its own device, labels 0 … n_phases − 1."""
    tensor = check_label_image(volume, "volume")
    if tensor.dtype == torch.bool:
        tensor = tensor.to(torch.uint8)
    low, high = int(tensor.min()), int(tensor.max())
    if low < 0 or high >= n_phases:
        raise ValueError(
            f"conductivities has {n_phases} value(s), for phase labels 0 … {n_phases - 1}, but volume holds "
            f"labels {low} … {high}; give one conductivity per phase label"
        )
    return tensor


def _check_options(sides, tol, max_iterations, preconditioner) -> None:
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}; received {sides!r}")
    if not _is_real_number(tol):
        raise ParameterTypeError(f"tol must be a number such as 1e-4; received {tol!r}")
    if not 0 < float(tol) < 1:
        raise ValueError(f"tol must be in (0, 1), e.g. 1e-4; received {tol!r}")
    if not _is_real_number(max_iterations) or int(max_iterations) != max_iterations:
        raise ParameterTypeError(f"max_iterations must be an integer; received {max_iterations!r}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be at least 1; received {max_iterations}")
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}; received {preconditioner!r}")


def _check_axis(axis: object, shape: tuple[int, ...]) -> int:
    ndim = len(shape)
    if not _is_real_number(axis) or int(axis) != axis:
        raise ParameterTypeError(f"axis must be an integer; received {axis!r}")
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"axis must be in {-ndim} … {ndim - 1} for a {ndim}D volume; received {axis}")
    axis = int(axis) % ndim
    if shape[axis] < 2:
        raise ValueError(
            f"volume must be at least 2 voxels thick along the flow axis; received shape {shape} with "
            f"axis={axis}"
        )
    return axis


def _solve_axis(
    phases: torch.Tensor,
    conductivities: tuple[float, ...],
    axis: int,
    *,
    sides: str,
    tol: float,
    max_iterations: int,
    preconditioner: str,
    return_field: bool,
) -> tuple[ConductivityResult, torch.Tensor | None]:
    """Solve along ``axis`` of a validated phase-index tensor, on its device."""
    order = [axis] + [d for d in range(phases.ndim) if d != axis]  # the flow axis first
    stencil = _Stencil.from_phases(phases.permute(order).contiguous(), conductivities, sides == "periodic")
    rhs = stencil.linear_profile_rhs()
    precondition = _Jacobi(stencil) if preconditioner == "jacobi" else _Multigrid(stencil)
    monitor = _Monitor(stencil, rhs, tol)
    u = torch.zeros_like(rhs)  # the linear profile as the initial guess
    iterations, converged = _conjugate_gradients(
        stencil.apply, stencil.residual, precondition, rhs, u, monitor=monitor, max_iterations=max_iterations
    )
    k_eff = monitor.k_eff(u)
    if not converged:
        reason = (
            f"in {iterations} iteration(s) (max_iterations={max_iterations})"
            if iterations >= max_iterations
            else f"after {iterations} iteration(s): no further progress (float32 storage limits tol to about 1e-6)"
        )
        warnings.warn(
            f"conductivity along axis {axis} did not converge to tol={tol:g} {reason}; relative residual "
            f"{monitor.residual:.2e}, flux imbalance {monitor.flux_imbalance:.2e}; k_eff={k_eff:.6g} is "
            "returned with converged=False",
            ConvergenceWarning,
            stacklevel=4,  # the caller of effective_conductivity or conductivity_per_axis
        )
    temperature = None
    if return_field:
        n = stencil.shape[0]
        profile = 1.0 - (torch.arange(n, dtype=torch.float64, device=u.device) + 0.5) / n
        u.add_(profile.to(u.dtype).reshape((n,) + (1,) * (u.ndim - 1)))
        temperature = u.permute([order.index(d) for d in range(u.ndim)]).contiguous()
    result = ConductivityResult(
        axis=axis,
        k_eff=float(k_eff),
        iterations=int(iterations),
        residual=float(monitor.residual),
        flux_imbalance=float(monitor.flux_imbalance),
        converged=bool(converged),
        sides=sides,
    )
    return result, temperature


def _solve(volume, axes, conductivities, sides, tol, max_iterations, preconditioner, return_field, device):
    conductivities = _check_conductivities(conductivities)
    _check_options(sides, tol, max_iterations, preconditioner)
    labels = _phase_labels(volume, len(conductivities))
    axes = [_check_axis(axis, tuple(labels.shape)) for axis in axes]
    target = labels.device if device is None else resolve_device(device)
    # The smallest integer type that holds the labels: 1 byte per voxel for up to 256 phases.
    phases = labels.to(device=target, dtype=torch.uint8 if len(conductivities) <= 256 else torch.int64)
    results = []
    for axis in axes:
        result, field = _solve_axis(
            phases,
            conductivities,
            axis,
            sides=sides,
            tol=float(tol),
            max_iterations=int(max_iterations),
            preconditioner=preconditioner,
            return_field=return_field,
        )
        if field is not None:  # on the input's framework and device
            field = field.cpu().numpy() if isinstance(volume, np.ndarray) else field.to(volume.device)
            result = dataclasses.replace(result, temperature=field)
        results.append(result)
    return results


def effective_conductivity(
    volume: np.ndarray | torch.Tensor,
    *,
    conductivities: Sequence[float] = DEFAULT_CONDUCTIVITIES,
    axis: int = 0,
    sides: str = "periodic",
    tol: float = 1e-4,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    preconditioner: str = "auto",
    return_field: bool = False,
    device: str | torch.device | None = None,
) -> ConductivityResult:
    """Effective conductivity of a labelled microstructure along one axis (steady ∇·(k∇T) = 0).

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Z, Y, X) or (Y, X)
        Phase labels 0, 1, …, n − 1 (bool, integer, or float holding integers).
    conductivities : sequence of float, optional
        Conductivity of each phase label, all positive; default ``(1.4, 0.026)`` W/(m·K), solid 0 and pore 1,
        as in the paper. ``k_eff`` comes out in the same units (the voxel size cancels).
    axis : int, optional
        Direction of the heat flow. T = 1 is held on the face before index 0 and T = 0 on the face after
        index N − 1, half a voxel outside the first and last voxel centres; the length in ``k_eff`` is N.
    sides : {"periodic", "insulated"}, optional
        The faces parallel to the flow: periodic (the paper) or without heat flow across them (TauFactor).
    tol : float, optional
        Required relative residual ``‖b − A T‖ / ‖b − A T_lin‖`` and inlet/outlet heat-flow imbalance.
        float32 storage limits it to about 1e-6.
    max_iterations : int, optional
        Conjugate-gradient iterations before giving up (``converged=False`` and a ``ConvergenceWarning``).
    preconditioner : {"auto", "multigrid", "jacobi"}, optional
        ``"auto"`` is the multigrid V-cycle: 13 iterations at 64³-256³ where Jacobi needs 220-550, and 5-8×
        faster overall.
    return_field : bool, optional
        Also return the temperature at the voxel centres (``result.temperature``).
    device : str or torch.device, optional
        Where to compute: default the tensor's device (the CPU for numpy); ``"auto"``, ``"cpu"`` or
        ``"cuda"`` (an error without a GPU, never a silent fallback).

    Returns
    -------
    ConductivityResult

    Raises
    ------
    TypeError
        ``volume`` is not a numpy array or tensor, or an option has the wrong type.
    ValueError
        A label without a conductivity, a non-positive conductivity, a volume thinner than 2 voxels along
        ``axis``, an unknown ``sides`` or ``preconditioner``, ``tol`` outside (0, 1), or an unavailable device.

    Warns
    -----
    ConvergenceWarning
        The solve stopped before reaching ``tol``; the result has ``converged=False``.

    Notes
    -----
    Memory: about 13 float32 arrays of the volume's size (52 bytes per voxel; 0.9 GB at 256³), plus a
    seventh of that for the coarse grids and, while the stencil is built, an int64 copy of the labels.

    Examples
    --------
    >>> import numpy as np
    >>> layers = np.zeros((8, 8, 8), dtype=np.uint8)
    >>> layers[:, :, ::2] = 1  # pore layers along the flow: the arithmetic mean
    >>> round(effective_conductivity(layers).k_eff, 6)
    0.713
    """
    (result,) = _solve(
        volume, [axis], conductivities, sides, tol, max_iterations, preconditioner, return_field, device
    )
    return result


def conductivity_per_axis(
    volume: np.ndarray | torch.Tensor,
    *,
    axes: Sequence[int] | None = None,
    conductivities: Sequence[float] = DEFAULT_CONDUCTIVITIES,
    sides: str = "periodic",
    tol: float = 1e-4,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    preconditioner: str = "auto",
    return_field: bool = False,
    device: str | torch.device | None = None,
) -> list[ConductivityResult]:
    """Effective conductivity along several axes: default every axis, (0, 1, 2) in 3D and (0, 1) in 2D.

    The other arguments are those of :func:`effective_conductivity`; the volume is checked and moved to the
    device once.
    """
    if axes is None:
        axes = range(np.ndim(volume) if isinstance(volume, np.ndarray) else getattr(volume, "ndim", 0))
    elif isinstance(axes, (int, np.integer)) or not isinstance(axes, (Sequence, range)):
        raise ParameterTypeError(f"axes must be a sequence of integers such as (0, 1, 2); received {axes!r}")
    return _solve(
        volume, list(axes), conductivities, sides, tol, max_iterations, preconditioner, return_field, device
    )
