"""Percolation of one phase: the part of it connected from one face of the volume to the opposite face, and
the part of it joined to a window's edge in 2D sections.

Clusters are the face-connected components of the phase (6-connectivity in 3D, 4-connectivity in 2D),
labelled with ``scipy.ndimage.label`` on the CPU. A cluster spans axis a when it has voxels on both
faces normal to a (index 0 and index N_a − 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ._validation import as_indicator

__all__ = ["ConnectivityResult", "connectivity", "section_connectivity"]


@dataclass(frozen=True)
class ConnectivityResult:
    """Face-to-face connectivity of one phase along each axis.

    Attributes
    ----------
    percolating_fraction : ndarray of float64 of shape (ndim,)
        Fraction of the phase's voxels that belong to a cluster spanning each axis, axis 0 first.
    percolates : ndarray of bool of shape (ndim,)
        Whether any cluster spans each axis.
    n_clusters : int
        Number of face-connected clusters of the phase.
    phase : int
        Label of the phase.
    """

    percolating_fraction: np.ndarray
    percolates: np.ndarray
    n_clusters: int
    phase: int

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers."""
        return {
            "percolating_fraction": [float(v) for v in self.percolating_fraction],
            "percolates": [bool(v) for v in self.percolates],
            "n_clusters": int(self.n_clusters),
        }


def connectivity(volume: np.ndarray | torch.Tensor, *, phase: int = 1) -> ConnectivityResult:
    """Fraction of one phase connected from each face of the volume to the opposite face.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image. A tensor on another device is copied to the CPU for the labelling.
    phase : int, optional
        Label of the phase.

    Returns
    -------
    ConnectivityResult

    Notes
    -----
    The labels take 4 bytes per voxel (int32): 4 GB for a 1024³ volume.
    """
    indicator = as_indicator(volume, phase=phase).cpu().numpy()
    structure = ndimage.generate_binary_structure(indicator.ndim, 1)  # face neighbours only
    labels, n_clusters = ndimage.label(indicator, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=n_clusters + 1)
    sizes[0] = 0  # background
    phase_voxels = int(sizes.sum())
    fractions = np.zeros(indicator.ndim)
    percolates = np.zeros(indicator.ndim, dtype=bool)
    for axis in range(indicator.ndim):
        first = np.unique(np.take(labels, 0, axis=axis))
        last = np.unique(np.take(labels, labels.shape[axis] - 1, axis=axis))
        spanning = np.intersect1d(first, last)
        spanning = spanning[spanning > 0]
        percolates[axis] = spanning.size > 0
        fractions[axis] = sizes[spanning].sum() / phase_voxels
    fractions.setflags(write=False)
    percolates.setflags(write=False)
    return ConnectivityResult(
        percolating_fraction=fractions, percolates=percolates, n_clusters=int(n_clusters), phase=int(phase)
    )


def section_connectivity(sections, *, phase: int = 1, window: int = 64) -> float:
    """Share C of one phase's pixels joined to a window's edge, over windows tiled on 2D sections.

    Each section is tiled with square windows of side ``window`` at a stride of ``window // 2``; in each
    window, the pixels of the phase joined by 4-connected paths of the phase to the window's first column are
    counted, and, separately, those joined to its first row. C is the count over all windows and both edges
    divided by twice the phase's pixels in the windows. A phase whose clusters reach across a window has C
    near 1; one of clusters smaller than the window, near 0. Unlike :func:`connectivity`, C is a statistic of
    sections, so the same figure can be taken on a 2D training image and on a volume's sections.

    Parameters
    ----------
    sections : ndarray of shape (Y, X), or sequence of them
        Label images; sections smaller than ``window`` are left out.
    phase : int, optional
        Label of the phase.
    window : int, optional
        Side of the windows, in pixels (at least 2).

    Returns
    -------
    float
        C in [0, 1]; 0 when the windows hold none of the phase.

    Raises
    ------
    ValueError
        When no section is as large as ``window`` in both directions.
    """
    from ._validation import check_count, check_phase

    window = check_count("window", window, 2)
    phase = check_phase(phase)
    if isinstance(sections, (np.ndarray, torch.Tensor)) and sections.ndim == 2:
        sections = [sections]
    joined = count = 0
    tiled = False
    for section in sections:
        if isinstance(section, torch.Tensor):
            section = section.cpu().numpy()
        indicator = np.asarray(section) == phase
        if indicator.ndim != 2:
            raise ValueError(f"sections must be 2D images; received one of shape {indicator.shape}")
        rows, cols = indicator.shape
        for i in range(0, rows - window + 1, window // 2):
            for j in range(0, cols - window + 1, window // 2):
                tiled = True
                tile = indicator[i : i + window, j : j + window]
                for oriented in (tile, tile.T):
                    labels, _ = ndimage.label(oriented)
                    edge = np.unique(labels[:, 0])
                    edge = edge[edge > 0]
                    joined += int(np.isin(labels, edge).sum())
                    count += int(oriented.sum())
    if not tiled:
        raise ValueError(f"no section is at least window = {window} pixels in both directions")
    return joined / count if count else 0.0
