"""benchmarks.rock_sections: the S2 floor of a slice's correlations and the 2D cluster area (closed forms)."""

import numpy as np
import pytest

from benchmarks.rock_sections import cluster_area, rescaled_s2, s2_floor
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


def test_pieces_report_their_fractions_and_how_their_s2_rmse_follows_them():
    from benchmarks.rock_sections import piece_rmse

    # uncorrelated pores whose probability grows along z: each piece's S2 is φ at r = 0 and φ² beyond, so its
    # RMSE against the whole volume's grows with its fraction's distance from the whole's
    # (Pearson 0.991 for seeds 1-3: the offsets, 0.03-0.3, dwarf the sampling noise of S2 in a 40³ piece)
    rng = np.random.default_rng(1)
    scan = rng.random((120, 120, 120)) < np.linspace(0.1, 0.4, 120)[:, None, None]
    truth = describe(scan.astype(np.uint8), metrics=["fraction", "s2", "lineal_path"], phase=1, r_max=32)
    result = piece_rmse(scan, truth, side=40)
    corners = (0, 40, 80)
    fractions = [
        scan[i : i + 40, j : j + 40, k : k + 40].mean() for i in corners for j in corners for k in corners
    ]
    assert result["n"] == 27
    assert result["fraction_mean"] == pytest.approx(np.mean(fractions), abs=1e-12)
    assert result["fraction_sd"] == pytest.approx(np.std(fractions, ddof=1), abs=1e-12)
    assert result["pearson_with_fraction_offset"] > 0.9
