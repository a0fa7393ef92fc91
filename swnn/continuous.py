"""Continuous control: the calibrated map from a shift of the input noise's mean to the generated fraction
(paper Fig. 12), and its inverse.

Shifting the mean of the noise moves the fraction of the controlled phase that a trained network generates,
but the noise channels act differently, and in a trained network often against each other (on a model of M3,
+1 on channel 1 lowered the fraction from 0.41 to 0.16 while +1 on channel 2 raised it to 0.42; shifting all
three together moved it only between 0.17 and 0.43 over ±3). The shift is therefore made along a *direction*
of the channel space: the gradient of the fraction with respect to each channel's mean, measured by central
differences of ±0.5 at the calibration, normalised to unit length. The map s -> fraction along it is
measured once per model (:func:`calibrate_control`, at the end of
``swnn train``, or at the first request of a fraction from a model saved without it), on the same noise for
every s (common random numbers, so the measured curve is smooth), and stored in the model's metadata as a
:class:`ControlMap`. Only the stretch around s = 0 on which the fraction is strictly monotonic is kept; the
fractions it spans are the reachable range. Its inverse gives the shift for a requested fraction, uniform
(``fraction``) or per voxel (a fraction profile or an ``offset`` mask, :mod:`swnn.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CALIBRATION_SEED", "ControlMap", "calibrate_control", "shift_transform"]

CALIBRATION_SEED = 2**31 - 7
"""Seed of the calibration noise: a field no user seed of ordinary size draws."""

SHIFTS = tuple(np.round(np.arange(-1.2, 1.2001, 0.1), 10))
"""The noise-mean shifts measured first; the grid is extended in steps of 0.3 up to ±3 while the fraction is
still moving at its ends."""


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
    direction : tuple of float or None
        Unit vector over the noise channels along which the mean is shifted; None shifts every channel by s.
    """

    shifts: tuple[float, ...]
    fractions: tuple[float, ...]
    phase: int
    shape: tuple[int, int, int] = (64, 64, 64)
    samples: int = 4
    precision: str = "fp32"
    direction: tuple[float, ...] | None = None

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
            direction=None if data.get("direction") is None else tuple(float(v) for v in data["direction"]),
        )

    def vector(self, channels: int) -> np.ndarray:
        """The shift of each noise channel per unit of s, float32 (channels,)."""
        if self.direction is None:
            return np.ones(channels, dtype=np.float32)
        if len(self.direction) != channels:
            raise ValueError(
                f"control map direction has {len(self.direction)} channels; the model has {channels}"
            )
        return np.asarray(self.direction, dtype=np.float32)

    def transform(self, fraction: float, channels: int):
        """The noise transform that generates ``fraction`` (uniform continuous control)."""
        return shift_transform(float(self.shift_for(fraction)), self.vector(channels))


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

    def fraction_of(vector: np.ndarray) -> float:
        transform = shift_transform(1.0, vector)
        total = 0.0
        for sample in range(samples):
            volume = generate(
                model, shape, settings=settings, sample=sample, device=dev, transforms=[transform]
            )
            total += float(np.mean(volume == phase))
        if bar is not None:
            bar.update(1)
        return total / samples

    try:
        gradient = np.zeros(channels)
        for k in range(channels):
            step = np.zeros(channels, dtype=np.float32)
            step[k] = 0.5
            gradient[k] = fraction_of(step) - fraction_of(-step)
        norm = float(np.linalg.norm(gradient))
        direction = gradient / norm if norm > 0 else np.ones(channels) / np.sqrt(channels)
        direction = direction.astype(np.float32)

        def fraction_at(shift: float) -> float:
            return fraction_of(np.float32(shift) * direction)

        measured = {float(s): fraction_at(float(s)) for s in SHIFTS}
        for side in (-1.0, 1.0):  # extend while the end still moves
            while True:
                ordered = sorted(measured)
                end = ordered[0] if side < 0 else ordered[-1]
                before = ordered[1] if side < 0 else ordered[-2]
                value = measured[end]
                if abs(end) >= 3.0 or value in (0.0, 1.0) or abs(value - measured[before]) < 1e-4:
                    break
                nxt = round(end + 0.3 * side, 10)
                measured[nxt] = fraction_at(nxt)
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
        direction=tuple(float(v) for v in direction),
    )


class _Shift:
    """Adds ``shift · vector`` to the noise channels (a class, so that it can be sent to workers)."""

    def __init__(self, shift: float, vector):
        self.offset = (np.float32(shift) * np.asarray(vector, dtype=np.float32))[:, None, None, None]

    def __call__(self, noise: np.ndarray, origin) -> np.ndarray:
        return noise + self.offset


def shift_transform(shift: float, vector):
    """The noise transform adding ``shift`` times ``vector`` (one value per channel) to the noise."""
    return _Shift(shift, vector)
