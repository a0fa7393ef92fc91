"""Comparing a microstructure with a reference, and describing one as a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import as_indicator, check_r_max
from .chords import chord_length_distribution
from .connectivity import connectivity
from .correlation import radial_two_point, two_point_probability
from .lineal_path import lineal_path
from .surface import specific_surface

__all__ = ["Comparison", "compare", "describe", "METRICS"]

METRICS = ("fraction", "s2", "lineal_path", "chord_length", "specific_surface", "connectivity")


@dataclass(frozen=True)
class Comparison:
    """Differences between a microstructure and a reference.

    Attributes
    ----------
    fraction_error : float
        Phase fraction of the volume minus that of the reference.
    s2_rmse : float
        Root-mean-square difference of the non-periodic S2(r), r = 0 … r_max.
    lineal_path_rmse : float
        Root-mean-square difference of L(r), r = 0 … r_max.
    axis_by_axis : bool
        True when volume and reference have the same number of dimensions and were compared axis by
        axis (RMSE over all axes and lags); False when the mean over the volume's axes was compared with
        the mean over the reference's axes (a 3D volume against a 2D image, as in the SWNN paper).
    r_max : int
        Largest lag compared, in voxels.
    """

    fraction_error: float
    s2_rmse: float
    lineal_path_rmse: float
    axis_by_axis: bool
    r_max: int

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers."""
        return {
            "fraction_error": float(self.fraction_error),
            "s2_rmse": float(self.s2_rmse),
            "lineal_path_rmse": float(self.lineal_path_rmse),
            "axis_by_axis": bool(self.axis_by_axis),
            "r_max": int(self.r_max),
        }


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def compare(
    volume: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    *,
    phase: int = 1,
    r_max: int = 32,
) -> Comparison:
    """Compare the phase fraction, S2 and lineal path of ``volume`` with those of ``reference``.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Microstructure to assess, for example a reconstruction.
    reference : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Reference, for example the 2D image a 3D volume was reconstructed from.
    phase : int, optional
        Label of the phase in both.
    r_max : int, optional
        Largest lag compared; must be smaller than every axis of both.

    Returns
    -------
    Comparison
        With the same number of dimensions, S2 and L are compared axis by axis; otherwise (a 3D volume
        against a 2D reference) the mean over the volume's axes is compared with the mean over the
        reference's axes.
    """
    volume_indicator = as_indicator(volume, phase=phase, name="volume")
    reference_indicator = as_indicator(reference, phase=phase, name="reference")
    r_max = check_r_max(volume_indicator.shape, r_max, range(volume_indicator.ndim), name="volume")
    check_r_max(reference_indicator.shape, r_max, range(reference_indicator.ndim), name="reference")
    s2 = [two_point_probability(ind, r_max=r_max) for ind in (volume_indicator, reference_indicator)]
    lp = [lineal_path(ind, r_max=r_max) for ind in (volume_indicator, reference_indicator)]
    axis_by_axis = volume_indicator.ndim == reference_indicator.ndim
    if axis_by_axis:
        s2_rmse = _rmse(s2[0].per_axis, s2[1].per_axis)
        lp_rmse = _rmse(lp[0].per_axis, lp[1].per_axis)
    else:
        s2_rmse = _rmse(s2[0].mean, s2[1].mean)
        lp_rmse = _rmse(lp[0].mean, lp[1].mean)
    return Comparison(
        fraction_error=s2[0].fraction - s2[1].fraction,
        s2_rmse=s2_rmse,
        lineal_path_rmse=lp_rmse,
        axis_by_axis=axis_by_axis,
        r_max=r_max,
    )


def describe(
    volume: np.ndarray | torch.Tensor,
    *,
    metrics: Sequence[str] = METRICS,
    phase: int = 1,
    r_max: int = 32,
) -> dict:
    """Descriptors of one phase as a JSON-ready dict (Python numbers and lists only).

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image.
    metrics : sequence of str, optional
        Any of ``"fraction"``, ``"s2"``, ``"lineal_path"``, ``"chord_length"``, ``"specific_surface"``,
        ``"connectivity"``.
    phase : int, optional
        Label of the phase.
    r_max : int, optional
        Largest lag of S2 (per axis and radial) and of the lineal path.

    Returns
    -------
    dict
        ``{"shape": [...], "phase": p, "fraction": f,
        "s2": {"r": [...], "per_axis": [[...], ...], "mean": [...], "radial": {"r": [...], "s2": [...]}},
        "lineal_path": {"r": [...], "per_axis": [[...], ...], "mean": [...]},
        "chord_length": {"lengths", "counts", "probability", "mean", "include_edges"},
        "specific_surface": S_v, "connectivity": {"percolating_fraction", "percolates", "n_clusters"}}``
        with only the requested metrics. S2 is the non-periodic estimate, chords exclude those touching
        the boundary, S_v carries the isotropic correction (see the modules of :mod:`physics`).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown} in metrics; accepted names: {list(METRICS)}")
    indicator = as_indicator(volume, phase=phase)
    if "s2" in metrics or "lineal_path" in metrics:
        r_max = check_r_max(indicator.shape, r_max, range(indicator.ndim))
    result: dict = {"shape": [int(s) for s in indicator.shape], "phase": int(phase)}
    if "fraction" in metrics:
        result["fraction"] = int(indicator.sum()) / indicator.numel()
    if "s2" in metrics:
        result["s2"] = two_point_probability(indicator, r_max=r_max).to_dict()
        result["s2"]["radial"] = radial_two_point(indicator, r_max=r_max).to_dict()
    if "lineal_path" in metrics:
        result["lineal_path"] = lineal_path(indicator, r_max=r_max).to_dict()
    if "chord_length" in metrics:
        result["chord_length"] = chord_length_distribution(indicator).to_dict()
    if "specific_surface" in metrics:
        result["specific_surface"] = specific_surface(indicator)
    if "connectivity" in metrics:
        result["connectivity"] = connectivity(indicator).to_dict()
    return result
