"""Continuous control: the calibrated map from a shift of the input noise's mean to the generated fraction
(paper Fig. 12), and its inverse.

Shifting the mean of the noise moves the fraction of the controlled phase that a trained network generates,
but the noise channels act differently, often against each other, and not always monotonically: on a model of
M3, +1 on channel 1 lowered the fraction from 0.41 to 0.16 while +1 on channel 2 raised it to 0.42, shifting
all three together moved it only between 0.17 and 0.43 over ±3, and along the gradient at 0 it fell to 0.02
one way but dipped before rising the other. The shift is therefore made along two rays of the channel space,
one that raises the fraction and one that lowers it, each chosen among the channel axes and the diagonal
(both signs) and a scaling of the noise (x · (1 + s) or x / (1 + s)) as the one whose fraction moves
furthest monotonically on a coarse search (on that model of M3, scaling raised it steadily to 0.52 at × 2).
The control path is s · up for s > 0 and |s| · down for s < 0; the map s -> fraction along it is measured once per model
(:func:`calibrate_control`, at the end of ``swnn train``, or at the first request of a fraction from a model
saved without it), on the same noise for every s (common random numbers, so the measured curve is smooth),
and stored in the model's metadata as a :class:`ControlMap`. Only the stretch around s = 0 on which the
fraction is strictly monotonic is kept; the fractions it spans are the reachable range. Its inverse gives the
shift for a requested fraction, uniform (``fraction``) or per voxel (a fraction profile or an ``offset`` mask,
:mod:`swnn.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CALIBRATION_SEED", "ControlMap", "calibrate_control", "ray_affine"]

CALIBRATION_SEED = 2**31 - 7
"""Seed of the calibration noise: a field no user seed of ordinary size draws."""

RAY = tuple(np.round(np.arange(0.1, 3.0001, 0.1), 10))
"""Shifts measured along each ray (stopped early once the fraction has stopped moving)."""
SEARCH = (0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)
"""Shifts of the coarse search for the rays: as fine as the ray near 0, where a dip ends a ray's monotonic run
(on a model of M3, +0.5 on one channel gave the model's own fraction again after a dip at +0.3)."""


@dataclass(frozen=True)
class ControlMap:
    """Fraction of the controlled phase against the shift of the noise mean, on its monotonic stretch.

    Attributes
    ----------
    shifts : tuple of float
        Increasing noise-mean shifts.
    fractions : tuple of float
        The fraction measured at each shift (mean over the calibration samples), strictly monotonic.
    phase : int
        The phase whose fraction it is.
    shape : (Z, Y, X)
        Calibration volume shape; ``samples`` volumes per shift, seed :data:`CALIBRATION_SEED`.
    samples : int
    precision : str
        The precision it was measured at (``fp32`` or ``bf16``).
    direction, direction_down : tuple of float, str or None
        The rays of the control path for s >= 0 and s < 0 (:func:`ray_affine`): a unit vector over the noise
        channels (shift the means), ``"scale+"`` or ``"scale-"`` (scale the noise). ``direction_down`` None:
        the same ray continued (s · direction); ``direction`` None: every channel shifted by s.
    """

    shifts: tuple[float, ...]
    fractions: tuple[float, ...]
    phase: int
    shape: tuple[int, int, int] = (64, 64, 64)
    samples: int = 4
    precision: str = "fp32"
    direction: tuple[float, ...] | str | None = None
    direction_down: tuple[float, ...] | str | None = None

    @property
    def reachable(self) -> tuple[float, float]:
        """The smallest and largest fraction the map reaches."""
        return float(min(self.fractions)), float(max(self.fractions))

    def shift_for(self, fraction) -> np.ndarray:
        """The noise shift giving ``fraction`` (a number or an array), by linear interpolation of the map.

        Raises
        ------
        ValueError
            When a fraction lies outside :attr:`reachable`.
        """
        values = np.asarray(fraction, dtype=np.float64)
        low, high = self.reachable
        if values.size and (values.min() < low or values.max() > high):
            bad = values.min() if values.min() < low else values.max()
            raise ValueError(
                f"fraction {float(bad):.4g} of phase {self.phase} is outside the range this model reaches by "
                f"continuous control, {low:.4f}..{high:.4f}"
            )
        fractions = np.asarray(self.fractions)
        shifts = np.asarray(self.shifts)
        if fractions[0] > fractions[-1]:  # np.interp needs increasing abscissae
            fractions, shifts = fractions[::-1], shifts[::-1]
        return np.interp(values, fractions, shifts).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ControlMap:
        return cls(
            shifts=tuple(float(s) for s in data["shifts"]),
            fractions=tuple(float(f) for f in data["fractions"]),
            phase=int(data["phase"]),
            shape=tuple(int(n) for n in data.get("shape", (64, 64, 64))),
            samples=int(data.get("samples", 4)),
            precision=str(data.get("precision", "fp32")),
            direction=_vector(data.get("direction")),
            direction_down=_vector(data.get("direction_down")),
        )

    def affine(self, shift, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """The noise transform x -> scale · x + offset for ``shift`` (a number or an array): ``scale`` of the
        shift's shape and ``offset`` (channels, *shape), float32 (see :func:`ray_affine`)."""
        shift = np.asarray(shift, dtype=np.float32)
        up = "diagonal" if self.direction is None else self.direction
        down = (
            ("diagonal-" if self.direction is None else up)
            if self.direction_down is None
            else self.direction_down
        )
        scale_up, offset_up = ray_affine(up, np.maximum(shift, 0), channels)
        scale_down, offset_down = ray_affine(down, np.maximum(-shift, 0), channels)
        return scale_up * scale_down, offset_up + offset_down

    def transform(self, fraction: float, channels: int):
        """The noise transform that generates ``fraction`` (uniform continuous control)."""
        return self.shift_transform(self.shift_for(fraction), channels)

    def shift_transform(self, shift: float, channels: int):
        """The noise transform of the control path at ``shift``."""
        return _Affine(*self.affine(shift, channels))

    def field_transform(self, channels: int):
        """fraction array (Z, Y, X) -> (scale, offset) of the noise there: the per-voxel control of
        ``offset`` masks and fraction profiles."""
        return _FieldAffine(self, channels)


def ray_affine(ray, magnitude, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) of the noise at ``magnitude`` >= 0 (a number or an array) along ``ray``: a vector over
    the channels (x + magnitude · vector), ``"scale+"`` (x · (1 + magnitude)), ``"scale-"`` (x / (1 +
    magnitude)), or ``"diagonal"`` / ``"diagonal-"`` (every channel by ±magnitude)."""
    magnitude = np.asarray(magnitude, dtype=np.float32)
    scale = np.ones_like(magnitude)
    offset = np.zeros((channels, *magnitude.shape), dtype=np.float32)
    expand = (slice(None),) + (None,) * magnitude.ndim
    if isinstance(ray, str):
        if ray == "scale+":
            return 1 + magnitude, offset
        if ray == "scale-":
            return 1 / (1 + magnitude), offset
        if ray not in ("diagonal", "diagonal-"):
            raise ValueError(f"unknown control ray {ray!r}")
        vector = np.full(channels, 1.0 if ray == "diagonal" else -1.0, np.float32)
    else:
        vector = np.asarray(ray, dtype=np.float32)
        if vector.shape != (channels,):
            raise ValueError(f"control ray {tuple(ray)} has {vector.size} channels; the model has {channels}")
    return scale, offset + vector[expand] * magnitude[None]


class _Affine:
    """x -> scale · x + offset per noise channel (a class, so that it can be sent to workers)."""

    def __init__(self, scale, offset: np.ndarray):
        self.scale = np.float32(scale)
        self.offset = np.asarray(offset, dtype=np.float32).reshape(-1, 1, 1, 1)

    def __call__(self, noise: np.ndarray, origin) -> np.ndarray:
        return noise * self.scale + self.offset


class _FieldAffine:
    def __init__(self, control_map: ControlMap, channels: int):
        self.control_map, self.channels = control_map, channels

    def __call__(self, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.control_map.affine(self.control_map.shift_for(fractions), self.channels)


def monotonic_stretch(shifts: Sequence[float], fractions: Sequence[float]) -> tuple[int, int]:
    """Indices [i, j] of the longest stretch around the shift nearest 0 on which ``fractions`` is strictly
    monotonic (in the direction it moves at 0)."""
    f = np.asarray(fractions, dtype=np.float64)
    centre = int(np.argmin(np.abs(np.asarray(shifts))))
    steps = np.sign(np.diff(f))
    left = steps[centre - 1] if centre > 0 else 0.0
    right = steps[centre] if centre < len(steps) else 0.0
    direction = right if right != 0 else left
    if direction == 0:
        return centre, centre
    i = centre
    while i > 0 and steps[i - 1] == direction:
        i -= 1
    j = centre
    while j < len(steps) and steps[j] == direction:
        j += 1
    return i, j


def calibrate_control(
    model,
    *,
    shape: Sequence[int] = (64, 64, 64),
    samples: int = 4,
    precision: str = "auto",
    device="auto",
    progress: bool = False,
) -> ControlMap:
    """Measure the map from noise-mean shift to the fraction of the model's controlled phase.

    Parameters
    ----------
    model : TrainedModel
    shape : (Z, Y, X)
        Calibration volume shape; ``samples`` volumes per shift, the same noise for every shift.
    precision, device
        As for generation; the map records the precision.

    Returns
    -------
    ControlMap
        Its monotonic stretch around shift 0; a ValueError when the fraction does not move with the shift.
    """
    from swnn._device import resolve_device, resolve_precision
    from swnn.generation import GenerationSettings, generate

    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    settings = GenerationSettings(block=max(shape), seed=CALIBRATION_SEED, precision=precision)
    phase = int(model.metadata.phase)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="calibrate fraction control", unit="shift", dynamic_ncols=True)

    channels = model.network.noise_channels

    def fraction_of(ray, magnitude: float, shape=shape, samples=samples) -> float:
        transform = _Affine(*ray_affine(ray, magnitude, channels))
        total = 0.0
        for sample in range(samples):
            volume = generate(
                model, shape, settings=settings, sample=sample, device=dev, transforms=[transform]
            )
            total += float(np.mean(volume == phase))
        if bar is not None:
            bar.update(1)
        return total / samples

    search_shape = tuple(min(48, n) for n in shape)
    candidates = [
        tuple(float(v) for v in np.eye(channels)[k] * sign) for k in range(channels) for sign in (1, -1)
    ]
    candidates += ["diagonal", "diagonal-", "scale+", "scale-"]
    try:
        base = fraction_of("scale+", 0.0, search_shape, 1)
        reach = []  # per candidate: the highest and lowest fraction of its leading monotonic run
        for ray in candidates:
            values = [base] + [fraction_of(ray, s, search_shape, 1) for s in SEARCH]
            reach.append((_run_end(values, +1), _run_end(values, -1)))
        up = candidates[int(np.argmax([r[0] for r in reach]))]
        down = candidates[int(np.argmin([r[1] for r in reach]))]
        measured = {0.0: fraction_of("scale+", 0.0)}
        for sign, ray in ((1.0, up), (-1.0, down)):
            last, still = measured[0.0], 0
            for s in RAY:
                value = measured[sign * s] = fraction_of(ray, s)
                moved = (value - last) * sign > 1e-4
                still = 0 if moved else still + 1
                last = value
                if still >= 3 or value in (0.0, 1.0):
                    break
    finally:
        if bar is not None:
            bar.close()
    shifts = sorted(measured)
    fractions = [measured[s] for s in shifts]
    i, j = monotonic_stretch(shifts, fractions)
    if j <= i:
        raise ValueError(
            f"the fraction of phase {phase} does not change with the noise mean around 0 "
            f"({fractions[i]:.4f}); this model cannot be controlled continuously"
        )
    return ControlMap(
        shifts=tuple(shifts[i : j + 1]),
        fractions=tuple(fractions[i : j + 1]),
        phase=phase,
        shape=tuple(int(n) for n in shape),
        samples=int(samples),
        precision=precision,
        direction=up,
        direction_down=down,
    )


def _run_end(values: Sequence[float], sign: int) -> float:
    """The last value of the leading run of ``values`` that moves strictly in the direction ``sign``."""
    end = values[0]
    for value in values[1:]:
        if (value - end) * sign <= 0:
            break
        end = value
    return end


def _vector(values) -> tuple[float, ...] | str | None:
    if values is None or isinstance(values, str):
        return values
    return tuple(float(v) for v in values)
