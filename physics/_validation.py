"""Shared argument checks for the descriptors in :mod:`physics`, and the slab iterator they share.

Every message names the parameter, the value received and what is accepted, so that the CLI can turn it
into one clear line.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

__all__ = ["ParameterTypeError", "as_indicator", "check_r_max", "check_phase", "slab_slices"]


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type. A ``TypeError``, as Python's convention asks, and a ``ValueError`` too,
    so that one ``except ValueError`` catches every bad argument (the command line reports both as bad
    input)."""


# numpy dtypes that torch handles fully (comparisons, reductions) and that ``torch.from_numpy`` shares
# without a copy. Other integer dtypes (uint16, uint32, uint64) are converted to int64 first.
_SHARED_NUMPY_KINDS = (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float32, np.float64)


def check_phase(phase: object) -> int:
    """Return ``phase`` as a Python int, or raise ``TypeError`` if it is not an integer label."""
    if isinstance(phase, (bool, np.bool_)) or not isinstance(phase, (int, np.integer)):
        raise ParameterTypeError(f"phase must be an integer label such as 0 or 1; received {phase!r}")
    return int(phase)


def check_count(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int of at least ``minimum``; ``TypeError`` / ``ValueError`` naming ``name``."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float strictly between 0 and 1; ``ValueError`` naming ``name`` otherwise."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    if not (number and 0 < value < 1):
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _to_tensor(volume: object, name: str) -> torch.Tensor:
    if isinstance(volume, torch.Tensor):
        return volume
    if not isinstance(volume, np.ndarray):
        raise ParameterTypeError(
            f"{name} must be a numpy array or a torch tensor; received {type(volume).__name__}"
        )
    if volume.dtype.kind not in "biuf":
        raise ParameterTypeError(
            f"{name} must hold integer, boolean or float labels; received dtype {volume.dtype} "
            "(accepted: bool, int*, uint*, float*)"
        )
    if not any(volume.dtype == kind for kind in _SHARED_NUMPY_KINDS):
        volume = volume.astype(np.int64)
    if any(stride < 0 for stride in volume.strides):
        volume = np.ascontiguousarray(volume)
    if not volume.flags.writeable:
        # torch warns that it cannot protect a read-only array; the indicator is never written to.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(volume)
    return torch.from_numpy(volume)


def _labels_present(tensor: torch.Tensor, limit: int = 10) -> str:
    labels = torch.unique(tensor).cpu().tolist()
    labels = [int(v) if float(v).is_integer() else v for v in labels]
    text = ", ".join(str(v) for v in labels[:limit])
    return f"[{text}{', ...' if len(labels) > limit else ''}]"


def check_label_image(volume: object, name: str = "volume") -> torch.Tensor:
    """``volume`` as a tensor (no copy where possible) after checking it is a 2D or 3D image of integer labels.

    Raises ``TypeError`` for a type or dtype that cannot hold labels and ``ValueError`` for a wrong number of
    dimensions, an empty image, or NaN, infinite or non-integer values, each naming ``name`` and what is accepted.
    """
    tensor = _to_tensor(volume, name)
    if tensor.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be a 2D (Y, X) or 3D (Z, Y, X) array; received ndim={tensor.ndim} "
            f"with shape {tuple(tensor.shape)}"
        )
    if tensor.numel() == 0:
        raise ValueError(f"{name} must not be empty; received shape {tuple(tensor.shape)}")
    if tensor.is_complex():
        raise ParameterTypeError(f"{name} must hold real labels; received dtype {tensor.dtype}")
    if tensor.is_floating_point():
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            count = int((~finite).sum())
            raise ValueError(
                f"{name} contains {count} NaN or infinite value(s); expected a label image with "
                "integer phase labels such as 0 and 1"
            )
        fractional = tensor != torch.round(tensor)
        if bool(fractional.any()):
            example = float(tensor[fractional][0])
            raise ValueError(
                f"{name} has non-integer values (e.g. {example!r}); expected a label image with integer "
                "phase labels such as 0 and 1 (threshold a grey-level image first)"
            )
    return tensor


def as_indicator(volume: object, *, phase: int = 1, name: str = "volume") -> torch.Tensor:
    """Indicator of one phase of a labelled 2D or 3D microstructure.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image: bool, integer, or float holding integer values (for example 0.0 / 1.0).
    phase : int, optional
        Label of the phase of interest.
    name : str, optional
        Parameter name used in error messages.

    Returns
    -------
    indicator : Tensor of dtype bool, same shape, on the input's device
        ``volume == phase``. A bool input with ``phase=1``, or a uint8 input holding only 0 and 1 with
        ``phase=1``, is returned as a view without copying (worth 1 GB at 1024³).

    Raises
    ------
    TypeError
        ``volume`` is not a numpy array or torch tensor, or ``phase`` is not an integer.
    ValueError
        ``volume`` is not 2D or 3D, is empty, holds NaN, infinite or non-integer values, or ``phase`` does
        not occur in it.
    """
    phase = check_phase(phase)
    tensor = check_label_image(volume, name)
    indicator: torch.Tensor | None
    if tensor.dtype == torch.bool:
        indicator = tensor if phase == 1 else ~tensor if phase == 0 else None
    elif tensor.dtype == torch.uint8 and phase == 1 and int(tensor.max()) <= 1:
        indicator = tensor.view(torch.bool)
    else:
        indicator = tensor == phase
    if indicator is None or not bool(indicator.any()):
        raise ValueError(f"phase={phase} does not occur in {name}; labels present: {_labels_present(tensor)}")
    return indicator


def check_r_max(shape: Sequence[int], r_max: object, axes: Iterable[int], *, name: str = "volume") -> int:
    """Check that ``r_max`` is a usable largest lag along ``axes`` of an array of ``shape``.

    Returns ``r_max`` as a Python int. Raises ``TypeError`` for a non-integer ``r_max`` and ``ValueError``
    for a negative one or one that is not smaller than the length of every axis in ``axes`` (a lag of r
    needs at least r + 1 voxels along the axis).
    """
    if isinstance(r_max, (bool, np.bool_)) or not isinstance(r_max, (int, np.integer)):
        raise ParameterTypeError(f"r_max must be a non-negative integer (voxels); received {r_max!r}")
    r_max = int(r_max)
    if r_max < 0:
        raise ValueError(f"r_max must be a non-negative integer (voxels); received {r_max}")
    for axis in axes:
        length = int(shape[axis])
        if r_max >= length:
            raise ValueError(
                f"r_max={r_max} is too large for axis {axis} of length {length} ({name} shape "
                f"{tuple(int(s) for s in shape)}); r_max must be at most {length - 1} along every axis"
            )
    return r_max


def slab_slices(shape: Sequence[int], axis: int, max_elements: int) -> Iterator[tuple[slice, ...]]:
    """Cut an array into slabs that keep every line along ``axis`` whole.

    The slabs are taken along the outermost axis other than ``axis``, each holding at most
    ``max_elements`` elements (at least one slice). Yields index tuples usable on the array.
    """
    cut_axis = 0 if axis != 0 else 1
    per_slice = int(np.prod(shape)) // int(shape[cut_axis])
    step = max(1, int(max_elements) // max(per_slice, 1))
    for start in range(0, int(shape[cut_axis]), step):
        index = [slice(None)] * len(shape)
        index[cut_axis] = slice(start, min(start + step, int(shape[cut_axis])))
        yield tuple(index)
