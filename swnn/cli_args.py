"""The arguments of the ``swnn`` command (:func:`swnn.cli.main`): its sub-commands, their flags and help, and
the exit statuses it documents."""

from __future__ import annotations

import argparse

from swnn._version import __version__

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_INTERNAL_ERROR",
    "EXIT_NOT_COMPARABLE",
    "EXIT_NOT_CONVERGED",
    "EXIT_OK",
    "parser",
]

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


def _phase_or_all(text: str):
    """``--phase``: a label, or ``all``."""
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a phase label or all, got {text!r}") from None


def _smoothing(text: str):
    """``--smoothing``: σ in voxels, or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a σ in voxels or auto, got {text!r}") from None


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


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swnn",
        description="Reconstruct 3D microstructures from one 2D image (SWNN) and check them with physics.",
        epilog=_EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"swnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("references", help="list the built-in references (builtin:NAME)")
    p.set_defaults(command="references")

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
        choices=("quick", "paper", "rock"),
        help="training settings: quick (this README's fidelity in ~15 min on 2 CPU cores), paper "
        "(the authors' settings) or rock (quick plus the lineal-path term, --coarse-noise 7, --smoothing "
        "auto and --candidates 3: better connected pore space, 3 times the training time)",
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
    p.add_argument(
        "--dilations",
        type=int,
        nargs="+",
        default=None,
        metavar="D",
        help="spacing of the taps of each block A, one per block (default: all 1; e.g. 1 1 2 2 4 4 1 1 sees "
        "33³ voxels of noise instead of 17³)",
    )
    p.add_argument(
        "--coarse-noise",
        type=int,
        nargs="+",
        default=None,
        metavar="B",
        help="let the first block also read the noise averaged over B³ cubes (B odd ≥ 3; default 0: none): a "
        "view of the noise B voxels wide at the cost of one box filter; several increasing sides (e.g. 7 15) "
        "give one view each",
    )
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
    p.add_argument(
        "--curve-diagonals",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the two-point and lineal-path terms along the diagonals of each section too, against "
        "the reference's own diagonal curves (default: off)",
    )
    p.add_argument(
        "--smoothing",
        type=_smoothing,
        default=None,
        metavar="SIGMA|auto",
        help="σ in voxels of a Gaussian applied to the network's output before the threshold: smoother "
        "interfaces, fewer throats cut by voxel-scale noise, the same fraction; auto matches the reference's "
        "interfaces per pixel pair (default: 0, none; auto in the rock profile)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--retries",
        type=int,
        default=None,
        metavar="N",
        help="train again from the next seed, up to N times, when a run stalls in a poor optimum (--smoothing "
        "auto then warns that it cannot reach the reference's interfaces); default 0, 2 in the rock profile",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=None,
        metavar="N",
        help="train N runs (seeds S, S+1, ...) and keep the one whose samples' 2D sections join up most like "
        "the reference's (the share of the phase joined to the edge of 64-pixel windows); N times the "
        "training time; default 1, 3 in the rock profile",
    )
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
    p.set_defaults(command="train")

    p = sub.add_parser(
        "smooth",
        help="set the smoothing of a trained model's output and calibrate its threshold again (no training)",
    )
    p.add_argument("model", help="model file written by `swnn train`")
    p.add_argument("-o", "--output", required=True, help="model file to write")
    p.add_argument(
        "--smoothing",
        type=float,
        required=True,
        metavar="SIGMA",
        help="σ in voxels of the Gaussian applied to the network's output before the threshold (0: none)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_device(p)
    p.set_defaults(command="smooth")

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
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per block (default: all cores in this process, 1 per task on Dask); with GPU workers "
        "give each the CPU cores of its GPU, which draw the block's noise",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_device(p)
    p.set_defaults(command="generate")
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
    p.set_defaults(command="evaluate")

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
        choices=("quick", "paper", "rock"),
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
    p.set_defaults(command="study")

    p = sub.add_parser("regress", help="check a study's fidelity against a stored baseline")
    p.add_argument("directory", help="study folder written by `swnn study`")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--baseline",
        help="baseline JSON to compare with, or a folder of baselines (the one of the study's name, sample side "
        "and precision is used); exit status 1 on a regression",
    )
    which.add_argument("--write-baseline", metavar="FILE", help="write the study's fidelity as a baseline")
    p.add_argument("--force", action="store_true", help="overwrite an existing --write-baseline file")
    p.set_defaults(command="regress")
    for p in (parser, *sub.choices.values()):  # accepted before or after the command
        p.add_argument(
            "--debug",
            action="store_true",
            default=False if p is parser else argparse.SUPPRESS,
            help="print the traceback of an error",
        )
    return parser
