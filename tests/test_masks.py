"""Spatial location masks and continuous control (paper Sec. 3.3, Fig. 11–12): exact chunk invariance,
closed-form mask values, the calibrated map and its inverse, and graded generation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import swnn
from swnn.continuous import ControlMap, calibrate_control, monotonic_stretch
from swnn.generation import GenerationSettings, generate
from swnn.masks import MaskTransform, mask_from_array, parse_mask
from swnn.model import NoiseSpec, TrainedModel
from swnn.network import SWNN
from swnn.noise import NoiseField


def _model(n_phases: int = 2, seed: int = 0) -> TrainedModel:
    """An untrained network with non-trivial BatchNorm statistics, thresholded at its median logit."""
    torch.manual_seed(seed)
    net = SWNN(n_phases, blocks=2, channels=8)
    with torch.no_grad():
        for norm in net.norms:
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
        logits = net.eval()(
            torch.from_numpy(NoiseField(seed=99, tile=8).region((0, 0, 0), (16, 16, 16)))[None]
        )
    return TrainedModel.from_network(net, threshold=float(logits[:, 0].median()), noise=NoiseSpec(tile=8))


LINEAR_MAP = ControlMap(shifts=(-1.0, 0.0, 1.0), fractions=(0.9, 0.5, 0.1), phase=1)


# ----------------------------------------------------------------------------------------------------------
# masks: values


def test_mask_specifications_have_their_closed_form_values():
    shape = (5, 8, 6)
    gradient = parse_mask("gradient:1:0.2..0.9", shape).full()
    assert gradient.shape == shape and gradient.dtype == np.float32
    np.testing.assert_allclose(gradient[0, :, 0], np.linspace(0.2, 0.9, 8), rtol=1e-6)
    assert np.ptp(gradient, axis=(0, 2)).max() == 0  # constant across the other axes
    band = parse_mask("band:2:0.25..0.75", shape).full()
    # voxel centres (i + 0.5) / 6 = 0.083, 0.25, 0.417, 0.583, 0.75, 0.917: in [0.25, 0.75) for i = 1, 2, 3
    assert band[0, 0].tolist() == [0, 1, 1, 1, 0, 0]
    layers = parse_mask("layers:0:5:0.3:0.7", shape).full()
    np.testing.assert_allclose(layers[:, 0, 0], [0.3, 0.7, 0.3, 0.7, 0.3], rtol=1e-6)
    assert parse_mask("constant:0.4", shape).full().min() == pytest.approx(0.4)
    # a sphere of radius 0.3 (of the side) in a 60³ cube holds 4/3 π 18³ voxels, within the voxelisation
    # error of its surface (about 4π r² · 0.5 voxels, 8 % of the volume at r = 18; 3 % is well inside it)
    sphere = parse_mask("sphere:0.5,0.5,0.5:0.3", (60, 60, 60)).full()
    assert sphere.sum() == pytest.approx(4 / 3 * np.pi * 18**3, rel=0.03)
    assert sphere[30, 30, 30] == 1 and sphere[0, 0, 0] == 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gradient:0", "expected gradient:AXIS:A..B"),
        ("gradient:x:0..1", "axis must be 0, 1 or 2"),
        ("band:0:0.8..0.2", "0 <= LO < HI <= 1"),
        ("sphere:0.5,0.5:0.2", "three coordinates"),
        ("layers:1:0", "at least 1"),
        ("constant:nan", "finite"),
        ("cube:1", "unknown kind 'cube'"),
        ("nothing", "expected KIND:ARGUMENTS"),
    ],
)
def test_bad_mask_specifications(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_mask(spec, (4, 4, 4))


def test_label_masks_map_each_label():
    labels = np.array([[[0, 1], [2, 1]]], dtype=np.uint8)
    mask = mask_from_array(labels, values={0: 0.0, 1: 0.5, 2: 1.0})
    np.testing.assert_array_equal(mask.full(), [[[0.0, 0.5], [1.0, 0.5]]])
    assert mask_from_array(labels[:, :1, :]).full().tolist() == [[[0.0, 1.0]]]  # 0/1 labels as they are
    with pytest.raises(ValueError, match="give mask_values"):
        mask_from_array(labels)
    with pytest.raises(ValueError, match=r"no value for labels \[2\]"):
        mask_from_array(labels, values={0: 0.0, 1: 1.0})


def test_mask_reads_output_voxel_minus_halo_clipped():
    mask = parse_mask("gradient:2:0..1", (3, 3, 11))
    block = mask.block((0, 0, 0), (1, 1, 15), halo=2)  # input x 0..14 -> output x −2..12, clipped to 0..10
    expected = np.clip(np.arange(15) - 2, 0, 10) / 10
    np.testing.assert_allclose(block[0, 0], expected, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# masks: generation


@pytest.mark.parametrize("n_phases", [2, 3])
@pytest.mark.parametrize(
    "mode, spec", [("multiply", "sphere:0.5,0.3,0.6:0.4:1:0.2"), ("offset", "gradient:2:0.2..0.8")]
)
def test_masked_chunked_generation_equals_masked_whole_generation(n_phases, mode, spec):
    model = _model(n_phases=n_phases)
    shape = (13, 20, 11)
    mask = parse_mask(spec, shape)
    shift = LINEAR_MAP.field_transform(model.network.noise_channels) if mode == "offset" else None
    transforms = [MaskTransform(mask, halo=model.network.halo, mode=mode, shift=shift)]

    def run(block):
        settings = GenerationSettings(block=block, seed=3, precision="fp32")
        return generate(model, shape, settings=settings, device="cpu", transforms=transforms)

    whole = run(64)
    plain = generate(
        model, shape, settings=GenerationSettings(block=64, seed=3, precision="fp32"), device="cpu"
    )
    assert not np.array_equal(whole, plain)  # the mask acts
    for block in (2, 5, 8):
        # exact: each block reads the same masked noise through the same arithmetic
        assert np.array_equal(run(block), whole), f"block {block} differs"


def test_zero_multiply_mask_gives_the_networks_constant_output():
    """Y = G(X·M) with M = 0 is G(0): the same label everywhere (the input is constant)."""
    model = _model()
    settings = GenerationSettings(block=16, seed=1, precision="fp32")
    transforms = [MaskTransform(parse_mask("constant:0", (8, 8, 8)), halo=model.network.halo)]
    volume = generate(model, (8, 8, 8), settings=settings, device="cpu", transforms=transforms)
    assert len(np.unique(volume)) == 1


# ----------------------------------------------------------------------------------------------------------
# continuous control


def test_monotonic_stretch_keeps_the_monotonic_part_around_zero():
    # the authors' released M1 (../shared/REFERENCES.md): 0.28 / 0.95 / 0.10 / 0.00 at −0.5 / −0.25 / 0 / +0.25
    assert monotonic_stretch([-0.5, -0.25, 0.0, 0.25], [0.28, 0.95, 0.10, 0.0]) == (1, 3)
    assert monotonic_stretch([-1, 0, 1, 2], [0.1, 0.2, 0.3, 0.3]) == (0, 2)  # a flat end is not monotonic
    assert monotonic_stretch([-1, 0, 1], [0.4, 0.4, 0.4]) == (1, 1)


def test_control_map_inverse_and_reachable_range():
    np.testing.assert_allclose(LINEAR_MAP.shift_for([0.9, 0.7, 0.5, 0.1]), [-1.0, -0.5, 0.0, 1.0], atol=1e-7)
    assert LINEAR_MAP.reachable == (0.1, 0.9)
    with pytest.raises(ValueError, match=r"0.95 .* outside the range this model reaches .* 0.1000..0.9000"):
        LINEAR_MAP.shift_for(0.95)
    assert ControlMap.from_dict(json.loads(json.dumps(LINEAR_MAP.to_dict()))) == LINEAR_MAP
    # the offset of each channel: s · up for s > 0, |s| · down for s < 0 (here up = 1, down = −1: linear)
    two_rays = ControlMap(LINEAR_MAP.shifts, LINEAR_MAP.fractions, 1, direction=(1, 0), direction_down=(0, 1))
    scale, offset = two_rays.affine([-2.0, 0.0, 3.0], 2)
    np.testing.assert_allclose(scale, 1) and np.testing.assert_allclose(offset, [[0, 0, 3], [2, 0, 0]])
    np.testing.assert_allclose(LINEAR_MAP.affine([-2.0, 3.0], 2)[1], [[-2, 3], [-2, 3]])
    # a scaling ray: x (1 + s) above 0, x / (1 + |s|) below
    scaled = ControlMap(
        LINEAR_MAP.shifts, LINEAR_MAP.fractions, 1, direction="scale+", direction_down="scale-"
    )
    scale, offset = scaled.affine([-1.0, 0.0, 0.5], 3)
    np.testing.assert_allclose(scale, [0.5, 1.0, 1.5]) and np.testing.assert_allclose(offset, 0)
    assert ControlMap.from_dict(json.loads(json.dumps(scaled.to_dict()))) == scaled


@pytest.fixture(scope="module")
def calibrated():
    model = _model(seed=4)
    control_map = calibrate_control(model, shape=(24, 24, 24), samples=2, precision="fp32", device="cpu")
    model.metadata = model.metadata.replace(control_map=control_map.to_dict())
    return model, control_map


def test_calibrated_map_is_strictly_monotonic_and_reproduces_its_fractions(calibrated):
    model, control_map = calibrated
    fractions = np.asarray(control_map.fractions)
    # the path runs along two rays (unit vectors of the channel space, the diagonal or a scaling), the
    # fraction rising with the signed shift
    for ray in (control_map.direction, control_map.direction_down):
        assert ray in ("diagonal", "diagonal-", "scale+", "scale-") or np.linalg.norm(ray) == pytest.approx(
            1.0
        )
    assert (np.diff(fractions) > 0).all()
    assert 0.0 in control_map.shifts  # the stretch holds shift 0
    low, high = control_map.reachable
    assert high - low > 0.5  # the untrained network's fraction moves over most of [0, 1]
    # at a calibration shift, the same noise (seed, samples) gives back the recorded fraction exactly
    i = len(fractions) // 2
    settings = GenerationSettings(block=24, seed=2**31 - 7, precision="fp32")
    transforms = [control_map.transform(control_map.fractions[i], model.network.noise_channels)]
    measured = np.mean(
        [
            np.mean(
                generate(model, (24,) * 3, settings=settings, sample=s, device="cpu", transforms=transforms)
                == 1
            )
            for s in range(2)
        ]
    )
    assert measured == pytest.approx(fractions[i], abs=1e-12)


def test_fraction_profile_rises_monotonically_along_its_axis(calibrated):
    model, control_map = calibrated
    low, high = control_map.reachable
    a, b = low + 0.1 * (high - low), high - 0.1 * (high - low)
    volume = swnn.generate(
        model, (16, 16, 96), seed=7, block=32, fraction_profile=f"2:{a}..{b}", device="cpu"
    )
    slabs = (volume == 1).reshape(16, 16, 4, 24).mean(axis=(0, 1, 3))
    # requested slab means step by (b − a)/4 ≥ 0.1 here, far above the sampling error of a 16×16×24 slab
    assert np.all(np.diff(slabs) > 0), slabs
    wanted = a + (b - a) * (np.arange(4) * 24 + 11.5) / 95
    assert np.abs(slabs - wanted).max() < 0.1, (slabs, wanted)


def test_generate_with_a_fraction_calibrates_a_model_without_a_map_and_stores_it(tmp_path):
    model = _model(seed=4)
    path = tmp_path / "m.pt"
    model.save(path)
    assert swnn.load_model(path).control_map is None
    volume = swnn.generate(path, 32, seed=1, fraction=0.3, device="cpu")
    stored = swnn.load_model(path)
    assert stored.control_map is not None and stored.model_hash() == model.model_hash()
    assert abs(np.mean(volume == 1) - 0.3) < 0.1  # one 32³ sample of an untrained network: a loose check
    out = swnn.generate_to(tmp_path / "v.npy", stored, 16, fraction=0.3, device="cpu")
    provenance = json.loads((tmp_path / "v.npy.json").read_text())
    assert out.exists() and provenance["fraction"] == 0.3 and "noise_shift" in provenance


def test_requests_are_exclusive_and_checked():
    model = _model()
    with pytest.raises(ValueError, match="give one of fraction, fraction_profile and mask"):
        swnn.generate(model, 8, fraction=0.3, mask="constant:1", device="cpu")
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        swnn.generate(model, 8, fraction=1.2, device="cpu")
    with pytest.raises(ValueError, match="mask_mode must be one of"):
        swnn.generate(model, 8, mask="constant:1", mask_mode="add", device="cpu")
    with pytest.raises(ValueError, match=r"has shape \(4, 4, 4\); the volume's is \(8, 8, 8\)"):
        swnn.generate(model, 8, mask=np.ones((4, 4, 4), np.float32), device="cpu")
