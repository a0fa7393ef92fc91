"""The label convention: images and volumes mapped to phases ``0..n-1`` in ascending grey order."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["to_labels"]

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
