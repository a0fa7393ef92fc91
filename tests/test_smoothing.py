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
    with pytest.raises(
        ValueError, match="training setting smoothing must be 'auto' or a σ in voxels from 0 to 4"
    ):
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


@pytest.mark.parametrize(
    "sigma, message",
    [
        ("-1", "swnn smooth: error: --smoothing must be a finite σ ≥ 0 in voxels, got -1.0"),
        ("5", "swnn smooth: error: --smoothing must be a σ in voxels from 0 to 4, got 5.0"),
    ],
)
def test_cli_smooth_sets_the_smoothing_and_refuses_a_bad_sigma_in_one_line(tmp_path, capsys, sigma, message):
    from swnn.cli import main

    model = train(_image(), config=TINY.replace(iterations=2), progress=False, device="cpu").model
    path = model.save(tmp_path / "model.pt")
    out = tmp_path / "smoothed.pt"
    argv = ["smooth", str(path), "-o", str(out), "--device", "cpu", "--quiet"]
    assert main([*argv, "--smoothing", "0.8"]) == 0
    smoothed = load_model(out)
    assert smoothed.smoothing == 0.8 and smoothed.model_hash() == model.model_hash()
    assert smoothed.threshold != model.threshold
    capsys.readouterr()
    bad = tmp_path / "bad.pt"
    assert main([*argv[:3], str(bad), *argv[4:], "--smoothing", sigma]) == 2
    err = capsys.readouterr().err.strip()
    assert err == message and not bad.exists()
    assert main([*argv, "--smoothing", "0.5"]) == 2  # the output exists: refused without --force
    assert "--force" in capsys.readouterr().err


def test_interface_density_closed_forms():
    from swnn.target import interface_density

    checkerboard = np.indices((6, 7)).sum(axis=0) % 2
    stripes = np.repeat(
        (np.arange(6) % 2)[:, None], 7, axis=1
    )  # rows alternate: every pair along axis 0 differs
    assert interface_density([checkerboard]) == 1.0
    assert interface_density([np.zeros((5, 5, 5))]) == 0.0
    assert interface_density([stripes]) == pytest.approx((5 * 7) / (5 * 7 + 6 * 6), abs=1e-12)
    # pooled over arrays: pairs counted, not arrays averaged
    assert interface_density([checkerboard, np.zeros((6, 7))]) == 0.5


def test_fit_smoothing_recovers_the_sigma_of_a_measured_interface_density():
    import torch

    from swnn.calibration import SIGMA_MAX, SmoothingWarning, fit_smoothing
    from swnn.target import interface_density

    config = TINY.replace(iterations=2, calibration_volumes=4)
    model = train(_image(), config=config, progress=False, device="cpu").model
    side = config.calibration_size

    def density(sigma):  # of the labels generation gives on the 4 calibration volumes
        labels = calibration_labels(with_smoothing(model, sigma, device="cpu"), config, volumes=4)
        return interface_density(list(labels.reshape(4, side, side, side)))

    settings = {
        "n_phases": 2,
        "phase": model.metadata.phase,
        "target_fraction": model.metadata.target_fraction,
        "device": torch.device("cpu"),
    }
    fitted = fit_smoothing(model.network, config, interface_density=density(0.8), **settings)
    # the same volumes, thresholds and smoothing as generation: the bisection (8 halvings of [0, 2], steps of
    # 0.008) lands on 0.8 up to that step and the plateaus of a count of 4·16³ voxels
    assert abs(fitted - 0.8) <= 0.02
    assert density(0.0) > density(0.8) > density(SIGMA_MAX)  # smoothing removes interfaces
    assert fit_smoothing(model.network, config, interface_density=1.0, **settings) == 0.0
    # an unreachable density: the widest σ, and a warning that names the densities and the likely cause
    with pytest.warns(
        SmoothingWarning, match=r"even σ = 2 voxels leaves 0\.\d{4} interfaces .* 0\.0000.*seed"
    ):
        assert fit_smoothing(model.network, config, interface_density=1e-6, **settings) == SIGMA_MAX


# two iterations leave the network's output much finer than the image, so auto may stop at its bound and warn
@pytest.mark.filterwarnings("ignore::swnn.calibration.SmoothingWarning")
def test_auto_smoothing_is_recorded_as_the_sigma_chosen_and_is_none_with_a_target_fraction():
    import torch

    from swnn.calibration import fit_smoothing
    from swnn.target import interface_density

    image = _image()
    config = TINY.replace(iterations=2, smoothing="auto")
    model = train(image, config=config, progress=False, device="cpu").model
    assert model.metadata.training["config"]["smoothing"] == "auto"
    settings = {
        "n_phases": 2,
        "phase": 1,
        "target_fraction": float(image.mean()),
        "device": torch.device("cpu"),
    }
    fitted = fit_smoothing(model.network, config, interface_density=interface_density([image]), **settings)
    assert model.smoothing == fitted  # the same network after training, the same volumes: the same bisection
    controlled = train(image, config=config, target_fraction=0.3, progress=False, device="cpu").model
    assert controlled.smoothing == 0.0  # the reference's interfaces belong to its own fraction
    with pytest.raises(
        ValueError, match="training setting smoothing must be 'auto' or a σ in voxels from 0 to 4"
    ):
        TrainConfig(smoothing="sometimes")


def _squares() -> np.ndarray:
    """Squares of 16 pixels on 64²: 1/16 of the neighbour pairs of each row cross an interface (0.0625 here).
    One iteration leaves the network's output near its initial noise, whose labels cross one every few voxels
    even at σ = 2 (0.1 per pair on the fit above), so auto stops at its bound."""
    return (np.add.outer(np.arange(64) // 16, np.arange(64) // 16) % 2).astype(np.uint8)


def test_auto_smoothing_that_cannot_reach_the_reference_warns_in_one_line(tmp_path, capsys):
    from swnn.cli import main

    np.save(tmp_path / "squares.npy", _squares())
    argv = ["train", str(tmp_path / "squares.npy"), "-o", str(tmp_path / "m.pt"), "--iterations", "1"]
    tiny = ["--section", "24", "--scales", "1", "--template", "5", "--blocks", "2", "--channels", "4"]
    assert main([*argv, *tiny, "--smoothing", "auto", "--no-control-map", "--quiet", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "smoothing" in line]  # (this small
    # image also has the representativity warning)
    assert len(lines) == 1 and lines[0].startswith("swnn train: warning: smoothing 'auto': even σ = 2"), lines
    assert load_model(tmp_path / "m.pt").smoothing == 2.0


def test_a_stalled_run_is_trained_again_from_the_next_seed():
    from swnn.calibration import SmoothingWarning
    from swnn.training import _settings_key, prepare_target

    squares = _squares()  # one iteration stalls every seed (auto at its bound), so each retry runs
    config = TINY.replace(iterations=1, section=24, smoothing="auto", retries=1, seed=5)
    with pytest.warns(SmoothingWarning) as caught:
        model = train(squares, config=config, progress=False, device="cpu").model
    messages = [str(w.message) for w in caught if issubclass(w.category, SmoothingWarning)]
    assert len(messages) == 2, messages
    assert (
        messages[0].startswith("training with seed 5 stalled")
        and "again with seed 6 (retry 1 of 1)" in messages[0]
    )
    assert messages[1].startswith("smoothing 'auto': even σ = 2")  # the last run's, kept
    attempts = model.metadata.training["attempts"]
    assert [a["seed"] for a in attempts] == [5, 6] and all(a["smoothing"] == 2.0 for a in attempts)
    # each run's seconds of iterations, so that a retry's cost can be read back
    assert all(a["seconds"] > 0 for a in attempts)
    assert model.metadata.training["config"]["seed"] == 6 and model.smoothing == 2.0
    # the last run is the seed-6 run itself: the same weights as training seed 6 without retries
    with pytest.warns(SmoothingWarning):
        alone = train(squares, config=config.replace(seed=6, retries=0), progress=False, device="cpu").model
    assert alone.model_hash() == model.model_hash()
    # a run that does not stall is kept: independent pixels have more interfaces than any smoothed output
    iid = (np.random.default_rng(0).random((64, 64)) < 0.5).astype(np.uint8)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", SmoothingWarning)
        kept = train(iid, config=config, progress=False, device="cpu").model
    assert [a["seed"] for a in kept.metadata.training["attempts"]] == [5] and kept.smoothing == 0.0
    # the number of retries does not change a run: a checkpoint stays valid
    target = prepare_target(squares, config)
    assert _settings_key(config, target, "x") == _settings_key(config.replace(retries=0), target, "x")
    with pytest.raises(ValueError, match="retries must be an integer ≥ 0"):
        TrainConfig(retries=-1)
