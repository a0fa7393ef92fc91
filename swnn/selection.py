"""Choosing among candidate training runs: the run whose samples' sections join up like the reference's.

Runs of the same settings from different seeds reach different optima, and on rock their samples' pore space
connects differently at the scale of throats while their local patterns match equally well: on a Berea CT
slice the k of six seeds' samples spread from 0.041 to 0.067 voxel², and it ranked with how much of the pore
space of the samples' 2D sections is joined to a window's edge (:func:`physics.section_connectivity`; Spearman
0.89, docs/results.md, "Berea: coarse noise of 7³ cubes over six seeds"). That share C is a statistic of
sections, so it is taken on the training image itself, and a run can be chosen against it without any 3D truth.
"""

from __future__ import annotations

import numpy as np

from physics import section_connectivity

SELECTION_WINDOW = 64
"""Side of the windows of :func:`physics.section_connectivity` for the choice (smaller when an image is)."""

SELECTION_VOLUMES = 16
"""Volumes of ``config.calibration_size``³ generated per candidate; their sections normal to each axis, every
:data:`SELECTION_STEP`-th, give the candidate's C. On Berea models at 96³ the C of one volume spreads with a
standard deviation of 0.03 (16 volumes each of three models), so 16 give a candidate's C with a standard error of
about 0.007, below the spread between seeds (0.240-0.275 over six Berea seeds)."""

SELECTION_STEP = 8
"""Spacing, in voxels, of the sections taken from each volume along each axis."""


def window_for(reference_sections, side: int) -> int:
    """:data:`SELECTION_WINDOW`, or the smallest side of the reference's sections and of the volumes."""
    sides = [min(np.shape(s)) for s in reference_sections]
    return int(min(SELECTION_WINDOW, side, *sides))


def sections(volume: np.ndarray, step: int = SELECTION_STEP) -> list[np.ndarray]:
    """The sections of ``volume`` normal to each of its axes, every ``step``-th."""
    return [
        np.take(volume, i, axis=axis)
        for axis in range(volume.ndim)
        for i in range(0, volume.shape[axis], step)
    ]


def reference_connectivity(images, config, *, phase: int) -> tuple[float, int]:
    """(C, window) of the reference's target sections: the training images, or a volume's target sections
    (:func:`swnn.target.prepare_target`), in windows of :func:`window_for` the calibration side."""
    from swnn.target import _section_images

    per_axis, _ = _section_images(images, config)
    images = [np.asarray(im) for axis in per_axis for im in axis]
    window = window_for(images, config.calibration_size)
    return section_connectivity(images, phase=phase, window=window), window


def model_connectivity(model, *, side: int, seed: int, phase: int, window: int, device) -> float:
    """C of the sections of :data:`SELECTION_VOLUMES` volumes of ``side``³ that ``model`` generates.

    The volumes are samples 2³⁰, 2³⁰ + 1, … of noise seed ``seed`` in float32: far from the samples a user
    draws (0, 1, …) and from the calibration noise.
    """
    from swnn.generation import GenerationSettings, generate

    settings = GenerationSettings(seed=seed, precision="fp32")
    pooled = []
    for v in range(SELECTION_VOLUMES):
        pooled += sections(generate(model, (side,) * 3, settings=settings, sample=2**30 + v, device=device))
    return section_connectivity(pooled, phase=phase, window=window)
