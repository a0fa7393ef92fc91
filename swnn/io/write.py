"""Writers: :class:`VolumeWriter` streams a volume block by block into NPY, TIFF, zarr or RAW with its
provenance; :func:`write_volume` writes a whole array; :func:`write_png` a 2D slice for viewing."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .output import (
    _commit,
    _jsonable,
    _remove,
    _temporary_name,
    atomic_write,
    check_destination,
    sidecar_path,
)

__all__ = ["WRITE_SUFFIXES", "VolumeWriter", "write_png", "write_volume"]

WRITE_SUFFIXES = (".npy", ".tif", ".tiff", ".zarr", ".raw")
_WRITE_SLAB_DEPTH = 16


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
        self.suffix = self.path.suffix.lower()
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
    if path.suffix.lower() != ".png":
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
