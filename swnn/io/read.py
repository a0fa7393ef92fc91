"""Readers of images and volumes (PNG, BMP, TIFF, NPY, RAW, zarr, and a zip archive holding one), as labels.

tifffile, zarr and Pillow are imported inside the functions that need them, so that importing this module (and
starting the command) stays cheap.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .labels import to_labels
from .output import sidecar_path

__all__ = ["IMAGE_SUFFIXES", "VOLUME_SUFFIXES", "read_image", "read_microstructure", "read_volume"]

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".npy")
"""File extensions :func:`read_image` accepts (2D references)."""

VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".raw", ".zarr")
_READ_SUFFIXES = tuple(dict.fromkeys(IMAGE_SUFFIXES + VOLUME_SUFFIXES))


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _check_readable(path: Path, accepted: tuple[str, ...], what: str) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    suffix = _suffix(path)
    if path.is_dir():
        if ".zarr" in accepted and (suffix == ".zarr" or _is_zarr_dir(path)):
            return ".zarr"
        raise ValueError(
            f"{path}: a folder, not {'an' if what[0] in 'aeiou' else 'a'} {what} file; accepted: "
            f"{', '.join(accepted)} (a folder only as a "
            "zarr directory store)"
        )
    if suffix == ".zarr":
        raise ValueError(f"{path}: a zarr store must be a directory (zip stores are not supported)")
    if suffix == ".zip":
        return suffix
    if suffix not in accepted:
        raise ValueError(
            f"{path}: unsupported {what} format {suffix or '(no extension)'!r}; accepted: {', '.join(accepted)}, "
            "or a .zip holding one such file"
        )
    return suffix


def _is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def _grey_from_colour(array: np.ndarray, path: Path) -> np.ndarray:
    """Collapse an (..., 3) RGB or (..., 4) RGBA array with equal R, G, B channels to grey.

    The alpha channel is ignored.
    """
    rgb = array[..., :3]
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        raise ValueError(
            f"{path}: a colour image with unequal R, G, B channels; a reference must be a grey-level or "
            "label image (save it as greyscale, or as an NPY/TIFF of labels)"
        )
    return np.ascontiguousarray(rgb[..., 0])


def _read_pillow(path: Path, source=None) -> np.ndarray:
    from PIL import Image

    with Image.open(path if source is None else source) as image:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode in ("LA", "PA"):
            image = image.convert("RGBA")
        elif image.mode not in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F", "RGB", "RGBA"):
            raise ValueError(
                f"{path}: unsupported image mode {image.mode!r}; accepted: greyscale (L, I, I;16, F, 1), "
                "RGB or RGBA with equal channels"
            )
        array = np.array(image)
    if array.ndim == 3:
        array = _grey_from_colour(array, path)
    return array


def _read_tiff(path: Path, source=None) -> np.ndarray:
    import logging

    import tifffile

    log = logging.getLogger("tifffile")  # a damaged file is reported once, as an error, not also logged
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path if source is None else source) as tif:
            series = tif.series[0]
            axes = series.axes
            array = series.asarray()
    finally:
        log.setLevel(level)
    if "S" in axes:  # samples per pixel (RGB/RGBA), tifffile puts them last for contiguous data
        position = axes.index("S")
        array = np.moveaxis(array, position, -1)
        axes = axes[:position] + axes[position + 1 :] + "S"
        if array.shape[-1] in (3, 4):
            array = _grey_from_colour(array, path)
        elif array.shape[-1] == 1:
            array = array[..., 0]
        else:
            raise ValueError(f"{path}: TIFF with {array.shape[-1]} samples per pixel; expected grey or RGB")
    # Drop singleton axes other than the image plane (time, channel...): (1, H, W) -> (H, W).
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim > 3:
        raise ValueError(
            f"{path}: TIFF series of shape {array.shape} (axes {axes}); expected (H, W) or (Z, Y, X)"
        )
    return array


def _read_npy(path: Path, source=None) -> np.ndarray:
    return np.load(path if source is None else source, allow_pickle=False)


def _read_zarr(path: Path) -> np.ndarray:
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        return np.asarray(node[...])
    arrays = list(node.arrays())
    if len(arrays) != 1:
        names = ", ".join(name for name, _ in arrays) or "none"
        raise ValueError(
            f"{path}: a zarr group must hold exactly one array (or be an array itself); found: {names}"
        )
    return np.asarray(arrays[0][1][...])


def _raw_layout_from_sidecar(path: Path, shape, dtype) -> tuple:
    """Shape and dtype of a RAW file written by swnn, from its provenance sidecar, where not given."""
    sidecar = sidecar_path(path)
    if (shape is not None and dtype is not None) or not sidecar.is_file():
        return shape, dtype
    try:
        provenance = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return shape, dtype
    if isinstance(provenance, dict) and provenance.get("format") == "raw":
        shape = shape if shape is not None else provenance.get("shape")
        dtype = dtype if dtype is not None else provenance.get("dtype")
    return shape, dtype


def _read_raw(path: Path, shape, dtype, data: bytes | None = None) -> np.ndarray:
    if data is None:
        shape, dtype = _raw_layout_from_sidecar(path, shape, dtype)
    if shape is None or dtype is None:
        raise ValueError(
            f"{path}: a RAW file needs its shape and dtype (got shape={shape!r}, dtype={dtype!r}); "
            "pass shape=(Z, Y, X) and dtype (e.g. 'uint8', '<u2')"
        )
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or any(n <= 0 for n in shape):
        raise ValueError(f"shape must be 2 or 3 positive integers, got {shape}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(
            f"{path}: {dtype!r} is not a voxel type; accepted: a numpy dtype such as 'uint8', '<u2', '<f4'"
        ) from None
    expected = math.prod(shape) * dtype.itemsize
    found = path.stat().st_size if data is None else len(data)
    if found != expected:
        raise ValueError(
            f"{path}: size mismatch for shape {shape} and dtype {dtype}: expected {expected} bytes, "
            f"found {found} bytes"
        )
    if data is not None:
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return np.fromfile(path, dtype=dtype).reshape(shape)


def _read_zip(path: Path, shape, dtype) -> np.ndarray:
    """The one image or volume file inside a zip archive (PNG, BMP, TIFF, NPY or RAW), read in memory.

    Folders, hidden files and ``__MACOSX`` entries are ignored; the archive must hold exactly one readable
    file, which keeps the choice of the member unambiguous.
    """
    import io
    import zipfile
    import zlib

    readable = tuple(s for s in _READ_SUFFIXES if s != ".zarr")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and not Path(info.filename).name.startswith(".")
                and Path(info.filename).suffix.lower() in readable
            ]
            if len(members) != 1:
                found = ", ".join(m.filename for m in members) or "none"
                raise ValueError(
                    f"{path}: a zip archive must hold exactly one image or volume file "
                    f"({', '.join(readable)}); found: {found}"
                )
            data = archive.read(members[0])
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, zlib.error) as error:
        raise ValueError(f"{path}: not a readable zip archive ({error})") from None
    name = Path(members[0].filename)
    label = Path(f"{path}:{name}")
    suffix = name.suffix.lower()
    if suffix == ".raw":
        return _read_raw(label, shape, dtype, data)
    reader = _READERS[suffix]
    return _parsed(label, suffix, lambda: reader(label, io.BytesIO(data)))


_KINDS = {".png": "image", ".bmp": "image", ".tif": "TIFF", ".tiff": "TIFF", ".npy": "NPY", ".zarr": "zarr"}
_READERS = {
    ".png": _read_pillow,
    ".bmp": _read_pillow,
    ".tif": _read_tiff,
    ".tiff": _read_tiff,
    ".npy": _read_npy,
    ".zarr": _read_zarr,
}


def _read_array(path: Path, suffix: str, shape, dtype) -> np.ndarray:
    """The raw array of a file; a file its library cannot parse (foreign, empty, truncated) is a ValueError."""
    if suffix == ".zip":
        return _read_zip(path, shape, dtype)
    if suffix == ".raw":
        return _read_raw(path, shape, dtype)
    reader = _READERS[suffix]
    return _parsed(path, suffix, lambda: reader(path))


def _parsed(path: Path, suffix: str, read) -> np.ndarray:
    """``read()``; a file its library cannot parse (foreign, empty, truncated) becomes one ValueError."""
    try:
        return read()
    except ValueError as error:
        if str(error).startswith(str(path)):  # this module's own message
            raise
        problem = error
    except (OSError, EOFError, KeyError, IndexError, TypeError, RuntimeError) as error:
        if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        problem = error
    # tifffile, Pillow, numpy and zarr raise many types for a file that is not what its name says
    text = " ".join(str(problem).replace(f"'{path}'", "").replace(str(path), "").split())
    raise ValueError(
        f"{path}: not a readable {_KINDS[suffix]} file: empty, truncated or of another format"
        + (f" ({text})" if text and not text.startswith("cannot identify image file") else "")
    ) from None


def _file_labels(array: np.ndarray, path: Path, **options) -> np.ndarray:
    """:func:`to_labels` of a file's array; a file of the wrong type of data is bad input (``ValueError``)."""
    try:
        return to_labels(array, source=str(path), **options)
    except TypeError as error:
        raise ValueError(str(error)) from None


def read_image(path, *, threshold: float | None = None) -> np.ndarray:
    """Read a 2D reference image as phase labels.

    Parameters
    ----------
    path : str or Path
        A PNG, BMP, TIFF (one 2D page) or NPY (2D array) file. RGB/RGBA images count as grey when their
        R, G and B channels are equal.
    threshold : float, optional
        Segment a grey-scale image: values ``> threshold`` become phase 1, others phase 0.

    Returns
    -------
    image : ndarray of shape (H, W), uint8
        Labels ``0..n-1`` in ascending grey order (see :func:`to_labels`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unsupported extension, a file that is not 2D, a colour image, or an unsegmented image.
    """
    path = Path(path)
    suffix = _check_readable(path, IMAGE_SUFFIXES, "image")
    array = _read_array(path, suffix, None, None)
    if array.ndim != 2:
        raise ValueError(f"{path}: expected a 2D image of shape (H, W), found shape {array.shape}")
    return _file_labels(array, path, threshold=threshold)


def read_volume(path, *, shape=None, dtype=None, threshold: float | None = None) -> np.ndarray:
    """Read a 3D volume as phase labels.

    Parameters
    ----------
    path : str or Path
        A multi-page TIFF stack, NPY (3D array), RAW (needs ``shape`` and ``dtype``) or zarr directory
        store (an array at the root, or a group holding exactly one array).
    shape : tuple of 3 int, optional
        ``(Z, Y, X)`` of a RAW file (C order, x fastest).
    dtype : str or numpy dtype, optional
        Voxel type of a RAW file, with byte order where it matters (``'uint8'``, ``'<u2'``, ``'<f4'``).
    threshold : float, optional
        Segment a grey-scale volume: values ``> threshold`` become phase 1, others phase 0.

    Returns
    -------
    volume : ndarray of shape (Z, Y, X), uint8
        Labels ``0..n-1`` in ascending grey order (see :func:`to_labels`); a single phase is accepted.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unsupported extension, a file that is not 3D, a RAW file without shape and dtype or of the
        wrong size, or an unsegmented volume.
    """
    path = Path(path)
    suffix = _check_readable(path, VOLUME_SUFFIXES, "volume")
    if suffix == ".raw" and shape is not None and len(tuple(shape)) != 3:
        raise ValueError(f"shape must be (Z, Y, X) for a volume, got {tuple(shape)}")
    array = _read_array(path, suffix, shape, dtype)
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume of shape (Z, Y, X), found shape {array.shape}")
    return _file_labels(array, path, threshold=threshold, min_phases=1)


def read_microstructure(path, *, threshold: float | None = None, shape=None, dtype=None) -> np.ndarray:
    """Read a 2D image or a 3D volume as phase labels, whichever the file holds.

    Accepts every format of :func:`read_image` and :func:`read_volume`; a RAW file is 2D or 3D according
    to ``shape``. Unlike :func:`read_volume`, at least two phases are required (this reads references).

    Returns
    -------
    labels : ndarray of shape (H, W) or (Z, Y, X), uint8
    """
    path = Path(path)
    suffix = _check_readable(path, _READ_SUFFIXES, "image or volume")
    array = _read_array(path, suffix, shape, dtype)
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D image or 3D volume, found shape {array.shape}")
    return _file_labels(array, path, threshold=threshold)


def read_field(path, *, shape=None, dtype=None) -> np.ndarray:
    """Read a 2D image or 3D volume with its values as stored (floats kept, no labelling), for masks.

    Returns
    -------
    ndarray of shape (Z, Y, X); a 2D image comes back as (1, H, W)
    """
    path = Path(path)
    suffix = _check_readable(path, _READ_SUFFIXES, "image or volume")
    array = _read_array(path, suffix, shape, dtype)
    if array.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D image or 3D volume, found shape {array.shape}")
    return array[None] if array.ndim == 2 else array
