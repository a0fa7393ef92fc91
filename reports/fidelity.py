"""Fidelity runs of the reconstruction core: train, generate, compare with the reference image.

``python -m reports.fidelity CASE [CASE ...] -o results.jsonl`` trains one model per case (quick profile unless
``--profile``), generates 128³ samples and appends one JSON line per sample as soon as it is measured: fraction at
the model's fixed threshold, its error against the target, S2 and lineal-path RMSE over r ≤ 32 (the volume's three
axes against the image's two axes, as the paper does), and timings.

A case is ``REFERENCE`` or ``REFERENCE@FRACTION`` (controlled), with REFERENCE a path or ``builtin:NAME``.
With ``--set dim=2`` the model is trained 2D→2D and judged on one (4·size)² image instead of a volume.
``CASE… --floor 8 12`` prints the least S2 RMSE that 8 or 12 blocks can reach (:func:`receptive_field_floor`).
``--spread MODEL [--reference REF] --whiten 0 32 16`` generates ``--samples`` volumes of a trained model for each
noise whitening and appends the mean and standard deviation of their fractions (:func:`fraction_spread`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

__all__ = ["run_case", "receptive_field_floor", "fraction_spread", "main"]


def run_case(
    spec: str,
    *,
    profile: str = "quick",
    samples: int = 1,
    size: int = 128,
    seed: int = 0,
    iterations: int | None = None,
    models: Path | None = None,
    phase: int = 1,
    progress: bool = True,
    overrides: dict | None = None,
):
    """Train on ``spec`` and yield one result dict per generated sample.

    ``overrides`` are :class:`swnn.training.TrainConfig` fields set on top of the profile (``--set`` on the
    command line); each row records them, and the summary keeps such variants of a case apart.
    """
    import numpy as np

    from physics.compare import compare
    from swnn.generation import GenerationSettings, generate
    from swnn.references import load_reference
    from swnn.training import PROFILES, train

    reference_spec, _, fraction = spec.partition("@")
    target_fraction = float(fraction) if fraction else None
    reference = load_reference(reference_spec)
    overrides = dict(overrides or {})
    for name in ("iterations", "seed"):
        if name in overrides:
            raise ValueError(f"give {name} with --{name}, not --set {name}=...")
    config = PROFILES[profile].replace(iterations=iterations, seed=seed, **overrides)
    variant = "".join(f" {k}={v}" for k, v in sorted(overrides.items()))
    output = None
    if models is not None:
        models.mkdir(parents=True, exist_ok=True)
        output = models / (
            Path(reference_spec.replace("builtin:", "")).stem
            + (f"@{fraction}" if fraction else "")
            + f"-{profile}-s{seed}"
            + variant.replace(" ", "-").replace("=", "").replace(",", "_").replace("(", "").replace(")", "")
            + ".pt"
        )
    result = train(
        list(reference.images),
        config=config,
        output=output,
        phase=phase,
        target_fraction=target_fraction,
        n_phases=reference.n_phases,
        reference_name=reference_spec,
        progress=progress,
        force=True,
    )
    image = reference.image
    for sample in range(samples):
        t0 = time.perf_counter()
        # a 2D→2D model (``--set dim=2``) is judged on one 2D image of (4·size)², large enough that its own
        # sampling error stays small beside the differences measured
        shape = (1, 4 * size, 4 * size) if config.dim == 2 else (size,) * 3
        volume = generate(result.model, shape, settings=GenerationSettings(seed=seed + 1), sample=sample)
        if config.dim == 2:
            volume = volume[0]
        seconds_generate = time.perf_counter() - t0
        cmp = compare(volume, image, phase=phase, r_max=32)
        achieved = float(np.mean(volume == phase))
        target = result.model.metadata.target_fraction
        yield {
            "case": spec + variant,
            "overrides": overrides,
            "profile": profile,
            "seed": seed,
            "sample": sample,
            "size": size,
            "iterations": config.iterations,
            "reference_fraction": float(np.mean(image == phase)),
            "target_fraction": target,
            "fraction": achieved,
            "fraction_error": achieved - target,
            "s2_rmse": cmp.s2_rmse,
            "lineal_path_rmse": cmp.lineal_path_rmse,
            "fraction_at_zero_logit": result.model.metadata.fraction_at_zero_logit,
            "seconds_train": result.seconds,
            "seconds_per_iteration": result.seconds_per_iteration,
            "seconds_generate": seconds_generate,
        }


def receptive_field_floor(image, blocks: int, *, phase: int = 1, r_max: int = 32) -> float:
    """The least S2 RMSE over r ≤ ``r_max`` that a network of ``blocks`` blocks A can reach on ``image``.

    Voxels 2·l_a + 1 or more apart are computed from disjoint noise, so a sample's S2 there is φ² exactly; the
    image's own departure from φ² at those lags, RMS over all r = 0 … r_max, is a floor on the S2 RMSE that no
    training removes (a perfect match at every shorter lag reaches it).
    """
    import numpy as np

    from physics import two_point_probability

    s2 = two_point_probability(np.asarray(image), phase=phase, r_max=r_max).per_axis.mean(axis=0)
    beyond = np.zeros_like(s2)
    reach = 2 * blocks + 1
    beyond[reach:] = s2[reach:] - s2[0] ** 2
    return float(np.sqrt(np.mean(beyond**2)))


def fraction_spread(
    model_path: str | Path,
    *,
    whiten: int,
    samples: int = 12,
    size: int = 128,
    seed: int = 0,
    reference: str | None = None,
    s2_samples: int = 4,
) -> dict:
    """Fractions of ``samples`` volumes of one model generated from noise whitened in cells of ``whiten``.

    The model's own threshold is kept whatever the noise, so a whitening that changes what the network sees shows
    as a shifted mean. With ``reference``, the S2 RMSE of the first ``s2_samples`` volumes is measured too.
    """
    import numpy as np

    from physics.compare import compare
    from swnn.generation import GenerationSettings, generate
    from swnn.model import load_model
    from swnn.references import load_reference

    model = load_model(model_path)
    noise = dataclasses.replace(model.metadata.noise, whiten=whiten)
    model.metadata = model.metadata.replace(noise=noise)
    phase = model.metadata.phase
    image = load_reference(reference).image if reference else None
    fractions, s2 = [], []
    t0 = time.perf_counter()
    for sample in range(samples):
        volume = generate(model, (size,) * 3, settings=GenerationSettings(seed=seed), sample=sample)
        fractions.append(float(np.mean(volume == phase)))
        if image is not None and sample < s2_samples:
            s2.append(compare(volume, image, phase=phase, r_max=32).s2_rmse)
    return {
        "model": str(model_path),
        "whiten": whiten,
        "target_fraction": model.metadata.target_fraction,
        "samples": samples,
        "size": size,
        "mean": float(np.mean(fractions)),
        "std": float(np.std(fractions, ddof=1)),
        "fractions": fractions,
        "s2_rmse": s2,
        "seconds": time.perf_counter() - t0,
    }


def summarize(rows: list[dict]) -> str:
    """A markdown table: one line per case, mean over its samples (and the worst sample)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    lines = [
        "| case | target | samples | fraction (mean) | error of mean | worst sample error | S2 RMSE (mean / worst) "
        "| L RMSE (mean) | iterations | s/it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, group in frame.groupby("case", sort=False):
        target = group["target_fraction"].iloc[0]
        mean_fraction = group["fraction"].mean()
        worst = group["fraction_error"].abs().max()
        lines.append(
            f"| {Path(case).name} | {target:.4f} | {len(group)} | {mean_fraction:.4f} | {mean_fraction - target:+.4f} "
            f"| {worst:.4f} | {group['s2_rmse'].mean():.4f} / {group['s2_rmse'].max():.4f} "
            f"| {group['lineal_path_rmse'].mean():.4f} | {group['iterations'].iloc[0]} "
            f"| {group['seconds_per_iteration'].iloc[0]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*")
    parser.add_argument(
        "--summarize", type=Path, default=None, help="print a markdown table of a results file"
    )
    parser.add_argument("-o", "--output", default=None, help="JSON-lines file, appended to")
    parser.add_argument("--profile", default="quick", choices=("quick", "paper", "rock"))
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--models", type=Path, default=None, help="folder to keep the trained models in")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a TrainConfig field over the profile, e.g. --set blocks=12 --set scales=[1,2] (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--spread", nargs="+", default=None, metavar="MODEL", help="fraction spread of models"
    )
    parser.add_argument("--whiten", type=int, nargs="+", default=[0, 32], help="noise cells for --spread")
    parser.add_argument("--reference", default=None, help="reference of the --spread models, for their S2")
    parser.add_argument(
        "--floor",
        type=int,
        nargs="+",
        default=None,
        metavar="BLOCKS",
        help="print the receptive-field floor of the S2 RMSE of the cases for these numbers of blocks; no training",
    )
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        field, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides[field.strip()] = tuple(value) if isinstance(value, list) else value
    if args.floor:
        from swnn.references import load_reference

        print("| reference | " + " | ".join(f"{b} blocks" for b in args.floor) + " |")
        print("|---|" + "---|" * len(args.floor))
        for spec in args.cases:
            image = load_reference(spec).image
            floors = [receptive_field_floor(image, b) for b in args.floor]
            print(f"| {Path(spec).name} | " + " | ".join(f"{f:.4f}" for f in floors) + " |")
        return 0
    if args.spread:
        if args.output is None:
            parser.error("--spread needs -o RESULTS.jsonl")
        for path in args.spread:
            for whiten in args.whiten:
                row = fraction_spread(
                    path, whiten=whiten, samples=args.samples, size=args.size, reference=args.reference
                )
                with open(args.output, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
        return 0
    if args.summarize is not None:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
        print(summarize(rows))
        return 0
    if not args.cases or args.output is None:
        parser.error("give one or more cases and -o RESULTS.jsonl (or --summarize FILE)")
    for spec in args.cases:
        for row in run_case(
            spec,
            profile=args.profile,
            samples=args.samples,
            size=args.size,
            seed=args.seed,
            iterations=args.iterations,
            models=args.models,
            progress=not args.quiet,
            overrides=overrides,
        ):
            with open(args.output, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
