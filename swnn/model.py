"""A trained SWNN: the network's weights plus the metadata needed to generate with it.

Saved as one file holding only tensors, strings and numbers (loadable with ``torch.load(weights_only=True)``;
never a pickled module) and a human-readable JSON sidecar ``<model>.json`` with the same metadata.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from swnn._version import __version__
from swnn.network import SWNN
from swnn.noise import TILE

__all__ = ["TrainedModel", "load_model", "FORMAT"]

FORMAT = "swnn-model/1"


@dataclass
class TrainedModel:
    """Network in evaluation mode plus its metadata.

    Attributes
    ----------
    network : SWNN
        BatchNorm statistics re-estimated on full volumes after training, so outputs do not depend on the block.
    metadata : dict
        ``n_phases``, ``blocks``, ``channels``, ``noise_channels``, ``noise`` (distribution, tile, whiten), ``threshold``
        (the model's fixed logit threshold for two phases), ``target_fraction``, ``reference`` (name, sha256,
        fraction), ``training`` (settings, iterations, loss), ``version``.
    path : Path or None
        The file it was loaded from or saved to (recorded in the provenance of generated volumes).
    """

    network: SWNN
    metadata: dict
    path: Path | None = None

    @property
    def threshold(self) -> float:
        """Logit threshold for phase 1 (two phases) in float32; fixed when the model was trained."""
        return float(self.metadata.get("threshold") or 0.0)

    def threshold_for(self, precision: str) -> float:
        """The fixed threshold calibrated for ``precision`` (``fp32`` or ``bf16``)."""
        thresholds = self.metadata.get("thresholds") or {}
        if precision in thresholds:
            return float(thresholds[precision])
        if precision != "fp32":
            raise ValueError(
                f"this model has no threshold calibrated for precision={precision!r}; use precision='fp32'"
            )
        return self.threshold

    @property
    def noise_tile(self) -> int:
        return int(self.metadata.get("noise", {}).get("tile", TILE))

    @property
    def noise_whiten(self) -> int:
        """Side of the whitened noise cells (0: plain noise, as models saved before whitening existed)."""
        return int(self.metadata.get("noise", {}).get("whiten", 0))

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
        meta = dict(self.metadata, format=FORMAT, version=__version__, model_sha256=self.model_hash())
        # the architecture always comes from the network itself, so every saved file can be loaded
        meta.update(
            n_phases=net.n_phases, blocks=net.blocks, channels=net.channels, noise_channels=net.noise_channels
        )
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        with atomic_write(path, force=force) as tmp:
            torch.save({"format": FORMAT, "metadata_json": json.dumps(meta), "state_dict": state}, tmp)
        with atomic_write(Path(str(path) + ".json"), force=True) as tmp:
            Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")
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
        meta = json.loads(blob["metadata_json"])
        network = SWNN(
            meta["n_phases"],
            blocks=meta["blocks"],
            channels=meta["channels"],
            noise_channels=meta["noise_channels"],
        )
        network.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        raise ValueError(f"{not_a_model} (its metadata or weights do not match an SWNN)") from None
    model = TrainedModel(network=network, metadata=meta, path=path)
    stored = meta.get("model_sha256")
    if stored is not None and stored != model.model_hash():
        raise ValueError(
            f"{path}: the weights do not match the SHA-256 stored with them ({stored[:12]}…): the file is "
            "corrupted or was modified; train the model again or restore the file"
        )
    network.eval().to(device)
    return model
