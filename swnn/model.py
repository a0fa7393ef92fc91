"""A trained SWNN: the network's weights plus the metadata needed to generate with it.

Saved as one file holding only tensors, strings and numbers (loadable with ``torch.load(weights_only=True)``;
never a pickled module) and a human-readable JSON sidecar ``<model>.json`` with the same metadata.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from swnn._version import __version__
from swnn.network import SWNN
from swnn.noise import TILE

__all__ = [
    "FORMAT",
    "SCHEMA",
    "ModelMetadata",
    "NoiseSpec",
    "ReferenceInfo",
    "TrainedModel",
    "architecture",
    "load_model",
]

FORMAT = "swnn-model/1"
"""The container: one ``torch.save`` file of tensors, a format string and the metadata as JSON."""

SCHEMA = 8
"""Version of :class:`ModelMetadata` (3: ``control_map``; 4: the reference's ``integral_range`` and
``fraction_std``; 5: ``dilations``; 6: ``smoothing``; 7: ``coarse_noise``; 8: ``coarse_noise`` may list several
sides). Files without a ``schema`` key are schema 1; older schemas load with defaults for what they lack, and a
newer schema is refused (its thresholds may belong to settings this version does not apply)."""


class NewerSchemaError(ValueError):
    """Model metadata of a schema newer than :data:`SCHEMA`."""


@dataclass(frozen=True)
class NoiseSpec:
    """The input noise X of Y = G(X): its distribution, the tile its values repeat with, and the side of the
    cells it is whitened in (0: plain noise, as in schema-1 files without a whiten entry)."""

    distribution: str = "standard normal"
    tile: int = TILE
    whiten: int = 0


@dataclass(frozen=True)
class ReferenceInfo:
    """What a model was trained on: its name (a path or ``builtin:NAME``), the SHA-256 of its labels, the
    fraction of the controlled phase in it, and how well it knows that fraction: ``integral_range`` (pixels, or
    voxels for a volume) and ``fraction_std``, the standard deviation of the fraction of a window of its size
    (:func:`physics.integral_range.image_representativity`; None in models saved without them)."""

    name: str | None = None
    sha256: str | None = None
    fraction: float | None = None
    integral_range: float | None = None
    fraction_std: float | None = None


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to generate with a trained network, and how it was trained (schema :data:`SCHEMA`).

    Attributes
    ----------
    n_phases, blocks, channels, noise_channels : int
        The architecture (Eq. 12–15).
    dilations : tuple of int or None
        Spacing of the taps of each block A (:class:`swnn.network.SWNN`); None (files of schema 4 and older)
        for all 1.
    coarse_noise : int or tuple of int
        Side of the cube over which the first block also averages the noise, or several increasing sides
        (:class:`swnn.network.SWNN`); 0 (and files of schema 6 and older) for none.
    noise : NoiseSpec
    threshold : float or None
        The fixed float32 logit threshold of phase 1 (two phases; None for more).
    thresholds : dict or None
        Precision (``fp32``, ``bf16``) -> its calibrated threshold.
    fraction_at_zero_logit : float or None
        Fraction of phase 1 at threshold 0, on the calibration volumes.
    smoothing : float
        σ (voxels) of the Gaussian applied to the logits before the threshold (:mod:`swnn.smoothing`); the
        thresholds belong to the smoothed logits. 0: none.
    phase : int
        The controlled phase.
    target_fraction : float or None
        η of the control strategy, or the reference's own fraction when stochastic.
    controlled : bool
    reference : ReferenceInfo
    control_map : dict or None
        The calibrated map from noise-mean shift to fraction (:class:`swnn.continuous.ControlMap` as a dict),
        or None when it has not been measured.
    training : dict
        ``config`` (the :class:`~swnn.training.TrainConfig` as a dict), ``precision``, ``device``,
        ``iterations``, ``final_loss`` (the mean of the last 20 iterations' losses), ``losses`` (each
        iteration's loss, 5 significant digits), ``seconds``, ``seconds_per_iteration``.
    version : str
        swnn version that trained the model.
    model_sha256 : str or None
        SHA-256 of the weights, set when saved and checked when loaded.
    schema : int
    """

    n_phases: int
    blocks: int
    channels: int
    noise_channels: int
    dilations: tuple[int, ...] | None = None
    coarse_noise: int | tuple[int, ...] = 0
    noise: NoiseSpec = NoiseSpec()
    threshold: float | None = None
    thresholds: dict | None = None
    fraction_at_zero_logit: float | None = None
    smoothing: float = 0.0
    phase: int = 1
    target_fraction: float | None = None
    controlled: bool = False
    reference: ReferenceInfo = ReferenceInfo()
    control_map: dict | None = None
    training: dict = field(default_factory=dict)
    version: str = __version__
    model_sha256: str | None = None
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        """The JSON of the model file and of its ``<model>.json`` sidecar."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelMetadata:
        """Metadata of any schema (1: no ``schema`` key; its missing entries take their defaults)."""
        if not isinstance(data, dict):
            raise ValueError(f"model metadata must be a JSON object, got {type(data).__name__}")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise NewerSchemaError(
                f"model metadata of schema {schema!r}, newer than this swnn reads ({SCHEMA}); update swnn"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["noise"] = NoiseSpec(**(data.get("noise") or {}))
        values["reference"] = ReferenceInfo(**(data.get("reference") or {}))
        values["schema"] = SCHEMA
        if values.get("dilations") is not None:
            values["dilations"] = tuple(int(d) for d in values["dilations"])
        if isinstance(values.get("coarse_noise"), list):
            values["coarse_noise"] = tuple(int(b) for b in values["coarse_noise"])
        return cls(**values)

    def replace(self, **changes) -> ModelMetadata:
        return dataclasses.replace(self, **changes)


def architecture(network: SWNN) -> dict:
    """The :class:`ModelMetadata` fields that rebuild ``network`` (:func:`load_model`)."""
    return {
        "n_phases": network.n_phases,
        "blocks": network.blocks,
        "channels": network.channels,
        "noise_channels": network.noise_channels,
        "dilations": network.dilations,
        "coarse_noise": network.coarse,
    }


@dataclass
class TrainedModel:
    """Network in evaluation mode plus its metadata.

    Attributes
    ----------
    network : SWNN
        BatchNorm statistics re-estimated on full volumes after training, so outputs do not depend on the block.
    metadata : ModelMetadata
    path : Path or None
        The file it was loaded from or saved to (recorded in the provenance of generated volumes).
    """

    network: SWNN
    metadata: ModelMetadata
    path: Path | None = None

    @classmethod
    def from_network(
        cls, network: SWNN, *, threshold: float = 0.0, noise: NoiseSpec = NoiseSpec()
    ) -> TrainedModel:
        """An untrained model around ``network`` with one ``threshold`` for both precisions (benchmarks,
        tests of generation)."""
        metadata = ModelMetadata(
            **architecture(network),
            noise=noise,
            threshold=threshold,
            thresholds={"fp32": threshold, "bf16": threshold},
        )
        return cls(network=network, metadata=metadata)

    @property
    def threshold(self) -> float:
        """Logit threshold for phase 1 (two phases) in float32; fixed when the model was trained."""
        return float(self.metadata.threshold or 0.0)

    def threshold_for(self, precision: str) -> float:
        """The fixed threshold calibrated for ``precision`` (``fp32`` or ``bf16``)."""
        thresholds = self.metadata.thresholds or {}
        if precision in thresholds:
            return float(thresholds[precision])
        if precision != "fp32":
            raise ValueError(
                f"this model has no threshold calibrated for precision={precision!r}; use precision='fp32'"
            )
        return self.threshold

    @property
    def smoothing(self) -> float:
        """σ (voxels) of the smoothing of the logits before the threshold (0: none)."""
        return float(self.metadata.smoothing or 0.0)

    @property
    def halo(self) -> int:
        """Voxels of noise read on each side of an output block: the network's l_a plus the smoothing's radius."""
        from swnn.smoothing import smoothing_radius

        return self.network.halo + smoothing_radius(self.smoothing)

    @property
    def control_map(self):
        """The calibrated continuous-control map (:class:`swnn.continuous.ControlMap`), or None."""
        from swnn.continuous import ControlMap

        data = self.metadata.control_map
        return None if data is None else ControlMap.from_dict(data)

    @property
    def noise_tile(self) -> int:
        return int(self.metadata.noise.tile)

    @property
    def noise_whiten(self) -> int:
        """Side of the whitened noise cells (0: plain noise, as in schema-1 files without a whiten entry)."""
        return int(self.metadata.noise.whiten)

    def model_hash(self) -> str:
        """SHA-256 of the weights (keys sorted), the provenance tag written beside generated volumes."""
        digest = hashlib.sha256()
        for key, value in sorted(self.network.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the model atomically to ``path`` and its metadata to ``path + '.json'``."""
        from swnn.io import atomic_write

        path = Path(path)
        net = self.network
        # the architecture always comes from the network itself, so every saved file can be loaded
        meta = self.metadata.replace(**architecture(net), model_sha256=self.model_hash())
        record = {"format": FORMAT, **meta.to_dict()}
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        with atomic_write(path, force=force) as tmp:
            torch.save({"format": FORMAT, "metadata_json": json.dumps(record), "state_dict": state}, tmp)
        with atomic_write(Path(str(path) + ".json"), force=True) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
        self.metadata = meta
        self.path = path
        return path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model saved by :meth:`TrainedModel.save` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    not_a_model = f"{path}: not an swnn model file, or a truncated or corrupted one"
    try:
        # weights_only: tensors, strings and numbers only; a pickled object in the file is refused, not run
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for foreign, truncated and unsafe files
        raise ValueError(f"{not_a_model} (it could not be read as tensors and metadata)") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{not_a_model} (expected format {FORMAT!r})")
    try:
        meta = ModelMetadata.from_dict(json.loads(blob["metadata_json"]))
        network = SWNN(
            meta.n_phases,
            blocks=meta.blocks,
            channels=meta.channels,
            noise_channels=meta.noise_channels,
            dilations=meta.dilations,
            coarse=meta.coarse_noise,
        )
        network.load_state_dict(blob["state_dict"])
    except NewerSchemaError as error:
        raise ValueError(f"{path}: {error}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError):
        raise ValueError(f"{not_a_model} (its metadata or weights do not match an SWNN)") from None
    model = TrainedModel(network=network, metadata=meta, path=path)
    stored = meta.model_sha256
    if stored is not None and stored != model.model_hash():
        raise ValueError(
            f"{path}: the weights do not match the SHA-256 stored with them ({stored[:12]}…): the file is "
            "corrupted or was modified; train the model again or restore the file"
        )
    network.eval().to(device)
    return model
