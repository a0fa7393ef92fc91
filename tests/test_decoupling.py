"""Local–global decoupling (paper Sec. 4): the local region a local model trains on, and the composed volume
with its global phase exactly where the mask says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import swnn
from swnn.api import training_input
from swnn.decoupling import compose, global_seed, local_region, parse_region, region_fraction
from swnn.model import NoiseSpec, TrainedModel
from swnn.network import SWNN


def _model(seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    net = SWNN(2, blocks=1, channels=4)
    return TrainedModel.from_network(net.eval(), threshold=0.0, noise=NoiseSpec(tile=8))


def test_label_region_fills_other_labels_from_the_nearest_region_pixel():
    image = np.array(
        [
            [1, 1, 0, 2, 2],
            [1, 0, 0, 0, 2],
        ],
        dtype=np.uint8,
    )
    region = local_region(image, "labels:1,2")
    # labels 1, 2 become 0, 1; each 0 takes its nearest region pixel's label (ties: the EDT's choice)
    assert region.dtype == np.uint8 and set(np.unique(region)) == {0, 1}
    assert region[0].tolist()[:2] == [0, 0] and region[0].tolist()[3:] == [1, 1]
    assert region[1, 0] == 0 and region[1, 4] == 1
    assert region[1, 1] == 0 and region[1, 3] == 1  # one step from 1 (left) and from 2 (right)
    # pixels of the region keep their (renumbered) label: the local phases' interfaces are the reference's
    inside = np.isin(image, (1, 2))
    assert np.array_equal(region[inside], image[inside] - 1)


def test_region_fraction_counts_only_pixels_inside_the_region():
    image = np.array([[0, 0, 0, 1], [2, 2, 1, 0]], dtype=np.uint8)
    # inside labels {1, 2}: 1, 2, 2, 1 -> renumbered 0, 1, 1, 0: half of them are local phase 1
    assert region_fraction(image, "labels:1,2", 1) == 0.5
    assert region_fraction([image, np.full((2, 2), 2, np.uint8)], "labels:1,2", 1) == 6 / 8
    assert region_fraction(image, "rect:0:2,0:2", 1) is None
    assert global_seed(4) != 4 and global_seed(4) == global_seed(4)


def test_rectangle_region_crops_and_renumbers():
    image = np.arange(20, dtype=np.uint8).reshape(4, 5) % 3
    region = local_region(image, "rect:1:3,2:5")
    assert region.shape == (2, 3)
    np.testing.assert_array_equal(region, np.searchsorted(np.unique(image[1:3, 2:5]), image[1:3, 2:5]))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("labels:", "expected labels:L1,L2"),
        ("rect:0:4", "expected labels"),
        ("rect:3:1,0:2", "expected labels"),
        ("blob:1", "expected labels"),
    ],
)
def test_bad_regions(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_region(spec)


def test_region_errors_name_what_is_wrong():
    image = np.zeros((4, 4), np.uint8)
    image[:2] = 1
    with pytest.raises(ValueError, match=r"labels \[5\] are not in the reference"):
        local_region(image, "labels:1,5")
    with pytest.raises(ValueError, match="reaches 9, beyond the reference's side 4"):
        local_region(image, "rect:0:9,0:2")
    with pytest.raises(ValueError, match="holds a single phase"):
        training_input(image, region="labels:1")


def test_compose_puts_the_global_phase_exactly_where_the_mask_says():
    rng = np.random.default_rng(0)
    mask = rng.random((6, 7, 8)) < 0.4
    local = rng.integers(0, 2, (6, 7, 8)).astype(np.uint8)
    for global_phase in (0, 1, 2):
        out = compose(mask, local, global_phase=global_phase)
        assert np.array_equal(out == global_phase, mask)
        # the local phases keep their order around the global one
        expected = np.where(local >= global_phase, local + 1, local)
        assert np.array_equal(out[~mask], expected[~mask])


def test_generate_with_a_global_mask_in_memory_and_streamed(tmp_path):
    local = _model(seed=1)
    shape = (12, 10, 9)
    mask = np.zeros(shape, np.uint8)
    mask[:, :, :4] = 3  # values 0 and 3: labels 0 and 1, as swnn reads labels (ascending order of value)
    plain = swnn.generate(local, shape, seed=2, device="cpu", block=8)
    composed = swnn.generate(local, shape, seed=2, device="cpu", block=8, global_mask=mask, global_label=1)
    assert np.array_equal(composed == 0, mask == 3)
    assert np.array_equal(composed[mask != 3], plain[mask != 3] + 1)
    np.save(tmp_path / "mask.npy", mask)
    path = swnn.generate_to(
        tmp_path / "v.npy", local, shape, seed=2, device="cpu", block=8,
        global_mask=tmp_path / "mask.npy", global_label=1,
    )  # fmt: skip
    assert np.array_equal(np.load(path), composed)  # streamed block by block = in memory
    provenance = json.loads((tmp_path / "v.npy.json").read_text())
    assert provenance["global_phase"] == 0 and provenance["n_phases"] == 3


def test_a_global_model_is_generated_with_the_same_seed_and_sample(tmp_path):
    local, global_model = _model(seed=1), _model(seed=5)
    global_model.save(tmp_path / "global.pt")
    shape = (10, 10, 10)
    where = swnn.generate(global_model, shape, seed=global_seed(4), sample=1, device="cpu") == 1
    composed = swnn.generate(
        local, shape, seed=4, sample=1, device="cpu", global_mask=tmp_path / "global.pt", global_label=1,
        global_phase=2,
    )  # fmt: skip
    assert np.array_equal(composed == 2, where)
    with pytest.raises(ValueError, match=r"global_mask array has shape \(2, 2, 2\)"):
        swnn.generate(local, shape, device="cpu", global_mask=np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="holds no voxel of label 7"):
        swnn.generate(local, shape, device="cpu", global_mask=np.zeros(shape, np.uint8), global_label=7)
    with pytest.raises(ValueError, match=r"global_phase must be an integer in 0..2"):
        swnn.generate(local, shape, device="cpu", global_mask=np.zeros(shape, np.uint8), global_phase=5)
