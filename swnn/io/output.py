"""Atomic output: destinations checked before any work, files written under a temporary name and renamed
into place on success, provenance sidecars."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write", "check_destination", "check_folder", "sidecar_path"]


def sidecar_path(path) -> Path:
    """The provenance sidecar of an output: ``<path>.json`` (``vol.npy`` -> ``vol.npy.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_folder(folder: str | os.PathLike) -> None:
    """Check that files can be written in ``folder``, before any work is done.

    Raises
    ------
    FileNotFoundError
        When ``folder`` does not exist.
    NotADirectoryError
        When it is a file.
    PermissionError
        When a file cannot be created in it (probed with a temporary file, removed at once).
    """
    import tempfile

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"the folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".swnn-probe-"):
            pass
    except OSError as error:
        raise PermissionError(f"the folder {folder} is not writable ({error.strerror})") from None


def check_destination(path: str | os.PathLike, *, force: bool = False) -> None:
    """Check, before any work, that ``path`` can be written: its folder exists and is writable, and the
    path is free (or ``force``).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, PermissionError
        From :func:`check_folder`, with ``path`` named.
    FileExistsError
        When ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    try:
        check_folder(path.parent)
    except OSError as error:
        raise type(error)(f"{path}: {error}") from None
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass force=True to overwrite")


def _temporary_name(path: Path) -> Path:
    # Hidden, in the same folder (so the rename is atomic), keeping the suffix (writers infer the format).
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _commit(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` onto ``path``, replacing what is there (file or directory)."""
    if not temporary.exists():
        raise RuntimeError(f"{path}: nothing was written to the temporary {temporary}")
    if path.exists() and (path.is_dir() or temporary.is_dir()):
        # os.replace cannot replace a non-empty directory: move the old one aside first.
        old = _temporary_name(path)
        os.replace(path, old)
        try:
            os.replace(temporary, path)
        except BaseException:
            os.replace(old, path)
            raise
        _remove(old)
    else:
        os.replace(temporary, path)


@contextlib.contextmanager
def atomic_write(path, *, force: bool = False) -> Iterator[Path]:
    """Write ``path`` through a temporary name in the same folder, renamed into place on success.

    The caller creates a file or a directory at the yielded temporary path. On normal exit it is renamed
    to ``path`` (``os.replace``; an existing directory is moved aside and removed); if the block raises,
    the temporary is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The final output.
    force : bool, optional
        Replace an existing ``path``; without it an existing ``path`` is an error.

    Yields
    ------
    temporary : Path
        A not-yet-existing path in ``path``'s folder with the same extension.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``force`` is False.
    FileNotFoundError, NotADirectoryError, PermissionError
        If ``path``'s folder does not exist, is a file, or cannot be written (:func:`check_destination`).

    Examples
    --------
    >>> with atomic_write("model.pt", force=True) as tmp:  # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    check_destination(path, force=force)
    temporary = _temporary_name(path)
    try:
        yield temporary
        _commit(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def _jsonable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-round-tripped copy of ``metadata`` (numpy scalars/arrays, tensors, tuples, paths converted)."""

    def default(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray) or hasattr(value, "tolist"):  # numpy arrays, torch tensors
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"metadata value {value!r} of type {type(value).__name__} is not JSON-serialisable")

    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    return json.loads(json.dumps(dict(metadata), default=default))
