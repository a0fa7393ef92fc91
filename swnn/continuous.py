"""Continuous control: the calibrated map from a shift of the input noise's mean to the generated fraction
(paper Fig. 12), and its inverse.

Shifting the mean of the noise moves the fraction of the controlled phase that a trained network generates,
but the noise channels act differently, often against each other, and not always monotonically: on a model of
M3, +1 on channel 1 lowered the fraction from 0.41 to 0.16 while +1 on channel 2 raised it to 0.42, shifting
all three together moved it only between 0.17 and 0.43 over ±3, and along the gradient at 0 it fell to 0.02
one way but dipped before rising the other. The shift is therefore made along two rays of the channel space,
one that raises the fraction and one that lowers it, each chosen among the channel axes and the diagonal
(both signs) as the one whose fraction moves furthest monotonically on a coarse search. The control path is
s · up for s > 0 and |s| · down for s < 0; the map s -> fraction along it is measured once per model
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

__all__ = ["CALIBRATION_SEED", "ControlMap", "calibrate_control", "shift_transform"]

CALIBRATION_SEED = 2**31 - 7
"""Seed of the calibration noise: a field no user seed of ordinary size draws."""

RAY = tuple(np.round(np.arange(0.1, 3.0001, 0.1), 10))
"""Shifts measured along each ray (stopped early once the fraction has stopped moving)."""
SEARCH = (0.5, 1.0, 1.5, 2.0, 3.0)
"""Shifts of the coarse search for the rays."""


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
    direction, direction_down : tuple of float or None
        Unit vectors over the noise channels: the shift is s · direction for s >= 0 and |s| · direction_down
        for s < 0 (``direction_down`` None: s · direction on both sides; ``direction`` None: every channel
        by s).
    """

    shifts: tuple[float, ...]
    fractions: tuple[float, ...]
    phase: int
    shape: tuple[int, int, int] = (64, 64, 64)
    samples: int = 4
    precision: str = "fp32"
    direction: tuple[float, ...] | None = None
    direction_down: tuple[float, ...] | None = None

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

    def _rays(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        up = np.ones(channels) if self.direction is None else np.asarray(self.direction)
        down = -up if self.direction_down is None else np.asarray(self.direction_down)
        if len(up) != channels or len(down) != channels:
            raise ValueError(f"control map directions have {len(up)} channels; the model has {channels}")
        return up.astype(np.float32), down.astype(np.float32)

    def offset(self, shift, channels: int) -> np.ndarray:
        """The noise offset of each channel for ``shift`` (a number or an array): (channels, *shape) float32."""
        shift = np.asarray(shift, dtype=np.float32)
        up, down = self._rays(channels)
        expand = (slice(None),) + (None,) * shift.ndim
        return up[expand] * np.maximum(shift, 0)[None] + down[expand] * np.maximum(-shift, 0)[None]

    def transform(self, fraction: float, channels: int):
        """The noise transform that generates ``fraction`` (uniform continuous control)."""
        return _Offset(self.offset(self.shift_for(fraction), channels))

    def field_offset(self, channels: int):
        """fraction array -> noise offsets (channels, *shape): the per-voxel shift of ``offset`` masks."""
        return _FieldOffset(self, channels)


class _Offset:
    """Adds a constant offset per noise channel (a class, so that it can be sent to workers)."""

    def __init__(self, offset: np.ndarray):
        self.offset = np.asarray(offset, dtype=np.float32).reshape(-1, 1, 1, 1)

    def __call__(self, noise: np.ndarray, origin) -> np.ndarray:
        return noise + self.offset


class _FieldOffset:
    def __init__(self, control_map: ControlMap, channels: int):
        self.control_map, self.channels = control_map, channels

    def __call__(self, fractions: np.ndarray) -> np.ndarray:
        return self.control_map.offset(self.control_map.shift_for(fractions), self.channels)


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

    def fraction_of(offset: np.ndarray, shape=shape, samples=samples) -> float:
        transform = _Offset(offset)
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
    candidates = [np.eye(channels, dtype=np.float32)[k] * sign for k in range(channels) for sign in (1, -1)]
    candidates += [np.full(channels, sign / np.sqrt(channels), np.float32) for sign in (1, -1)]
    try:
        base = fraction_of(np.zeros(channels), search_shape, 2)
        reach = []  # per candidate: the highest and lowest fraction of its leading monotonic run
        for vector in candidates:
            values = [base] + [fraction_of(s * vector, search_shape, 2) for s in SEARCH]
            reach.append((_run_end(values, +1), _run_end(values, -1)))
        up = candidates[int(np.argmax([r[0] for r in reach]))]
        down = candidates[int(np.argmin([r[1] for r in reach]))]
        measured = {0.0: fraction_of(np.zeros(channels))}
        for sign, vector in ((1.0, up), (-1.0, down)):
            last, still = measured[0.0], 0
            for s in RAY:
                value = measured[sign * s] = fraction_of(np.float32(s) * vector)
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
        direction=tuple(float(v) for v in up),
        direction_down=tuple(float(v) for v in down),
    )


def _run_end(values: Sequence[float], sign: int) -> float:
    """The last value of the leading run of ``values`` that moves strictly in the direction ``sign``."""
    end = values[0]
    for value in values[1:]:
        if (value - end) * sign <= 0:
            break
        end = value
    return end


def _vector(values) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def shift_transform(shift: float, vector):
    """The noise transform adding ``shift`` times ``vector`` (one value per channel) to the noise."""
    return _Offset(np.float32(shift) * np.asarray(vector, dtype=np.float32))
