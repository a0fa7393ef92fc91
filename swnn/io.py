"""Reading and writing microstructures.

Label convention, the same everywhere in swnn: an image of small integer labels or of a few grey levels is
mapped to phases ``0..n-1`` in ascending grey order, and volumes hold ``uint8`` labels ``0..n-1`` (not
0/255). :func:`to_labels` implements the mapping; every reader applies it.

Readers
    :func:`read_image` (PNG, BMP, TIFF page, NPY), :func:`read_volume` (TIFF stack, NPY, RAW, zarr) and
    :func:`read_microstructure` (either, depending on the file). Each also reads a ``.zip`` archive holding
    exactly one such file (as data sets are often distributed), in memory, without unpacking it.
Writers
    :class:`VolumeWriter` streams a large volume block by block into ``.npy``, ``.tif``/``.tiff``,
    ``.zarr`` or ``.raw``; :func:`write_volume` writes a whole array; :func:`write_png` writes a 2D label
    slice scaled for viewing. Every writer puts its output under a temporary name in the destination folder
    and renames it into place on success (:func:`atomic_write`), so a failure leaves no half-written file.
    Volumes carry their provenance (seed, model hash, version, voxel size...) in a JSON sidecar
    ``<path>.json`` and, where the format allows, inside the file (zarr attributes, TIFF ImageDescription).

tifffile, zarr and Pillow are imported inside the functions that need them so that importing this module
(and starting the CLI) stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "WRITE_SUFFIXES",
    "VolumeWriter",
    "atomic_write",
    "check_destination",
    "check_folder",
    "read_image",
    "read_microstructure",
    "read_volume",
    "sidecar_path",
    "to_labels",
    "write_png",
    "write_volume",
]

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".npy")
"""File extensions :func:`read_image` accepts (2D references)."""

VOLUME_SUFFIXES = (".tif", ".tiff", ".npy", ".raw", ".zarr")
"""File extensions :func:`read_volume` accepts (3D volumes)."""

WRITE_SUFFIXES = (".npy", ".tif", ".tiff", ".zarr", ".raw")
"""File extensions :class:`VolumeWriter` can write."""

_READ_SUFFIXES = tuple(dict.fromkeys(IMAGE_SUFFIXES + VOLUME_SUFFIXES))

# Voxels processed at once by the label mapping; bounds the temporaries (int64 indices) to ~128 MB.
_SLAB_VOXELS = 1 << 24

# Beyond this many distinct values the count is reported as "more than ..." (keeps memory bounded).
_MAX_COUNTED_LEVELS = 1 << 16

# z-planes per block used by write_volume (bounds the TIFF slab buffer).
_WRITE_SLAB_DEPTH = 16


# ---------------------------------------------------------------------------------------------------------
# Label mapping
# ---------------------------------------------------------------------------------------------------------


def _slabs(n: int, per_item: int) -> Iterator[slice]:
    """Slices along the first axis of ``n`` items covering at most ``_SLAB_VOXELS`` voxels each."""
    step = max(1, _SLAB_VOXELS // max(per_item, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _distinct_values(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """Sorted distinct values of ``array``, slab by slab.

    Returns ``(values, complete)``; ``complete`` is False when counting stopped after more than
    ``_MAX_COUNTED_LEVELS`` values.
    """
    if array.dtype == np.uint8:
        counts = np.zeros(256, dtype=np.int64)
        flat_rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(1, -1)
        for rows in _slabs(flat_rows.shape[0], flat_rows.shape[1]):
            counts += np.bincount(flat_rows[rows].ravel(), minlength=256)
        return np.flatnonzero(counts).astype(np.uint8), True
    flat_rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(1, -1)
    values = np.empty(0, dtype=array.dtype)
    for rows in _slabs(flat_rows.shape[0], flat_rows.shape[1]):
        values = np.union1d(values, np.unique(flat_rows[rows]))
        if values.size > _MAX_COUNTED_LEVELS:
            return values, False
    return values, True


def _map_slabwise(array: np.ndarray, mapper) -> np.ndarray:
    """Apply ``mapper`` (array -> uint8 array of the same shape) slab by slab along the first axis."""
    out = np.empty(array.shape, dtype=np.uint8)
    if array.ndim == 0 or array.shape[0] == 0:
        return out
    per_item = math.prod(array.shape[1:])
    for rows in _slabs(array.shape[0], per_item):
        out[rows] = mapper(array[rows])
    return out


def to_labels(
    array,
    *,
    source: str = "array",
    threshold: float | None = None,
    max_phases: int = 8,
    min_phases: int = 2,
) -> np.ndarray:
    """Map an image of labels or grey levels to uint8 phase labels ``0..n-1``.

    Parameters
    ----------
    array : array_like of shape (H, W) or (Z, Y, X)
        Labels, a few grey levels, or (with ``threshold``) a grey-scale image. Boolean, integer and
        floating-point arrays are accepted.
    source : str, optional
        Name used in error messages (usually the file path).
    threshold : float, optional
        If given, values ``> threshold`` become phase 1 and all others phase 0.
    max_phases : int, optional
        The largest number of distinct values accepted without ``threshold``.
    min_phases : int, optional
        The smallest number of phases accepted. A reference needs at least 2; pass 1 for a volume that
        may legitimately hold a single phase (for example a generated one).

    Returns
    -------
    labels : ndarray of uint8, same shape as ``array``
        The sorted distinct values mapped to ``0..n-1`` (ascending grey order). When ``array`` already is
        a C-contiguous uint8 array holding exactly ``0..n-1``, it is returned itself, not copied (a bool
        array: a uint8 view of it).

    Raises
    ------
    TypeError
        If the array is not boolean, integer or floating point.
    ValueError
        If it holds NaN or infinite values, more than ``max_phases`` distinct values (without
        ``threshold``), or fewer than ``min_phases`` phases.
    """
    if hasattr(array, "detach"):  # a torch tensor; avoid importing torch here
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(
            f"{source}: expected an array of labels or grey levels (bool, integer or float), "
            f"got dtype {array.dtype}"
        )
    if array.ndim == 0 or array.size == 0:
        raise ValueError(f"{source}: expected a non-empty image or volume, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        finite = all(
            bool(np.isfinite(array[rows]).all())
            for rows in _slabs(array.shape[0], math.prod(array.shape[1:]) if array.ndim else 1)
        )
        if not finite:
            raise ValueError(
                f"{source}: the image holds NaN or infinite values; a reference must hold finite labels "
                "or grey levels"
            )

    if threshold is not None:
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        labels = _map_slabwise(array, lambda slab: slab > threshold)
        n_found = int(labels.any()) + int(not labels.all())
        if n_found < min_phases:
            raise ValueError(
                f"{source}: threshold {threshold} leaves a single phase (all values are "
                f"{'above' if labels.all() else 'at or below'} it); a reference needs at least "
                f"{min_phases} phases"
            )
        return labels

    values, complete = _distinct_values(array)
    if not complete or values.size > max_phases:
        found = f"{values.size}" if complete else f"more than {_MAX_COUNTED_LEVELS}"
        raise ValueError(
            f"{source}: found {found} grey levels; a reference must be segmented into at most "
            f"{max_phases} phases (labels or a few grey levels), or give threshold=T"
        )
    if values.size < min_phases:
        raise ValueError(
            f"{source}: found {values.size} phase{'s' if values.size != 1 else ''} (values "
            f"{values.tolist()}); a reference needs at least {min_phases} phases"
        )
    if (
        array.dtype == np.uint8
        and array.flags.c_contiguous
        and np.array_equal(values, np.arange(values.size))
    ):
        return array
    if array.dtype in (np.uint8, np.uint16):
        lut = np.zeros(np.iinfo(array.dtype).max + 1, dtype=np.uint8)
        lut[values] = np.arange(values.size, dtype=np.uint8)
        return _map_slabwise(array, lambda slab: lut[slab])
    return _map_slabwise(array, lambda slab: np.searchsorted(values, slab).astype(np.uint8))


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


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
            f"{path}: unsupported {what} format {suffix or '(no extension)'!r}; accepted: {', '.join(accepted)}"
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
    dtype = np.dtype(dtype)
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
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable zip archive ({error})") from None
    name = Path(members[0].filename)
    label = Path(f"{path}:{name}")
    suffix = name.suffix.lower()
    if suffix == ".raw":
        return _read_raw(label, shape, dtype, data)
    reader = {".png": _read_pillow, ".bmp": _read_pillow, ".npy": _read_npy}.get(suffix, _read_tiff)
    return _parsed(label, suffix, lambda: reader(label, io.BytesIO(data)))


_KINDS = {".png": "image", ".bmp": "image", ".tif": "TIFF", ".tiff": "TIFF", ".npy": "NPY", ".zarr": "zarr"}


def _read_array(path: Path, suffix: str, shape, dtype) -> np.ndarray:
    """The raw array of a file; a file its library cannot parse (foreign, empty, truncated) is a ValueError."""
    if suffix == ".zip":
        return _read_zip(path, shape, dtype)
    if suffix == ".raw":
        return _read_raw(path, shape, dtype)
    reader = {".npy": _read_npy, ".zarr": _read_zarr, ".tif": _read_tiff, ".tiff": _read_tiff}.get(
        suffix, _read_pillow
    )
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
    return to_labels(array, source=str(path), threshold=threshold)


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
    return to_labels(array, source=str(path), threshold=threshold, min_phases=1)


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
    return to_labels(array, source=str(path), threshold=threshold)


# ---------------------------------------------------------------------------------------------------------
# Atomic output
# ---------------------------------------------------------------------------------------------------------


def sidecar_path(path) -> Path:
    """The provenance sidecar of an output: ``<path>.json`` (``vol.npy`` -> ``vol.npy.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_folder(folder: str | os.PathLike) -> None:
    """Check that files can be written in ``folder``, before any work is done.

    Raises
    ------
    FileNotFoundError
        When ``folder`` does not exist.
    NotADirectoryError
        When it is a file.
    PermissionError
        When a file cannot be created in it (probed with a temporary file, removed at once).
    """
    import tempfile

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"the folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".swnn-probe-"):
            pass
    except OSError as error:
        raise PermissionError(f"the folder {folder} is not writable ({error.strerror})") from None


def check_destination(path: str | os.PathLike, *, force: bool = False) -> None:
    """Check, before any work, that ``path`` can be written: its folder exists and is writable, and the
    path is free (or ``force``).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError
        From :func:`check_folder`, with ``path`` named.
    FileExistsError
        When ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    try:
        check_folder(path.parent)
    except OSError as error:
        raise type(error)(f"{path}: {error}") from None
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass force=True to overwrite")


def _temporary_name(path: Path) -> Path:
    # Hidden, in the same folder (so the rename is atomic), keeping the suffix (writers infer the format).
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _commit(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` onto ``path``, replacing what is there (file or directory)."""
    if not temporary.exists():
        raise RuntimeError(f"{path}: nothing was written to the temporary {temporary}")
    if path.exists() and (path.is_dir() or temporary.is_dir()):
        # os.replace cannot replace a non-empty directory: move the old one aside first.
        old = _temporary_name(path)
        os.replace(path, old)
        try:
            os.replace(temporary, path)
        except BaseException:
            os.replace(old, path)
            raise
        _remove(old)
    else:
        os.replace(temporary, path)


@contextlib.contextmanager
def atomic_write(path, *, force: bool = False) -> Iterator[Path]:
    """Write ``path`` through a temporary name in the same folder, renamed into place on success.

    The caller creates a file or a directory at the yielded temporary path. On normal exit it is renamed
    to ``path`` (``os.replace``; an existing directory is moved aside and removed); if the block raises,
    the temporary is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The final output.
    force : bool, optional
        Replace an existing ``path``; without it an existing ``path`` is an error.

    Yields
    ------
    temporary : Path
        A not-yet-existing path in ``path``'s folder with the same extension.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``force`` is False.
    FileNotFoundError
        If ``path``'s folder does not exist.

    Examples
    --------
    >>> with atomic_write("model.pt", force=True) as tmp:  # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    check_destination(path, force=force)
    temporary = _temporary_name(path)
    try:
        yield temporary
        _commit(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def _jsonable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-round-tripped copy of ``metadata`` (numpy scalars/arrays, tensors, tuples, paths converted)."""

    def default(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray) or hasattr(value, "tolist"):  # numpy arrays, torch tensors
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable")

    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    return json.loads(json.dumps(dict(metadata), default=default))


# ---------------------------------------------------------------------------------------------------------
# Volume writing
# ---------------------------------------------------------------------------------------------------------


class _MemmapSink:
    """``.npy`` (with header) or ``.raw`` (bare bytes) through a memory map."""

    def __init__(self, temporary: Path, shape: tuple[int, int, int], suffix: str):
        if suffix == ".npy":
            self.array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        else:
            self.array = np.memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)

    def write(self, index, block) -> None:
        self.array[index] = block

    def close(self) -> None:
        self.array.flush()
        del self.array

    def abort(self) -> None:
        del self.array


class _ZarrSink:
    def __init__(self, temporary: Path, shape, chunks, metadata):
        import zarr

        self.array = zarr.open_array(
            store=str(temporary), mode="w", shape=shape, chunks=chunks, dtype="uint8", fill_value=0
        )
        self.array.attrs.update(metadata)

    def write(self, index, block) -> None:
        self.array[index] = block

    def close(self) -> None:
        del self.array

    abort = close


class _TiffSink:
    """A TIFF stack written one z-slab at a time.

    Blocks are buffered until their z-slab (all blocks sharing a z range) covers the whole (Y, X) plane;
    the slab is then appended as pages. Blocks must therefore arrive slab after slab in increasing z,
    and memory holds one slab (its z range times Y times X bytes) at most.
    """

    def __init__(self, temporary: Path, shape, metadata):
        import tifffile

        self.shape = shape
        self.metadata = metadata
        nbytes = math.prod(shape)
        self.tiff = tifffile.TiffWriter(temporary, bigtiff=nbytes > 2**31)
        self.next_z = 0
        self.slab: np.ndarray | None = None
        self.slab_z: tuple[int, int] | None = None
        self.covered: np.ndarray | None = None

    def write(self, index, block) -> None:
        z = (index[0].start, index[0].stop)
        if self.slab is None:
            if z[0] != self.next_z:
                raise ValueError(
                    f"TIFF output is written in z order: expected a block starting at z={self.next_z}, "
                    f"got z={z[0]}:{z[1]}"
                )
            self.slab_z = z
            self.slab = np.zeros((z[1] - z[0],) + tuple(self.shape[1:]), dtype=np.uint8)
            self.covered = np.zeros(self.shape[1:], dtype=bool)
        elif z != self.slab_z:
            raise ValueError(
                f"TIFF output is written slab by slab: the z-slab {self.slab_z[0]}:{self.slab_z[1]} is not "
                f"complete, got a block at z={z[0]}:{z[1]} (blocks of a slab must share its z range)"
            )
        self.slab[(slice(None),) + tuple(index[1:])] = block
        self.covered[tuple(index[1:])] = True
        if self.covered.all():
            # One (Y, X) page per write: consecutive contiguous writes of one shape stack into a single
            # (Z, Y, X) series whatever the slab depths.
            for page in self.slab:
                self.tiff.write(page, contiguous=True, metadata=self.metadata, photometric="minisblack")
            self.next_z = self.slab_z[1]
            self.slab = self.slab_z = self.covered = None

    def close(self) -> None:
        if self.next_z != self.shape[0] or self.slab is not None:
            self.tiff.close()
            raise ValueError(
                f"incomplete volume: z-planes {self.next_z}:{self.shape[0]} of the TIFF output were never "
                "completely written"
            )
        self.tiff.close()

    def abort(self) -> None:
        self.tiff.close()


def _normalise_index(index, shape) -> tuple[slice, slice, slice]:
    if not isinstance(index, tuple) or len(index) != 3 or not all(isinstance(s, slice) for s in index):
        raise TypeError(f"index must be a tuple of 3 slices (z, y, x), got {index!r}")
    normalised = []
    for axis, (s, n) in enumerate(zip(index, shape, strict=True)):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(f"index[{axis}] must be a non-empty slice with step 1 within 0:{n}, got {s}")
        normalised.append(slice(start, stop))
    return tuple(normalised)


def _as_block(block, expected_shape) -> np.ndarray:
    if hasattr(block, "detach"):  # torch tensor
        block = block.detach().cpu().numpy()
    block = np.asarray(block)
    if block.shape != expected_shape:
        raise ValueError(f"block shape {block.shape} does not match the index region {expected_shape}")
    if block.dtype == np.uint8:
        return block
    if block.dtype == np.bool_:
        return block.view(np.uint8)
    if not np.issubdtype(block.dtype, np.integer):
        raise TypeError(f"block must hold uint8 labels, got dtype {block.dtype}")
    if block.size and (block.min() < 0 or block.max() > 255):
        raise ValueError(f"block labels must lie in 0..255, got {block.min()}..{block.max()}")
    return block.astype(np.uint8)


class VolumeWriter:
    """Stream a uint8 label volume to disk block by block, atomically and with provenance.

    The format follows the extension: ``.npy`` (memory-mapped NPY), ``.raw`` (bare C-order bytes,
    x fastest), ``.zarr`` (zarr directory store, metadata in its attributes) or ``.tif``/``.tiff``
    (a multi-page TIFF stack; metadata as JSON in the first page's ImageDescription). Every format also
    gets a JSON sidecar ``<path>.json`` holding the metadata plus ``shape``, ``dtype`` and ``format``
    unless the metadata already sets them.

    The output is written under a temporary name in the destination folder and renamed into place when
    the ``with`` block ends normally; if it raises, the temporary is removed and nothing appears at
    ``path``.

    Parameters
    ----------
    path : str or Path
        Output file (or directory for ``.zarr``). Its folder must exist.
    shape : tuple of 3 int
        ``(Z, Y, X)``.
    metadata : dict
        Provenance (seed, model hash, package version, voxel size, phases...); must be JSON-serialisable
        (numpy scalars and arrays, tuples and paths are converted).
    force : bool, optional
        Replace an existing ``path``.
    chunks : tuple of 3 int, optional
        zarr chunk shape; default ``(64, 64, 64)`` clipped to ``shape``. Ignored by the other formats.

    Notes
    -----
    A TIFF is written page by page, so its blocks must arrive z-slab by z-slab in increasing z: every
    block of a slab shares the slab's z range, and a slab must cover the whole (Y, X) plane before the next
    starts. Only one slab is held in memory. The other formats accept blocks in any order.

    On closing, a volume whose blocks cover fewer voxels than it holds is an error (``ValueError``);
    that check counts voxels, so overlapping blocks can hide a gap.

    Examples
    --------
    >>> with VolumeWriter("out.zarr", (256, 256, 256), metadata={"seed": 0}) as writer:  # doctest: +SKIP
    ...     for z in range(0, 256, 64):
    ...         writer.write((slice(z, z + 64), slice(None), slice(None)), generate_block(z))
    """

    def __init__(self, path, shape, *, metadata: Mapping[str, Any], force: bool = False, chunks=None):
        self.path = Path(path)
        self.suffix = _suffix(self.path)
        if self.suffix not in WRITE_SUFFIXES:
            raise ValueError(
                f"{self.path}: unsupported volume format {self.suffix or '(no extension)'!r}; "
                f"accepted: {', '.join(WRITE_SUFFIXES)}"
            )
        shape = tuple(int(n) for n in shape)
        if len(shape) != 3 or any(n <= 0 for n in shape):
            raise ValueError(f"shape must be 3 positive integers (Z, Y, X), got {shape}")
        self.shape: tuple[int, int, int] = shape
        if chunks is None:
            chunks = tuple(min(64, n) for n in shape)
        self.chunks = tuple(int(c) for c in chunks)
        if len(self.chunks) != 3 or any(c <= 0 for c in self.chunks):
            raise ValueError(f"chunks must be 3 positive integers, got {chunks}")
        self.metadata = _jsonable(metadata)
        self.force = force
        check_destination(self.path, force=force)
        self._sink = None
        self._temporary: Path | None = None
        self._written = 0

    def __enter__(self) -> VolumeWriter:
        check_destination(self.path, force=self.force)
        self._temporary = _temporary_name(self.path)
        try:
            if self.suffix in (".npy", ".raw"):
                self._sink = _MemmapSink(self._temporary, self.shape, self.suffix)
            elif self.suffix == ".zarr":
                self._sink = _ZarrSink(self._temporary, self.shape, self.chunks, self.metadata)
            else:
                self._sink = _TiffSink(self._temporary, self.shape, self.metadata)
        except BaseException:
            _remove(self._temporary)
            raise
        return self

    def write(self, index: tuple[slice, slice, slice], block) -> None:
        """Write ``block`` (uint8 labels of the region's shape) at ``index`` (3 slices, step 1)."""
        if self._sink is None:
            raise RuntimeError("VolumeWriter.write called outside its `with` block")
        index = _normalise_index(index, self.shape)
        block = _as_block(block, tuple(s.stop - s.start for s in index))
        self._sink.write(index, block)
        self._written += block.size

    def __exit__(self, exc_type, exc, traceback) -> None:
        sink, self._sink = self._sink, None
        if exc_type is not None:
            self._discard(sink)
            return
        try:
            sink.close()
            total = math.prod(self.shape)
            if self._written < total:
                raise ValueError(
                    f"{self.path}: incomplete volume: blocks covered {self._written} of {total} voxels"
                )
            self._write_sidecar()
            _commit(self._temporary, self.path)
        except BaseException:
            _remove(self._temporary)
            raise

    def _discard(self, sink) -> None:
        try:
            sink.abort()
        finally:
            _remove(self._temporary)

    def _write_sidecar(self) -> None:
        provenance = dict(self.metadata)
        provenance.setdefault("shape", list(self.shape))
        provenance.setdefault("dtype", "uint8")
        provenance.setdefault("format", self.suffix.lstrip("."))
        # A stale sidecar without its volume is replaced, so force=True here.
        with atomic_write(sidecar_path(self.path), force=True) as temporary:
            temporary.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")


def write_volume(path, volume, *, metadata: Mapping[str, Any], force: bool = False) -> Path:
    """Write a whole uint8 label volume with :class:`VolumeWriter` (in z-slabs of 16 planes).

    Parameters
    ----------
    path : str or Path
        ``.npy``, ``.tif``/``.tiff``, ``.zarr`` or ``.raw``.
    volume : ndarray of shape (Z, Y, X)
        uint8 (or bool/integer within 0..255) labels.
    metadata : dict
        Provenance, see :class:`VolumeWriter`.
    force : bool, optional
        Replace an existing ``path``.

    Returns
    -------
    path : Path
    """
    if hasattr(volume, "detach"):
        volume = volume.detach().cpu().numpy()
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must have shape (Z, Y, X), got shape {volume.shape}")
    with VolumeWriter(path, volume.shape, metadata=metadata, force=force) as writer:
        for z in range(0, volume.shape[0], _WRITE_SLAB_DEPTH):
            z_slab = slice(z, min(z + _WRITE_SLAB_DEPTH, volume.shape[0]))
            writer.write((z_slab, slice(None), slice(None)), volume[z_slab])
    return Path(path)


def write_png(
    path,
    image2d,
    *,
    n_phases: int | None = None,
    force: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a 2D label slice as an 8-bit PNG scaled for viewing (labels 0..n-1 -> 0..255), atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.png``.
    image2d : ndarray of shape (H, W)
        Integer labels ``0..n_phases-1``.
    n_phases : int, optional
        Number of phases; default ``max label + 1`` (at least 2, so a single-phase slice is black).
    force : bool, optional
        Replace an existing ``path``.
    metadata : dict, optional
        Provenance, written to the sidecar ``<path>.json`` (with ``shape``, ``dtype`` and ``format``) and
        into the PNG's text chunk ``swnn``.

    Returns
    -------
    path : Path
    """
    from PIL import Image, PngImagePlugin

    path = Path(path)
    if _suffix(path) != ".png":
        raise ValueError(f"{path}: write_png writes '.png' files, got {path.suffix or '(no extension)'!r}")
    if hasattr(image2d, "detach"):
        image2d = image2d.detach().cpu().numpy()
    image2d = np.asarray(image2d)
    if image2d.ndim != 2:
        raise ValueError(f"image2d must have shape (H, W), got shape {image2d.shape}")
    if not (np.issubdtype(image2d.dtype, np.integer) or image2d.dtype == np.bool_):
        raise TypeError(f"image2d must hold integer labels, got dtype {image2d.dtype}")
    labels = image2d.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"image2d labels must be >= 0, got minimum {labels.min()}")
    top = int(labels.max()) if labels.size else 0
    if n_phases is None:
        n_phases = max(top + 1, 2)
    if n_phases < 1 or n_phases > 256:
        raise ValueError(f"n_phases must lie in 1..256, got {n_phases}")
    if top >= n_phases:
        raise ValueError(f"image2d holds label {top}, which n_phases={n_phases} does not allow")
    grey = (labels * 255 // max(n_phases - 1, 1)).astype(np.uint8)  # (H, W), 0..255
    provenance = None
    if metadata is not None:
        provenance = {**_jsonable(metadata), "shape": list(labels.shape), "dtype": "uint8", "format": "png"}
    info = PngImagePlugin.PngInfo()
    if provenance is not None:
        info.add_text("swnn", json.dumps(provenance, sort_keys=True))
    with atomic_write(path, force=force) as temporary:
        Image.fromarray(grey).save(temporary, format="PNG", pnginfo=info)
    if provenance is not None:
        with atomic_write(sidecar_path(path), force=True) as temporary:
            temporary.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return path
