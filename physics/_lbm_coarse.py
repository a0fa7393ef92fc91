"""A coarse-to-fine start for the lattice-Boltzmann run of :func:`physics.permeability.permeability`: the
steady flow through the flowing voxels coarsened 2× along every axis, prolonged as the initial state of the
run on the full box.

The slow part of a run through resolved pores in a long box is the diffusion of pressure along the flow
(time ∝ L² / k). On the coarsened box that time is the same number of steps (L and k in lattice units
shrink by 2 and 4), but every step costs an eighth; started from its pressure field, the full run has mostly
local, viscous relaxation left. The steady state, and so k, does not depend on the initial state: only the
number of steps does.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ._anderson import fitting_depth
from ._lbm_box import spanning_pores
from ._lbm_run import PermeabilityDivergenceError, Run, build_lattice
from .lattice import D3Q19

__all__ = ["coarse_geometry", "coarse_state", "prolong", "set_equilibrium"]

_COARSE_TOL = 1e-2  # the coarse k is not the result: its state only has to be near its steady state
_MIN_SIDE = 16  # a box with a side below this is not coarsened (its run is short anyway)


def coarse_geometry(flowing: np.ndarray) -> np.ndarray | None:
    """The flowing voxels coarsened 2× along every axis, a coarse voxel being pore when at least 4 of its 8
    voxels are; None when a side is odd or shorter than 16."""
    if any(side % 2 or side < _MIN_SIDE for side in flowing.shape):
        return None
    z, y, x = (side // 2 for side in flowing.shape)
    counts = flowing.reshape(z, 2, y, 2, x, 2).sum(axis=(1, 3, 5), dtype=np.uint8)
    return counts >= 4


def prolong(
    flowing: np.ndarray, coarse: np.ndarray, drho: np.ndarray, velocity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Density deviation (n,) and velocity (3, n) of the ``n`` flowing nodes (C order) from the steady state
    of the coarse flowing nodes ``coarse``: ``drho`` (m,) and ``velocity`` (3, m).

    With the same force and viscosity in lattice units, Stokes flow through a geometry twice as large has
    pressure differences 2 times and velocities 4 times those of the coarse run (p ∝ g L, u ∝ g L² / ν). A
    fine node takes the values of its coarse voxel; where that voxel is solid in the coarse geometry, the
    density of the nearest coarse pore voxel and no velocity. The density deviation is shifted to mean zero:
    the run conserves mass, and its steady state is that of the rest state's mass.
    """
    node = np.full(coarse.shape, -1, dtype=np.int64)
    node[coarse] = np.arange(int(np.count_nonzero(coarse)))
    fine = tuple(axis // 2 for axis in np.nonzero(flowing))
    own = node[fine]
    nearest = ndimage.distance_transform_edt(~coarse, return_distances=False, return_indices=True)
    nearest_node = node[tuple(index[fine] for index in nearest)]
    del nearest
    fine_drho = 2.0 * drho[nearest_node]
    fine_drho -= fine_drho.mean()
    fine_velocity = np.zeros((3, own.size), dtype=np.float64)
    covered = own >= 0
    fine_velocity[:, covered] = 4.0 * velocity[:, own[covered]]
    return fine_drho, fine_velocity


def set_equilibrium(f: np.ndarray | torch.Tensor, drho: np.ndarray, velocity: np.ndarray) -> None:
    """Set the populations ``f`` (19, n), stored as ``f_q − w_q``, to the equilibrium of density ``1 + drho``
    and velocity ``velocity`` (3, n): ``w_q (drho + ρ (3 c·u + 4.5 (c·u)² − 1.5 u²))``."""
    target = torch.as_tensor(f)  # shares memory with a numpy array
    rho = torch.as_tensor(1.0 + drho, dtype=torch.float64, device=target.device)
    u = torch.as_tensor(velocity, dtype=torch.float64, device=target.device)
    u2 = (u * u).sum(0)
    c = torch.tensor(np.array(D3Q19.c, dtype=np.float64), device=target.device)
    for q in range(19):
        cu = c[q] @ u
        target[q] = (D3Q19.w[q] * (rho - 1.0 + rho * (3.0 * cu + 4.5 * cu * cu - 1.5 * u2))).to(target.dtype)


def coarse_state(
    flowing: np.ndarray,
    axis: int,
    *,
    tau: float,
    force: float,
    backend: str,
    device: torch.device,
    check_every: int,
    max_steps: int,
    anderson: int,
    progress: str | None = None,
    half: bool = False,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Initial density deviation (n,) and velocity (3, n) of the flowing nodes from the steady flow through
    the coarsened geometry (:func:`coarse_geometry`, :func:`prolong`), and the coarse run's steps; None when
    the box cannot be coarsened, its coarse pores do not span it along ``axis`` or fill it, or the coarse run
    diverged.

    The coarse run is the full run's scheme (same τ, force and mixing) stopped at an estimated relative
    error of 1e-2 of its k, or at ``max_steps``. With ``half``, ``flowing`` is a mirror box (the sample
    and its image along ``axis``) and the values are those of the sample's nodes; the coarse run then
    simulates its own sample half with ghost layers (:mod:`physics._lbm_mirror`) when the sample's length
    is even.
    """
    geometry = coarse_geometry(flowing)
    if geometry is None or geometry.all():  # all pore: the coarse flow has no wall to hold it
        return None
    coarse = spanning_pores(geometry, axis)
    n = int(np.count_nonzero(coarse))
    if n == 0:
        return None
    length = coarse.shape[axis]
    fine, mirror = flowing, half and length % 2 == 0  # a coarse mirror box of even length is symmetric
    if half:
        fine = _first_half(flowing, axis)
    if mirror:
        coarse = _first_half(coarse, axis)
        n = int(np.count_nonzero(coarse))
    lattice = build_lattice(
        coarse, axis=axis, tau=tau, force=force, backend=backend, device=device, mirror=mirror
    )
    nu = (tau - 0.5) / 3.0
    run = Run(
        lattice,
        scale=nu / (force * coarse.size),
        tol=_COARSE_TOL,
        convergence="extrapolate",
        force=force,
        tau=tau,
        size=coarse.size,
        anderson=fitting_depth(anderson, n, lattice.f),
        length=length,
    )
    try:
        run.advance(check_every, max_steps, progress=progress)
    except PermeabilityDivergenceError:  # the full run starts from rest, and says so if it diverges too
        return None
    f = torch.as_tensor(lattice.f)
    drho = f.double().sum(0).cpu().numpy()
    velocity = lattice.velocity().astype(np.float64)
    del lattice, f
    if half and not mirror:  # prolong onto the whole box, keep the sample's nodes
        fine_drho, fine_velocity = prolong(flowing, coarse, drho, velocity)
        keep = np.zeros(flowing.shape, dtype=bool)
        keep[_first_half_index(flowing, axis)] = True
        keep = keep[flowing]
        return fine_drho[keep], fine_velocity[:, keep], run.steps
    fine_drho, fine_velocity = prolong(fine, coarse, drho, velocity)
    return fine_drho, fine_velocity, run.steps


def _first_half_index(volume: np.ndarray, axis: int) -> tuple:
    where = [slice(None)] * 3
    where[axis] = slice(0, volume.shape[axis] // 2)
    return tuple(where)


def _first_half(volume: np.ndarray, axis: int) -> np.ndarray:
    return np.ascontiguousarray(volume[_first_half_index(volume, axis)])
