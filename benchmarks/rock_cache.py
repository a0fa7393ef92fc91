"""The real-rock figures of the items a study has finished so far, read from its cache (the study may still run).

For each reference of the study file: every sample whose descriptors are in the cache gives its fraction,
percolating fraction of the pore space along ``--axis``, S2 RMSE against the 3D truth and mean chord length
along each axis (where measured); every sample whose permeability is there gives k. The truth's pieces give
the same, once. ``benchmarks/rock_table.py`` makes the full table from a finished study; this reads a partial
one.

Usage::

    python -m benchmarks.rock_cache reports/studies/berea_rock.toml out/berea_rock [--axis 0] [--json out.json]
        [--device-tag cuda]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def cache_runner(study_file: Path, folder: Path, device_tag: str = "cpu"):
    """The study's runner over the cache of ``folder``, checked and planned, without running anything.

    ``device_tag="cuda"`` plans the keys of a study run with ``--device cuda`` (bf16 training and generation on a
    GPU that supports it), so that its cache can be read on a machine without one.
    """
    import contextlib
    from unittest import mock

    import torch

    from reports.study import load_study
    from reports.study.runner import _Runner

    assumed = mock.patch("torch.cuda.is_bf16_supported", return_value=True)
    with assumed if device_tag == "cuda" else contextlib.nullcontext():  # the precisions are resolved here
        runner = _Runner(load_study(study_file), Path(folder), torch.device(device_tag), False)
    runner.check()
    return runner


def partial_figures(study_file: Path, folder: Path, *, axis: int = 0, device_tag: str = "cpu") -> dict:
    """``{"truth": {...}, reference name: {...}}`` from the cache of ``folder`` (see the module docstring)."""
    from reports.study.measures import fidelity

    runner = cache_runner(study_file, folder, device_tag)
    plan, cache = runner.plan, runner.cache

    def result(item):
        record = cache.get("evaluations", item.key)
        return None if record is None else record["result"]

    found: dict = {}
    for item in (*plan.truth_evaluations, *plan.sample_evaluations):
        value = result(item)
        if value is not None:
            owner = "truth" if item.sample is None else item.reference
            found.setdefault(owner, {}).setdefault(item.group, {})[item.key] = value  # pieces shared: once
    figures = {}
    for owner, groups in found.items():
        descriptions = list(groups.get("descriptors", {}).values())
        truth = None
        if owner != "truth":
            own = (i for i in plan.reference_evaluations if i.group == "descriptors" and i.reference == owner)
            truth = result(next(own))
        figures[owner] = {
            "n": len(descriptions),
            "fraction": [d["fraction"] for d in descriptions],
            "percolating": [d["connectivity"]["percolating_fraction"][axis] for d in descriptions],
            "s2_rmse": [fidelity(d, truth)["s2_rmse"] for d in descriptions] if truth else None,
            "k": [p["axes"][0]["k"] for p in groups.get("permeability", {}).values()],
            "chord_mean": [d["chord_length"]["mean"] for d in descriptions if "chord_length" in d],
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_file", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--axis", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--device-tag", choices=("cpu", "cuda"), default="cpu", help="cuda: the cache of a study run on a GPU"
    )
    args = parser.parse_args(argv)
    figures = partial_figures(args.study_file, args.folder, axis=args.axis, device_tag=args.device_tag)
    for owner, f in figures.items():
        k = f["k"]
        line = f"{owner}: n={f['n']} fraction {np.mean(f['fraction']):.4f} percolating {np.mean(f['percolating']):.3f}"
        if k:
            q25, q50, q75 = np.quantile(k, [0.25, 0.5, 0.75])
            line += f" k (n={len(k)}) median {q50:.4f} IQR {q25:.4f}-{q75:.4f}"
        if f["s2_rmse"]:
            line += f" S2 RMSE {np.mean(f['s2_rmse']):.4f}"
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
