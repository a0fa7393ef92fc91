"""A GPU run's benchmark results beside the CPU's, for the cases both measured (benchmarks/run_device.sh).

::

    python -m benchmarks.device_summary DEVICE_JSON ... [--split DIR --tag TAG] [--cpu CPU_JSON ...]
        [--header LINE ...] [-o OUT.md]

With ``--split``, the cases of the input files (one per pytest run) are regrouped by benchmark into
``DIR/{reconstruction,generation,conductivity,permeability,descriptors}-TAG.json``, the names of
benchmarks/results/, each keeping the first input's machine and commit fields. Writes markdown: a title and the ``--header`` lines, a table of the cases that the device files and the CPU
files both hold (seconds on each, CPU over device, and the MLUPS or noise/network split where recorded), then
``benchmarks.table``'s summary of the device files alone. Without ``--cpu``, every
``benchmarks/results/*-cpu-*.json`` is read; where several CPU files hold a case, the newest file (its
``datetime``) is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.table import RESULTS, Case, _seconds, _table, load_results, render

__all__ = ["comparison", "main"]

# Parameters that name a case across files; "device" is left out (cpu against cuda is the point).
KEY_PARAMS = ("size", "profile", "precision", "preconditioner", "conv_crit")


def _key(case: Case) -> tuple:
    params = dict(case.params)
    if case.test == "test_ours":
        params.setdefault("preconditioner", "multigrid")  # device_cuda.py's 512³ case is multigrid only
    return (case.test, *(params.get(k) for k in KEY_PARAMS))


def _label(case: Case) -> str:
    if case.size is None:
        parts = [""]
    elif case.test == "test_training_iteration":
        parts = [f"{case.size}² reference"]
    else:
        parts = [f"{case.size}³"]
    parts += [str(case.params[k]) for k in ("profile", "precision", "preconditioner") if k in case.params]
    return f"{case.test} ({', '.join(p for p in parts if p)})"


def _figures(case: Case) -> str:
    info = case.extra_info
    out = []
    if "mlups_fluid_nodes" in info:
        out.append(f"{info['mlups_fluid_nodes']:.4g} MLUPS")
    if "noise_s" in info and "network_s" in info:
        out.append(f"noise {_seconds(info['noise_s'])} s + network {_seconds(info['network_s'])} s")
    if "iterations" in info:
        out.append(f"{info['iterations']} it")
    return ", ".join(out)


def _newest_file(cpu_paths: Sequence[Path]) -> dict[str, str]:
    stamps = {}
    for path in cpu_paths:
        try:
            stamps[path.name] = str(json.loads(path.read_text()).get("datetime", ""))
        except (OSError, ValueError):
            stamps[path.name] = ""
    return stamps


def comparison(device: Sequence[Case], cpu: Sequence[Case], stamps: dict[str, str]) -> list[str]:
    """Markdown rows: every device case with a CPU case of the same test and parameters."""
    best: dict[tuple, Case] = {}
    for case in cpu:
        key = _key(case)
        if key not in best or stamps.get(case.source, "") > stamps.get(best[key].source, ""):
            best[key] = case
    rows = []
    for case in device:
        other = best.get(_key(case))
        if other is None:
            continue
        rows.append(
            [
                _label(case),
                f"{_seconds(case.mean)} s" + (f" ({_figures(case)})" if _figures(case) else ""),
                f"{_seconds(other.mean)} s" + (f" ({_figures(other)})" if _figures(other) else ""),
                f"{other.mean / case.mean:.3g}×",
                f"{case.source} / {other.source}",
            ]
        )
    if not rows:
        return ["No case of the device files was measured on the CPU.", ""]
    machine_device = device[0].hardware
    machine_cpu = next(iter(best.values())).hardware
    header = ["case", f"device ({machine_device})", f"CPU ({machine_cpu})", "CPU / device", "sources"]
    return _table(header, rows) + [""]


# Which results file a test goes to, by test name (the CPU files' grouping).
CATEGORY = {
    "test_training_iteration": "reconstruction",
    "test_generation_block": "reconstruction",
    "test_generate_volume": "generation",
    "test_ours": "conductivity",
    "test_taufactor": "conductivity",
    "test_lbm_mlups": "permeability",
    "test_lbm_time_to_converged_k": "permeability",
}


def split(parts: Sequence[Path], directory: Path, tag: str, commit: str | None = None) -> list[Path]:
    """Regroup the benchmarks of ``parts`` into one pytest-benchmark file per category; returns those written.

    ``commit``, where given, replaces every ``extra_info`` commit: the device machine's copy of the tree may
    have no git history, or an older one than the tree that ran (seen: a clean export of one commit, run inside
    a checkout whose .git named its parent).
    """
    groups: dict[str, dict] = {}
    for path in parts:
        data = json.loads(path.read_text())
        for bench in data.get("benchmarks", []):
            info = bench.setdefault("extra_info", {})
            if commit:
                info["commit"] = commit
            category = CATEGORY.get(bench["name"].split("[", 1)[0], "descriptors")
            if "bench_descriptors" not in bench.get("fullname", "") and category == "descriptors":
                category = "other"
            group = groups.setdefault(category, {**{k: v for k, v in data.items() if k != "benchmarks"}})
            group.setdefault("benchmarks", []).append(bench)
    written = []
    for category, data in groups.items():
        target = directory / f"{category}-{tag}.json"
        target.write_text(json.dumps(data, indent=4) + "\n")
        written.append(target)
    return sorted(written)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.device_summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results", nargs="+", type=Path, help="the device's pytest-benchmark JSON files")
    parser.add_argument("--split", type=Path, help="write the regrouped results files into this folder")
    parser.add_argument("--tag", default="gpu", help="device tag in the regrouped files' names, e.g. h200")
    parser.add_argument(
        "--commit", help="with --split: the commit that ran, recorded in every case (default: what git said)"
    )
    parser.add_argument("--cpu", nargs="*", type=Path, default=None, help="CPU JSON files to compare with")
    parser.add_argument("--title", default="Benchmarks on a GPU")
    parser.add_argument("--header", action="append", default=[], help="a 'key: value' line under the title")
    parser.add_argument("--no-table", action="store_true", help="leave out benchmarks.table's summary")
    parser.add_argument("-o", "--output", type=Path, help="markdown file to write (default: standard output)")
    args = parser.parse_args(argv)
    present = [p for p in args.results if p.is_file()]
    for path in sorted(set(args.results) - set(present)):
        print(f"benchmarks.device_summary: {path} is missing (that step did not finish)", file=sys.stderr)
    if args.split is not None:
        present = split(present, args.split, args.tag, args.commit)
        print("benchmarks.device_summary: wrote " + ", ".join(str(p) for p in present), file=sys.stderr)
    cpu_paths = args.cpu if args.cpu is not None else sorted(RESULTS.glob("*-cpu-*.json"))
    device, sources, _ = load_results(present)
    cpu, _, _ = load_results(cpu_paths)
    lines = [f"# {args.title}", ""]
    lines += [f"- {line}" for line in args.header] + ([""] if args.header else [])
    lines += [
        "## Against the CPU (same test and parameters)",
        "",
        "CPU figures for context only: another machine and, for some rows, another commit (see the sources).",
        "",
    ]
    lines += comparison(device, cpu, _newest_file(cpu_paths))
    text = "\n".join(lines)
    if not args.no_table:
        table = render(device, sources).split("\n", 1)[1].lstrip("\n")  # its own title line dropped
        text += "\n" + table
    text = text.rstrip() + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
