"""Kernels of the D3Q19 TRT lattice-Boltzmann solver in :mod:`physics.permeability`, one per backend.

Storage (both backends)
-----------------------
Only pore nodes are stored ("sparse" or "pore-only" layout): the ``n`` fluid nodes are numbered in C order
of the volume. One float32 array ``f`` of shape (19, n) holds ``f_q - w_q`` (the deviation from rest at unit
density, which keeps ~7 significant digits on the small flow signal instead of on ``w_q``).

Streaming is in place, with the "AA" pattern (Bailey et al. 2009), so no second population array is needed
and every step reads and writes the same memory (no write-allocate traffic):

- even step: each node reads its own 19 values, collides, and writes ``f*_q`` back into its own slot of
  the opposite direction, ``f[opp q, x]``. Contiguous, no table.
- odd step: node ``x`` reads the value that streams into it along ``q``, ``f[opp q, x - c_q]`` (written
  there by the even step), or, when ``x - c_q`` is solid, ``f[q, x]`` — half-way bounce-back: what left
  ``x`` towards the wall comes back reversed. It collides and writes ``f*_q`` where the next even step
  looks for it: ``f[q, x + c_q]``, or ``f[opp q, x]`` when ``x + c_q`` is solid.

After each pair of steps ``f[q, x]`` is again the population of ``x`` after streaming, ready for the next
collision: moments are then local. A node's reads and writes in one step touch the same 19 slots and no
other node touches them, so nodes are updated in parallel without conflicts.

The table gives the odd step's read slot of node ``x`` along ``q`` as a flat index into ``f``:
``opp(q) * n + (x - c_q)`` for a fluid neighbour, ``q * n + x`` for a solid one; the write slot of direction
``q`` is the read slot of ``opp(q)``. int32 while ``19 n < 2**31`` (113 M fluid nodes), int64 beyond. It is
stored in blocks of nodes (:func:`table_shape`): the numba kernel's blocks of :data:`BLOCK` nodes, whose 18
rows then lie in one contiguous piece (the odd step reads one stream of table instead of 18: 1.1 to 1.25 times
faster pairs of steps on the 2-core CPU of the benchmarks), or one block of all nodes, i.e. (18, n), for the
torch and Triton paths.

Memory per fluid node: 19 × 4 B populations + 18 × 4 B table = 148 B, so a 512³ volume (134 M voxels) takes
20 GB even when it is all pore (29 GB with the int64 table it then needs), about 7 GB at porosity 0.35.
Traffic per node update: 152 B of populations, plus the 72 B table on odd steps (188 B on average).

Backends
--------
- numba (CPU): one fused ``parallel=True`` kernel per pair of steps, over blocks of nodes.
- torch (a GPU without Triton, and the CPU for testing): the same table used by ``index_select`` and
  ``index_copy_``, the collision as tensor arithmetic, in chunks of nodes to bound the temporaries. On a CUDA
  device with Triton, :mod:`physics._lbm_triton` runs the step instead, 20 times faster.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from .lattice import D3Q19

__all__ = [
    "BLOCK",
    "build_table",
    "moments_numba",
    "moments_torch",
    "observe_numba",
    "table_shape",
    "trt_pair_numba",
    "trt_pair_torch",
]

BLOCK = 128
"""Nodes per block in the numba kernel: its (38, 128) float32 scratch (19 kB) stays in the L1 cache."""

_C = tuple(tuple(int(v) for v in row) for row in D3Q19.c)  # compile-time constants for numba
_OPP = tuple(int(v) for v in D3Q19.opposite)


def table_shape(n: int, width: int) -> tuple[int, int, int]:
    """Shape of the table of ``n`` nodes stored in blocks of ``width`` nodes: ``(ceil(n / width), 18, width)``.

    The numba kernel takes blocks of :data:`BLOCK` nodes, so that the 18 rows of the nodes it updates together
    lie in one contiguous 9 kB piece; the torch and Triton paths take one block of ``n`` nodes, i.e. (18, n).
    """
    return ((n + width - 1) // width, 18, width)


@njit(parallel=True, cache=True)
def build_table(node_of, c, opposite, n, out):  # pragma: no cover - compiled
    """Fill ``out`` with the odd step's read slots of every fluid node (see the module docstring).

    ``node_of`` (Z, Y, X) holds the node number of each fluid voxel and -1 for solid; the box is periodic.
    ``out`` has the shape :func:`table_shape` gives: the slot of node ``x`` along ``q`` goes to
    ``out[x // width, q - 1, x % width]``; entries past the last node are set to 0.
    """
    nz, ny, nx = node_of.shape
    width = out.shape[2]
    for z in prange(nz):
        for y in range(ny):
            for x in range(nx):
                node = node_of[z, y, x]
                if node < 0:
                    continue
                block, lane = node // width, node % width
                for q in range(1, 19):
                    source = node_of[(z - c[q, 0]) % nz, (y - c[q, 1]) % ny, (x - c[q, 2]) % nx]
                    if source >= 0:
                        out[block, q - 1, lane] = opposite[q] * n + source
                    else:
                        out[block, q - 1, lane] = q * n + node
    tail = out.shape[0] * width - n  # the last block's unused lanes
    for q in range(18):
        for lane in range(width - tail, width):
            out[out.shape[0] - 1, q, lane] = 0


# ----------------------------------------------------------------------------------------------------------
# numba (CPU)


@njit(inline="always", fastmath=True, error_model="numpy")
def _collide_pair(fa, fb, cu, c_force, w, node, rates):  # pragma: no cover - compiled
    """TRT collision with Guo forcing of the pair (q, opposite q); returns the two post-collision values.

    ``cu`` = c_q·u, ``c_force`` = c_q·F, ``w`` = w_q, ``node`` = (drho, rho, u², u·F) of the node,
    ``rates`` = (ω⁺, ω⁻, 1 − ω⁺/2, 1 − ω⁻/2). Populations are ``f - w``, so the equilibrium is
    ``w (drho + rho (3 cu + 4.5 cu² - 1.5 u²))``. The symmetric part relaxes with ω⁺, the antisymmetric with
    ω⁻, each with its share (1 − ω/2) of the Guo source ``w (3 (c - u)·F + 9 (c·u)(c·F))``.
    """
    drho, rho, u2, u_force = node
    om_p, om_m, keep_p, keep_m = rates
    eq_plus = w * (drho + rho * (np.float32(4.5) * cu * cu - np.float32(1.5) * u2))
    eq_minus = w * np.float32(3.0) * rho * cu
    source_plus = w * (np.float32(9.0) * cu * c_force - np.float32(3.0) * u_force)
    source_minus = w * np.float32(3.0) * c_force
    d_plus = keep_p * source_plus - om_p * (np.float32(0.5) * (fa + fb) - eq_plus)
    d_minus = keep_m * source_minus - om_m * (np.float32(0.5) * (fa - fb) - eq_minus)
    return fa + d_plus + d_minus, fb + d_plus - d_minus


@njit(inline="always", fastmath=True, error_model="numpy")
def _collide_block(s, m, force, rates):  # pragma: no cover - compiled
    """Collide ``m`` nodes: rows 0-18 of the scratch ``s`` (38, BLOCK) in, rows 19-37 out (same order).

    Written out for the D3Q19 order of :data:`physics.lattice.D3Q19` (rest; +z, +y, +x, (1,1,0), (1,-1,0),
    (1,0,1), (1,0,-1), (0,1,1), (0,1,-1); then the opposites in the same order); ``test_permeability``
    checks it against the torch kernel, which is written from the lattice arrays. The loop touches only
    ``s``, whose rows sit at constant offsets, so LLVM proves it free of dependences and vectorises it.
    """
    gz, gy, gx = force
    om_p, keep_p = rates[0], rates[2]
    half = np.float32(0.5)
    w0, w1, w2 = np.float32(1.0 / 3.0), np.float32(1.0 / 18.0), np.float32(1.0 / 36.0)
    for x in range(m):
        f0 = s[0, x]
        f1 = s[1, x]
        f2 = s[2, x]
        f3 = s[3, x]
        f4 = s[4, x]
        f5 = s[5, x]
        f6 = s[6, x]
        f7 = s[7, x]
        f8 = s[8, x]
        f9 = s[9, x]
        f10 = s[10, x]
        f11 = s[11, x]
        f12 = s[12, x]
        f13 = s[13, x]
        f14 = s[14, x]
        f15 = s[15, x]
        f16 = s[16, x]
        f17 = s[17, x]
        f18 = s[18, x]
        drho = f0 + f1 + f2 + f3 + f4 + f5 + f6 + f7 + f8 + f9
        drho += f10 + f11 + f12 + f13 + f14 + f15 + f16 + f17 + f18
        rho = np.float32(1.0) + drho
        # momentum sum f c, plus the Guo half-force correction
        jz = (f1 + f4 + f5 + f6 + f7) - (f10 + f13 + f14 + f15 + f16) + half * gz
        jy = (f2 + f4 + f8 + f9 + f14) - (f11 + f13 + f17 + f18 + f5) + half * gy
        jx = (f3 + f6 + f8 + f16 + f18) - (f12 + f15 + f17 + f7 + f9) + half * gx
        inv = np.float32(1.0) / rho
        uz, uy, ux = jz * inv, jy * inv, jx * inv
        u2 = uz * uz + uy * uy + ux * ux
        uf = uz * gz + uy * gy + ux * gx
        # rest population: symmetric relaxation only
        eq0 = w0 * (drho - np.float32(1.5) * rho * u2)
        s[19, x] = f0 - om_p * (f0 - eq0) - keep_p * w0 * np.float32(3.0) * uf
        node = (drho, rho, u2, uf)
        s[20, x], s[29, x] = _collide_pair(f1, f10, uz, gz, w1, node, rates)
        s[21, x], s[30, x] = _collide_pair(f2, f11, uy, gy, w1, node, rates)
        s[22, x], s[31, x] = _collide_pair(f3, f12, ux, gx, w1, node, rates)
        s[23, x], s[32, x] = _collide_pair(f4, f13, uz + uy, gz + gy, w2, node, rates)
        s[24, x], s[33, x] = _collide_pair(f5, f14, uz - uy, gz - gy, w2, node, rates)
        s[25, x], s[34, x] = _collide_pair(f6, f15, uz + ux, gz + gx, w2, node, rates)
        s[26, x], s[35, x] = _collide_pair(f7, f16, uz - ux, gz - gx, w2, node, rates)
        s[27, x], s[36, x] = _collide_pair(f8, f17, uy + ux, gy + gx, w2, node, rates)
        s[28, x], s[37, x] = _collide_pair(f9, f18, uy - ux, gy - gx, w2, node, rates)


@njit(parallel=True, fastmath=True, error_model="numpy", cache=True)
def trt_pair_numba(
    f, table, omega_plus, omega_minus, force, active, fill_source, fill_target, fold_source, fold_target
):  # pragma: no cover - compiled
    """Two fused steps (AA streaming + bounce-back + TRT collision + Guo forcing), in place, on the CPU.

    Parameters
    ----------
    f : ndarray of float32 of shape (19, n)
        Populations ``f - w`` after streaming (updated in place; the same meaning on return).
    table : ndarray of uint32 or uint64 of shape ``table_shape(n, BLOCK)``
        Odd-step read slots in blocks of ``BLOCK`` nodes (unsigned: numba then skips its negative-index
        checks, which would turn contiguous loads into gathers).
    omega_plus, omega_minus : float
        TRT relaxation rates of the symmetric and antisymmetric parts.
    force : ndarray of float32 of shape (3,)
        Body force density (lattice units), components along axes 0, 1, 2.
    active : int
        Nodes ``0 … active − 1`` are collided; those after them are the ghosts of a mirror box
        (:mod:`physics._lbm_mirror`), ``n`` otherwise.
    fill_source, fill_target, fold_source, fold_target : ndarray of int64
        Flat indices into ``f``: between the two steps ``f[fill_target] = −f[fill_source]``, after the odd
        step ``f[fold_target] = −f[fold_source]`` (empty without ghosts).

    Notes
    -----
    Each block of ``BLOCK`` nodes goes through a scratch array (38, BLOCK): loads fill rows 0-18, the
    collision writes rows 19-37, stores move those out. Only the loads and stores touch ``f``: numba
    cannot tell LLVM that its array arguments do not alias, and a loop that both gathers from and stores
    to them stays scalar (measured 1.3–1.6 times slower for the whole step here).
    """
    n = active
    flat = f.reshape(-1)
    n_blocks = (n + BLOCK - 1) // BLOCK
    g = (force[0], force[1], force[2])
    rates = (
        np.float32(omega_plus),
        np.float32(omega_minus),
        np.float32(1.0 - 0.5 * omega_plus),
        np.float32(1.0 - 0.5 * omega_minus),
    )
    # even step: own slots in, opposite own slots out
    for block in prange(n_blocks):
        start = np.uint64(block * BLOCK)
        m = np.uint64(min(BLOCK, n - block * BLOCK))
        s = np.empty((38, BLOCK), dtype=np.float32)
        for q in range(19):
            for x in range(m):
                s[q, x] = f[q, start + x]
        _collide_block(s, m, g, rates)
        for q in range(19):
            opposite = _OPP[q]
            for x in range(m):
                f[opposite, start + x] = s[19 + q, x]
    for i in prange(fill_source.size):  # ghosts of a mirror box: the imaged nodes' values, reflected
        flat[fill_target[i]] = -flat[fill_source[i]]
    # odd step: gather from the neighbours' slots (or bounce back), scatter to the next even step's slots
    for block in prange(n_blocks):
        start = np.uint64(block * BLOCK)
        m = np.uint64(min(BLOCK, n - block * BLOCK))
        s = np.empty((38, BLOCK), dtype=np.float32)
        for x in range(m):
            s[0, x] = f[0, start + x]
        for q in range(1, 19):
            for x in range(m):
                s[q, x] = flat[table[block, q - 1, x]]
        _collide_block(s, m, g, rates)
        for x in range(m):
            f[0, start + x] = s[19, x]
        for q in range(1, 19):
            row = _OPP[q] - 1  # the write slot of q is the read slot of its opposite
            for x in range(m):
                flat[table[block, row, x]] = s[19 + q, x]
    for i in prange(fold_source.size):  # what streamed into the ghosts goes where the mirror half sends it
        flat[fold_target[i]] = -flat[fold_source[i]]


@njit(inline="always")
def _node_moments(f, force, x):  # pragma: no cover - compiled
    """Density and momentum ``sum f c + F/2`` of node ``x`` after streaming (float64; ``f`` is f_q − w_q)."""
    rho = 1.0
    jz = 0.5 * np.float64(force[0])
    jy = 0.5 * np.float64(force[1])
    jx = 0.5 * np.float64(force[2])
    for q in range(19):
        v = np.float64(f[q, x])
        rho += v
        jz += _C[q][0] * v
        jy += _C[q][1] * v
        jx += _C[q][2] * v
    return rho, jz, jy, jx


@njit(parallel=True, fastmath=True, error_model="numpy", cache=True)
def observe_numba(f, force, axis):  # pragma: no cover - compiled
    """Momentum along ``axis`` summed over nodes, the largest and the summed squared speed (float64).

    ``f`` (19, n) holds populations after streaming (after a pair of steps); ``rho u = sum f c + F/2``. A NaN
    anywhere makes the summed squared speed NaN.
    """
    n = f.shape[1]
    momentum = 0.0
    speed2_sum = 0.0
    speed2_max = 0.0
    for x in prange(n):
        rho, jz, jy, jx = _node_moments(f, force, x)
        momentum += jz if axis == 0 else (jy if axis == 1 else jx)
        speed2 = (jz * jz + jy * jy + jx * jx) / (rho * rho)
        speed2_sum += speed2
        speed2_max = max(speed2_max, speed2)
    return momentum, speed2_max, speed2_sum


@njit(parallel=True, cache=True)
def moments_numba(f, force, out):  # pragma: no cover - compiled
    """Velocity ``u = (sum_q f_q c_q + F / 2) / rho`` of every node after streaming, into ``out`` (3, n)."""
    n = f.shape[1]
    for x in prange(n):
        rho, jz, jy, jx = _node_moments(f, force, x)
        out[0, x] = jz / rho
        out[1, x] = jy / rho
        out[2, x] = jx / rho


# ----------------------------------------------------------------------------------------------------------
# torch (the GPU path)


def _collide_torch(f: torch.Tensor, c: torch.Tensor, w: torch.Tensor, rates: tuple, force: torch.Tensor):
    """TRT + Guo collision of ``f`` (19, m) written from the lattice arrays; returns the new (19, m)."""
    omega_plus, omega_minus = rates
    half = c.shape[0] // 2  # 9 pairs (q, q + 9)
    c_plus = c[1 : half + 1]  # (9, 3)
    w_plus = w[1 : half + 1, None]  # (9, 1)
    c_force = (c_plus @ force)[:, None]  # (9, 1)
    drho = f.sum(0)  # (m,)
    rho = 1.0 + drho
    u = (c.T @ f + 0.5 * force[:, None]) / rho  # (3, m), Guo half-force correction
    u2 = (u * u).sum(0)  # (m,)
    u_force = force @ u  # (m,)
    cu = c_plus @ u  # (9, m)
    eq_plus = w_plus * (drho + rho * (4.5 * cu * cu - 1.5 * u2))
    eq_minus = w_plus * rho * 3.0 * cu
    source_plus = w_plus * (9.0 * cu * c_force - 3.0 * u_force)
    source_minus = 3.0 * w_plus * c_force
    fa, fb = f[1 : half + 1], f[half + 1 :]  # (9, m) each
    d_plus = (1.0 - 0.5 * omega_plus) * source_plus - omega_plus * (0.5 * (fa + fb) - eq_plus)
    d_minus = (1.0 - 0.5 * omega_minus) * source_minus - omega_minus * (0.5 * (fa - fb) - eq_minus)
    out = torch.empty_like(f)
    out[1 : half + 1] = fa + d_plus + d_minus
    out[half + 1 :] = fb + d_plus - d_minus
    eq_rest = w[0] * (drho - 1.5 * rho * u2)
    out[0] = f[0] - omega_plus * (f[0] - eq_rest) - (1.0 - 0.5 * omega_plus) * 3.0 * w[0] * u_force
    return out


def trt_pair_torch(
    f: torch.Tensor,
    table: torch.Tensor,
    c: torch.Tensor,
    w: torch.Tensor,
    opposite: torch.Tensor,
    omega_plus: float,
    omega_minus: float,
    force: torch.Tensor,
    chunk: int = 1 << 22,
) -> None:
    """The pair of steps of :func:`trt_pair_numba` with torch operations, on the tensors' device.

    ``f`` (19, n) float32 in place, ``table`` (18, n) int32 or int64, ``c`` float32 (19, 3), ``w`` float32
    (19,), ``opposite`` int64 (19,) in the order of :data:`physics.lattice.D3Q19`, ``force`` float32 (3,).
    ``chunk`` nodes are processed at a time to bound the temporaries (about 60 float32 values per node).
    """
    n = f.shape[1]
    flat = f.view(-1)
    rates = (omega_plus, omega_minus)
    write_rows = opposite[1:] - 1  # the write slot of q is the read slot of its opposite
    for start in range(0, n, chunk):  # even step
        stop = min(start + chunk, n)
        f[opposite, start:stop] = _collide_torch(f[:, start:stop], c, w, rates, force)
    for start in range(0, n, chunk):  # odd step
        stop = min(start + chunk, n)
        block = torch.empty((19, stop - start), dtype=f.dtype, device=f.device)  # (19, m)
        block[0] = f[0, start:stop]
        block[1:] = flat.index_select(0, table[:, start:stop].reshape(-1)).view(18, stop - start)
        new = _collide_torch(block, c, w, rates, force)
        f[0, start:stop] = new[0]
        flat.index_copy_(0, table[write_rows, start:stop].reshape(-1).long(), new[1:].reshape(-1))


def moments_torch(f: torch.Tensor, c: torch.Tensor, force: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Density ``rho`` (n,) and momentum ``rho u = sum f c + F/2`` (3, n), float64, after streaming."""
    f64 = f.double()
    return 1.0 + f64.sum(0), c.double().T @ f64 + 0.5 * force.double()[:, None]
