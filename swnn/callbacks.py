"""Hooks into the training loop (:class:`TrainingCallback`): the progress bar and the checkpoints a run resumes
from after an interruption."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from swnn.training import TrainingState

__all__ = ["Checkpoints", "ProgressBar", "TrainingCallback"]


class TrainingCallback:
    """Hooks into :func:`optimise`; override the ones needed (each does nothing by default)."""

    def on_start(self, state: TrainingState, start: int) -> None:
        """Before the first iteration; ``start`` iterations were done before (a resumed run)."""

    def on_iteration(self, state: TrainingState, done: int, loss: float) -> None:
        """After iteration ``done`` − 1, whose loss was ``loss``."""

    def on_interrupt(self, state: TrainingState, done: int) -> None:
        """On ``KeyboardInterrupt`` (Ctrl-C), with ``done`` iterations finished; it is raised again after."""

    def on_end(self, state: TrainingState) -> None:
        """After the last iteration, or after an interruption."""


class ProgressBar(TrainingCallback):
    """A tqdm bar of the iterations with the current loss."""

    def on_start(self, state, start):
        from tqdm.auto import tqdm

        total = state.config.iterations
        self.bar = tqdm(total=total, initial=start, desc="train", unit="it", dynamic_ncols=True)

    def on_iteration(self, state, done, loss):
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4g}")

    def on_end(self, state):
        self.bar.close()


class Checkpoints(TrainingCallback):
    """Writes the run's state to ``path`` every ``every`` iterations and on Ctrl-C, so that it resumes."""

    def __init__(self, path: Path, key: str, losses: np.ndarray, every: int):
        self.path, self.key, self.losses, self.every = path, key, losses, every
        self.start = 0

    def on_start(self, state, start):
        self.start = start

    def on_iteration(self, state, done, loss):
        # and after the last iteration, so that Ctrl-C during the calibration loses no iteration
        if done % self.every == 0 or done == state.config.iterations:
            _save_checkpoint(self.path, self.key, state, self.losses, done)

    def on_interrupt(self, state, done):
        if done > self.start:
            _save_checkpoint(self.path, self.key, state, self.losses, done)


def _checkpoint_path(output: Path) -> Path:
    return Path(str(output) + ".ckpt")


def _load_checkpoint(ckpt: Path, key: str, state: TrainingState, losses: np.ndarray) -> int:
    """Restore ``state`` from ``ckpt`` when it was written with the same settings; the iterations done."""
    if not ckpt.exists():
        return 0
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    if saved.get("key") != key:
        warnings.warn(f"{ckpt} was written with other settings; starting afresh", stacklevel=3)
        return 0
    state.network.load_state_dict(saved["network"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.noise_gen.set_state(saved["noise_gen"])
    state.direction_gen.set_state(saved["direction_gen"])
    start = int(saved["iteration"])
    losses[:start] = saved["losses"].numpy()[:start]
    return start


def _save_checkpoint(ckpt: Path, key: str, state: TrainingState, losses: np.ndarray, done: int) -> None:
    from swnn.io import atomic_write

    with atomic_write(ckpt, force=True) as tmp:
        torch.save(
            {
                "key": key,
                "iteration": done,
                "network": state.network.state_dict(),
                "optimizer": state.optimizer.state_dict(),
                "noise_gen": state.noise_gen.get_state(),
                "direction_gen": state.direction_gen.get_state(),
                "losses": torch.from_numpy(losses),
            },
            tmp,
        )
