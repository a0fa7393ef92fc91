"""Lineal path function L(r) of one phase along each array axis.

L(r) is the probability that a segment of length r lies entirely in the phase (Torquato, *Random
Heterogeneous Materials*, Sec. 2.2.5). On a voxel grid: the probability that r + 1 consecutive voxels
along an axis all belong to the phase, over all such segments that fit inside the volume (non-periodic).
L(0) is the phase fraction and L is non-increasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._validation import as_indicator, check_r_max
from .chords import _run_length_histograms

__all__ = ["LinealPathResult", "lineal_path"]


@dataclass(frozen=True)
class LinealPathResult:
    """Lineal path function along each axis.

    Attributes
    ----------
    r : ndarray of int of shape (r_max + 1,)
        Segment lengths in voxels, 0 … r_max (a segment of length r covers r + 1 voxels).
    per_axis : ndarray of float64 of shape (ndim, r_max + 1)
        L(r) along each array axis, axis 0 first.
    mean : ndarray of float64 of shape (r_max + 1,)
        Mean of ``per_axis`` over the axes.
    fraction : float
        Volume fraction of the phase (= L(0)).
    phase : int
        Label of the phase.
    """

    r: np.ndarray
    per_axis: np.ndarray
    mean: np.ndarray
    fraction: float
    phase: int

    def to_dict(self) -> dict:
        """JSON-ready ``{"r": [...], "per_axis": [[...], ...], "mean": [...]}`` of Python numbers."""
        return {
            "r": [int(v) for v in self.r],
            "per_axis": [[float(v) for v in row] for row in self.per_axis],
            "mean": [float(v) for v in self.mean],
        }


def _segments_in_runs(run_histogram: np.ndarray, r_max: int) -> np.ndarray:
    """Number of segments of r + 1 voxels inside runs, r = 0 … r_max.

    A run of m voxels holds max(m − r, 0) such segments, so the count is Σ_m h[m] · max(m − r, 0).
    """
    lengths = np.arange(run_histogram.size, dtype=np.int64)
    segments = np.empty(r_max + 1, dtype=np.int64)
    for r in range(r_max + 1):
        segments[r] = int(np.dot(run_histogram[r + 1 :], lengths[r + 1 :] - r))
    return segments


def lineal_path(volume: np.ndarray | torch.Tensor, *, phase: int = 1, r_max: int = 32) -> LinealPathResult:
    """Lineal path function L(r) of one phase along each array axis (non-periodic).

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image; computed on the tensor's device.
    phase : int, optional
        Label of the phase.
    r_max : int, optional
        Largest segment length in voxels; must be smaller than every axis.

    Returns
    -------
    LinealPathResult

    Notes
    -----
    Along an axis of length N, L(r) = Σ_runs max(m − r, 0) / ((N − r) · lines), where the sum runs over
    the runs (chords, including those cut by the boundary) of m consecutive phase voxels. The run
    lengths come from one pass over the volume in slabs (``physics.chords``), so the cost does not grow
    with ``r_max`` and the counts are exact integers.
    """
    indicator = as_indicator(volume, phase=phase)
    r_max = check_r_max(indicator.shape, r_max, range(indicator.ndim))
    numel = indicator.numel()
    lags = np.arange(r_max + 1)
    per_axis = np.empty((indicator.ndim, r_max + 1), dtype=np.float64)
    for axis in range(indicator.ndim):
        length = int(indicator.shape[axis])
        all_runs, _ = _run_length_histograms(indicator, axis)
        per_axis[axis] = _segments_in_runs(all_runs, r_max) / ((length - lags) * (numel // length))
    for values in (lags, per_axis):
        values.setflags(write=False)
    mean = per_axis.mean(axis=0)
    mean.setflags(write=False)
    return LinealPathResult(
        r=lags, per_axis=per_axis, mean=mean, fraction=float(per_axis[0, 0]), phase=int(phase)
    )
