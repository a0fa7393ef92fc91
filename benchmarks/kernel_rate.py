"""Lattice updates per second of the numba permeability kernel of any checkout, to compare commits on one machine.

It times ``physics._lbm_kernels.trt_pair_numba`` of the checkout found first on ``PYTHONPATH`` (the table built by
that checkout's ``build_table``) on the benchmarks' porous volume (``porous_volume``, φ = 0.35, periodic), and
appends one JSON line per round to ``OUT``: MLUPS over fluid nodes for 80 steps, after 40 steps of warm-up. Run
it from each checkout in turn, alternating, so that both see the same state of the machine:

    cd CHECKOUT && PYTHONPATH=. python PATH/TO/benchmarks/kernel_rate.py OUT.jsonl LABEL [SIZE] [ROUNDS]

It works with the kernels since the fused pair of steps (``trt_pair_numba(f, table, omega_plus, omega_minus,
force)``, later with the active nodes and the ghosts of a mirror box, passed empty here).
"""

from __future__ import annotations

import inspect
import json
import sys
import time

import numpy as np


def main(argv: list[str]) -> None:
    from benchmarks.bench_permeability import porous_volume
    from physics import _lbm_kernels as kernels
    from physics.lattice import D3Q19

    out, label = argv[0], argv[1]
    size = int(argv[2]) if len(argv) > 2 else 128
    rounds = int(argv[3]) if len(argv) > 3 else 5
    # the table and the rates are built here, not by physics._lbm_run (absent from older checkouts)
    pore = porous_volume(size) == 1
    n = int(pore.sum())
    node_of = np.full(pore.shape, -1, dtype=np.int32)
    node_of[pore] = np.arange(n, dtype=np.int32)
    # blocks of the kernel's nodes where the checkout has them (table_shape), else (18, n)
    shape = kernels.table_shape(n, kernels.BLOCK) if hasattr(kernels, "table_shape") else (18, n)
    table = np.empty(shape, dtype=np.int32)
    kernels.build_table(node_of, D3Q19.c, D3Q19.opposite, n, table)
    table = table.view(np.uint32)
    f = np.zeros((19, n), dtype=np.float32)
    force = np.array([1e-6, 0.0, 0.0], dtype=np.float32)
    omega_plus, omega_minus = 1.0, 1.0 / (0.5 + 0.1875 / 0.5)  # τ = 1, Λ = 3/16
    extra = ()
    if "active" in inspect.signature(kernels.trt_pair_numba.py_func).parameters:
        none = np.zeros(0, dtype=np.int64)
        extra = (n, none, none, none, none)
    for _ in range(20):
        kernels.trt_pair_numba(f, table, omega_plus, omega_minus, force, *extra)
    with open(out, "a") as stream:
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(40):
                kernels.trt_pair_numba(f, table, omega_plus, omega_minus, force, *extra)
            wall = time.perf_counter() - start
            line = {
                "label": label,
                "size": size,
                "fluid_nodes": n,
                "steps": 80,
                "wall_s": round(wall, 4),
                "mlups": round(n * 80 / wall / 1e6, 1),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            stream.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
