"""After training: BatchNorm statistics on full volumes, and the fixed thresholds of the generated labels.

The running statistics of thin training slabs lag the weights, so they are re-estimated on full calibration
volumes; then the threshold of each generation precision is set once, on calibration noise, so that the generated
fraction matches the target (paper Sec. 3.3). The thresholds belong to the logits after the model's smoothing
(:mod:`swnn.smoothing`): :func:`fit_smoothing` picks the σ whose labels have the reference's interfaces per
neighbour pair, and :func:`with_smoothing` sets another σ on a trained model and calibrates again, without
training.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import torch

from swnn._device import autocast, resolve_device, resolve_precision
from swnn.model import TrainedModel
from swnn.network import SWNN
from swnn.noise import TILE as NOISE_TILE
from swnn.noise import NoiseField
from swnn.smoothing import SIGMA_LIMIT, smooth_logits, smoothing_radius
from swnn.target import interface_density as interfaces_per_pair

__all__ = [
    "SIGMA_MAX",
    "SmoothingWarning",
    "calibrate_thresholds",
    "fit_smoothing",
    "reestimate_batchnorm",
    "with_smoothing",
]

SIGMA_MAX = 2.0  # the largest σ fit_smoothing tries (voxels)


class SmoothingWarning(UserWarning):
    """``smoothing = "auto"`` could not give the reference's interfaces: the model's structure is far finer."""


@torch.no_grad()
def reestimate_batchnorm(
    network: SWNN, config, device: torch.device, precision: str, seed: int, volumes: int = 2
):
    """Cumulative BatchNorm statistics over full calibration volumes (train-mode statistics, not thin slabs).

    ``config``: the :class:`~swnn.training.TrainConfig` (its ``calibration_size``).
    """
    for norm in network.norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    network.train()
    side = config.calibration_size + 2 * network.halo
    g = torch.Generator().manual_seed(seed)
    for _ in range(volumes):
        noise = torch.randn(1, network.noise_channels, side, side, side, generator=g).to(device)
        with autocast(device, precision):
            network(noise)
    for norm in network.norms:
        norm.momentum = 0.1
    network.eval()


@torch.no_grad()
def calibrate_thresholds(
    network: SWNN,
    config,
    *,
    n_phases: int,
    phase: int,
    target_fraction: float,
    device: torch.device,
    progress: bool = False,
) -> tuple[dict[str, float] | None, float]:
    """The fixed logit threshold, per generation precision, that gives ``target_fraction`` on calibration noise.

    Calibration noise is samples 2³¹ − 1, 2³¹ − 2, … of the training seed, which no generated sample uses:
    ``config.calibration_volumes`` independent volumes of ``config.calibration_size``³, whose logits are smoothed
    with ``config.smoothing`` as generation smooths them. The fraction of one finite volume fluctuates about its
    expectation (about ±0.005 for a 128³ sample of a sparse phase with particles of radius ~5), and a threshold
    set on one volume carries that fluctuation into every sample as a bias; several volumes shrink it as
    1/√(volumes). Returns the thresholds (None for more than two phases, which use argmax) and the fraction of
    the controlled phase that a plain threshold of 0 (probability ½) gives in float32.
    """
    sigma = float(config.smoothing)
    side = config.calibration_size + 2 * (network.halo + smoothing_radius(sigma))

    def noise(volume: int) -> torch.Tensor:
        return _calibration_noise(network, config, volume, side, device)

    if n_phases != 2:
        logits = smooth_logits(network(noise(0)).float(), sigma)
        return None, float((logits.argmax(dim=1) == phase).float().mean())
    precisions = ["fp32"] + (["bf16"] if resolve_precision("auto", device) == "bf16" else [])
    values = {p: [] for p in precisions}
    volumes = range(config.calibration_volumes)
    if progress:
        from tqdm.auto import tqdm

        volumes = tqdm(volumes, desc="calibrate", unit="volume", dynamic_ncols=True)
    for v in volumes:
        x = noise(v)
        for precision in precisions:
            with autocast(device, precision):
                logits = network(x)
            values[precision].append(smooth_logits(logits.float(), sigma).flatten().cpu().numpy())
    thresholds: dict[str, float] = {}
    fraction_at_zero = float("nan")
    phase1_target = target_fraction if phase == 1 else 1.0 - target_fraction
    for precision in precisions:
        pooled = np.concatenate(values[precision])
        if precision == "fp32":
            phase1_at_zero = float((pooled > 0).mean())
            fraction_at_zero = phase1_at_zero if phase == 1 else 1.0 - phase1_at_zero
        thresholds[precision] = float(np.quantile(pooled.astype(np.float64), 1.0 - phase1_target))
    return thresholds, fraction_at_zero


def _calibration_noise(network: SWNN, config, volume: int, side: int, device) -> torch.Tensor:
    field_ = NoiseField(
        seed=config.seed,
        sample=2**31 - 1 - volume,
        channels=network.noise_channels,
        tile=NOISE_TILE,
        whiten=config.noise_whiten,
    )
    return torch.from_numpy(field_.region((0, 0, 0), (side,) * 3))[None].to(device)


@torch.no_grad()
def fit_smoothing(
    network: SWNN,
    config,
    *,
    n_phases: int,
    phase: int,
    target_fraction: float,
    interface_density: float,
    device: torch.device,
    volumes: int = 4,
    steps: int = 8,
) -> float:
    """The σ (voxels, to 0.01) whose labels have ``interface_density`` interfaces per neighbour pair.

    Smoothing removes the interfaces that the threshold makes of the logits' voxel-scale noise, so the density
    falls as σ grows; bisection on [0, :data:`SIGMA_MAX`] over the first ``volumes`` calibration volumes
    (fp32), each σ with the threshold that gives ``target_fraction`` on them (argmax for more than two phases).
    0 when the unsmoothed labels have no more interfaces than the reference; :data:`SIGMA_MAX`, with a
    :class:`SmoothingWarning`, when even it leaves more: a structure that far from the reference's is what a
    training run stalled in a poor optimum gives.
    """
    widest = smoothing_radius(SIGMA_MAX)
    side = config.calibration_size + 2 * (network.halo + widest)
    raw = [network(_calibration_noise(network, config, v, side, device)).float() for v in range(volumes)]
    phase1_target = target_fraction if phase == 1 else 1.0 - target_fraction

    def density(sigma: float) -> float:
        # the leading part of the logits: output voxel j reads noise j + l_a + r, as in generation
        inner = (
            slice(None),
            slice(None),
            *(slice(0, config.calibration_size + 2 * smoothing_radius(sigma)),) * 3,
        )
        smoothed = [smooth_logits(logits[inner], sigma) for logits in raw]
        if n_phases == 2:
            pooled = torch.cat([v.flatten() for v in smoothed])
            threshold = float(np.quantile(pooled.cpu().numpy().astype(np.float64), 1.0 - phase1_target))
            labels = [(v[0, 0] > threshold).to(torch.uint8) for v in smoothed]
        else:
            labels = [v[0].argmax(dim=0).to(torch.uint8) for v in smoothed]
        return interfaces_per_pair([label.cpu().numpy() for label in labels])

    if density(0.0) <= interface_density:
        return 0.0
    widest_density = density(SIGMA_MAX)
    if widest_density >= interface_density:
        warnings.warn(
            f"smoothing 'auto': even σ = {SIGMA_MAX:g} voxels leaves {widest_density:.4f} interfaces per "
            f"neighbour pair against the reference's {interface_density:.4f}, so σ = {SIGMA_MAX:g} was kept; the "
            "model's structure is much finer than the reference's, as when training stalls in a poor optimum "
            "(a final loss well above other seeds'; see metadata.training['losses']): train again with another "
            "seed",
            SmoothingWarning,
            stacklevel=2,
        )
        return SIGMA_MAX
    low, high = 0.0, SIGMA_MAX
    for _ in range(steps):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if density(middle) > interface_density else (low, middle)
    return round(0.5 * (low + high), 2)


def with_smoothing(
    model: TrainedModel, smoothing: float, *, device: str | torch.device = "auto", progress: bool = False
) -> TrainedModel:
    """A copy of a trained model whose logits are smoothed with σ = ``smoothing`` voxels, its thresholds
    calibrated again for it on the model's own calibration noise (no training; seconds to minutes).

    The same weights and BatchNorm statistics; the thresholds are those :func:`swnn.train` with
    ``TrainConfig(smoothing=...)`` would have set. The continuous-control map, which belongs to the old
    thresholds, is dropped (it is measured again when needed).

    Parameters
    ----------
    model : TrainedModel
        A model trained by swnn (its metadata holds the training settings).
    smoothing : float
        σ in voxels, ≥ 0 (0: none).
    """
    from swnn.config import TrainConfig

    smoothing_radius(smoothing)  # a clear error for a negative or non-finite σ, or for "auto"
    if float(smoothing) > SIGMA_LIMIT:
        raise ValueError(f"smoothing must be a σ in voxels from 0 to {SIGMA_LIMIT:g}, got {smoothing!r}")
    config_dict = dict(model.metadata.training.get("config") or {})
    if not config_dict or model.metadata.target_fraction is None:
        raise ValueError(
            "model: its metadata does not say how it was trained; train it with swnn to smooth it"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in config_dict.items() if k in known}).replace(
        smoothing=float(smoothing)
    )
    dev = resolve_device(device)
    network = copy.deepcopy(model.network).to(dev).eval()
    thresholds, fraction_at_zero = calibrate_thresholds(
        network,
        config,
        n_phases=network.n_phases,
        phase=model.metadata.phase,
        target_fraction=model.metadata.target_fraction,
        device=dev,
        progress=progress,
    )
    training = {**model.metadata.training, "config": config.to_dict()}
    metadata = model.metadata.replace(
        smoothing=float(smoothing),
        threshold=None if thresholds is None else thresholds["fp32"],
        thresholds=thresholds,
        fraction_at_zero_logit=fraction_at_zero,
        control_map=None,
        training=training,
        model_sha256=None,
    )
    return TrainedModel(network=network, metadata=metadata)
