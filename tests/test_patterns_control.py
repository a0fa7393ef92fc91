"""Local patterns (Eq. 7) and the control strategy (Sec. 2.2.3)."""

import numpy as np
import pytest
import torch

from swnn.control import control_patterns, reachable_range
from swnn.patterns import (
    extract_patterns,
    n_patterns,
    phase_channels,
    section_lineal_path,
    section_two_point,
)


def test_patterns_are_all_windows():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 2, size=(12, 10))
    pats = extract_patterns(phase_channels(image, 2), 3)
    assert pats.shape == (n_patterns((12, 10), 3), 9)
    # brute force: window at (i, j), row-major, is row i·(W−k+1)+j
    for i, j in [(0, 0), (4, 7), (9, 2)]:
        expected = image[i : i + 3, j : j + 3].ravel()
        assert np.array_equal(pats[i * 8 + j].numpy(), expected)


def test_multiphase_channels_and_pooled_scale():
    image = np.array([[0, 1, 2, 2], [2, 1, 0, 0], [1, 1, 2, 0], [0, 0, 0, 2]])
    ch = phase_channels(image, 3)
    assert ch.shape == (1, 2, 4, 4)
    assert torch.equal(ch[0, 0], torch.from_numpy((image == 1).astype(np.float32)))
    pooled = extract_patterns(ch, 2, scale=2)  # one 2×2 window of the 2×2 pooled image
    assert pooled.shape == (1, 8)
    assert pooled[0, 0].item() == pytest.approx(((image == 1)[:2, :2]).mean())


def test_section_two_point_equals_physics_s2_on_indicators():
    from physics.correlation import two_point_probability

    image = (np.random.default_rng(3).random((37, 52)) < 0.3).astype(np.uint8)
    soft = section_two_point(torch.from_numpy(image.astype(np.float64))[None], 20)[0]
    # physics counts pairs as exact integers by block matrix products: the same estimator, so equal to
    # float64 round-off
    expected = two_point_probability(image, r_max=20).per_axis
    assert np.allclose(soft.numpy(), expected, rtol=0, atol=1e-12)


def test_section_two_point_rejects_a_lag_longer_than_the_field():
    with pytest.raises(ValueError, match="r_max must be in 0..9"):
        section_two_point(torch.zeros(1, 10, 30), 10)


def test_section_lineal_path_equals_physics_lineal_path_on_indicators():
    from scipy import ndimage

    from physics.lineal_path import lineal_path

    field = ndimage.gaussian_filter(np.random.default_rng(4).normal(size=(45, 38)), 3)
    image = (field > 0).astype(np.uint8)  # long runs, so L(r) stays non-zero far out
    ours = section_lineal_path(torch.from_numpy(image.astype(np.float64))[None], 30)[0]
    # physics counts segments from run-length histograms, an independent route to the same estimator:
    # equal to float64 round-off
    expected = lineal_path(image, r_max=30).per_axis
    assert expected[:, 30].min() > 0 and np.allclose(ours.numpy(), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="r_max must be in 0..37"):
        section_lineal_path(torch.zeros(1, 45, 38), 38)
    # differentiable: a product over the segment, so each pixel's gradient counts the all-phase segments it is in
    soft = torch.full((1, 4, 4), 1.0, dtype=torch.float64, requires_grad=True)
    section_lineal_path(soft, 1)[0, 0, 1].backward()  # L(1) along H: 12 vertical pairs, mean of products
    assert torch.allclose(soft.grad[0, :, 0], torch.tensor([1, 2, 2, 1], dtype=torch.float64) / 12)


def _along_diagonals(image: np.ndarray, r_max: int) -> tuple[np.ndarray, np.ndarray]:
    """S2 and L along (1, 1) and (1, −1), counted line by line over the diagonals (np.diagonal) and from their
    run lengths: a route independent of the shifted products of swnn.patterns. Shape (2, r_max + 1) each."""
    h, w = image.shape
    s2, lineal = np.zeros((2, r_max + 1)), np.zeros((2, r_max + 1))
    for d, im in enumerate((image, image[:, ::-1])):
        lines = [np.diagonal(im, offset).astype(np.int64) for offset in range(-h + 1, w)]
        for r in range(r_max + 1):
            pairs = (h - r) * (w - r)  # positions whose partner r steps on is inside
            s2[d, r] = (
                sum(int(np.dot(line[: len(line) - r], line[r:])) for line in lines if len(line) > r) / pairs
            )
            segments = 0
            for line in lines:
                edges = np.flatnonzero(np.diff(np.concatenate([[0], line, [0]])))
                runs = edges[1::2] - edges[::2]
                segments += int(np.maximum(runs - r, 0).sum())  # a run of n holds n − r segments of r + 1
            lineal[d, r] = segments / pairs
    return s2, lineal


def test_diagonal_curves_equal_a_count_along_each_diagonal():
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(5).normal(size=(41, 34)), 2.5)
    image = (field > 0.1).astype(np.uint8)
    tensor = torch.from_numpy(image.astype(np.float64))[None]
    s2 = section_two_point(tensor, 20, diagonals=True)[0]
    lineal = section_lineal_path(tensor, 20, diagonals=True)[0]
    expected_s2, expected_lineal = _along_diagonals(image, 20)
    # both count the same pairs and segments as exact integers over the same positions: float64 round-off
    assert np.allclose(s2[2:].numpy(), expected_s2, rtol=0, atol=1e-12)
    assert expected_lineal[:, 10].min() > 0 and np.allclose(
        lineal[2:].numpy(), expected_lineal, rtol=0, atol=1e-12
    )
    # the axis rows are those without diagonals
    assert torch.equal(s2[:2], section_two_point(tensor, 20)[0])
    assert torch.equal(lineal[:2], section_lineal_path(tensor, 20)[0])


def test_diagonal_curves_of_a_checkerboard_and_of_diagonal_stripes():
    i, j = np.indices((12, 12))
    board = torch.from_numpy(((i + j) % 2).astype(np.float64))[None]
    s2 = section_two_point(board, 5, diagonals=True)[0]
    # along the axes the colour alternates: S2 = ½, 0, ½, ...; along a diagonal it never changes, so S2(r) is
    # the phase's share of the (12 − r)² positions that have a partner (60 or 61 of 121 at odd r)
    assert torch.allclose(s2[0], torch.tensor([0.5, 0, 0.5, 0, 0.5, 0], dtype=torch.float64))
    for d, field in enumerate((board, board.flip(-1))):
        window = torch.stack([field[0, : 12 - r, : 12 - r].mean() for r in range(6)])
        assert torch.allclose(s2[2 + d], window, rtol=0, atol=1e-15)
    stripes = torch.from_numpy(((i - j) % 4 < 2).astype(np.float64))[None]
    lineal = section_lineal_path(stripes, 3, diagonals=True)[0]
    # stripes two pixels wide along (1, 1): a segment along them never leaves its stripe, so L(r) is the phase's
    # share of the segments' starting positions; along (1, −1) each step moves i − j by 2 and leaves the stripe
    window = torch.stack([stripes[0, : 12 - r, : 12 - r].mean() for r in range(4)])
    assert torch.allclose(lineal[2], window, rtol=0, atol=1e-15)
    assert lineal[3, 0] == pytest.approx(0.5) and torch.all(lineal[3, 1:] == 0)


def _labyrinth(seed=0, n=96):
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(n, n)), 3)
    return (field > np.quantile(field, 0.6)).astype(np.uint8)  # fraction 0.40


@pytest.mark.parametrize("eta", [0.15, 0.25, 0.55])
def test_control_reaches_target(eta):
    pats = extract_patterns(phase_channels(_labyrinth(), 2), 7)
    result = control_patterns(pats, eta, generator=torch.Generator().manual_seed(0))
    assert result.patterns.shape == pats.shape
    # The kept prefix/suffix overshoots η by at most one pattern's share (1/kept); the random remainder of r
    # patterns drawn from the kept ones shifts the mean by (r/N)·σ/√r in standard deviation, σ the spread of
    # the kept patterns' means: allow the overshoot plus four such deviations.
    n = pats.shape[0]
    r = n % result.kept
    sigma = pats.mean(dim=1).double().std().item()
    tolerance = 1 / result.kept + 4 * (r / n) * sigma / max(r, 1) ** 0.5
    assert result.achieved == pytest.approx(eta, abs=tolerance)
    assert tolerance < 0.01
    # rows are reference patterns
    assert set(map(tuple, result.patterns[:50].int().tolist())) <= set(map(tuple, pats.int().tolist()))


def test_control_prefix_is_the_shortest():
    pats = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])  # means 0, .5, 1, 1 → overall .625
    result = control_patterns(pats, 0.25)
    assert result.kept == 2  # means 0 and .5 average .25
    assert result.achieved == pytest.approx(0.25)
    result = control_patterns(pats, 0.9)
    assert (
        result.kept == 2 + 0 or result.kept == 3
    )  # suffix of the two 1s has mean 1 > .9; adding .5 gives .833
    assert result.kept == 3


def test_unreachable_target_names_the_range():
    pats = extract_patterns(phase_channels(_labyrinth(), 2), 7)
    lo, hi = reachable_range(pats)
    with pytest.raises(ValueError, match=r"reachable range for this template is \[0\.0000, 1\.0000\]"):
        control_patterns(pats, 1.2)
    assert (lo, hi) == (0.0, 1.0)
    sparse = extract_patterns(phase_channels(np.ones((20, 20), dtype=np.uint8), 2), 5)
    with pytest.raises(ValueError, match="unreachable"):
        control_patterns(sparse, 0.5)
