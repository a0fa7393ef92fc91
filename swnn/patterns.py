"""Local pattern distributions of 2D images and sections (paper Eq. 7).

A microstructure is described by the set of all k×k windows (stride 1) of its 2D image, its *local patterns*.
Phases are one-hot channels: a two-phase image has one channel (the indicator of phase 1, phase 0 implied),
an n-phase image has n − 1 channels (phases 1..n−1), so more than two phases fit the same code.

Patterns can also be taken at coarser scales (the image average-pooled by a factor s before the k×k windows are
taken): a 7×7 template constrains lags r ≤ 6 directly, and pooled patterns constrain the longer lags that set the
two-point function up to the receptive field of the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["phase_channels", "extract_patterns", "multiscale_patterns", "n_patterns", "section_two_point"]


def phase_channels(labels: np.ndarray | torch.Tensor, n_phases: int) -> torch.Tensor:
    """One-hot channels of a label image, phase 0 implied.

    Parameters
    ----------
    labels : ndarray or Tensor of shape (H, W) or (B, H, W)
        Integer phase labels 0..n_phases−1.
    n_phases : int
        Number of phases (at least 2).

    Returns
    -------
    Tensor of shape (B, n_phases − 1, H, W), float32
        Channel c is the indicator of phase c + 1.
    """
    if n_phases < 2:
        raise ValueError(f"n_phases must be at least 2, got {n_phases}")
    t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"labels must have shape (H, W) or (B, H, W), got {tuple(t.shape)}")
    t = t.long()
    phases = torch.arange(1, n_phases, device=t.device).view(1, -1, 1, 1)
    return (t[:, None] == phases).float()  # (B, P, H, W)


def extract_patterns(channels: torch.Tensor, template: int, *, scale: int = 1) -> torch.Tensor:
    """All k×k patterns at stride 1 (Eq. 7), optionally of the image average-pooled by ``scale``.

    Parameters
    ----------
    channels : Tensor of shape (B, P, H, W)
        Phase channels (one-hot or probabilities), see :func:`phase_channels`.
    template : int
        Template size k.
    scale : int, optional
        Average-pooling factor applied before the windows are taken (1: the image itself).

    Returns
    -------
    Tensor of shape (N, P·k·k)
        One row per pattern, N = B·(H/s − k + 1)·(W/s − k + 1). Differentiable.
    """
    if channels.ndim != 4:
        raise ValueError(f"channels must have shape (B, P, H, W), got {tuple(channels.shape)}")
    if scale > 1:
        channels = F.avg_pool2d(channels, scale)
    b, p, h, w = channels.shape
    if h < template or w < template:
        raise ValueError(
            f"an image of {h}×{w} (after pooling by {scale}) is smaller than the {template}×{template} template"
        )
    cols = F.unfold(channels, template)  # (B, P·k·k, L)
    return cols.transpose(1, 2).reshape(-1, p * template * template)


def multiscale_patterns(channels: torch.Tensor, template: int, scales: Sequence[int]) -> list[torch.Tensor]:
    """Patterns at each scale in ``scales`` (see :func:`extract_patterns`)."""
    return [extract_patterns(channels, template, scale=s) for s in scales]


def n_patterns(shape: tuple[int, int], template: int, scale: int = 1) -> int:
    """Number of patterns N = (H/s − k + 1)(W/s − k + 1) of one image."""
    h, w = shape[0] // scale, shape[1] // scale
    return max(h - template + 1, 0) * max(w - template + 1, 0)


def _check_field(field: torch.Tensor, r_max: int) -> tuple[int, int]:
    """(H, W) of a (B, H, W) field, checked to be longer than ``r_max`` along both axes."""
    if field.ndim != 3:
        raise ValueError(f"field must have shape (B, H, W), got {tuple(field.shape)}")
    h, w = field.shape[1:]
    if not 0 <= r_max < min(h, w):
        raise ValueError(f"r_max must be in 0..{min(h, w) - 1} for a {h}×{w} field, got {r_max}")
    return h, w


def section_two_point(field: torch.Tensor, r_max: int, *, diagonals: bool = False) -> torch.Tensor:
    """Two-point function of 2D fields along each of their two axes, r = 0 … r_max (differentiable).

    S2(r) = Σ f(x)·f(x + r e) / (number of pairs at lag r), the non-periodic estimate with (N − r) pairs per
    line: for an indicator field the two-point probability of the phase. Unlike
    :func:`physics.correlation.two_point_probability` it is differentiable, for the two-point term of training
    (``s2_weight`` of :class:`swnn.config.TrainConfig`).

    Parameters
    ----------
    field : Tensor of shape (B, H, W)
    r_max : int
        Largest lag, smaller than H and W.
    diagonals : bool
        Also along the two diagonals, e = (1, 1) and (1, −1): lag r is r diagonal steps, r·√2 pixels apart.

    Returns
    -------
    Tensor of shape (B, 2, r_max + 1), or (B, 4, r_max + 1) with ``diagonals``
        ``[:, 0]`` along H (rows apart), ``[:, 1]`` along W, ``[:, 2]`` along (1, 1), ``[:, 3]`` along (1, −1).
    """
    h, w = _check_field(field, r_max)
    rows, cols = [], []
    for r in range(r_max + 1):
        rows.append((field[:, r:, :] * field[:, : h - r, :]).mean(dim=(1, 2)))
        cols.append((field[:, :, r:] * field[:, :, : w - r]).mean(dim=(1, 2)))
    curves = [torch.stack(rows, dim=-1), torch.stack(cols, dim=-1)]
    if diagonals:
        for f in (field, field.flip(-1)):  # (1, −1) is (1, 1) of the mirrored field
            curves.append(
                torch.stack(
                    [(f[:, r:, r:] * f[:, : h - r, : w - r]).mean(dim=(1, 2)) for r in range(r_max + 1)],
                    dim=-1,
                )
            )
    return torch.stack(curves, dim=1)


def section_lineal_path(field: torch.Tensor, r_max: int, *, diagonals: bool = False) -> torch.Tensor:
    """Lineal path function of 2D fields along each of their two axes, r = 0 … r_max (differentiable).

    L(r) = mean over all segments of r + 1 consecutive pixels along an axis of Π f over the segment, the
    non-periodic estimate: for an indicator field the probability that the segment lies in the phase, as
    :func:`physics.lineal_path.lineal_path` counts it from run lengths (which has no gradient). Used by the
    lineal-path term of training (``lineal_weight`` of :class:`swnn.config.TrainConfig`).

    Parameters
    ----------
    field : Tensor of shape (B, H, W)
    r_max : int
        Longest segment, smaller than H and W.
    diagonals : bool
        Also along the two diagonals, (1, 1) and (1, −1): segments of r + 1 pixels one diagonal step apart.

    Returns
    -------
    Tensor of shape (B, 2, r_max + 1), or (B, 4, r_max + 1) with ``diagonals``
        ``[:, 0]`` along H, ``[:, 1]`` along W, ``[:, 2]`` along (1, 1), ``[:, 3]`` along (1, −1).
    """
    h, w = _check_field(field, r_max)
    rows, cols = [field], [field]  # products over segments of r + 1 pixels starting at each position
    for r in range(1, r_max + 1):
        rows.append(rows[-1][:, :-1, :] * field[:, r:, :])
        cols.append(cols[-1][:, :, :-1] * field[:, :, r:])
    curves = [torch.stack([p.mean(dim=(1, 2)) for p in run], dim=-1) for run in (rows, cols)]
    if diagonals:
        for f in (field, field.flip(-1)):  # (1, −1) is (1, 1) of the mirrored field
            run = [f]
            for r in range(1, r_max + 1):
                run.append(run[-1][:, :-1, :-1] * f[:, r:, r:])
            curves.append(torch.stack([p.mean(dim=(1, 2)) for p in run], dim=-1))
    return torch.stack(curves, dim=1)
