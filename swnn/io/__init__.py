"""Reading and writing microstructures.

Label convention, the same everywhere in swnn: an image of small integer labels or of a few grey levels is
mapped to phases ``0..n-1`` in ascending grey order, and volumes hold ``uint8`` labels ``0..n-1`` (not
0/255). :func:`to_labels` implements the mapping; every reader applies it.

Readers
    :func:`read_image` (PNG, BMP, TIFF page, NPY), :func:`read_volume` (TIFF stack, NPY, RAW, zarr) and
    :func:`read_microstructure` (either, depending on the file). Each also reads a ``.zip`` archive holding
    exactly one such file (as data sets are often distributed), in memory, without unpacking it.
Writers
    :class:`VolumeWriter` streams a large volume block by block into ``.npy``, ``.tif``/``.tiff``,
    ``.zarr`` or ``.raw``; :func:`write_volume` writes a whole array; :func:`write_png` writes a 2D label
    slice scaled for viewing. Every writer puts its output under a temporary name in the destination folder
    and renames it into place on success (:func:`atomic_write`), so a failure leaves no half-written file.
    Volumes carry their provenance (seed, model hash, version, voxel size...) in a JSON sidecar
    ``<path>.json`` and, where the format allows, inside the file (zarr attributes, TIFF ImageDescription).

tifffile, zarr and Pillow are imported inside the functions that need them so that importing this module
(and starting the CLI) stays cheap.
"""

from .labels import to_labels
from .output import atomic_write, check_destination, check_folder, sidecar_path
from .read import (
    IMAGE_SUFFIXES,
    VOLUME_SUFFIXES,
    read_field,
    read_image,
    read_microstructure,
    read_volume,
)
from .write import WRITE_SUFFIXES, VolumeWriter, write_png, write_volume

__all__ = [
    "IMAGE_SUFFIXES",
    "VOLUME_SUFFIXES",
    "WRITE_SUFFIXES",
    "VolumeWriter",
    "atomic_write",
    "check_destination",
    "check_folder",
    "read_field",
    "read_image",
    "read_microstructure",
    "read_volume",
    "sidecar_path",
    "to_labels",
    "write_png",
    "write_volume",
]
