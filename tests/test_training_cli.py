"""Training (Algorithm 1), saving and resuming, and the swnn command end to end (tiny settings)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from swnn.cli import main
from swnn.model import SCHEMA, NoiseSpec, load_model
from swnn.training import PROFILES, prepare_target, train

TINY = PROFILES["quick"].replace(
    iterations=4,
    section=24,
    scales=(1, 2),
    directions=16,
    blocks=2,
    channels=6,
    calibration_size=16,
    checkpoint_every=2,
    template=5,
)


def _image(seed=0, n=48):
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(n, n)), 2)
    return (field > np.quantile(field, 0.65)).astype(np.uint8)


def test_training_lowers_the_loss_and_hits_the_fraction():
    image = _image()
    # the paper's loss alone: the quick profile's two-point term is a floor that a 2-block network (lags ≤ 4)
    # cannot lower as much, which would hide how far the sliced-Wasserstein part falls
    config = TINY.replace(iterations=40, learning_rate=0.02, s2_weight=0.0)
    result = train(image, config=config, progress=False, device="cpu")
    losses = result.losses
    assert np.isfinite(losses).all()
    # the loss of the first iterations (random network) is well above that of the last ones
    assert losses[-5:].mean() < 0.7 * losses[:3].mean()
    meta = result.model.metadata
    assert meta.reference.fraction == pytest.approx(image.mean())
    volume = __import__("swnn.generation", fromlist=["generate"]).generate(
        result.model, (40, 40, 40), device="cpu"
    )
    # the fixed threshold was set on other noise of 16³: the fraction of a 40³ sample follows within the
    # sampling error of such small, correlated volumes (a few hundredths)
    assert abs(volume.mean() - image.mean()) < 0.05


def test_prepare_target_from_volume_uses_each_axis():
    volume = np.random.default_rng(0).integers(0, 2, size=(20, 24, 28)).astype(np.uint8)
    target = prepare_target(volume, TINY.replace(scales=(1,)))
    assert len(target.per_axis) == 3
    # sections normal to axis 0 are 24×28 → 3 sections × 20 × 24 windows of 5×5
    assert target.per_axis[0][0].shape == (3 * 20 * 24, 25)
    assert target.per_axis[2][0].shape == (3 * 16 * 20, 25)


def test_isotropic_target_pools_the_image_with_its_transpose():
    image = np.zeros((12, 18), np.uint8)
    image[:, ::3] = 1  # stripes along axis 0: the image's two axes differ
    config = TINY.replace(scales=(1,), template=3)
    target = prepare_target(image, config)
    windows = 10 * 16  # (12 − 2)(18 − 2) windows of 3×3 per image
    assert all(t[0].shape == (2 * windows, 9) for t in target.per_axis)
    rows = {tuple(r) for r in target.per_axis[0][0].int().tolist()}
    # a vertical stripe pattern comes from the image, a horizontal one only from its transpose
    assert (1, 0, 0, 1, 0, 0, 1, 0, 0) in rows and (1, 1, 1, 0, 0, 0, 0, 0, 0) in rows
    assert target.reference_fraction == pytest.approx(image.mean())  # the transpose changes no fraction
    plain = prepare_target(image, config.replace(isotropic=False))
    assert plain.per_axis[0][0].shape == (windows, 9)
    # 2D→2D keeps the image's own orientation
    assert prepare_target(image, config.replace(dim=2)).per_axis[0][0].shape == (windows, 9)


def test_each_iteration_compares_with_a_random_subset_of_a_large_target(monkeypatch):
    import swnn.training as training

    seen = []

    def recording(x, directions):
        seen.append(x.clone())
        return project_sorted(x, directions)

    project_sorted = training.project_sorted
    monkeypatch.setattr(training, "project_sorted", recording)
    config = TINY.replace(scales=(1,), target_sample=100)
    state = training.TrainingState.create(_image(), config, device="cpu")
    full = state.target.per_axis[0][0]
    assert full.shape[0] == 2 * 44 * 44  # the image and its transpose, 5×5 windows
    state.step()
    state.step()
    assert [t.shape[0] for t in seen] == [100, 100]  # one subset per iteration, shared by the three axes
    rows = {tuple(r) for r in full.tolist()}
    assert all(tuple(r) in rows for t in seen for r in t.tolist())
    assert not torch.equal(seen[0], seen[1])  # redrawn each iteration


def test_two_point_target_is_the_mean_s2_of_each_axis_images():
    from physics.correlation import two_point_probability

    image = np.zeros((30, 40), np.uint8)
    image[:, ::4] = 1  # stripes along axis 0: S2 differs between the image's axes
    config = TINY.replace(s2_weight=1.0)
    iso = prepare_target(image, config).s2
    s2 = two_point_probability(image, r_max=23).per_axis  # r ≤ section − 1 = 23
    both = (s2[0] + s2[1]) / 2  # the image pooled with its transpose: both axes see the mean
    # float32 storage of values in [0, 1]: 1e-7
    assert iso.shape == (3, 2, 24) and np.allclose(iso.numpy(), both, atol=1e-7)
    plain = prepare_target(image, config.replace(isotropic=False)).s2
    assert np.allclose(plain[1].numpy(), s2, atol=1e-7)  # each section axis keeps the image's axis
    assert prepare_target(image, config.replace(s2_weight=0.0)).s2 is None
    # under control the reference's S2 belongs to another fraction: no term
    assert prepare_target(image, config, target_fraction=0.3).s2 is None


def test_two_point_term_is_zero_for_sections_with_the_target_s2():
    import swnn.training as training

    image = _image(n=48)
    state = training.TrainingState.create(image, TINY.replace(s2_weight=1.0, section=48), device="cpu")
    section = torch.from_numpy(image.astype(np.float32))[None, None]
    exact = training._two_point_term([section, section.transpose(2, 3), section], state.target, 2)
    # the target is the mean of the image's two axes; the six rows of these three sections (rows and columns of
    # each) hold each axis three times, and rows sharing a target are averaged before squaring
    # (float32 sums of ≤ 2304 products: 1e-6 of φ(1 − φ))
    assert float(exact) < 1e-5
    # probabilities are binarised at ½ in the forward pass: 0.9 and 0.1 in place of 1 and 0 change nothing
    blurred = training._two_point_term([0.1 + 0.8 * section] * 3, state.target, 2)
    assert float(blurred) < 1e-5
    # ... but the gradient is that of the probabilities (straight-through), so training can move them
    probs = (0.2 + 0.6 * (1 - section)).requires_grad_(True)  # the complement: S2 far from the target
    term = training._two_point_term([probs] * 3, state.target, 2)
    term.backward()
    assert float(term.detach()) > 0.1  # S2 of the complement (φ ≈ 0.65) differs by φ(1 − φ) or more at r = 0
    assert probs.grad is not None and float(probs.grad.abs().sum()) > 0
    loss = state.step()  # the term enters the loss and its gradient
    assert np.isfinite(loss)


def test_curve_term_by_direction_sees_what_the_mean_over_directions_hides():
    import swnn.training as training

    wanted = torch.rand(1, 1, 9).expand(3, 2, 9)  # one isotropic target: all six rows share it
    # sections normal to z, y, x run along (y, x), (z, x), (z, y): y is short by δ and x long by δ
    delta, along = 0.01, [[1, 2], [0, 2], [0, 1]]
    sign = torch.tensor([[{0: 0.0, 1: -1.0, 2: 1.0}[d] for d in rows] for rows in along])
    generated = wanted + delta * sign[:, :, None]
    pooled = training._curve_term(generated, wanted, scale=1.0)
    split = training._curve_term(generated, wanted, scale=1.0, by_direction=True)
    # pooled: the six rows average to 0 (sqrt of the 1e-12 guard); by direction: z 0, y −δ, x +δ over 9 lags,
    # RMSE δ·sqrt(2/3) (float32 sums of order 1: 1e-6)
    assert float(pooled) < 1e-5
    assert float(split) == pytest.approx(delta * (2 / 3) ** 0.5, rel=1e-4)
    config = TINY.replace(s2_weight=1.0, lineal_weight=1.0, curve_directions=True)
    state = training.TrainingState.create(_image(n=48), config, device="cpu")
    assert np.isfinite(state.step())  # both terms by direction enter the loss


def test_lineal_term_is_zero_for_sections_with_the_target_lineal_path():
    import swnn.training as training
    from physics.lineal_path import lineal_path

    image = _image(n=48)
    config = TINY.replace(lineal_weight=1.0, s2_weight=0.0, section=48)
    state = training.TrainingState.create(image, config, device="cpu")
    assert state.target.s2 is None and state.target.lineal.shape == (3, 2, 33)
    both = lineal_path(image, r_max=32).per_axis.mean(axis=0)  # the image pooled with its transpose
    # float32 storage of values in [0, 1]: 1e-7
    assert np.allclose(state.target.lineal[0].numpy(), both[None], atol=1e-7)
    section = torch.from_numpy(image.astype(np.float32))[None, None]
    exact = training._lineal_term([section, section.transpose(2, 3), section], state.target)
    # float32 means of ≤ 2304 products of 0/1: 1e-6 of φ
    assert float(exact) < 1e-5
    probs = (0.2 + 0.6 * (1 - section)).requires_grad_(True)  # the complement: L far from the target
    term = training._lineal_term([probs] * 3, state.target)
    term.backward()
    assert float(term.detach()) > 0.1 and float(probs.grad.abs().sum()) > 0
    assert np.isfinite(state.step())
    assert prepare_target(image, config, target_fraction=0.3).lineal is None


def test_diagonal_curve_terms_hold_the_sections_diagonals_to_the_references():
    import swnn.training as training
    from swnn.patterns import section_lineal_path, section_two_point

    image = _image(n=48)
    config = TINY.replace(s2_weight=1.0, lineal_weight=1.0, section=48, curve_diagonals=True)
    state = training.TrainingState.create(image, config, device="cpu")
    assert state.target.s2.shape == (3, 4, 33) and state.target.lineal.shape == (3, 4, 33)
    field = torch.from_numpy((image == 1).astype(np.float64))[None]
    # the image and its transpose share their diagonals' curves ((1, 1) maps to itself, (1, −1) to its reverse),
    # so the target's diagonal rows are the image's own; float32 storage of values in [0, 1]: 1e-7
    for got, function in ((state.target.s2, section_two_point), (state.target.lineal, section_lineal_path)):
        own = function(field, 32, diagonals=True)[0, 2:].numpy()
        assert np.allclose(got[0, 2:].numpy(), own, atol=1e-7)
    section = torch.from_numpy(image.astype(np.float32))[None, None]
    sections = [section, section.transpose(2, 3), section]
    halo = state.network.halo
    for by_direction in (False, True):
        # the reference's own sections: float32 means of ≤ 2304 products of 0/1, 1e-6 of the scale
        assert float(training._two_point_term(sections, state.target, halo, by_direction)) < 1e-5
        assert float(training._lineal_term(sections, state.target, by_direction)) < 1e-5
    # diagonal stripes instead: their curves along (1, 1) stay high where the reference's fall, and far off
    i, j = np.indices(image.shape)
    stripes = torch.from_numpy(((i - j) % 8 < 3).astype(np.float32))[None, None]
    assert float(training._two_point_term([stripes] * 3, state.target, halo)) > 0.1
    assert np.isfinite(state.step())


def calibration_labels(model, config, *, volumes):
    """The generated labels of the model's calibration volumes, pooled (flat)."""
    from swnn.generation import GenerationSettings, generate

    side = config.calibration_size
    settings = GenerationSettings(seed=config.seed, precision="fp32")
    return np.concatenate(
        [
            generate(model, (side,) * 3, settings=settings, sample=2**31 - 1 - v, device="cpu").ravel()
            for v in range(volumes)
        ]
    )


def test_threshold_gives_the_target_fraction_on_all_calibration_volumes():
    image = _image()
    config = TINY.replace(iterations=2, calibration_volumes=3)
    model = train(image, config=config, progress=False, device="cpu").model
    pooled = calibration_labels(model, config, volumes=3)
    # the threshold is the quantile of exactly these 3·16³ logits: their fraction is the reference's up to
    # one voxel and the ties of a quantile (1/12288 per voxel)
    assert abs(pooled.mean() - image.mean()) <= 2 / pooled.size


def test_control_sets_the_target_fraction():
    image = _image()
    target = prepare_target(image, TINY, target_fraction=0.2, generator=torch.Generator().manual_seed(0))
    assert target.target_fraction == 0.2 and target.controlled
    assert target.per_axis[0][0] is not None
    for pats in target.per_axis[0]:
        if pats is not None:
            assert pats.mean().item() == pytest.approx(0.2, abs=0.01)  # see test_control_reaches_target
    with pytest.raises(ValueError, match="reachable range"):
        prepare_target(image, TINY, target_fraction=1.5)


def test_control_leaves_out_a_coarse_scale_it_cannot_reach():
    # 8×8-pooled 5×5 patterns of a fine labyrinth average close to its fraction 0.35: η = 0.05 is reachable by
    # the 5×5 template (all-zero windows exist) but not by the pooled patterns, which are then left out.
    config = TINY.replace(scales=(1, 8), section=48)
    image = np.tile(_image(n=48), (2, 2))
    target = prepare_target(image, config, target_fraction=0.05, generator=torch.Generator().manual_seed(0))
    assert target.per_axis[0][0] is not None and target.per_axis[0][1] is None
    result = train(
        image, config=config.replace(iterations=2), target_fraction=0.05, progress=False, device="cpu"
    )
    assert np.isfinite(result.losses).all()


def test_save_load_weights_only_and_resume(tmp_path):
    out = tmp_path / "m.pt"
    first = train(_image(), config=TINY, output=out, progress=False, device="cpu")
    blob = torch.load(out, weights_only=True)  # no pickled module inside
    assert blob["format"] == "swnn-model/1"
    model = load_model(out)
    assert model.model_hash() == first.model.model_hash()
    sidecar = json.loads((tmp_path / "m.pt.json").read_text())
    assert sidecar["model_sha256"] == model.model_hash() and sidecar["training"]["config"]["iterations"] == 4
    with pytest.raises(FileExistsError, match="force=True"):
        train(_image(), config=TINY, output=out, progress=False)

    # An interrupted run resumes from its checkpoint and ends where an uninterrupted one ends.
    class Stop(Exception):
        pass

    interrupted = tmp_path / "r.pt"
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def failing_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Stop
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = failing_step
    try:
        with pytest.raises(Stop):
            train(_image(), config=TINY, output=interrupted, progress=False, device="cpu")
    finally:
        torch.optim.Adam.step = original
    assert not interrupted.exists() and (tmp_path / "r.pt.ckpt").exists()
    resumed = train(_image(), config=TINY, output=interrupted, progress=False, device="cpu")
    assert not (tmp_path / "r.pt.ckpt").exists()
    assert np.allclose(resumed.losses, first.losses, rtol=1e-5)


def test_models_saved_with_schema_1_metadata_still_load(tmp_path):
    # schema 1: no schema key, no per-precision thresholds, no whitening entry
    out = tmp_path / "m.pt"
    trained = train(_image(), config=TINY, output=out, progress=False, device="cpu").model
    blob = torch.load(out, weights_only=True)
    meta = json.loads(blob["metadata_json"])
    assert meta["schema"] == SCHEMA
    for key in ("schema", "thresholds", "fraction_at_zero_logit", "controlled"):
        del meta[key]
    del meta["noise"]["whiten"]
    del meta["dilations"]
    blob["metadata_json"] = json.dumps(meta)
    torch.save(blob, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")
    assert old.network.dilations == (1, 1) and old.metadata.dilations is None  # the paper's blocks
    assert (
        old.metadata.schema == SCHEMA and old.metadata.thresholds is None and old.metadata.noise.whiten == 0
    )
    assert old.metadata.threshold == trained.metadata.threshold and old.threshold_for("fp32") == old.threshold
    assert old.metadata.reference == trained.metadata.reference
    # a file written by a newer swnn is refused by name, not as a corrupted file
    meta["schema"] = 99
    blob["metadata_json"] = json.dumps(meta)
    torch.save(blob, tmp_path / "new.pt")
    with pytest.raises(ValueError, match=r"new.pt: model metadata of schema 99, newer than this swnn reads"):
        load_model(tmp_path / "new.pt")


def test_cli_train_generate_end_to_end(tmp_path, capsys):
    np.save(tmp_path / "ref.npy", _image() * 255)
    model = tmp_path / "m.pt"
    args = [
        "--iterations",
        "3",
        "--section",
        "24",
        "--scales",
        "1",
        "--directions",
        "8",
        "--blocks",
        "2",
        "--channels",
        "4",
        "--template",
        "5",
        "--quiet",
    ]
    assert main(["train", str(tmp_path / "ref.npy"), "-o", str(model), *args]) == 0
    # the quick profile pools the image with its transpose unless told not to
    assert load_model(model).metadata.training["config"]["isotropic"] is True
    plain = tmp_path / "plain.pt"
    extra = ["--no-isotropic", "--s2-weight", "0.5", "--lineal-weight", "0.25", "--curve-diagonals"]
    assert main(["train", str(tmp_path / "ref.npy"), "-o", str(plain), *extra, *args]) == 0
    saved = load_model(plain).metadata.training["config"]
    assert saved["isotropic"] is False and saved["s2_weight"] == 0.5 and saved["lineal_weight"] == 0.25
    assert (
        saved["curve_diagonals"] is True
        and load_model(model).metadata.training["config"]["curve_diagonals"] is False
    )
    assert load_model(plain).metadata.noise == NoiseSpec("standard normal", tile=32, whiten=32)
    assert (
        main(
            [
                "generate",
                str(model),
                "-o",
                str(tmp_path / "v.tif"),
                "--size",
                "20",
                "--samples",
                "2",
                "--block",
                "8",
                "--quiet",
            ]
        )
        == 0
    )
    import tifffile

    a, b = tifffile.imread(tmp_path / "v_0.tif"), tifffile.imread(tmp_path / "v_1.tif")
    assert a.shape == (20, 20, 20) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert not np.array_equal(a, b)
    meta = json.loads((tmp_path / "v_0.tif.json").read_text())
    assert meta["seed"] == 0 and meta["sample"] == 0 and len(meta["model_sha256"]) == 64
    # no overwrite without --force, one clear line, no traceback
    assert (
        main(["generate", str(model), "-o", str(tmp_path / "v.tif"), "--size", "20", "--samples", "2"]) == 2
    )
    err = capsys.readouterr().err
    assert "exists; pass --force" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "builtin:nope", "-o", "x.pt"], "available: particles"),
        (["train", "missing.png", "-o", "x.pt"], "no such file"),
        (["generate", "missing.pt", "-o", "v.npy", "--size", "8"], "does not exist"),
        (
            ["train", "builtin:labyrinth", "-o", "x.pt", "--fraction", "1.5", "--iterations", "1"],
            "reachable range",
        ),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()


def test_command_starts_without_heavy_imports():
    code = "import sys; from swnn.cli import main; main(['references']); print(sorted(m for m in ('torch', 'tifffile', 'zarr', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_two_dimensional_training_and_three_phases():
    from swnn.generation import generate

    two_d = train(_image(), config=TINY.replace(dim=2), progress=False, device="cpu")
    image = generate(two_d.model, (1, 30, 30), device="cpu")
    assert image.shape == (1, 30, 30) and set(np.unique(image)) <= {0, 1}

    rng = np.random.default_rng(0)
    labels = np.digitize(rng.random((48, 48)), [0.5, 0.8]).astype(np.uint8)  # fractions 0.5 / 0.3 / 0.2
    three = train(labels, config=TINY, progress=False, device="cpu")
    assert three.model.network.n_phases == 3 and three.model.metadata.threshold is None
    volume = generate(three.model, (12, 12, 12), device="cpu")
    assert volume.max() <= 2


def test_training_leaves_the_global_random_state_alone():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    first = train(_image(), config=TINY.replace(iterations=1), progress=False, device="cpu").model
    assert torch.equal(torch.rand(3), expected)  # the caller's stream continues as if nothing ran
    second = train(_image(), config=TINY.replace(iterations=1), progress=False, device="cpu").model
    assert first.model_hash() == second.model_hash()  # the seed in the settings alone fixes the model


def test_named_random_streams_are_independent_across_seeds():
    from swnn.training import STREAMS, random_streams

    seeds = [random_streams(seed) for seed in range(50)]
    values = [v for streams in seeds for v in streams.values()]
    assert len(set(values)) == len(values) == 50 * len(STREAMS)  # no stream of any seed repeats another's
    assert random_streams(3) == random_streams(3) and all(0 <= v < 2**63 for v in values)


def test_a_training_image_too_small_for_its_material_is_warned_about(tmp_path, capsys):
    from swnn.training import RepresentativityWarning

    # 8 × 8 blocks on a 48² image: A = 64 pixels, so a fraction of 0.35 is known to ±1.96·sqrt(0.35·0.65·64/48²)
    # = ±0.16 (this image's estimate: A = 52, ±0.14), 0.4 of the fraction: far above REPRESENTATIVE_HALF_WIDTH
    blocks = (np.random.default_rng(3).random((6, 6)) < 0.35).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    with pytest.warns(RepresentativityWarning, match=r"known only to ±0\.1"):
        model = train(blocks, config=TINY, progress=False, device="cpu").model
    assert model.metadata.reference.integral_range > 0 and model.metadata.reference.fraction_std > 0
    # a 128² image of independent pixels knows its fraction to ±0.007: no warning
    iid = (np.random.default_rng(4).random((128, 128)) < 0.35).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepresentativityWarning)
        prepare = prepare_target(iid, TINY)
        assert prepare.representativity.integral_range == pytest.approx(1, abs=0.2)
        train(iid, config=TINY.replace(iterations=1), progress=False, device="cpu")
    # the command line prints it as one line, before training
    np.save(tmp_path / "blocks.npy", blocks)
    argv = ["train", str(tmp_path / "blocks.npy"), "-o", str(tmp_path / "m.pt"), "--iterations", "1"]
    tiny = ["--section", "24", "--scales", "1", "--template", "5", "--blocks", "2", "--channels", "4"]
    assert main([*argv, *tiny, "--no-control-map", "--quiet", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("swnn train: warning: the training image is small"), lines
    assert "± 0.1" in captured.out  # the reference's fraction and its 95 % half-width


def test_training_on_chosen_slices_of_a_volume(tmp_path, capsys):
    from swnn.api import training_input, volume_sections

    volume = np.stack([_image(seed) for seed in range(48)])  # (48, 48, 48) labels
    sections, n_phases, name = training_input(volume, slices=["0:5", (2, 7)])
    np.testing.assert_array_equal(sections[0], volume[5])
    np.testing.assert_array_equal(sections[1], volume[:, :, 7])
    assert n_phases == 2 and name == "array [slices 0:5 2:7]"
    for bad, message in (
        (["3:0"], "must be AXIS:INDEX"),
        (["1:48"], "slice 1:48 is beyond"),
        ([], "at least one"),
    ):
        with pytest.raises(ValueError, match=message):
            volume_sections(volume, bad)
    np.save(tmp_path / "v.npy", volume)
    tiny = ["--section", "24", "--scales", "1", "--template", "5", "--blocks", "2", "--channels", "4"]
    argv = ["train", str(tmp_path / "v.npy"), "-o", str(tmp_path / "m.pt"), "--iterations", "1", *tiny]
    assert main([*argv, "--slices", "0:5", "1:9", "--no-control-map", "--quiet", "--device", "cpu"]) == 0
    assert load_model(tmp_path / "m.pt").metadata.reference.name.endswith("[slices 0:5 1:9]")
    np.save(tmp_path / "image.npy", volume[0])
    argv[1] = str(tmp_path / "image.npy")
    assert main([*argv, "--slices", "0:0", "--force", "--quiet"]) == 2  # a 2D reference has no slices
    assert "--slices needs a 3D reference" in capsys.readouterr().err


def test_dilated_blocks_train_save_and_load(tmp_path):
    # blocks of dilations 1 and 3: halo 4, so a 24² section is cut from a slab 9 voxels thick; the model file
    # keeps the dilations, and the loaded network is the trained one (same logits on the same noise)
    config = TINY.replace(dilations=(1, 3))
    out = tmp_path / "d.pt"
    trained = train(_image(), config=config, output=out, progress=False, device="cpu").model
    assert trained.network.dilations == (1, 3) and trained.network.receptive_field == 9
    loaded = load_model(out)
    assert loaded.metadata.dilations == (1, 3) and loaded.network.dilations == (1, 3)
    assert json.loads((tmp_path / "d.pt.json").read_text())["training"]["config"]["dilations"] == [1, 3]
    noise = torch.randn(1, 3, 12, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded.network(noise), trained.network.eval()(noise))
    assert main(["generate", str(out), "-o", str(tmp_path / "v.npy"), "--size", "20", "--quiet"]) == 0
    assert np.load(tmp_path / "v.npy").shape == (20, 20, 20)
    # one spacing per block, each at least 1
    for bad in ((1,), (1, 0)):
        with pytest.raises(ValueError, match="training setting dilations must be"):
            TINY.replace(dilations=bad)
    assert main(["train", "x.png", "-o", str(tmp_path / "b.pt"), "--blocks", "2", "--dilations", "1"]) == 2


def _tiny_train_argv(tmp_path, out) -> list[str]:
    """`swnn train` of the test image into ``out`` with tiny settings: 2 blocks, 16² sections, 2 iterations."""
    image = tmp_path / "image.npy"
    np.save(image, _image())
    argv = ["train", str(image), "-o", str(out), "--iterations", "2", "--section", "16", "--blocks", "2"]
    return [*argv, "--channels", "4", "--directions", "8", "--template", "3", "--scales", "1", "--quiet"]


def test_coarse_noise_trains_saves_and_loads(tmp_path, capsys):
    # coarse noise of 3³ cubes: halo 2 + 1 = 3; the model file keeps the side, and the loaded network is the
    # trained one (same logits on the same noise), through `swnn train` and `swnn generate`
    out = tmp_path / "c.pt"
    argv = _tiny_train_argv(tmp_path, out)
    assert main([*argv, "--coarse-noise", "3"]) == 0
    loaded = load_model(out)
    assert loaded.metadata.coarse_noise == 3 and loaded.network.coarse == 3 and loaded.network.halo == 3
    assert json.loads((tmp_path / "c.pt.json").read_text())["training"]["config"]["coarse_noise"] == 3
    out_api = tmp_path / "c-api.pt"
    trained = train(
        _image(), config=TINY.replace(coarse_noise=3), output=out_api, progress=False, device="cpu"
    )
    noise = torch.randn(1, 3, 12, 12, 12)
    with torch.no_grad():
        logits = trained.model.network.eval()(noise)
        assert logits.shape == (1, 1, 6, 6, 6)
        assert torch.equal(load_model(out_api).network(noise), logits)
    assert main(["generate", str(out), "-o", str(tmp_path / "v.npy"), "--size", "20", "--quiet"]) == 0
    assert np.load(tmp_path / "v.npy").shape == (20, 20, 20)
    # an odd side of at least 3, or 0
    for bad in (1, 2, 4):
        with pytest.raises(ValueError, match="training setting coarse_noise must be"):
            TINY.replace(coarse_noise=bad)
    capsys.readouterr()
    assert main([*argv, "--coarse-noise", "4", "--force"]) == 2
    assert "--coarse-noise must be 0 (none), an odd side of at least 3 voxels" in capsys.readouterr().err


def test_coarse_noise_of_several_sides_trains_saves_and_loads(tmp_path, capsys):
    # sides 3 and 5: halo 2 + 2 = 4, two extra sets of noise channels; the model file lists both sides, and the
    # loaded network is the trained one (same logits on the same noise)
    out = tmp_path / "c.pt"
    argv = _tiny_train_argv(tmp_path, out)
    assert main([*argv, "--coarse-noise", "3", "5"]) == 0
    loaded = load_model(out)
    assert loaded.metadata.coarse_noise == (3, 5) and loaded.network.coarse_sides == (3, 5)
    assert loaded.network.halo == 4 and loaded.network.convs[0].in_channels == 9
    meta = json.loads((tmp_path / "c.pt.json").read_text())
    assert meta["coarse_noise"] == [3, 5] and meta["training"]["config"]["coarse_noise"] == [3, 5]
    trained = train(
        _image(),
        config=TINY.replace(coarse_noise=[3, 5]),
        output=tmp_path / "a.pt",
        progress=False,
        device="cpu",
    )
    assert trained.model.metadata.coarse_noise == (3, 5)
    noise = torch.randn(1, 3, 12, 12, 12)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "a.pt").network(noise), trained.model.network.eval()(noise))
    assert main(["generate", str(out), "-o", str(tmp_path / "v.npy"), "--size", "20", "--quiet"]) == 0
    assert np.load(tmp_path / "v.npy").shape == (20, 20, 20)
    # one side given as a list is that side; 0 given once is none
    assert (
        TINY.replace(coarse_noise=[7]).coarse_noise == 7 and TINY.replace(coarse_noise=(0,)).coarse_noise == 0
    )
    # increasing odd sides of at least 3
    for bad in ((5, 3), (3, 3), (3, 4), (1, 3)):
        with pytest.raises(ValueError, match="training setting coarse_noise must be"):
            TINY.replace(coarse_noise=bad)
    capsys.readouterr()
    assert main([*argv, "--coarse-noise", "5", "3", "--force"]) == 2
    assert "--coarse-noise must be 0 (none), an odd side" in capsys.readouterr().err
