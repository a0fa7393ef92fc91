"""Control strategy for the target fraction (paper Sec. 2.2.3, steps 1–4).

The reference's patterns are sorted by their mean (the fraction of the controlled phase inside the window). To
lower the fraction to η the shortest prefix (lowest means) whose mean reaches η is kept; to raise it, the shortest
suffix. The kept patterns are expanded back to the original count N by whole copies plus a random remainder, so the
sliced-Wasserstein distance compares sets of equal size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ControlResult", "reachable_range", "control_patterns"]


@dataclass(frozen=True)
class ControlResult:
    """Resampled target patterns.

    Attributes
    ----------
    patterns : Tensor of shape (N, d)
        The controlled pattern set, as many rows as the input.
    kept : int
        Length of the prefix or suffix that was kept.
    achieved : float
        Mean of the controlled channel over ``patterns`` (the fraction the target set encodes).
    """

    patterns: torch.Tensor
    kept: int
    achieved: float


def _pattern_means(patterns: torch.Tensor, channel: int, n_channels: int) -> torch.Tensor:
    # patterns: (N, P·k·k), channel-major as F.unfold lays them out
    n, d = patterns.shape
    per_channel = patterns.view(n, n_channels, d // n_channels)
    return per_channel[:, channel].double().mean(dim=1)  # (N,)


def reachable_range(patterns: torch.Tensor, *, channel: int = 0, n_channels: int = 1) -> tuple[float, float]:
    """Smallest and largest target fraction the control strategy can reach with these patterns.

    The extremes are the means of the single lowest- and highest-mean patterns.
    """
    means = _pattern_means(patterns, channel, n_channels)
    return float(means.min()), float(means.max())


def control_patterns(
    patterns: torch.Tensor,
    target_fraction: float,
    *,
    means: torch.Tensor | None = None,
    channel: int = 0,
    n_channels: int = 1,
    generator: torch.Generator | None = None,
    tolerance: float = 1e-3,
) -> ControlResult:
    """Resample ``patterns`` so that their mean fraction is ``target_fraction`` (Sec. 2.2.3).

    Parameters
    ----------
    patterns : Tensor of shape (N, d)
        Reference patterns, see :func:`swnn.patterns.extract_patterns`.
    target_fraction : float
        η, the target fraction of the controlled phase.
    means : Tensor of shape (N,), optional
        The controlled phase's fraction in each pattern, when the caller computes it (e.g. for phase 0).
    channel, n_channels : int
        Otherwise: which of the pattern's channels is the controlled phase, and how many channels a pattern has.
    generator : torch.Generator, optional
        Draws the random remainder.
    tolerance : float
        The target is unreachable when even a single pattern cannot bring the mean within this distance of η.

    Returns
    -------
    ControlResult

    Raises
    ------
    ValueError
        When η lies outside the reachable range; the message names the range for this template.
    """
    n = patterns.shape[0]
    if means is None:
        means = _pattern_means(patterns, channel, n_channels)
    elif means.shape != (n,):
        raise ValueError(f"means must have shape ({n},), got {tuple(means.shape)}")
    order = torch.argsort(means)
    sorted_means = means[order]
    lo, hi = float(sorted_means[0]), float(sorted_means[-1])
    eta = float(target_fraction)
    if not (lo - tolerance <= eta <= hi + tolerance):
        raise ValueError(
            f"target fraction {eta:g} is unreachable with these patterns: the reachable range for this template is "
            f"[{lo:.4f}, {hi:.4f}] (pick a value inside it, or a smaller template)"
        )
    overall = float(sorted_means.mean())
    counts = torch.arange(1, n + 1, dtype=torch.float64, device=means.device)
    if eta <= overall:
        # Step 2: prefix means increase with length; keep the shortest prefix whose mean reaches η.
        prefix_mean = torch.cumsum(sorted_means, 0) / counts
        kept = (
            int(
                torch.searchsorted(
                    prefix_mean, torch.tensor([eta], dtype=torch.float64, device=means.device)
                ).item()
            )
            + 1
        )
        kept = min(kept, n)
        chosen = order[:kept]
    else:
        suffix_mean = torch.cumsum(sorted_means.flip(0), 0) / counts  # decreasing with length
        reached = torch.nonzero(suffix_mean <= eta)
        kept = int(reached[0].item()) + 1 if reached.numel() else n
        chosen = order.flip(0)[:kept]
    # Step 3–4: whole copies plus a random remainder, back to N rows.
    copies, remainder = divmod(n, kept)
    parts = [chosen.repeat(copies)]
    if remainder:
        pick = torch.randperm(kept, generator=generator)[:remainder].to(chosen.device)
        parts.append(chosen[pick])
    index = torch.cat(parts)
    controlled = patterns[index]
    return ControlResult(patterns=controlled, kept=kept, achieved=float(means[index].mean()))
