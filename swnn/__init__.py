"""swnn: statistically controllable microstructure reconstruction (SWNN) from one 2D image.

Modules: :mod:`swnn.patterns` (local pattern distributions, Eq. 7), :mod:`swnn.sliced` (sliced-Wasserstein
distance, Eq. 16–18), :mod:`swnn.control` (target fraction, Sec. 2.2.3), :mod:`swnn.network` (the generator,
Eq. 12–15), :mod:`swnn.training` (Algorithm 1), :mod:`swnn.generation` (block-wise generation, Sec. 3.4),
:mod:`swnn.noise` (position-keyed noise), :mod:`swnn.io`, :mod:`swnn.references` and :mod:`swnn.cli`.
Submodules are imported on demand so that the command starts fast.
"""

from swnn._version import __version__

__all__ = ["__version__"]
