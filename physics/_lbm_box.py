"""The periodic box the lattice-Boltzmann run of :func:`physics.permeability.permeability` simulates, and the
pore clusters in it that carry flow along an axis."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .lattice import D3Q19

__all__ = ["simulation_box", "spanning_pores"]


def simulation_box(
    pore: np.ndarray, axis: int, boundary: str, buffer_layers: int
) -> tuple[np.ndarray, slice]:
    """Pore indicator of the periodic box that is simulated, and the slice along ``axis`` holding the sample."""
    length = pore.shape[axis]
    if boundary == "periodic":
        return pore, slice(0, length)
    if boundary == "mirror":
        return np.concatenate([pore, np.flip(pore, axis=axis)], axis=axis), slice(0, length)
    layer_shape = list(pore.shape)
    layer_shape[axis] = buffer_layers
    layer = np.ones(layer_shape, dtype=bool)
    return np.concatenate([layer, pore, layer], axis=axis), slice(buffer_layers, buffer_layers + length)


def _cross_boundary_links(labels: np.ndarray) -> np.ndarray:
    """Lattice links that leave the periodic box: rows (label, label, shift_z, shift_y, shift_x).

    A row says that the cluster ``label[0]`` touches the copy of ``label[1]`` in the neighbouring periodic
    image at ``shift`` (in box lengths).
    """
    shape = np.array(labels.shape)
    rows = []
    for q in range(1, 10):  # one of each pair of opposite directions covers every link once (or more)
        c = D3Q19.c[q]
        for i in np.flatnonzero(c):
            face = [slice(None)] * 3
            face[i] = slice(shape[i] - 1, shape[i]) if c[i] > 0 else slice(0, 1)
            face_labels = labels[tuple(face)]
            local = np.nonzero(face_labels)
            source = [local[d] + (face[d].start if d == i else 0) for d in range(3)]
            target = [source[d] + c[d] for d in range(3)]
            shift = [np.floor_divide(target[d], shape[d]) for d in range(3)]
            target_labels = labels[tuple(target[d] % shape[d] for d in range(3))]
            keep = target_labels > 0
            rows.append(np.stack([face_labels[local], target_labels, *shift], axis=1)[keep].astype(np.int64))
    if not rows:
        return np.zeros((0, 5), dtype=np.int64)
    return np.unique(np.concatenate(rows), axis=0)


def spanning_pores(pore: np.ndarray, axis: int) -> np.ndarray:
    """Pore voxels on clusters that wind around the periodic box along ``axis`` (bool, same shape).

    Clusters are 18-connected (the D3Q19 links). A union–find over the links that cross the box faces keeps,
    for each label, its offset in box lengths from its root; a link between two labels of one root whose
    offsets disagree closes a loop that winds around the box by that difference.
    """
    labels, count = ndimage.label(pore, structure=ndimage.generate_binary_structure(3, 2))
    parent: dict[int, int] = {}
    offset: dict[int, np.ndarray] = {}  # position of a label relative to its parent, in box lengths
    winds: dict[int, bool] = {}  # per root: a loop winds along ``axis``

    def find(label: int) -> tuple[int, np.ndarray]:
        path = []
        while parent.setdefault(label, label) != label:
            path.append(label)
            label = parent[label]
        total = np.zeros(3, dtype=np.int64)
        for node in reversed(path):  # path compression, offsets made relative to the root
            total = total + offset[node]
            offset[node] = total
            parent[node] = label
        return label, (offset[path[0]] if path else np.zeros(3, dtype=np.int64))

    for first, second, *shift in _cross_boundary_links(labels).tolist():
        root1, off1 = find(first)
        root2, off2 = find(second)
        mismatch = off1 + np.asarray(shift) - off2
        if root1 == root2:
            if mismatch[axis] != 0:
                winds[root1] = True
        else:
            parent[root2] = root1
            offset[root2] = mismatch
            winds[root1] = winds.get(root1, False) or winds.pop(root2, False)

    spanning = np.zeros(count + 1, dtype=bool)
    for label in list(parent):
        if winds.get(find(label)[0], False):
            spanning[label] = True
    return spanning[labels]
