"""Throat and pore sizes of a real-rock study's samples against the scan's 128³ pieces.

Permeability scales with the square of the narrowest width that the flow must pass (Katz and Thompson's
critical length). For each volume this measures, in the pore space (label 0), with scipy alone:

- ``r_c``: the critical radius along ``--axis``, the largest r such that the centres of the balls of radius r
  that fit in the pore space (Euclidean distance to the nearest solid voxel ≥ r) form one 26-connected cluster
  from the first r + 1 layers to the last r + 1 (the breakthrough radius of mercury porosimetry, in voxels);
- ``r_mean``: the mean of that distance over the pore space (a mean pore radius);
- ``r_p90``: its 90th percentile (the pore bodies);

and reads k of each sample from the study's cache. The pieces are the 27 disjoint 128³ pieces of the
reference's 3D truth, as a study with ``truth_samples = 27`` cuts them.

Usage::

    python -m benchmarks.rock_throats STUDY DIR [--device-tag cuda] [--json OUT]

``--device-tag cuda`` reads a cache written by a study run with ``--device cuda`` (bf16 training and
generation), whose keys name that precision.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

STRUCTURE = np.ones((3, 3, 3), dtype=bool)  # balls of radius ≥ 1 on 26-neighbouring centres overlap


def _percolates(centres: np.ndarray, axis: int, margin: int) -> bool:
    labels, n = ndimage.label(centres, structure=STRUCTURE)
    if n == 0:
        return False
    first = np.moveaxis(labels, axis, 0)[: margin + 1]
    last = np.moveaxis(labels, axis, 0)[-margin - 1 :]
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


def throat_sizes(volume: np.ndarray, *, axis: int = 0) -> dict:
    """``{"r_c", "r_mean", "r_p90"}`` of the pore space (label 0) of ``volume`` (see the module docstring)."""
    pore = np.asarray(volume) == 0
    distance = ndimage.distance_transform_edt(pore)
    radii = np.unique(distance[pore])
    lo, hi = 0, len(radii) - 1  # radii[lo] percolates (or nothing does); search the largest that does
    if not _percolates(distance >= radii[0], axis, int(np.ceil(radii[0]))):
        return {
            "r_c": 0.0,
            "r_mean": float(distance[pore].mean()),
            "r_p90": float(np.percentile(distance[pore], 90)),
        }
    while lo < hi:
        mid = (lo + hi + 1) // 2
        r = radii[mid]
        if _percolates(distance >= r, axis, int(np.ceil(r))):
            lo = mid
        else:
            hi = mid - 1
    return {
        "r_c": float(radii[lo]),
        "r_mean": float(distance[pore].mean()),
        "r_p90": float(np.percentile(distance[pore], 90)),
    }


def study_throats(study_file: Path, folder: Path, *, axis: int = 0, device_tag: str = "cpu") -> dict:
    """``{"truth": [...], reference name: [...]}``: per volume, its throat sizes and (samples) k."""
    import torch

    from reports.study import load_study
    from reports.study.runner import _Runner

    if device_tag == "cuda":  # the keys of a GPU run name bf16 training and generation
        torch.cuda.is_bf16_supported = lambda *args, **kwargs: True
    runner = _Runner(load_study(study_file), Path(folder), torch.device(device_tag), False)
    runner.check()
    plan, cache = runner.plan, runner.cache
    found: dict = {}
    for item in plan.sample_evaluations:
        if item.group != "permeability" or item.sample is None:
            continue
        record = cache.get("evaluations", item.key)
        sample = item.sample
        if record is None or not sample.path.is_file():
            continue
        entry = throat_sizes(np.load(sample.path), axis=axis)
        entry["k"] = record["result"]["axes"][0]["k"]
        found.setdefault(item.reference, []).append(entry)
    scan = plan.references[0].truth  # phase labels, pores = 0, as the study reads them
    side = 128
    found["truth"] = [
        throat_sizes(scan[z : z + side, y : y + side, x : x + side], axis=axis)
        for z in range(0, scan.shape[0] - side + 1, side)
        for y in range(0, scan.shape[1] - side + 1, side)
        for x in range(0, scan.shape[2] - side + 1, side)
    ]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--axis", type=int, default=0)
    parser.add_argument("--device-tag", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    found = study_throats(args.study, args.folder, axis=args.axis, device_tag=args.device_tag)
    for name, entries in found.items():
        r_c = np.array([e["r_c"] for e in entries])
        print(
            f"{name:20s} n {len(entries):2d}  r_c median {np.median(r_c):.3f} (IQR {np.percentile(r_c, 25):.3f}"
            f"–{np.percentile(r_c, 75):.3f})  r_mean {np.mean([e['r_mean'] for e in entries]):.3f}"
            f"  r_p90 {np.mean([e['r_p90'] for e in entries]):.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
