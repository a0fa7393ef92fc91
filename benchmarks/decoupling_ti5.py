"""Local–global decoupling (paper Sec. 4) on a three-phase image, against one three-phase model.

On ../shared/data/goswd/TI5.bmp (phases 0 / 1 / 2 at 0.497 / 0.390 / 0.113) it trains

- ``direct``: one three-phase model of the whole image;
- ``global``: a two-phase model of phase 0 against the rest (the image thresholded at grey 64);
- ``local``: a two-phase model of the region outside phase 0 (``region="labels:1,2"``);

generates ``--samples`` volumes of ``--size``³ directly and by decoupling (the local model's phases inside the
global model's complement, same seed and sample), and compares each phase's fraction, S2 and lineal path
with the image's (``physics.compare``, mean over the volume's three axes against the image's two). One JSON
line per measurement goes to ``--out``:

    python -m benchmarks.decoupling_ti5 --out ti5.jsonl [--device cuda] [--size 64] [--samples 8]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

import physics
import swnn
from benchmarks._info import record_line


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--image", default="../shared/data/goswd/TI5.bmp")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--iterations", type=int, default=None, help="default: the profile's")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    with args.out.open("a") as out:
        record_line(out, kind="machine", node=platform.node(), processor=platform.processor(),
                date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
        image = swnn.load_reference(args.image).image
        models = {}
        for name, reference, options in (
            ("direct", args.image, {}),
            ("global", swnn.load_reference(args.image, threshold=64), {}),
            ("local", args.image, {"region": "labels:1,2"}),
        ):
            if args.iterations is not None:
                options = {**options, "iterations": args.iterations}
            start = time.perf_counter()
            models[name] = swnn.train(
                reference, profile=args.profile, seed=0, device=args.device, control_map=False, **options
            )
            meta = models[name].metadata
            record_line(out, kind="train", model=name, seconds=round(time.perf_counter() - start, 1),
                    n_phases=meta.n_phases, reference=meta.reference.name,
                    reference_fraction=meta.reference.fraction)  # fmt: skip
        for sample in range(args.samples):
            volumes = {
                "direct": swnn.generate(
                    models["direct"], args.size, seed=21, sample=sample, device=args.device
                ),
                "decoupled": swnn.generate(
                    models["local"],
                    args.size,
                    seed=21,
                    sample=sample,
                    device=args.device,
                    global_mask=models["global"],
                    global_label=0,
                    global_phase=0,
                ),  # fmt: skip
            }
            for method, volume in volumes.items():
                for phase in range(3):
                    c = physics.compare(volume, image, phase=phase)
                    record_line(out, kind="sample", method=method, sample=sample, phase=phase,
                            fraction=float(np.mean(volume == phase)), fraction_error=c.fraction_error,
                            s2_rmse=c.s2_rmse, lineal_path_rmse=c.lineal_path_rmse)  # fmt: skip


if __name__ == "__main__":
    main()
