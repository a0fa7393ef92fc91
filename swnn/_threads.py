"""The number of threads torch and numba use, fixed for a block of work and restored after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["fixed_threads"]


@contextlib.contextmanager
def fixed_threads(threads: int | None) -> Iterator[None]:
    """Run torch and numba with ``threads`` threads inside the block (None or 0: leave them), restored on exit.

    Floating-point sums depend on how many threads share them, so work that must give the same bits in a
    Dask worker as in one process (a study's items, a generation's blocks) runs with a fixed count.
    """
    if not threads:
        yield
        return
    import torch

    try:
        import numba
    except ImportError:  # numba is a dependency; without it only torch is set
        numba = None
    before = torch.get_num_threads(), numba.get_num_threads() if numba else None
    torch.set_num_threads(threads)
    if numba:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        if numba:
            numba.set_num_threads(before[1])
