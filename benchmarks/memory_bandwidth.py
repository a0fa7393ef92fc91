"""Memory bandwidth of this machine with numba's threads, to put the lattice-Boltzmann MLUPS in context.

Three loops over float32 arrays of 512 MB each (far beyond the caches), best of five: copy (read one array,
write another: 8 bytes per element), triad (``a = b + s c``: 12 bytes) and in place (``a = s a``: 8 bytes, the
access pattern of the solver's AA streaming, which reads and writes the same slots). The solver moves about
188 bytes per fluid-node update (physics._lbm_kernels), so its MLUPS bound from memory alone is the in-place
rate / 188 B.

    python -m benchmarks.memory_bandwidth OUT.jsonl
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from numba import get_num_threads, njit, prange

from benchmarks._info import machine_info, record_line

BYTES_PER_UPDATE = 188  # populations 152 B on every step, plus the 72 B table on odd steps, on average


@njit(parallel=True, fastmath=True)
def _copy(a, b):  # pragma: no cover - compiled
    for i in prange(a.size):
        b[i] = a[i]


@njit(parallel=True, fastmath=True)
def _triad(a, b, c, s):  # pragma: no cover - compiled
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


@njit(parallel=True, fastmath=True)
def _in_place(a, s):  # pragma: no cover - compiled
    for i in prange(a.size):
        a[i] = a[i] * s


def measure(n: int = 128 * 1024 * 1024, repeats: int = 5) -> dict:
    """GB/s of each loop (best of ``repeats``) on arrays of ``n`` float32."""
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    one, half = np.float32(1.0), np.float32(0.5)
    loops = {
        "copy": (lambda: _copy(a, b), 8),
        "triad": (lambda: _triad(a, b, c, half), 12),
        "in_place": (lambda: _in_place(a, one), 8),
    }
    rates = {}
    for name, (loop, bytes_per_element) in loops.items():
        loop()  # compile
        best = min(_timed(loop) for _ in range(repeats))
        rates[f"{name}_GBps"] = round(bytes_per_element * n / best / 1e9, 2)
    rates["lbm_bound_mlups"] = round(rates["in_place_GBps"] * 1e9 / BYTES_PER_UPDATE / 1e6, 1)
    return rates


def _timed(loop) -> float:
    start = time.perf_counter()
    loop()
    return time.perf_counter() - start


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    with Path(argv[0]).open("a") as out:
        record_line(
            out, kind="bandwidth", **machine_info("cpu"), numba_threads=get_num_threads(), **measure()
        )


if __name__ == "__main__":
    main()
