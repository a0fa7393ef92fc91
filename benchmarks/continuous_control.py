"""Continuous control with one model: requested fractions against generated ones, and a graded volume.

For a trained two-phase model (by default trained here on ../shared/data/swnn-paper/M3.bmp with
``swnn train``, which measures the control map at its end), it generates ``--samples`` volumes of ``--size``³
at five fractions spread over the model's reachable range and one graded volume whose fraction follows a
linear profile along its long axis, and writes one JSON line per measurement to ``--out``:

    python -m benchmarks.continuous_control --out results.jsonl [--model M3.pt] [--size 128] [--samples 3]

The graded volume is 64 × 64 × 256 with the profile 0.25 → 0.55 along axis 2, judged by the RMSE of its
16-slice slab fractions against the requested profile at the slabs' centres.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import swnn
from benchmarks._info import record_line


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None, help="a trained model (default: train one on M3)")
    parser.add_argument("--image", default="../shared/data/swnn-paper/M3.bmp")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--profile", default="2:0.25..0.55")
    parser.add_argument("--graded-shape", type=int, nargs=3, default=(64, 64, 256))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--recalibrate", action="store_true", help="measure the model's control map again")
    args = parser.parse_args(argv)
    with args.out.open("a") as out:
        record_line(out, kind="machine", node=platform.node(), processor=platform.processor(),
                date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
        model_path = args.model
        if model_path is None:
            model_path = args.out.with_suffix(".model.pt")
            start = time.perf_counter()
            command = [sys.executable, "-m", "swnn", "train", args.image, "-o", str(model_path), "--force",
                       "--quiet", "--device", args.device]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            record_line(out, kind="train", command=" ".join(command[1:]), seconds=round(time.perf_counter() - start, 1),
                    returncode=done.returncode, stdout=done.stdout.strip(), stderr=done.stderr.strip()[-2000:])  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(done.returncode)
        model = swnn.load_model(model_path)
        control_map = None if args.recalibrate else model.control_map
        if control_map is None:
            start = time.perf_counter()
            control_map = swnn.calibrate_control(model, device=args.device, save=False)
            record_line(out, kind="calibrate", seconds=round(time.perf_counter() - start, 1))
        low, high = control_map.reachable
        record_line(out, kind="map", reachable=[low, high], shifts=control_map.shifts, fractions=control_map.fractions,
                phase=control_map.phase, precision=control_map.precision, direction=control_map.direction,
                direction_down=control_map.direction_down)  # fmt: skip
        # five fractions between the reachable extremes, kept away from the flat ends of the map
        inner_low, inner_high = max(low, 0.05), min(high, 0.95)
        phase = control_map.phase
        for requested in np.linspace(inner_low, inner_high, 7)[1:-1]:
            fractions = []
            start = time.perf_counter()
            for sample in range(args.samples):
                volume = swnn.generate(model, args.size, seed=11, sample=sample, fraction=float(requested),
                                       device=args.device)  # fmt: skip
                fractions.append(float(np.mean(volume == phase)))
            mean = float(np.mean(fractions))
            record_line(out, kind="fraction", requested=float(requested), samples=fractions, mean=mean,
                    error=mean - float(requested), size=args.size, seconds=round(time.perf_counter() - start, 1))  # fmt: skip
        shape = tuple(args.graded_shape)
        axis, _, ends = args.profile.partition(":")
        axis = int(axis)
        a, b = (float(v) for v in ends.split(".."))
        start = time.perf_counter()
        volume = swnn.generate(
            model, shape, seed=12, fraction_profile=args.profile, block=64, device=args.device
        )
        seconds = time.perf_counter() - start
        n = shape[axis]
        slabs = np.moveaxis(volume == phase, axis, 0).reshape(n // 16, 16, -1).mean(axis=(1, 2))
        centres = np.arange(n // 16) * 16 + 7.5
        wanted = a + (b - a) * centres / (n - 1)
        rmse = float(np.sqrt(np.mean((slabs - wanted) ** 2)))
        record_line(out, kind="graded", shape=shape, profile=args.profile, slabs=slabs.tolist(), wanted=wanted.tolist(),
                rmse=rmse, seconds=round(seconds, 1))  # fmt: skip


if __name__ == "__main__":
    main()
