"""Measurements of one volume: descriptors, the physics solvers, and fidelity against a reference."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .settings import DESCRIPTOR_METRICS, PhysicsSettings

__all__ = ["fidelity"]


def _rmse(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def fidelity(description: Mapping, truth: Mapping) -> dict:
    """Fraction error, S2 and lineal-path RMSE of a described volume against a described reference.

    The same numbers as :func:`physics.compare` (axis by axis when both have the same number of dimensions,
    otherwise the mean over the volume's axes against the mean over the reference's axes), from
    :func:`physics.describe` outputs, so that a large reference is described once.
    """
    axis_by_axis = len(description["shape"]) == len(truth["shape"])
    which = "per_axis" if axis_by_axis else "mean"
    return {
        "reference_fraction_error": description["fraction"] - truth["fraction"],
        "s2_rmse": _rmse(description["s2"][which], truth["s2"][which]),
        "lineal_path_rmse": _rmse(description["lineal_path"][which], truth["lineal_path"][which]),
        "axis_by_axis": axis_by_axis,
    }


def _describe(volume: np.ndarray, *, phase: int, metrics: Sequence[str], r_max: int) -> dict:
    """:func:`physics.describe` of ``volume`` for the descriptor ``metrics``; zero curves where ``phase`` is absent."""
    from physics import describe

    fraction = float(np.mean(volume == phase))
    if fraction == 0.0:
        # physics.describe refuses a volume without the phase; record what is meaningful
        r = list(range(r_max + 1))
        zeros = {"r": r, "per_axis": [[0.0] * len(r)] * volume.ndim, "mean": [0.0] * len(r)}
        return {
            "shape": list(volume.shape),
            "phase": phase,
            "fraction": 0.0,
            "s2": zeros,
            "lineal_path": zeros,
        }
    result = describe(
        volume, metrics=[m for m in metrics if m in DESCRIPTOR_METRICS], phase=phase, r_max=r_max
    )
    if volume.ndim == 2:
        result["fraction_std"] = image_fraction_std(volume, phase=phase)
    return result


def image_fraction_std(image: np.ndarray, *, phase: int) -> float | None:
    """Standard deviation of a 2D image's own phase fraction, from its integral range (Kanit et al. 2003).

    The image is one window of the material: its fraction is uncertain by sqrt(φ(1 − φ)·A/area), A the
    integral range from the image's own S2 (:func:`reports.statistics.fraction_std`; the method behind the
    ImageRep tool). None when the image is too small to resolve A.
    """
    from reports.statistics import fraction_std, s2_map

    s2 = s2_map(image, phase=phase)
    fraction = float(s2.flat[0])
    if not 0.0 < fraction < 1.0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return float(fraction_std(s2, fraction, size=image.shape))
        except (RuntimeWarning, ValueError):
            return None


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _field_slice(field_: np.ndarray, axis: int) -> np.ndarray:
    """The central plane of a 3D field that contains the flow ``axis`` (flow along the slice's rows or columns)."""
    normal = 2 if axis != 2 else 0
    return np.ascontiguousarray(np.take(field_, field_.shape[normal] // 2, axis=normal))


def _speed(velocity: np.ndarray, shape) -> np.ndarray:
    velocity = np.asarray(velocity, dtype=np.float64)
    if velocity.ndim == len(shape):
        return np.abs(velocity)
    component_axis = 0 if velocity.shape[0] in (2, 3) and tuple(velocity.shape[1:]) == tuple(shape) else -1
    return np.sqrt(np.sum(velocity**2, axis=component_axis))


def solver_device(metric: str, physics: PhysicsSettings, device):
    """Where ``metric``'s solver computes: the study's ``device``, but the CPU for ``backend = "numba"``."""
    options = physics.conductivity if metric == "conductivity" else physics.permeability
    return None if dict(options).get("backend") == "numba" else device


def _solve(
    metric: str, volume: np.ndarray, *, phase: int, physics: PhysicsSettings, voxel_size, device=None
) -> tuple[dict, dict]:
    """One physics metric on one volume, every axis of ``physics``, by :func:`physics.evaluate`; (record, slices).

    ``device``: where the solver computes (:func:`solver_device` of the study's device; None: the CPU, where
    the volume is).

    The study phase becomes label 1 of the solvers' input, so that ``physics.conductivities`` reads (other
    phases, study phase), the rule of :func:`physics.evaluate`.
    """
    from physics import evaluate

    indicator = (volume == phase).astype(np.uint8)
    if metric == "permeability" and (indicator.all() or not indicator.any()):
        # no flow path, or no solid (k unbounded): nothing to simulate, said in a note
        k, why = (0.0, "the phase does not occur") if not indicator.any() else (math.nan, "no solid at all")
        rows = [{"axis": axis, "k": k, "converged": False, "reason": why} for axis in physics.axes]
        return {"axes": rows, "notes": [f"permeability not computed: {why}"]}, {}
    options = dict(physics.conductivity if metric == "conductivity" else physics.permeability)
    settings = {"sides": options.pop("sides", "periodic")} if metric == "conductivity" else {}
    if metric == "permeability":
        settings["boundary"] = options.pop("boundary", "periodic")
    options["return_field" if metric == "conductivity" else "return_velocity"] = True
    evaluation = evaluate(
        indicator,
        metrics=(metric,),
        phase=1,
        conductivities=physics.conductivities,
        axes=physics.axes,
        voxel_size=voxel_size,
        device=device,
        **{f"{metric}_options": options},
        **settings,
    )
    results, slices = [], {}
    first = physics.axes[0]
    for axis, result in zip(physics.axes, getattr(evaluation, metric), strict=True):
        if metric == "conductivity":
            row = {
                "axis": axis,
                "k_eff": float(result.k_eff),
                "iterations": int(result.iterations),
                "residual": float(result.residual),
                "flux_imbalance": float(result.flux_imbalance),
                "converged": bool(result.converged),
            }
            if axis == first and getattr(result, "temperature", None) is not None:
                slices["temperature"] = _field_slice(_as_numpy(result.temperature), axis).astype(np.float32)
        else:
            row = {"axis": axis, "k": float(result.k)}
            for name in ("k_m2", "k_darcy", "steps", "mlups", "converged", "reason", "boundary"):
                value = getattr(result, name, None)
                row[name] = value if isinstance(value, (str, bool, type(None))) else float(value)
            if axis == first and getattr(result, "velocity", None) is not None:
                speed = _speed(_as_numpy(result.velocity), indicator.shape)
                slices["speed"] = _field_slice(speed, axis).astype(np.float32)
        results.append(row)
    if slices:
        slices["structure"] = _field_slice(indicator, first)
    notes = [f"{metric}: {message}" for message in (*evaluation.warnings, *evaluation.notes)]
    return {"axes": results, "notes": notes}, slices
