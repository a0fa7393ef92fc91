"""The mirror box of :func:`physics.permeability.permeability` simulated on the sample alone.

With ``boundary="mirror"`` the periodic box is the sample followed by its mirror image along the flow axis.
Stokes flow driven by a body force along that axis is symmetric in it: reflected, the force changes sign,
and the flow of the reflected force is the negated flow. Every population of the mirror half is therefore
that of the sample's node it images, in the reflected direction, negated (stored as ``f − w``):

    f_q(image of x) − w_q = −(f_Rq(x) − w_q)        (R: the direction with its flow component reversed)

The run keeps only the sample's nodes and one layer of ghost nodes beyond each face along the flow, where the
mirror half would touch it. After the even step of a pair, each ghost's slots are filled from the node it
images (reflected, negated); after the odd step, what the sample's nodes streamed into the ghosts is folded
back into the imaged nodes, where the mirror half would have streamed it. The ghosts are never collided.
This halves the nodes, the memory and the time of a mirror run; the populations are those of the full mirror
box up to the terms of order u² of the equilibrium, which are not antisymmetric (relative size of order the
Mach number, below 1e-3 at the default force), and the float32 round-off of a different summation order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lattice import D3Q19

__all__ = ["MirrorNodes", "mirror_nodes"]


@dataclass(frozen=True)
class MirrorNodes:
    """Node numbering of the sample with ghost layers along the flow, and the ghosts' copy lists.

    Attributes
    ----------
    node_of : ndarray of int32 or int64
        The sample's shape with 2 more layers along the flow axis (ghosts first and last): the node number
        of each voxel, -1 for solid. Sample nodes are numbered first, in C order of the sample.
    active : int
        Number of sample nodes (collided and observed); the ghosts follow them.
    total : int
        Sample and ghost nodes.
    fill_source, fill_target, fold_source, fold_target : ndarray of int64
        Flat indices into ``f`` (19, total): after the even step ``f[fill_target] = −f[fill_source]``, after
        the odd step ``f[fold_target] = −f[fold_source]``.
    """

    node_of: np.ndarray
    active: int
    total: int
    fill_source: np.ndarray
    fill_target: np.ndarray
    fold_source: np.ndarray
    fold_target: np.ndarray


def _layer(axis: int, index) -> tuple:
    where = [slice(None)] * 3
    where[axis] = index
    return tuple(where)


def mirror_nodes(flowing: np.ndarray, axis: int) -> MirrorNodes:
    """Numbering, ghosts and copy lists for the flowing nodes ``flowing`` of a sample in its mirror box.

    ``flowing`` is the sample's part of the mirror box's flowing nodes (those on clusters that span it).
    """
    length = flowing.shape[axis]
    active = int(np.count_nonzero(flowing))
    low, high = flowing[_layer(axis, 0)], flowing[_layer(axis, length - 1)]
    n_low, n_high = int(np.count_nonzero(low)), int(np.count_nonzero(high))
    total = active + n_low + n_high
    dtype = np.int32 if total < 2**31 else np.int64
    shape = list(flowing.shape)
    shape[axis] += 2
    node_of = np.full(shape, -1, dtype=dtype)
    node_of[_layer(axis, slice(1, length + 1))][flowing] = np.arange(active, dtype=dtype)
    node_of[_layer(axis, 0)][low] = np.arange(active, active + n_low, dtype=dtype)
    node_of[_layer(axis, length + 1)][high] = np.arange(active + n_low, total, dtype=dtype)

    reflect = _reflection(axis)
    fill_source, fill_target, fold_source, fold_target = [], [], [], []
    for ghost_layer, own_layer, inward in ((0, 1, 1), (length + 1, length, -1)):
        ghosts = node_of[_layer(axis, ghost_layer)]
        owners = node_of[_layer(axis, own_layer)]
        present = ghosts >= 0
        ghost, owner = ghosts[present].astype(np.int64), owners[present].astype(np.int64)
        for q in range(1, D3Q19.q):
            # the ghost's slot q holds what its image's node holds in slot R(q), negated
            fill_target.append(q * total + ghost)
            fill_source.append(reflect[q] * total + owner)
            c = D3Q19.c[q]
            if c[axis] != -inward:
                continue
            # q points from the sample into the ghost layer: a sample node at ghost - c_q streamed into the
            # ghost's slot q, and the mirror half's image of it streams into the owner's slot R(q)
            emitter = np.roll(owners, shift=tuple(int(v) for i, v in enumerate(c) if i != axis), axis=(0, 1))
            keep = present & (emitter >= 0)
            fold_source.append(q * total + ghosts[keep].astype(np.int64))
            fold_target.append(reflect[q] * total + owners[keep].astype(np.int64))
    lists = (fill_source, fill_target, fold_source, fold_target)
    return MirrorNodes(node_of, active, total, *(np.concatenate([np.zeros(0, np.int64), *v]) for v in lists))


def _reflection(axis: int) -> np.ndarray:
    """Direction index with the ``axis`` component of its velocity reversed, for every direction."""
    index = {tuple(int(v) for v in c): q for q, c in enumerate(D3Q19.c)}
    reflected = D3Q19.c.copy()
    reflected[:, axis] *= -1
    return np.array([index[tuple(int(v) for v in c)] for c in reflected], dtype=np.int64)
