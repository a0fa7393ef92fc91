"""Reference microstructures: built-in synthetic volumes and files given by path.

A reference is named by a spec string: ``builtin:NAME`` for one of the synthetic volumes below, or the
path of an image or volume file (see :mod:`swnn.io`).

Built-in references are 128³ uint8 label volumes generated deterministically by this module (fixed seeds,
``numpy.random.Generator(PCG64(seed))``, numpy and scipy only), resembling the four material classes of the
SWNN paper; phase 1 is the phase of interest and its volume fraction is hit exactly (to one voxel) by
thresholding a continuous field at a quantile, except ``particles`` (within one particle, < 0.001).
The seeds of ``particles`` and ``sandstone`` were picked among a few so that the training section (the
central slice along axis 0) has nearly the volume's fraction (0.099 and 0.203).

- ``particles`` (phase 1 fraction 0.10): non-overlapping spheres of radius 4-7 voxels, added at random
  until the fraction is reached.
- ``sandstone`` (0.20): the pores between overlapping, randomly oriented faceted grains (a level set of
  the smallest polyhedral gauge over the grains); periodic.
- ``labyrinth`` (0.40): spinodal-like; white noise band-pass filtered around one wavelength (16 voxels);
  periodic.
- ``cellular`` (0.38): γ/γ′-like rounded cuboids (superellipsoids, exponent 8) on a jittered grid tilted
  a little off the axes; phase 1 is the channel network between them.
- ``three_phase`` (0.50/0.30/0.20, labels 0/1/2): two independent smoothed noise fields, for multi-phase
  work.

Generated volumes are cached as ``.npy`` files (see :func:`cache_dir`); a version tag in the file name
changes whenever a generator does, so an old cache is never read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swnn.io import atomic_write, read_microstructure

__all__ = [
    "BUILTIN_PREFIX",
    "REFERENCES",
    "BuiltinReference",
    "Reference",
    "builtin_realization",
    "builtin_volume",
    "cache_dir",
    "describe_references",
    "generate_builtin",
    "load_reference",
    "sections",
    "training_section",
]

BUILTIN_PREFIX = "builtin:"

_SIZE = 128
_SHAPE = (_SIZE, _SIZE, _SIZE)


@dataclass(frozen=True)
class BuiltinReference:
    """A synthetic reference volume this package can generate.

    Attributes
    ----------
    name : str
        The ``NAME`` of ``builtin:NAME``.
    description : str
        What it looks like, in a few words.
    fraction : float
        Nominal volume fraction of phase 1 (the phase of interest).
    shape : tuple of 3 int
        ``(Z, Y, X)`` of the generated volume.
    voxel_size : float or None
        Physical size of a voxel; None for these dimensionless synthetic volumes.
    n_phases : int
        Number of phases (labels ``0..n_phases-1``).
    """

    name: str
    description: str
    fraction: float
    shape: tuple[int, int, int]
    voxel_size: float | None = None
    n_phases: int = 2


@dataclass(frozen=True, eq=False)
class Reference:
    """A loaded reference microstructure.

    Attributes
    ----------
    name : str
        The spec it was loaded from (``builtin:NAME`` or a path).
    image : ndarray of shape (H, W), uint8
        The training image: the file's image, or the central section along axis 0 of a volume.
    images : tuple of ndarray of shape (H, W), uint8
        Every training section: ``(image,)`` for a 2D file and for a built-in reference (trained from one
        section, validated against the volume); the central sections along the three axes for a 3D file.
    volume : ndarray of shape (Z, Y, X), uint8, or None
        The 3D ground truth, when there is one.
    n_phases : int
        Number of phases (labels ``0..n_phases-1``).
    source : str
        The file path, or the built-in name.
    """

    name: str
    image: np.ndarray
    images: tuple[np.ndarray, ...]
    volume: np.ndarray | None
    n_phases: int
    source: str


# ---------------------------------------------------------------------------------------------------------
# Generators. Changing one (its output) requires bumping its version in _GENERATORS.
# ---------------------------------------------------------------------------------------------------------


def _generator(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _threshold_above(field: np.ndarray, fraction: float) -> np.ndarray:
    """Phase 1 where ``field`` lies above its ``1 - fraction`` quantile (uint8 labels)."""
    return (field > np.quantile(field, 1.0 - fraction)).astype(np.uint8)


def _particles(shape=_SHAPE, *, fraction=0.10, seed=1003) -> np.ndarray:
    """Non-overlapping spheres of radius U(4, 7), 1.5 voxels apart, added until the fraction is reached."""
    rng = _generator(seed)
    volume = np.zeros(shape, dtype=np.uint8)
    target = fraction * volume.size
    centres = np.empty((0, 3))
    radii = np.empty(0)
    filled = 0
    while filled < target:
        radius = rng.uniform(4.0, 7.0)
        centre = rng.uniform(0.0, 1.0, 3) * shape
        if np.any(np.linalg.norm(centres - centre, axis=1) < radii + radius + 1.5):
            continue
        centres = np.vstack([centres, centre])
        radii = np.append(radii, radius)
        low = np.maximum(np.floor(centre - radius).astype(int), 0)
        high = np.minimum(np.ceil(centre + radius).astype(int) + 1, shape)
        z, y, x = np.ogrid[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
        ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        volume[low[0] : high[0], low[1] : high[1], low[2] : high[2]][ball] = 1
        filled += int(ball.sum())  # balls are disjoint, so the count is exact
    return volume


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (from a random unit quaternion)."""
    quaternion = rng.standard_normal(4)
    w, x, y, z = quaternion / np.linalg.norm(quaternion)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _sandstone(shape=_SHAPE, *, fraction=0.20, seed=2006) -> np.ndarray:
    """Pores between angular grains.

    Grain centres are placed by random sequential addition (periodic distance at least 0.85 (r_i + r_j),
    radii U(7, 13)). Each grain is a randomly rotated polyhedron: the six cube faces plus three random
    facets, at distances U(0.75, 1.05) r. Its gauge ``max_j n_j·(x - c) / h_j`` is <= 1 inside; the pore
    space is where the smallest gauge over all grains exceeds its (1 - fraction) quantile, i.e. every
    grain is scaled by one common factor until the grains fill 1 - fraction of the volume.
    """
    rng = _generator(seed)
    size = np.asarray(shape, dtype=float)
    centres = np.empty((0, 3))
    radii = np.empty(0)
    for _ in range(4000):
        radius = rng.uniform(7.0, 13.0)
        centre = rng.uniform(0.0, 1.0, 3) * size
        offset = np.abs(centres - centre)
        offset = np.minimum(offset, size - offset)  # periodic distance
        if np.any(np.linalg.norm(offset, axis=1) < 0.85 * (radii + radius)):
            continue
        centres = np.vstack([centres, centre])
        radii = np.append(radii, radius)

    gauge_min = np.full(shape, np.inf, dtype=np.float32)
    cube_normals = np.vstack([np.eye(3), -np.eye(3)])
    # Half-width of the box evaluated around a grain, in radii; it must exceed the farthest corner at the
    # threshold level (sqrt(3) * 1.05 * level; the level comes out near 1.2 for these settings).
    reach = 2.6
    for centre, radius in zip(centres, radii, strict=True):
        normals = np.vstack([cube_normals, rng.standard_normal((3, 3))])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        normals = normals @ _random_rotation(rng).T
        distances = radius * rng.uniform(0.75, 1.05, len(normals))
        half = int(np.ceil(reach * radius))
        indices = [np.arange(int(c) - half, int(c) + half + 1) for c in centre]
        z, y, x = np.meshgrid(
            *[(i + 0.5 - c).astype(np.float32) for i, c in zip(indices, centre, strict=True)],
            indexing="ij",
            sparse=True,
        )
        gauge = None
        for normal, distance in zip(normals, distances, strict=True):
            facet = (normal[0] * z + normal[1] * y + normal[2] * x) / distance
            gauge = facet if gauge is None else np.maximum(gauge, facet)
        box = np.ix_(*[i % n for i, n in zip(indices, shape, strict=True)])  # periodic wrap
        gauge_min[box] = np.minimum(gauge_min[box], gauge)
    return _threshold_above(gauge_min, fraction)


def _labyrinth(shape=_SHAPE, *, fraction=0.40, seed=3003) -> np.ndarray:
    """Spinodal-like labyrinth: white noise filtered by a Gaussian shell around |k| = 8 per 128 voxels."""
    rng = _generator(seed)
    noise = rng.standard_normal(shape)
    k = [np.fft.fftfreq(n) * _SIZE for n in shape]  # cycles per 128 voxels
    k_norm = np.sqrt(k[0][:, None, None] ** 2 + k[1][None, :, None] ** 2 + k[2][None, None, :] ** 2)
    k0, width = 8.0, 0.3
    shell = np.exp(-0.5 * ((k_norm - k0) / (width * k0)) ** 2)
    field = np.fft.ifftn(np.fft.fftn(noise) * shell).real
    return _threshold_above(field, fraction)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    """Rotation by ``degrees`` in the plane of the two axes other than ``axis`` (coordinates (z, y, x))."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = (a for a in range(3) if a != axis)
    rotation = np.eye(3)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    return rotation


def _cellular(shape=_SHAPE, *, fraction=0.38, seed=4004) -> np.ndarray:
    """γ/γ′-like blocks: rounded cuboids on a jittered, slightly tilted grid; phase 1 = the channels.

    Along each grid axis the cells have widths U(15, 21); each cell holds a superellipsoid
    ``sum_i |u_i - c_i|^8 / h_i^8`` with its centre jittered by U(-1, 1) and its half-widths scaled by
    U(0.85, 1) per axis. The channels are where that field exceeds its (1 - fraction) quantile.

    The grid is tilted by 12° and 9° about two axes (as in a section cut off the <100> directions), so that
    every axis-aligned section meets blocks and channels in the volume's proportions: with an aligned grid,
    a section is either all channel or mostly blocks (area fraction 0.26 instead of 0.38 at the centre).
    """
    rng = _generator(seed)
    centred = [np.arange(n) + 0.5 - n / 2 for n in shape]
    coordinates = np.stack(np.meshgrid(*centred, indexing="ij"))  # (3, Z, Y, X)
    rotation = _rotation(2, 12.0) @ _rotation(1, 9.0)
    coordinates = np.einsum("ij,j...->i...", rotation, coordinates)  # grid coordinates u, (3, Z, Y, X)
    low, high = coordinates.min() - 1.0, coordinates.max() + 1.0
    bounds, cells = [], []
    for axis in range(3):
        edges = [low]
        while edges[-1] < high:
            edges.append(edges[-1] + rng.uniform(15.0, 21.0))
        edges = np.asarray(edges)
        bounds.append(edges)
        cells.append(np.searchsorted(edges, coordinates[axis], side="right") - 1)  # (Z, Y, X)
    n_cells = tuple(len(edges) - 1 for edges in bounds)
    jitter = rng.uniform(-1.0, 1.0, (*n_cells, 3))
    scale = rng.uniform(0.85, 1.0, (*n_cells, 3))
    cell = tuple(cells)
    field = np.zeros(shape, dtype=np.float64)
    for axis in range(3):
        edges, index = bounds[axis], cells[axis]
        centre = 0.5 * (edges[index] + edges[index + 1]) + jitter[cell + (axis,)]
        half = 0.5 * (edges[index + 1] - edges[index]) * scale[cell + (axis,)]
        field += (np.abs(coordinates[axis] - centre) / half) ** 8
    return _threshold_above(field, fraction)


def _three_phase(shape=_SHAPE, *, fractions=(0.5, 0.3, 0.2), seed=5005) -> np.ndarray:
    """Labels 0/1/2: phase 2 = top of one smoothed noise field, phase 1 = top of another elsewhere."""
    from scipy import ndimage

    rng = _generator(seed)
    first = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0, mode="wrap")
    second = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0, mode="wrap")
    volume = _threshold_above(first, fractions[2]) * np.uint8(2)
    rest = volume == 0
    share = fractions[1] / (1.0 - fractions[2])  # phase 1's share of the voxels that are not phase 2
    cut = np.quantile(second[rest], 1.0 - share)
    volume[rest & (second > cut)] = 1
    return volume


REFERENCES: dict[str, BuiltinReference] = {
    reference.name: reference
    for reference in (
        BuiltinReference("particles", "sparse round particles", 0.10, _SHAPE),
        BuiltinReference("sandstone", "angular sandstone-like pores", 0.20, _SHAPE),
        BuiltinReference("labyrinth", "spinodal-like labyrinth", 0.40, _SHAPE),
        BuiltinReference("cellular", "blocky cellular network (γ/γ′-like channels)", 0.38, _SHAPE),
        BuiltinReference("three_phase", "three phases 0.50/0.30/0.20", 0.30, _SHAPE, n_phases=3),
    )
}
"""The built-in references, by name."""

# name -> (generator, version). Bump the version when a generator's output changes: it names the cache file.
_GENERATORS: dict[str, tuple[Callable[[], np.ndarray], int]] = {
    "particles": (_particles, 1),
    "sandstone": (_sandstone, 1),
    "labyrinth": (_labyrinth, 1),
    "cellular": (_cellular, 1),
    "three_phase": (_three_phase, 1),
}


def _builtin(name: str) -> BuiltinReference:
    try:
        return REFERENCES[name]
    except KeyError:
        raise ValueError(f"unknown built-in reference {name!r}; available: {', '.join(REFERENCES)}") from None


def generate_builtin(name: str) -> np.ndarray:
    """Generate a built-in reference volume, bypassing the cache.

    Returns
    -------
    volume : ndarray of shape (Z, Y, X), uint8
        Labels ``0..n_phases-1``; identical on every call.
    """
    reference = _builtin(name)
    generator, _ = _GENERATORS[name]
    volume = generator()
    assert volume.shape == reference.shape and volume.dtype == np.uint8
    return volume


def builtin_realization(name: str, *, seed: int, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """Another realization of a built-in reference's random process: same generator, another seed.

    The built-in volume is one draw of a stationary random structure; further draws are its ground truth's
    spread (sub-volumes of them are independent of the training volume). Not cached.

    Parameters
    ----------
    name : str
        One of :data:`REFERENCES` (without the ``builtin:`` prefix).
    seed : int
        Seed of the draw; the built-in volume's own seed gives the built-in volume (at its shape).
    shape : tuple of 3 int, optional
        ``(Z, Y, X)``; the built-in's shape by default. The phase fractions are hit exactly over the whole
        draw (except ``particles``), so cut sub-volumes from a draw larger than them to see their spread.

    Returns
    -------
    volume : ndarray of shape (Z, Y, X), uint8
    """
    reference = _builtin(name)
    generator, _ = _GENERATORS[name]
    shape = reference.shape if shape is None else tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be three sides of at least 8 voxels, got {shape}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return generator(shape, seed=int(seed))


# ---------------------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Folder of cached built-in volumes.

    ``$SWNN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/swnn``, else ``~/.cache/swnn``. Not created here.
    """
    explicit = os.environ.get("SWNN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "swnn"


def _cache_path(name: str) -> Path:
    reference = REFERENCES[name]
    _, version = _GENERATORS[name]
    size = "x".join(str(n) for n in reference.shape)
    return cache_dir() / f"builtin-{name}-v{version}-{size}.npy"


def _load_cached(path: Path, reference: BuiltinReference) -> np.ndarray | None:
    """The cached volume, or None when it is missing or unreadable/corrupted."""
    try:
        volume = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if (
        not isinstance(volume, np.ndarray)
        or volume.shape != reference.shape
        or volume.dtype != np.uint8
        or int(volume.max()) >= reference.n_phases
    ):
        return None
    return volume


def builtin_volume(name: str) -> np.ndarray:
    """A built-in reference volume, generated once and then read from the cache.

    Parameters
    ----------
    name : str
        One of :data:`REFERENCES` (without the ``builtin:`` prefix).

    Returns
    -------
    volume : ndarray of shape (Z, Y, X), uint8
        Labels ``0..n_phases-1`` (phase 1 is the phase of interest). A fresh array on every call.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the available names.

    Notes
    -----
    The cache file is written atomically, so concurrent processes at worst generate the volume twice. A
    corrupted cache file is regenerated. If the cache folder cannot be written, a warning is issued and the
    generated volume is returned uncached.
    """
    reference = _builtin(name)
    path = _cache_path(name)
    volume = _load_cached(path, reference)
    if volume is not None:
        return volume
    volume = generate_builtin(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, force=True) as temporary:
            np.save(temporary, volume, allow_pickle=False)
    except OSError as error:
        warnings.warn(
            f"could not cache builtin:{name} at {path} ({error}); set SWNN_CACHE_DIR to a writable folder",
            RuntimeWarning,
            stacklevel=2,
        )
    return volume


# ---------------------------------------------------------------------------------------------------------
# Sections and loading
# ---------------------------------------------------------------------------------------------------------


def _check_volume(volume) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must have shape (Z, Y, X), got shape {volume.shape}")
    return volume


def training_section(volume) -> np.ndarray:
    """The central section along axis 0, ``volume[Z // 2]``.

    Parameters
    ----------
    volume : ndarray of shape (Z, Y, X)

    Returns
    -------
    image : ndarray of shape (Y, X)
        A contiguous copy.
    """
    volume = _check_volume(volume)
    return np.ascontiguousarray(volume[volume.shape[0] // 2])


def sections(volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The central sections along the three axes.

    Parameters
    ----------
    volume : ndarray of shape (Z, Y, X)

    Returns
    -------
    sections : tuple of ndarray
        ``volume[Z//2]`` of shape (Y, X), ``volume[:, Y//2]`` of shape (Z, X) and ``volume[:, :, X//2]`` of
        shape (Z, Y), as contiguous copies.
    """
    volume = _check_volume(volume)
    z, y, x = (n // 2 for n in volume.shape)
    return tuple(np.ascontiguousarray(s) for s in (volume[z], volume[:, y], volume[:, :, x]))


def load_reference(spec: str, *, threshold: float | None = None, shape=None, dtype=None) -> Reference:
    """Load a reference microstructure from a spec.

    Parameters
    ----------
    spec : str or Path
        ``builtin:NAME`` (see :func:`describe_references`), or the path of a 2D image (PNG, BMP, TIFF,
        NPY) or a 3D volume (TIFF stack, NPY, RAW, zarr).
    threshold : float, optional
        Segment a grey-scale file: values ``> threshold`` become phase 1.
    shape : tuple of int, optional
        Shape of a RAW file, ``(H, W)`` or ``(Z, Y, X)``.
    dtype : str or numpy dtype, optional
        Voxel type of a RAW file.

    Returns
    -------
    reference : Reference
        For ``builtin:NAME``: the built-in volume and its central axis-0 section as the training image.
        For a 2D file: the image alone. For a 3D file: the volume, its three central sections as
        ``images`` and the axis-0 one as ``image``.

    Raises
    ------
    ValueError
        For an unknown built-in name (the message lists the available ones), for file options given with a
        built-in, or for a file that is not a segmented 2D/3D microstructure with at least two phases.
    FileNotFoundError
        If the path does not exist.
    """
    spec = os.fspath(spec)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        reference = _builtin(name)
        if threshold is not None or shape is not None or dtype is not None:
            raise ValueError(f"{spec}: threshold, shape and dtype apply to files, not to built-in references")
        volume = builtin_volume(name)
        image = training_section(volume)
        return Reference(spec, image, (image,), volume, reference.n_phases, name)

    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"{spec}: no such file or directory; a reference is a file path or builtin:NAME with NAME one "
            f"of {', '.join(REFERENCES)}"
        )
    labels = read_microstructure(path, threshold=threshold, shape=shape, dtype=dtype)
    n_phases = int(labels.max()) + 1  # to_labels numbers the phases 0..n-1
    if labels.ndim == 2:
        return Reference(spec, labels, (labels,), None, n_phases, spec)
    images = sections(labels)
    return Reference(spec, images[0], images, labels, n_phases, spec)


def describe_references() -> list[str]:
    """One line per built-in reference, its name first.

    Examples
    --------
    >>> describe_references()[0]
    'particles    sparse round particles, phase 1 fraction 0.10, 128³'
    """
    width = max(len(name) for name in REFERENCES) + 2
    lines = []
    for name, reference in REFERENCES.items():
        z, y, x = reference.shape
        size = f"{z}³" if z == y == x else f"{z}x{y}x{x}"
        lines.append(
            f"{name:<{width}}{reference.description}, phase 1 fraction {reference.fraction:.2f}, {size}"
        )
    return lines
