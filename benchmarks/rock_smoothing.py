"""What smoothing the logits (:mod:`swnn.smoothing`) does to a trained real-rock model's samples, paired.

For each model and each σ, :func:`swnn.calibration.with_smoothing` calibrates the thresholds again (no training),
and the same noise (seed 0, samples 0 … n − 1) gives n volumes of 128³ in float32. Each volume's pore space
(label 0) is measured as a study measures it: fraction, percolating fraction along z, S2 RMSE against the 3D
truth, mean chord per axis, interfaces per neighbour pair, critical radius (:mod:`benchmarks.rock_throats`) and k
along z (D3Q19 LBM, mirror box, the study's settings; ``--device cuda`` runs it on a GPU, the samples are the
same). Every sample is appended to ``OUT.jsonl`` as it is done, so a long run can be read while it goes;
``--summary`` prints means with 95 % t intervals, and k's median with its distribution-free 95 % interval and
k's IQR.

Usage::

    python -m benchmarks.rock_smoothing OUT.jsonl --truth ../shared/data/berea/berea_400.zip \
        --model NAME=MODEL.pt [--model ...] --sigma 0 own 0.6 [--samples 8]
    python -m benchmarks.rock_smoothing OUT.jsonl --summary
    python -m benchmarks.rock_smoothing OUT.jsonl --pool NAME1 NAME2 …   # several models' samples as one ensemble
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SIDE = 128


def _truth(path: str) -> dict:
    from physics import describe
    from swnn.references import load_reference

    volume = load_reference(path).volume
    return describe(
        (volume == 0).astype(np.uint8), metrics=["fraction", "s2", "lineal_path"], phase=1, r_max=32
    )


def measure(volume: np.ndarray, truth: dict, *, device: str | None = None) -> dict:
    """The figures of the module docstring for one generated volume (pores = label 0); the LBM on ``device``
    (None: the CPU)."""
    from benchmarks.rock_throats import critical_radius
    from physics import describe, evaluate
    from reports.study.measures import fidelity
    from swnn.target import interface_density

    pore = (volume == 0).astype(np.uint8)
    d = describe(
        pore, metrics=["fraction", "s2", "lineal_path", "chord_length", "connectivity"], phase=1, r_max=32
    )
    flow = evaluate(
        pore, metrics=("permeability",), phase=1, axes=(0,), boundary="mirror", device=device
    ).permeability[0]
    interfaces = interface_density([pore])  # per pair, pooled over the axes (equal counts in a cube)
    return {
        "fraction": d["fraction"],
        "percolating": d["connectivity"]["percolating_fraction"][0],
        "s2_rmse": fidelity(d, truth)["s2_rmse"],
        "chord_mean": d["chord_length"]["mean"],
        "interfaces": float(interfaces),
        "r_c": critical_radius(pore.astype(bool), 0),
        "k": float(flow.k),
        "k_converged": bool(flow.converged),
    }


def sample_volume(model, sample: int) -> np.ndarray:
    """Sample ``sample`` of a model as the rock benchmarks draw it: 128³, noise seed 0, float32, on the CPU, so
    that every benchmark measures the same volumes of a model and their figures pair sample by sample."""
    from swnn.generation import GenerationSettings, generate

    return generate(
        model, (SIDE,) * 3, settings=GenerationSettings(seed=0, precision="fp32"), sample=sample, device="cpu"
    )


def run(
    out: Path, truth_path: str, models: list[str], sigmas: list, samples: int, *, device: str | None = None
) -> None:
    from swnn.calibration import with_smoothing
    from swnn.model import load_model

    truth = _truth(truth_path)
    done = set()
    if out.exists():
        done = {(r["model"], r["sigma"], r["sample"]) for r in map(json.loads, out.read_text().splitlines())}
    for spec in models:
        name, path = spec.split("=", 1)
        base = load_model(path)
        # the model's own σ (``own``, or its value): the model as trained; every other σ, 0 included,
        # calibrated again on the same noise
        smoothed = {}
        for sigma in sigmas:
            sigma = base.smoothing if sigma == "own" else float(sigma)
            same = abs(sigma - base.smoothing) < 1e-9
            smoothed[round(sigma, 4)] = base if same else with_smoothing(base, sigma, device="cpu")
        for sample in range(samples):  # the σ of one sample side by side, so that a stopped run stays paired
            for sigma, model in smoothed.items():
                if (name, sigma, sample) in done:
                    continue
                t0 = time.perf_counter()
                row = {
                    "model": name,
                    "sigma": sigma,
                    "sample": sample,
                    **measure(sample_volume(model, sample), truth, device=device),
                }
                row["seconds"] = round(time.perf_counter() - t0, 1)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


def summary(out: Path) -> dict:
    """Per (model, σ): n, mean and 95 % t interval of fraction, percolating fraction, S2 RMSE, chord, interfaces
    and r_c; the median of k with its distribution-free 95 % interval, and k's IQR; the Pearson correlation of
    the samples' S2 RMSE with their fraction; for σ > 0, the paired change against σ = 0 on the same samples (k
    ratio with a Wilcoxon signed-rank p, mean change of the percolating fraction and of S2 RMSE)."""
    from reports.statistics import median_interval, summarize

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    table = {}
    for key in sorted({(r["model"], r["sigma"]) for r in rows}):
        group = [r for r in rows if (r["model"], r["sigma"]) == key]
        entry = {"n": len(group)}
        for name in ("fraction", "percolating", "s2_rmse", "interfaces", "r_c"):
            s = summarize([r[name] for r in group])
            entry[name] = [round(s.mean, 5), round(s.ci_low, 5), round(s.ci_high, 5)]
        entry["chord_mean"] = [
            round(float(np.mean([r["chord_mean"][a] for r in group])), 3) for a in range(3)
        ]
        q25, q75 = np.quantile([r["k"] for r in group], [0.25, 0.75])
        median = median_interval([r["k"] for r in group])
        entry["k"] = {
            "median": round(median.median, 5),
            "median_ci": [round(median.ci_low, 5), round(median.ci_high, 5)],
            "q25": round(float(q25), 5),
            "q75": round(float(q75), 5),
        }
        entry["k_converged"] = all(r["k_converged"] for r in group)
        # how much of the samples' spread of S2 RMSE their fractions explain (None for a constant column)
        pair = np.array([[r["fraction"] for r in group], [r["s2_rmse"] for r in group]])
        spread = len(group) >= 3 and bool(np.all(pair.std(axis=1) > 0))
        entry["s2_rmse_pearson_with_fraction"] = round(float(np.corrcoef(pair)[0, 1]), 4) if spread else None
        unsmoothed = {r["sample"]: r for r in rows if r["model"] == key[0] and r["sigma"] == 0}
        pairs = [(r, unsmoothed[r["sample"]]) for r in group if key[1] != 0 and r["sample"] in unsmoothed]
        if len(pairs) >= 2:  # the same noise with and without smoothing: a paired comparison
            from scipy.stats import wilcoxon

            ratio = [a["k"] / b["k"] for a, b in pairs]
            change = {name: [a[name] - b[name] for a, b in pairs] for name in ("percolating", "s2_rmse")}
            entry["paired"] = {
                "n": len(pairs),
                "k_ratio_median": round(float(np.median(ratio)), 4),
                "k_ratio_range": [round(min(ratio), 4), round(max(ratio), 4)],
                "k_wilcoxon_p": round(float(wilcoxon(np.log(ratio)).pvalue), 4),
                **{f"{name}_change_mean": round(float(np.mean(v)), 5) for name, v in change.items()},
            }
        table[f"{key[0]} sigma={key[1]}"] = entry
    return table


def pooled(out: Path, models: list[str], *, draws: int = 5000, seed: int = 0) -> dict:
    """The samples of several models (each at its own σ) as one ensemble: k's median and the means of the
    percolating fraction, S2 RMSE and fraction, each with a 95 % interval from a two-level bootstrap (models
    drawn with replacement, then each drawn model's samples), so that the spread between trained models counts."""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    groups = {m: [r for r in rows if r["model"] == m] for m in models}
    missing = [m for m, g in groups.items() if not g]
    if missing:
        raise ValueError(f"no samples of model(s) {', '.join(missing)} in {out}")
    rng = np.random.default_rng(seed)
    entry = {"models": len(models), "n": sum(len(g) for g in groups.values())}
    for name, stat in (
        ("k", np.median),
        ("percolating", np.mean),
        ("s2_rmse", np.mean),
        ("fraction", np.mean),
    ):
        values = {m: np.array([r[name] for r in g]) for m, g in groups.items()}
        boot = [
            stat(
                np.concatenate(
                    [rng.choice(values[m], len(values[m])) for m in rng.choice(models, len(models))]
                )
            )
            for _ in range(draws)
        ]
        low, high = np.quantile(boot, [0.025, 0.975])
        entry[name] = [round(float(stat(np.concatenate(list(values.values())))), 5), round(float(low), 5)]
        entry[name].append(round(float(high), 5))
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--truth")
    parser.add_argument("--model", action="append", default=[], help="NAME=MODEL.pt")
    parser.add_argument(
        "--sigma", nargs="+", default=["0", "0.6"], help="σ values, or own: the model's own (trained) σ"
    )
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument(
        "--device",
        default=None,
        help="where the LBM runs (cpu or cuda; default the CPU); samples are drawn on the CPU",
    )
    parser.add_argument("--summary", action="store_true")
    parser.add_argument(
        "--pool", nargs="+", metavar="NAME", help="summarise these models' samples as one ensemble"
    )
    args = parser.parse_args()
    if args.pool:
        print(json.dumps(pooled(args.out, args.pool), indent=1))
        return
    if not args.summary:
        sigmas = [s if s == "own" else float(s) for s in args.sigma]
        run(args.out, args.truth, args.model, sigmas, args.samples, device=args.device)
    print(json.dumps(summary(args.out), indent=1))


if __name__ == "__main__":
    main()
