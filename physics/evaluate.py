"""Evaluating one microstructure: its descriptors and physics as one typed, JSON-ready result.

:func:`evaluate` runs the requested descriptors (one module of :mod:`physics` each) and the two solvers on one
label image and returns an :class:`Evaluation`: the typed result of each metric, the settings used, notes
(what was skipped and why) and the solvers' warnings kept as data. ``Evaluation.to_dict()`` is the JSON that
``swnn evaluate`` writes.

One rule for the physics of the studied phase: by default the studied phase ``phase`` conducts like the pore
(0.026 W/(m·K)) and every other label like the solid (1.4 W/(m·K)), whatever the labels are, and the fluid
flows through ``phase``.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._validation import (
    ParameterTypeError,
    _labels_present,
    as_indicator,
    check_label_image,
    check_phase,
    check_r_max,
)
from .chords import ChordLengthResult, chord_length_distribution
from .connectivity import ConnectivityResult, connectivity
from .correlation import RadialTwoPoint, TwoPointResult, radial_two_point, two_point_probability
from .lineal_path import LinealPathResult, lineal_path
from .surface import specific_surface

if TYPE_CHECKING:  # the solvers are imported on first use (see physics/__init__.py)
    from .conductivity import ConductivityResult
    from .permeability import PermeabilityResult

__all__ = ["DEFAULT_R_MAX", "METRICS", "PHYSICS_METRICS", "Evaluation", "adaptive_r_max", "evaluate"]

METRICS = ("fraction", "s2", "lineal_path", "chord_length", "specific_surface", "connectivity")
"""The statistical descriptors, in the order of the JSON."""

PHYSICS_METRICS = ("conductivity", "permeability")
"""The two solvers (slower; not in the default ``metrics``)."""

DEFAULT_R_MAX = 32
"""Largest lag of S2 and of the lineal path when ``r_max`` is not given (less on a smaller volume)."""

_NEEDS_3D = "permeability needs a 3D volume; this input is a 2D image"
_PERMEABILITY_UNIT = "voxel² (k); m² (k_m2) and darcy (k_darcy) with voxel_size"
# keyword arguments that evaluate() sets itself and that the options mappings may not override
_SET_BY_EVALUATE = {
    "conductivity": {"volume", "axes", "conductivities", "sides", "device"},
    "permeability": {"volume", "axis", "axes", "phase", "boundary", "voxel_size", "device", "progress"},
}


@dataclass(frozen=True)
class Evaluation:
    """Descriptors and physics of one phase of one microstructure.

    Attributes
    ----------
    shape : tuple of int
        Shape of the label image, (Y, X) or (Z, Y, X).
    phase : int
        Label of the studied phase.
    fraction : float
        Volume fraction of ``phase`` (0.0 when it does not occur); always measured.
    metrics : tuple of str
        The metrics asked for, in the order of :data:`METRICS` then :data:`PHYSICS_METRICS`.
    s2 : TwoPointResult or None
        Non-periodic S2(r) per axis, r = 0 … ``r_max``.
    s2_radial : RadialTwoPoint or None
        Direction-averaged S2 on the shells r = 0 … ``r_max`` (with ``s2``).
    lineal_path : LinealPathResult or None
        L(r) per axis, r = 0 … ``r_max``.
    chord_length : ChordLengthResult or None
        Chords not touching the boundary.
    specific_surface : float or None
        Interface area per voxel with the isotropic correction, in 1/voxel.
    connectivity : ConnectivityResult or None
        Face-to-face connectivity per axis.
    conductivity : tuple of ConductivityResult or None
        One per axis of ``axes`` (every axis when None).
    permeability : tuple of PermeabilityResult or None
        One per axis of ``axes`` (0, 1, 2 when None); empty for a 2D image (see ``notes``).
    r_max : int or None
        Largest lag of ``s2`` and ``lineal_path``; None when neither was asked for.
    conductivities : tuple of float or None
        Conductivity of each label 0 … n − 1 as given, or None for the rule of the studied phase (``phase``
        0.026, every other label 1.4 W/(m·K)).
    sides : str
        Side walls of the conductivity solve, ``"periodic"`` or ``"insulated"``.
    boundary : str
        How the permeability sample is closed along the flow: ``"periodic"``, ``"mirror"`` or ``"buffer"``.
    axes : tuple of int or None
        Axes of the physics metrics as asked for; None for every axis.
    voxel_size : float or None
        Voxel edge in metres (permeability in m² and darcy).
    conductivity_options, permeability_options : tuple of (str, value)
        Further keyword arguments passed to the solvers (``tol``, ``max_iterations``; ``tau``, ``max_steps``...).
    notes : tuple of str
        What was skipped or special-cased and why (a 2D image has no permeability, an absent phase...).
    warnings : tuple of str
        The solvers' warnings (non-convergence, high Mach number), kept as data instead of emitted.
    """

    shape: tuple[int, ...]
    phase: int
    fraction: float
    metrics: tuple[str, ...]
    s2: TwoPointResult | None = None
    s2_radial: RadialTwoPoint | None = None
    lineal_path: LinealPathResult | None = None
    chord_length: ChordLengthResult | None = None
    specific_surface: float | None = None
    connectivity: ConnectivityResult | None = None
    conductivity: tuple[ConductivityResult, ...] | None = None
    permeability: tuple[PermeabilityResult, ...] | None = None
    r_max: int | None = None
    conductivities: tuple[float, ...] | None = None
    sides: str = "periodic"
    boundary: str = "periodic"
    axes: tuple[int, ...] | None = None
    voxel_size: float | None = None
    conductivity_options: tuple[tuple[str, object], ...] = ()
    permeability_options: tuple[tuple[str, object], ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def not_converged(self) -> tuple[tuple[str, int], ...]:
        """``(metric, axis)`` of every solver result that did not converge, e.g. ``(("permeability", 0),)``."""
        return tuple(
            (metric, int(result.axis))
            for metric, results in (("conductivity", self.conductivity), ("permeability", self.permeability))
            for result in results or ()
            if not result.converged
        )

    @property
    def converged(self) -> bool:
        """False when any conductivity or permeability result did not converge (see ``warnings``)."""
        return not self.not_converged

    def to_dict(self) -> dict:
        """JSON-ready dict (Python numbers, lists, str and None): the metrics JSON of ``swnn evaluate``.

        ``{"shape", "phase", "fraction", "s2": {"r", "per_axis", "mean", "radial": {"r", "s2"}},
        "lineal_path": {"r", "per_axis", "mean"}, "chord_length": {...}, "specific_surface": S_v,
        "connectivity": {...}, "conductivity": {"per_axis": [...], "sides", "conductivities"},
        "permeability": {"per_axis": [...], "phase", "boundary", "voxel_size", "unit", "options"},
        "r_max", "notes", "warnings", "converged"}``, each metric only when asked for (``"fraction"``
        included). ``conductivities`` is ``{"phase": 0.026, "other": 1.4}`` under the rule of the studied
        phase and ``{"per_label": [...]}`` when given; the permeability of a 2D image is
        ``{"per_axis": [], "reason": ...}``. Fields (temperature, velocity) are left out.
        """
        out: dict = {"shape": [int(s) for s in self.shape], "phase": int(self.phase)}
        if "fraction" in self.metrics:
            out["fraction"] = float(self.fraction)
        if self.s2 is not None:
            out["s2"] = self.s2.to_dict()
            if self.s2_radial is not None:
                out["s2"]["radial"] = self.s2_radial.to_dict()
        if self.lineal_path is not None:
            out["lineal_path"] = self.lineal_path.to_dict()
        if self.chord_length is not None:
            out["chord_length"] = self.chord_length.to_dict()
        if self.specific_surface is not None:
            out["specific_surface"] = float(self.specific_surface)
        if self.connectivity is not None:
            out["connectivity"] = self.connectivity.to_dict()
        if self.conductivity is not None:
            out["conductivity"] = {
                "per_axis": [r.to_dict() for r in self.conductivity],
                "sides": self.sides,
                "conductivities": _conductivities_entry(self.conductivities),
            }
        if self.permeability is not None:
            if len(self.shape) != 3:
                out["permeability"] = {"per_axis": [], "reason": _NEEDS_3D}
            else:
                out["permeability"] = {
                    "per_axis": [r.to_dict() for r in self.permeability],
                    "phase": int(self.phase),
                    "boundary": self.boundary,
                    "voxel_size": self.voxel_size,
                    "unit": _PERMEABILITY_UNIT,
                    "options": _json_options(self.permeability_options),
                }
        if self.r_max is not None:
            out["r_max"] = int(self.r_max)
        out["notes"] = list(self.notes)
        out["warnings"] = list(self.warnings)
        out["converged"] = self.converged
        return out


def _conductivities_entry(conductivities: tuple[float, ...] | None) -> dict:
    if conductivities is None:
        from .conductivity import DEFAULT_CONDUCTIVITIES

        solid, pore = DEFAULT_CONDUCTIVITIES
        return {"phase": float(pore), "other": float(solid)}
    return {"per_label": [float(k) for k in conductivities]}


def _json_options(options: tuple[tuple[str, object], ...]) -> dict:
    return {
        key: value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
        for key, value in options
    }


# ----------------------------------------------------------------------------------------------------------
# argument checks (all before any computation, so that a bad option fails at once)


def _check_metrics(metrics: object) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, (Sequence, set, frozenset)):
        raise ParameterTypeError(f"metrics must be a sequence of metric names; received {metrics!r}")
    accepted = (*METRICS, *PHYSICS_METRICS)
    unknown = [m for m in metrics if m not in accepted]
    if unknown:
        raise ValueError(f"unknown metrics {unknown} in metrics; accepted names: {list(accepted)}")
    if not metrics:
        raise ValueError(f"metrics must name at least one metric; accepted names: {list(accepted)}")
    return tuple(m for m in accepted if m in metrics)


def adaptive_r_max(shape: Sequence[int]) -> int:
    """``min(DEFAULT_R_MAX, smallest side − 1)``: the largest lag every axis of ``shape`` holds, at most 32."""
    return min(DEFAULT_R_MAX, min(int(s) for s in shape) - 1)


def _check_conductivities(
    conductivities: object, labels: torch.Tensor, phase: int
) -> tuple[float, ...] | None:
    """One conductivity per label 0 … n − 1, n = max(largest label, ``phase``) + 1; values checked by the solver."""
    if conductivities is None:
        return None
    if isinstance(conductivities, (str, bytes)) or not isinstance(
        conductivities, (Sequence, np.ndarray, torch.Tensor)
    ):
        raise ParameterTypeError(
            "conductivities must be a sequence of positive numbers, one per phase label 0, 1, ..., or None "
            f"for the rule of the studied phase; received {conductivities!r}"
        )
    if isinstance(conductivities, (np.ndarray, torch.Tensor)):
        conductivities = conductivities.tolist()
    try:
        values = tuple(float(k) for k in conductivities)
    except (TypeError, ValueError):
        raise ParameterTypeError(
            f"conductivities must hold numbers, one per phase label 0, 1, ...; received {conductivities!r}"
        ) from None
    low = int(labels.min()) if labels.dtype != torch.bool else 0
    if low < 0:
        raise ValueError(
            f"conductivities gives one value per label 0, 1, ..., but volume holds the negative label {low}; "
            "pass conductivities=None (the studied phase 0.026, every other label 1.4) or relabel the volume"
        )
    n_labels = max(int(labels.max()), phase) + 1  # bool labels compare as 0 and 1
    if len(values) != n_labels:
        raise ValueError(
            f"conductivities must have exactly {n_labels} value(s), one per label 0 … {n_labels - 1} of volume "
            f"(labels present: {_labels_present(labels)}, phase={phase}); received {len(values)}: "
            f"{list(values)!r}"
        )
    return values


def _check_options(options: object, name: str, metric: str) -> tuple[tuple[str, object], ...]:
    """``options`` as (key, value) pairs after checking each key is a keyword of the solver of ``metric``."""
    if options is None:
        return ()
    if not isinstance(options, Mapping):
        raise ParameterTypeError(
            f"{name} must be a mapping of keyword arguments such as {{'tol': 1e-5}}; received {options!r}"
        )
    if not options:
        return ()
    if metric == "conductivity":
        from .conductivity import conductivity_per_axis as solver
    else:
        from .permeability import permeability as solver
    accepted = set(inspect.signature(solver).parameters) - _SET_BY_EVALUATE[metric] - {"kwargs"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"{name} has unknown or reserved keys {unknown}; accepted: {sorted(accepted)} (evaluate sets "
            f"{sorted(_SET_BY_EVALUATE[metric] - {'volume'})} itself)"
        )
    return tuple(options.items())


def _check_choice(value: object, name: str, accepted: Sequence[str]) -> str:
    if value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, accepted))}; received {value!r}")
    return str(value)


# ----------------------------------------------------------------------------------------------------------
# an absent phase: the descriptors that make sense, without the checks that refuse it


def _absent_descriptors(shape: tuple[int, ...], phase: int, r_max: int | None) -> dict:
    ndim = len(shape)
    frozen = []

    def zeros(*dims, dtype=np.float64):
        values = np.zeros(dims, dtype=dtype)
        frozen.append(values)
        return values

    out: dict = {"specific_surface": 0.0}
    if r_max is not None:
        lags = np.arange(r_max + 1)
        frozen.append(lags)
        out["s2"] = TwoPointResult(
            r=lags, per_axis=zeros(ndim, r_max + 1), mean=zeros(r_max + 1), fraction=0.0, phase=phase
        )
        out["lineal_path"] = LinealPathResult(
            r=lags, per_axis=zeros(ndim, r_max + 1), mean=zeros(r_max + 1), fraction=0.0, phase=phase
        )
        edges = np.concatenate([[0.0], np.arange(r_max + 1) + 0.5])
        distances = np.arange(r_max + 1, dtype=np.float64)
        frozen += [edges, distances]
        out["s2_radial"] = RadialTwoPoint(r=distances, s2=zeros(r_max + 1), bin_edges=edges, phase=phase)
    lengths = np.arange(1, 2)
    mean = np.full(ndim, np.nan)  # as chord_length_distribution for an axis without chords
    frozen += [lengths, mean]
    out["chord_length"] = ChordLengthResult(
        lengths=lengths,
        counts=zeros(ndim, 1, dtype=np.int64),
        probability=zeros(ndim, 1),
        mean=mean,
        include_edges=False,
        phase=phase,
    )
    out["connectivity"] = ConnectivityResult(
        percolating_fraction=zeros(ndim), percolates=zeros(ndim, dtype=bool), n_clusters=0, phase=phase
    )
    for values in frozen:
        values.setflags(write=False)
    return out


def _absent_permeability(phase: int, axes: Sequence[int], boundary: str) -> tuple:
    from .permeability import PermeabilityResult

    reason = f"phase={phase} does not occur in the volume: no pore, so k = 0 without simulating"
    return tuple(PermeabilityResult(int(a), 0.0, None, None, 0, None, True, reason, boundary) for a in axes)


# ----------------------------------------------------------------------------------------------------------
# the solvers, their warnings kept as data


def _solve_quietly(solver, categories: tuple[type[Warning], ...], *args, **kwargs):
    """``solver(*args, **kwargs)`` and the messages of its warnings of ``categories``; other warnings pass on."""
    with warnings.catch_warnings(record=True) as caught:
        for category in categories:
            warnings.simplefilter("always", category)
        result = solver(*args, **kwargs)
    kept = []
    for w in caught:
        if issubclass(w.category, categories):
            kept.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return result, kept


# ----------------------------------------------------------------------------------------------------------
# public API


def evaluate(
    volume: np.ndarray | torch.Tensor,
    *,
    metrics: Sequence[str] = METRICS,
    phase: int = 1,
    r_max: int | None = None,
    conductivities: Sequence[float] | None = None,
    sides: str = "periodic",
    axes: Sequence[int] | None = None,
    boundary: str = "periodic",
    voxel_size: float | None = None,
    device: str | torch.device | None = None,
    permeability_options: Mapping[str, object] | None = None,
    conductivity_options: Mapping[str, object] | None = None,
    progress: bool = False,
) -> Evaluation:
    """Descriptors and physics of one phase of a label image.

    Parameters
    ----------
    volume : ndarray or Tensor of shape (Y, X) or (Z, Y, X)
        Label image (bool, integer, or float holding integers).
    metrics : sequence of str, optional
        Any of :data:`METRICS` (``"fraction"``, ``"s2"``, ``"lineal_path"``, ``"chord_length"``,
        ``"specific_surface"``, ``"connectivity"``; the default) and :data:`PHYSICS_METRICS`
        (``"conductivity"``, ``"permeability"``).
    phase : int, optional
        Label of the studied phase. A volume without it is evaluated, not refused: fraction 0, S2, lineal
        path and specific surface 0, no chords, no clusters, k = 0, and a note.
    r_max : int, optional
        Largest lag of S2 (per axis and radial) and of the lineal path; default
        ``min(32, smallest side − 1)``. Must be smaller than every side.
    conductivities : sequence of float, optional
        Metric ``"conductivity"``. Default (None): the studied phase conducts 0.026 and every other label 1.4
        W/(m·K) (pore and solid in the paper), whatever the labels, so that phase 1 of a volume and phase 0
        of its inverse give the same k_eff. Given: one conductivity per label 0 … n − 1, exactly n values
        with n = max(largest label, ``phase``) + 1.
    sides : {"periodic", "insulated"}, optional
        Metric ``"conductivity"``: the faces parallel to the heat flow.
    axes : sequence of int, optional
        Axes of the physics metrics; default every axis.
    boundary : {"periodic", "mirror", "buffer"}, optional
        Metric ``"permeability"``: how the sample is closed along the flow (see :mod:`physics.permeability`).
    voxel_size : float, optional
        Metric ``"permeability"``: voxel edge in metres, for k in m² and darcy.
    device : str or torch.device, optional
        Where the solvers compute: None (the input's device), ``"auto"``, ``"cpu"`` or ``"cuda"``. The
        descriptors compute on the input's device.
    permeability_options, conductivity_options : mapping, optional
        Further keyword arguments of :func:`physics.permeability.permeability` (``tau``, ``tol``,
        ``max_steps``, ``force``...) and :func:`physics.conductivity.conductivity_per_axis` (``tol``,
        ``max_iterations``, ``preconditioner``...).
    progress : bool, optional
        Show each permeability run's progress bar (steps, k, its change, ETA); not part of the results.

    Returns
    -------
    Evaluation
        The solvers' warnings (non-convergence and the like) are not emitted but kept in
        ``Evaluation.warnings``; ``Evaluation.converged`` is False when a solve did not converge.

    Raises
    ------
    TypeError
        ``volume`` is not a numpy array or tensor of labels, or an option has the wrong type.
    ValueError
        Unknown metrics, ``r_max`` too large, ``conductivities`` of the wrong length, unknown ``sides``
        or ``boundary``, unknown options, or a value a solver refuses (a phase filling the whole volume has
        no permeability).

    Examples
    --------
    >>> import numpy as np
    >>> volume = np.zeros((8, 8, 8), dtype=np.uint8)
    >>> volume[:, :, ::2] = 1
    >>> evaluation = evaluate(volume, metrics=("fraction", "s2"))
    >>> evaluation.fraction, evaluation.r_max
    (0.5, 7)
    """
    metrics = _check_metrics(metrics)
    phase = check_phase(phase)
    labels = check_label_image(volume, "volume")
    shape = tuple(int(s) for s in labels.shape)
    ndim = len(shape)
    if "s2" in metrics or "lineal_path" in metrics:
        r_max = adaptive_r_max(shape) if r_max is None else check_r_max(shape, r_max, range(ndim))
    else:
        r_max = None
    wants_conductivity = "conductivity" in metrics
    wants_permeability = "permeability" in metrics
    sides = _check_choice(sides, "sides", ("periodic", "insulated"))
    boundary = _check_choice(boundary, "boundary", ("periodic", "mirror", "buffer"))
    axes = _check_axes(axes)
    voxel_size = _check_voxel_size(voxel_size)
    conductivities = _check_conductivities(conductivities, labels, phase)
    conductivity_options = _check_options(conductivity_options, "conductivity_options", "conductivity")
    permeability_options = _check_options(permeability_options, "permeability_options", "permeability")

    try:
        indicator = as_indicator(labels, phase=phase)  # a view without copying where there is one
    except ValueError:  # labels already checked: the one refusal left is a phase that does not occur
        indicator = None
    present = indicator is not None
    fraction = int(indicator.sum()) / indicator.numel() if present else 0.0
    notes: list[str] = []
    caught: list[str] = []
    results: dict = {}

    # physics first: a solver refusing an option fails before the descriptors are computed
    if wants_conductivity:
        results["conductivity"] = _solve_conductivity(
            volume, indicator, conductivities, axes=tuple(range(ndim)) if axes is None else axes,
            sides=sides, device=device, device_of=labels.device, options=conductivity_options, caught=caught,
        )  # fmt: skip
    if wants_permeability:
        if ndim != 3:
            results["permeability"] = ()
            notes.append(_NEEDS_3D)
        elif not present:
            results["permeability"] = _absent_permeability(
                phase, (0, 1, 2) if axes is None else axes, boundary
            )
        else:
            results["permeability"] = _solve_permeability(
                volume, phase=phase, axes=(0, 1, 2) if axes is None else axes, boundary=boundary,
                voxel_size=voxel_size, device=device, options=permeability_options, caught=caught,
                progress=progress,
            )  # fmt: skip

    descriptors = [m for m in metrics if m in METRICS and m != "fraction"]
    if not present:
        notes.append(
            f"phase={phase} does not occur in the volume (labels present: {_labels_present(labels)}): its "
            "fraction, S2, lineal path, specific surface and permeability are 0; it has no chords and no clusters"
        )
        absent = _absent_descriptors(shape, phase, r_max)
        results.update({metric: absent[metric] for metric in descriptors})
        if "s2" in descriptors:
            results["s2_radial"] = absent["s2_radial"]
    else:
        results.update(_describe(indicator, descriptors, phase=phase, r_max=r_max))

    return Evaluation(
        shape=shape,
        phase=phase,
        fraction=fraction,
        metrics=metrics,
        r_max=r_max,
        conductivities=conductivities,
        sides=sides,
        boundary=boundary,
        axes=axes,
        voxel_size=voxel_size,
        conductivity_options=conductivity_options,
        permeability_options=permeability_options,
        notes=tuple(notes),
        warnings=tuple(caught),
        **results,
    )


def _check_axes(axes) -> tuple[int, ...] | None:
    if axes is None:
        return None
    if isinstance(axes, (int, np.integer)) or not isinstance(axes, (Sequence, range)):
        raise ParameterTypeError(f"axes must be a sequence of integers such as (0, 1, 2); received {axes!r}")
    return tuple(int(a) for a in axes)


def _check_voxel_size(voxel_size) -> float | None:
    if voxel_size is None:
        return None
    if isinstance(voxel_size, (bool, np.bool_)) or not isinstance(voxel_size, (int, float, np.number)):
        raise ParameterTypeError(
            f"voxel_size must be a length in metres such as 2e-6; received {voxel_size!r}"
        )
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise ValueError(f"voxel_size must be a positive length in metres; received {voxel_size!r}")
    return float(voxel_size)


def _solve_conductivity(
    volume, indicator, conductivities, *, axes, sides, device, device_of, options, caught
) -> tuple:
    """k_eff per axis; by default the studied phase (``indicator``) is the pore and the rest the solid."""
    from .conductivity import DEFAULT_CONDUCTIVITIES, ConvergenceWarning, conductivity_per_axis

    if conductivities is None:
        absent = indicator is None  # the phase does not occur: all solid
        pore = torch.zeros(tuple(volume.shape), dtype=torch.bool, device=device_of) if absent else indicator
        solved, labels_for_solver = DEFAULT_CONDUCTIVITIES, pore
    else:
        solved, labels_for_solver = conductivities, volume
    conductivity, kept = _solve_quietly(
        conductivity_per_axis,
        (ConvergenceWarning,),
        labels_for_solver,
        axes=axes,
        conductivities=solved,
        sides=sides,
        device=device,
        **dict(options),
    )
    caught += kept
    return tuple(conductivity)


def _solve_permeability(
    volume, *, phase, axes, boundary, voxel_size, device, options, caught, progress=False
) -> tuple:
    """One permeability result per flow axis."""
    from .permeability import PermeabilityWarning, permeability

    computed = []
    for axis in axes:
        result, kept = _solve_quietly(
            permeability,
            (PermeabilityWarning,),
            volume,
            phase=phase,
            axis=axis,
            boundary=boundary,
            voxel_size=voxel_size,
            device=device,
            progress=progress,
            **dict(options),
        )
        computed.append(result)
        caught += kept
    return tuple(computed)


def _describe(indicator, descriptors, *, phase: int, r_max) -> dict:
    """The statistical descriptors of the studied phase, named after it (they see its indicator as 1)."""

    def named(result):
        return dataclasses.replace(result, phase=phase)

    results = {}
    if "s2" in descriptors:
        results["s2"] = named(two_point_probability(indicator, r_max=r_max))
        results["s2_radial"] = named(radial_two_point(indicator, r_max=r_max))
    if "lineal_path" in descriptors:
        results["lineal_path"] = named(lineal_path(indicator, r_max=r_max))
    if "chord_length" in descriptors:
        results["chord_length"] = named(chord_length_distribution(indicator))
    if "specific_surface" in descriptors:
        results["specific_surface"] = specific_surface(indicator)
    if "connectivity" in descriptors:
        results["connectivity"] = named(connectivity(indicator))
    return results
