"""Settings of a training run (:class:`TrainConfig`) and the named starting points (:data:`PROFILES`).

A study file's ``[training]`` table, ``swnn train``'s options and :func:`swnn.train`'s keywords all end in a
:class:`TrainConfig`; :func:`swnn.training.train` runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from swnn.network import coarse_setting, coarse_sides
from swnn.noise import TILE as NOISE_TILE
from swnn.noise import valid_whiten
from swnn.smoothing import SIGMA_LIMIT

__all__ = ["PROFILES", "TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (loadable from TOML as a table of the same keys).

    Attributes
    ----------
    iterations : int
        Adam steps.
    learning_rate : float
        Adam's step size; ``lr_schedule='cosine'`` decays it to a tenth over the run.
    directions : int
        Random unit projection directions per iteration (Eq. 18), redrawn every iteration.
    p : int
        Order of the sliced-Wasserstein distance, 1 or 2.
    template : int
        k, the side of the k×k patterns (Eq. 7).
    scales : tuple of int
        Pooling factors at which patterns are compared (1: the paper's patterns only).
    section : int
        n, the side of the 2D sections the network outputs per iteration.
    blocks : int
        l_a; 0 picks it from the reference's correlation length (Eq. 12).
    dilations : tuple of int
        Spacing of the taps of each block A, one per block (empty: all 1, the paper's network). The receptive
        field grows to 2 Σ d_i + 1 at the same weights and work per output voxel (:class:`swnn.network.SWNN`);
        e.g. (1, 1, 2, 2, 4, 4, 1, 1) sees 33³ voxels of noise instead of 17³.
    coarse_noise : int or tuple of int
        Side b (odd, ≥ 3) of the cube over which the input noise is averaged into extra channels of the first
        block (:class:`swnn.network.SWNN`; an extension of the paper): the blocks see a low-pass view of the noise
        b voxels wide beside the noise itself, so the output depends on a cube of side 2·l_a + b. Several
        increasing sides give one such view each; the largest sets the cube. 0 (default): none.
    channels, noise_channels : int
        Width of blocks A and of the input noise.
    precision : str
        ``auto``, ``fp32`` or ``bf16`` (autocast for the convolutions; weights and loss stay float32).
    dim : int
        3 for 2D→3D, 2 for 2D→2D.
    seed : int
        Seeds the weights, the control strategy's resampling, the training noise, the projection directions and
        the BatchNorm re-estimation, each from its own stream (:func:`random_streams`).
    target_sample : int
        When the target has more patterns than this (several images, a 3D reference, or an image pooled with its
        transpose), each iteration compares with a fresh random subset of this many (0: always all). Sorting the
        target's projections is then no dearer than for one 128² image; the subset's quantiles are far finer than
        those of a section's few thousand patterns, so the distance hardly changes.
    isotropic : bool
        For 2D→3D from 2D images: pool each image's patterns with those of its transpose. One image cannot set
        the patterns of all three sections of a volume consistently when its two axes differ (the middle axis
        would have to look like the image's rows in one section and like its columns in another), whereas the
        image and its transpose together are a target that an isotropic volume can meet on every section. A 3D
        reference keeps its own sections per axis.
    s2_weight : float
        Weight of a two-point term added to the loss (0: the paper's loss alone, as in the paper profile; the
        quick profile uses 1). The term is the RMSE between the
        two-point function of the generated sections, binarised at probability ½ with the gradient of the
        probabilities passed straight through (r = 0 … min(2·l_a, 32), along both axes of each section), and the
        reference's, in units of φ(1 − φ). Lags beyond 2·l_a are left out: voxels that
        far apart come from disjoint noise, so no training can move them. Not used with a target fraction (the
        reference's S2 belongs to its own fraction).
    lineal_weight : float
        Weight of a lineal-path term, built as the two-point term with L(r) in place of S2 (r = 0 … min(32,
        section − 1): a long segment's probability depends on short-range structure, so lags past 2·l_a are kept)
        and in units of φ. 0 leaves it out; not used with a target fraction.
    curve_directions : bool
        Hold the two-point and lineal-path curves of each direction of the volume to their target separately.
        False averages every (section axis, direction) row that shares a target curve before the difference is
        squared, which holds only their mean over directions: with one isotropic image, samples of Berea came
        out with mean chords 23 % short along one direction and 4–6 % short along the other two
        (docs/results.md, "Berea: the truth's k over all 27 pieces").
    curve_diagonals : bool
        Measure the two-point and lineal-path terms along the two diagonals of each section too, against the
        reference's own diagonal curves (lag r: r diagonal steps, r·√2 pixels). The axes alone leave the
        correlations along other directions free: unsmoothed samples of a Berea model trained on 256² sections
        had a normalised S2 at 8.5 voxels of 0.22 along the axes but 0.14 along face diagonals and 0.12 along
        body diagonals, where the rock has 0.25 along all three (docs/results.md, "Berea: diagonal curve
        terms and the weight of the two-point term").
    noise_whiten : int
        Side of the cells of the generation noise that are whitened (mean 0 and identity covariance per cell,
        see :class:`swnn.noise.NoiseField`); 0 for plain noise. Stored in the model, and used for the threshold's
        calibration volumes. With cells of 32 the standard deviation of the fraction between 128³ samples fell
        from 0.0100 to 0.0067 on the built-in sandstone and from 0.0054 to 0.0023 on M2 (12 samples each), while
        their S2 stayed within its sample spread.
    smoothing : float or "auto"
        σ (voxels) of a Gaussian applied to the logits before the threshold (:mod:`swnn.smoothing`; an extension
        of the paper); 0 (default) leaves them as they are. Training does not see it: the threshold is calibrated
        on the smoothed logits, so the fraction stays, while the rough interfaces and cut throats that the
        threshold makes of the logits' voxel-scale noise are smoothed away. ``"auto"`` picks, after training,
        the σ whose labels have the reference's interfaces per neighbour pair
        (:func:`swnn.calibration.fit_smoothing`), and 0 with a target fraction, whose interfaces the reference
        does not show; the model records the σ chosen.
    calibration_size : int
        Side of the volumes used after training to re-estimate BatchNorm statistics and set the threshold.
    calibration_volumes : int
        Independent volumes of that side on which the threshold is set (see
        :func:`swnn.calibration.calibrate_thresholds`).
    checkpoint_every : int
        Iterations between checkpoints (a resumable ``<model>.ckpt``).
    retries : int
        How many times to train again, from seed + 1, seed + 2 …, when a run stalls in a poor optimum, as told by
        ``smoothing = "auto"`` reaching its bound (:class:`swnn.calibration.SmoothingWarning`; a structure much
        finer than the reference's). 0: keep the first run. The model records each run (``attempts``). A
        checkpoint belongs to the run that wrote it: an interrupted retry starts again from the first run.
    candidates : int
        How many converged runs, from seed, seed + 1 …, to choose among (an extension of the paper). The run
        kept is the one whose samples' 2D sections join up most like the reference's: the share of the
        phase's pixels joined to a window's edge (:func:`physics.section_connectivity`, windows of 64 pixels)
        nearest the reference's, on sections of 16 volumes of ``calibration_size``³ (:mod:`swnn.selection`);
        with a target fraction, the run of lowest final loss. A stalled run is left out, and trained again
        from the next seed while ``retries`` allow. 1 (default): the first converged run. The model records
        each run's C (``attempts``) and which was kept (``chosen``).
    """

    iterations: int = 500
    learning_rate: float = 0.01
    lr_schedule: str = "cosine"
    directions: int = 256
    p: int = 1
    template: int = 7
    scales: tuple[int, ...] = (1, 2, 4)
    section: int = 64
    blocks: int = 8
    dilations: tuple[int, ...] = ()
    coarse_noise: int | tuple[int, ...] = 0
    channels: int = 24
    noise_channels: int = 3
    precision: str = "auto"
    dim: int = 3
    seed: int = 0
    target_sample: int = 16384
    isotropic: bool = True
    s2_weight: float = 0.0
    lineal_weight: float = 0.0
    curve_directions: bool = False
    curve_diagonals: bool = False
    noise_whiten: int = 32
    smoothing: float | str = 0.0
    calibration_size: int = 96
    calibration_volumes: int = 32
    checkpoint_every: int = 100
    retries: int = 0
    candidates: int = 1

    def __post_init__(self):
        finite = math.isfinite
        checks = {  # setting: (accepted, what is accepted)
            "iterations": (self.iterations >= 1, "at least 1"),
            "learning_rate": (self.learning_rate > 0 and finite(self.learning_rate), "positive"),
            "directions": (self.directions >= 1, "at least 1"),
            "p": (self.p in (1, 2), "1 or 2"),
            "template": (self.template >= 2, "at least 2"),
            "scales": (len(self.scales) >= 1 and all(int(s) >= 1 for s in self.scales), "integers ≥ 1"),
            "section": (self.section >= self.template, f"at least the template ({self.template})"),
            "blocks": (self.blocks >= 0, "0 (chosen by Eq. 12) or more"),
            "dilations": (
                not self.dilations or (len(self.dilations) == self.blocks and min(self.dilations) >= 1),
                f"empty (all 1) or one integer ≥ 1 per block ({self.blocks})",
            ),
            "coarse_noise": (
                _valid_coarse(self.coarse_noise),
                "0 (none), an odd side of at least 3 voxels, or increasing such sides",
            ),
            "channels": (self.channels >= 1, "at least 1"),
            "noise_channels": (self.noise_channels >= 1, "at least 1"),
            "dim": (self.dim in (2, 3), "2 or 3"),
            "lr_schedule": (self.lr_schedule in ("cosine", "constant"), "'cosine' or 'constant'"),
            "precision": (self.precision in ("auto", "fp32", "bf16"), "'auto', 'fp32' or 'bf16'"),
            "smoothing": (
                self.smoothing == "auto"
                or (
                    isinstance(self.smoothing, (int, float))
                    and not isinstance(self.smoothing, bool)
                    and finite(self.smoothing)
                    and 0 <= self.smoothing <= SIGMA_LIMIT
                ),
                f"'auto' or a σ in voxels from 0 to {SIGMA_LIMIT:g}",
            ),
            "calibration_size": (self.calibration_size >= 8, "at least 8"),
            "calibration_volumes": (self.calibration_volumes >= 1, "at least 1"),
            "noise_whiten": (
                valid_whiten(self.noise_whiten, NOISE_TILE, self.noise_channels),
                f"0 or a divisor of the noise tile {NOISE_TILE} with more voxels than noise channels",
            ),
            "target_sample": (self.target_sample >= 0, "0 (all) or more"),
            "s2_weight": (self.s2_weight >= 0 and finite(self.s2_weight), "0 or more"),
            "lineal_weight": (self.lineal_weight >= 0 and finite(self.lineal_weight), "0 or more"),
            "checkpoint_every": (self.checkpoint_every >= 1, "at least 1"),
            "retries": (isinstance(self.retries, int) and self.retries >= 0, "an integer ≥ 0"),
            "candidates": (isinstance(self.candidates, int) and self.candidates >= 1, "an integer ≥ 1"),
        }
        for key, (ok, accepted) in checks.items():
            if not ok:
                raise ValueError(f"training setting {key} must be {accepted}; got {getattr(self, key)!r}")
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        object.__setattr__(self, "coarse_noise", coarse_setting(coarse_sides(self.coarse_noise)))
        for s in self.scales:
            if self.section // s < self.template:
                raise ValueError(
                    f"section {self.section} pooled by scale {s} is smaller than template {self.template}"
                )

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["scales"] = list(self.scales)
        d["dilations"] = list(self.dilations)
        if isinstance(self.coarse_noise, tuple):
            d["coarse_noise"] = list(self.coarse_noise)
        return d


def _valid_coarse(coarse) -> bool:
    """0, an odd side of at least 3, or increasing such sides (:func:`swnn.network.coarse_sides`)."""
    if not isinstance(coarse, int | list | tuple) or isinstance(coarse, bool):
        return False
    try:
        coarse_sides(coarse)
    except (ValueError, TypeError):
        return False
    return True


PROFILES: dict[str, TrainConfig] = {
    # The authors' settings: 2000 Adam steps at lr 0.05, 512 directions, 7×7 patterns at one scale, 128² sections,
    # 8 blocks of 24 channels.
    "paper": TrainConfig(
        iterations=2000,
        learning_rate=0.05,
        lr_schedule="constant",
        directions=512,
        p=1,
        template=7,
        scales=(1,),
        section=128,
        isotropic=False,
    ),
    # Reaches the fidelity of docs/results.md on a 2-core CPU in about 15 minutes per 128² reference. The two-point term
    # (weight 1) took the S2 RMSE of M4 from 0.017 to 0.008 and of M2 from 0.0067 to 0.0031, with M3 and the
    # built-in particles unchanged (commit 26e2457; docs/results.md).
    "quick": TrainConfig(s2_weight=1.0),
    # The quick profile plus the lineal-path term at weight 30 and coarse noise of 7³ cubes, with the smoothing that
    # matches the reference's interfaces, keeping the best of 3 runs. On Berea trained on one 400² CT slice (n = 8
    # samples of 128³ per model) the lineal-path term took the percolating fraction of the samples' pore space from
    # 0.87 to 0.965 (the rock's 128³ pieces: 0.986; docs/results.md, "Berea: the weight of the lineal-path term").
    # Coarse noise let the network see 23 voxels of noise instead of 17 at the same sections: no run stalled (4
    # of 6 did without it), and over 6 seeds the k medians were 0.041-0.067, 3 of the 6 inside the rock's
    # interquartile range (0.0586-0.0824; 9³ cubes: 0.042-0.082, 2 of 6; 13³ cubes fragmented the pore space),
    # at 64² sections, a 12th of the cost per iteration of 256² ("Berea: coarse noise", "Berea: coarse noise of
    # 7³ cubes and the choice among candidates"). The seeds' k ranked with how their sections join up (the
    # share of the pore space joined to the edge of 64² windows), a statistic of the training image itself, so
    # 3 candidates are trained and the one nearest the image's is kept: on those 6 seeds, 19 of the 20 sets of 3
    # keep a model whose k median is inside the rock's interquartile range. `auto` picks σ = 0 for these models
    # (their interfaces are the rock's), and still tells a stalled run (σ at its bound), which is left out and
    # trained again from the next seed, twice at most. For rock, filters and electrodes, where transport runs
    # through thin throats.
    "rock": TrainConfig(
        s2_weight=1.0, lineal_weight=30.0, coarse_noise=7, smoothing="auto", retries=2, candidates=3
    ),
}
