"""The pore and throat sizes of benchmarks.rock_throats against closed forms."""

import numpy as np

from benchmarks.rock_throats import critical_radius, pore_sizes, section_sizes


def _channel(width: int, throat: int | None = None) -> np.ndarray:
    """Solid (1) 32³ with a square pore channel (0) along z, centred; optionally narrower over z = 14 … 17."""
    volume = np.ones((32, 32, 32), np.uint8)
    lo = 16 - width // 2
    volume[:, lo : lo + width, lo : lo + width] = 0
    if throat is not None:
        volume[14:18] = 1
        t = 16 - throat // 2
        volume[14:18, t : t + throat, t : t + throat] = 0
    return volume


def test_critical_radius_of_square_channels():
    # the centre of a channel w voxels wide (w odd) lies (w + 1) / 2 voxels from the nearest solid voxel
    assert critical_radius(_channel(5) == 0) == 3.0
    assert critical_radius(_channel(7) == 0) == 4.0
    # a narrower throat anywhere along the path sets the radius: (3 + 1) / 2
    assert critical_radius(_channel(7, throat=3) == 0) == 2.0
    # flow along x meets solid faces: nothing percolates
    assert critical_radius(_channel(5) == 0, axis=2) == 0.0


def test_section_sizes_of_stripes():
    section = np.ones((64, 64), np.uint8)
    for start in range(4, 60, 8):
        section[:, start : start + 4] = 0  # pore stripes 4 wide, all inside the section along x
    sizes = section_sizes([section])
    # along x every pore chord is 4; along y the stripes run edge to edge and are left out.
    # 2D distances to the solid across a stripe: 1, 2, 2, 1 (exact in float64)
    assert sizes["section_chord"] == 4.0
    assert sizes["section_radius"] == 1.5


def test_pore_sizes_of_a_channel():
    sizes = pore_sizes(_channel(5))
    assert sizes["fraction"] == 25 / 32**2 and sizes["r_c"] == 3.0
    # interfaces: none along z; along y and x, 2 per line through the channel (5 lines of 32) of 31 pairs each
    # per plane: (2·5·32)/(31·32·32) per axis, averaged with z's 0
    assert np.isclose(sizes["interfaces"], (2 * 2 * 5 * 32 / (31 * 32 * 32)) / 3, rtol=1e-12)
