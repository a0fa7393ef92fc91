"""The notebook API: load a reference, train, generate, evaluate, in a few calls.

Every function here is also reachable as ``swnn.<name>`` (imported on first use)::

    import swnn
    ref = swnn.load_reference("builtin:particles")
    model = swnn.train(ref, profile="quick", iterations=50, seed=0)
    vol = swnn.generate(model, shape=(64, 64, 64), seed=1)      # numpy uint8 labels
    swnn.generate_to("v.zarr", model, shape=(512,) * 3, seed=1)  # streamed to disk with its provenance
    ev = swnn.evaluate(vol, metrics=["fraction", "s2", "conductivity"])
    cmp = swnn.compare(ev, swnn.evaluate(ref.volume))

The ``swnn`` command calls these same functions. Errors name the parameter, the value and what is accepted:
``ValueError`` for a bad value (a wrong type raises :class:`physics.ParameterTypeError`, both a
``TypeError`` and a ``ValueError``), ``FileNotFoundError``, ``FileExistsError`` (pass ``force=True``),
``NotADirectoryError`` or ``PermissionError`` for a destination.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from swnn.conditions import calibrate_control, global_mask_of, noise_control, phase_index
from swnn.references import Reference, load_reference

__all__ = [
    "Reference",
    "calibrate_control",
    "generate",
    "generate_to",
    "load_model",
    "load_reference",
    "train",
    "training_input",
    "volume_sections",
    "volume_shape",
]


def parse_slice(text: str) -> tuple[int, int]:
    """``"AXIS:INDEX"`` as (axis, index); ``ValueError`` unless the axis is 0, 1 or 2 and the index a count."""
    axis, _, index = str(text).partition(":")
    if not (axis in ("0", "1", "2") and index.isdigit()):
        raise ValueError(f"slice {text!r} must be AXIS:INDEX, an axis 0, 1 or 2 and a section index")
    return int(axis), int(index)


def volume_sections(volume: np.ndarray, slices, *, name: str = "reference") -> list[np.ndarray]:
    """The 2D sections ``slices`` of a 3D ``volume``: ``"AXIS:INDEX"`` strings or (axis, index) pairs.

    Raises ``ValueError`` naming the slice when it is malformed or beyond the volume.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"slices need a 3D reference (a volume); {name} has shape {volume.shape}")
    sections = []
    for item in slices:
        axis, index = parse_slice(item) if isinstance(item, str) else (int(v) for v in item)
        if not (0 <= axis < 3 and 0 <= index < volume.shape[axis]):
            raise ValueError(
                f"slice {axis}:{index} is beyond {name}, which has {volume.shape[axis] if 0 <= axis < 3 else 0} "
                f"sections along axis {axis}"
            )
        sections.append(np.ascontiguousarray(np.take(volume, index, axis=axis)))
    if not sections:
        raise ValueError("slices must name at least one section AXIS:INDEX")
    return sections


def _sliced_input(reference, slices) -> tuple[list[np.ndarray], int, str]:
    """:func:`training_input` of the ``slices`` of one 3D reference."""
    ref = reference if isinstance(reference, (Reference, np.ndarray)) else None
    if ref is None and isinstance(reference, (str, os.PathLike)):
        ref = load_reference(reference)
    if ref is None:
        raise ValueError("slices need one 3D reference, not several")
    if isinstance(ref, np.ndarray):
        volume = _labels(ref, "reference")
        name, n_phases = "array", int(volume.max()) + 1
    else:
        volume, name, n_phases = ref.volume, ref.name, ref.n_phases
    if volume is None:
        raise ValueError(f"slices need a 3D reference (a volume); {name} is a 2D image")
    sections = volume_sections(volume, slices, name=name)
    labels = " ".join(item if isinstance(item, str) else "{}:{}".format(*item) for item in slices)
    return sections, n_phases, f"{name} [slices {labels}]"


def training_input(reference, *, region: str | None = None, slices=None) -> tuple[object, int, str]:
    """What a model is trained on: ``(images or volume, n_phases, name)``.

    Parameters
    ----------
    reference : Reference, str, Path, ndarray, or sequence of these
        A loaded :class:`~swnn.references.Reference`; a spec for :func:`load_reference` (a file path or
        ``builtin:NAME``); an array of labels 0..n−1 of shape (H, W) or (Z, Y, X); or several 2D references of
        one material, whose patterns are pooled.
    region : str, optional
        A local region of the reference (``labels:L1,L2,...`` or ``rect:Y0:Y1,X0:X1``) for the local model of
        local–global decoupling (:func:`swnn.decoupling.local_region`); its labels are renumbered 0..m−1.
    slices : sequence of str or (int, int), optional
        Train a 3D reference on these sections only (``"AXIS:INDEX"``, :func:`volume_sections`), pooled like
        several images: one CT slice, or three orthogonal ones.

    Returns
    -------
    images : list of ndarray (H, W), or ndarray (Z, Y, X)
        A 3D file trains each axis on its own sections; a built-in trains on its central 2D section (its
        volume is the ground truth to compare with); 2D references train on their images.
    n_phases : int
    name : str
    """
    if slices is not None:
        if region is not None:
            raise ValueError("give region or slices, not both")
        return _sliced_input(reference, slices)
    if region is not None:
        from swnn.decoupling import local_region

        images, _, name = training_input(reference)
        if isinstance(images, np.ndarray):
            images = local_region(images, region)
            n_phases = int(images.max()) + 1
        else:
            images = [local_region(image, region) for image in images]
            n_phases = max(int(image.max()) + 1 for image in images)
        if n_phases < 2:
            raise ValueError(f"region {region!r} of {name} holds a single phase; a model needs two or more")
        return images, n_phases, f"{name} [region {region}]"
    if isinstance(reference, np.ndarray):
        labels = _labels(reference, "reference")
        return (labels if labels.ndim == 3 else [labels]), int(labels.max()) + 1, "array"
    if isinstance(reference, (str, os.PathLike, Reference)):
        ref = reference if isinstance(reference, Reference) else load_reference(reference)
        use_volume = ref.volume is not None and not ref.name.startswith("builtin:")
        return (ref.volume if use_volume else list(ref.images)), ref.n_phases, ref.name
    items = list(reference)
    if not items:
        raise ValueError("reference is an empty sequence; give at least one image")
    if len(items) == 1:
        return training_input(items[0])
    images, names = [], []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            image = _labels(item, f"reference[{i}]")
            if image.ndim != 2:
                raise ValueError(
                    f"reference[{i}]: several references must all be 2D images, got shape {image.shape}"
                )
            images.append(image)
            names.append("array")
            continue
        ref = item if isinstance(item, Reference) else load_reference(item)
        if ref.volume is not None:
            raise ValueError(
                f"{ref.name}: several references must all be 2D images of one material; "
                "give a 3D volume on its own"
            )
        images.append(ref.image)
        names.append(ref.name)
    n_phases = max(int(image.max()) + 1 for image in images)
    return images, n_phases, "+".join(names)


def _labels(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as labels 0..n−1 (the convention of :func:`swnn.io.to_labels`: 0/255 become 0/1)."""
    from swnn.io import to_labels

    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2D or 3D array of labels, got shape {array.shape}")
    return to_labels(array, source=name)


def train(
    reference,
    *,
    profile: str = "quick",
    phase: int = 1,
    fraction: float | None = None,
    seed: int = 0,
    output: str | os.PathLike | None = None,
    force: bool = False,
    resume: bool = True,
    device: str = "auto",
    progress: bool = False,
    callbacks=(),
    control_map: bool = True,
    region: str | None = None,
    slices=None,
    **settings,
):
    """Train an SWNN on a reference (Algorithm 1 of the paper) and return the trained model.

    Parameters
    ----------
    reference : Reference, str, Path, ndarray or sequence
        See :func:`training_input`.
    profile : {"quick", "paper", "rock"}
        The settings to start from (:data:`swnn.training.PROFILES`).
    phase : int
        The controlled phase (default 1).
    fraction : float, optional
        Target fraction η of ``phase`` (the control strategy, Sec. 2.2.3); None keeps the reference's.
    seed : int
        Seed of the network's initial weights, the training noise and the projection directions.
    output : path, optional
        Save the model there (atomically, with its ``.json`` metadata) and checkpoint to ``<output>.ckpt``
        while training; an interrupted run resumes from it when ``resume``.
    callbacks : sequence of swnn.training.TrainingCallback
        Hooks called at each iteration (for example to record or plot the loss as it falls).
    control_map : bool
        After training, measure the continuous-control map (:func:`calibrate_control`) and store it with the
        model, so that :func:`generate` reaches any fraction in its range without measuring it then. A model
        whose fraction does not move with the noise mean is saved without one (with a warning).
    region : str, optional
        Train on a local region of the reference (``labels:L1,L2,...`` or ``rect:Y0:Y1,X0:X1``): the local
        model of local–global decoupling (:mod:`swnn.decoupling`; generate with ``global_mask``). A label
        region's model is controlled to the fraction of ``phase`` inside the region unless ``fraction`` is
        given.
    slices : sequence of str or (int, int), optional
        Train a 3D reference on these sections only (``"AXIS:INDEX"``), pooled like several images
        (:func:`training_input`).
    **settings
        Any field of :class:`swnn.training.TrainConfig` (``iterations``, ``directions``, ``section``...).

    Returns
    -------
    TrainedModel
    """
    from swnn.training import PROFILES, TrainConfig
    from swnn.training import train as _train

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    fields = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; accepted: {', '.join(sorted(fields))}")
    config = PROFILES[profile].replace(seed=seed, **settings)
    images, n_phases, name = training_input(reference, region=region, slices=slices)
    if region is not None and fraction is None:
        from swnn.decoupling import region_fraction

        fraction = region_fraction(training_input(reference)[0], region, phase)
    result = _train(
        images,
        config=config,
        output=output,
        phase=phase,
        target_fraction=fraction,
        n_phases=n_phases,
        reference_name=name,
        device=device,
        progress=progress,
        resume=resume,
        force=force,
        callbacks=callbacks,
    )
    model = result.model
    if control_map:
        try:
            calibrate_control(model, device=device, progress=progress)
        except ValueError as error:
            warnings.warn(f"no continuous-control map: {error}", stacklevel=2)
    return model


def load_model(path: str | os.PathLike, *, device: str = "cpu"):
    """Load a model written by :func:`train` or ``swnn train`` (:func:`swnn.model.load_model`)."""
    from swnn.model import load_model as _load

    return _load(path, device=device)


def volume_shape(shape) -> tuple[int, int, int]:
    """``(Z, Y, X)`` from a cube side or three sizes, all positive."""
    dims = (shape,) * 3 if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(dims) != 3 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in dims):
        raise ValueError(f"shape must be a positive int or three positive ints (Z, Y, X), got {shape!r}")
    return tuple(int(n) for n in dims)


MIN_BLOCK = 8
"""Smallest block side :func:`generate` and :func:`generate_to` accept. Any block gives the same volume; a
smaller one only multiplies the work, as each block recomputes the network's halo around it."""


def _settings(*, seed: int, block: int, precision: str, device: str):
    from swnn._device import resolve_device, resolve_precision
    from swnn.generation import GenerationSettings

    if not isinstance(block, (int, np.integer)) or block < MIN_BLOCK:
        raise ValueError(
            f"block must be at least {MIN_BLOCK} voxels, got {block!r} (smaller blocks give the same volume, "
            "only more slowly: each block recomputes the network's halo around it)"
        )

    precision = resolve_precision(precision, resolve_device(device))
    return GenerationSettings(block=block, seed=seed, precision=precision)


def _model(model):
    return load_model(model) if isinstance(model, (str, os.PathLike)) else model


def generate(
    model,
    shape: int | Sequence[int] = (64, 64, 64),
    *,
    seed: int = 0,
    sample: int = 0,
    block: int = 128,
    precision: str = "auto",
    device: str = "auto",
    progress: bool = False,
    fraction: float | None = None,
    fraction_profile: str | None = None,
    mask=None,
    mask_mode: str = "multiply",
    mask_values: Mapping[int, float] | None = None,
    global_mask=None,
    global_label: int = 0,
    global_phase: int = 0,
) -> np.ndarray:
    """Generate one volume in memory (Sec. 3.4: any block gives the same volume).

    Parameters
    ----------
    model : TrainedModel or path
    shape : int or (Z, Y, X)
        A cube side or a shape in voxels; ``(1, Y, X)`` gives one 2D section.
    seed, sample : int
        The noise seed, and the index of a sample of that seed (samples are independent).
    block : int
        Side of the blocks generated at once (memory, not result).
    precision : {"auto", "fp32", "bf16"}
        Each precision has its own calibrated threshold; ``auto`` picks bf16 where it runs natively.
    fraction : float, optional
        Fraction of the model's phase, reached by shifting the noise mean (continuous control, Fig. 12) with
        the model's calibrated map; a model without one is calibrated first (:func:`calibrate_control`).
    fraction_profile : str, optional
        ``"AXIS:A..B"``: a fraction varying linearly from A to B along array axis AXIS (graded material).
    mask : str, path, ndarray or swnn.masks.Mask, optional
        A spatial location mask (Sec. 3.3): a specification such as ``"gradient:0:0.2..1"`` (syntax in
        :mod:`swnn.masks`), or a volume of ``shape`` (a file or an array), floats or labels.
    mask_mode : {"multiply", "offset"}
        ``multiply``: Y = G(X·M), mask values in [0, 1]; ``offset``: mask values are fractions, reached
        voxel by voxel through the calibrated map.
    mask_values : mapping of int to float, optional
        For a label mask: the value of each label.
    global_mask : ndarray, path or TrainedModel, optional
        Local–global decoupling (Sec. 4, :mod:`swnn.decoupling`): where this volume (a label volume, a file,
        or a model generated with the same seed, sample and shape) holds ``global_label``, the output holds
        ``global_phase``; elsewhere the labels of ``model`` (the local model), numbered around it. A model
        is generated with the same sample and its own noise (seed :func:`swnn.decoupling.global_seed`).
    global_label, global_phase : int
        The global phase's label in ``global_mask`` (labels 0..n−1 in ascending order of value, as swnn reads
        every file: 0/255 become 0/1), and in the output.

    Returns
    -------
    ndarray of shape ``shape``, uint8
        Phase labels 0..n−1.
    """
    from swnn.generation import generate as _generate

    model = _model(model)
    shape = volume_shape(shape)
    settings = _settings(seed=seed, block=block, precision=precision, device=device)
    control = dict(
        fraction=fraction,
        fraction_profile=fraction_profile,
        mask=mask,
        mask_mode=mask_mode,
        mask_values=mask_values,
    )
    transforms, _ = noise_control(model, shape, device=device, progress=progress, **control)
    where, _ = global_mask_of(
        global_mask, shape, global_label, settings=settings, sample=sample, device=device
    )
    volume = _generate(
        model,
        shape,
        settings=settings,
        sample=sample,
        device=device,
        progress=progress,
        transforms=transforms,
    )
    if where is None:
        return volume
    from swnn.decoupling import compose

    return compose(where, volume, global_phase=phase_index(global_phase, model))


def generate_to(
    path: str | os.PathLike,
    model,
    shape: int | Sequence[int] = (64, 64, 64),
    *,
    seed: int = 0,
    sample: int = 0,
    block: int = 128,
    precision: str = "auto",
    voxel_size: float | None = None,
    force: bool = False,
    device: str = "auto",
    progress: bool = False,
    fraction: float | None = None,
    fraction_profile: str | None = None,
    mask=None,
    mask_mode: str = "multiply",
    mask_values: Mapping[int, float] | None = None,
    global_mask=None,
    global_label: int = 0,
    global_phase: int = 0,
    client=None,
    threads: int | None = None,
) -> Path:
    """Generate one volume straight to a file, block by block, with its provenance.

    The format follows the extension (``.npy``, ``.tif``/``.tiff``, ``.zarr``, ``.raw``; ``.png`` for a
    ``(1, Y, X)`` section). Memory stays bounded by the block, so 1024³ volumes fit. The file is written
    under a temporary name and renamed on success: an error or an interrupt leaves nothing. Its provenance
    (seed, sample, model hash, version, threshold, voxel size...) goes to ``<path>.json`` and, where the
    format allows, into the file; a requested fraction, fraction profile or mask is recorded with it.
    Parameters are those of :func:`generate`, plus ``voxel_size`` (metres, recorded), ``force``
    (overwrite) and ``client``: a ``dask.distributed.Client`` makes each block one task on its workers,
    written straight into a ``.zarr`` store, and an interrupted run resumes where it stopped
    (:mod:`swnn.distributed`). ``threads``: torch and numba threads for each block (None: this process's
    setting, and 1 per task on a Dask client); GPU workers draw a block's noise on them, so give each the CPU
    cores of its GPU.

    Returns
    -------
    Path
    """
    from swnn._threads import fixed_threads
    from swnn.generation import generate as _generate
    from swnn.generation import provenance
    from swnn.io import VolumeWriter, check_destination, write_png

    path = Path(path)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    check_destination(path, force=force)  # before any work
    shape = volume_shape(shape)
    model = _model(model)
    model_path = model.path if model.path is not None else "(in memory)"
    settings = _settings(seed=seed, block=block, precision=precision, device=device)
    transforms, control = noise_control(
        model,
        shape,
        fraction=fraction,
        fraction_profile=fraction_profile,
        mask=mask,
        mask_mode=mask_mode,
        mask_values=mask_values,
        device=device,
        progress=progress,
    )
    metadata = provenance(
        model, settings=settings, sample=sample, model_path=model_path, voxel_size=voxel_size
    )
    metadata.update(control)
    where, description = global_mask_of(
        global_mask, shape, global_label, settings=settings, sample=sample, device=device
    )
    if where is not None:
        from swnn.decoupling import ComposingWriter, compose

        global_phase = phase_index(global_phase, model)
        metadata.update(
            {"global": description, "global_label": int(global_label), "global_phase": global_phase},
            n_phases=model.network.n_phases + 1,
        )
    if client is not None:
        if where is not None:
            raise ValueError("global_mask is not supported with a Dask client; generate without client")
        from swnn.distributed import generate_zarr

        return generate_zarr(
            path, model, shape, client=client, settings=settings, sample=sample, device=device,
            transforms=transforms, metadata=metadata, force=force, progress=progress,
            threads=1 if threads is None else threads,
        ).path  # fmt: skip
    if path.suffix.lower() == ".png":
        if shape[0] != 1:
            raise ValueError(
                f"{path}: a PNG holds one 2D image; give shape (1, Y, X), or write volumes as .npy, .tif "
                "or .zarr"
            )
        image = _generate(
            model, shape, settings=settings, sample=sample, device=device, transforms=transforms
        )
        if where is not None:
            image = compose(where, image, global_phase=global_phase)
        image = image[0]
        n_phases = int(metadata["n_phases"])
        return write_png(path, image, n_phases=n_phases, force=force, metadata=metadata)
    chunks = (min(block, 128),) * 3
    with (
        fixed_threads(threads),
        VolumeWriter(path, shape, metadata=metadata, force=force, chunks=chunks) as writer,
    ):
        _generate(
            model,
            shape,
            settings=settings,
            sample=sample,
            device=device,
            writer=writer if where is None else ComposingWriter(writer, where, global_phase=global_phase),
            progress=progress,
            transforms=transforms,
        )
    return path
