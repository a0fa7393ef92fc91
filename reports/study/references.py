"""The references of a study, loaded and checked against its conditions before any work."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .settings import ReferenceSettings, Study

__all__ = ["LoadedReference", "central_crop", "prepare_study"]


@dataclass(frozen=True, eq=False)
class LoadedReference:
    """A reference of a study, loaded.

    Attributes
    ----------
    settings : ReferenceSettings
    training_input : list of ndarray of shape (H, W), or ndarray of shape (Z, Y, X)
        What :func:`swnn.training.train` receives: the 2D sections, or a 3D volume (trained axis by axis).
    truth : ndarray of shape (Z, Y, X) or (H, W)
        What samples are compared with: the 3D ground truth, or the 2D image.
    n_phases : int
    sha256 : str
        Hash of ``truth`` (shape, dtype and bytes).
    training_sha256 : str
        Hash of ``training_input``, what models are trained on (the truth's, unless a separate ``truth`` is
        given).
    target_fractions : dict
        Condition -> the model's target fraction (η, or the training image's fraction when stochastic).
    """

    settings: ReferenceSettings
    training_input: Any
    truth: np.ndarray
    n_phases: int
    sha256: str
    target_fractions: dict
    training_sha256: str = ""

    @property
    def has_volume(self) -> bool:
        return self.truth.ndim == 3


def _hash_array(array: np.ndarray) -> str:
    digest = hashlib.sha256()
    array = np.ascontiguousarray(array)
    digest.update(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def central_crop(volume: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``-sided block of ``volume`` (the whole axis where it is shorter)."""
    index = tuple(
        slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in volume.shape
    )
    return np.ascontiguousarray(volume[index])


def _read_truth(path: str, n_phases: int, where: str) -> np.ndarray:
    """The ``truth`` volume of a reference, checked to be 3D with the reference's number of phases."""
    from swnn.io import read_volume

    try:
        truth = read_volume(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{where}: truth: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: truth: {exc}") from None
    found = int(truth.max()) + 1
    if found != n_phases:
        raise ValueError(
            f"{where}: its truth {path} has {found} phases and its source {n_phases}; they must be the "
            "same material with the same labels"
        )
    return truth


def prepare_study(study: Study) -> list[LoadedReference]:
    """Load every reference and check every condition (phase present, target fraction reachable, r_max).

    Raises one ``ValueError`` / ``FileNotFoundError`` naming the reference and the condition; nothing is
    trained or written.
    """
    import torch

    from swnn.api import training_input
    from swnn.references import load_reference
    from swnn.training import prepare_target

    configs = {ref.name: study.training_config(ref) for ref in study.references}
    loaded = []
    for ref in study.references:
        reference = load_reference(
            ref.source, threshold=ref.threshold, shape=ref.raw_shape, dtype=ref.raw_dtype
        )
        where = f"{study.source}: reference {ref.name!r}"
        if not 0 <= ref.phase < reference.n_phases:
            raise ValueError(
                f"{where}: phase {ref.phase} is not one of its labels 0..{reference.n_phases - 1}"
            )
        truth = reference.volume if reference.volume is not None else reference.image
        if ref.truth is not None:
            truth = _read_truth(ref.truth, reference.n_phases, where)
        if not (truth == ref.phase).any():
            raise ValueError(f"{where}: phase {ref.phase} does not occur in it")
        if study.r_max >= min(truth.shape):
            raise ValueError(
                f"{where}: r_max = {study.r_max} must be smaller than its smallest side {min(truth.shape)}"
            )
        inputs = training_input(reference)[0]  # what `swnn train` trains on
        if ref.slices is not None:
            try:
                inputs = training_input(reference, slices=ref.slices)[0]
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        targets = {}
        for condition in ref.conditions:
            try:
                target = prepare_target(
                    inputs,
                    configs[ref.name],
                    n_phases=reference.n_phases,
                    phase=ref.phase,
                    target_fraction=condition.target_fraction,
                    generator=torch.Generator().manual_seed(0),
                )
            except ValueError as exc:
                raise ValueError(f"{where}, condition {condition.label}: {exc}") from None
            targets[condition] = target.target_fraction
        arrays = [inputs] if isinstance(inputs, np.ndarray) else inputs
        trained_on = hashlib.sha256("".join(_hash_array(a) for a in arrays).encode()).hexdigest()
        loaded.append(
            LoadedReference(ref, inputs, truth, reference.n_phases, _hash_array(truth), targets, trained_on)
        )
    return loaded
