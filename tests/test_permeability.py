"""Tests of ``physics.permeability`` (D3Q19 TRT lattice Boltzmann, Λ = 3/16, half-way bounce-back).

Three kinds (STYLE.md, convention 6): closed forms (plates, square duct, circular tube, Zick & Homsy's
sphere arrays; ../shared/REFERENCES.md, "Permeability"), invariants (τ-independence, the two backends and
the boundary modes agree, k = 0 decided from connectivity), and an independent package (XLB) on the same
input. Every tolerance says where it comes from.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from physics._lbm_run import extrapolate as _extrapolate
from physics.permeability import (
    DARCY_M2,
    PermeabilityDivergenceError,
    PermeabilityResult,
    PermeabilityWarning,
    permeability,
    permeability_per_axis,
)

# Zick & Homsy (1982), simple cubic arrays of spheres: solid fraction c -> K, with k / a² = 2 / (9 c K).
ZICK_HOMSY = {0.027: 2.008, 0.064: 2.810, 0.125: 4.292, 0.216: 7.442, 0.343: 15.4, 0.45: 28.1, 0.5236: 42.1}


def plates(gap: int, length: int = 2, width: int = 2) -> np.ndarray:
    """``gap`` fluid nodes between one-voxel walls normal to axis 1, periodic: flow along axes 0 and 2."""
    volume = np.ones((length, gap + 1, width), dtype=np.uint8)
    volume[:, gap, :] = 0
    return volume


def square_duct(side: int, length: int = 2) -> np.ndarray:
    """A ``side`` × ``side`` fluid duct along axis 0 with one-voxel walls (periodic box)."""
    volume = np.zeros((length, side + 1, side + 1), dtype=np.uint8)
    volume[:, :side, :side] = 1
    return volume


def tube(radius: float, length: int = 2) -> np.ndarray:
    """A circular tube along axis 0: voxels whose centres lie within ``radius`` of the box axis."""
    side = int(math.ceil(2 * radius)) + 2
    y, x = np.mgrid[:side, :side] + 0.5
    disc = (y - side / 2) ** 2 + (x - side / 2) ** 2 < radius**2
    return np.broadcast_to(disc, (length, side, side)).astype(np.uint8)


def sphere_cell(box: int, radius: float, offset: float = 0.0) -> np.ndarray:
    """Unit cell of a simple cubic sphere array: pore = 1 outside a sphere of ``radius`` voxels.

    Voxel centres sit at ``i + 1/2``; the sphere centre at ``box/2 + offset`` along every axis, so
    ``offset = 0`` puts it between nodes (on a voxel corner) and ``offset = 0.5`` on a node.
    """
    z, y, x = np.mgrid[:box, :box, :box] + 0.5
    centre = box / 2 + offset
    return (((z - centre) ** 2 + (y - centre) ** 2 + (x - centre) ** 2) > radius**2).astype(np.uint8)


def zick_homsy_k(pore: np.ndarray) -> float:
    """Zick & Homsy's k (voxel²) for the sphere that has the voxel sphere's volume.

    c and a are taken from the solid voxel count (a = (3 N / 4π)^(1/3)), not from the nominal radius:
    a staircase sphere of nominal radius 8 holds 1.5 % more or less volume depending on where its centre
    falls (1.6 % in c), which moves the nominal comparison by −3.5 % to +0.3 % for the same solver
    (measured here), while the volume-equivalent comparison stays within −1.2 % to −2.1 %.
    K(c) is interpolated in log–log between the tabulated fractions.
    """
    solid = int(pore.size - np.count_nonzero(pore))
    c = solid / pore.size
    a = (3 * solid / (4 * math.pi)) ** (1 / 3)
    fractions = np.array(sorted(ZICK_HOMSY))
    ks = np.array([ZICK_HOMSY[f] for f in fractions])
    big_k = math.exp(np.interp(math.log(c), np.log(fractions), np.log(ks)))
    return a * a * 2 / (9 * c * big_k)


def blobs(size: int, porosity: float, seed: int, sigma: float = 2.0) -> np.ndarray:
    """Periodic Gaussian-blob pore space (Gaussian-filtered noise, thresholded at the porosity quantile)."""
    field = ndimage.gaussian_filter(
        np.random.default_rng(seed).standard_normal((size,) * 3), sigma, mode="wrap"
    )
    return (field > np.quantile(field, 1 - porosity)).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# closed forms


@pytest.mark.parametrize("gap", [5, 11])
def test_plates_match_the_lattice_solution(gap):
    # TRT with Λ = 3/16 and half-way bounce-back solves plane Poiseuille flow exactly on the lattice:
    # k = φ (N² + ½) / 12 with the box-averaged velocity and the +g/2 term. What is left is float32
    # round-off in the populations and the convergence test (measured: 5e-8 to 7e-6 relative; 1.4e-6 at N = 5
    # with the default extrapolated k, error estimate 2e-8), so 1e-4 has room;
    # a τ-dependent forcing error would show as −6ν/(N² + ½) = −0.8 % at N = 5, τ = 1.
    result = permeability(plates(gap))
    porosity = gap / (gap + 1)
    expected = porosity * (gap**2 + 0.5) / 12
    assert result.converged and result.reason is None
    assert result.k == pytest.approx(expected, rel=1e-4)
    # same walls, flow along the other open axis
    assert permeability(plates(gap), axis=2).k == pytest.approx(expected, rel=1e-4)


def test_auto_run_through_thin_throats_ends_at_tau_one(monkeypatch):
    # With tau="auto", a run whose flow passes sub-voxel throats (equivalent tube diameter √(32 k/φ) below
    # one voxel) moves to τ = 1, so its k is that of the τ = 1 steady state the reference defines, on both
    # backends, whether it converged first (this sample) or was slow and mixed (forced below). Measured:
    # 1.7e-4 and 1.4e-4 from a plain τ = 1 run converged to a change below 1e-8 per 100 steps, error
    # reported 1e-3 (at least tol after a move); at the τ "auto" picks (0.68) the sample's k is 3.5 % lower.
    pore = blobs(24, 0.14, seed=1, sigma=1.5)
    reference = permeability(pore, tau=1.0, tol=1e-8, convergence="change", anderson=0, max_steps=200_000)
    assert reference.converged
    for mix_after in (2, 10**9):
        monkeypatch.setattr("physics._lbm_run._MIX_AFTER_CHECKS", mix_after)
        run = permeability(pore)
        assert run.converged and run.tau == 1.0
        assert abs(run.k - reference.k) / reference.k <= run.error_estimate
        on_torch = permeability(pore, backend="torch")  # float32 in another order: may stop at another check
        assert on_torch.tau == 1.0
        assert abs(on_torch.k - reference.k) / reference.k <= on_torch.error_estimate
    # an explicit τ is kept; so is the τ "auto" picks (0.83) for resolved pores (D ≈ 3.9 voxels here)
    assert permeability(pore, tau=0.8).tau == 0.8
    wide = permeability(blobs(32, 0.4, seed=3), boundary="mirror")
    assert 0.6 <= wide.tau < 1.0


def test_auto_run_through_throats_two_voxels_wide_ends_at_tau_one():
    # Equivalent tube diameter √(32 k/φ) = 1.24 voxels: above one voxel, yet k still depends on τ (measured:
    # −0.74 % at τ = 0.6 against τ = 1, over the 0.5 %). Below two voxels the "auto" run moves to
    # τ = 1; measured here 7e-6 from a plain τ = 1 run converged to a change below 1e-8 per 100 steps.
    pore = blobs(24, 0.3, seed=1, sigma=1.0)
    reference = permeability(pore, tau=1.0, tol=1e-8, convergence="change", anderson=0, max_steps=200_000)
    assert reference.converged
    assert 1.0 < math.sqrt(32 * reference.k / pore.mean()) < 2.0
    run = permeability(pore)
    assert run.converged and run.tau == 1.0
    assert abs(run.k - reference.k) / reference.k <= run.error_estimate
    # why: at the τ of the rule's lower bound, k is off by more than the accuracy the solver promises
    assert abs(permeability(pore, tau=0.6, tol=1e-6).k / reference.k - 1) > 0.005


@pytest.mark.parametrize("tau", [0.6, 1.5])
def test_plates_do_not_depend_on_tau(tau):
    # Λ is held at 3/16 while τ⁺ moves: the plate solution is exact for every τ (see above).
    result = permeability(plates(11), tau=tau)
    assert result.k == pytest.approx(11 / 12 * (121 + 0.5) / 12, rel=1e-4)


def test_porous_medium_does_not_depend_on_tau():
    # For Stokes flow the TRT steady state depends on τ only through Λ, so k on a porous medium is
    # τ-independent up to inertia (u ∝ 1/ν grows 5× from τ = 1 to 0.6) and the convergence test. The
    # issue allows 0.5 %; measured here: below 1e-6 (about 1e-4 on a 64³ sample).
    pore = blobs(24, 0.4, seed=3)
    k = [permeability(pore, tau=tau, tol=1e-6).k for tau in (0.6, 1.0, 1.5)]
    assert k[0] > 0
    assert k[0] == pytest.approx(k[1], rel=5e-3)
    assert k[2] == pytest.approx(k[1], rel=5e-3)


def test_square_duct_matches_closed_form():
    # k = 0.0351443 a² over the open area (times φ for the box). The walls are straight, so bounce-back
    # puts them exactly half-way; the remaining error is the lattice's resolution of a non-polynomial
    # profile, O(1/a²): +1.4 % at a = 8 and +0.37 % at a = 16 (measured). 1 % at a = 16.
    side = 16
    result = permeability(square_duct(side))
    porosity = side**2 / (side + 1) ** 2
    assert result.k == pytest.approx(0.0351443 * side**2 * porosity, rel=1e-2)


def test_circular_tube_matches_closed_form():
    # k = φ R²/8 with φ = πR²/A. The wall is a staircase: the voxel disc's area and perimeter differ from
    # the circle's by O(1/R) and the error oscillates with R (−6 % at R = 6, −1.6 % at R = 10, −0.06 % at
    # R = 10.5, measured). At R = 10 a 3 % tolerance covers the staircase while still catching a wrong
    # wall position (half a voxel on R = 10 is 20 % in k).
    radius = 10.0
    volume = tube(radius)
    result = permeability(volume)
    area = volume.shape[1] * volume.shape[2]
    assert result.k == pytest.approx(math.pi * radius**2 / area * radius**2 / 8, rel=3e-2)


@pytest.mark.parametrize(("box", "radius"), [(26, 8.0), (32, 12.0)])
def test_sphere_array_matches_zick_homsy(box, radius):
    # Spheres centred between nodes, c = 0.124 and 0.220 (volume-equivalent, see zick_homsy_k). A correct
    # solver lands about 2 % low (staircase spheres act slightly larger; measured −2.1 % and −1.9 %, and
    # XLB on the first cell gives the same k to 1e-5): 3 % as in the issue.
    pore = sphere_cell(box, radius)
    result = permeability(pore)
    assert result.converged
    deviation = result.k / zick_homsy_k(pore) - 1
    assert -0.03 < deviation < 0.0


def test_sphere_array_off_centre_placement():
    # Any other placement of the centre: the staircase changes, 5 % (measured −1.3 % on a node).
    pore = sphere_cell(26, 8.0, offset=0.5)
    result = permeability(pore)
    assert result.k == pytest.approx(zick_homsy_k(pore), rel=5e-2)


def test_sphere_array_dilute():
    # A third, more dilute cell (c ≈ 0.066, a = 10 in a 40³ box): measured −1.1 % against the
    # volume-equivalent sphere; 3 %. The default takes 2,102 steps here (the former τ = 1, change < 1e-6
    # rule 10,302) for the same k to 1e-5.
    pore = sphere_cell(40, 10.0)
    result = permeability(pore)
    assert result.k == pytest.approx(zick_homsy_k(pore), rel=3e-2)


# ----------------------------------------------------------------------------------------------------------
# connectivity decided before simulating


def test_closed_pore_space_gives_zero_without_simulating():
    volume = np.zeros((16, 16, 16), dtype=np.uint8)
    volume[4:12, 4:12, 4:12] = 1  # a closed cavity
    result = permeability(volume, return_velocity=True)
    assert result.k == 0.0 and result.steps == 0 and result.mlups is None
    assert result.converged
    assert "no connected path" in result.reason
    assert result.velocity.shape == (3, 16, 16, 16) and not result.velocity.any()


def test_flow_across_the_plates_is_zero():
    # The walls block axis 1 completely; axes 0 and 2 are open and equal by symmetry.
    results = permeability_per_axis(plates(6), tol=1e-6)
    assert [r.axis for r in results] == [0, 1, 2]
    assert results[1].k == 0.0 and results[1].steps == 0 and "axis 1" in results[1].reason
    assert results[0].k == pytest.approx(results[2].k, rel=1e-6)


def test_pores_touching_through_an_edge_are_connected():
    # D3Q19 links edge neighbours, so two blocks of pore that touch only along an edge exchange fluid
    # through the diagonal links. The connectivity decision must use the solver's own (18-)connectivity:
    # with face connectivity (physics.connectivity) this structure has no path and k would be 0.
    volume = np.zeros((8, 9, 5), dtype=np.uint8)
    volume[0:4, 0:4, 0:4] = 1
    volume[4:8, 4:8, 0:4] = 1  # touches the first block along edges, also across the periodic z faces
    result = permeability(volume, tol=1e-6)
    assert result.converged and result.steps > 0
    assert result.k > 1e-3  # measured 5.5e-3


# ----------------------------------------------------------------------------------------------------------
# boundaries along the flow


def _slanted_channel(length: int = 12) -> np.ndarray:
    """A straight channel that runs from y = 2 at the inlet to y = 9 at the outlet: not periodic."""
    volume = np.zeros((length, 14, 6), dtype=np.uint8)
    for z in range(length):
        y = 2 + round(z * 7 / (length - 1))
        volume[z, y : y + 3, 1:4] = 1
    return volume


def test_non_periodic_channel_needs_mirror_or_buffer():
    # Glued periodically, the outlet (y = 9..11) does not meet the inlet (y = 2..4): no path, k = 0.
    volume = _slanted_channel()
    periodic = permeability(volume)
    assert periodic.k == 0.0 and "no connected path" in periodic.reason
    mirror = permeability(volume, boundary="mirror", tol=1e-6)
    buffer = permeability(volume, boundary="buffer", tol=1e-6)
    assert mirror.boundary == "mirror" and buffer.boundary == "buffer"
    assert mirror.k > 0 and buffer.k > 0


def test_boundary_modes_agree_on_a_periodic_sample():
    # Plates are their own mirror image, so "mirror" gives the periodic k to round-off. Buffers add free
    # fluid where the walls end: the entrance and exit losses lower k by a fraction of order gap/length
    # (measured −3.9 % for gap 5 over 40 voxels, −14 % for gap 7 over 8): 5 % here.
    sample = plates(5, length=40)
    reference = permeability(sample, tol=1e-7, check_every=200)
    mirror = permeability(sample, boundary="mirror", tol=1e-7, check_every=200)
    buffer = permeability(sample, boundary="buffer", tol=1e-7, check_every=200)
    assert mirror.k == pytest.approx(reference.k, rel=1e-4)
    assert 0.95 * reference.k < buffer.k < reference.k
    # the CPU runs the sample with ghost layers in place of its mirror half; torch runs the whole mirror box
    assert mirror.fluid_nodes == reference.fluid_nodes
    on_torch = permeability(sample, boundary="mirror", tol=1e-7, check_every=200, backend="torch")
    assert on_torch.fluid_nodes == 2 * reference.fluid_nodes
    assert buffer.fluid_nodes == reference.fluid_nodes + 2 * 4 * 6 * 2  # 4 full layers at each end


def test_mirror_half_with_ghosts_matches_the_whole_mirror_box():
    # the numba backend simulates the sample and ghost layers (physics._lbm_mirror), the torch backend the
    # sample and its mirror image; both converged to a change below 1e-7 per 100 steps. Measured: within
    # 2.4e-6 along every axis of such samples; 1e-5 leaves room for the float32 round-off of the two orders
    # of summation and the u² terms of the equilibrium, which are not antisymmetric
    field = ndimage.gaussian_filter(np.random.default_rng(3).standard_normal((32, 32, 32)), 2.0, mode="wrap")
    volume = field[:32, :24, :28] > np.quantile(field, 0.6)
    for axis in range(3):
        settings = dict(
            axis=axis, boundary="mirror", tau=0.8, convergence="change", tol=1e-7, max_steps=30_000
        )
        half = permeability(volume, backend="numba", return_velocity=True, **settings)
        whole = permeability(volume, backend="torch", return_velocity=True, **settings)
        assert half.converged and whole.converged
        assert half.k == pytest.approx(whole.k, rel=1e-5)
        assert half.fluid_nodes * 2 == whole.fluid_nodes
        np.testing.assert_allclose(
            half.velocity, whole.velocity, rtol=0, atol=1e-4 * np.abs(whole.velocity).max()
        )


# ----------------------------------------------------------------------------------------------------------
# results, units, velocity field, backends


def test_units_velocity_and_dict():
    gap = 7
    result = permeability(
        plates(gap, width=3), tau=1.0, voxel_size=2e-6, return_velocity=True, tol=1e-7, check_every=200
    )
    assert result.k_m2 == pytest.approx(result.k * 4e-12, rel=1e-12)
    assert result.k_darcy == pytest.approx(result.k_m2 / DARCY_M2, rel=1e-12)
    velocity = result.velocity
    assert velocity.shape == (3, 2, gap + 1, 3) and velocity.dtype == np.float32
    assert not velocity[:, :, gap, :].any()  # solid
    assert np.abs(velocity[1:]).max() < 1e-6 * np.abs(velocity[0]).max()  # along the flow only
    # k = ν ⟨u⟩ / g with the default τ = 1 (ν = 1/6) and force 1e-6
    assert velocity[0].mean(dtype=np.float64) / 6 / 1e-6 == pytest.approx(result.k, rel=1e-5)
    profile = velocity[0, 0, :gap, 0].astype(np.float64)
    y = np.arange(gap)
    np.testing.assert_allclose(
        profile, 1e-6 * 3 * (y + 0.5) * (gap - 0.5 - y), rtol=1e-4
    )  # g/(2ν) (y+½)(N−½−y)
    row = result.to_dict()
    assert set(row) == {
        "axis",
        "k",
        "k_m2",
        "k_darcy",
        "steps",
        "mlups",
        "converged",
        "reason",
        "fluid_nodes",
        "error_estimate",
        "tau",
        "coarse_steps",
    }
    assert all(isinstance(row[key], (int, float)) for key in ("k", "k_m2", "k_darcy", "steps", "mlups"))
    assert row["converged"] is True and row["reason"] is None and row["fluid_nodes"] == 2 * gap * 3
    assert permeability(plates(gap), tol=1e-6).to_dict()["k_m2"] is None
    with pytest.raises(AttributeError):
        result.k = 0.0  # frozen


def test_torch_backend_agrees_with_numba():
    # Same table, same arithmetic in float32, different order of operations: after 300 steps the two k
    # differ by float32 round-off only (measured 2e-7 in k and in the velocity field); 1e-4.
    pore = blobs(16, 0.45, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PermeabilityWarning)  # 300 steps are not converged: not the point
        numba_run = permeability(pore, max_steps=300, check_every=100, backend="numba", return_velocity=True)
        torch_run = permeability(pore, max_steps=300, check_every=100, backend="torch", return_velocity=True)
    assert numba_run.steps == torch_run.steps == 300
    assert torch_run.k == pytest.approx(numba_run.k, rel=1e-4)
    np.testing.assert_allclose(
        torch_run.velocity, numba_run.velocity, rtol=0, atol=1e-4 * np.abs(numba_run.velocity).max()
    )
    tensor_run = permeability(
        torch.from_numpy(pore), max_steps=300, check_every=100, tol=1.0, convergence="change"
    )
    assert tensor_run.k == pytest.approx(numba_run.k, rel=1e-4)
    # the fast default (τ from the geometry, extrapolated k) on both backends: same checks, same decision,
    # and the extrapolated k agrees to the float32 round-off of the checks it is built from
    numba_fast = permeability(pore, backend="numba")
    torch_fast = permeability(pore, backend="torch")
    assert numba_fast.converged and torch_fast.converged
    assert torch_fast.k == pytest.approx(numba_fast.k, rel=1e-4)
    assert abs(torch_fast.steps - numba_fast.steps) <= 2 * 100


@pytest.mark.parametrize("seed", [1, 4])
def test_blocked_table_holds_the_plain_table_lane_by_lane(seed):
    """The numba kernel's table in blocks of BLOCK nodes is the (18, n) table of the torch path, cut into
    blocks: entry [b, q, lane] is the slot of node b·BLOCK + lane, exactly; the last block's unused lanes are 0.
    Checked against slots computed here from the geometry (periodic neighbour, or bounce-back)."""
    from physics._lbm_kernels import BLOCK
    from physics._lbm_run import build_lattice
    from physics.lattice import D3Q19

    pore = blobs(14, 0.5, seed=seed) == 1
    n = int(pore.sum())
    assert n % BLOCK != 0  # a partial last block
    blocked = build_lattice(pore, axis=0, tau=1.0, force=1e-6, backend="numba", device=None).table
    plain = build_lattice(pore, axis=0, tau=1.0, force=1e-6, backend="torch", device=torch.device("cpu"))
    plain = plain.table.numpy()
    assert blocked.shape == (-(-n // BLOCK), 18, BLOCK) and plain.shape == (18, n)
    unblocked = blocked.view(np.int32).transpose(1, 0, 2).reshape(18, -1)
    np.testing.assert_array_equal(unblocked[:, :n], plain)
    assert not unblocked[:, n:].any()
    node_of = np.full(pore.shape, -1)
    node_of[pore] = np.arange(n)
    voxels = np.argwhere(pore)
    for q in range(1, 19):
        source = node_of[tuple(((voxels - D3Q19.c[q]) % pore.shape).T)]
        expected = np.where(source >= 0, D3Q19.opposite[q] * n + source, q * n + np.arange(n))
        np.testing.assert_array_equal(plain[q - 1], expected)


# ----------------------------------------------------------------------------------------------------------
# the fast path: τ from the geometry and the extrapolated limit of k


def test_extrapolation_is_exact_for_a_geometric_approach():
    # k_n = k∞ + A r^n is what a single slowest mode gives: Aitken's limit is then exact (to round-off)
    # and the two ratios agree, so the estimated error is round-off too. Fewer than four checks: no estimate.
    history = [2.5 - 0.7 * 0.8**n for n in range(12)]
    limit, error = _extrapolate(history)
    assert limit == pytest.approx(2.5, rel=1e-12) and error < 1e-12
    assert _extrapolate(history[:3]) == (history[2], math.inf)
    # two modes: the faster one makes the ratios differ and the error estimate covers the limit's error
    history = [1.0 + 0.3 * 0.9**n - 0.2 * 0.5**n for n in range(20)]
    limit, error = _extrapolate(history)
    assert 0 < abs(limit - 1.0) <= error
    # not converging (ratio above 1): no estimate; sign changes (noise at steady state): the spread
    assert _extrapolate([1.0 + 0.01 * 1.1**n for n in range(12)])[1] == math.inf
    noise = list(1.0 + 1e-9 * np.random.default_rng(0).uniform(-1, 1, 12))
    limit, error = _extrapolate(noise)
    assert limit == noise[-1] and 0 < error <= 3 * 6e-9  # 3 (the safety factor) × three differences ≤ 2e-9


def test_fast_path_matches_a_tightly_converged_reference():
    # The accuracy rule: the default (τ from the geometry, Aitken-extrapolated k, tol 1e-3) must
    # agree with the τ = 1 TRT solution run until k changes by less than 1e-8 per 100 steps, within 0.5 %.
    # Measured here: 602 steps against 2,702, k within 2.7e-6 (the cut sample below: 502 against 1,702, 3.2e-6).
    pore = blobs(32, 0.35, seed=7)
    reference = permeability(pore, tau=1.0, tol=1e-8, convergence="change")
    fast = permeability(pore)
    assert reference.converged and fast.converged and reference.k > 0
    assert fast.k == pytest.approx(reference.k, rel=5e-3)
    assert fast.steps < reference.steps
    # The error estimate is of the convergence error, so it is checked at the reference's τ: it must bound
    # the actual error. The reference is itself converged to ~1e-8 × (relaxation time / 100 steps), and
    # float32 round-off moves k by ~1e-7: 1e-6 is added for both. Measured here: error 7.9e-6, estimate 9.7e-5.
    same_tau = permeability(pore, tau=1.0)
    error = abs(same_tau.k - reference.k) / reference.k
    assert same_tau.error_estimate is not None and error <= same_tau.error_estimate + 1e-6
    # a cut sample in its mirror box, the case of the issue: the same two rules
    cut = pore[:20]
    reference = permeability(cut, tau=1.0, tol=1e-8, convergence="change", boundary="mirror")
    assert permeability(cut, boundary="mirror").k == pytest.approx(reference.k, rel=5e-3)
    same_tau = permeability(cut, tau=1.0, boundary="mirror")
    assert abs(same_tau.k - reference.k) / reference.k <= same_tau.error_estimate + 1e-6


def test_progress_bar_changes_nothing_but_stderr(capsys):
    # The bar only reports: the same run with and without it gives the same k, bit for bit.
    quiet = permeability(plates(5))
    shown = permeability(plates(5), progress=True)
    assert shown.k == quiet.k and shown.steps == quiet.steps
    assert "permeability axis 0" in capsys.readouterr().err


def test_not_converged_warns_and_says_why():
    with pytest.warns(PermeabilityWarning, match="not converged"):
        result = permeability(plates(11), tau=0.6, max_steps=50, check_every=10)
    assert not result.converged and result.steps == 50 and "not converged" in result.reason
    assert isinstance(result, PermeabilityResult)


def test_blow_up_is_an_error():
    # Force 1e-2 on 20-node plates at τ = 0.6 asks for a centre-line speed of 7.5 (the speed of sound is
    # 0.58): the run must stop with an error, not return a number.
    with pytest.raises(PermeabilityDivergenceError, match="diverged"):
        permeability(plates(20), tau=0.6, force=1e-2, check_every=20)


# ----------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("volume", "kwargs", "error", "match"),
    [
        (plates(4), {"phase": 2}, ValueError, "phase=2 does not occur"),
        (plates(4)[0], {}, ValueError, "3D"),
        (np.ones((1, 6, 6), dtype=np.uint8), {}, ValueError, "at least 2 voxels"),
        (np.ones((4, 4, 4), dtype=np.uint8), {}, ValueError, "no solid"),
        (plates(4), {"boundary": "open"}, ValueError, "boundary must be one of"),
        (plates(4), {"tau": 0.5}, ValueError, "tau"),
        (plates(4), {"force": -1e-6}, ValueError, "force"),
        (plates(4), {"axis": 3}, ValueError, "axis"),
        (plates(4), {"voxel_size": 0}, ValueError, "voxel_size"),
        (plates(4), {"backend": "warp"}, ValueError, "backend must be one of"),
        (plates(4), {"max_steps": 0}, ValueError, "max_steps"),
        (plates(4), {"tol": "1e-5"}, TypeError, "tol must be a real number"),
        (plates(4), {"convergence": "aitken"}, ValueError, "convergence must be one of"),
        (plates(4), {"tau": "fast"}, ValueError, "tau must be a number > 0.5 or 'auto'"),
        (plates(4), {"anderson": -1}, ValueError, "anderson must be"),
        (plates(4), {"anderson": 2.5}, TypeError, "anderson must be"),
        ([[[1, 0]]], {}, TypeError, "numpy array or a torch tensor"),
    ],
)
def test_bad_input(volume, kwargs, error, match):
    with pytest.raises(error, match=match):
        permeability(volume, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_an_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        permeability(plates(4), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_agrees_with_cpu():
    pore = blobs(32, 0.4, seed=2)
    cpu = permeability(pore, tol=1e-6)
    gpu = permeability(torch.from_numpy(pore).cuda(), tol=1e-6)
    assert gpu.k == pytest.approx(cpu.k, rel=1e-3)


_TRITON_CHECK = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"
import numpy as np, torch
from physics._lbm_run import build_lattice
from physics._lbm_triton import trt_pair_triton
rng = np.random.default_rng(0)
pore = rng.random((12, 10, 9)) < 0.7
lattice = build_lattice(pore, axis=0, tau=0.8, force=1e-3, backend="numba", device=None)
lattice.f[:] = rng.normal(0.0, 1e-3, lattice.f.shape).astype(np.float32)
f = torch.from_numpy(lattice.f.copy())
# the torch layout of the table, (18, n); the numba lattice keeps it in blocks of the kernel's nodes
table = build_lattice(pore, axis=0, tau=0.8, force=1e-3, backend="torch", device=torch.device("cpu")).table
for _ in range(3):
    lattice.step_pair()
    trt_pair_triton(f, table, *lattice.omega, tuple(float(v) for v in lattice.force))
print(float(np.abs(f.numpy() - lattice.f).max() / np.abs(lattice.f).max()))
"""


def test_triton_kernel_agrees_with_numba_kernel():
    """The GPU step (Triton) against the CPU step (numba) on random populations over a random geometry with
    every kind of link (fluid, bounce-back, periodic wrap), three pairs of steps, run by Triton's interpreter on
    the CPU. Both are float32 with the same formulas, differently ordered: 1e-5 of the largest value is a few
    hundred float32 ulps, far below any error in the streaming (a wrong slot moves values by their own size)."""
    import subprocess
    import sys

    pytest.importorskip("triton", reason="Triton is not installed (it comes with the CUDA builds of torch)")
    done = subprocess.run([sys.executable, "-c", _TRITON_CHECK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_kernels_and_graphs_agree_with_torch_operations():
    """On a GPU, the Triton kernels replayed as CUDA graphs give the populations of the torch-operation path
    (same float32 formulas, different order of operations: 1e-5 relative, as above) after 150 steps."""
    from physics._lbm_run import build_lattice

    pore = blobs(32, 0.4, seed=3) == 1  # build_lattice takes the flowing nodes as a boolean mask
    fast = build_lattice(pore, axis=1, tau=0.7, force=1e-5, backend="torch", device=torch.device("cuda"))
    plain = build_lattice(pore, axis=1, tau=0.7, force=1e-5, backend="torch", device=torch.device("cuda"))
    assert fast.triton, "Triton should be usable on a CUDA machine with a CUDA build of torch"
    plain.triton = False
    for lattice in (fast, plain):
        lattice.step_pair()
        lattice.step_pairs(24)  # captured
        lattice.step_pairs(24)  # replayed
        lattice.step_pairs(26)  # captured anew for another count
    assert len(fast._graphs) == 2 and all(g is not None for g in fast._graphs.values())
    scale = float(plain.f.abs().max())
    assert scale > 0
    assert float((fast.f - plain.f).abs().max()) < 1e-5 * scale


# ----------------------------------------------------------------------------------------------------------
# independent package


def _xlb_permeability(pore: np.ndarray, *, axis: int = 0, force: float = 1e-6, tol: float = 1e-5) -> float:
    """k (voxel²) from XLB 0.3 (JAX backend, float64): BGK at τ = ½ + √3/4, which has Λ = 3/16, Kupershtokh's
    exact-difference forcing (the same Stokes steady state as Guo's with u = (Σ f c + g/2)/ρ), XLB's
    half-way bounce-back operator on every link into a solid voxel, periodic box. Velocity averaged over the
    box with the +g/2 term."""
    import jax
    import jax.numpy as jnp
    import xlb
    from xlb.compute_backend import ComputeBackend
    from xlb.grid import grid_factory
    from xlb.operator.boundary_condition import HalfwayBounceBackBC
    from xlb.operator.macroscopic import Macroscopic
    from xlb.operator.stepper import IncompressibleNavierStokesStepper
    from xlb.precision_policy import PrecisionPolicy

    jax.config.update("jax_enable_x64", True)
    backend, precision = ComputeBackend.JAX, PrecisionPolicy.FP64FP64
    velocity_set = xlb.velocity_set.D3Q19(precision_policy=precision, compute_backend=backend)
    xlb.init(velocity_set=velocity_set, default_backend=backend, default_precision_policy=precision)
    walls = HalfwayBounceBackBC(indices=np.argwhere(pore == 0).T.tolist())
    g = np.zeros(3)
    g[axis] = force
    stepper = IncompressibleNavierStokesStepper(
        grid=grid_factory(pore.shape, compute_backend=backend),
        boundary_conditions=[walls],
        collision_type="BGK",
        force_vector=jnp.asarray(g),
    )
    macroscopic = Macroscopic(velocity_set=velocity_set, precision_policy=precision, compute_backend=backend)
    f_old, f_new, bc_mask, missing_mask = stepper.prepare_fields()
    # XLB 0.3's IndicesBoundaryMasker treats the box faces as walls for nodes next to a solid (it pads the
    # domain with "missing" directions), which lowered k by 9.4 % on the 64³ structure. Rebuild both masks
    # for the periodic box: bounce back wherever the pulled-from node is solid, with periodic wrap.
    solid = jnp.asarray(pore == 0)
    c = np.asarray(velocity_set.c)  # (3, 19)
    missing_mask = jnp.stack(
        [jnp.roll(solid, tuple(int(v) for v in c[:, q]), axis=(0, 1, 2)) for q in range(c.shape[1])]
    )
    bc_mask = jnp.full_like(bc_mask, walls.id)
    tau = 0.5 + math.sqrt(3) / 4
    fluid = jnp.asarray(pore != 0)

    def k_now(f):
        streamed = walls(f, stepper.stream(f), bc_mask, missing_mask)
        rho, u = macroscopic(streamed)
        momentum = rho[0] * u[axis] + 0.5 * force  # exact-difference forcing: u = Σ f c / ρ + g / 2
        return float((tau - 0.5) / 3 * jnp.sum(jnp.where(fluid, momentum, 0.0)) / pore.size / force)

    previous, step = None, 0
    while step < 20_000:
        for _ in range(200):
            f_old, f_new = stepper(f_old, f_new, bc_mask, missing_mask, 1.0 / tau, step)
            f_old, f_new = f_new, f_old
            step += 1
        k = k_now(f_old)
        if previous is not None and abs(k - previous) < tol * abs(k):
            return k
        previous = k
    raise AssertionError(f"XLB did not converge in {step} steps (last k {k})")


@pytest.mark.slow
def test_agrees_with_xlb_on_a_porous_volume():
    # Same 64³ Gaussian-blob structure in both codes. The two schemes have the same Stokes steady state
    # (Λ = 3/16, half-way bounce-back, second-order forcing), so they should agree to the convergence
    # tolerance; the issue asks for 2 %. Measured here: 2.6e-5 on this structure (XLB 0.0932898, here
    # 0.0932873) and 7.5e-6 on the 26³ sphere cell (XLB 26.61519, here 26.61538).
    pytest.importorskip(
        "xlb",
        reason="XLB is not installed (pip install xlb: it brings JAX, warp-lang and VTK, ~1.8 GB, so it is not "
        "a test dependency); the cross-check runs where it is present",
    )
    pore = blobs(64, 0.35, seed=0)
    ours = permeability(pore, tau=0.5 + math.sqrt(3) / 4, tol=1e-6)
    theirs = _xlb_permeability(pore)
    assert ours.k == pytest.approx(theirs, rel=2e-2)


# ----------------------------------------------------------------------------------------------------------
# Anderson mixing of a slow run


def test_anderson_mixing_solves_a_linear_fixed_point_problem():
    # x = A x + b with three slow modes (0.99, 0.995, 0.999: like the pressures of pores behind thin
    # throats) and 37 fast ones: the plain iteration needs 6,932 sweeps to come within 1e-3 of the exact
    # solution (I − A)⁻¹ b; mixing of depth 5 is within 1e-4 after 71 (measured). 80 sweeps, 2e-4: float32
    # round-off of the states, amplified by 1/(1 − 0.999).
    from physics._anderson import Anderson

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    a = (q * np.concatenate([np.linspace(0.0, 0.5, 37), [0.99, 0.995, 0.999]])) @ q.T
    b = rng.standard_normal(40)
    exact = np.linalg.solve(np.eye(40) - a, b)
    mixing, x = Anderson(5), np.zeros(40, dtype=np.float32)
    mixing.start(x)
    for _ in range(80):
        x = (a @ x + b).astype(np.float32)
        mixing.mix(x)  # in place: the next state
    assert np.abs(x - exact).max() <= 2e-4 * np.abs(exact).max()
    plain = np.zeros(40)
    for _ in range(80):
        plain = a @ plain + b
    assert np.abs(plain - exact).max() > 0.5 * np.abs(exact).max()  # the plain iteration is far from it


def _anderson_by_definition(x0, image, depth, mixes):
    """Walker & Ni (2011) Eq. 2.1 written out: the columns of the last ``depth`` differences of residuals
    and images, and γ from a float64 least-squares solve, with the restart of :mod:`physics._anderson` (a
    residual over 10 times the smallest so far keeps only itself); the states after each mixing."""
    x, images, residuals, states, best = x0.astype(np.float64), [], [], [], math.inf
    for j in range(mixes):
        g = image(x, j)
        images.append(g)
        residuals.append(g - x)
        norm = float(np.linalg.norm(residuals[-1]))
        if norm > 10.0 * best:
            images, residuals = images[-1:], residuals[-1:]
        best = min(best, norm)
        df = np.diff(np.array(residuals[-depth - 1 :]), axis=0).T
        dg = np.diff(np.array(images[-depth - 1 :]), axis=0).T
        gamma = np.linalg.lstsq(df, residuals[-1], rcond=None)[0] if df.shape[1] else np.zeros(0)
        x = g - dg @ gamma
        states.append(x)
    return states


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("nodes", [19, 9_000])
def test_anderson_mixing_equals_its_definition(backend, nodes):
    # The in-place mixing (ring buffers of depth 3, fused passes on numpy, tensor operations on torch) against
    # Eq. 2.1 written out in float64, mixing by mixing: past the point where the oldest differences are
    # dropped (mixings 5 to 7), through a restart (the image of mixing 8 is kicked by s = 10 b, so its
    # residual is over 10 times the smallest: it is taken unmixed and the history starts again) and after it
    # (mixings 9 to 14 mix again, on the contraction about the moved fixed point, wrapping the buffers). A
    # well-conditioned contraction (rates 0.3–0.9; dense on 38 values, diagonal on 18,000, which the numba
    # passes split into three chunks), so the float32 states of the mixing stay within 1e-5 of the float64
    # ones, relative to the largest (measured: 1.3e-6 to 3.4e-6).
    from physics._anderson import Anderson

    size = 2 * nodes
    rng = np.random.default_rng(3)
    rates = np.linspace(0.3, 0.9, size)
    if size <= 64:
        q, _ = np.linalg.qr(rng.standard_normal((size, size)))
        a = (q * rates) @ q.T
    b, x0 = rng.standard_normal(size), rng.standard_normal(size)

    def image(x, j):  # from mixing 8 on, the same contraction about a fixed point moved by s = 10 b
        s = 10.0 * b if j >= 7 else 0.0
        y = x - s if j >= 8 else x
        return (a @ y if size <= 64 else rates * y) + b + s

    expected = _anderson_by_definition(x0, image, depth=3, mixes=14)
    mixing = Anderson(3)
    state = x0.astype(np.float32).reshape(2, nodes)  # the lattice's shape: (populations, nodes)
    if backend == "torch":
        state = torch.from_numpy(state)
    mixing.start(state)
    for j, want in enumerate(expected):
        new = image(np.asarray(state, dtype=np.float64).reshape(-1), j).astype(np.float32).reshape(2, nodes)
        state[...] = torch.from_numpy(new) if backend == "torch" else new
        mixing.mix(state)
        got = np.asarray(state, dtype=np.float64).reshape(-1)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), j
    if backend == "numpy":
        with pytest.raises(ValueError, match="contiguous"):  # a strided view would be mixed in a copy
            Anderson(3).start(np.zeros((19, 8), dtype=np.float32)[:, :4])
        with pytest.raises(ValueError, match="depth must be at least 1"):
            Anderson(0)


def test_run_mixes_early_where_pressure_diffuses_slowly_along_the_box():
    # The rule of Run._slow, exactly: at check 10 a run through resolved pores is mixed when its pressure
    # diffusion time T = (L/2π)² φ ν / (c_s² k) exceeds 10 checks; otherwise only after 30 checks.
    from types import SimpleNamespace

    from physics._lbm_run import Run

    def run(k: float, length: int, checks: int) -> Run:
        lattice = SimpleNamespace(f=np.zeros((19, 2_000)))  # φ = 2,000 pore nodes / 10,000 = 0.2
        made = Run(lattice, scale=1.0, tol=1e-3, convergence="extrapolate", force=1e-6, tau=0.6,
                   size=10_000, anderson=5, length=length)  # fmt: skip
        made.history = [k] * checks
        return made

    nu = 0.1 / 3.0
    # T = (512 / 2π)² · 0.2 ν / (k / 3): 2,100 steps at k = 0.062 (the central 256³ Berea crop), 660 at k = 0.05
    # in a box of 256 (the 128³ sandstone)
    assert (512 / (2 * math.pi)) ** 2 * 0.2 * nu / (0.062 / 3) == pytest.approx(2_141, rel=1e-3)
    assert run(0.062, 512, 10)._slow(100)
    assert not run(0.062, 512, 9)._slow(100)  # decided at the 10th check only
    assert not run(0.062, 512, 11)._slow(100)
    assert not run(0.05, 256, 10)._slow(100)  # T ≈ 660 steps: the plain run converges
    assert run(0.05, 256, 30)._slow(100)  # ... or is mixed after 30 checks
    assert not run(0.062, 512, 10)._slow(250)  # T is compared with 10 checks of 250 steps
    assert not run(0.005, 4_096, 10)._slow(100)  # √(32 k/φ) < 1 voxel: thin throats keep the schedule
    assert not run(0.062, 0, 10)._slow(100)  # box length unknown


def test_plain_run_after_a_mixing_checks_twice_as_often():
    # Run._check_interval, exactly: half of check_every (even) once the run was mixed and stops on its
    # extrapolation; check_every before the mixing and with convergence="change", whose tol is per check.
    from types import SimpleNamespace

    from physics._lbm_run import Run

    def run(convergence: str, mixed: bool) -> Run:
        made = Run(SimpleNamespace(f=np.zeros((19, 10))), scale=1.0, tol=1e-3, convergence=convergence,
                   force=1e-6, tau=0.6, size=100, anderson=5)  # fmt: skip
        made.mixed = mixed
        return made

    assert run("extrapolate", True)._check_interval(100) == 50
    assert run("extrapolate", True)._check_interval(250) == 126  # 125, rounded up to an even number
    assert run("extrapolate", True)._check_interval(2) == 2  # steps go in pairs
    assert run("extrapolate", False)._check_interval(100) == 100
    assert run("change", True)._check_interval(100) == 100


def test_mixed_run_reaches_the_plain_steady_state(monkeypatch):
    # The mixing changes the route, not the destination: a mixed run started at the first checks ends
    # on the k of a plain run converged to a change below 1e-8 per 100 steps, within its reported error
    # (which is at least tol after a mixed phase). Measured: 1.0e-4 apart, error reported 1e-3.
    monkeypatch.setattr("physics._lbm_run._MIX_AFTER_CHECKS", 2)
    pore = blobs(24, 0.14, seed=1, sigma=1.5)  # barely connected: plain 2,402 steps at tol 1e-3
    reference = permeability(pore, tau=1.0, tol=1e-8, convergence="change", anderson=0, max_steps=200_000)
    mixed = permeability(pore, tau=1.0)
    assert reference.converged and mixed.converged
    assert abs(mixed.k - reference.k) / reference.k <= mixed.error_estimate
    assert mixed.error_estimate >= 1e-3
    # the torch backend mixes its tensors the same way: the same decisions, k to float32 round-off (1e-4,
    # as between the backends' plain runs)
    on_torch = permeability(pore, tau=1.0, backend="torch")
    assert on_torch.converged and on_torch.k == pytest.approx(mixed.k, rel=1e-4)
    # without mixing the run is the plain one, step for step
    monkeypatch.setattr("physics._lbm_run._MIX_AFTER_CHECKS", 10**9)
    assert permeability(pore, tau=1.0).steps == permeability(pore, tau=1.0, anderson=0).steps
