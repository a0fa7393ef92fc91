"""The ``swnn`` command: a thin layer that parses arguments and calls the library.

Heavy modules (torch, tifffile, zarr...) are imported inside the sub-commands so that ``swnn --help`` and
``swnn references`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import traceback
from pathlib import Path

from swnn._version import __version__

__all__ = ["main"]

# Bad input and an unusable environment (a missing, unwritable or full destination): one line, exit status 2.
# Every other exception (TypeError, ImportError, ...) is a bug in swnn: exit status 70.
_USER_ERRORS = (ValueError, OSError, FloatingPointError)

# The library names parameters; the command line names its flags (per command: a study file names the
# library's keys, so `swnn study` keeps them).
_FLAG_WORDING = {
    "*": (("pass force=True", "pass --force"), ("use device='cpu' or 'auto'", "use --device cpu or auto")),
    "train": (
        ("give threshold=T", "pass --threshold T"),
        ("region '", "--region '"),
        ("slices need a 3D reference", "--slices needs a 3D reference"),
        ("give region or slices, not both", "give --region or --slices, not both"),
        ("lower learning_rate", "lower --lr"),
        ("pass shape=(Z, Y, X) and dtype", "pass --raw-shape Z Y X and --raw-dtype"),
    ),
    "generate": (
        ("use precision='fp32'", "use --precision fp32"),
        ("give shape (1, Y, X)", "use --shape 1 Y X"),
        (
            "shape must be a positive int or three positive ints (Z, Y, X)",
            "--size and --shape must be positive",
        ),
        ("block must be at least", "--block must be at least"),
        (
            "give one of fraction, fraction_profile and mask",
            "give one of --fraction, --fraction-profile and --mask",
        ),
        ("mask_mode='multiply'", "--mask-mode multiply"),
        ("mask_mode='offset'", "--mask-mode offset"),
        ("give mask_values", "give --mask-values"),
        ("mask_values has", "--mask-values has"),
        ("fraction must", "--fraction must"),
        ("global_mask ", "--global "),
        ("global_label must", "--global-label must"),
        ("global_phase must", "--global-phase must"),
    ),
    "evaluate": (
        ("give threshold=T", "pass --threshold T (--reference-threshold T for the reference)"),
        (
            "pass shape=(Z, Y, X) and dtype",
            "pass --raw-shape and --raw-dtype (--reference-raw-* for the reference)",
        ),
        ("raise max_steps", "raise --max-steps"),
        ("r_max=", "--rmax "),
        ("r_max must", "--rmax must"),
        ("phase=", "--phase "),
    ),
    "study": (("choose another output folder", "choose another -o"),),
    "regress": (("with write_baseline", "with --write-baseline"),),
}
_TRAIN_FLAGS = {"learning_rate": "lr"}  # training settings whose flag is not the setting's name

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_NOT_COMPARABLE = 4
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h

_EXIT_STATUSES = f"""exit status:
  {EXIT_OK}   ok
  {EXIT_CHECK_FAILED}   a check failed (regress: a regression was found)
  {EXIT_BAD_INPUT}   bad input (a missing file, a bad option or value): one line on stderr
  {EXIT_NOT_CONVERGED}   a solver did not converge (evaluate: the metrics JSON is still written, with "converged": false)
  {EXIT_NOT_COMPARABLE}   not comparable (regress: the study and the baseline measure different things)
  {EXIT_INTERNAL_ERROR}  internal error, a bug in swnn: please report it (--debug or SWNN_DEBUG=1 prints the traceback)
  130 interrupted (Ctrl-C); 141 the reader of the output closed it (as with `| head`)"""


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to compute: auto uses CUDA when present (default: auto)",
    )


def _add_reading(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="segment a grey-scale file: values above T become phase 1",
    )
    p.add_argument("--raw-shape", type=int, nargs="+", default=None, metavar="N", help="shape of a RAW file")
    p.add_argument("--raw-dtype", default=None, help="voxel type of a RAW file (e.g. uint8)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swnn",
        description="Reconstruct 3D microstructures from one 2D image (SWNN) and check them with physics.",
        epilog=_EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"swnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("references", help="list the built-in references (builtin:NAME)")
    p.set_defaults(func=_references)

    p = sub.add_parser("train", help="train a model on a reference image or volume")
    p.add_argument(
        "reference",
        nargs="+",
        help="image or volume file, or builtin:NAME (see `swnn references`); several 2D images of one material "
        "pool their patterns",
    )
    p.add_argument("-o", "--output", required=True, help="model file to write (e.g. model.pt)")
    p.add_argument(
        "--profile",
        default="quick",
        choices=("quick", "paper"),
        help="training settings: quick (this README's fidelity in ~15 min on 2 CPU cores) or paper "
        "(the authors' settings)",
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="target fraction of --phase (control strategy); default: the reference's own",
    )
    p.add_argument("--phase", type=int, default=1, help="the controlled phase (default 1)")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument("--template", type=int, default=None, help="pattern size k (k×k)")
    p.add_argument("--scales", type=int, nargs="+", default=None, help="pattern scales (pooling factors)")
    p.add_argument("--directions", type=int, default=None, help="projection directions per iteration")
    p.add_argument("--section", type=int, default=None, help="side of the sections generated per iteration")
    p.add_argument("--blocks", type=int, default=None, help="blocks A (l_a); 0 picks it by Eq. 12")
    p.add_argument("--channels", type=int, default=None, help="channels per block")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16"))
    p.add_argument("--dim", type=int, default=3, choices=(2, 3), help="3: 2D→3D (default), 2: 2D→2D")
    p.add_argument(
        "--isotropic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="2D→3D from 2D images: pool each image's patterns with its transpose's (default in the quick "
        "profile; --no-isotropic keeps the image's own orientation)",
    )
    p.add_argument(
        "--s2-weight",
        type=float,
        default=None,
        help="weight of the two-point term of the loss (default: 1 in the quick profile, 0 in the paper "
        "profile, whose loss is the paper's alone; not used with --fraction)",
    )
    p.add_argument(
        "--lineal-weight",
        type=float,
        default=None,
        help="weight of the lineal-path term of the loss (0: none; not used with --fraction)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing model")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="write the checkpoint MODEL.ckpt every N iterations (default 100) and on Ctrl-C; a rerun of the "
        "same command resumes from it",
    )
    p.add_argument(
        "--region",
        default=None,
        metavar="labels:L1,L2|rect:Y0:Y1,X0:X1",
        help="train on a local region of the reference (the local model of local-global decoupling): a set of "
        "its labels (the other pixels take the nearest region pixel's label) or a rectangle; the region's "
        "labels are renumbered 0..m-1",
    )
    p.add_argument(
        "--slices",
        nargs="+",
        default=None,
        metavar="AXIS:INDEX",
        help="train a 3D reference on these sections only (e.g. one CT slice 0:200, or three orthogonal ones "
        "0:200 1:200 2:200), pooled like several images",
    )
    p.add_argument(
        "--no-control-map",
        action="store_true",
        help="skip measuring the continuous-control map after training (generate --fraction then measures "
        "it at its first use)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_reading(p)
    _add_device(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="generate volumes with a trained model")
    p.add_argument("model", help="model file written by `swnn train`")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file; format from the extension: .npy .tif .tiff .zarr .raw (.png for 2D)",
    )
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", type=int, help="cube side N (N³ voxels)")
    size.add_argument("--shape", type=int, nargs=3, metavar=("Z", "Y", "X"))
    p.add_argument("--block", type=int, default=128, help="block side (any value gives the same volume)")
    p.add_argument("--samples", type=int, default=1, help="number of volumes (index before the extension)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="auto: bf16 where convolutions run natively in bfloat16 (each precision has its own "
        "calibrated threshold)",
    )
    p.add_argument(
        "--voxel-size", type=float, default=None, help="voxel size in metres, recorded as provenance"
    )
    control = p.add_mutually_exclusive_group()
    control.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="fraction of the model's phase, reached by shifting the noise mean with the model's calibrated "
        "map (measured and stored in MODEL at first use if the model has none)",
    )
    control.add_argument(
        "--fraction-profile",
        default=None,
        metavar="AXIS:A..B",
        help="a fraction varying linearly from A to B along array axis AXIS (graded material), e.g. 0:0.25..0.55",
    )
    control.add_argument(
        "--mask",
        default=None,
        metavar="FILE|SPEC",
        help="spatial location mask on the noise: a volume of the output's shape (floats in [0, 1], or labels "
        "with --mask-values), or gradient:AXIS:A..B, band:AXIS:LO..HI[:IN:OUT], sphere:CZ,CY,CX:R[:IN:OUT], "
        "layers:AXIS:N[:A:B], constant:V (positions as fractions of the sides)",
    )
    p.add_argument(
        "--mask-mode",
        default="multiply",
        choices=("multiply", "offset"),
        help="multiply: Y = G(X·M) with M in [0, 1] (the paper's); offset: the mask holds fractions, reached "
        "voxel by voxel through the calibrated map",
    )
    p.add_argument(
        "--mask-values",
        default=None,
        metavar="LABEL=VALUE,...",
        help="for a label mask: the value of each label, e.g. 0=0.2,1=1",
    )
    p.add_argument(
        "--global",
        dest="global_mask",
        default=None,
        metavar="VOLUME|MODEL",
        help="local-global decoupling: a label volume (or a model, generated with the same seed and sample) "
        "whose --global-label voxels become phase --global-phase; MODEL's phases fill the rest",
    )
    p.add_argument(
        "--global-label", type=int, default=0, help="the global phase's label in --global (default 0)"
    )
    p.add_argument(
        "--global-phase", type=int, default=0, help="the global phase's label in the output (default 0)"
    )
    p.add_argument(
        "--scheduler",
        default="local",
        help="local (default: this process), local:N (a Dask LocalCluster of N worker processes) or the address "
        "of a running Dask scheduler (tcp://host:8786); with a cluster each block is one task, written into a "
        ".zarr output, and a rerun resumes an interrupted generation",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_device(p)
    p.set_defaults(func=_generate)
    p = sub.add_parser("evaluate", help="statistical descriptors of a volume, optionally against a reference")
    p.add_argument("volume", help="volume or image file (TIFF, NPY, RAW, zarr, PNG, BMP), or builtin:NAME")
    p.add_argument("-o", "--output", required=True, help="metrics JSON file to write")
    p.add_argument(
        "--reference",
        default=None,
        help="reference file or builtin:NAME (its 3D volume); a 2D reference is compared with the "
        "mean of the volume's three axes",
    )
    p.add_argument(
        "--metrics",
        default="fraction,s2,lineal_path,chord_length,specific_surface,connectivity",
        help="comma-separated list (default: all of fraction,s2,lineal_path,chord_length,"
        "specific_surface,connectivity), plus conductivity and permeability",
    )
    p.add_argument(
        "--phase",
        type=_phase_or_all,
        default=1,
        help="the phase described; the pore of the physics metrics (default 1); all: each phase of the material "
        'in turn (the JSON then holds one result per phase under "phases")',
    )
    p.add_argument(
        "--rmax",
        type=int,
        default=None,
        help="largest lag of S2 and the lineal path (default: 32, or the smallest side - 1 if less)",
    )
    p.add_argument(
        "--conductivities",
        type=float,
        nargs="+",
        default=None,
        metavar="K",
        help="metric conductivity: one conductivity per label 0, 1, ..., n-1 (default: 0.026 W/m·K for "
        "--phase, the pore, and 1.4 for every other label, the solid)",
    )
    p.add_argument(
        "--max-iterations",
        type=int,
        default=None,
        metavar="N",
        help="metric conductivity: conjugate-gradient iterations before giving up (default: the solver's, "
        "physics.conductivity)",
    )
    p.add_argument(
        "--conductivity-tol",
        type=float,
        default=None,
        metavar="TOL",
        help="metric conductivity: required relative residual and heat-flow imbalance (default: the "
        "solver's; float32 storage limits it to about 1e-6)",
    )
    p.add_argument(
        "--sides", default="periodic", choices=("periodic", "insulated"), help="conductivity side walls"
    )
    p.add_argument("--axes", default=None, help="axes of the physics metrics, e.g. 0,1,2 (default: all)")
    p.add_argument(
        "--voxel-size",
        type=float,
        default=None,
        metavar="METRES",
        help="metric permeability: voxel size in metres, to report k in m² and darcy as well as voxel²",
    )
    p.add_argument(
        "--boundary",
        default="periodic",
        choices=("periodic", "mirror", "buffer"),
        help="metric permeability: how the sample is closed along the flow (default periodic; mirror or "
        "buffer for samples that are not periodic along the flow, see physics.permeability)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="metric permeability: lattice-Boltzmann step limit (default: the solver's, physics.permeability)",
    )
    p.add_argument(
        "--tau",
        type=float,
        default=None,
        help="metric permeability: relaxation time tau > 0.5 (default: chosen from the pore size and the sample's "
        "length, 0.6 to 1; k does not depend on it)",
    )
    p.add_argument(
        "--permeability-tol",
        type=float,
        default=None,
        metavar="TOL",
        help="metric permeability: converged when the estimated relative error of k, extrapolated from its "
        "approach to the limit, is below TOL (default 1e-3)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar of the permeability runs (shown on a terminal: steps, k, its change, ETA)",
    )
    _add_reading(p)
    p.add_argument(
        "--reference-threshold",
        type=float,
        default=None,
        metavar="T",
        help="segment a grey-scale --reference: values above T become phase 1",
    )
    p.add_argument(
        "--reference-raw-shape",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="shape of a RAW --reference",
    )
    p.add_argument("--reference-raw-dtype", default=None, help="voxel type of a RAW --reference (e.g. uint8)")
    _add_device(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "study",
        help="train, generate and evaluate references × conditions; write metrics, figures and an HTML report",
    )
    p.add_argument(
        "study",
        nargs="?",
        default=None,
        help="study file (TOML, see the README); default: the built-in default study",
    )
    p.add_argument("-o", "--output", required=True, help="study folder (created; a rerun reuses its cache)")
    p.add_argument(
        "--profile",
        default=None,
        choices=("quick", "paper"),
        help="train with this profile's settings as they are (the file's [training] overrides are dropped)",
    )
    p.add_argument("--force", action="store_true", help="discard the folder's cache and redo everything")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--scheduler",
        default="local",
        help="local (default: this process), local:N (a Dask LocalCluster of N worker processes) or the address "
        "of a running Dask scheduler (tcp://host:8786) whose workers see the output folder; each train, "
        "generate and evaluate item is one task",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and numba threads per item (default: all cores in this process, 1 per task on Dask); "
        "runs with the same --threads write the same metrics.csv and summary.csv",
    )
    _add_device(p)
    p.set_defaults(func=_study)

    p = sub.add_parser("regress", help="check a study's fidelity against a stored baseline")
    p.add_argument("directory", help="study folder written by `swnn study`")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", help="baseline JSON to compare with; exit status 1 on a regression")
    which.add_argument("--write-baseline", metavar="FILE", help="write the study's fidelity as a baseline")
    p.add_argument("--force", action="store_true", help="overwrite an existing --write-baseline file")
    p.set_defaults(func=_regress)
    for p in (parser, *sub.choices.values()):  # accepted before or after the command
        p.add_argument(
            "--debug",
            action="store_true",
            default=False if p is parser else argparse.SUPPRESS,
            help="print the traceback of an error",
        )
    return parser


def _study(args) -> int:
    from reports.study import load_study, run_study
    from swnn.distributed import client_for, parse_scheduler

    parse_scheduler(args.scheduler)  # bad input, before the study is read
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    study = load_study(args.study)
    if args.profile is not None:
        study = study.with_profile(args.profile)
    with client_for(args.scheduler) as client:
        result = run_study(
            study,
            args.output,
            force=args.force,
            device=args.device,
            progress=not args.quiet,
            client=client,
            threads=args.threads,
        )
    stages = result.summary["timings"]["stages"]
    print(f"wrote {result.index} (metrics.csv, study.json, figures/) in {sum(stages.values()):.0f} s")
    for note in result.summary["notes"]:
        print(f"note: {note}")
    return 0


def _regress(args) -> int:
    from reports.regress import check, write_baseline

    if args.write_baseline is not None:
        path = write_baseline(args.directory, args.write_baseline, force=args.force)
        print(f"wrote {path}")
        return 0
    from reports.regress import NotComparable

    try:
        report = check(args.directory, args.baseline)
    except NotComparable as exc:
        print(f"swnn regress: not comparable: {_flag_wording(str(exc), 'regress')}", file=sys.stderr)
        return EXIT_NOT_COMPARABLE
    print(report.text())
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def _evaluate_phase(phase, volume, reference, axes, settings, metrics, args):
    """The metrics JSON of one phase (with the reference's and the comparison) and the evaluations made."""
    from physics import as_indicator, compare, evaluate

    # --phase must be a label of the material (a typo is bad input); a volume that lost it, a reconstruction
    # beside its reference, is evaluated with a note
    as_indicator(
        volume if reference is None else reference,
        phase=phase,
        name="volume" if reference is None else "the reference",
    )
    evaluation = evaluate(volume, axes=axes, phase=phase, **settings)
    evaluations = {"volume": evaluation}
    result = evaluation.to_dict()
    if reference is not None:
        reference_evaluation = evaluate(
            reference, axes=axes if reference.ndim == volume.ndim else None, phase=phase, **settings
        )
        evaluations["reference"] = reference_evaluation
        result["reference"] = reference_evaluation.to_dict()
        if {"s2", "lineal_path"} <= set(metrics):  # on the lags both evaluations hold
            comparison = compare(evaluation, reference_evaluation)
        else:  # S2 or L not asked for: the comparison computes its own
            comparison = compare(volume, reference, phase=phase, r_max=args.rmax)
        result["comparison"] = comparison.to_dict()
    return result, evaluations


def _phase_or_all(text: str):
    """``--phase``: a label, or ``all``."""
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a phase label or all, got {text!r}") from None


def _evaluate(args) -> int:
    import json

    import numpy as np

    from physics import METRICS, PHYSICS_METRICS
    from swnn._device import resolve_device
    from swnn.io import atomic_write, check_destination
    from swnn.references import load_reference

    output = Path(args.output)
    check_destination(output, force=args.force)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    accepted = (*METRICS, *PHYSICS_METRICS)
    unknown = [m for m in metrics if m not in accepted]
    if unknown or not metrics:
        raise ValueError(
            f"--metrics {args.metrics!r}: unknown metrics {unknown}; accepted names: {', '.join(accepted)}"
        )
    axes = _parse_axes(args.axes)
    if args.voxel_size is not None and not args.voxel_size > 0:
        raise ValueError(f"--voxel-size must be a positive length in metres, got {args.voxel_size}")
    shape = tuple(args.raw_shape) if args.raw_shape else None
    options = {
        "permeability_options": _given(max_steps=args.max_steps, tau=args.tau, tol=args.permeability_tol),
        "conductivity_options": _given(max_iterations=args.max_iterations, tol=args.conductivity_tol),
    }
    settings = dict(
        metrics=metrics,
        r_max=args.rmax,
        conductivities=args.conductivities,
        sides=args.sides,
        boundary=args.boundary,
        voxel_size=args.voxel_size,
        device=resolve_device(args.device),
        progress=sys.stderr.isatty() and not args.quiet,
        **options,
    )

    def read(spec, **reading):
        ref = load_reference(spec, **reading)
        return ref.volume if ref.volume is not None else ref.image

    volume = read(args.volume, threshold=args.threshold, shape=shape, dtype=args.raw_dtype)
    reference = None
    if args.reference is not None:
        reference = read(
            args.reference,
            threshold=args.reference_threshold,
            shape=tuple(args.reference_raw_shape) if args.reference_raw_shape else None,
            dtype=args.reference_raw_dtype,
        )
    material = volume if reference is None else reference
    if args.phase == "all":
        phases = [int(p) for p in np.unique(material)]
        results = {}
        evaluations = {}
        for phase in phases:
            results[str(phase)], found = _evaluate_phase(
                phase, volume, reference, axes, settings, metrics, args
            )
            evaluations.update({f"{name}, phase {phase}": e for name, e in found.items()})
        result = {"phases": results}
    else:
        result, evaluations = _evaluate_phase(args.phase, volume, reference, axes, settings, metrics, args)
    converged = all(e.converged for e in evaluations.values())
    result["converged"] = converged
    with atomic_write(output, force=args.force) as tmp:
        Path(tmp).write_text(json.dumps(result) + "\n")

    for name, e in evaluations.items():
        for note in e.notes:
            print(f"note: {name}: {note}")
        for warning in e.warnings:
            print(f"warning: {name}: {_flag_wording(warning, 'evaluate')}", file=sys.stderr)
    summary = f"fraction {result['fraction']:.4f}" if "fraction" in result else ""
    if "phases" in result and all("fraction" in r for r in result["phases"].values()):
        summary = "fractions " + ", ".join(f"{p}: {r['fraction']:.4f}" for p, r in result["phases"].items())
    if "comparison" in result:
        c = result["comparison"]
        summary += (
            f", fraction error {c['fraction_error']:+.4f}, S2 RMSE {c['s2_rmse']:.4f}, "
            f"lineal-path RMSE {c['lineal_path_rmse']:.4f}"
        )
    print(f"wrote {output}" + (f": {summary}" if summary else ""))
    if converged:
        return EXIT_OK
    failed = [(name, metric, axis) for name, e in evaluations.items() for metric, axis in e.not_converged]
    advice = {
        "permeability": "--max-steps or --tau raised (permeability)",
        "conductivity": "--max-iterations raised or --conductivity-tol loosened (conductivity)",
    }
    print(
        "swnn evaluate: not converged: "
        + ", ".join(f"{metric} along axis {axis} ({name})" for name, metric, axis in failed)
        + f'; {output} holds the results with "converged": false; rerun with '
        + " or ".join(dict.fromkeys(advice[metric] for _, metric, _ in failed)),
        file=sys.stderr,
    )
    return EXIT_NOT_CONVERGED


def _given(**options) -> dict:
    """The solver options given on the command line (None: the solver's default)."""
    return {key: value for key, value in options.items() if value is not None}


def _parse_axes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        axes = tuple(int(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise ValueError(f"--axes takes comma-separated axes 0, 1, 2 (e.g. 0,2), got {text!r}") from None
    if not axes or any(a not in (0, 1, 2) for a in axes):
        raise ValueError(f"--axes takes comma-separated axes 0, 1, 2 (e.g. 0,2), got {text!r}")
    return axes


def _references(args) -> int:
    from swnn.references import describe_references

    for line in describe_references():
        print(line)
    return 0


def _train(args) -> int:
    from swnn.api import load_reference, training_input
    from swnn.io import check_destination
    from swnn.training import PROFILES, RepresentativityWarning, train

    output = Path(args.output)
    check_destination(output, force=args.force)
    config = PROFILES[args.profile].replace(
        iterations=args.iterations,
        learning_rate=args.lr,
        template=args.template,
        scales=tuple(args.scales) if args.scales else None,
        directions=args.directions,
        section=args.section,
        blocks=args.blocks,
        channels=args.channels,
        precision=args.precision,
        dim=args.dim,
        isotropic=args.isotropic,
        s2_weight=args.s2_weight,
        lineal_weight=args.lineal_weight,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    shape = tuple(args.raw_shape) if args.raw_shape else None
    references = [
        load_reference(spec, threshold=args.threshold, shape=shape, dtype=args.raw_dtype)
        for spec in args.reference
    ]
    if args.slices is not None and len(references) != 1:
        raise ValueError("--slices takes one 3D reference")
    images, n_phases, name = training_input(
        references[0] if args.slices is not None else references, region=args.region, slices=args.slices
    )
    target_fraction = args.fraction
    if args.region is not None and target_fraction is None:
        from swnn.decoupling import region_fraction

        target_fraction = region_fraction(training_input(references)[0], args.region, args.phase)
    try:
        with _warnings_as_lines("train", RepresentativityWarning):
            result = train(
                images,
                config=config,
                output=output,
                phase=args.phase,
                target_fraction=target_fraction,
                n_phases=n_phases,
                reference_name=name,
                device=args.device,
                progress=not args.quiet,
                resume=not args.restart,
                force=args.force,
            )
    except KeyboardInterrupt:
        checkpoint = Path(f"{output}.ckpt")
        if checkpoint.exists():
            print(
                f"swnn train: interrupted; {checkpoint} holds the iterations done: rerun the same command to "
                "resume (--restart starts afresh)",
                file=sys.stderr,
            )
            return 130
        raise
    control = ""
    if not args.no_control_map:
        from swnn.api import calibrate_control

        try:
            low, high = calibrate_control(result.model, device=args.device, progress=not args.quiet).reachable
            control = f", continuous control reaches fractions {low:.3f}..{high:.3f}"
        except ValueError as error:
            control = f", no continuous control ({error})"
    meta = result.model.metadata
    known = ""
    if meta.reference.fraction_std is not None:
        known = f" (the reference's {meta.reference.fraction:.4f} ± {1.96 * meta.reference.fraction_std:.4f}, 95 %)"
    print(
        f"saved {output}: {config.iterations} iterations in {result.seconds:.0f} s "
        f"({result.seconds_per_iteration:.2f} s/it), target fraction {meta.target_fraction:.4f}{known}, "
        f"threshold {meta.threshold}{control}"
    )
    return 0


@contextlib.contextmanager
def _warnings_as_lines(command: str, *categories):
    """Print warnings of ``categories`` as one ``swnn COMMAND: warning: …`` line each, as they occur."""
    import warnings

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, categories):
            print(f"swnn {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():  # restores the filters and showwarning on exit
        for category in categories:
            warnings.simplefilter("always", category)
        warnings.showwarning = show
        yield


def _output_paths(output: Path, samples: int) -> list[Path]:
    if samples == 1:
        return [output]
    width = len(str(samples - 1))
    suffix = ".zarr" if output.name.endswith(".zarr") else output.suffix
    stem = output.name[: len(output.name) - len(suffix)]
    return [output.with_name(f"{stem}_{i:0{width}d}{suffix}") for i in range(samples)]


def _generate(args) -> int:
    from swnn.api import load_model, volume_shape
    from swnn.io import check_destination

    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1, got {args.samples}")
    shape = volume_shape(args.size if args.size is not None else tuple(args.shape))
    paths = _output_paths(Path(args.output), args.samples)
    for path in paths:
        check_destination(path, force=args.force)
    from swnn.distributed import client_for, parse_scheduler

    if parse_scheduler(args.scheduler)[0] != "local" and Path(args.output).suffix.lower() != ".zarr":
        raise ValueError(f"--scheduler {args.scheduler} writes a zarr store: give an output ending in .zarr")
    model = load_model(args.model)
    mask_values = _mask_values(args.mask_values)
    if args.fraction is not None:
        from swnn.conditions import check_fraction

        check_fraction(args.fraction)  # before a calibration the fraction would not need
    offset_mask = args.mask is not None and args.mask_mode == "offset"
    needs_map = args.fraction is not None or args.fraction_profile is not None or offset_mask
    if needs_map and model.control_map is None:
        from swnn.api import calibrate_control

        print(f"measuring the continuous-control map of {args.model} (once: it is stored in the model file)")
        low, high = calibrate_control(model, device=args.device, progress=not args.quiet).reachable
        print(f"continuous control reaches fractions {low:.3f}..{high:.3f}")
    with client_for(args.scheduler) as client:
        for sample, path in enumerate(paths):
            _generate_one(args, model, shape, sample, path, mask_values, client)
    return 0


def _generate_one(args, model, shape, sample, path, mask_values, client) -> None:
    """One sample of `swnn generate` (in this process, or on the Dask cluster of ``client``)."""
    from swnn.api import generate_to

    generate_to(
        path,
        model,
        shape,
        seed=args.seed,
        sample=sample,
        block=args.block,
        precision=args.precision,
        voxel_size=args.voxel_size,
        force=args.force,
        device=args.device,
        progress=not args.quiet,
        fraction=args.fraction,
        fraction_profile=args.fraction_profile,
        mask=args.mask,
        mask_mode=args.mask_mode,
        mask_values=mask_values,
        global_mask=args.global_mask,
        global_label=args.global_label,
        global_phase=args.global_phase,
        client=client,
    )
    print(f"wrote {path}")


def _mask_values(text: str | None) -> dict[int, float] | None:
    """``"0=0.2,1=1"`` -> {0: 0.2, 1: 1.0}."""
    if text is None:
        return None
    values = {}
    for item in text.split(","):
        label, sep, value = item.partition("=")
        try:
            values[int(label)] = float(value)
        except ValueError:
            raise ValueError(
                f"--mask-values must be LABEL=VALUE pairs separated by commas, got {text!r}"
            ) from None
        if not sep:
            raise ValueError(f"--mask-values must be LABEL=VALUE pairs separated by commas, got {text!r}")
    return values


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (an OSError without a message: its class and file)."""
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, OSError) and exc.filename:
        text = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return text or type(exc).__name__


def _flag_wording(message: str, command: str) -> str:
    """``message`` with the library's parameter names replaced by the flags of ``command``."""
    for library, flag in (*_FLAG_WORDING["*"], *_FLAG_WORDING.get(command, ())):
        message = message.replace(library, flag)
    if command == "train":  # "training setting iterations must be ..." -> "--iterations must be ..."
        message = re.sub(
            r"training setting (\w+)",
            lambda m: "--" + _TRAIN_FLAGS.get(m.group(1), m.group(1)).replace("_", "-"),
            message,
        )
    return message


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``swnn`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("SWNN_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except (
        BrokenPipeError
    ):  # the reader of the output went away (`| head`): stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except _USER_ERRORS as exc:
        if debug:
            traceback.print_exc()
        print(f"swnn {args.command}: error: {_flag_wording(_one_line(exc), args.command)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"swnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback only on request
        if debug:
            traceback.print_exc()
        print(
            f"swnn {args.command}: internal error, a bug in swnn: {type(exc).__name__}: {_one_line(exc)} "
            + ("(please report it)" if debug else "(please report it; --debug shows the traceback)"),
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
