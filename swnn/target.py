"""The target of training: the reference's k×k patterns per axis and scale (Eq. 7), resampled by the control
strategy for a target fraction (Sec. 2.2.3), and its S2 and lineal-path curves for the loss's extra terms."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from physics.integral_range import Representativity, image_representativity
from swnn.control import control_patterns
from swnn.patterns import multiscale_patterns, phase_channels, section_lineal_path, section_two_point

if TYPE_CHECKING:
    from swnn.config import TrainConfig

__all__ = ["S2_MAX_LAG", "TrainingTarget", "interface_density", "prepare_target"]


@dataclass(frozen=True)
class TrainingTarget:
    """Target patterns per generated axis and scale.

    Attributes
    ----------
    per_axis : list of list of Tensor
        ``per_axis[a][s]``: target patterns (N, d) for sections normal to axis a at scale index s; None for a
        coarser scale that the control strategy cannot bring to η (left out of the loss).
    n_phases : int
    reference_fraction : float
        Fraction of the controlled phase in the reference.
    target_fraction : float
        η (equal to the reference fraction without control).
    phase : int
        The controlled phase.
    sha256 : str
        Hash of the reference labels.
    representativity : physics.integral_range.Representativity or None
        How well the reference knows its own fraction of ``phase`` (integral range, standard deviation).
    interface_density : float or None
        Fraction of the pairs of neighbouring pixels (voxels) of the reference whose labels differ, over all its
        arrays and axes: the interfaces per pair that ``smoothing = "auto"`` matches.
    s2 : Tensor of shape (axes, 2, R + 1) or None
        Two-point function of the controlled phase along the two axes of each trained section's target images
        (mean over them), r = 0 … R; None when ``s2_weight`` is 0 or a target fraction is set.
    """

    per_axis: list
    n_phases: int
    reference_fraction: float
    target_fraction: float
    phase: int
    sha256: str
    controlled: bool = False
    kept: list = field(default_factory=list)
    s2: torch.Tensor | None = None
    lineal: torch.Tensor | None = None
    representativity: Representativity | None = None
    interface_density: float | None = None


def _hash_labels(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.uint8)
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _phase_means(patterns: torch.Tensor, phase: int, n_phases: int) -> torch.Tensor:
    n, d = patterns.shape
    per_channel = patterns.view(n, n_phases - 1, d // (n_phases - 1))
    if phase == 0:
        return 1.0 - per_channel.sum(dim=1).double().mean(dim=1)
    return per_channel[:, phase - 1].double().mean(dim=1)


def prepare_target(
    images: Sequence[np.ndarray] | np.ndarray,
    config: TrainConfig,
    *,
    n_phases: int | None = None,
    phase: int = 1,
    target_fraction: float | None = None,
    generator: torch.Generator | None = None,
) -> TrainingTarget:
    """Target patterns from a reference.

    Parameters
    ----------
    images : ndarray (H, W), ndarray (Z, Y, X), or sequence of ndarray (H, W)
        A 2D image (used for every axis), several 2D images of one material (their patterns pooled), or a 3D
        volume (the sections normal to axis a give the targets of axis a: the central and quartile sections).
    config : TrainConfig
    n_phases : int, optional
        Defaults to max label + 1.
    phase : int
        The phase whose fraction is controlled.
    target_fraction : float, optional
        η for the control strategy (Sec. 2.2.3); ``None`` keeps the reference's distribution (stochastic).
    """
    per_axis_images, all_labels = _section_images(images, config)
    n_phases = n_phases or int(max(int(np.max(a)) for a in all_labels)) + 1
    n_phases = max(n_phases, 2)
    if not 0 <= phase < n_phases:
        raise ValueError(f"phase must be one of 0..{n_phases - 1} for this reference, got {phase}")
    reference_fraction = float(
        np.mean(np.concatenate([(np.asarray(a) == phase).ravel() for a in all_labels]))
    )
    per_axis, kept = [], []
    cache: dict[int, list[torch.Tensor]] = {}  # a 2D reference gives every axis the same list: once
    for imgs in per_axis_images:
        if id(imgs) not in cache:
            pooled = _pooled_patterns(imgs, config, n_phases)
            if target_fraction is not None:
                pooled = _controlled(pooled, target_fraction, phase, n_phases, generator, kept)
            cache[id(imgs)] = pooled
        per_axis.append(cache[id(imgs)])
    s2 = lineal = None
    if config.s2_weight > 0 and target_fraction is None:
        s2 = _target_curves(section_two_point, per_axis_images, phase, config.section, config.curve_diagonals)
    if config.lineal_weight > 0 and target_fraction is None:
        lineal = _target_curves(
            section_lineal_path, per_axis_images, phase, config.section, config.curve_diagonals
        )
    return TrainingTarget(
        s2=s2,
        lineal=lineal,
        per_axis=per_axis,
        n_phases=n_phases,
        reference_fraction=reference_fraction,
        target_fraction=reference_fraction if target_fraction is None else float(target_fraction),
        phase=phase,
        sha256=_hash_labels(all_labels),
        controlled=target_fraction is not None,
        kept=kept,
        representativity=image_representativity(all_labels, phase=phase),
        interface_density=interface_density(all_labels),
    )


def interface_density(arrays: Sequence[np.ndarray]) -> float:
    """Fraction of the pairs of neighbouring pixels (voxels) whose labels differ, pooled over ``arrays`` and
    every axis of each (for two phases, S_v per voxel without the isotropic factor of :mod:`physics.surface`)."""
    differ = pairs = 0
    for array in arrays:
        array = np.asarray(array)
        for axis in range(array.ndim):
            if array.shape[axis] > 1:
                step = np.diff(array, axis=axis) != 0
                differ, pairs = differ + int(step.sum()), pairs + step.size
    return differ / pairs if pairs else 0.0


def _section_images(images, config: TrainConfig) -> tuple[list, list]:
    """(target images of each axis, every label array of the reference) for :func:`prepare_target`."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        volume = images
        per_axis_images = []
        for axis in range(3):
            length = volume.shape[axis]
            picks = sorted({length // 4, length // 2, (3 * length) // 4})
            per_axis_images.append([np.take(volume, i, axis=axis) for i in picks])
        all_labels = [volume]
    else:
        imgs = [images] if isinstance(images, np.ndarray) else list(images)
        for i, im in enumerate(imgs):
            if np.asarray(im).ndim != 2:
                raise ValueError(f"reference image {i} must be 2D, got shape {np.asarray(im).shape}")
        all_labels = imgs
        if config.dim == 3 and config.isotropic:
            imgs = imgs + [np.ascontiguousarray(np.asarray(im).T) for im in imgs]
        per_axis_images = [imgs] * (3 if config.dim == 3 else 1)
    if config.dim == 2:
        per_axis_images = per_axis_images[:1]
    return per_axis_images, all_labels


def _pooled_patterns(imgs, config: TrainConfig, n_phases: int) -> list[torch.Tensor]:
    """The k×k patterns of ``imgs`` at every scale, pooled over the images (Eq. 7)."""
    scales_patterns = [[] for _ in config.scales]
    for im in imgs:
        for s, pats in enumerate(
            multiscale_patterns(phase_channels(im, n_phases), config.template, config.scales)
        ):
            scales_patterns[s].append(pats)
    return [torch.cat(p) for p in scales_patterns]


def _controlled(pooled, target_fraction, phase, n_phases, generator, kept: list) -> list:
    """The control strategy (Sec. 2.2.3) at every scale; ``kept`` receives the patterns kept per scale."""
    controlled = []
    for s, pats in enumerate(pooled):
        means = _phase_means(pats, phase, n_phases)
        if s > 0 and not float(means.min()) <= target_fraction <= float(means.max()):
            # Pooled patterns span a narrower range of means than the k×k template; where η lies outside it,
            # that scale cannot be controlled and is left out of the loss (None). The paper's template (the
            # first scale) decides reachability.
            controlled.append(None)
            kept.append(0)
            continue
        result = control_patterns(pats, target_fraction, means=means, generator=generator)
        controlled.append(result.patterns)
        kept.append(result.kept)
    return controlled


S2_MAX_LAG = 32
"""Largest lag of the two-point and lineal-path loss terms (the fidelity measure's r ≤ 32)."""


def _target_curves(
    function, per_axis_images: list, phase: int, section: int, diagonals: bool = False
) -> torch.Tensor:
    """Mean of ``function`` (S2 or L) of each axis's target images along their two axes (and diagonals).

    Lags r = 0 … min(32, section − 1, image side − 1). Returns a tensor of shape (axes, 2, r_max + 1), or
    (axes, 4, r_max + 1) with ``diagonals``.
    """
    smallest = min(min(np.asarray(im).shape) for imgs in per_axis_images for im in imgs)
    r_max = min(S2_MAX_LAG, section - 1, smallest - 1)
    per_list: dict[int, torch.Tensor] = {}  # a 2D reference gives every axis the same list: measured once
    for imgs in per_axis_images:
        if id(imgs) not in per_list:
            curves = [
                function(
                    torch.from_numpy((np.asarray(im) == phase).astype(np.float64))[None],
                    r_max,
                    diagonals=diagonals,
                )[0]
                for im in imgs
            ]
            per_list[id(imgs)] = torch.stack(curves).mean(dim=0)
    return torch.stack([per_list[id(imgs)] for imgs in per_axis_images]).float()
