"""The ``swnn`` command: a thin layer that parses arguments and calls the library.

Heavy modules (torch, tifffile, zarr...) are imported inside the sub-commands so that ``swnn --help`` and
``swnn references`` start fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from pathlib import Path

from swnn.cli_args import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL_ERROR,
    EXIT_NOT_COMPARABLE,
    EXIT_NOT_CONVERGED,
    EXIT_OK,
)
from swnn.cli_args import parser as _parser

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
    "smooth": (("smoothing must", "--smoothing must"),),
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


def _one_or_tuple(values: list[int] | None) -> int | tuple[int, ...] | None:
    """A repeatable integer option: None when absent, its value when given once, else the tuple."""
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


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
    from swnn.calibration import SmoothingWarning
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
        dilations=tuple(args.dilations) if args.dilations else None,
        coarse_noise=_one_or_tuple(args.coarse_noise),
        channels=args.channels,
        precision=args.precision,
        dim=args.dim,
        isotropic=args.isotropic,
        s2_weight=args.s2_weight,
        lineal_weight=args.lineal_weight,
        curve_diagonals=args.curve_diagonals,
        smoothing=args.smoothing,
        checkpoint_every=args.checkpoint_every,
        retries=args.retries,
        candidates=args.candidates,
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
        with _warnings_as_lines("train", RepresentativityWarning, SmoothingWarning):
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
    attempts, chosen = meta.training["attempts"], meta.training["chosen"]
    kept = ""
    if len(attempts) > 1:
        total = sum(a["seconds"] for a in attempts)
        kept = f" (seed {attempts[chosen]['seed']}, kept of {len(attempts)} runs, {total:.0f} s in all"
        if "section_connectivity" in attempts[chosen]:
            c = attempts[chosen]["section_connectivity"]
            kept += f"; its sections' connected share {c:.3f}, the reference's {meta.training['reference_section_connectivity']:.3f}"
        kept += ")"
    print(
        f"saved {output}: {config.iterations} iterations in {result.seconds:.0f} s "
        f"({result.seconds_per_iteration:.2f} s/it){kept}, target fraction {meta.target_fraction:.4f}{known}, "
        f"threshold {meta.threshold}{control}"
    )
    return 0


def _smooth(args) -> int:
    from swnn.api import load_model
    from swnn.calibration import with_smoothing
    from swnn.io import check_destination

    output = Path(args.output)
    check_destination(output, force=args.force)
    model = load_model(args.model)
    smoothed = with_smoothing(model, args.smoothing, device=args.device, progress=not args.quiet)
    smoothed.save(output, force=args.force)
    print(
        f"saved {output}: smoothing {smoothed.smoothing}, threshold {smoothed.threshold} (was {model.threshold})"
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
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
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
        threads=args.threads,
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


_COMMANDS = {
    "references": _references,
    "train": _train,
    "smooth": _smooth,
    "generate": _generate,
    "evaluate": _evaluate,
    "study": _study,
    "regress": _regress,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``swnn`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("SWNN_DEBUG") == "1"
    try:
        return int(_COMMANDS[args.command](args) or 0)
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
