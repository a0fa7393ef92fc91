"""Pore and throat sizes of a real-rock study's samples, against the scan's 128³ pieces and the training slice.

Permeability scales with the square of the narrowest width the flow must pass (Katz and Thompson's critical
length) and, by Kozeny and Carman, with φ³/s² (s the specific surface). For each 128³ volume this measures,
in the pore space (label 0), with scipy alone:

- ``r_c``: the critical radius along ``--axis``, the largest r such that the centres of the balls of radius r
  that fit in the pore space (Euclidean distance to the nearest solid voxel ≥ r) form one 26-connected cluster
  from the first r + 1 layers to the last r + 1 (the breakthrough radius of mercury porosimetry, in voxels);
- ``r_mean`` and ``r_p90``: the mean and 90th percentile of that distance over the pore space;
- ``interfaces``: pairs of neighbouring voxels of different phase, per pair, averaged over the three axes (s);
- ``section_radius`` and ``section_chord``: on the sections every 12 voxels along each axis, the mean 2D
  distance of pore pixels to the solid and the mean length of the pore chords that do not touch the section's
  edge (what the training terms see);
- ``k`` of each sample, from the study's cache.

The pieces are the 27 disjoint 128³ pieces of the reference's 3D truth, as a study with ``truth_samples = 27``
cuts them; the first reference's training images are measured on their 128² tiles. ``--sections MODEL``
measures instead the sections that the model's training draws (binarised at ½; in 128² tiles, or whole where
smaller), with the BatchNorm statistics of training and of generation, beside 2 of its 128³ volumes at its
threshold and at logit 0. Interior chords are shorter on smaller sections: compare like sizes.

Usage::

    python -m benchmarks.rock_throats STUDY DIR [--device-tag cuda] [--json OUT]
    python -m benchmarks.rock_throats --sections MODEL.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

STRUCTURE = np.ones((3, 3, 3), dtype=bool)  # balls of radius ≥ 1 on 26-neighbouring centres overlap
SIDE = 128


def _percolates(centres: np.ndarray, axis: int, margin: int) -> bool:
    labels, n = ndimage.label(centres, structure=STRUCTURE)
    if n == 0:
        return False
    along = np.moveaxis(labels, axis, 0)
    first, last = along[: margin + 1], along[-margin - 1 :]
    return bool(np.intersect1d(first[first > 0], last[last > 0]).size)


def critical_radius(pore: np.ndarray, axis: int = 0) -> float:
    """The largest r whose ball centres connect the first and last layers along ``axis`` (0 if none do)."""
    distance = ndimage.distance_transform_edt(pore)
    radii = np.unique(distance[pore])
    if radii.size == 0 or not _percolates(distance >= radii[0], axis, int(np.ceil(radii[0]))):
        return 0.0
    lo, hi = 0, len(radii) - 1  # radii[lo] percolates: the largest that does lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _percolates(distance >= radii[mid], axis, int(np.ceil(radii[mid]))):
            lo = mid
        else:
            hi = mid - 1
    return float(radii[lo])


def section_sizes(sections: list[np.ndarray]) -> dict:
    """Mean 2D distance of pore pixels (label 0) to the solid, and mean interior pore chord along both axes.

    The distance is averaged per section with pores, the chords pooled over every section; 0 where there are none.
    """
    from physics.chords import chord_length_distribution

    radii, lengths, counts = [], [], []
    for section in sections:
        pore = np.asarray(section) == 0
        if not pore.any():
            continue
        radii.append(ndimage.distance_transform_edt(pore)[pore].mean())
        chords = chord_length_distribution(section, phase=0, include_edges=False)  # edge chords are cut short
        lengths.append(np.broadcast_to(chords.lengths, chords.counts.shape).ravel())
        counts.append(chords.counts.ravel())
    total = int(np.concatenate(counts).sum()) if counts else 0
    return {
        "section_radius": float(np.mean(radii)) if radii else 0.0,
        "section_chord": float((np.concatenate(lengths) * np.concatenate(counts)).sum() / total)
        if total
        else 0.0,
    }


def _sections_of(volume: np.ndarray, step: int = 12) -> list[np.ndarray]:
    return [np.take(volume, i, axis=a) for a in range(3) for i in range(4, volume.shape[a], step)]


def pore_sizes(volume: np.ndarray, *, axis: int = 0) -> dict:
    """The measures of the module docstring for one volume (pores = label 0)."""
    from swnn.target import interface_density

    pore = np.asarray(volume) == 0
    distance = ndimage.distance_transform_edt(pore)[pore]
    interfaces = interface_density([pore])  # per pair, pooled over the axes (equal counts in a cube)
    return {
        "fraction": float(pore.mean()),
        "r_c": critical_radius(pore, axis),
        "r_mean": float(distance.mean()),
        "r_p90": float(np.percentile(distance, 90)),
        "interfaces": float(interfaces),
        **section_sizes(_sections_of(volume)),
    }


def _tiles(image: np.ndarray) -> list[np.ndarray]:
    """The disjoint 128² tiles of ``image``, or the image itself where it is smaller."""
    side = min(SIDE, *image.shape)
    return [
        image[a : a + side, b : b + side]
        for a in range(0, image.shape[0] - side + 1, side)
        for b in range(0, image.shape[1] - side + 1, side)
    ]


def study_pores(study_file: Path, folder: Path, *, axis: int = 0, device_tag: str = "cpu") -> dict:
    """``{"truth": [...], "training image": {...}, reference name: [...]}`` (see the module docstring)."""
    from benchmarks.rock_cache import cache_runner
    from reports.truth import plan_truth, truth_pieces

    runner = cache_runner(study_file, folder, device_tag)
    plan, cache = runner.plan, runner.cache
    found: dict = {}
    for item in plan.sample_evaluations:
        if item.group != "permeability" or item.sample is None or not item.sample.path.is_file():
            continue
        record = cache.get("evaluations", item.key)
        if record is not None:
            entry = pore_sizes(np.load(item.sample.path), axis=axis)
            entry["k"] = record["result"]["axes"][0]["k"]
            found.setdefault(item.reference, []).append(entry)
    reference = plan.references[0]
    tiles = [t for image in reference.training_input for t in _tiles(np.asarray(image))]
    found["training image"] = {
        "fraction": float(np.mean([np.mean(t == 0) for t in tiles])),
        **section_sizes(tiles),
    }
    scan = reference.truth  # phase labels, pores = 0, as the study reads them
    tiles_3d = plan_truth(
        scan.shape, SIDE, int(np.prod([n // SIDE for n in scan.shape]))
    )  # the disjoint ones
    found["truth"] = [pore_sizes(piece, axis=axis) for _, piece in truth_pieces(tiles_3d, scan)]
    return found


def training_sections(model_path: Path, *, repeats: int = 2) -> dict:
    """Section sizes of what a model's training sees and of what it generates (see the module docstring)."""
    import dataclasses

    import torch

    from swnn import generation
    from swnn.model import load_model
    from swnn.training import TrainConfig, _sections

    model = load_model(model_path)
    saved = model.metadata.training["config"]
    config = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__})
    network, generator, out = model.network, torch.Generator().manual_seed(5), {}
    for mode in ("train", "eval"):
        getattr(network, mode)()
        tiles = []
        with torch.no_grad():
            for _ in range(repeats):
                for probs in _sections(network, config, generator, torch.device("cpu"), "fp32"):
                    pore = (1.0 - probs[0].sum(0)).numpy() > 0.5  # phase 0 holds what the other phases leave
                    tiles += _tiles(np.where(pore, 0, 1))
        out[f"training sections, BatchNorm {mode} mode"] = section_sizes(tiles)
    network.eval()
    fixed = {"fp32": 0.0, "bf16": 0.0}
    at_zero = dataclasses.replace(
        model, metadata=dataclasses.replace(model.metadata, threshold=0.0, thresholds=fixed)
    )
    for name, m in (("volumes at the model's threshold", model), ("volumes at logit 0", at_zero)):
        volumes = [
            generation.generate(
                m, (SIDE,) * 3, settings=generation.GenerationSettings(precision="fp32"), sample=i
            )
            for i in range(repeats)
        ]
        out[name] = section_sizes([s for v in volumes for s in _sections_of(v)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path, nargs="?")
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--axis", type=int, default=0)
    parser.add_argument("--device-tag", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sections", type=Path, metavar="MODEL")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.sections is not None:
        found = training_sections(args.sections)
        for name, sizes in found.items():
            print(f"{name:42s} radius {sizes['section_radius']:.3f}  chord {sizes['section_chord']:.3f}")
    else:
        found = study_pores(args.study, args.folder, axis=args.axis, device_tag=args.device_tag)
        for name, entries in found.items():
            if isinstance(entries, dict):
                print(
                    f"{name:20s} 128² tiles: radius {entries['section_radius']:.3f} chord {entries['section_chord']:.3f}"
                )
                continue
            mean = {key: np.mean([e[key] for e in entries]) for key in entries[0]}
            r_c = [e["r_c"] for e in entries]
            print(
                f"{name:20s} n {len(entries):2d} r_c median {np.median(r_c):.3f} (IQR {np.percentile(r_c, 25):.3f}"
                f"–{np.percentile(r_c, 75):.3f}) r_mean {mean['r_mean']:.3f} r_p90 {mean['r_p90']:.3f}"
                f" interfaces {mean['interfaces']:.4f} sections: radius {mean['section_radius']:.3f}"
                f" chord {mean['section_chord']:.3f} fraction {mean['fraction']:.4f}"
            )
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main()
