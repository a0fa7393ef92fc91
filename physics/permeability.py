"""Absolute permeability of one phase by the lattice-Boltzmann method (D3Q19, TRT, Λ = 3/16).

Method
------
Stokes flow through the pore phase is driven by a uniform body force ``g`` along one axis; the solid is a
half-way bounce-back wall. The collision is two-relaxation-time (TRT) with the "magic" product
Λ = (τ⁺ − ½)(τ⁻ − ½) = 3/16, for which the wall sits exactly half-way between nodes for Poiseuille flow and
the permeability does not depend on the chosen viscosity ν = (τ − ½)/3 (Ginzburg et al. 2008). Forcing is
Guo's, split into symmetric and antisymmetric parts, with the velocity ``u = (Σ f c + g/2)/ρ``.
At steady state, Darcy's law gives

    k = ν ⟨ρu⟩ / g        (lattice units, voxel²)

with ⟨ρu⟩ the momentum along the axis averaged over the whole box, solid included (the Darcy velocity).

Boundaries along the flow
-------------------------
The simulated box is always periodic in every direction. ``boundary`` says how the sample is put in it:

- ``"periodic"`` (default): as given. Right for samples that are periodic along the flow (generated on a
  torus, or a unit cell such as a sphere array). On a non-periodic sample the two faces are glued
  together and pores that do not meet across the seam are blocked there, which lowers k.
- ``"mirror"``: the sample followed by its mirror image along the flow axis. Every pore on a face meets
  itself at the seam, so nothing is blocked and no free fluid is added; use it for cut samples (CT
  sub-volumes, reconstructions) whose faces do not match. It adds the mirror-plane geometry, which
  slightly lowers k for oblique channels. On the CPU only the sample is simulated, with one layer of ghost
  nodes at each face that stands for the mirror half by the flow's symmetry (:mod:`physics._lbm_mirror`):
  the same populations as the whole mirror box (k within 2.4e-6 measured) at the cost of the sample alone.
  The torch backend (GPU) simulates the whole mirror box.
- ``"buffer"``: ``buffer_layers`` layers of free fluid before and after the sample, like the reservoirs
  of an experiment. Cheap, and every pore touching a face is open, but the flow has to enter and leave
  the pores at the faces: these entrance and exit losses lower k by a fraction of order pore size / sample
  length (−4 % for plates 5 apart over 40 voxels, −14 % over 8). The buffers are taken as free of
  resistance: k = ν⟨ρu⟩/g · L_sample / L_box. Use it for long samples, or to mimic an experiment.

The directions across the flow are periodic in every mode.

Connectivity
------------
Before simulating, the pore clusters are labelled with the lattice's own connectivity (18 neighbours: the
D3Q19 links) on the periodic box, and clusters are kept only if they wind around the box along the flow
axis. Other clusters carry no mean flow at steady state (the uniform force is the gradient of a
single-valued potential on them) and are dropped. If none is left, k = 0 is returned with the reason and
no step is run: a relative-change test could never pass as k → 0.

Convergence (the fast path, the default)
----------------------------------------
A body-force run starts from rest and needs a time of order L²/ν to reach steady state. Two choices cut
the steps to a converged k without touching the steady solution:

- **Extrapolated limit** (``convergence="extrapolate"``). Late in a run k approaches its limit
  geometrically, ``k_n ≈ k_∞ + A rⁿ`` per check (the slowest decaying mode). Every check takes four
  values of k spread over the last three quarters of the run, extrapolates the limit by Aitken's Δ²
  (:func:`physics._lbm_run.extrapolate`) and estimates its error from how much the two ratios of successive changes
  disagree. The run stops when that estimated relative error is below ``tol`` (1e-3) at two successive
  checks, and returns the limit with the estimate as ``error_estimate``. The other rule (relative change
  per check below ``tol``, ``convergence="change"``) stops when the change per check was small, which
  leaves 1e-5 × (relaxation time / check interval) of error and takes 5–20 relaxation times of run.
- **Relaxation time from the geometry** (``tau="auto"``). With Λ = 3/16 held, k does not depend on τ,
  but the speed of the approach does, through two slow processes: viscous diffusion across a pore,
  time ~ d²/ν, and the diffusion of pressure along the sample, which in a porous medium goes as Darcy
  flow with diffusivity c_s² k/ν, time ~ L² ν / (c_s² k). A larger ν therefore helps only small boxes:
  measured on 64³ crops of the built-ins in their mirror box (L = 128), τ = 0.75 took half the steps of
  τ = 1 and τ = 1.3 1.6 times more; on 32³ crops τ = 0.8–1 was best and τ = 3–8 took 4–10 times more.
  ``"auto"`` takes ν = 0.25 d² / L (d the hydraulic diameter of the flowing pores, L the box length
  along the flow), clipped to τ ∈ [0.6, 1]. The velocity ∝ 1/ν at τ = 0.6 is 5 times that at τ = 1:
  with the default force 1e-6 it stays far below the speed 0.1 at which the run warns of inertia and
  compressibility (no case measured warned). k then differs from the τ = 1 solution by the small
  τ-dependence the staircase walls leave (measured 2e-4 at most, between τ = 0.75 and 1 on a 64³ crop).
  Where the flow passes throats one or two voxels wide, that dependence is larger: on three barely
  percolating 64³ Berea reconstructions k rose by 0.6 %, 1.3 % and 6.6 % from τ = 0.6 to τ = 1 (runs
  converged at each τ), so k there carries a discretisation uncertainty of that size. An ``"auto"`` run
  therefore moves to τ = 1, the τ of the validated solver, when its flow passes such throats: when the
  tube diameter equivalent to its k, √(32 k / φ) (φ the flowing fraction of the box), is below two voxels
  (measured: 2.8–5.2 voxels on the 128³ built-ins and Berea crops, k within 0.05 % at every τ; 0.2–0.5 on
  the three reconstructions; at 1.2–1.3 voxels k is still 0.7–0.9 % lower at τ = 0.6 than at 1, at 2
  voxels 0.1 %). It moves at its 30th check, before the mixing below, or where it converged first,
  keeping its populations (k then jumps by ν(1)/ν(τ) and the run goes on to the τ = 1 steady state).
  ``PermeabilityResult.tau`` reports the τ of the result. Pass ``tau=1.0`` to run at τ = 1 throughout
  (benchmarks/results/permeability-convergence-h200.md).

- **Anderson mixing of a slow run** (``anderson=10``). A run not converged after 30 checks has a slow
  approach: pressure differences between pore bodies joined by throats one or two voxels wide, which decay
  over tens of thousands of steps. So has a long box through resolved pores, where pressure differences
  along the flow relax as Darcy flow, with diffusivity c_s² k / (φ ν): its slowest mode decays over
  T = (L / 2π)² φ ν / (c_s² k) steps, and such a run is mixed from its 10th check when T, from the k of that
  check, is longer than 10 checks (the central 256³ Berea crop in its mirror box, T ≈ 2,100: 7,102 plain
  steps, 4,302 mixed after 30 checks, 3,302 after 10; the 128³ built-ins and Berea crop, T = 230–660, are
  not affected). The run then mixes its populations every check, Anderson's way
  (:mod:`physics._anderson`), until k changes by less than tol/10 per check three times in a row, and goes
  on plain, checked every ``check_every / 2`` steps, so that k and its error come from the plain run's own
  extrapolation (the error is at least ``tol`` after a mixing: the short plain run's estimate was up to 5
  times too small on such samples). The mixing moves the state, not the steady state it converges to. It
  keeps 2·depth + 4 copies of the populations (76 bytes per pore node each: 1.3 GB for a 128³ sample at φ =
  0.35 at depth 10); the depth is lowered to fit half the free memory, and a depth below 2 runs plain. Depth
  10 instead of 5 took the central 256³ Berea crop from 3,102 to 2,652 steps and three barely percolating 64³
  Berea reconstructions from 6,302 / 9,252 / 7,002 to 4,952 / 8,902 / 6,402 at τ = 1, with k as close to their
  τ = 1 references or closer: +0.013 % and +0.073 / +0.069 / +0.018 %, against −0.025 % and +0.070 / +0.171 /
  +0.015 % (benchmarks/results/permeability-mixed-plain-cpu-epyc-2core.md). Measured at depth 5 on three
  barely percolating 64³ Berea reconstructions in their mirror box (``τ = "auto"``): 57,102 / 53,102 /
  32,302 plain steps became 8,802 / 8,202 / 6,802 at the τ auto picked, with k within 0.024 % of the plain
  runs (benchmarks/results/permeability-anderson-cpu-xeon-2core.md),
  and 12,302 / 8,202 / 9,602 steps when moving to τ = 1, with k within −0.33 % / +0.27 % / −0.10 % of τ = 1
  runs converged to a change below 1e-8 per 100 steps, where the τ auto picked left −5.5 % / −1.1 % / −0.51 %
  (benchmarks/results/permeability-early-mixing-cpu-xeon-2core.md). Where a mixed run stops moves with the
  round-off of the mixing (its k by up to 0.3 % on these samples, and to −0.51 % on reconstruction 6
  run on its sample half, benchmarks/results/permeability-mirror-half-cpu-xeon-2core.md), and the error
  reported after a mixing (at least ``tol``, and at least the change since the mixing ended) can be below
  the actual one: 0.1 % reported against 0.33 % on reconstruction 6. On the CPU a mixing is three fused
  parallel passes over its history, in place (0.5 s at depth 10 for the 3.3 million pore nodes of the central
  256³ Berea crop, which then takes 158–174 s in all on the 2-core EPYC;
  benchmarks/results/permeability-fused-mixing-cpu-epyc-2core.md,
  benchmarks/results/permeability-blocked-table-cpu-epyc-2core.md).

Measured on the 128³ built-ins in their mirror box (benchmarks/results/permeability-fast-cpu-xeon-2core.md):
steps to a converged k fell from 3,602 / 4,302 / 10,302 (labyrinth, cellular, sandstone; τ = 1, change
below 1e-5) to 502 / 502 / 1,302, and the wall time from 51 / 57 / 64 s to 7.8 / 7.0 / 9.0 s, set-up
included; k is within 4.8e-4 / 1.0e-5 / 1.6e-4 of a τ = 1 run to a change below 1e-8, inside the
reported estimates 8.6e-4 / 5.6e-4 / 6.9e-4. Of the two levers, the extrapolation alone (at τ = 1)
saves 1.7–3 times, and τ from the geometry (0.6–0.64 here) the rest.

- **Coarse-to-fine start** (``start="coarse"``, not the default). The run first solves the flow through
  the flowing voxels coarsened 2× (a coarse voxel is pore when 4 of its 8 are), where the slow pressure
  diffusion takes as many steps at an eighth of the cost, and starts from its pressure (× 2) and velocity
  (× 4) (:mod:`physics._lbm_coarse`); the steady state, and k, are unchanged. Measured in the mirror box
  (benchmarks/results/permeability-coarse-start-cpu-xeon-2core.md): the central 256³ Berea crop took
  2,502 steps after 2,402 coarse ones, 324 s in all, against 3,302 steps and 339 or 381 s from rest
  (two quiet runs; this machine's rate varies by 10 % between runs); the 128³ sandstone 902 steps
  against 1,302; labyrinth and cellular 502 either way; the Berea crop 2,202 against 2,302. Where thin
  throats set k it does not help: the 2× coarser geometry closes or widens them, and two of three barely
  percolating reconstructions took more steps (9,902 and 10,002 against 9,602 and 8,202; the third's coarse
  pores did not percolate). Too little, and not everywhere, to be the default.

Not used: pruning dead-end branches (they carry no net flux, but the flow at their mouths is not that at a
wall, so k changes: not exact), and a lower bound on τ below 0.6 for long boxes (the central 256³ crop at
the τ = 0.556 the rule asks for took 3,702 steps against 3,302 at 0.6, the viscous relaxation across its
pores slowing more than the pressure diffusion gained).

Speed and storage
-----------------
Only pore nodes on connected clusters are stored, 148 bytes each (one float32 population array with
in-place "AA" streaming, plus an 18-entry neighbour table with bounce-back encoded in it, stored in blocks of
the CPU kernel's nodes; see :mod:`physics._lbm_kernels`): 7 GB for a 512³ volume at porosity 0.35, 20–30 GB
if it were all pore. MLUPS counts fluid-node updates. On the CPU the step is one fused numba kernel
(``parallel=True``, float32, vectorised collision); the torch backend runs the same scheme on a GPU with Triton kernels (one launch per
step, replayed as CUDA graphs), or with torch gathers and scatters where Triton is missing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._anderson import fitting_depth
from ._lbm_box import simulation_box, spanning_pores
from ._lbm_coarse import coarse_state, set_equilibrium
from ._lbm_run import MAGIC_LAMBDA, PermeabilityDivergenceError
from ._lbm_run import Run as _Run
from ._lbm_run import build_lattice as _lattice
from ._validation import ParameterTypeError, as_indicator

__all__ = [
    "DARCY_M2",
    "MAGIC_LAMBDA",
    "PermeabilityDivergenceError",
    "PermeabilityResult",
    "PermeabilityWarning",
    "permeability",
    "permeability_per_axis",
]

DARCY_M2 = 9.869233e-13
"""One darcy in m²."""


BOUNDARIES = ("periodic", "mirror", "buffer")
BACKENDS = ("auto", "numba", "torch")
CONVERGENCE_TESTS = ("extrapolate", "change")
STARTS = ("rest", "coarse")
_AUTO_TAU_CONSTANT = 0.25  # ν = 0.25 d² / L balances viscous and pressure relaxation (measured)
_AUTO_TAU_RANGE = (0.6, 1.0)
_THIN_TAU = 1.0  # τ⁺ of an "auto" run through thin throats (k moves with τ there): the reference τ
_HIGH_MACH_SPEED = 0.1  # |u| above this (Mach 0.17) warns: compressibility and inertia errors


class PermeabilityWarning(RuntimeWarning):
    """The permeability run did not converge within ``max_steps``, or ran at a high Mach number."""


@dataclass(frozen=True)
class PermeabilityResult:
    """Permeability of one phase along one axis.

    Attributes
    ----------
    axis : int
        Flow axis (0, 1 or 2 of an array (Z, Y, X)).
    k : float
        Permeability in voxel² (lattice units). 0.0 when no pore cluster spans the axis.
    k_m2 : float or None
        Permeability in m², ``k * voxel_size**2``; None without ``voxel_size``.
    k_darcy : float or None
        Permeability in darcy (1 darcy = 9.869233e-13 m²); None without ``voxel_size``.
    steps : int
        Lattice-Boltzmann steps run (0 when k = 0 was decided from connectivity).
    mlups : float or None
        Speed in million fluid-node updates per second (only pore nodes on spanning clusters are stored
        and counted), excluding set-up and compilation; None when nothing was simulated.
    converged : bool
        Whether the relative change of k fell below ``tol`` on two successive checks. True for k = 0
        decided from connectivity.
    reason : str or None
        Why k is 0 or why the run did not converge; None for a converged run.
    boundary : str
        ``"periodic"``, ``"mirror"`` or ``"buffer"``.
    velocity : ndarray of float32 of shape (3, Z, Y, X) or None
        With ``return_velocity=True``: the velocity ``u = (Σ f c + g/2)/ρ`` in lattice units (voxels per
        step, for the force used), component ``i`` along axis ``i``, 0 in the solid and in pores not
        connected along the axis; on the input's grid (mirror half and buffers removed).
    fluid_nodes : int
        Pore nodes simulated (those on clusters connected along the axis, in the periodic box with its
        buffers, or its mirror half on the torch backend; the numba backend simulates a mirror box's sample
        only): the nodes MLUPS counts.
    error_estimate : float or None
        Estimated relative error of ``k`` against the steady state of the same lattice problem (see
        "Convergence" in the module docstring): 0.0 when k = 0 was decided from connectivity, None when
        the checks so far did not allow an estimate (too few, or not yet a geometric approach).
    tau : float or None
        Relaxation time τ⁺ of the steady state ``k`` belongs to: the given ``tau``, the one ``"auto"``
        picked, or 1.0 where an ``"auto"`` run passed throats one or two voxels wide and moved to τ = 1 (see
        "Convergence" in the module docstring); None when nothing was simulated.
    coarse_steps : int
        Steps of the run on the 2× coarsened box with ``start="coarse"``, each about an eighth of a step of
        ``steps``; 0 when the run started from rest.
    """

    axis: int
    k: float
    k_m2: float | None
    k_darcy: float | None
    steps: int
    mlups: float | None
    converged: bool
    reason: str | None
    boundary: str
    velocity: np.ndarray | None = None
    fluid_nodes: int = 0
    error_estimate: float | None = None
    tau: float | None = None
    coarse_steps: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers (the velocity field is left out)."""
        return {
            "axis": int(self.axis),
            "k": float(self.k),
            "k_m2": None if self.k_m2 is None else float(self.k_m2),
            "k_darcy": None if self.k_darcy is None else float(self.k_darcy),
            "steps": int(self.steps),
            "mlups": None if self.mlups is None else float(self.mlups),
            "converged": bool(self.converged),
            "reason": self.reason,
            "fluid_nodes": int(self.fluid_nodes),
            "error_estimate": None if self.error_estimate is None else float(self.error_estimate),
            "tau": None if self.tau is None else float(self.tau),
            "coarse_steps": int(self.coarse_steps),
        }


# ----------------------------------------------------------------------------------------------------------
# argument checks


def _check_real(name: str, value: object, *, low: float, inclusive: bool = False, hint: str = "") -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterTypeError(f"{name} must be a real number; received {value!r}")
    value = float(value)
    ok = value >= low if inclusive else value > low
    if not (math.isfinite(value) and ok):
        bound = f">= {low}" if inclusive else f"> {low}"
        raise ValueError(f"{name} must be a finite number {bound}{hint}; received {value!r}")
    return value


def _check_int(name: str, value: object, *, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(f"{name} must be an integer; received {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}; received {int(value)}")
    return int(value)


def _check_axis(axis: object) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ParameterTypeError(f"axis must be 0, 1 or 2; received {axis!r}")
    if int(axis) not in (0, 1, 2):
        raise ValueError(
            f"axis must be 0, 1 or 2 (flow along Z, Y or X of a (Z, Y, X) volume); received {axis}"
        )
    return int(axis)


def _resolve_device(volume: object, device: str | torch.device | None) -> torch.device:
    if device is None:
        return volume.device if isinstance(volume, torch.Tensor) else torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} was requested but no CUDA device is available (use 'cpu' or 'auto')"
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'auto' or None; received {str(device)!r}")
    return device


def _resolve_backend(backend: object, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; received {backend!r}")
    if backend == "auto":
        return "numba" if device.type == "cpu" else "torch"
    if backend == "numba" and device.type != "cpu":
        raise ValueError(
            f"backend='numba' runs on the CPU only; received device {str(device)!r} (use 'torch')"
        )
    return str(backend)


# ----------------------------------------------------------------------------------------------------------
# relaxation time


def _auto_tau(flowing: np.ndarray, axis: int) -> float:
    """τ⁺ that balances viscous and pressure relaxation: ν = 0.25 d² / L, clipped to τ ∈ [0.6, 1].

    ``d`` is the hydraulic diameter of the flowing pores, 4 × pore voxels / pore–solid faces (2N for
    plates N apart, 2R for a tube), ``L`` the box length along the flow. The constant 0.25 is measured
    (module docstring, "Convergence").
    """
    faces = sum(
        int(np.count_nonzero(flowing & ~np.roll(flowing, shift, axis=a)))
        for a in range(3)
        for shift in (1, -1)
    )
    if faces == 0:
        return 1.0
    diameter = 4.0 * np.count_nonzero(flowing) / faces
    nu = _AUTO_TAU_CONSTANT * diameter**2 / flowing.shape[axis]
    return float(np.clip(0.5 + 3.0 * nu, _AUTO_TAU_RANGE[0], _AUTO_TAU_RANGE[1]))


# ----------------------------------------------------------------------------------------------------------
# public API


def permeability(
    volume: np.ndarray | torch.Tensor,
    *,
    phase: int = 1,
    axis: int = 0,
    tau: float | str = "auto",
    force: float = 1e-6,
    boundary: str = "periodic",
    buffer_layers: int = 4,
    tol: float = 1e-3,
    max_steps: int = 100_000,
    check_every: int = 100,
    convergence: str = "extrapolate",
    anderson: int = 10,
    voxel_size: float | None = None,
    return_velocity: bool = False,
    backend: str = "auto",
    device: str | torch.device | None = None,
    progress: bool = False,
    start: str = "rest",
) -> PermeabilityResult:
    """Absolute permeability of one phase along one axis by D3Q19 TRT lattice Boltzmann (Λ = 3/16).

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Z, Y, X)
        Label image; every side at least 2 voxels.
    phase : int, optional
        Label of the pore (flowing) phase; every other label is solid.
    axis : int, optional
        Flow axis, 0, 1 or 2.
    tau : float or "auto", optional
        Symmetric relaxation time τ⁺ > ½ (viscosity ν = (τ⁺ − ½)/3); τ⁻ follows from Λ = 3/16. k does not
        depend on it in principle (exactly for straight channels). ``"auto"`` (default) picks the τ that
        balances the two slow relaxations of the run, viscous (pore size² / ν) and pressure (box length² ν
        / (c_s² k)), from the pores' hydraulic diameter and the box length (see "Convergence" in the
        module docstring); it lies in [0.6, 1], and a run whose flow passes throats one or two voxels wide
        moves to τ = 1 (``PermeabilityResult.tau`` says which τ the result belongs to).
    force : float, optional
        Body force density along ``axis`` in lattice units. Keep it small (Stokes flow, low Mach number):
        k is linear in it only while inertia is negligible.
    boundary : {"periodic", "mirror", "buffer"}, optional
        How the sample is put in the periodic box along the flow (see the module docstring).
    buffer_layers : int, optional
        Free-fluid layers added before and after the sample with ``boundary="buffer"``.
    tol : float, optional
        With ``convergence="extrapolate"``: converged when the estimated relative error of the
        extrapolated k is below ``tol`` at two successive checks. With ``convergence="change"``: when the
        relative change of k between successive checks is below ``tol`` twice in a row (the remaining
        error is then about ``tol`` times the relaxation time of the flow / ``check_every``).
    max_steps : int, optional
        Step limit; reaching it returns ``converged=False`` with a :class:`PermeabilityWarning`.
    check_every : int, optional
        Steps between checks of k (and of NaN and blow-up). Rounded up to an even number, like
        ``max_steps``: the in-place streaming advances two steps at a time.
    anderson : int, optional
        Depth of the Anderson mixing applied to a run not converged after 30 checks (see "Convergence"
        in the module docstring); 0 runs plain. The steady state, and so k, does not depend on it.
    convergence : {"extrapolate", "change"}, optional
        ``"extrapolate"`` (default): k is the limit extrapolated from the geometric approach of the
        checks (Aitken), stopped on its estimated error (see "Convergence" in the module docstring).
        ``"change"``: k is the last computed value, stopped on its relative change (the former rule; use
        it with a small ``tol`` for reference runs).
    voxel_size : float, optional
        Voxel edge in metres; gives ``k_m2`` and ``k_darcy``.
    return_velocity : bool, optional
        Also return the steady velocity field (for figures).
    backend : {"auto", "numba", "torch"}, optional
        ``"numba"``: the fused CPU kernel. ``"torch"``: on a CUDA ``device``, Triton kernels (the GPU
        path; torch gathers and scatters where Triton is not installed); on the CPU, torch gathers and scatters.
        ``"auto"``: numba on the CPU, torch on a GPU.
    device : str or torch.device, optional
        Where to compute: None (the input's device; numpy arrays on the CPU), ``"auto"`` (CUDA when
        available) or an explicit device. Requesting CUDA without a GPU is an error.
    progress : bool, optional
        Show a progress bar (steps, current k, its estimated error) on stderr.
    start : {"rest", "coarse"}, optional
        ``"rest"`` (default): the run starts from rest. ``"coarse"``: from the steady flow through the
        geometry coarsened 2× (see "Convergence" in the module docstring); from rest where the box has an
        odd side or one below 16, or its coarse pores do not span it. k is the same; only the steps change.

    Returns
    -------
    PermeabilityResult

    Raises
    ------
    ValueError
        Bad shapes or options, ``phase`` absent, or a pore space with no solid at all (k unbounded).
    PermeabilityDivergenceError
        The run produced NaN or speeds near the speed of sound (lower ``force`` or raise ``tau``).

    Warns
    -----
    PermeabilityWarning
        Not converged within ``max_steps``, or the largest speed exceeded 0.1 (Mach 0.17).

    Notes
    -----
    k = ν ⟨ρu⟩ / g, ⟨ρu⟩ averaged over the whole box (Darcy velocity) with the +g/2 half-force term.
    Plates of N fluid nodes in a periodic box give k = φ (N² + ½)/12 exactly (Ginzburg's TRT
    Poiseuille solution with Λ = 3/16). Memory: 148 bytes per pore node (see :mod:`physics._lbm_kernels`).
    """
    axis = _check_axis(axis)
    settings = _check_settings(
        tau=tau, force=force, tol=tol, max_steps=max_steps, check_every=check_every,
        convergence=convergence, buffer_layers=buffer_layers, voxel_size=voxel_size, boundary=boundary,
    )  # fmt: skip
    tau, force, tol, max_steps, check_every, buffer_layers, voxel_size = settings
    anderson = _check_int("anderson", anderson, low=0)
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}; received {start!r}")
    device = _resolve_device(volume, device)
    backend = _resolve_backend(backend, device)
    pore = _pore_space(volume, phase)

    box, sample = simulation_box(pore, axis, boundary, buffer_layers)
    flowing = spanning_pores(box, axis)
    n = int(np.count_nonzero(flowing))

    def result(
        k: float,
        steps: int,
        mlups,
        converged: bool,
        reason,
        velocity=None,
        error_estimate=None,
        tau=None,
        coarse_steps=0,
    ) -> PermeabilityResult:
        k_m2 = None if voxel_size is None else k * voxel_size**2
        k_darcy = None if k_m2 is None else k_m2 / DARCY_M2
        return PermeabilityResult(
            axis,
            k,
            k_m2,
            k_darcy,
            steps,
            mlups,
            converged,
            reason,
            boundary,
            velocity,
            n,
            error_estimate,
            tau,
            coarse_steps,
        )

    if n == 0:
        reason = (
            f"phase={phase} has no connected path along axis {axis}: no pore cluster connects the two faces "
            f"normal to axis {axis} (with boundary={boundary!r}), so k = 0 without simulating"
        )
        velocity = np.zeros((3, *pore.shape), dtype=np.float32) if return_velocity else None
        return result(0.0, 0, None, True, reason, velocity, error_estimate=0.0)

    thin_tau = None
    if tau == "auto":
        tau, thin_tau = _auto_tau(flowing, axis), _THIN_TAU
    # on the CPU a mirror box runs on the sample alone, its mirror half given by symmetry (._lbm_mirror)
    half = boundary == "mirror" and backend == "numba"
    simulated, size = flowing, box.size
    if half:
        within = [slice(None)] * 3
        within[axis] = sample
        simulated, size = np.ascontiguousarray(flowing[tuple(within)]), box.size // 2
    lattice = _lattice(
        simulated, axis=axis, tau=tau, force=force, backend=backend, device=device, mirror=half
    )
    n = lattice.f.shape[1]
    nu = (tau - 0.5) / 3.0
    scale = nu / (force * size)  # k = ν ⟨ρu⟩ / g, momentum summed over nodes, averaged over the box
    if boundary == "buffer":  # buffers are free fluid: the whole driving g·L_box acts across the sample
        scale *= pore.shape[axis] / box.shape[axis]

    # in-place streaming advances in pairs of steps: step counts are even
    check_every += check_every % 2
    max_steps += max_steps % 2
    depth = fitting_depth(anderson, n, lattice.f)
    coarse_steps = 0
    if start == "coarse":
        state = coarse_state(
            flowing, axis, tau=tau, force=force, backend=backend, device=device, check_every=check_every,
            max_steps=max_steps, anderson=anderson, progress=f"coarse start axis {axis}" if progress else None,
            half=half,
        )  # fmt: skip
        if state is not None:
            drho, u, coarse_steps = state
            set_equilibrium(lattice.f, drho, u)
    run = _Run(
        lattice,
        scale=scale,
        tol=tol,
        convergence=convergence,
        force=force,
        tau=tau,
        size=size,
        anderson=depth,
        thin_tau=thin_tau,
        length=box.shape[axis],
    )
    run.advance(check_every, max_steps, progress=f"permeability axis {axis}" if progress else None)
    mlups = n * (run.steps - 2) / run.elapsed / 1e6 if run.elapsed > 0 and run.steps > 2 else None
    k = run.history[-1] if run.history else float(lattice.observe()[0] * scale)
    if convergence == "extrapolate" and math.isfinite(run.error):
        k = run.k_limit  # the limit of the approach; the velocity field below is the last computed state
    if run.k_mixed is not None and run.history:
        # after a mixed phase the plain run is short and its Aitken estimate too small (measured up to 5
        # times on barely connected Berea samples): at least tol, and at least how far it moved k
        run.error = max(run.error, abs(k - run.k_mixed), tol * abs(k))
    error_estimate = run.error / max(abs(k), 1e-300) if math.isfinite(run.error) else None

    reason = None
    if not run.converged:
        what = (
            f"relative change of k {run.change:.2e} per {check_every} steps"
            if convergence == "change"
            else f"estimated relative error of k {error_estimate if error_estimate is not None else math.inf:.2e}"
        )
        reason = f"not converged after {run.steps} steps: {what} (tol={tol:g}); raise max_steps"
        warnings.warn(f"permeability along axis {axis}: {reason}", PermeabilityWarning, stacklevel=2)
    speed = math.sqrt(run.speed2)
    if speed > _HIGH_MACH_SPEED:
        warnings.warn(
            f"permeability along axis {axis}: largest speed {speed:.3g} (Mach "
            f"{math.sqrt(3) * speed:.2f}); k may carry compressibility and inertia errors, lower force={force:g}",
            PermeabilityWarning,
            stacklevel=2,
        )

    velocity = None
    if return_velocity:
        field = np.zeros((3, *simulated.shape), dtype=np.float32)
        field[:, simulated] = lattice.velocity()
        index = [slice(None)] * 4
        index[axis + 1] = slice(None) if half else sample
        velocity = np.ascontiguousarray(field[tuple(index)])
    return result(k, run.steps, mlups, run.converged, reason, velocity, error_estimate, run.tau, coarse_steps)


def _check_settings(
    *, tau, force, tol, max_steps, check_every, convergence, buffer_layers, voxel_size, boundary
) -> tuple:
    """The numeric settings of :func:`permeability`, checked: (tau, force, tol, max_steps, check_every,
    buffer_layers, voxel_size)."""
    if isinstance(tau, str) and tau != "auto":
        raise ValueError(f"tau must be a number > 0.5 or 'auto'; received {tau!r}")
    if tau != "auto":
        tau = _check_real(
            "tau", tau, low=0.5, hint=" (the viscosity (tau - 1/2)/3 must be positive, or 'auto')"
        )
    if convergence not in CONVERGENCE_TESTS:
        raise ValueError(
            f"convergence must be one of {', '.join(map(repr, CONVERGENCE_TESTS))}; received {convergence!r}"
        )
    if voxel_size is not None:
        voxel_size = _check_real("voxel_size", voxel_size, low=0.0, hint=" (metres)")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {', '.join(map(repr, BOUNDARIES))}; received {boundary!r}")
    return (
        tau,
        _check_real("force", force, low=0.0),
        _check_real("tol", tol, low=0.0),
        _check_int("max_steps", max_steps, low=1),
        _check_int("check_every", check_every, low=1),
        _check_int("buffer_layers", buffer_layers, low=1),
        voxel_size,
    )


def _pore_space(volume, phase: int) -> np.ndarray:
    """The boolean pore space of ``volume`` (3D, every side at least 2, with some solid) on the CPU."""
    pore = as_indicator(volume, phase=phase)
    if pore.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X); received shape {tuple(pore.shape)}")
    if min(pore.shape) < 2:
        raise ValueError(
            f"volume must have at least 2 voxels along every axis; received shape {tuple(pore.shape)}"
        )
    pore = np.ascontiguousarray(pore.cpu().numpy())
    if pore.all():
        raise ValueError(
            f"phase={phase} fills the whole volume: with no solid the permeability is unbounded "
            "(pass a volume that contains solid)"
        )
    return pore


def permeability_per_axis(
    volume: np.ndarray | torch.Tensor, *, axes: Sequence[int] = (0, 1, 2), **kwargs
) -> tuple[PermeabilityResult, ...]:
    """:func:`permeability` along each of ``axes``; keyword arguments are passed on.

    Returns
    -------
    tuple of PermeabilityResult
        One result per axis, in the order of ``axes``.
    """
    if "axis" in kwargs:
        raise ParameterTypeError("permeability_per_axis takes axes=(...), not axis=")
    axes = tuple(axes)
    if not axes:
        raise ValueError("axes must name at least one axis; received ()")
    return tuple(permeability(volume, axis=axis, **kwargs) for axis in axes)
