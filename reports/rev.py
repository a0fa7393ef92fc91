"""Representative volume: the spread of a property over sub-volumes against their size.

For each side s, a volume is tiled into disjoint s³ sub-volumes (at most ``max_pieces`` of them, spread over
the volume) and the property is measured on each; the coefficient of variation CV(s) = std / mean falls as s
grows, and the representative volume element (REV) for a tolerance is the side where it falls below it
(:func:`reports.statistics.rev_size`, 10% by default). Measured here for the phase fraction and, optionally,
the effective conductivity along axis 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reports.truth import plan_truth, truth_pieces

__all__ = ["RevCurve", "rev_curve", "rev_figure"]


@dataclass(frozen=True)
class RevCurve:
    """Spread of one property over sub-volumes of one volume.

    Attributes
    ----------
    prop : str
        ``fraction`` or ``conductivity``.
    sizes : tuple of int
        Sub-volume sides, in voxels.
    n, mean, std, cv : tuple of float
        Per side: number of sub-volumes, mean, standard deviation (ddof 1) and std / mean.
    """

    prop: str
    sizes: tuple[int, ...]
    n: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    cv: tuple[float, ...]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> RevCurve:
        return cls(data["prop"], *(tuple(data[k]) for k in ("sizes", "n", "mean", "std", "cv")))


def rev_curve(
    volume: np.ndarray,
    sizes: Sequence[int],
    *,
    phase: int = 1,
    prop: str = "fraction",
    conductivities: tuple[float, float] = (1.4, 0.026),
    max_pieces: int = 64,
    seed: int = 0,
    device=None,
) -> RevCurve:
    """The spread of ``prop`` over disjoint sub-volumes of ``volume`` for each side in ``sizes``.

    Parameters
    ----------
    volume : ndarray of shape (Z, Y, X)
        Labels.
    sizes : sequence of int
        Sides to measure; each at most the volume's smallest side.
    phase : int
        The phase whose fraction is measured, and which gets ``conductivities[1]``.
    prop : str
        ``"fraction"`` or ``"conductivity"`` (along axis 0, periodic sides; the other phases get
        ``conductivities[0]``).
    max_pieces : int
        At most this many sub-volumes per side (spread over the volume with ``seed``).
    device : str or torch.device, optional
        Where the conductivity solver computes (None: the CPU).
    """
    if prop not in ("fraction", "conductivity"):
        raise ValueError(f"prop must be 'fraction' or 'conductivity', got {prop!r}")
    indicator = (np.asarray(volume) == phase).astype(np.uint8)
    n, mean, std, cv = [], [], [], []
    for size in sizes:
        plan = plan_truth(indicator.shape, int(size), max_pieces, seed=seed)
        if plan.overlap > 0:  # keep only the disjoint tiling
            plan = plan_truth(indicator.shape, int(size), _disjoint(indicator.shape, int(size)), seed=seed)
        values = []
        for _, piece in truth_pieces(plan, indicator):
            if prop == "fraction":
                values.append(float(piece.mean()))
            else:
                from physics.conductivity import effective_conductivity

                result = effective_conductivity(piece, conductivities=conductivities, axis=0, device=device)
                values.append(float(result.k_eff))
        values = np.asarray(values)
        m = float(values.mean())
        s = float(values.std(ddof=1)) if values.size > 1 else float("nan")
        n.append(int(values.size))
        mean.append(m)
        std.append(s)
        cv.append(s / m if m else float("nan"))
    return RevCurve(prop, tuple(int(s) for s in sizes), tuple(n), tuple(mean), tuple(std), tuple(cv))


def _disjoint(shape, size: int) -> int:
    return int(np.prod([n // size for n in shape]))


def rev_figure(curves: dict[str, list[tuple[str, RevCurve]]], path: Path, *, threshold: float = 0.10):
    """CV against sub-volume side, one panel per property; ``curves[prop]`` is a list of (label, curve)."""
    from reports.figures import Figure, _pyplot, _save
    from reports.statistics import rev_size

    plt = _pyplot()
    props = [p for p in ("fraction", "conductivity") if curves.get(p)]
    if not props:
        return None
    fig, axes = plt.subplots(1, len(props), figsize=(5.2 * len(props), 4.0), squeeze=False)
    notes = []
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
    references = list(dict.fromkeys(label.split(", ", 1)[-1] for p in props for label, _ in curves[p]))
    for ax, prop in zip(axes[0], props, strict=True):
        sizes = sorted({s for _, curve in curves[prop] for s in curve.sizes})
        for label, curve in curves[prop]:
            colour = palette[references.index(label.split(", ", 1)[-1]) % len(palette)]
            truth = label.startswith("truth")
            style = {"ls": "--", "marker": "s", "mfc": "white"} if truth else {"ls": "-", "marker": "o"}
            ax.loglog(curve.sizes, curve.cv, color=colour, label=label, **style)
            rev = rev_size(curve.sizes, curve.cv, threshold=threshold)
            if rev is not None:
                ax.axvline(rev, color=colour, ls=":", lw=1)
                notes.append(f"{prop}, {label}: CV < {threshold:.0%} from {rev:.0f}³ voxels")
            else:
                notes.append(
                    f"{prop}, {label}: CV stays above {threshold:.0%} up to {max(curve.sizes)}³ voxels"
                )
        ax.axhline(threshold, color="k", lw=0.8, ls="-.", label=f"CV = {threshold:.0%}")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("sub-volume side (voxels)")
        ax.set_ylabel("coefficient of variation (std / mean)")
        ax.set_title("phase fraction" if prop == "fraction" else "κ_eff along axis 0")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        path.name,
        path,
        "ensembles",
        "Representative volume",
        "Coefficient of variation of each property over disjoint sub-volumes of the truth (dashed, open squares) "
        "and of one sample of twice the samples' side (solid), one colour per reference, against their side; "
        "dotted lines mark where it falls below 10%. " + "; ".join(notes) + ".",
    )
