"""The lattice-Boltzmann run of :func:`physics.permeability.permeability`: the TRT lattice on the flowing
nodes (numba on the CPU, torch on a GPU), the time loop, and the extrapolated limit of k with its error."""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from ._lbm_mirror import MirrorNodes, mirror_nodes
from .lattice import D3Q19

__all__ = [
    "MAGIC_LAMBDA",
    "PermeabilityDivergenceError",
    "Run",
    "build_lattice",
    "extrapolate",
    "triton_usable",
]

MAGIC_LAMBDA = 3.0 / 16.0
"""Λ = (τ⁺ − ½)(τ⁻ − ½) for which bounce-back walls sit half-way and k does not depend on ν."""
_ERROR_SAFETY = 3.0  # the Aitken error estimate was up to 2x low on the 128³ sandstone (see extrapolate)
_MIXED_TOL = 0.1  # the mixed phase ends when k changes by less than 0.1 tol per block ...
_MIXED_CALM = 3  # ... this many blocks in a row
_MIX_AFTER_CHECKS = (
    30  # a run not converged after this many checks is mixed (most well-connected samples are not)
)
_EARLY_MIX_CHECKS = 10  # ... or after this many, when its pressure diffusion along the box is slower
_EARLY_MIX_TIME = 10  # ... than this many checks (Run._slow)
_THIN_DIAMETER = 2.0  # voxels: a run whose equivalent tube diameter is below this moves to thin_tau
_PLAIN_CHECKS = 6  # checks kept for the plain run after the mixed phase (its extrapolation needs 4 or more)
_MIXED_PLAIN_EVERY = 0.5  # check interval after the mixed phase, in check_every (Run._check_interval)
_MIXED_BLOCK = 1.0  # steps between two mixings, in check_every (0.5 took the central 256³ Berea crop from
# 2,652 steps to 2,552 with twice the mixings, and was no faster: benchmarks.permeability_schedule)
_MAX_SPEED2 = 0.1  # |u|² above this (|u| > 0.32, Mach 0.55) is a blow-up


class PermeabilityDivergenceError(FloatingPointError):
    """The lattice-Boltzmann run produced NaN or blew up (speeds near the lattice speed of sound)."""


# ----------------------------------------------------------------------------------------------------------
# convergence: the limit of k from its approach, and the error of that limit


def extrapolate(history: Sequence[float]) -> tuple[float, float]:
    """Limit of the sequence of k at equally spaced checks, and an estimate of its absolute error.

    With ``i`` the last check and ``s = max(1, i // 4)``, the four values k at checks ``i − 3s, i − 2s,
    i − s, i`` give three differences d1, d2, d3 and two ratios ``r_a = d2/d1``, ``r_b = d3/d2``. Late in
    a run k approaches its limit as ``k_∞ + A r^n`` (the slowest decaying mode of the flow), so while
    ``0 < r_a, r_b < 1`` the limit is Aitken's ``k_∞ = k_i + d3 r_b / (1 − r_b)``. Its error is taken as
    the change of that tail when the ratio is moved by ``|r_b − r_a|`` towards 1 (faster modes still
    present make the earlier ratio differ; a ratio that drifts towards 1 is a slower mode appearing), and
    at least the change of the limit since the previous check. When consecutive differences change sign
    (round-off noise at steady state, or an oscillation), the limit is the last value and the error the
    total change ``|d1| + |d2| + |d3|`` over the last three quarters of the run. Fewer than four checks,
    or a ratio at or above 1, give an infinite error. Spans that grow with the run keep the ratios away
    from 1 whatever the check interval. The error is multiplied by ``_ERROR_SAFETY`` = 3: on the τ = 1
    run of the 128³ sandstone the raw estimate was below the actual error of the limit by up to 2 times
    (a slowly drifting ratio: several slow modes close together).
    """
    limit, error = _aitken(history)
    if len(history) > 4 and math.isfinite(error):
        previous, _ = _aitken(history[:-1])
        error = max(error, abs(limit - previous))
    return limit, _ERROR_SAFETY * error


def _aitken(history: Sequence[float]) -> tuple[float, float]:
    """One Aitken extrapolation of the last three quarters of ``history`` (see :func:`extrapolate`)."""
    last = len(history) - 1
    if last < 3:
        return history[-1], math.inf
    span = max(1, last // 4)
    p0, p1, p2, p3 = (history[last - j * span] for j in (3, 2, 1, 0))
    d1, d2, d3 = p1 - p0, p2 - p1, p3 - p2
    if d1 == 0.0 or d2 == 0.0 or d2 / d1 <= 0.0 or d3 / d2 <= 0.0:
        return p3, abs(d1) + abs(d2) + abs(d3)
    ratio_a, ratio_b = d2 / d1, d3 / d2
    ratio_up = ratio_b + abs(ratio_b - ratio_a)
    if ratio_up >= 1.0:
        return p3, math.inf
    tail = d3 * ratio_b / (1.0 - ratio_b)
    return p3 + tail, abs(d3 * ratio_up / (1.0 - ratio_up) - tail)


# ----------------------------------------------------------------------------------------------------------
# backends: one step, one observation of momentum and speed, the velocity field


class _NumbaLattice:
    """Populations and table as numpy arrays, advanced by the fused numba kernel (CPU)."""

    def __init__(
        self,
        table: np.ndarray,
        nodes: int,
        omega_plus: float,
        omega_minus: float,
        force: np.ndarray,
        axis: int,
        mirror: MirrorNodes | None = None,
    ):
        from . import _lbm_kernels as kernels

        self._kernels = kernels
        # unsigned view of the same table: the kernel then skips numba's negative-index checks
        self.table = table.view(np.uint32 if table.dtype == np.int32 else np.uint64)
        self._all = np.zeros((19, nodes), dtype=np.float32)  # f - w: at rest, unit density
        self.active = nodes if mirror is None else mirror.active
        self.f = self._all[:, : self.active]  # the nodes of the result; ghosts of a mirror box follow them
        self.state = self._all  # the whole state, contiguous (what the mixing combines)
        self.omega = (float(omega_plus), float(omega_minus))
        self.force = force.astype(np.float32)
        self.axis = axis
        none = np.zeros(0, dtype=np.int64)
        self._ghosts = (
            (none,) * 4
            if mirror is None
            else (mirror.fill_source, mirror.fill_target, mirror.fold_source, mirror.fold_target)
        )

    def step_pair(self) -> None:
        self._kernels.trt_pair_numba(
            self._all, self.table, *self.omega, self.force, self.active, *self._ghosts
        )

    def step_pairs(self, count: int) -> None:
        for _ in range(count):
            self.step_pair()

    def observe(self) -> tuple[float, float, float]:
        """Momentum along the axis summed over nodes, largest and summed squared speed (see the kernel)."""
        momentum, speed2_max, speed2_sum = self._kernels.observe_numba(self.f, self.force, self.axis)
        return float(momentum), float(speed2_max), float(speed2_sum)

    def velocity(self) -> np.ndarray:
        out = np.empty((3, self.active), dtype=np.float64)
        self._kernels.moments_numba(self.f, self.force, out)
        return out.astype(np.float32)

    def retune(self, omega_plus: float, omega_minus: float) -> None:
        """Go on with new relaxation rates."""
        self.omega = (float(omega_plus), float(omega_minus))

    def synchronize(self) -> None:
        pass


def triton_usable(device: torch.device) -> bool:
    """Whether the Triton kernels (:mod:`physics._lbm_triton`) run the torch backend's steps on ``device``:
    a CUDA device and an installed Triton (it comes with the CUDA builds of torch)."""
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


class _TorchLattice:
    """Populations and table as torch tensors on ``device``, advanced by the Triton kernels on a CUDA device
    (replayed as CUDA graphs of many steps), else by torch gathers and scatters."""

    def __init__(
        self,
        table: np.ndarray,
        omega_plus: float,
        omega_minus: float,
        force: np.ndarray,
        axis: int,
        device: torch.device,
    ):
        from . import _lbm_kernels as kernels

        self._kernels = kernels
        self.table = torch.from_numpy(table).to(device)
        self.f = torch.zeros((19, table.shape[1]), dtype=torch.float32, device=device)
        self.state = self.f
        self.c = torch.from_numpy(D3Q19.c.astype(np.float32)).to(device)
        self.w = torch.from_numpy(D3Q19.w.astype(np.float32)).to(device)
        self.opposite = torch.from_numpy(D3Q19.opposite.copy()).to(device)
        self.omega = (float(omega_plus), float(omega_minus))
        self.force = torch.from_numpy(force.astype(np.float32)).to(device)
        self.axis = axis
        self.triton = triton_usable(self.f.device)
        self._force_tuple = tuple(float(v) for v in force)
        # pairs per replay -> captured CUDA graph, or None where it could not be captured
        self._graphs: dict[int, object] = {}

    def step_pair(self) -> None:
        if self.triton:
            from ._lbm_triton import trt_pair_triton

            trt_pair_triton(self.f, self.table, *self.omega, self._force_tuple)
        else:
            self._kernels.trt_pair_torch(
                self.f, self.table, self.c, self.w, self.opposite, *self.omega, self.force
            )

    def step_pairs(self, count: int) -> None:
        """``count`` pairs of steps; with the Triton kernels, as one replay of a CUDA graph captured at the
        first call of that count (two launches per pair cost more than the steps of a small sample)."""
        if not self.triton or count < 8:
            for _ in range(count):
                self.step_pair()
            return
        graph = self._graphs.get(count, False)
        if graph is False:
            graph = self._capture(count)
            self._graphs[count] = graph
        if graph is None:
            for _ in range(count):
                self.step_pair()
        else:
            graph.replay()

    def _capture(self, count: int):
        """A CUDA graph of ``count`` pairs of steps on ``f`` in place, or None where capture fails. Capture
        records without running, so ``f`` is untouched; the kernels are compiled by an earlier step_pair."""
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.device(self.f.device), torch.cuda.graph(graph):
                for _ in range(count):
                    self.step_pair()
            return graph
        except RuntimeError:
            return None

    def observe(self) -> tuple[float, float, float]:
        rho, momentum = self._kernels.moments_torch(self.f, self.c, self.force)
        speed2 = (momentum / rho).square().sum(0)
        return float(momentum[self.axis].sum()), float(speed2.max()), float(speed2.sum())

    def velocity(self) -> np.ndarray:
        rho, momentum = self._kernels.moments_torch(self.f, self.c, self.force)
        return (momentum / rho).float().cpu().numpy()

    def retune(self, omega_plus: float, omega_minus: float) -> None:
        """Go on with new relaxation rates."""
        self.omega = (float(omega_plus), float(omega_minus))
        self._graphs.clear()  # captured graphs hold the former rates

    def synchronize(self) -> None:
        if self.f.device.type == "cuda":
            torch.cuda.synchronize(self.f.device)


def build_lattice(
    flowing: np.ndarray, *, axis: int, tau: float, force: float, backend: str, device, mirror: bool = False
):
    """The TRT lattice (Λ = 3/16) on the ``flowing`` nodes, at rest, driven by ``force`` along ``axis``.

    With ``mirror`` (numba only), ``flowing`` is the sample's half of a mirror box, simulated with ghost
    layers in place of the mirror half (:mod:`physics._lbm_mirror`)."""
    from ._lbm_kernels import BLOCK, build_table, table_shape

    nodes = None
    if mirror:
        nodes = mirror_nodes(flowing, axis)
        node_of, n = nodes.node_of, nodes.total
    else:
        n = int(np.count_nonzero(flowing))
        node_dtype = np.int32 if n < 2**31 else np.int64
        node_of = np.full(flowing.shape, -1, dtype=node_dtype)
        node_of[flowing] = np.arange(n, dtype=node_dtype)
    # numba: blocks of the kernel's BLOCK nodes; torch and Triton: one block of all nodes, (18, n)
    width = BLOCK if backend == "numba" else max(n, 1)
    table = np.empty(table_shape(n, width), dtype=np.int32 if 19 * n < 2**31 else np.int64)
    build_table(node_of, D3Q19.c, D3Q19.opposite, n, table)
    if backend != "numba":
        table = table.reshape(18, n)
    del node_of
    omega_plus, omega_minus = trt_rates(tau)
    force_vector = np.zeros(3)
    force_vector[axis] = force
    if backend == "numba":
        return _NumbaLattice(table, n, omega_plus, omega_minus, force_vector, axis, nodes)
    if mirror:
        raise ValueError("the mirror box with ghost layers runs on the numba backend only")
    return _TorchLattice(table, omega_plus, omega_minus, force_vector, axis, device)


def trt_rates(tau: float) -> tuple[float, float]:
    """ω⁺ = 1/τ⁺ and ω⁻ = 1/τ⁻ with Λ = (τ⁺ − ½)(τ⁻ − ½) = 3/16."""
    return 1.0 / tau, 1.0 / (0.5 + MAGIC_LAMBDA / (tau - 0.5))


def _even_steps(steps: float) -> int:
    """``steps`` rounded up to an even number, at least 2: steps go in pairs."""
    return max(2, 2 * math.ceil(steps / 2))


class Run:
    """The time loop: steps in pairs, observes k every ``check_every`` steps, and stops when it converged."""

    def __init__(
        self,
        lattice,
        *,
        scale: float,
        tol: float,
        convergence: str,
        force: float,
        tau: float,
        size: int,
        anderson: int = 0,
        thin_tau: float | None = None,
        length: int = 0,
    ):
        self.lattice, self.scale, self.tol, self.convergence = lattice, scale, tol, convergence
        self.length = length  # box length along the flow (0: unknown, no early mixing)
        self.anderson = anderson  # depth of the Anderson-mixed phase before the plain run (0: none)
        self.thin_tau = thin_tau  # τ⁺ a run through thin throats moves to (None: keeps its τ⁺)
        self.mixed, self.k_mixed = False, None  # whether the run was mixed; k at the end of the mixing
        self.force, self.tau, self.size = force, tau, size
        self.porosity = lattice.f.shape[1] / size  # flowing fraction φ of the box
        self.steps = 0
        self.history: list[float] = []  # k at every check, for the extrapolation
        self.k_limit, self.error, self.change = 0.0, math.inf, math.inf
        self.converged = False
        self.speed2 = 0.0
        self.elapsed = 0.0

    def advance(self, check_every: int, max_steps: int, *, progress: str | None) -> None:
        lattice = self.lattice
        lattice.step_pair()  # compiles or loads the numba kernel; not timed
        self.steps = 2
        quiet_checks = 0
        bar = None
        if progress is not None:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_steps, desc=progress, unit="step", dynamic_ncols=True)
            bar.update(self.steps)
        start = time.perf_counter()
        try:
            while self.steps < max_steps:
                if self.anderson and not self.mixed and self._slow(check_every):
                    # not converged in the first checks: a slow approach, which the mixing shortens
                    self._to_thin_tau()
                    self._go_on(check_every, max_steps, bar)
                    quiet_checks = 0
                    continue
                pairs = min(self._check_interval(check_every), max_steps - self.steps) // 2
                lattice.step_pairs(pairs)
                self.steps += 2 * pairs
                relative_error = self._check()
                passed = self.change < self.tol if self.convergence == "change" else relative_error < self.tol
                quiet_checks = quiet_checks + 1 if passed else 0
                if bar is not None:
                    bar.update(2 * pairs)
                    bar.set_postfix_str(
                        f"k={self.history[-1]:.6g} change={self.change:.1e} error~{relative_error:.1e}",
                        refresh=False,
                    )
                if quiet_checks >= 2:
                    if self._to_thin_tau():  # converged, but at a τ where such throats shift k
                        self._go_on(check_every, max_steps, bar)
                        quiet_checks = 0
                        continue
                    self.converged = True
                    break
        finally:
            if bar is not None:
                bar.close()
        lattice.synchronize()
        self.elapsed = time.perf_counter() - start

    def _check_interval(self, check_every: int) -> int:
        """Steps between checks: ``check_every`` until the run is mixed (and always with
        ``convergence="change"``, whose tolerance is per check), then ``_MIXED_PLAIN_EVERY × check_every``
        rounded up to an even number.

        The plain run after a mixing only confirms a state the mixing left near its steady state; its
        extrapolation needs four checks and two passes, so halving the interval took 100–300 steps out of
        each mixed run (central 256³ Berea crop at depth 5: 3,302 steps to 3,102, k −0.028 % to −0.025 % from
        its τ = 1 reference; three barely percolating 64³ Berea reconstructions at τ = 1: k as far from their
        references as before, within 0.006 points; a quarter took more, 3,158 on the crop)."""
        if not self.mixed or self.convergence == "change":
            return check_every
        return _even_steps(check_every * _MIXED_PLAIN_EVERY)

    def _slow(self, check_every: int) -> bool:
        """Whether the plain run is slow enough to be mixed now: not converged after ``_MIX_AFTER_CHECKS``
        checks, or, at check ``_EARLY_MIX_CHECKS``, a flow through resolved pores whose pressure diffusion
        time along the box is longer than ``_EARLY_MIX_TIME`` checks (deciding at check 5 instead did not
        shorten the central 256³ Berea crop's run: 3,302 steps either way).

        Pressure differences along the box relax as Darcy flow, with diffusivity c_s² k / (φ ν); the
        slowest periodic mode of a box of length L decays over T = (L / 2π)² φ ν / (c_s² k) steps, and the
        plain run needs several T after its onset (measured: 7,102 steps, 3.4 T, on the central 256³ crop
        of the Berea scan in its mirror box, T ≈ 2,100; the 128³ built-ins and the 128³ Berea crop have
        T = 230–660 and converge in 5–23 checks, unchanged). Runs through thin throats keep the
        ordinary schedule, where they move to τ = 1 first.
        """
        checks = len(self.history)
        if checks >= _MIX_AFTER_CHECKS:
            return True
        if checks != _EARLY_MIX_CHECKS or not self.length or self._thin():
            return False
        k = self.history[-1]
        if k <= 0.0:
            return False
        nu = (self.tau - 0.5) / 3.0
        pressure_time = (self.length / (2.0 * math.pi)) ** 2 * self.porosity * nu / (D3Q19.cs2 * k)
        return pressure_time > _EARLY_MIX_TIME * check_every

    def _thin(self) -> bool:
        """Whether the flow passes throats one or two voxels wide: the bundle of straight tubes with the
        same k and porosity φ (of the box) has diameter ``D = √(32 k / φ)`` below ``_THIN_DIAMETER``."""
        return 32.0 * abs(self.history[-1]) / self.porosity < _THIN_DIAMETER**2

    def _go_on(self, check_every: int, max_steps: int, bar) -> None:
        """After a slow approach or a move of τ: the mixed phase (where the run mixes and was not mixed yet),
        then a plain run whose extrapolation starts afresh."""
        if self.anderson and not self.mixed:
            self._mixed_phase(check_every, max_steps, bar)
        self.history.clear()
        self.change = math.inf

    def _mixed_phase(self, check_every: int, max_steps: int, bar) -> None:
        """Blocks of ``check_every`` steps (× ``_MIXED_BLOCK``) with Anderson mixing of the populations
        (:mod:`._anderson`) after each, until k changes by less than ``_MIXED_TOL`` × ``tol`` between blocks
        ``_MIXED_CALM`` times in a row; the lattice then holds the last block's state, a plain state of the
        run, and the plain run that follows sets k and its error."""
        from ._anderson import Anderson

        lattice, mixing = self.lattice, Anderson(self.anderson)
        mixing.start(lattice.state)
        previous, calm = None, 0
        stop = max_steps - _PLAIN_CHECKS * check_every  # the plain run's checks after it fit in max_steps
        block = _even_steps(check_every * _MIXED_BLOCK)
        while self.steps + block <= stop:
            lattice.step_pairs(block // 2)
            self.steps += block
            k = self._observe()
            change = math.inf if previous is None else abs(k - previous) / max(abs(k), 1e-300)
            previous, calm = k, (calm + 1 if change < _MIXED_TOL * self.tol else 0)
            if bar is not None:
                bar.update(block)
                bar.set_postfix_str(f"k={k:.6g} change={change:.1e} (mixed)", refresh=False)
            if calm >= _MIXED_CALM:
                break
            mixing.mix(lattice.state)
        self.mixed, self.k_mixed = True, previous

    def _to_thin_tau(self) -> bool:
        """Move to ``thin_tau`` when the flow passes throats one or two voxels wide; whether it moved.

        The width is that of the bundle of straight tubes with the same k and porosity φ (of the box),
        ``D = √(32 k / φ)``; below ``_THIN_DIAMETER`` = 2 voxels k is set by throats one or two voxels wide,
        where it depends on τ. Measured, k at τ = 0.6 against τ = 1 (runs converged at each τ): −2.1 % to
        −3.4 % at D = 0.59–0.95 and −0.79 % to −0.93 % at D = 1.19–1.34 on 64³ Berea reconstructions;
        −0.74 %, −0.28 %, −0.19 % and −0.11 % at D = 1.24, 1.58, 1.52 and 1.97 on 24³ Gaussian blobs; within
        0.05 % at D = 2.8–5.2 (the 128³ built-ins and Berea crops), which keep their τ.
        """
        if self.thin_tau is None or self.tau == self.thin_tau or not self.history or not self._thin():
            return False
        self._retune(self.thin_tau)
        return True

    def _retune(self, tau: float) -> None:
        """Go on at relaxation time ``tau`` from the current populations (k = ν ⟨ρu⟩ / g jumps by
        ν_new / ν_old, and the mixed phase that follows takes the run to the steady state at ``tau``).

        The populations are kept as they are. Rescaling the momentum by ν_old / ν_new (the steady velocity
        of Stokes flow is ∝ 1/ν) starts nearer in k but not in state: on a barely percolating 64³ Berea
        reconstruction the mixing then stopped on a plateau 0.6 % below the τ = 1 steady state, against
        0.1 % from the kept populations and 0.06 % from rest (1,400 more steps)."""
        self.lattice.retune(*trt_rates(tau))
        self.scale *= (tau - 0.5) / (self.tau - 0.5)
        self.tau = tau

    def _observe(self) -> float:
        """k of the current state; raises when the run diverged."""
        momentum, self.speed2, speed2_sum = self.lattice.observe()
        if not (math.isfinite(momentum) and math.isfinite(speed2_sum)) or self.speed2 > _MAX_SPEED2:
            raise PermeabilityDivergenceError(
                f"lattice-Boltzmann run diverged at step {self.steps} (largest speed {math.sqrt(self.speed2):.3g}, "
                f"mean momentum {momentum / self.size:.3g}); lower force={self.force:g} or raise tau={self.tau:g}"
            )
        return momentum * self.scale

    def _check(self) -> float:
        """Observe k, update the change and the extrapolated limit; return the limit's relative error."""
        k = self._observe()
        if self.history:
            self.change = abs(k - self.history[-1]) / max(abs(k), 1e-300)
        self.history.append(k)
        self.k_limit, self.error = extrapolate(self.history)
        return self.error / max(abs(self.k_limit), 1e-300)
