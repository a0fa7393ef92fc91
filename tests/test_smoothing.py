"""Smoothing of the logits before the threshold: the kernel, exact chunked generation, calibration, model files."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from swnn.calibration import with_smoothing
from swnn.generation import GenerationSettings, generate
from swnn.model import load_model
from swnn.smoothing import gaussian_kernel, smooth_logits, smoothing_radius
from swnn.training import TrainConfig, train
from tests.test_network_generation import _model
from tests.test_training_cli import TINY, _image, calibration_labels


@pytest.mark.parametrize("sigma, radius", [(0.0, 0), (0.3, 1), (0.6, 2), (1.0, 3), (1.5, 5)])
def test_kernel_is_a_normalised_symmetric_gaussian_of_radius_3_sigma(sigma, radius):
    kernel = gaussian_kernel(sigma).double()
    assert smoothing_radius(sigma) == radius and kernel.numel() == 2 * radius + 1
    assert abs(float(kernel.sum()) - 1.0) < 1e-6  # float32 weights normalised in float64
    assert torch.equal(kernel, kernel.flip(0))
    if sigma > 0:  # ratio of neighbouring taps: exp(−(2j + 1) / (2σ²)), the closed form of a sampled Gaussian
        expected = np.exp(-1.0 / (2 * sigma**2))
        assert float(kernel[radius + 1] / kernel[radius]) == pytest.approx(expected, rel=1e-5)


def test_smoothing_matches_scipy_gaussian_filter_on_the_valid_region():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 20, 18, 16)).astype(np.float32)
    sigma = 0.6
    radius = smoothing_radius(sigma)
    ours = smooth_logits(torch.from_numpy(logits)[None], sigma)[0].numpy()
    assert ours.shape == (2, 20 - 2 * radius, 18 - 2 * radius, 16 - 2 * radius)
    inner = (slice(radius, -radius),) * 3
    for c in range(2):
        # scipy's kernel of radius int(truncate·σ + 0.5) = 2, the same normalised weights; away from the edges
        # its boundary mode plays no part. float32 sums of order-1 values: agreement to 1e-5
        theirs = ndimage.gaussian_filter(logits[c].astype(np.float64), sigma, truncate=radius / sigma)[inner]
        np.testing.assert_allclose(ours[c], theirs, rtol=0, atol=1e-5)


def test_smoothing_keeps_a_constant_and_refuses_a_negative_sigma():
    constant = torch.full((1, 1, 9, 9, 9), 2.5)
    torch.testing.assert_close(smooth_logits(constant, 1.0), torch.full((1, 1, 3, 3, 3), 2.5))
    assert smooth_logits(constant, 0.0) is constant
    with pytest.raises(ValueError, match="smoothing must be a finite σ ≥ 0 in voxels"):
        smoothing_radius(-0.5)
    with pytest.raises(ValueError, match="training setting smoothing must be a σ in voxels from 0 to 4"):
        TrainConfig(smoothing=-1.0)


@pytest.mark.parametrize("n_phases", [2, 3])
def test_chunked_generation_with_smoothing_equals_whole_pass(n_phases):
    model = _model(n_phases=n_phases)
    model.metadata = model.metadata.replace(smoothing=0.8)
    assert model.halo == model.network.halo + 3
    shape = (13, 20, 11)
    whole = generate(
        model, shape, settings=GenerationSettings(block=64, seed=3, precision="fp32"), device="cpu"
    )
    for block in (2, 5, 8):
        chunked = generate(
            model, shape, settings=GenerationSettings(block=block, seed=3, precision="fp32"), device="cpu"
        )
        assert np.array_equal(chunked, whole), f"block {block} differs"  # the same noise, the same arithmetic
    plain = model.metadata.replace(smoothing=0.0)
    model.metadata = plain
    unsmoothed = generate(model, shape, settings=GenerationSettings(seed=3, precision="fp32"), device="cpu")
    assert not np.array_equal(unsmoothed, whole)  # the smoothing does act


def test_threshold_of_smoothed_logits_gives_the_target_fraction_and_with_smoothing_repeats_it(tmp_path):
    image = _image()
    config = TINY.replace(iterations=2, calibration_volumes=3)
    smoothed = train(image, config=config.replace(smoothing=0.8), progress=False, device="cpu").model
    assert smoothed.smoothing == 0.8
    pooled = calibration_labels(smoothed, config, volumes=3)
    # the threshold is the quantile of exactly these smoothed logits: the reference's fraction up to one voxel
    # and the ties of a quantile (see test_threshold_gives_the_target_fraction_on_all_calibration_volumes)
    assert abs(pooled.mean() - image.mean()) <= 2 / pooled.size
    plain = train(image, config=config, progress=False, device="cpu").model
    assert plain.smoothing == 0.0 and plain.threshold != smoothed.threshold
    # the smoothing does not enter the optimisation: the same weights, and the same thresholds set afterwards
    again = with_smoothing(plain, 0.8, device="cpu")
    assert again.model_hash() == smoothed.model_hash()
    assert again.metadata.thresholds == smoothed.metadata.thresholds
    assert plain.smoothing == 0.0  # the original is left as it was
    path = again.save(tmp_path / "smoothed.pt")
    loaded = load_model(path)
    assert loaded.smoothing == 0.8 and loaded.metadata.thresholds == smoothed.metadata.thresholds
