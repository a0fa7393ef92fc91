"""Tests of the coarse-to-fine start of ``physics.permeability`` (:mod:`physics._lbm_coarse`).

Exact invariants of each step (the coarsening is the majority of each 2³ cube; the prolongation scales
pressure by 2 and velocity by 4 and conserves mass; the equilibrium has the moments it is given), and the
steady state, so k, is that of the run from rest.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from physics._lbm_coarse import coarse_geometry, coarse_state, prolong, set_equilibrium
from physics.lattice import D3Q19
from physics.permeability import permeability


def test_coarse_geometry_is_the_majority_of_each_cube():
    flowing = np.random.default_rng(0).random((16, 18, 32)) < 0.5
    coarse = coarse_geometry(flowing)
    expected = np.zeros((8, 9, 16), dtype=bool)
    for z, y, x in np.ndindex(expected.shape):
        expected[z, y, x] = flowing[2 * z : 2 * z + 2, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].sum() >= 4
    np.testing.assert_array_equal(coarse, expected)


@pytest.mark.parametrize("shape", [(15, 16, 16), (16, 16, 14), (16, 17, 16)])
def test_odd_or_short_boxes_are_not_coarsened(shape):
    assert coarse_geometry(np.ones(shape, dtype=bool)) is None


def test_prolong_scales_pressure_and_velocity_and_keeps_the_mass():
    rng = np.random.default_rng(1)
    coarse = rng.random((8, 8, 8)) < 0.6
    flowing = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)
    hole = tuple(np.argwhere(~coarse)[0])  # one fine voxel in a coarse solid voxel
    flowing[tuple(2 * i for i in hole)] = True
    m = int(np.count_nonzero(coarse))
    drho, velocity = rng.standard_normal(m), rng.standard_normal((3, m))
    fine_drho, fine_velocity = prolong(flowing, coarse, drho, velocity)

    node = np.full(coarse.shape, -1)
    node[coarse] = np.arange(m)
    positions = np.argwhere(flowing) // 2
    own = node[tuple(positions.T)]
    # the uncovered node takes the density of the nearest coarse pore voxel (scipy's choice among ties)
    _, nearest = ndimage.distance_transform_edt(~coarse, return_indices=True)
    nearest_node = node[tuple(index[hole] for index in nearest)]
    source = np.where(own >= 0, own, nearest_node)
    expected = 2.0 * drho[source]
    # exact up to the float64 round-off of the mean subtracted from every node
    np.testing.assert_allclose(fine_drho, expected - expected.mean(), rtol=0, atol=1e-12)
    assert abs(fine_drho.sum()) < 1e-9
    covered = own >= 0
    np.testing.assert_array_equal(fine_velocity[:, covered], 4.0 * velocity[:, own[covered]])
    np.testing.assert_array_equal(fine_velocity[:, ~covered], 0.0)
    assert np.count_nonzero(~covered) == 1


def test_equilibrium_has_the_given_density_and_momentum():
    rng = np.random.default_rng(2)
    n = 1000
    drho, velocity = 1e-3 * rng.standard_normal(n), 1e-2 * rng.standard_normal((3, n))
    f = np.zeros((19, n), dtype=np.float32)
    set_equilibrium(f, drho, velocity)
    rho = 1.0 + f.astype(np.float64).sum(0)
    momentum = np.asarray(D3Q19.c, dtype=np.float64).T @ f.astype(np.float64)
    # the second-order equilibrium has density ρ and momentum ρu exactly; float32 storage of f − w rounds
    # each of the 19 values at 6e-8 relative (values below 0.03 here: 2e-9 each, 19 of them summed)
    np.testing.assert_allclose(rho, 1.0 + drho, rtol=0, atol=1e-7)
    np.testing.assert_allclose(momentum, (1.0 + drho) * velocity, rtol=0, atol=1e-7)


def test_a_box_whose_coarse_pores_fill_it_starts_from_rest():
    # plates 15 apart with one-voxel walls: each coarse voxel on a wall holds 4 pore voxels of 8, so the
    # coarse box is all pore and has no wall to hold the flow
    volume = np.ones((16, 16, 16), dtype=bool)
    volume[:, 15, :] = False
    settings = dict(
        tau=1.0, force=1e-6, backend="numba", device=None, check_every=100, max_steps=1000, anderson=0
    )
    assert coarse_state(volume, 0, **settings) is None
    rest, coarse = (permeability(volume, tau=1.0, start=start) for start in ("rest", "coarse"))
    assert coarse.k == rest.k and coarse.steps == rest.steps


def test_coarse_start_reaches_the_steady_state_of_the_run_from_rest():
    field = ndimage.gaussian_filter(np.random.default_rng(3).standard_normal((32, 32, 32)), 2.0, mode="wrap")
    volume = field > np.quantile(field, 0.6)
    state = coarse_state(
        np.concatenate([volume, volume[::-1]]), 0, tau=0.8, force=1e-6, backend="numba", device=None,
        check_every=100, max_steps=20_000, anderson=5,
    )  # fmt: skip
    assert state is not None and state[2] > 0
    rest = permeability(volume, boundary="mirror", tol=1e-6, convergence="change", max_steps=40_000)
    coarse = permeability(volume, boundary="mirror", start="coarse")
    # the reference is converged to a change below 1e-6 per 100 steps; the coarse start's own error
    # estimate (tol 1e-3 on the extrapolated limit) bounds the rest
    assert coarse.converged and rest.converged
    assert coarse.k == pytest.approx(rest.k, rel=max(coarse.error_estimate, 1e-4))
    assert coarse.coarse_steps > 0 and rest.coarse_steps == 0


def test_unknown_start_is_an_error():
    with pytest.raises(ValueError, match=r"start must be one of \('rest', 'coarse'\); received 'middle'"):
        permeability(np.ones((4, 4, 4)), start="middle")
