"""Tests of swnn.io: label mapping, readers, atomic writers with provenance.

Every comparison here is exact (labels are integers and every format is lossless), so there are no
tolerances.
"""

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from swnn.io import (
    VolumeWriter,
    atomic_write,
    read_image,
    read_microstructure,
    read_volume,
    sidecar_path,
    to_labels,
    write_png,
    write_volume,
)


@pytest.fixture
def labels2d():
    """A (12, 10) image of labels 0, 1, 2, every label present."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 3, size=(12, 10), dtype=np.uint8)
    image[0, :3] = [0, 1, 2]
    return image


@pytest.fixture
def labels3d():
    """A (9, 12, 10) volume of labels 0, 1, 2, every label present."""
    rng = np.random.default_rng(11)
    volume = rng.integers(0, 3, size=(9, 12, 10), dtype=np.uint8)
    volume[0, 0, :3] = [0, 1, 2]
    return volume


METADATA = {
    "seed": 42,
    "model_hash": "sha256:abc123",
    "version": "0.1.0",
    "voxel_size": 0.5,
    "phases": [0, 1, 2],
}


def _only(folder):
    """Names in ``folder`` (to check that no temporary file was left behind)."""
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------------------------------------
# to_labels
# ---------------------------------------------------------------------------------------------------------


def test_to_labels_maps_0_255_to_0_1():
    image = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(to_labels(image), [[0, 1], [1, 0]])


def test_to_labels_three_grey_levels_in_ascending_order():
    image = np.array([[200, 10], [50, 200]], dtype=np.uint8)
    labels = to_labels(image)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, [[2, 0], [1, 2]])


@pytest.mark.parametrize(
    "image",
    [
        np.array([[-5, 3], [3, 100]], dtype=np.int16),
        np.array([[0.25, 0.5], [0.5, 1.0]], dtype=np.float32),
        np.array([[1000, 2000], [2000, 65535]], dtype=np.uint16),
        np.array([[-1.0, 0.0], [0.0, 7.5]]),
    ],
)
def test_to_labels_other_dtypes(image):
    np.testing.assert_array_equal(to_labels(image), [[0, 1], [1, 2]])


def test_to_labels_bool():
    np.testing.assert_array_equal(to_labels(np.array([True, False])), [1, 0])


def test_to_labels_returns_labels_unchanged(labels2d):
    assert to_labels(labels2d) is labels2d


def test_to_labels_too_many_grey_levels():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    with pytest.raises(ValueError, match="found 256 grey levels") as info:
        to_labels(image, source="ref.png")
    message = str(info.value)
    assert message.startswith("ref.png:")
    assert "segmented" in message and "threshold=T" in message


def test_to_labels_threshold():
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    labels = to_labels(image, threshold=127.5)
    np.testing.assert_array_equal(labels.ravel(), (np.arange(256) > 127.5).astype(np.uint8))


def test_to_labels_threshold_leaving_one_phase():
    with pytest.raises(ValueError, match="single phase"):
        to_labels(np.arange(10.0), threshold=100.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_to_labels_non_finite(bad):
    with pytest.raises(ValueError, match="NaN or infinite"):
        to_labels(np.array([0.0, 1.0, bad]))


def test_to_labels_single_phase():
    with pytest.raises(ValueError, match="at least 2 phases"):
        to_labels(np.full((4, 4), 9, dtype=np.uint8))
    np.testing.assert_array_equal(to_labels(np.full((2, 2), 9), min_phases=1), np.zeros((2, 2)))


def test_to_labels_wrong_dtype():
    with pytest.raises(TypeError, match="dtype"):
        to_labels(np.array(["a", "b"]))


# ---------------------------------------------------------------------------------------------------------
# Reading 2D images
# ---------------------------------------------------------------------------------------------------------


def _save_2d(path, image):
    suffix = path.suffix
    if suffix in (".png", ".bmp"):
        Image.fromarray(image).save(path)
    elif suffix == ".tif":
        tifffile.imwrite(path, image)
    else:
        np.save(path, image)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".npy"])
def test_read_image_round_trip(tmp_path, labels2d, suffix):
    path = tmp_path / f"ref{suffix}"
    _save_2d(path, labels2d)
    image = read_image(path)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, labels2d)
    np.testing.assert_array_equal(read_microstructure(path), labels2d)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".npy"])
def test_read_image_grey_levels(tmp_path, labels2d, suffix):
    # Labels stored as grey levels 0/127/255, the usual way of saving a segmented image for viewing.
    path = tmp_path / f"ref{suffix}"
    _save_2d(path, (labels2d * 127).astype(np.uint8))
    np.testing.assert_array_equal(read_image(path), labels2d)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_read_image_rgb_with_equal_channels(tmp_path, labels2d, mode):
    path = tmp_path / "ref.png"
    grey = labels2d * np.uint8(100)
    Image.fromarray(grey).convert(mode).save(path)
    with Image.open(path) as saved:
        assert saved.mode == mode
    np.testing.assert_array_equal(read_image(path), labels2d)


def test_read_image_rgb_tiff_with_equal_channels(tmp_path, labels2d):
    path = tmp_path / "ref.tif"
    tifffile.imwrite(path, np.repeat(labels2d[..., None], 3, axis=-1), photometric="rgb")
    np.testing.assert_array_equal(read_image(path), labels2d)


def test_read_image_rgb_with_unequal_channels(tmp_path, labels2d):
    path = tmp_path / "ref.png"
    rgb = np.stack([labels2d, labels2d, 2 - labels2d], axis=-1) * np.uint8(100)
    Image.fromarray(rgb).save(path)
    with pytest.raises(ValueError, match="unequal R, G, B"):
        read_image(path)


def test_read_image_threshold(tmp_path):
    path = tmp_path / "grey.png"
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey).save(path)
    with pytest.raises(ValueError, match="segmented.*threshold=T"):
        read_image(path)
    np.testing.assert_array_equal(read_image(path, threshold=99), grey > 99)


def test_read_image_missing_file(tmp_path):
    path = tmp_path / "nothing.png"
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        read_image(path)


def test_read_image_unknown_extension(tmp_path):
    path = tmp_path / "ref.jpg"
    path.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"'\.jpg'.*accepted: \.png, \.bmp, \.tif, \.tiff, \.npy"):
        read_image(path)


def test_read_image_rejects_a_volume(tmp_path, labels3d):
    path = tmp_path / "vol.npy"
    np.save(path, labels3d)
    with pytest.raises(ValueError, match=r"expected a 2D image"):
        read_image(path)


# ---------------------------------------------------------------------------------------------------------
# Reading 3D volumes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_volume_round_trip(tmp_path, labels3d, suffix):
    path = tmp_path / f"vol{suffix}"
    write_volume(path, labels3d, metadata=METADATA)
    raw_options = {"shape": labels3d.shape, "dtype": "uint8"} if suffix == ".raw" else {}
    volume = read_volume(path, **raw_options)
    assert volume.dtype == np.uint8
    np.testing.assert_array_equal(volume, labels3d)
    np.testing.assert_array_equal(read_microstructure(path, **raw_options), labels3d)
    assert _only(tmp_path) == sorted([path.name, path.name + ".json"])


def test_read_volume_foreign_files(tmp_path, labels3d):
    grey = (labels3d * 100).astype(np.uint16)  # grey levels 0/100/200 -> labels 0/1/2
    tifffile.imwrite(tmp_path / "stack.tif", grey)
    np.testing.assert_array_equal(read_volume(tmp_path / "stack.tif"), labels3d)
    np.save(tmp_path / "vol.npy", grey)
    np.testing.assert_array_equal(read_volume(tmp_path / "vol.npy"), labels3d)
    grey.astype(">u2").tofile(tmp_path / "vol.raw")
    np.testing.assert_array_equal(
        read_volume(tmp_path / "vol.raw", shape=labels3d.shape, dtype=">u2"), labels3d
    )


def test_read_volume_zarr_group_with_one_array(tmp_path, labels3d):
    path = tmp_path / "group.zarr"
    group = zarr.open_group(str(path), mode="w")
    array = group.create_array("volume", shape=labels3d.shape, dtype="uint8")
    array[...] = labels3d
    np.testing.assert_array_equal(read_volume(path), labels3d)
    group.create_array("other", shape=(2, 2, 2), dtype="uint8")
    with pytest.raises(ValueError, match="exactly one array.*other.*volume|exactly one array.*volume.*other"):
        read_volume(path)


def test_read_raw_needs_shape_and_dtype(tmp_path, labels3d):
    path = tmp_path / "vol.raw"
    labels3d.tofile(path)
    with pytest.raises(ValueError, match="needs its shape and dtype"):
        read_volume(path)
    with pytest.raises(ValueError, match="needs its shape and dtype"):
        read_volume(path, shape=labels3d.shape)


def test_read_raw_size_mismatch(tmp_path, labels3d):
    path = tmp_path / "vol.raw"
    labels3d.tofile(path)
    with pytest.raises(ValueError, match=r"expected 2160 bytes, found 1080 bytes"):
        read_volume(path, shape=(9, 12, 10), dtype="<u2")


@pytest.mark.parametrize("member", ["stack.tif", "data/vol.npy", "vol.raw"])
def test_read_volume_from_a_zip_archive(tmp_path, labels3d, member):
    grey = labels3d.astype(np.uint8) * 100  # grey levels 0/100/200 -> labels 0/1/2
    source = tmp_path / Path(member).name
    if source.suffix == ".tif":
        tifffile.imwrite(source, grey)
    elif source.suffix == ".npy":
        np.save(source, grey)
    else:
        grey.tofile(source)
    archive = tmp_path / "scan.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(source, member)
        zf.writestr("__MACOSX/._stack.tif", b"resource fork")  # ignored, as are folders and dot files
        zf.writestr("README.txt", b"not an image")
    raw_options = {"shape": labels3d.shape, "dtype": "uint8"} if source.suffix == ".raw" else {}
    np.testing.assert_array_equal(read_volume(archive, **raw_options), labels3d)
    np.testing.assert_array_equal(read_microstructure(archive, **raw_options), labels3d)


def test_read_image_from_a_zip_archive(tmp_path, labels2d):
    Image.fromarray(labels2d * 100).save(tmp_path / "image.png")
    with zipfile.ZipFile(tmp_path / "image.zip", "w") as zf:
        zf.write(tmp_path / "image.png", "image.png")
    np.testing.assert_array_equal(read_image(tmp_path / "image.zip"), labels2d)


def test_zip_archive_must_hold_one_readable_file(tmp_path, labels3d):
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:
        zf.writestr("a.npy", b"")
        zf.writestr("b.tif", b"")
    with pytest.raises(ValueError, match="exactly one image or volume file.*found: a.npy, b.tif"):
        read_volume(tmp_path / "two.zip")
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as zf:
        zf.writestr("notes.txt", b"x")
    with pytest.raises(ValueError, match="found: none"):
        read_volume(tmp_path / "none.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="bad.zip: not a readable zip archive"):
        read_volume(tmp_path / "bad.zip")


def test_read_volume_rejects_an_image(tmp_path, labels2d):
    np.save(tmp_path / "image.npy", labels2d)
    with pytest.raises(ValueError, match="expected a 3D volume"):
        read_volume(tmp_path / "image.npy")


def test_read_volume_accepts_a_single_phase(tmp_path):
    np.save(tmp_path / "vol.npy", np.full((2, 3, 4), 255, dtype=np.uint8))
    np.testing.assert_array_equal(read_volume(tmp_path / "vol.npy"), np.zeros((2, 3, 4)))


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_volume_writer_streams_blocks(tmp_path, labels3d, suffix):
    # Blocks of (3, 6, 5) in z-slab order (what the TIFF writer requires), the last slab partial in x.
    path = tmp_path / f"vol{suffix}"
    with VolumeWriter(path, labels3d.shape, metadata=METADATA, chunks=(4, 4, 4)) as writer:
        for z in range(0, 9, 3):
            for y in range(0, 12, 6):
                for x in (slice(0, 5), slice(5, None)):
                    index = (slice(z, z + 3), slice(y, y + 6), x)
                    writer.write(index, labels3d[index])
        assert not path.exists()  # only renamed into place on success
    raw_options = {"shape": labels3d.shape, "dtype": "uint8"} if suffix == ".raw" else {}
    np.testing.assert_array_equal(read_volume(path, **raw_options), labels3d)


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_provenance_sidecar(tmp_path, labels3d, suffix):
    path = tmp_path / f"vol{suffix}"
    write_volume(path, labels3d, metadata={**METADATA, "seed": np.int64(42), "shape": labels3d.shape})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar == {**METADATA, "shape": [9, 12, 10], "dtype": "uint8", "format": suffix[1:]}


def test_provenance_in_zarr_attributes(tmp_path, labels3d):
    path = tmp_path / "vol.zarr"
    write_volume(path, labels3d, metadata=METADATA)
    assert dict(zarr.open_array(str(path), mode="r").attrs) == METADATA


def test_provenance_in_tiff_description(tmp_path, labels3d):
    path = tmp_path / "vol.tif"
    write_volume(path, labels3d, metadata=METADATA)
    with tifffile.TiffFile(path) as tif:
        description = json.loads(tif.pages[0].description)
        assert len(tif.pages) == labels3d.shape[0]
    assert description == {"shape": [9, 12, 10], **METADATA}


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_existing_output_needs_force(tmp_path, labels3d, suffix):
    path = tmp_path / f"vol{suffix}"
    write_volume(path, labels3d, metadata=METADATA)
    with pytest.raises(FileExistsError, match="exists; pass force=True to overwrite"):
        write_volume(path, labels3d, metadata=METADATA)
    write_volume(path, 2 - labels3d, metadata={"seed": 1}, force=True)
    raw_options = {"shape": labels3d.shape, "dtype": "uint8"} if suffix == ".raw" else {}
    np.testing.assert_array_equal(read_volume(path, **raw_options), 2 - labels3d)
    assert json.loads(sidecar_path(path).read_text())["seed"] == 1
    assert _only(tmp_path) == sorted([path.name, path.name + ".json"])


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".raw", ".zarr"])
def test_failure_mid_write_leaves_nothing(tmp_path, labels3d, suffix):
    path = tmp_path / f"vol{suffix}"
    with pytest.raises(KeyboardInterrupt):
        with VolumeWriter(path, labels3d.shape, metadata=METADATA) as writer:
            writer.write((slice(0, 3), slice(None), slice(None)), labels3d[:3])
            raise KeyboardInterrupt  # e.g. Ctrl-C during generation
    assert _only(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_incomplete_volume_is_an_error(tmp_path, labels3d, suffix):
    path = tmp_path / f"vol{suffix}"
    with pytest.raises(ValueError, match="incomplete volume"):
        with VolumeWriter(path, labels3d.shape, metadata=METADATA) as writer:
            writer.write((slice(0, 3), slice(None), slice(None)), labels3d[:3])
    assert _only(tmp_path) == []


def test_tiff_blocks_out_of_z_order(tmp_path, labels3d):
    path = tmp_path / "vol.tif"
    with pytest.raises(ValueError, match="expected a block starting at z=0"):
        with VolumeWriter(path, labels3d.shape, metadata=METADATA) as writer:
            writer.write((slice(3, 6), slice(None), slice(None)), labels3d[3:6])
    with pytest.raises(ValueError, match="not complete"):
        with VolumeWriter(path, labels3d.shape, metadata=METADATA) as writer:
            writer.write((slice(0, 3), slice(0, 6), slice(None)), labels3d[:3, :6])
            writer.write((slice(3, 6), slice(0, 6), slice(None)), labels3d[3:6, :6])
    assert _only(tmp_path) == []


def test_volume_writer_argument_checks(tmp_path, labels3d):
    with pytest.raises(ValueError, match=r"'\.h5'.*accepted: \.npy"):
        VolumeWriter(tmp_path / "vol.h5", (2, 2, 2), metadata={})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VolumeWriter(tmp_path / "missing" / "vol.npy", (2, 2, 2), metadata={})
    with pytest.raises(ValueError, match="shape must be 3 positive integers"):
        VolumeWriter(tmp_path / "vol.npy", (2, 2), metadata={})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        VolumeWriter(tmp_path / "vol.npy", (2, 2, 2), metadata={"model": object()})
    with VolumeWriter(tmp_path / "vol.npy", (2, 2, 2), metadata={}) as writer:
        with pytest.raises(ValueError, match="does not match the index region"):
            writer.write((slice(0, 1), slice(None), slice(None)), np.zeros((2, 2, 2), np.uint8))
        with pytest.raises(TypeError, match="uint8 labels"):
            writer.write((slice(None),) * 3, np.zeros((2, 2, 2)))
        writer.write((slice(None),) * 3, np.ones((2, 2, 2), dtype=np.int64))
    np.testing.assert_array_equal(np.load(tmp_path / "vol.npy"), np.ones((2, 2, 2)))


def _png_pixels(path):
    with Image.open(path) as image:
        return np.array(image)


def test_write_png(tmp_path, labels2d):
    path = tmp_path / "slice.png"
    write_png(path, labels2d)
    np.testing.assert_array_equal(_png_pixels(path), labels2d.astype(np.int64) * 255 // 2)
    np.testing.assert_array_equal(read_image(path), labels2d)
    with pytest.raises(FileExistsError):
        write_png(path, labels2d)
    write_png(path, labels2d == 2, n_phases=2, force=True)
    np.testing.assert_array_equal(_png_pixels(path), (labels2d == 2) * 255)
    with pytest.raises(ValueError, match="n_phases=2"):
        write_png(tmp_path / "other.png", labels2d, n_phases=2)
    assert _only(tmp_path) == ["slice.png"]


def test_atomic_write(tmp_path):
    path = tmp_path / "model.pt"
    with atomic_write(path) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".pt"
        temporary.write_text("weights")
    assert path.read_text() == "weights"
    with pytest.raises(FileExistsError, match="pass force=True"):
        with atomic_write(path):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, force=True) as temporary:
            temporary.write_text("half")
            raise RuntimeError("boom")
    assert path.read_text() == "weights"
    assert _only(tmp_path) == ["model.pt"]


def test_raw_written_by_swnn_reads_back_without_its_layout(tmp_path, labels3d):
    path = tmp_path / "vol.raw"
    write_volume(path, labels3d, metadata=METADATA)
    np.testing.assert_array_equal(read_volume(path), labels3d)  # shape and dtype from the sidecar
    sidecar_path(path).unlink()
    with pytest.raises(ValueError, match="needs its shape and dtype"):
        read_volume(path)


def test_write_png_with_provenance(tmp_path, labels2d):
    path = write_png(tmp_path / "s.png", labels2d, n_phases=3, metadata={"seed": 4, "model_sha256": "ab"})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["seed"] == 4 and sidecar["shape"] == [12, 10] and sidecar["format"] == "png"
    with Image.open(path) as image:
        assert json.loads(image.text["swnn"]) == sidecar
    np.testing.assert_array_equal(read_image(path), labels2d)
