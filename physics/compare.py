"""Comparing a microstructure with a reference, from two evaluations or two arrays, and :func:`describe`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import ParameterTypeError, as_indicator, check_r_max
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
    s2_rmse : float or None
        Root-mean-square difference of the non-periodic S2(r), r = 0 … r_max (None when one of two compared
        evaluations has no S2).
    lineal_path_rmse : float or None
        Root-mean-square difference of L(r), r = 0 … r_max (None when one of two compared evaluations has no
        lineal path).
    axis_by_axis : bool
        True when volume and reference have the same number of dimensions and were compared axis by
        axis (RMSE over all axes and lags); False when the mean over the volume's axes was compared with
        the mean over the reference's axes (a 3D volume against a 2D image, as in the SWNN paper).
    r_max : int
        Largest lag compared, in voxels (0 when no curve was compared).
    """

    fraction_error: float
    s2_rmse: float | None
    lineal_path_rmse: float | None
    axis_by_axis: bool
    r_max: int

    def to_dict(self) -> dict:
        """JSON-ready dict of Python numbers."""
        return {
            "fraction_error": float(self.fraction_error),
            "s2_rmse": None if self.s2_rmse is None else float(self.s2_rmse),
            "lineal_path_rmse": None if self.lineal_path_rmse is None else float(self.lineal_path_rmse),
            "axis_by_axis": bool(self.axis_by_axis),
            "r_max": int(self.r_max),
        }


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _comparison(fractions, s2, lp, *, axis_by_axis: bool, r_max: int) -> Comparison:
    """The one formula: ``s2`` and ``lp`` are pairs of (per_axis, mean) curves holding lags 0 … ``r_max``,
    or None where a curve is missing."""
    lags = slice(0, r_max + 1)
    which = 0 if axis_by_axis else 1  # per axis, or the mean over the axes of each

    def rmse(pair):
        return None if pair is None else _rmse(pair[0][which][..., lags], pair[1][which][..., lags])

    s2_rmse, lp_rmse = rmse(s2), rmse(lp)
    return Comparison(
        fraction_error=fractions[0] - fractions[1],
        s2_rmse=s2_rmse,
        lineal_path_rmse=lp_rmse,
        axis_by_axis=axis_by_axis,
        r_max=r_max,
    )


def _compare_evaluations(volume: Evaluation, reference: Evaluation, phase, r_max) -> Comparison:
    if phase is not None and {int(phase)} != {volume.phase, reference.phase}:
        raise ValueError(
            f"phase={phase!r} does not match the evaluations, which describe phase {volume.phase} (volume) and "
            f"{reference.phase} (reference); leave phase out when comparing evaluations"
        )
    if volume.r_max is None or reference.r_max is None:  # no curve on one side: the fractions alone
        if r_max is not None:
            raise ValueError(
                "r_max was given, but one of the evaluations holds neither S2 nor the lineal path; evaluate "
                "both with metrics including 's2' or 'lineal_path'"
            )
        return Comparison(
            fraction_error=volume.fraction - reference.fraction,
            s2_rmse=None,
            lineal_path_rmse=None,
            axis_by_axis=len(volume.shape) == len(reference.shape),
            r_max=0,
        )
    common = min(volume.r_max, reference.r_max)  # the lags both evaluations have
    if r_max is None:
        r_max = common
    elif check_r_max((), r_max, ()) > common:  # check_r_max checks the type and the sign here
        raise ValueError(
            f"r_max={r_max} is larger than the lags both evaluations hold (0 … {common}; their r_max are "
            f"{volume.r_max} and {reference.r_max}); compare up to r_max={common} or evaluate with a larger r_max"
        )
    both = (volume, reference)

    def curves(metric: str):  # the pair of curves, when both evaluations hold them
        results = [getattr(e, metric) for e in both]
        return None if None in results else [(r.per_axis, r.mean) for r in results]

    return _comparison(
        (volume.fraction, reference.fraction),
        curves("s2"),
        curves("lineal_path"),
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
        Microstructure to assess, for example a reconstruction: its :func:`~physics.evaluate`, or the label
        image itself. Two evaluations are compared on the curves both hold (the RMSE of a curve one of them
        lacks is None).
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
        raise ParameterTypeError(
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
