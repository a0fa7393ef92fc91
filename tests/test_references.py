"""Tests of swnn.references: built-in volumes, their cache, and loading references from specs."""

import numpy as np
import pytest

from swnn import references
from swnn.io import write_volume
from swnn.references import (
    REFERENCES,
    builtin_volume,
    describe_references,
    generate_builtin,
    load_reference,
    sections,
    training_section,
)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SWNN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def generated():
    """Each built-in generated once for the module (about 2 s in all)."""
    return {name: generate_builtin(name) for name in REFERENCES}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_builtin_is_deterministic(name, generated):
    # A second generation (through the cache-filling path, in an empty cache folder) is identical.
    np.testing.assert_array_equal(builtin_volume(name), generated[name])


@pytest.mark.parametrize("name", list(REFERENCES))
def test_builtin_labels_and_fraction(name, generated):
    reference = REFERENCES[name]
    volume = generated[name]
    assert volume.shape == reference.shape == (128, 128, 128)
    assert volume.dtype == np.uint8
    assert set(np.unique(volume).tolist()) == set(range(reference.n_phases))
    # Quantile thresholding hits the fraction to one voxel; particles overshoot by at most one sphere
    # (4/3 pi 7^3 / 128^3 < 0.001). 0.015 is the documented tolerance of the nominal fractions.
    assert abs((volume == 1).mean() - reference.fraction) < 0.015


def test_three_phase_fractions(generated):
    fractions = np.bincount(generated["three_phase"].ravel(), minlength=3) / 128**3
    np.testing.assert_allclose(fractions, [0.5, 0.3, 0.2], atol=1e-5)  # quantile cuts: exact to a voxel


@pytest.mark.parametrize("name", ["particles", "sandstone", "labyrinth", "cellular"])
def test_training_section_is_representative(name, generated):
    # The seeds and the tilt of the cellular grid were chosen so that the training section's area
    # fraction matches the volume fraction; 0.02 is about half of the slice-to-slice spread of sandstone.
    section = training_section(generated[name])
    assert abs(section.mean() - REFERENCES[name].fraction) < 0.02


def test_cache_is_reused(monkeypatch, isolated_cache, generated):
    calls = []
    generator, version = references._GENERATORS["particles"]

    def counting():
        calls.append(1)
        return generator()

    monkeypatch.setitem(references._GENERATORS, "particles", (counting, version))
    first = builtin_volume("particles")
    second = builtin_volume("particles")
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert [p.name for p in isolated_cache.iterdir()] == [f"builtin-particles-v{version}-128x128x128.npy"]


def test_corrupted_cache_is_regenerated(isolated_cache, generated):
    path = references._cache_path("particles")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_array_equal(builtin_volume("particles"), generated["particles"])
    np.testing.assert_array_equal(np.load(path), generated["particles"])


def test_cache_version_in_file_name(monkeypatch, isolated_cache):
    generator, version = references._GENERATORS["particles"]
    monkeypatch.setitem(references._GENERATORS, "particles", (generator, version + 1))
    assert references._cache_path("particles").name == f"builtin-particles-v{version + 1}-128x128x128.npy"


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SWNN_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert references.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SWNN_CACHE_DIR")
    assert references.cache_dir() == tmp_path / "xdg" / "swnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert references.cache_dir() == tmp_path / "home" / ".cache" / "swnn"


def test_describe_references():
    lines = describe_references()
    assert [line.split()[0] for line in lines] == list(REFERENCES)
    assert lines[0] == "particles    sparse round particles, phase 1 fraction 0.10, 128³"


def test_load_builtin(generated):
    reference = load_reference("builtin:labyrinth")
    assert reference.name == "builtin:labyrinth" and reference.source == "labyrinth"
    assert reference.n_phases == 2
    np.testing.assert_array_equal(reference.volume, generated["labyrinth"])
    np.testing.assert_array_equal(reference.image, generated["labyrinth"][64])
    assert len(reference.images) == 1 and reference.images[0] is reference.image


def test_load_unknown_builtin_lists_names():
    with pytest.raises(ValueError, match="'nope'.*particles, sandstone, labyrinth, cellular, three_phase"):
        load_reference("builtin:nope")


def test_load_builtin_rejects_file_options():
    with pytest.raises(ValueError, match="apply to files"):
        load_reference("builtin:particles", threshold=0.5)


def test_load_2d_file(tmp_path):
    image = np.array([[0, 255, 0], [255, 255, 0]], dtype=np.uint8)
    np.save(tmp_path / "ref.npy", image)
    reference = load_reference(str(tmp_path / "ref.npy"))
    assert reference.volume is None and reference.n_phases == 2
    np.testing.assert_array_equal(reference.image, image // 255)
    assert len(reference.images) == 1


def test_load_3d_file(tmp_path):
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 3, size=(6, 8, 10), dtype=np.uint8)
    path = tmp_path / "vol.raw"
    write_volume(path, volume, metadata={})
    reference = load_reference(str(path), shape=(6, 8, 10), dtype="uint8")
    assert reference.n_phases == 3 and reference.source == str(path)
    np.testing.assert_array_equal(reference.volume, volume)
    assert [image.shape for image in reference.images] == [(8, 10), (6, 10), (6, 8)]
    np.testing.assert_array_equal(reference.image, volume[3])
    for got, expected in zip(reference.images, (volume[3], volume[:, 4], volume[:, :, 5]), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_load_missing_file_mentions_builtins(tmp_path):
    with pytest.raises(FileNotFoundError, match="builtin:NAME"):
        load_reference(str(tmp_path / "missing.png"))


def test_sections_shapes():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    z, y, x = sections(volume)
    np.testing.assert_array_equal(z, volume[1])
    np.testing.assert_array_equal(y, volume[:, 1])
    np.testing.assert_array_equal(x, volume[:, :, 2])
    with pytest.raises(ValueError, match=r"shape \(Z, Y, X\)"):
        training_section(volume[0])
