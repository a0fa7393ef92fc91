"""Spatial location masks on the input noise: heterogeneous and graded structures (paper Sec. 3.3, Fig. 11).

A mask M is a field over the output grid. Generation applies it to the noise X of every block by global
position, as a :class:`~swnn.noise.NoiseField` transform, in one of two modes:

- ``multiply`` (the paper's Y = G(X·M)): the noise is scaled voxel by voxel by M in [0, 1]; where M = 1 the
  model generates as trained, where M < 1 its structure changes with the damped noise.
- ``offset``: M holds a *fraction* of the controlled phase per voxel, and the noise is shifted by the amount
  that the model's calibrated control map (:mod:`swnn.continuous`) says gives that fraction: graded
  materials with a prescribed fraction profile.

Output voxel v is centred on input voxel v + l_a (l_a the network's halo), so input voxel p takes the mask of
output voxel p − l_a, clipped to the output grid (the halo around the volume repeats its border values). The
transform is a function of global position only, so masked chunked generation equals masked whole
generation bit for bit, for any block size.

Masks come from a file (a float volume in [0, 1] of the output's shape, or a label volume whose labels are
mapped to values) or from a specification string (:func:`parse_mask`), whose syntax is, with AXIS an array
axis (0, 1 or 2) and positions given as fractions of the volume's sides:

``gradient:AXIS:A..B``
    linear from A at the first index along AXIS to B at the last;
``band:AXIS:LO..HI[:IN:OUT]``
    IN (default 1) where LO <= position < HI along AXIS, OUT (default 0) elsewhere;
``sphere:CZ,CY,CX:R[:IN:OUT]``
    IN inside the sphere of centre (CZ, CY, CX) and radius R (a fraction of the smallest side), OUT outside;
``layers:AXIS:N[:A:B]``
    N layers of equal thickness along AXIS, alternately A (default 1) and B (default 0);
``constant:V``
    V everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "MASK_MODES", "Mask", "MaskTransform", "mask_from_array", "parse_mask"]

MASK_MODES = ("multiply", "offset")

# values(z, y, x) -> float32 array (len z, len y, len x) for index arrays along each output axis
MaskValues = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Mask:
    """A field of values over an output grid of ``shape``.

    Attributes
    ----------
    shape : (Z, Y, X)
        The output grid it is defined on.
    values : callable
        ``values(z, y, x)`` with index arrays along each axis returns the (len z, len y, len x) float32 block.
    description : str
        The specification or the file it came from (recorded in the provenance of generated volumes).
    low, high : float
        Smallest and largest value it takes.
    """

    shape: tuple[int, int, int]
    values: MaskValues
    description: str
    low: float
    high: float

    def block(self, origin: Sequence[int], size: Sequence[int], halo: int) -> np.ndarray:
        """Mask values over the input-grid region [origin, origin + size): output voxel p − halo, clipped."""
        index = [
            np.clip(np.arange(o - halo, o - halo + s), 0, n - 1)
            for o, s, n in zip(origin, size, self.shape, strict=True)
        ]
        return self.values(*index)

    def full(self) -> np.ndarray:
        """The whole mask over its output grid, float32 (for figures and tests)."""
        return self.values(*(np.arange(n) for n in self.shape))


def mask_from_array(
    array: np.ndarray, *, values: Mapping[int, float] | None = None, description: str = "array"
) -> Mask:
    """A mask from a volume of the output's shape.

    Parameters
    ----------
    array : ndarray of shape (Z, Y, X)
        Floats (used as they are) or integer labels (mapped by ``values``; labels 0 and 1 alone map to 0.0 and
        1.0 when ``values`` is None, so a two-phase microstructure is a mask as it is).
    values : mapping of int to float, optional
        Label -> mask value, for label volumes; every label present must have one.
    description : str
        Where the mask came from.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ValueError(f"mask must be a 3D volume (or a 2D image); got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        labels = np.unique(array)
        if values is None:
            if not set(labels.tolist()) <= {0, 1}:
                raise ValueError(
                    f"mask {description} holds labels {labels.tolist()[:8]}; give mask_values, a value for each"
                )
            values = {0: 0.0, 1: 1.0}
        missing = sorted(set(labels.tolist()) - set(values))
        if missing:
            raise ValueError(f"mask_values has no value for labels {missing} of mask {description}")
        lookup = np.zeros(int(labels.max()) + 1, dtype=np.float32)
        for label, value in values.items():
            if 0 <= int(label) < lookup.size:
                lookup[int(label)] = _finite(value, "mask_values")
        field = lookup[array.astype(np.int64)]
    elif np.issubdtype(array.dtype, np.floating):
        field = array.astype(np.float32)
        if not np.isfinite(field).all():
            raise ValueError(f"mask {description} holds NaN or infinite values")
    else:
        raise ValueError(f"mask {description} must hold numbers or labels; got dtype {array.dtype}")
    shape = tuple(int(s) for s in field.shape)
    return Mask(
        shape=shape,
        values=_ArrayValues(field),
        description=description,
        low=float(field.min()),
        high=float(field.max()),
    )


class _ArrayValues:
    """``values(z, y, x)`` of a stored array (a class, not a closure, so that masks can be sent to workers)."""

    def __init__(self, field: np.ndarray):
        self.field = field

    def __call__(self, z, y, x):
        return self.field[np.ix_(z, y, x)]


class _SpecValues:
    """``values(z, y, x)`` of a specification, computed from the positions (no array of the volume's size)."""

    def __init__(self, kind: str, shape: tuple[int, int, int], args: tuple):
        self.kind, self.shape, self.args = kind, shape, args

    def __call__(self, z, y, x):
        index = (z, y, x)
        out_shape = (len(z), len(y), len(x))
        kind, args = self.kind, self.args
        if kind == "constant":
            return np.full(out_shape, args[0], dtype=np.float32)
        if kind == "sphere":
            centre, radius, inside, outside = args
            side = min(self.shape)
            terms = [
                (((index[a] + 0.5) / self.shape[a] - centre[a]) * self.shape[a] / side) ** 2 for a in range(3)
            ]
            distance2 = terms[0][:, None, None] + terms[1][None, :, None] + terms[2][None, None, :]
            return np.where(distance2 <= radius**2, inside, outside).astype(np.float32)
        axis = args[0]
        n = self.shape[axis]
        position = index[axis].astype(np.float64)
        if kind == "gradient":
            a, b = args[1], args[2]
            line = a + (b - a) * (position / (n - 1) if n > 1 else np.zeros_like(position))
        elif kind == "band":
            lo, hi, inside, outside = args[1:]
            relative = (position + 0.5) / n
            line = np.where((relative >= lo) & (relative < hi), inside, outside)
        else:  # layers
            count, a, b = args[1:]
            layer = np.floor(position * count / n).astype(np.int64)
            line = np.where(layer % 2 == 0, a, b)
        shape = [1, 1, 1]
        shape[axis] = len(line)
        return np.broadcast_to(line.astype(np.float32).reshape(shape), out_shape).copy()


def parse_mask(spec: str, shape: Sequence[int]) -> Mask:
    """A mask over ``shape`` from a specification string (syntax in the module docstring)."""
    shape = tuple(int(s) for s in shape)
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"mask {spec!r}: expected KIND:ARGUMENTS, KIND one of {', '.join(KINDS)}")
    kind, _, rest = spec.partition(":")
    if kind not in KINDS:
        raise ValueError(f"mask {spec!r}: unknown kind {kind!r}; accepted: {', '.join(KINDS)}")
    parts = rest.split(":")
    try:
        args = KINDS[kind](parts)
    except (ValueError, IndexError) as error:
        raise ValueError(f"mask {spec!r}: {error}; expected {_SYNTAX[kind]}") from None
    values = _SpecValues(kind, shape, args)
    full_low_high = _spec_range(kind, args)
    return Mask(shape=shape, values=values, description=spec, low=full_low_high[0], high=full_low_high[1])


def _finite(text, what: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite numbers; got {text!r}")
    return value


def _axis(text: str) -> int:
    if text.strip() not in ("0", "1", "2"):
        raise ValueError(f"axis must be 0, 1 or 2, got {text!r}")
    return int(text)


def _range(text: str) -> tuple[float, float]:
    if ".." not in text:
        raise ValueError(f"expected a range A..B, got {text!r}")
    a, _, b = text.partition("..")
    return _finite(a, "range ends"), _finite(b, "range ends")


def _in_out(parts: list[str]) -> tuple[float, float]:
    if len(parts) not in (0, 2):
        raise ValueError("give both IN and OUT values, or neither")
    return (1.0, 0.0) if not parts else (_finite(parts[0], "values"), _finite(parts[1], "values"))


def _gradient(parts):
    if len(parts) != 2:
        raise ValueError("wrong number of fields")
    return (_axis(parts[0]), *_range(parts[1]))


def _band(parts):
    if len(parts) < 2:
        raise ValueError("wrong number of fields")
    lo, hi = _range(parts[1])
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"band positions must satisfy 0 <= LO < HI <= 1, got {lo}..{hi}")
    return (_axis(parts[0]), lo, hi, *_in_out(parts[2:]))


def _sphere(parts):
    if len(parts) < 2:
        raise ValueError("wrong number of fields")
    centre = tuple(_finite(c, "centre coordinates") for c in parts[0].split(","))
    if len(centre) != 3:
        raise ValueError("the centre needs three coordinates CZ,CY,CX")
    radius = _finite(parts[1], "radius")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    return (centre, radius, *_in_out(parts[2:]))


def _layers(parts):
    if len(parts) < 2:
        raise ValueError("wrong number of fields")
    count = int(parts[1])
    if count < 1:
        raise ValueError(f"the number of layers must be at least 1, got {count}")
    a, b = _in_out(parts[2:])
    return (_axis(parts[0]), count, a, b)


def _constant(parts):
    if len(parts) != 1:
        raise ValueError("wrong number of fields")
    return (_finite(parts[0], "values"),)


KINDS = {"gradient": _gradient, "band": _band, "sphere": _sphere, "layers": _layers, "constant": _constant}
_SYNTAX = {
    "gradient": "gradient:AXIS:A..B",
    "band": "band:AXIS:LO..HI[:IN:OUT]",
    "sphere": "sphere:CZ,CY,CX:R[:IN:OUT]",
    "layers": "layers:AXIS:N[:A:B]",
    "constant": "constant:V",
}


def _spec_range(kind: str, args: tuple) -> tuple[float, float]:
    if kind == "constant":
        return args[0], args[0]
    if kind == "gradient":
        return min(args[1], args[2]), max(args[1], args[2])
    pair = args[-2:]
    return min(pair), max(pair)


class MaskTransform:
    """The noise transform of a mask: ``multiply`` scales the noise by M; ``offset`` adds ``shift(M)``.

    Parameters
    ----------
    mask : Mask
    halo : int
        The network's l_a: input voxel p takes the mask of output voxel p − halo.
    mode : {"multiply", "offset"}
    shift : callable, optional
        With ``offset``: fraction array (Z, Y, X) -> the noise's ``(scale, offset)`` there, scale (Z, Y, X) and
        offset (channels, Z, Y, X) (:meth:`swnn.continuous.ControlMap.field_transform`).
    """

    def __init__(self, mask: Mask, *, halo: int, mode: str = "multiply", shift=None):
        if mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {', '.join(MASK_MODES)}; received {mode!r}")
        if mode == "multiply" and not (0.0 <= mask.low and mask.high <= 1.0):
            raise ValueError(
                f"mask {mask.description} takes values {mask.low:g}..{mask.high:g}; mask_mode='multiply' "
                "needs values in [0, 1]"
            )
        if mode == "offset" and shift is None:
            raise ValueError("mask_mode='offset' needs the model's control map (the shift for each fraction)")
        self.mask, self.halo, self.mode, self.shift = mask, int(halo), mode, shift

    def __call__(self, noise: np.ndarray, origin: tuple[int, int, int]) -> np.ndarray:
        values = self.mask.block(origin, noise.shape[1:], self.halo)
        if self.mode == "multiply":
            return noise * values[None]
        scale, offset = self.shift(values)
        return noise * np.asarray(scale, dtype=np.float32)[None] + np.asarray(offset, dtype=np.float32)
