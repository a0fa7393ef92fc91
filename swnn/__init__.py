"""swnn: statistically controllable microstructure reconstruction (SWNN) from one 2D image.

The notebook API (:mod:`swnn.api`), imported on first use so that the command starts fast::

    import swnn
    ref = swnn.load_reference("builtin:particles")   # Reference: name, image(s), volume (3D truth or None)
    model = swnn.train(ref, profile="quick", iterations=50, seed=0)
    vol = swnn.generate(model, shape=(64, 64, 64), seed=1)   # numpy uint8 labels
    ev = swnn.evaluate(vol, metrics=["fraction", "s2", "conductivity"])   # physics.Evaluation
    cmp = swnn.compare(ev, swnn.evaluate(ref.volume))    # physics.Comparison

Modules: :mod:`swnn.patterns` (local pattern distributions, Eq. 7), :mod:`swnn.sliced` (sliced-Wasserstein
distance, Eq. 16–18), :mod:`swnn.control` (target fraction, Sec. 2.2.3), :mod:`swnn.network` (the generator,
Eq. 12–15), :mod:`swnn.config` (training settings and profiles), :mod:`swnn.training` (Algorithm 1),
:mod:`swnn.generation` (block-wise generation, Sec. 3.4),
:mod:`swnn.noise` (position-keyed noise), :mod:`swnn.io`, :mod:`swnn.references` and :mod:`swnn.cli`.
"""

from swnn._version import __version__

_API = {
    "Reference": "swnn.api",
    "calibrate_control": "swnn.api",
    "generate": "swnn.api",
    "generate_to": "swnn.api",
    "load_model": "swnn.api",
    "load_reference": "swnn.api",
    "train": "swnn.api",
    "TrainedModel": "swnn.model",
    "TrainConfig": "swnn.config",
    "with_smoothing": "swnn.calibration",
    "read_microstructure": "swnn.io",
    "write_volume": "swnn.io",
    "evaluate": "physics",
    "compare": "physics",
    "Evaluation": "physics",
    "Comparison": "physics",
    "ParameterTypeError": "physics",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The public API, imported on first use (PEP 562)."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'swnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
