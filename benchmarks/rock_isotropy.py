"""Is a real-rock model's pore space as isotropic and as well connected as the rock's?

For the 3D truth's disjoint 128³ pieces and for n samples of 128³ of each model (seed 0, samples 0 … n − 1,
float32, the model's own σ), the pore space (label 0) is measured along three families of directions: the
axes, the 6 face diagonals and the 4 body diagonals. For each family the normalised two-point function
(S2(r) − φ²) / (φ − φ²) is averaged over its directions at lags of whole steps, and read at 8.5 voxels
(interpolated along the axes, the 6th face-diagonal step and the 5th body-diagonal step, 8.49 and 8.66
voxels). An isotropic material has the same value along all three; training holds only the axes and, with
``curve_diagonals``, the face diagonals. The formation factor F = 1 / k_eff along z of the pore space (pore
conductivity 1, solid 1e-4, periodic sides) measures how straight the conducting paths are;
``--no-formation-factor`` leaves it out (the two-point functions alone take seconds a volume, F up to a
minute). Every volume is appended to ``OUT.jsonl`` as it is done; ``--summary`` prints means with 95 % t
intervals.

Usage::

    python -m benchmarks.rock_isotropy OUT.jsonl --truth ../shared/data/berea/berea_400.zip [--pieces 27]
    python -m benchmarks.rock_isotropy OUT.jsonl --model NAME=MODEL.pt [--model ...] [--samples 8] \
        [--no-formation-factor]
    python -m benchmarks.rock_isotropy OUT.jsonl --summary
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.rock_smoothing import SIDE, sample_volume

FAMILIES = {
    "axis": [(1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "face": [(1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1), (0, 1, -1)],
    "body": [(1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)],
}
STEPS = 12
AT = 8.5  # voxels: beyond the 7×7 patterns, inside the 17³ receptive field


def _pairs(pore: np.ndarray, direction: tuple[int, int, int], k: int) -> float:
    """Non-periodic S2 of ``pore`` at ``k`` steps along ``direction``: the mean over positions whose partner
    is inside the volume."""
    first, second = [], []
    for c in direction:
        s = c * k
        first.append(slice(0, -s) if s > 0 else slice(-s, None) if s < 0 else slice(None))
        second.append(slice(s, None) if s > 0 else slice(0, s) if s < 0 else slice(None))
    return float(np.mean(pore[tuple(first)] & pore[tuple(second)]))


def directional_s2(pore: np.ndarray) -> dict:
    """Normalised S2 per family at k = 1 … STEPS steps, and each family's value at :data:`AT` voxels."""
    phi = float(pore.mean())
    row = {}
    for family, directions in FAMILIES.items():
        curve = [
            (np.mean([_pairs(pore, d, k) for d in directions]) - phi**2) / (phi - phi**2)
            for k in range(1, STEPS + 1)
        ]
        step = float(np.linalg.norm(directions[0]))
        distances = step * np.arange(1, STEPS + 1)
        row[f"s2_{family}"] = [round(float(v), 5) for v in curve]
        row[f"s2_{family}_at"] = float(np.interp(AT, distances, curve))
    return row


def formation_factor(pore: np.ndarray) -> tuple[float, bool]:
    """F = 1 / k_eff along axis 0 of the pore space (conductivity 1 in the pores, 1e-4 in the solid)."""
    from physics.conductivity import effective_conductivity

    result = effective_conductivity(pore.astype(np.uint8), axis=0, conductivities=(1e-4, 1.0))
    return 1.0 / result.k_eff, bool(result.converged)


def measure(pore: np.ndarray, formation: bool = True) -> dict:
    t0 = time.perf_counter()
    fraction = float(pore.mean())
    row = {"fraction": fraction, **directional_s2(pore)}
    if formation:
        f, converged = formation_factor(pore)
        row.update(F=f, phiF=fraction * f, F_converged=converged)
    return {**row, "seconds": round(time.perf_counter() - t0, 1)}


def _append(out: Path, row: dict) -> None:
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if not isinstance(v, list)}), flush=True)


def _done(out: Path) -> set:
    if not out.exists():
        return set()
    return {(r["name"], r["i"]) for r in map(json.loads, out.read_text().splitlines())}


def run_truth(out: Path, path: str, pieces: int, formation: bool = True) -> None:
    from reports.truth import plan_truth, truth_pieces
    from swnn.references import load_reference

    volume = load_reference(path).volume
    done = _done(out)
    for piece, array in truth_pieces(plan_truth(volume.shape, SIDE, pieces), volume):
        if ("truth", piece.index) not in done:
            _append(out, {"name": "truth", "i": piece.index, **measure(array == 0, formation)})


def run_models(out: Path, models: list[str], samples: int, formation: bool = True) -> None:
    from swnn.model import load_model

    done = _done(out)
    for spec in models:
        name, path = spec.split("=", 1)
        model = load_model(path)
        for sample in range(samples):
            if (name, sample) in done:
                continue
            row = measure(sample_volume(model, sample) == 0, formation)
            _append(out, {"name": name, "i": sample, "sigma": model.smoothing, **row})


def summary(out: Path) -> dict:
    """Per name: n, mean and 95 % t interval of the fraction, each family's S2 at 8.5 voxels, F and φF (where
    every volume of the name has F)."""
    from reports.statistics import summarize

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    table = {}
    for name in dict.fromkeys(r["name"] for r in rows):
        group = [r for r in rows if r["name"] == name]
        with_f = all("F" in r for r in group)
        entry: dict = {"n": len(group)}
        if with_f:
            entry["F_converged"] = all(r["F_converged"] for r in group)
        for key in ("fraction", "s2_axis_at", "s2_face_at", "s2_body_at", *(("F", "phiF") if with_f else ())):
            s = summarize([r[key] for r in group])
            entry[key] = [round(s.mean, 4), round(s.ci_low, 4), round(s.ci_high, 4)]
        ratio = [r["s2_body_at"] / r["s2_axis_at"] for r in group]
        s = summarize(ratio)
        entry["body_over_axis"] = [round(s.mean, 3), round(s.ci_low, 3), round(s.ci_high, 3)]
        table[name] = entry
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--truth")
    parser.add_argument("--pieces", type=int, default=27)
    parser.add_argument("--model", action="append", default=[], help="NAME=MODEL.pt")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument(
        "--formation-factor", action=argparse.BooleanOptionalAction, default=True, help="measure F along z"
    )
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if not args.summary:
        if args.truth:
            run_truth(args.out, args.truth, args.pieces, args.formation_factor)
        run_models(args.out, args.model, args.samples, args.formation_factor)
    print(json.dumps(summary(args.out), indent=1))


if __name__ == "__main__":
    main()
