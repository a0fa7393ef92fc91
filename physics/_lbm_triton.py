"""Triton kernels of the D3Q19 TRT lattice-Boltzmann step: the GPU path of :mod:`physics.permeability`.

The same scheme as :func:`physics._lbm_kernels.trt_pair_numba` (AA streaming in place on the pore nodes,
half-way bounce-back, TRT collision with Λ = 3/16 and Guo forcing; see that module's docstring for the
storage and the table), one kernel launch per step: each program loads the 19 populations of ``BLOCK``
nodes, collides them in registers and stores them, so every step reads and writes each population once
(152 B per node, plus the 72 B table on odd steps). The torch-operation path in
:func:`physics._lbm_kernels.trt_pair_torch` makes about 40 passes over temporaries per step instead.

Triton ships with the CUDA builds of torch; this module imports it, so import it only where Triton is
installed (:func:`physics._lbm_run.triton_usable`). With ``TRITON_INTERPRET=1`` set before Triton is
imported, the kernels also run (slowly) on CPU tensors, which is how the tests check them against the numba
kernel on a machine without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["trt_pair_triton"]

BLOCK = 256
"""Nodes per program (two 128-thread warps' worth of lanes per population row)."""


@triton.jit
def pair(fa, fb, cu, cf, w, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m):
    # TRT + Guo of the pair (q, opposite q), as physics._lbm_kernels._collide_pair
    eq_plus = w * (drho + rho * (4.5 * cu * cu - 1.5 * u2))
    eq_minus = w * 3.0 * rho * cu
    source_plus = w * (9.0 * cu * cf - 3.0 * uf)
    source_minus = w * 3.0 * cf
    d_plus = keep_p * source_plus - om_p * (0.5 * (fa + fb) - eq_plus)
    d_minus = keep_m * source_minus - om_m * (0.5 * (fa - fb) - eq_minus)
    return fa + d_plus + d_minus, fb + d_plus - d_minus


@triton.jit
def collide(
    f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18,
    gz, gy, gx, om_p, om_m, keep_p, keep_m,
):  # fmt: skip
    # D3Q19 order of physics.lattice.D3Q19: rest; +z, +y, +x, (1,1,0), (1,-1,0), (1,0,1), (1,0,-1),
    # (0,1,1), (0,1,-1); then the opposites in the same order
    w0 = 1.0 / 3.0
    w1 = 1.0 / 18.0
    w2 = 1.0 / 36.0
    drho = f0 + f1 + f2 + f3 + f4 + f5 + f6 + f7 + f8 + f9
    drho += f10 + f11 + f12 + f13 + f14 + f15 + f16 + f17 + f18
    rho = 1.0 + drho
    jz = (f1 + f4 + f5 + f6 + f7) - (f10 + f13 + f14 + f15 + f16) + 0.5 * gz
    jy = (f2 + f4 + f8 + f9 + f14) - (f11 + f13 + f17 + f18 + f5) + 0.5 * gy
    jx = (f3 + f6 + f8 + f16 + f18) - (f12 + f15 + f17 + f7 + f9) + 0.5 * gx
    inv = 1.0 / rho
    uz = jz * inv
    uy = jy * inv
    ux = jx * inv
    u2 = uz * uz + uy * uy + ux * ux
    uf = uz * gz + uy * gy + ux * gx
    eq0 = w0 * (drho - 1.5 * rho * u2)
    o0 = f0 - om_p * (f0 - eq0) - keep_p * w0 * 3.0 * uf
    o1, o10 = pair(f1, f10, uz, gz, w1, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o2, o11 = pair(f2, f11, uy, gy, w1, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o3, o12 = pair(f3, f12, ux, gx, w1, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o4, o13 = pair(f4, f13, uz + uy, gz + gy, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o5, o14 = pair(f5, f14, uz - uy, gz - gy, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o6, o15 = pair(f6, f15, uz + ux, gz + gx, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o7, o16 = pair(f7, f16, uz - ux, gz - gx, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o8, o17 = pair(f8, f17, uy + ux, gy + gx, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    o9, o18 = pair(f9, f18, uy - ux, gy - gx, w2, drho, rho, u2, uf, om_p, om_m, keep_p, keep_m)
    return o0, o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11, o12, o13, o14, o15, o16, o17, o18


@triton.jit(do_not_specialize=["n"])
def even(f, n, gz, gy, gx, om_p, om_m, keep_p, keep_m, BLOCK: tl.constexpr):
    # each node reads its own 19 slots and writes f*_q into its own slot of the opposite direction
    n = n.to(tl.int64)  # 18 n can pass 2**31 when the table is int64
    x = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = x < n
    o = collide(
        tl.load(f + x, mask=m), tl.load(f + n + x, mask=m), tl.load(f + 2 * n + x, mask=m),
        tl.load(f + 3 * n + x, mask=m), tl.load(f + 4 * n + x, mask=m), tl.load(f + 5 * n + x, mask=m),
        tl.load(f + 6 * n + x, mask=m), tl.load(f + 7 * n + x, mask=m), tl.load(f + 8 * n + x, mask=m),
        tl.load(f + 9 * n + x, mask=m), tl.load(f + 10 * n + x, mask=m), tl.load(f + 11 * n + x, mask=m),
        tl.load(f + 12 * n + x, mask=m), tl.load(f + 13 * n + x, mask=m), tl.load(f + 14 * n + x, mask=m),
        tl.load(f + 15 * n + x, mask=m), tl.load(f + 16 * n + x, mask=m), tl.load(f + 17 * n + x, mask=m),
        tl.load(f + 18 * n + x, mask=m),
        gz, gy, gx, om_p, om_m, keep_p, keep_m,
    )  # fmt: skip
    tl.store(f + x, o[0], mask=m)
    for q in tl.static_range(1, 10):
        tl.store(f + (q + 9) * n + x, o[q], mask=m)  # opposite of q is q + 9
        tl.store(f + q * n + x, o[q + 9], mask=m)


@triton.jit(do_not_specialize=["n"])
def odd(f, table, n, gz, gy, gx, om_p, om_m, keep_p, keep_m, BLOCK: tl.constexpr):
    # node x reads along q from table[q - 1, x] and writes f*_q to the read slot of opposite q
    n = n.to(tl.int64)
    x = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = x < n
    o = collide(
        tl.load(f + x, mask=m),
        tl.load(f + tl.load(table + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 2 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 3 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 4 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 5 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 6 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 7 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 8 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 9 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 10 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 11 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 12 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 13 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 14 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 15 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 16 * n + x, mask=m, other=0), mask=m),
        tl.load(f + tl.load(table + 17 * n + x, mask=m, other=0), mask=m),
        gz, gy, gx, om_p, om_m, keep_p, keep_m,
    )  # fmt: skip
    tl.store(f + x, o[0], mask=m)
    for q in tl.static_range(1, 10):
        # write slot of q = read slot of its opposite q + 9 (table row q + 8), and the other way round
        tl.store(f + tl.load(table + (q + 8) * n + x, mask=m, other=0), o[q], mask=m)
        tl.store(f + tl.load(table + (q - 1) * n + x, mask=m, other=0), o[q + 9], mask=m)


def trt_pair_triton(
    f: torch.Tensor,
    table: torch.Tensor,
    omega_plus: float,
    omega_minus: float,
    force: tuple[float, float, float],
) -> None:
    """Two fused steps on ``f`` (19, n) float32 in place, with ``table`` (18, n) int32 or int64 (contiguous,
    on the same device); ``force`` the body force along axes 0, 1, 2. See :func:`trt_pair_numba`."""
    n = f.shape[1]
    grid = (triton.cdiv(n, BLOCK),)
    rates = (
        float(omega_plus),
        float(omega_minus),
        1.0 - 0.5 * float(omega_plus),
        1.0 - 0.5 * float(omega_minus),
    )
    gz, gy, gx = (float(v) for v in force)
    even[grid](f, n, gz, gy, gx, *rates, BLOCK=BLOCK)
    odd[grid](f, table, n, gz, gy, gx, *rates, BLOCK=BLOCK)
