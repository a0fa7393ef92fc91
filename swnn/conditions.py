"""Conditions on a generated volume: a fraction, a fraction profile or a spatial mask on the input noise
(:mod:`swnn.continuous`, :mod:`swnn.masks`), and a global phase composed with the local model's phases
(:mod:`swnn.decoupling`). :func:`swnn.api.generate` and :func:`swnn.api.generate_to` resolve their keywords
here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["as_mask", "calibrate_control", "check_fraction", "global_mask_of", "noise_control", "phase_index"]


def _as_model(model):
    from swnn.model import load_model

    return load_model(model) if isinstance(model, (str, os.PathLike)) else model


def check_fraction(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"fraction must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {value!r}")
    return float(value)


def as_mask(mask, shape, mask_values):
    """A :class:`swnn.masks.Mask` over ``shape`` from a specification, a file, an array or a Mask."""
    from swnn.io import read_field
    from swnn.masks import Mask, mask_from_array, parse_mask

    if isinstance(mask, Mask):
        made = mask
    elif isinstance(mask, str) and ":" in mask and not Path(mask).exists():
        made = parse_mask(mask, shape)
    elif isinstance(mask, (str, os.PathLike)):
        made = mask_from_array(read_field(mask), values=mask_values, description=str(mask))
    elif isinstance(mask, np.ndarray):
        made = mask_from_array(mask, values=mask_values)
    else:
        raise ValueError(
            f"mask must be a specification, a file, an array or a Mask; got {type(mask).__name__}"
        )
    if tuple(made.shape) != tuple(shape):
        raise ValueError(
            f"mask {made.description} has shape {tuple(made.shape)}; the volume's is {tuple(shape)}"
        )
    return made


def calibrate_control(model, *, save: bool = True, device: str = "auto", progress: bool = False):
    """Measure the model's continuous-control map (noise-mean shift -> fraction, Fig. 12) and store it in
    the model's metadata, and in its file when it has one and ``save``. Returns the
    :class:`swnn.continuous.ControlMap`; its ``reachable`` attribute is the range of fractions."""
    from swnn.continuous import calibrate_control as _calibrate

    model = _as_model(model)
    control_map = _calibrate(model, device=device, progress=progress)
    model.metadata = model.metadata.replace(control_map=control_map.to_dict())
    if save and model.path is not None:
        model.save(model.path, force=True)
    return control_map


def noise_control(
    model,
    shape,
    *,
    fraction=None,
    fraction_profile=None,
    mask=None,
    mask_mode="multiply",
    mask_values=None,
    device="auto",
    progress=False,
):
    """The noise transforms for a requested fraction, fraction profile or mask, and their provenance."""
    from swnn.masks import MASK_MODES, MaskTransform, parse_mask

    given = [
        name
        for name, v in (("fraction", fraction), ("fraction_profile", fraction_profile), ("mask", mask))
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give one of fraction, fraction_profile and mask, not {' and '.join(given)}")
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {', '.join(MASK_MODES)}; received {mask_mode!r}")
    if not given:
        return [], {}
    if fraction is not None:
        fraction = check_fraction(fraction)
    if fraction_profile is not None:
        axis, _, ends = str(fraction_profile).partition(":")
        mask, mask_mode = parse_mask(f"gradient:{axis}:{ends}", shape), "offset"
        record = {"fraction_profile": str(fraction_profile)}
    elif fraction is not None:
        record = {"fraction": float(fraction)}
    else:
        mask = as_mask(mask, shape, mask_values)
        record = {"mask": mask.description, "mask_mode": mask_mode}
    needs_map = fraction is not None or mask_mode == "offset"
    control_map = model.control_map if needs_map else None
    if needs_map and control_map is None:
        control_map = calibrate_control(model, device=device, progress=progress)
    if fraction is not None:
        shift = float(control_map.shift_for(fraction))
        transform = control_map.shift_transform(shift, model.network.noise_channels)
        return [transform], {**record, "noise_shift": shift}
    if mask_mode == "offset":
        control_map.shift_for([mask.low, mask.high])  # a clear error when the mask asks for the unreachable
        control = control_map.field_transform(model.network.noise_channels)
        transform = MaskTransform(mask, halo=model.halo, mode="offset", shift=control)
    else:
        transform = MaskTransform(mask, halo=model.halo, mode="multiply")
    return [transform], record


def phase_index(value, model) -> int:
    limit = model.network.n_phases
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= limit:
        raise ValueError(
            f"global_phase must be an integer in 0..{limit} (the local model has {limit} phases)"
        )
    return int(value)


def global_mask_of(global_mask, shape, global_label, *, settings, sample, device):
    """The boolean global-phase mask over ``shape`` and its description, or (None, None)."""
    from swnn.model import TrainedModel

    if global_mask is None:
        return None, None
    if isinstance(global_label, bool) or not isinstance(global_label, (int, np.integer)) or global_label < 0:
        raise ValueError(f"global_label must be a label (an integer >= 0), got {global_label!r}")
    is_model_file = isinstance(global_mask, (str, os.PathLike)) and Path(global_mask).suffix in (
        ".pt",
        ".pth",
    )
    if isinstance(global_mask, TrainedModel) or is_model_file:
        from dataclasses import replace

        from swnn.decoupling import global_seed
        from swnn.generation import generate as _generate

        global_model = _as_model(global_mask)
        own = replace(
            settings, seed=global_seed(settings.seed)
        )  # its own noise, independent of the local one
        labels = _generate(global_model, shape, settings=own, sample=sample, device=device)
        description = f"model {global_model.path or '(in memory)'}"
    elif isinstance(global_mask, (str, os.PathLike)):
        from swnn.io import read_volume

        labels = read_volume(global_mask)
        description = str(global_mask)
    elif isinstance(global_mask, np.ndarray):
        from swnn.io import to_labels

        # labels 0..n−1 in ascending order of value, as swnn reads every file (0/255 -> 0/1)
        labels = (
            global_mask.astype(np.uint8)
            if global_mask.dtype == bool
            else to_labels(global_mask, source="global_mask", min_phases=1)
        )
        description = "array"
    else:
        raise ValueError(
            f"global_mask must be a label volume, a file or a model; got {type(global_mask).__name__}"
        )
    if labels.ndim == 2:
        labels = labels[None]
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"global_mask {description} has shape {tuple(labels.shape)}; the volume's is {tuple(shape)}"
        )
    where = labels == global_label
    if not where.any():
        raise ValueError(f"global_mask {description} holds no voxel of label {global_label}")
    return where, description
