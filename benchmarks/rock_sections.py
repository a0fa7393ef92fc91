"""How the pores of 2D sections join up, in the training slice, the scan and a model's samples; and the S2 RMSE
that the slice's own statistics would score against the scan.

Sections: the slice tiled into windows; the scan's sections normal to z and y (every 40th); each sample's
sections normal to each axis (every 8th), samples 0 … n − 1 of :func:`benchmarks.rock_smoothing.sample_volume`.
Per source: the connected fraction C of the pore space in windows of 32 and 64 pixels
(:func:`physics.section_connectivity`: the share of a window's pore pixels joined to its first column, and,
separately, to its first row, by 4-connected paths of pores; windows tiled with a stride of half their side) and
the mean 2D cluster area seen from a pore pixel (4-connected, scipy.ndimage.label, sections of 128² when they are larger).

The S2 floor: the slice's normalised two-point function f(r) = (S2(r) − φ²) / (φ − φ²), put back at a fraction
φ' as S2'(r) = φ'² + f(r) φ'(1 − φ'), against the scan's S2 per axis (r ≤ 32, the RMSE of
:func:`reports.study.measures.fidelity`): what a volume with exactly the slice's correlations would score at
the slice's fraction, at the scan's, and 0.01 either side of the slice's; beside it, the same RMSE of the
scan's own 27 disjoint pieces of 128³ (corners at 0, 136 and 272 along each axis), mean with a 95 % t interval,
with the pieces' fractions (mean, standard deviation) and the Pearson correlation of a piece's S2 RMSE with the
distance of its fraction from the scan's.

Usage::

    python -m benchmarks.rock_sections --truth ../shared/data/berea/berea_400.zip \
        --image ../shared/data/berea/berea_slice_z200.png [--model NAME=MODEL.pt ...] [--samples 2]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

WINDOWS = (32, 64)


def cluster_area(sections) -> float:
    """Mean area of the 4-connected pore cluster that a random pore pixel of ``sections`` belongs to."""
    from scipy import ndimage

    weighted = count = 0.0
    for section in sections:
        labels, _ = ndimage.label(section)
        sizes = np.bincount(labels.ravel())[1:].astype(float)
        weighted += float((sizes**2).sum())
        count += float(sizes.sum())
    return weighted / count if count else 0.0


def section_figures(sections) -> dict:
    """C per window side and the mean cluster area of binary ``sections`` (the pore space)."""
    from physics import section_connectivity

    figures = {f"connected_{side}": section_connectivity(sections, window=side) for side in WINDOWS}
    tiles = [s[i : i + 128, j : j + 128] for s in sections for i in range(0, s.shape[0] - 127, 128)
             for j in range(0, s.shape[1] - 127, 128)]  # fmt: skip
    figures["cluster_area"] = cluster_area(tiles)
    return figures


def rescaled_s2(normalised: np.ndarray, fraction: float) -> np.ndarray:
    """S2 of a two-phase medium with normalised two-point function ``normalised`` at ``fraction``."""
    return fraction**2 + normalised * fraction * (1.0 - fraction)


def s2_floor(image: np.ndarray, truth_s2: np.ndarray, fractions) -> dict:
    """RMSE against the scan's per-axis S2 (axes, 33) of the slice's correlations put back at each fraction."""
    from physics import describe

    d = describe(image.astype(np.uint8), metrics=["fraction", "s2"], phase=1, r_max=32)
    phi = d["fraction"]
    normalised = (np.asarray(d["s2"]["mean"]) - phi**2) / (phi - phi**2)
    return {
        f"{f:.4f}": float(np.sqrt(np.mean((rescaled_s2(normalised, f)[None] - truth_s2) ** 2)))
        for f in fractions
    }


def piece_rmse(scan: np.ndarray, truth: dict, side: int = 128) -> dict:
    """S2 RMSE of the scan's disjoint pieces of ``side``³ against the whole scan's description ``truth``."""
    from scipy import stats

    from physics import describe
    from reports.study.measures import fidelity

    corners = np.linspace(0, scan.shape[0] - side, 3).astype(int)
    values, fractions = [], []
    for i in corners:
        for j in corners:
            for k in corners:
                piece = scan[i : i + side, j : j + side, k : k + side].astype(np.uint8)
                d = describe(piece, metrics=["fraction", "s2", "lineal_path"], phase=1, r_max=32)
                values.append(fidelity(d, truth)["s2_rmse"])
                fractions.append(d["fraction"])
    values, fractions = np.asarray(values), np.asarray(fractions)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    offset = np.abs(fractions - truth["fraction"])
    return {
        "n": len(values),
        "mean": float(values.mean()),
        "ci": [values.mean() - half, values.mean() + half],
        "fraction_mean": float(fractions.mean()),
        "fraction_sd": float(fractions.std(ddof=1)),
        # how much of a piece's S2 RMSE its fraction's distance from the scan's explains
        "pearson_with_fraction_offset": float(stats.pearsonr(offset, values).statistic),
    }


def main(argv=None) -> None:
    from physics import describe
    from swnn.io import read_image
    from swnn.model import load_model
    from swnn.references import load_reference
    from swnn.selection import sections

    from .rock_smoothing import sample_volume

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args(argv)

    image = np.asarray(read_image(args.image)) == 0
    scan = load_reference(args.truth).volume == 0
    truth = describe(scan.astype(np.uint8), metrics=["fraction", "s2", "lineal_path"], phase=1, r_max=32)
    phi = float(image.mean())
    fractions = (truth["fraction"], phi - 0.01, phi, phi + 0.01)
    print(
        json.dumps({"source": "s2 floor", **s2_floor(image, np.asarray(truth["s2"]["per_axis"]), fractions)})
    )
    print(json.dumps({"source": "scan pieces s2 rmse", **piece_rmse(scan, truth)}), flush=True)
    print(json.dumps({"source": "slice", **section_figures([image])}), flush=True)
    scan_sections = [scan[z] for z in range(0, scan.shape[0], 40)] + [
        scan[:, y] for y in range(0, scan.shape[1], 40)
    ]
    print(json.dumps({"source": "scan", **section_figures(scan_sections)}), flush=True)
    for spec in args.model:
        name, path = spec.split("=", 1)
        model = load_model(path)
        pooled = []
        for sample in range(args.samples):
            pooled += sections(sample_volume(model, sample) == 0, 8)
        print(json.dumps({"source": name, **section_figures(pooled)}), flush=True)


if __name__ == "__main__":
    main()
