"""The integral range of a phase and the spread of its fraction in a window (Lantuéjoul 1991; Kanit et al. 2003).

:func:`s2_map` is the periodic two-point probability of a phase at every lag vector (by FFT),
:func:`integral_range` A = Σ_r (S2(r) − φ²)/(φ(1 − φ)) over the lags the image resolves, and
:func:`fraction_std` the standard deviation of the phase fraction of a window of V voxels,
D²(V) = φ(1 − φ)·A/V for V well above A (Kanit et al. 2003, Eq. 17). :func:`image_representativity` applies
them to the images a reconstruction is trained on: how well their own fraction is known.

References: Lantuéjoul, J. Microsc. 161 (1991) 387; Kanit et al., Int. J. Solids Struct. 40 (2003) 3647.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._validation import as_indicator
from ._validation import check_count as _count
from ._validation import check_probability as _probability

__all__ = ["Representativity", "fraction_std", "image_representativity", "integral_range", "s2_map"]


def s2_map(volume: object, *, phase: int = 1) -> np.ndarray:
    """Periodic two-point probability S2 of one phase at every lag vector, by FFT.

    ``volume`` is a label image, ndarray or Tensor of shape (Y, X) or (Z, Y, X), and ``phase`` the label of
    the phase. Returns an ndarray of float64 of the same shape: S2[i] = mean over x of I(x)·I(x + i), lags
    wrapping around (lag 0 at index 0, lag −1 at index −1); S2[0] is the phase fraction.
    """
    indicator = as_indicator(volume, phase=phase).cpu().numpy().astype(np.float64)
    spectrum = np.fft.rfftn(indicator)
    power = spectrum.real**2 + spectrum.imag**2
    return np.fft.irfftn(power, s=indicator.shape, axes=tuple(range(indicator.ndim))) / indicator.size


def integral_range(s2: np.ndarray, fraction: float, *, r_max: int | None = None) -> float:
    """Integral range A = Σ_{|r| ≤ r_max} (S2(r) − φ²) / (φ(1 − φ)), in voxels (pixels in 2D).

    Parameters
    ----------
    s2 : ndarray of shape (Y, X) or (Z, Y, X)
        Periodic S2 map from :func:`s2_map`.
    fraction : float
        Phase fraction φ, strictly between 0 and 1 (``s2.flat[0]`` for the image's own).
    r_max : int, optional
        Largest lag length summed. By default, the lags shorter than the first shell k <= |r| < k + 1 (k >= 1)
        whose mean normalised covariance is not above twice its noise sqrt(2·A_k/(N·count_k)), A_k the sum so
        far, N voxels (a lag's estimate has a variance of order A/N, and a lag and its opposite are one
        estimate). Only resolved lags count: over every lag of a periodic map the sum is exactly 0 when
        φ = S2(0), and far lags only add noise. This ignores a negative lobe of the covariance (an ordered
        structure), overestimating A: on the safe side for :func:`fraction_std`. A RuntimeWarning says when
        the covariance stays resolved up to half the smallest side (the image does not resolve A).
    """
    s2 = np.asarray(s2, dtype=np.float64)
    if s2.ndim not in (2, 3):
        raise ValueError(f"s2 must be a 2D or 3D map from s2_map, got shape {s2.shape}")
    fraction = _probability("fraction", fraction)
    covariance = (s2 - fraction**2) / (fraction * (1 - fraction))
    lags = np.meshgrid(*(np.fft.fftfreq(n, 1 / n) for n in s2.shape), indexing="ij", sparse=True)
    length = np.sqrt(sum(lag**2 for lag in lags))
    if r_max is not None:
        return float(covariance[length <= _count("r_max", r_max, 0)].sum())
    shell = np.floor(length).astype(np.int64).ravel()
    last = min(s2.shape) // 2
    totals = np.bincount(shell, weights=covariance.ravel())[: last + 1]
    counts = np.bincount(shell)[: last + 1]
    area = totals[0]
    for k in range(1, last + 1):
        if totals[k] / counts[k] <= 2 * math.sqrt(2 * max(area, 0.0) / (s2.size * counts[k])):
            return float(area)
        area += totals[k]
    warnings.warn(
        f"the covariance stays resolved up to |r| = {last}, half the smallest side of s2 {s2.shape}: "
        "the integral range is larger than this image resolves; the value returned is a lower estimate",
        RuntimeWarning,
        stacklevel=2,
    )
    return float(area)


def fraction_std(
    s2: np.ndarray, fraction: float, *, size: int | Sequence[int], r_max: int | None = None
) -> float:
    """Standard deviation of the phase fraction of a window, sqrt(φ(1 − φ)·A / V) (Kanit et al. 2003).

    ``size`` is the window's number of voxels V, or its shape; ``s2``, ``fraction`` and ``r_max`` are as for
    :func:`integral_range`.
    """
    shape = (size,) if np.ndim(size) == 0 else tuple(size)
    volume = math.prod(_count("size", n, 1) for n in shape)
    area = integral_range(s2, fraction, r_max=r_max)
    if area <= 0:
        raise ValueError(f"the integral range summed up to r_max={r_max} is {area:.3g}, not positive")
    return math.sqrt(fraction * (1 - fraction) * area / volume)


@dataclass(frozen=True)
class Representativity:
    """How well a set of images knows its material's phase fraction.

    Attributes
    ----------
    fraction : float
        The phase's fraction over all the images.
    integral_range : float
        A, in pixels (voxels for a volume), from the images' own S2; a lower estimate when not ``resolved``.
    fraction_std : float
        Standard deviation of the fraction of windows of the images' total size, sqrt(φ(1 − φ)·A / N): the
        uncertainty of ``fraction`` as an estimate of the material's.
    resolved : bool
        False when the covariance is still above its noise at half an image's side: the images do not
        resolve A, and ``fraction_std`` is a lower estimate.
    """

    fraction: float
    integral_range: float
    fraction_std: float
    resolved: bool

    @property
    def half_width(self) -> float:
        """Half-width of the 95 % interval of the fraction, 1.96 · ``fraction_std``."""
        return 1.96 * self.fraction_std


def _central(length: int, side: int) -> slice:
    start = max(length - side, 0) // 2
    return slice(start, start + min(length, side))


def image_representativity(
    images: Sequence[np.ndarray] | np.ndarray, *, phase: int = 1, max_side: int = 256
) -> Representativity | None:
    """The fraction of ``phase`` over ``images`` and its uncertainty from their integral range.

    Parameters
    ----------
    images : ndarray (H, W) or (Z, Y, X), or a sequence of them
        Label images of one material (several are taken as independent windows).
    phase : int
    max_side : int
        A is estimated on the central ``max_side`` crop of larger images (A is a property of the material;
        the crop bounds the FFT's memory); the fraction and N are those of the whole images.

    Returns
    -------
    Representativity, or None when the phase is absent or everywhere (no uncertainty to speak of).
    """
    arrays = [np.asarray(images)] if isinstance(images, np.ndarray) else [np.asarray(a) for a in images]
    voxels = sum(a.size for a in arrays)
    fraction = sum(float(np.count_nonzero(a == phase)) for a in arrays) / voxels
    if not 0 < fraction < 1:
        return None
    weighted, resolved = 0.0, True
    for array in arrays:
        crop = array[tuple(_central(n, max_side) for n in array.shape)]
        own = float(np.mean(crop == phase))
        if not 0 < own < 1:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            area = integral_range(s2_map(crop, phase=phase), own)
        resolved = resolved and not caught
        weighted += max(area, 1.0) * array.size  # at least one pixel: independent pixels, the safe side
    area = weighted / voxels
    return Representativity(fraction, area, math.sqrt(fraction * (1 - fraction) * area / voxels), resolved)
