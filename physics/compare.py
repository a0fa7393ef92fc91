"""Comparing a microstructure with a reference, from two evaluations or two arrays, and :func:`describe`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import as_indicator, check_r_max
from .correlation import two_point_probability
from .evaluate import METRICS, Evaluation, adaptive_r_max, evaluate
from .lineal_path import lineal_path

__all__ = ["Comparison", "compare", "describe", "METRICS"]


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


def _comparison(fractions, s2, lp, *, axis_by_axis: bool, r_max: int) -> Comparison:
    """The one formula: ``s2`` and ``lp`` are pairs of (per_axis, mean) curves holding lags 0 … ``r_max``."""
    lags = slice(0, r_max + 1)
    which = 0 if axis_by_axis else 1  # per axis, or the mean over the axes of each
    s2_rmse = _rmse(s2[0][which][..., lags], s2[1][which][..., lags])
    lp_rmse = _rmse(lp[0][which][..., lags], lp[1][which][..., lags])
    return Comparison(
        fraction_error=fractions[0] - fractions[1],
        s2_rmse=s2_rmse,
        lineal_path_rmse=lp_rmse,
        axis_by_axis=axis_by_axis,
        r_max=r_max,
    )


def _compare_evaluations(volume: Evaluation, reference: Evaluation, phase, r_max) -> Comparison:
    for name, evaluation in (("volume", volume), ("reference", reference)):
        missing = [m for m in ("s2", "lineal_path") if getattr(evaluation, m) is None]
        if missing:
            raise ValueError(
                f"compare needs S2 and the lineal path of both evaluations; the {name} evaluation has no "
                f"{' and no '.join(missing)} (evaluate it with metrics including 's2' and 'lineal_path')"
            )
    if phase is not None and {int(phase)} != {volume.phase, reference.phase}:
        raise ValueError(
            f"phase={phase!r} does not match the evaluations, which describe phase {volume.phase} (volume) and "
            f"{reference.phase} (reference); leave phase out when comparing evaluations"
        )
    common = min(volume.r_max, reference.r_max)  # the lags both evaluations have
    if r_max is None:
        r_max = common
    elif check_r_max((), r_max, ()) > common:  # check_r_max checks the type and the sign here
        raise ValueError(
            f"r_max={r_max} is larger than the lags both evaluations hold (0 … {common}; their r_max are "
            f"{volume.r_max} and {reference.r_max}); compare up to r_max={common} or evaluate with a larger r_max"
        )
    return _comparison(
        (volume.fraction, reference.fraction),
        [(e.s2.per_axis, e.s2.mean) for e in (volume, reference)],
        [(e.lineal_path.per_axis, e.lineal_path.mean) for e in (volume, reference)],
        axis_by_axis=len(volume.shape) == len(reference.shape),
        r_max=r_max,
    )


def compare(
    volume: Evaluation | np.ndarray | torch.Tensor,
    reference: Evaluation | np.ndarray | torch.Tensor,
    *,
    phase: int | None = None,
    r_max: int | None = None,
) -> Comparison:
    """Compare the phase fraction, S2 and lineal path of ``volume`` with those of ``reference``.

    Parameters
    ----------
    volume : Evaluation, or ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Microstructure to assess, for example a reconstruction: its :func:`~physics.evaluate` (with the
        metrics ``"s2"`` and ``"lineal_path"``), or the label image itself.
    reference : Evaluation, or ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Reference, for example the 2D image a 3D volume was reconstructed from; of the same kind as
        ``volume`` (two evaluations or two arrays).
    phase : int, optional
        Arrays: label of the phase in both (default 1). Evaluations carry their own phase; a ``phase``
        given with them must be theirs.
    r_max : int, optional
        Largest lag compared. Arrays: default ``min(32, smallest side of either − 1)``; must be smaller than
        every side of both. Evaluations: default the lags both hold (the smaller of their ``r_max``), and at
        most that.

    Returns
    -------
    Comparison
        With the same number of dimensions, S2 and L are compared axis by axis; otherwise (a 3D volume
        against a 2D reference) the mean over the volume's axes is compared with the mean over the
        reference's axes.
    """
    evaluations = isinstance(volume, Evaluation), isinstance(reference, Evaluation)
    if all(evaluations):
        return _compare_evaluations(volume, reference, phase, r_max)
    if any(evaluations):
        raise TypeError(
            "compare takes two Evaluations or two arrays; received "
            f"{type(volume).__name__} and {type(reference).__name__} (evaluate the array first)"
        )
    phase = 1 if phase is None else phase
    volume_indicator = as_indicator(volume, phase=phase, name="volume")
    reference_indicator = as_indicator(reference, phase=phase, name="reference")
    if r_max is None:
        r_max = min(adaptive_r_max(volume_indicator.shape), adaptive_r_max(reference_indicator.shape))
    r_max = check_r_max(volume_indicator.shape, r_max, range(volume_indicator.ndim), name="volume")
    check_r_max(reference_indicator.shape, r_max, range(reference_indicator.ndim), name="reference")
    s2 = [two_point_probability(ind, r_max=r_max) for ind in (volume_indicator, reference_indicator)]
    lp = [lineal_path(ind, r_max=r_max) for ind in (volume_indicator, reference_indicator)]
    return _comparison(
        (s2[0].fraction, s2[1].fraction),
        [(s.per_axis, s.mean) for s in s2],
        [(curve.per_axis, curve.mean) for curve in lp],
        axis_by_axis=volume_indicator.ndim == reference_indicator.ndim,
        r_max=r_max,
    )


def describe(
    volume: np.ndarray | torch.Tensor,
    *,
    metrics: Sequence[str] = METRICS,
    phase: int = 1,
    r_max: int | None = None,
) -> dict:
    """Descriptors of one phase as a JSON-ready dict: the descriptor part of ``evaluate(...).to_dict()``.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image.
    metrics : sequence of str, optional
        Any of ``"fraction"``, ``"s2"``, ``"lineal_path"``, ``"chord_length"``, ``"specific_surface"``,
        ``"connectivity"``.
    phase : int, optional
        Label of the phase. A volume without it gives fraction 0 and zero curves (see :func:`evaluate`).
    r_max : int, optional
        Largest lag of S2 (per axis and radial) and of the lineal path; default ``min(32, smallest side − 1)``.

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
    described = evaluate(volume, metrics=metrics, phase=phase, r_max=r_max).to_dict()
    return {key: described[key] for key in ("shape", "phase", *METRICS) if key in described}
