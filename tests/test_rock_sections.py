"""benchmarks.rock_sections: the S2 floor of a slice's correlations and the 2D cluster area (closed forms)."""

import numpy as np
import pytest

from benchmarks.rock_sections import cluster_area, connected_fraction, rescaled_s2, s2_floor
from physics import describe


def test_cluster_area_is_the_pixel_weighted_mean():
    # clusters of 3 and 1 pixels (4-connected; the diagonal neighbour is a cluster of its own): (3·3 + 1·1) / 4
    section = np.zeros((5, 5), bool)
    section[0, 0:3] = True
    section[1, 3] = True
    assert cluster_area([section]) == pytest.approx(2.5)
    assert cluster_area([np.zeros((4, 4), bool)]) == 0.0


def test_floor_is_zero_for_the_image_against_itself_and_grows_with_the_fraction_offset():
    rng = np.random.default_rng(0)
    image = rng.random((96, 96)) < 0.3
    own = describe(image.astype(np.uint8), metrics=["fraction", "s2"], phase=1, r_max=32)
    per_axis = np.asarray(own["s2"]["mean"])[None].repeat(3, axis=0)
    phi = own["fraction"]
    floor = s2_floor(image, per_axis, (phi, phi + 0.01, phi + 0.02))
    values = list(floor.values())
    assert values[0] < 1e-12  # the image's own S2, put back at its own fraction
    assert 0 < values[1] < values[2]
    # closed form of the rescaling: r = 0 gives φ', and an uncorrelated tail (f = 0) gives φ'²
    assert rescaled_s2(np.array([1.0, 0.0]), 0.2).tolist() == pytest.approx([0.2, 0.04])


def test_connected_fraction_closed_forms():
    # one 8² window: a full row 3 and, cut off from it, rows 5-7 of column 6
    section = np.zeros((8, 8), bool)
    section[3, :] = True
    section[5:8, 6] = True
    # from the first column: the 8 pixels of the row; from the first row: none (nothing touches row 0)
    assert connected_fraction([section], 8) == pytest.approx(8 / 22)
    section[0:5, 6] = True  # the full column crosses the row and touches row 0: all 15 pixels, both ways
    assert connected_fraction([section], 8) == pytest.approx(1.0)
    assert connected_fraction([np.zeros((8, 8), bool)], 8) == 0.0
