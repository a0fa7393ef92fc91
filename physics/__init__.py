"""Statistical descriptors of microstructures (one module per quantity) and the two physics solvers.

Every function takes the microstructure first (a 2D or 3D label image as a numpy array or torch tensor),
options keyword-only, and returns a frozen result or a number. Lengths are in voxels.

:func:`evaluate` runs the requested descriptors and solvers on one volume and returns an :class:`Evaluation`
(typed results, settings, notes and the solvers' warnings; ``to_dict()`` is the JSON of ``swnn evaluate``);
:func:`compare` compares two evaluations (or two arrays).

The solvers are imported on first use (the lattice-Boltzmann kernels load numba): ``effective_conductivity``
and ``conductivity_per_axis`` here or in :mod:`physics.conductivity`; ``permeability_per_axis`` here, and
``permeability`` from its module (``from physics.permeability import permeability``), whose name it shares.
"""

from ._validation import ParameterTypeError, as_indicator, check_r_max
from .chords import ChordLengthResult, chord_length_distribution
from .compare import Comparison, compare, describe
from .connectivity import ConnectivityResult, connectivity, section_connectivity
from .correlation import (
    RadialTwoPoint,
    TwoPointResult,
    porespy_bins,
    radial_two_point,
    two_point_probability,
)
from .evaluate import METRICS, PHYSICS_METRICS, Evaluation, evaluate
from .lineal_path import LinealPathResult, lineal_path
from .surface import specific_surface

_SOLVERS = {
    "ConductivityResult": "conductivity",
    "ConvergenceWarning": "conductivity",
    "conductivity_per_axis": "conductivity",
    "effective_conductivity": "conductivity",
    "PermeabilityResult": "permeability",
    "PermeabilityWarning": "permeability",
    "PermeabilityDivergenceError": "permeability",
    "permeability_per_axis": "permeability",
}


def __getattr__(name: str):
    if name in _SOLVERS:
        import importlib

        module = importlib.import_module(f"physics.{_SOLVERS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'physics' has no attribute {name!r}")


__all__ = [
    "METRICS",
    "ParameterTypeError",
    "PHYSICS_METRICS",
    "ChordLengthResult",
    "Comparison",
    "ConnectivityResult",
    "Evaluation",
    "LinealPathResult",
    "RadialTwoPoint",
    "TwoPointResult",
    "as_indicator",
    "check_r_max",
    "chord_length_distribution",
    "compare",
    "connectivity",
    "describe",
    "evaluate",
    "lineal_path",
    "porespy_bins",
    "section_connectivity",
    "radial_two_point",
    "specific_surface",
    "two_point_probability",
    *_SOLVERS,
]
