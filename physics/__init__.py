"""Statistical descriptors of microstructures (one module per quantity).

Every function takes the microstructure first (a 2D or 3D label image as a numpy array or torch tensor),
options keyword-only, and returns a frozen result or a number. Lengths are in voxels.
"""

from ._validation import as_indicator, check_r_max
from .chords import ChordLengthResult, chord_length_distribution
from .compare import METRICS, Comparison, compare, describe
from .connectivity import ConnectivityResult, connectivity
from .correlation import (
    RadialTwoPoint,
    TwoPointResult,
    porespy_bins,
    radial_two_point,
    two_point_probability,
)
from .lineal_path import LinealPathResult, lineal_path
from .surface import specific_surface

__all__ = [
    "METRICS",
    "ChordLengthResult",
    "Comparison",
    "ConnectivityResult",
    "LinealPathResult",
    "RadialTwoPoint",
    "TwoPointResult",
    "as_indicator",
    "check_r_max",
    "chord_length_distribution",
    "compare",
    "connectivity",
    "describe",
    "lineal_path",
    "porespy_bins",
    "radial_two_point",
    "specific_surface",
    "two_point_probability",
]
