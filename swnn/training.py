"""Training an SWNN on a reference (paper Eq. 19–21, Algorithm 1); its target is :mod:`swnn.target`.

Each iteration draws thin noise slabs, one per axis for 2D→3D (one for 2D→2D), e.g. (2·l_a + 1, n + 2·l_a,
n + 2·l_a), so the network outputs one n×n section per axis; the patterns of each section are compared with the
reference's patterns by the sliced-Wasserstein distance, and the loss averages over sections and scales (Eq. 20).
Adam updates the weights. After training, the BatchNorm statistics are re-estimated on full volumes (the running
statistics of thin slabs lag the weights) and the model's fixed threshold is set once on calibration noise, so that
the generated fraction matches the target (see README, "Binarisation").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from swnn._device import autocast, resolve_device, resolve_precision
from swnn.calibration import (
    SIGMA_MAX,
    SmoothingWarning,
    calibrate_thresholds,
    fit_smoothing,
    reestimate_batchnorm,
)
from swnn.callbacks import (
    Checkpoints,
    ProgressBar,
    TrainingCallback,
    _checkpoint_path,
    _load_checkpoint,
)
from swnn.config import PROFILES, TrainConfig
from swnn.model import ModelMetadata, NoiseSpec, ReferenceInfo, TrainedModel, architecture
from swnn.network import SWNN, blocks_for_correlation_length, correlation_length
from swnn.noise import TILE as NOISE_TILE
from swnn.patterns import multiscale_patterns, section_lineal_path, section_two_point
from swnn.sliced import project_sorted, random_directions, sliced_wasserstein
from swnn.target import TrainingTarget, prepare_target

__all__ = [
    "PROFILES",
    "REPRESENTATIVE_HALF_WIDTH",
    "Checkpoints",
    "ProgressBar",
    "RepresentativityWarning",
    "TrainConfig",
    "TrainResult",
    "TrainingCallback",
    "TrainingState",
    "TrainingTarget",
    "calibrate",
    "optimise",
    "prepare_target",
    "train",
]

# Position of the thin axis of a training slab where the convolution is fastest (measured on a 2-core AVX-512
# CPU with channels-last tensors, 64² and 128² sections: fp32 thin-last 0.21/0.75 s vs thin-first 0.54/0.89 s per
# slab; bf16 thin-middle 0.10/0.35 s vs thin-last 0.13/0.47 s). See benchmarks/.
FAST_THIN_POSITION = {("cpu", "fp32"): 2, ("cpu", "bf16"): 1, ("cuda", "fp32"): 0, ("cuda", "bf16"): 0}


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    model : TrainedModel
    losses : ndarray of shape (iterations,)
    seconds : float
        Wall time of the iterations (not counting calibration).
    seconds_per_iteration : float
    """

    model: TrainedModel
    losses: np.ndarray
    seconds: float
    seconds_per_iteration: float


def _hard_sections(sections: list[torch.Tensor], phase: int) -> torch.Tensor:
    """The phase's indicator of each section (1, n, n) stacked, binarised at ½ with a straight-through gradient.

    The forward pass measures the binarised sections, whose statistics are what a sample will have; the
    gradient is that of the probabilities. The soft field's own statistics are a poor stand-in: its S2 tail is
    mean(p)², not φ², and its r = 0 value is mean(p²).
    """
    # channels are phases 1..n−1 (one channel for two phases); phase 0 is what they leave
    soft = torch.cat([probs[:, phase - 1] if phase > 0 else 1.0 - probs.sum(dim=1) for probs in sections])
    return soft + ((soft > 0.5).to(soft.dtype) - soft).detach()


def _curve_term(
    generated: torch.Tensor, wanted: torch.Tensor, scale: float, by_direction: bool = False
) -> torch.Tensor:
    """RMSE of the sections' curves (axes, 2 or 4, R + 1) against the target's, in units of ``scale``.

    Rows (section axis, direction) that share one target curve are averaged before the difference is squared, so
    the term measures the bias of the curve and not the sampling noise of one section. With ``by_direction``
    they are averaged per direction of the volume (the section normal to axis a runs along the other two
    axes, in order), so that a deficit along one direction cannot make up for an excess along another.
    """
    r = generated.shape[-1]
    wanted = wanted.to(generated.device)
    diff = (generated - wanted).reshape(-1, r)
    curves, group = torch.unique(wanted.reshape(-1, r), dim=0, return_inverse=True)
    groups = len(curves)
    if by_direction:
        # the two axes of the section normal to ``axis`` are the volume's other two, in order; its two diagonals
        # (rows 2 and 3, when measured) are directions of that section alone: 3 + 2·axis and 4 + 2·axis
        rows = generated.shape[1]
        along = [
            [d for d in range(3) if d != axis] + [3 + 2 * axis + j for j in range(rows - 2)]
            for axis in range(generated.shape[0])
        ]
        keys, group = torch.unique(
            group * 9 + torch.tensor(along, device=group.device).reshape(-1), return_inverse=True
        )
        groups = len(keys)
    means = diff.new_zeros(groups, r).index_add_(0, group, diff)
    means = means / torch.bincount(group, minlength=groups).to(means)[:, None]
    return torch.sqrt(torch.mean(means**2) + 1e-12) / max(scale, 1e-6)


def _two_point_term(
    sections: list[torch.Tensor], target: TrainingTarget, halo: int, by_direction: bool = False
) -> torch.Tensor:
    """RMSE of the sections' S2 against the target's, r ≤ 2·l_a, in units of φ(1 − φ) (see s2_weight)."""
    r_max = min(2 * halo, target.s2.shape[-1] - 1)
    diagonals = target.s2.shape[1] == 4
    generated = section_two_point(_hard_sections(sections, target.phase), r_max, diagonals=diagonals)
    phi = target.reference_fraction
    wanted = target.s2[: len(sections), :, : r_max + 1]
    return _curve_term(generated, wanted, phi * (1.0 - phi), by_direction)


def _lineal_term(
    sections: list[torch.Tensor], target: TrainingTarget, by_direction: bool = False
) -> torch.Tensor:
    """RMSE of the sections' lineal path against the target's, r ≤ 32, in units of φ (see lineal_weight)."""
    r_max = target.lineal.shape[-1] - 1
    diagonals = target.lineal.shape[1] == 4
    generated = section_lineal_path(_hard_sections(sections, target.phase), r_max, diagonals=diagonals)
    return _curve_term(generated, target.lineal[: len(sections)], target.reference_fraction, by_direction)


def _to_device(per_axis: list, device: torch.device) -> list:
    moved: dict[int, torch.Tensor] = {}
    return [
        [None if t is None else moved.setdefault(id(t), t.to(device)) for t in scales] for scales in per_axis
    ]


def _slab_shape(axis: int, section: int, halo: int) -> list[int]:
    shape = [section + 2 * halo] * 3
    shape[axis] = 2 * halo + 1
    return shape


def _swap(axis: int, position: int) -> tuple[int, int, int]:
    perm = [0, 1, 2]
    perm[axis], perm[position] = perm[position], perm[axis]
    return tuple(perm)


def _sections(
    network: SWNN, config: TrainConfig, generator: torch.Generator, device: torch.device, precision: str
) -> list[torch.Tensor]:
    """One n×n section per trained axis, as phase probabilities (1, P, n, n) in canonical orientation."""
    position = FAST_THIN_POSITION.get((device.type, precision), 0)
    out = []
    for axis in range(config.dim if config.dim == 3 else 1):
        perm = _swap(axis, position)
        canonical = _slab_shape(axis, config.section, network.halo)
        laid_out = [canonical[p] for p in perm]
        noise = torch.randn(1, network.noise_channels, *laid_out, generator=generator).to(device)
        if device.type == "cpu":
            noise = noise.contiguous(memory_format=torch.channels_last_3d)
        with autocast(device, precision):
            logits = network(noise, permutation=perm)
        probs = network.phase_probabilities(
            logits.float()
        )  # (1, P, *laid_out − 2·halo), thin position size 1
        inverse = tuple(int(i) for i in np.argsort(perm))
        probs = probs.permute(0, 1, *(2 + i for i in inverse)).squeeze(2 + axis)  # (1, P, n, n)
        out.append(probs)
    return out


def _settings_key(config: TrainConfig, target: TrainingTarget, reference_name: str) -> str:
    # none changes the optimisation that a checkpoint holds
    settings = {
        k: v
        for k, v in config.to_dict().items()
        if k not in ("checkpoint_every", "smoothing", "retries", "candidates")
    }
    blob = json.dumps(
        {
            "config": settings,
            "reference": target.sha256,
            "name": reference_name,
            "eta": target.target_fraction,
            "controlled": target.controlled,
            "phase": target.phase,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class TrainingState:
    """Everything one training iteration needs; :meth:`step` runs one (used by :func:`train` and benchmarks)."""

    config: TrainConfig
    target: TrainingTarget
    network: SWNN
    optimizer: torch.optim.Optimizer
    device: torch.device
    precision: str
    noise_gen: torch.Generator
    direction_gen: torch.Generator

    @classmethod
    def create(
        cls,
        images,
        config: TrainConfig,
        *,
        phase: int = 1,
        target_fraction: float | None = None,
        n_phases: int | None = None,
        device: str | torch.device = "auto",
    ) -> TrainingState:
        dev = resolve_device(device)
        precision = resolve_precision(config.precision, dev)
        # the initial weights come from torch's global generator, seeded here inside a fork: the caller's
        # global random state is left as it was
        with torch.random.fork_rng(devices=[]):
            # the CPU's, where weights are made
            torch.random.default_generator.manual_seed(random_streams(config.seed)["weights"])
            return cls._create(images, config, phase, target_fraction, n_phases, dev, precision)

    @classmethod
    def _create(cls, images, config, phase, target_fraction, n_phases, dev, precision) -> TrainingState:
        streams = random_streams(config.seed)
        control_gen = torch.Generator().manual_seed(streams["control"])
        target = prepare_target(
            images,
            config,
            n_phases=n_phases,
            phase=phase,
            target_fraction=target_fraction,
            generator=control_gen,
        )
        target = dataclasses.replace(target, per_axis=_to_device(target.per_axis, dev))
        blocks = config.blocks
        if blocks == 0:
            ref = images if isinstance(images, np.ndarray) else images[0]
            ref2d = ref if ref.ndim == 2 else ref[ref.shape[0] // 2]
            blocks = blocks_for_correlation_length(correlation_length(ref2d, phase=phase))
            config = config.replace(blocks=blocks)
        network = SWNN(
            target.n_phases,
            blocks=blocks,
            channels=config.channels,
            noise_channels=config.noise_channels,
            dilations=config.dilations or None,
            coarse=config.coarse_noise,
        )
        network.to(dev)
        if dev.type == "cpu":
            network = network.to(memory_format=torch.channels_last_3d)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
        noise_gen = torch.Generator().manual_seed(streams["noise"])
        direction_gen = torch.Generator().manual_seed(streams["directions"])
        return cls(config, target, network, optimizer, dev, precision, noise_gen, direction_gen)

    def step(self) -> float:
        """One Adam step on three fresh sections (Eq. 20); returns the loss."""
        config, dev = self.config, self.device
        dims = [0 if p is None else p.shape[1] for p in self.target.per_axis[0]]
        directions = [
            None
            if d == 0
            else random_directions(d, config.directions, generator=self.direction_gen, device=dev)
            for d in dims
        ]
        sections = _sections(self.network, config, self.noise_gen, dev, self.precision)
        loss = 0.0
        terms = 0
        sorted_targets: dict[int, torch.Tensor] = {}  # one projection per distinct target tensor
        for axis, section in enumerate(sections):
            generated = multiscale_patterns(section, config.template, config.scales)
            for s, pats in enumerate(generated):
                ref = self.target.per_axis[axis][s]
                if ref is None:  # a scale the control strategy could not reach
                    continue
                terms += 1
                if id(ref) not in sorted_targets:
                    if 0 < config.target_sample < ref.shape[0]:
                        order = torch.randperm(ref.shape[0], generator=self.direction_gen)
                        subset = ref[order[: config.target_sample].to(ref.device)]
                    else:
                        subset = ref
                    sorted_targets[id(ref)] = project_sorted(subset, directions[s])
                loss = loss + sliced_wasserstein(
                    pats,
                    None,
                    directions[s],
                    p=config.p,
                    root=False,
                    y_sorted_projections=sorted_targets[id(ref)],
                )
        loss = loss / terms
        if self.target.s2 is not None:
            loss = loss + config.s2_weight * _two_point_term(
                sections, self.target, self.network.halo, config.curve_directions
            )
        if self.target.lineal is not None:
            loss = loss + config.lineal_weight * _lineal_term(sections, self.target, config.curve_directions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def optimise(
    state: TrainingState, losses: np.ndarray, *, start: int = 0, callbacks: Sequence[TrainingCallback] = ()
) -> float:
    """Adam iterations ``start`` … ``iterations − 1`` of Algorithm 1 (Eq. 20), the loss of each written to
    ``losses``; returns their wall time in seconds.

    Raises
    ------
    FloatingPointError
        When the loss is not finite (a diverged run).
    """
    config = state.config
    state.network.train()
    for callback in callbacks:
        callback.on_start(state, start)
    t0 = time.perf_counter()
    done = start
    try:
        for it in range(start, config.iterations):
            for group in state.optimizer.param_groups:
                group["lr"] = _learning_rate(config, it)
            value = state.step()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training diverged at iteration {it} (loss {value}); lower learning_rate"
                )
            losses[it] = value
            done = it + 1
            for callback in callbacks:
                callback.on_iteration(state, done, value)
    except KeyboardInterrupt:
        for callback in callbacks:
            callback.on_interrupt(state, done)
        raise
    finally:
        for callback in callbacks:
            callback.on_end(state)
    return time.perf_counter() - t0


def calibrate(state: TrainingState, *, seed: int, progress: bool = False) -> tuple[dict | None, float, float]:
    """After :func:`optimise`: BatchNorm statistics re-estimated on full volumes in float32, the smoothing σ
    (``"auto"`` fitted), then the fixed threshold of each precision generation may use. Returns
    ``(thresholds, fraction at logit 0, σ)``."""
    reestimate_batchnorm(state.network, state.config, state.device, "fp32", seed=seed)
    target, config = state.target, state.config
    phases = {"n_phases": target.n_phases, "phase": target.phase, "target_fraction": target.target_fraction}
    sigma = config.smoothing
    if sigma == "auto" and target.controlled:
        sigma = 0.0  # the reference's interfaces belong to its own fraction, not to the target's
    elif sigma == "auto":
        sigma = fit_smoothing(
            state.network, config, **phases, interface_density=target.interface_density, device=state.device
        )
    thresholds, fraction_at_zero = calibrate_thresholds(
        state.network, config.replace(smoothing=sigma), **phases, device=state.device, progress=progress
    )
    return thresholds, fraction_at_zero, float(sigma)


STREAMS = ("weights", "control", "noise", "directions", "batchnorm")
"""The named random streams of a training run, in the order they are spawned from its seed."""


def random_streams(seed: int) -> dict[str, int]:
    """One seed per named stream of a training run: the children of ``numpy.random.SeedSequence(seed)``, so
    that the streams of one seed never coincide with those of another (as ``seed + i`` offsets would)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: int(child.generate_state(1, np.uint64)[0] >> 1)
        for name, child in zip(STREAMS, children, strict=True)
    }


def _learning_rate(config: TrainConfig, it: int) -> float:
    """Adam's step size at iteration ``it``: constant, or a cosine from 1 to 0.1 of ``learning_rate``."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * it / config.iterations)))


class RepresentativityWarning(UserWarning):
    """The training images know their phase fraction only roughly: too small for their material."""


REPRESENTATIVE_HALF_WIDTH = 0.2
"""The largest half-width of the 95 % interval of the training images' fraction, relative to the smaller of
φ and 1 − φ, below which :func:`train` does not warn (at 0.2 a fraction of 0.20 is known to ±0.04)."""


def _warn_if_unrepresentative(representativity, phase: int) -> None:
    """Warn when the reference's fraction is uncertain beyond :data:`REPRESENTATIVE_HALF_WIDTH` (Kanit et al.)."""
    if representativity is None:
        return
    r = representativity
    relative = r.half_width / min(r.fraction, 1 - r.fraction)
    if relative <= REPRESENTATIVE_HALF_WIDTH and r.resolved:
        return
    why = (
        "it does not resolve its own integral range (a lower estimate)"
        if not r.resolved
        else f"its integral range is {r.integral_range:.0f} pixels"
    )
    warnings.warn(
        f"the training image is small for its material: its fraction of phase {phase}, {r.fraction:.4f}, is "
        f"known only to ±{r.half_width:.4f} (95 %), as {why}; samples will share that uncertainty. Train on a "
        "larger image or on several images of the material",
        RepresentativityWarning,
        stacklevel=3,
    )


@dataclass
class _Run:
    """One training run of :func:`train`: its model, losses, seconds of iterations and first iteration."""

    model: TrainedModel
    losses: np.ndarray
    seconds: float
    start: int
    stalled: bool


def _trained_model(
    state: TrainingState, calibration: tuple, reference_name: str, precision: str, dev
) -> TrainedModel:
    """The model of a trained and calibrated ``state``; :func:`train` adds the runs' record to its metadata."""
    thresholds, fraction_at_zero, smoothing = calibration
    config, target = state.config, state.target
    network = state.network.to(memory_format=torch.contiguous_format)
    metadata = ModelMetadata(
        **architecture(network),
        noise=NoiseSpec(tile=NOISE_TILE, whiten=config.noise_whiten),
        threshold=None if thresholds is None else thresholds["fp32"],
        thresholds=thresholds,
        fraction_at_zero_logit=fraction_at_zero,
        smoothing=smoothing,
        phase=target.phase,
        target_fraction=target.target_fraction,
        controlled=target.controlled,
        reference=ReferenceInfo(
            reference_name,
            target.sha256,
            target.reference_fraction,
            integral_range=None
            if target.representativity is None
            else target.representativity.integral_range,
            fraction_std=None if target.representativity is None else target.representativity.fraction_std,
        ),
        training={
            "config": config.to_dict(),
            "precision": precision,
            "device": dev.type,
            "iterations": config.iterations,
        },
    )
    return TrainedModel(network=network, metadata=metadata)


def _connectivity(images, config: TrainConfig, model, target: TrainingTarget, dev, reference) -> tuple:
    """((C, window) of the reference, C of the model's samples), :mod:`swnn.selection`; ``reference`` is the
    pair from an earlier run, None the first time (it is the same for every run)."""
    from swnn import selection

    if reference is None:
        reference = selection.reference_connectivity(images, config, phase=target.phase)
    c = selection.model_connectivity(
        model,
        side=config.calibration_size,
        seed=config.seed,
        phase=target.phase,
        window=reference[1],
        device=dev,
    )
    return reference, c


def _choose(runs: list[_Run], attempts: list[dict], reference_c: float | None) -> int:
    """Index of the run to keep: among converged runs, the one whose C is nearest the reference's (the lowest
    final loss for controlled training, whose reference C belongs to another fraction); the last run when all
    stalled."""
    converged = [i for i, r in enumerate(runs) if not r.stalled]
    if not converged:
        return len(runs) - 1
    if reference_c is not None:
        return min(converged, key=lambda i: abs(attempts[i]["section_connectivity"] - reference_c))
    return min(converged, key=lambda i: attempts[i]["final_loss"])


def train(
    images,
    *,
    config: TrainConfig = PROFILES["quick"],
    output: str | Path | None = None,
    phase: int = 1,
    target_fraction: float | None = None,
    n_phases: int | None = None,
    reference_name: str = "reference",
    device: str | torch.device = "auto",
    progress: bool = True,
    resume: bool = True,
    force: bool = False,
    callbacks: Sequence[TrainingCallback] = (),
) -> TrainResult:
    """Train an SWNN on ``images`` (Algorithm 1): :func:`optimise`, then :func:`calibrate`.

    Parameters
    ----------
    images : ndarray (H, W) or (Z, Y, X), or sequence of ndarray (H, W)
        Reference labels 0..n−1, see :func:`prepare_target`.
    config : TrainConfig
        Settings (``PROFILES['quick']`` or ``PROFILES['paper']`` as a start).
    output : path, optional
        Where to save the model (atomically) and, while training, its checkpoint ``<output>.ckpt``, written
        every ``config.checkpoint_every`` iterations and on ``KeyboardInterrupt`` (Ctrl-C), which is then
        raised again; the same call resumes from it.
    phase : int
        The controlled phase (default 1).
    target_fraction : float, optional
        η for the control strategy; ``None`` for stochastic reconstruction.
    resume : bool
        Continue from ``<output>.ckpt`` when it was written with the same settings.
    callbacks : sequence of TrainingCallback
        Called at each iteration of the optimisation (after the progress bar and the checkpoints).

    Returns
    -------
    TrainResult
    """
    dev = resolve_device(device)
    precision = resolve_precision(config.precision, dev)
    if output is not None:
        from swnn.io import check_destination

        output = Path(output)
        check_destination(output, force=force)
    ckpt = _checkpoint_path(output) if output is not None else None
    attempts: list[dict] = []
    runs: list[_Run] = []
    retries_used, reference = 0, None
    while True:
        run = config.replace(seed=config.seed + len(attempts))
        state = TrainingState.create(
            images, run, phase=phase, target_fraction=target_fraction, n_phases=n_phases, device=dev
        )
        run, target = state.config, state.target
        if not attempts:
            _warn_if_unrepresentative(target.representativity, target.phase)
        losses = np.full(run.iterations, np.nan)
        key = _settings_key(run, target, reference_name)
        start = _load_checkpoint(ckpt, key, state, losses) if (ckpt is not None and resume) else 0
        hooks: list[TrainingCallback] = [ProgressBar()] if progress else []
        if ckpt is not None:
            hooks.append(Checkpoints(ckpt, key, losses, run.checkpoint_every))
        seconds = optimise(state, losses, start=start, callbacks=[*hooks, *callbacks])
        with warnings.catch_warnings(record=True) as caught:  # a stalled run: auto smoothing at its bound
            warnings.simplefilter("always", SmoothingWarning)
            thresholds, fraction_at_zero, smoothing = calibrate(
                state, seed=random_streams(run.seed)["batchnorm"], progress=progress
            )
        stalled = [w for w in caught if issubclass(w.category, SmoothingWarning)]
        for w in caught:  # the others, as calibration gave them
            if not issubclass(w.category, SmoothingWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        final_loss = float(np.nanmean(losses[-20:]))
        attempt = {
            "seed": run.seed,
            "final_loss": final_loss,
            "smoothing": smoothing,
            "seconds": float(seconds),
        }
        attempts.append(attempt)
        model = _trained_model(
            state, (thresholds, fraction_at_zero, smoothing), reference_name, precision, dev
        )
        runs.append(_Run(model, losses, seconds, start, bool(stalled)))
        # the run is done: its checkpoint goes, and the next run (a candidate, a retry) starts afresh
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()
        if config.candidates > 1 and not stalled and not target.controlled:
            reference, attempt["section_connectivity"] = _connectivity(
                images, run, model, target, dev, reference
            )
        converged = sum(not r.stalled for r in runs)
        if not stalled and converged >= config.candidates:
            break
        if stalled and retries_used < config.retries:
            retries_used += 1
            then = f"training again with seed {run.seed + 1} (retry {retries_used} of {config.retries})"
        else:
            then = "it is left out"
        more = len(runs) < config.candidates + retries_used
        if stalled and (more or converged):
            warnings.warn(
                f"training with seed {run.seed} stalled in a poor optimum (final loss {final_loss:.3g}; smoothing "
                f"'auto' could not reach the reference's interfaces even at σ = {SIGMA_MAX:g}); {then}",
                SmoothingWarning,
                stacklevel=2,
            )
        elif stalled:
            warnings.warn(stalled[-1].message, SmoothingWarning, stacklevel=2)
        if not more:
            break
    reference_c = None if reference is None else reference[0]
    chosen = _choose(runs, attempts, reference_c)
    model, losses, seconds, start = (
        runs[chosen].model,
        runs[chosen].losses,
        runs[chosen].seconds,
        runs[chosen].start,
    )
    done = model.metadata.training["iterations"] - start
    model.metadata.training.update(
        {
            "final_loss": attempts[chosen]["final_loss"],
            # the seed, final loss, σ, seconds of iterations (and C with candidates) of each run, the kept one
            # marked: retries train a stalled run again, candidates choose among converged runs
            "attempts": attempts,
            "chosen": chosen,
            "reference_section_connectivity": reference_c,
            # each iteration's loss, so that a run that stalled high (a poor optimum) can be seen afterwards
            "losses": [None if not math.isfinite(x) else float(f"{x:.5g}") for x in losses.tolist()],
            "seconds": seconds,
            "seconds_per_iteration": seconds / max(done, 1),
        }
    )
    if output is not None:
        model.save(output, force=True)
    return TrainResult(
        model=model, losses=losses, seconds=seconds, seconds_per_iteration=seconds / max(done, 1)
    )
