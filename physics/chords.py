"""Chord-length distribution of one phase along each array axis.

A chord is a maximal run of consecutive phase voxels along a line parallel to an axis (Torquato,
*Random Heterogeneous Materials*, Sec. 2.2.6). The run lengths found here also give the lineal path
function (:mod:`physics.lineal_path`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._validation import as_indicator, slab_slices

__all__ = ["ChordLengthResult", "chord_length_distribution"]

# Lines are copied into a padded bool buffer slab by slab: 16 Mi voxels per slab, so the buffers and the
# run positions (int64, one per run) stay near 100 MB even at 1024³.
_SLAB_ELEMENTS = 1 << 24


def _run_length_histograms(
    indicator: torch.Tensor, axis: int, slab_elements: int = _SLAB_ELEMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of the lengths of the runs of True along ``axis``.

    Returns ``(all_runs, interior_runs)``, two int64 arrays of shape (N + 1,) indexed by run length
    (N = length of the axis): every run, and only the runs that touch neither end of their line.

    Each line is padded with False at both ends, so its value changes (start, end, start, end, …)
    alternate and pair up within the line: run length = end position − start position.
    """
    length = int(indicator.shape[axis])
    device = indicator.device
    all_runs = torch.zeros(length + 1, dtype=torch.int64, device=device)
    interior_runs = torch.zeros_like(all_runs)
    for index in slab_slices(indicator.shape, axis, slab_elements):
        lines = indicator[index].movedim(axis, -1).reshape(-1, length)  # (lines, N)
        padded = torch.zeros((lines.shape[0], length + 2), dtype=torch.bool, device=device)
        padded[:, 1:-1] = lines
        del lines
        changes = torch.ne(padded[:, 1:], padded[:, :-1]).flatten()  # (lines · (N + 1),)
        del padded
        positions = torch.nonzero(changes).flatten()  # start, end, start, end, … (flat positions)
        del changes
        starts, ends = positions[0::2], positions[1::2]
        runs = ends - starts
        touches_edge = (starts % (length + 1) == 0) | (ends % (length + 1) == length)
        all_runs += torch.bincount(runs, minlength=length + 1)
        interior_runs += torch.bincount(runs[~touches_edge], minlength=length + 1)
    return all_runs.cpu().numpy(), interior_runs.cpu().numpy()


@dataclass(frozen=True)
class ChordLengthResult:
    """Chord-length distribution along each axis.

    Attributes
    ----------
    lengths : ndarray of int of shape (n_lengths,)
        Chord lengths in voxels, 1 … the longest chord counted on any axis.
    counts : ndarray of int64 of shape (ndim, n_lengths)
        Number of chords of each length along each axis, axis 0 first.
    probability : ndarray of float64 of shape (ndim, n_lengths)
        ``counts`` normalised to sum 1 per axis (number-weighted); a row of zeros for an axis without
        chords.
    mean : ndarray of float64 of shape (ndim,)
        Mean chord length per axis in voxels; NaN for an axis without chords.
    include_edges : bool
        Whether chords that touch the volume's boundary were counted.
    phase : int
        Label of the phase.
    """

    lengths: np.ndarray
    counts: np.ndarray
    probability: np.ndarray
    mean: np.ndarray
    include_edges: bool
    phase: int

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers (NaN means become ``None``)."""
        return {
            "lengths": [int(v) for v in self.lengths],
            "counts": [[int(v) for v in row] for row in self.counts],
            "probability": [[float(v) for v in row] for row in self.probability],
            "mean": [None if np.isnan(v) else float(v) for v in self.mean],
            "include_edges": bool(self.include_edges),
        }


def chord_length_distribution(
    volume: np.ndarray | torch.Tensor, *, phase: int = 1, include_edges: bool = False
) -> ChordLengthResult:
    """Histogram of the lengths of the chords of one phase along each array axis.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image; computed on the tensor's device.
    phase : int, optional
        Label of the phase.
    include_edges : bool, optional
        Chords that touch the volume's boundary are cut by it, so their length is only a lower bound.
        By default (False) they are left out: every counted length is exact, but long chords are
        under-represented because they touch the boundary more often (relative bias of order m / N for
        chords of length m on lines of N voxels). True counts them at their truncated length.

    Returns
    -------
    ChordLengthResult
    """
    indicator = as_indicator(volume, phase=phase)
    histograms = []
    for axis in range(indicator.ndim):
        all_runs, interior_runs = _run_length_histograms(indicator, axis)
        histograms.append(all_runs if include_edges else interior_runs)
    longest = max(int(np.flatnonzero(h).max()) if h.any() else 0 for h in histograms)
    lengths = np.arange(1, max(longest, 1) + 1)
    counts = np.zeros((indicator.ndim, lengths.size), dtype=np.int64)
    for axis, histogram in enumerate(histograms):
        top = min(histogram.size, lengths.size + 1)
        counts[axis, : top - 1] = histogram[1:top]
    totals = counts.sum(axis=1)
    probability = np.zeros(counts.shape)
    np.divide(counts, totals[:, None], out=probability, where=totals[:, None] > 0)
    mean = np.full(indicator.ndim, np.nan)
    np.divide(counts @ lengths, totals, out=mean, where=totals > 0)
    for values in (lengths, counts, probability, mean):
        values.setflags(write=False)
    return ChordLengthResult(
        lengths=lengths,
        counts=counts,
        probability=probability,
        mean=mean,
        include_edges=bool(include_edges),
        phase=int(phase),
    )
