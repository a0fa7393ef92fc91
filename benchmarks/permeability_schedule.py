"""Steps and wall time of the central 256³ Berea crop under variants of the permeability run's schedule.

The run of :func:`physics.permeability` (``tau="auto"``, flow along axis 0, ``boundary="mirror"``, pores =
value 0) is plain for its first checks, then Anderson-mixed until k is calm, then plain again until its
extrapolated error is below ``tol``. Each variant changes one constant of :mod:`physics._lbm_run` (the mixed
phase's calm threshold ``_MIXED_TOL`` and count ``_MIXED_CALM``) or one argument of the call (``anderson``, the
mixing depth), and records k, its error against the fully converged τ = 1 reference of the crop, the steps, the
step at which the mixed phase starts and ends, and the wall time. One JSON line per variant goes to ``OUT`` as
it finishes. Steps and k do not depend on the load of the machine; wall times need it idle.

    python -m benchmarks.permeability_schedule DIR OUT.jsonl [VARIANT ...]

``DIR`` holds ``berea_400.zip`` (../shared/data/berea). A VARIANT is a JSON object such as
``'{"module": {"_MIXED_TOL": 0.02}}'`` or ``'{"kwargs": {"anderson": 10}}'``; none: the defaults.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._info import machine_info, record_line
from benchmarks.permeability_convergence import central_crop

REFERENCE_K = 0.06022882662042099
"""k of the crop (voxel²) from a τ = 1 run to a relative change below 1e-8 per 100 steps (115,402 steps;
benchmarks/results/permeability-convergence-h200.jsonl, "reference" of berea:central256)."""


def run(crop: np.ndarray, variant: dict) -> dict:
    """One run of the crop under ``variant``; the module constants are restored afterwards."""
    import physics._lbm_run as lbm_run
    from physics.permeability import permeability

    saved = {key: getattr(lbm_run, key) for key in variant.get("module", {})}
    marks: list[tuple[str, int]] = []
    mixed_phase = lbm_run.Run._mixed_phase

    def marked(self, *args, **kwargs):
        marks.append(("mixed phase starts", self.steps))
        mixed_phase(self, *args, **kwargs)
        marks.append(("mixed phase ends", self.steps))

    try:
        for key, value in variant.get("module", {}).items():
            setattr(lbm_run, key, value)
        lbm_run.Run._mixed_phase = marked
        start = time.perf_counter()
        result = permeability(crop, axis=0, phase=0, boundary="mirror", **variant.get("kwargs", {}))
        wall = time.perf_counter() - start
    finally:
        lbm_run.Run._mixed_phase = mixed_phase
        for key, value in saved.items():
            setattr(lbm_run, key, value)
    return {
        "variant": variant,
        "k": result.k,
        "error_vs_reference": (result.k - REFERENCE_K) / REFERENCE_K,
        "steps": result.steps,
        "marks": marks,
        "wall_s": round(wall, 1),
        "mlups": result.mlups,
        "tau": result.tau,
        "error_estimate": result.error_estimate,
    }


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    data, out_path, variants = Path(argv[0]), Path(argv[1]), [json.loads(v) for v in argv[2:]] or [{}]
    crop = central_crop(data)
    with out_path.open("a") as out:
        record_line(
            out,
            kind="machine",
            **machine_info("cpu"),
            date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        for variant in variants:
            record_line(out, kind="run", **run(crop, variant))


if __name__ == "__main__":
    main()
