"""Markdown summary of pytest-benchmark results: the paper's Table 1, its Eq. 22 fitted, and the physics rows.

::

    python -m benchmarks.table [RESULT_JSON ...] -o benchmarks/results/TABLE-<device>.md

Without inputs, every ``benchmarks/results/*.json`` in pytest-benchmark's format is read (other files are
skipped); without ``-o`` the markdown goes to standard output. Every row names its source file and machine;
a case that no file holds is written as "not measured".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swnn.training import PROFILES

__all__ = ["Case", "Eq22Fit", "load_results", "fit_eq22", "predict_eq22", "render", "main"]

RESULTS = Path(__file__).parent / "results"
BLOCK = 128  # the paper's generation block: Eq. 22 counts (N/128)³ blocks
PAPER_DEVICE = "RTX 4070 Ti"
PAPER_TRAINING_S = 200.0
# The paper's generation times (s) per volume side, as (low, high) ranges.
PAPER_GENERATION_S = {128: (0.94, 0.94), 512: (16.0, 18.0), 1024: (140.0, 157.0)}
GENERATION_SIZES = (128, 512, 1024)
PREDICTION_SAMPLES = (1, 10)
# extra_info entries shown for the descriptor, conductivity and permeability rows, in this order.
FIGURES = (
    "descriptor",
    "solver",
    "r_max",
    "speedup",
    "ours_s",
    "porespy_s",
    "max_abs_difference",
    "iterations",
    "k_eff",
    "relative_difference_to_ours",
    "mlups_fluid_nodes",
    "fraction_of_bandwidth_limit",
    "bandwidth_limit_mlups",
    "steps",
    "peak_rss_mib",
    "process_peak_rss_after_mib",
    "gpu_peak_allocated_mib",
)
TABLE1_TESTS = ("test_training_iteration", "test_generation_block", "test_generate_volume")


@dataclass(frozen=True)
class Case:
    """One benchmark of a pytest-benchmark JSON file.

    Attributes
    ----------
    source : str
        Name of the JSON file.
    module : str
        Benchmark module, e.g. ``"bench_generation"``.
    test : str
        Test function, e.g. ``"test_generate_volume"``.
    name : str
        Full test name with its parameters, e.g. ``"test_generate_volume[512]"``.
    params : dict
        The test's parameters.
    mean : float
        Mean seconds per round.
    rounds : int
        Timed rounds.
    extra_info : dict
        What the benchmark recorded (machine, commit, figures).
    """

    source: str
    module: str
    test: str
    name: str
    params: dict
    mean: float
    rounds: int
    extra_info: dict

    @property
    def hardware(self) -> str:
        """Processor (and GPU) and torch threads from ``extra_info``: what cases are grouped by."""
        info = self.extra_info
        device = " / ".join(str(info[k]) for k in ("gpu", "cpu") if k in info) or "unknown machine"
        threads = f", {info['threads']} threads" if "threads" in info else ""
        return f"{device}{threads}"

    @property
    def machine(self) -> str:
        """:attr:`hardware` plus the commit the case ran at."""
        info = self.extra_info
        return self.hardware + (f", commit {info['commit']}" if "commit" in info else "")

    @property
    def size(self) -> int | None:
        size = self.params.get("size", self.extra_info.get("size"))
        return size if isinstance(size, int) else None


@dataclass(frozen=True)
class Eq22Fit:
    """Least-squares fit of generation time T = c + τ_rec·(N/128)³ over the measured sizes.

    Attributes
    ----------
    tau_rec : float
        Seconds per 128³ block, τ_rec of the paper's Eq. 22.
    overhead : float
        c, seconds per generated sample independent of its size (start-up, model loading).
    sizes : tuple of int
        Volume sides N used in the fit.
    max_residual : float
        Largest |measured − fitted| time over those sizes, in seconds.
    """

    tau_rec: float
    overhead: float
    sizes: tuple[int, ...]
    max_residual: float


def _is_benchmark_json(data: object) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("benchmarks"), list)
        and all(isinstance(b, dict) and "stats" in b and "name" in b for b in data["benchmarks"])
    )


def load_results(paths: Iterable[str | os.PathLike]) -> tuple[list[Case], list[Path], list[Path]]:
    """Read pytest-benchmark JSON files.

    Parameters
    ----------
    paths : iterable of path
        JSON files; files that are not pytest-benchmark results are skipped.

    Returns
    -------
    cases : list of Case
        Every benchmark of every file read, in file order.
    sources : list of Path
        The files read.
    skipped : list of Path
        The files skipped (not JSON, or JSON without pytest-benchmark's ``benchmarks`` list).

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    """
    cases: list[Case] = []
    sources: list[Path] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark result {path} not found")
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            skipped.append(path)
            continue
        if not _is_benchmark_json(data):
            skipped.append(path)
            continue
        sources.append(path)
        for bench in data["benchmarks"]:
            fullname = bench.get("fullname", bench["name"])
            module = Path(fullname.split("::", 1)[0]).stem if "::" in fullname else ""
            cases.append(
                Case(
                    source=path.name,
                    module=module,
                    test=bench["name"].split("[", 1)[0],
                    name=bench["name"],
                    params=dict(bench.get("params") or {}),
                    mean=float(bench["stats"]["mean"]),
                    rounds=int(bench["stats"].get("rounds", 0)),
                    extra_info=dict(bench.get("extra_info") or {}),
                )
            )
    return cases, sources, skipped


def fit_eq22(sizes: Sequence[int], seconds: Sequence[float]) -> Eq22Fit:
    """Fit T(N) = c + τ_rec·(N/128)³ by least squares (the generation part of the paper's Eq. 22).

    The residuals are relative (each equation divided by its measured time): the sizes span three orders of
    magnitude in time, and absolute residuals would let the largest volume alone set c. Points that lie on the
    model are recovered exactly either way.

    Parameters
    ----------
    sizes : sequence of int
        Volume sides N, at least two distinct values.
    seconds : sequence of float
        Generation time of one N³ volume, same length as ``sizes``.

    Returns
    -------
    Eq22Fit
    """
    blocks = (np.asarray(sizes, dtype=np.float64) / BLOCK) ** 3
    times = np.asarray(seconds, dtype=np.float64)
    if blocks.shape != times.shape or blocks.ndim != 1:
        raise ValueError(
            f"sizes and seconds must be 1D sequences of the same length; received {len(sizes)} and "
            f"{len(seconds)} values"
        )
    if np.unique(blocks).size < 2:
        raise ValueError(f"sizes must hold at least two distinct volume sides; received {list(sizes)}")
    design = np.stack([np.ones_like(blocks), blocks], axis=1)  # (sizes, 2): [1, (N/128)³]
    if np.any(times <= 0):
        raise ValueError(f"generation times must be positive; received {list(seconds)}")
    (overhead, tau), *_ = np.linalg.lstsq(design / times[:, None], np.ones_like(times), rcond=None)
    residual = float(np.max(np.abs(design @ np.array([overhead, tau]) - times)))
    return Eq22Fit(
        tau_rec=float(tau),
        overhead=float(overhead),
        sizes=tuple(int(s) for s in sizes),
        max_residual=residual,
    )


def predict_eq22(fit: Eq22Fit, size: int, samples: int, training_s: float) -> float:
    """Eq. 22 with the fitted overhead: T = T_train + k·(c + τ_rec·(N/128)³), k = ``samples``."""
    return training_s + samples * (fit.overhead + fit.tau_rec * (size / BLOCK) ** 3)


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _range(low: float, high: float) -> str:
    return f"{low:.4g}" if low == high else f"{low:.4g}–{high:.4g}"


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(header), _row("---" for _ in header), *(_row(r) for r in rows)]


def _find(cases: Sequence[Case], test: str, **params: object) -> list[Case]:
    return [c for c in cases if c.test == test and all(c.params.get(k) == v for k, v in params.items())]


def _training_section(cases: Sequence[Case]) -> list[list[object]]:
    rows: list[list[object]] = []
    for profile in ("paper", "quick"):
        iterations = PROFILES[profile].iterations
        for precision in ("fp32", "bf16"):
            found = _find(cases, "test_training_iteration", profile=profile, precision=precision)
            what = f"training, {profile} profile, {precision}"
            paper_per_it = (
                f"{_seconds(PAPER_TRAINING_S / iterations)} s/it (200 s / {iterations} it, derived)"
                if profile == "paper"
                else "—"
            )
            paper_total = f"{_seconds(PAPER_TRAINING_S)} s" if profile == "paper" else "—"
            if not found:
                rows.append([what + ", per iteration", "not measured", paper_per_it, "", ""])
                rows.append([f"{what}, total ({iterations} it)", "not measured", paper_total, "", ""])
            for case in found:
                reference = case.extra_info.get("reference", f"{case.size}²")
                rows.append(
                    [
                        f"{what}, per iteration ({reference} reference)",
                        f"{_seconds(case.mean)} s/it",
                        paper_per_it,
                        case.machine,
                        case.source,
                    ]
                )
                rows.append(
                    [
                        f"{what}, total ({iterations} it), estimated from s/it",
                        f"{_seconds(iterations * case.mean)} s",
                        paper_total,
                        case.machine,
                        case.source,
                    ]
                )
    return rows


def _generation_section(cases: Sequence[Case]) -> list[list[object]]:
    rows: list[list[object]] = []
    for size in GENERATION_SIZES:
        paper = f"{_range(*PAPER_GENERATION_S[size])} s"
        found = _find(cases, "test_generate_volume", size=size)
        what = f"generation {size}³ (swnn generate → zarr)"
        if not found:
            rows.append([what, "not measured", paper, "", ""])
        for case in found:
            peak = case.extra_info.get("peak_rss_mib")
            memory = f", peak {_seconds(float(peak))} MiB" if peak is not None else ""
            rows.append([what, f"{_seconds(case.mean)} s{memory}", paper, case.machine, case.source])
    for case in _find(cases, "test_generation_block"):
        precision = case.params.get("precision", "")
        rows.append(
            [
                f"one {case.size}³ block in memory, {precision} (no I/O)",
                f"{_seconds(case.mean)} s",
                "—",
                case.machine,
                case.source,
            ]
        )
    return rows


def _training_time(cases: Sequence[Case], machine: str) -> tuple[float, str] | None:
    """T_train of the quick profile: the faster measured precision, preferably on ``machine``."""
    quick = _find(cases, "test_training_iteration", profile="quick")
    if not quick:
        return None
    same = [c for c in quick if c.hardware == machine] or quick
    best = min(same, key=lambda c: c.mean)
    iterations = PROFILES["quick"].iterations
    label = (
        f"quick profile, {best.params.get('precision')}: {iterations} it × {_seconds(best.mean)} s/it "
        f"= {_seconds(iterations * best.mean)} s ({best.source})"
    )
    return iterations * best.mean, label


def _eq22_section(cases: Sequence[Case]) -> list[str]:
    lines = [
        "## Eq. 22: time to T_train plus k samples of N³",
        "",
        "The paper's T(N) = T_train + k·(N/128)³·τ_rec, with a per-sample overhead c added (process "
        "start-up, model loading, which the paper's form leaves out): "
        "T(N) = T_train + k·(c + τ_rec·(N/128)³). "
        "τ_rec and c are fitted by least squares to the measured generation times (test_generate_volume) "
        "against (N/128)³; T_train is estimated from the quick profile's seconds per iteration.",
        "",
    ]
    paper_fit = fit_eq22(list(PAPER_GENERATION_S), [sum(v) / 2 for v in PAPER_GENERATION_S.values()])
    generation = _find(cases, "test_generate_volume")
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in generation:
        if case.size is not None:
            groups.setdefault((case.source, case.hardware), []).append(case)
    fits = []
    for (source, machine), group in groups.items():
        sizes = sorted({c.size for c in group})
        if len(sizes) < 2:
            lines.append(
                f"- {source} ({machine}): not fitted, test_generate_volume measured at {sizes[0]}³ only "
                "(needs two sizes or more)."
            )
            continue
        fits.append((source, machine, fit_eq22([c.size for c in group], [c.mean for c in group])))
    if not generation:
        lines.append("- not measured: no test_generate_volume result, so τ_rec and c are not fitted.")
    header = ["fit", "sizes", "τ_rec (s per 128³ block)", "c (s per sample)", "max residual (s)", "source"]
    rows = [
        [
            f"ours: {machine}",
            ", ".join(f"{s}³" for s in fit.sizes),
            f"{fit.tau_rec:.4g}",
            f"{fit.overhead:.4g}",
            f"{fit.max_residual:.3g}",
            source,
        ]
        for source, machine, fit in fits
    ]
    rows.append(
        [
            f"paper: {PAPER_DEVICE}, fitted here to the midpoints of its ranges",
            ", ".join(f"{s}³" for s in PAPER_GENERATION_S),
            f"{paper_fit.tau_rec:.4g}",
            f"{paper_fit.overhead:.4g}",
            f"{paper_fit.max_residual:.3g}",
            "paper, Table 1",
        ]
    )
    if lines[-1]:  # after the bullet list of sources not fitted
        lines.append("")
    lines += [*_table(header, rows), ""]

    header = ["N", "k", "T predicted (ours)", "T_train used", f"paper ({PAPER_DEVICE}): 200 s + k × its time"]
    rows = []
    for source, machine, fit in fits or [("", "", None)]:
        training = _training_time(cases, machine)
        used = training[1] if training else "not measured (no quick-profile training time)"
        for size in GENERATION_SIZES:
            for samples in PREDICTION_SAMPLES:
                low, high = PAPER_GENERATION_S[size]
                paper = f"{_range(PAPER_TRAINING_S + samples * low, PAPER_TRAINING_S + samples * high)} s"
                if fit is None or training is None:
                    ours = "not measured" + (" (τ_rec not fitted)" if fit is None else "")
                else:
                    ours = f"{_seconds(predict_eq22(fit, size, samples, training[0]))} s ({source})"
                rows.append([f"{size}³", samples, ours, used, paper])
    lines += _table(header, rows) + [""]
    return lines


def _conductivity_speedups(cases: Sequence[Case]) -> dict[str, str]:
    """TauFactor's time over ours (multigrid, same size, device and file), keyed by TauFactor case name."""
    ratios = {}
    for case in _find(cases, "test_taufactor"):
        ours = [
            c
            for c in _find(cases, "test_ours", size=case.size, preconditioner="multigrid", device="cpu")
            if c.source == case.source
        ]
        if ours:
            ratios[case.name] = f"speedup of ours (multigrid) = {case.mean / ours[0].mean:.3g}×"
    return ratios


def _other_section(cases: Sequence[Case]) -> list[str]:
    lines: list[str] = []
    rest = [c for c in cases if c.test not in TABLE1_TESTS]
    derived = _conductivity_speedups(rest)
    expected = {
        "bench_descriptors": "Descriptors",
        "bench_conductivity": "Conductivity",
        "bench_permeability": "Permeability",
    }
    modules = list(expected) + sorted({c.module for c in rest} - set(expected))
    header = ["case", "size", "device", "mean (s)", "rounds", "figures", "machine", "source"]
    for module in modules:
        title = expected.get(module, module or "other")
        group = [c for c in rest if c.module == module]
        lines += [f"## {title}", ""]
        if not group:
            lines += [f"not measured (no {module}.py results among the inputs)", ""]
            continue
        rows = []
        for case in group:
            figures = [f"{k}={_figure(case.extra_info[k])}" for k in FIGURES if k in case.extra_info]
            if case.name in derived:
                figures.append(derived[case.name])
            rows.append(
                [
                    case.name,
                    f"{case.size}³" if case.size is not None else "",
                    case.extra_info.get("device", ""),
                    _seconds(case.mean),
                    case.rounds,
                    "; ".join(figures),
                    case.machine,
                    case.source,
                ]
            )
        lines += _table(header, rows) + [""]
    return lines


def render(cases: Sequence[Case], sources: Sequence[Path] = ()) -> str:
    """The markdown summary of ``cases``; ``sources`` are listed at the top."""
    lines = ["# Benchmark summary", ""]
    if sources:
        lines += ["Sources: " + ", ".join(p.name for p in sources) + ".", ""]
    else:
        lines += ["Sources: none (no pytest-benchmark results were read).", ""]
    lines += [
        "## Table 1: training and generation",
        "",
        f"Paper figures: {PAPER_DEVICE}, from the paper's Table 1. "
        "Total training times here are estimated as iterations × the measured seconds per iteration.",
        "",
    ]
    header = ["quantity", "ours", f"paper ({PAPER_DEVICE})", "machine", "source"]
    lines += _table(header, _training_section(cases) + _generation_section(cases)) + [""]
    lines += _eq22_section(cases)
    lines += _other_section(cases)
    return "\n".join(lines).rstrip() + "\n"


def _write(text: str, path: Path) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.table [RESULT_JSON ...] [-o OUT.md]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table", description=__doc__.splitlines()[0])
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        help="pytest-benchmark JSON files (default: benchmarks/results/*.json)",
    )
    parser.add_argument("-o", "--output", type=Path, help="markdown file to write (default: standard output)")
    args = parser.parse_args(argv)
    paths = args.results or sorted(RESULTS.glob("*.json"))
    try:
        cases, sources, skipped = load_results(paths)
        for path in skipped:
            print(f"benchmarks.table: skipped {path} (not a pytest-benchmark result)", file=sys.stderr)
        text = render(cases, sources)
        if args.output is None:
            sys.stdout.write(text)
        else:
            _write(text, args.output)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"benchmarks.table: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
