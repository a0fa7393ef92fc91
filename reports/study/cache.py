"""The cache of a study: finished items under ``DIR/cache/<kind>/<key>``, keyed by a hash of their settings.

A key hashes the item's settings, :data:`_CACHE_SCHEMA` and, for computed items, a code tag
(:func:`_code_tag`): the hash of the sources the result depends on, so that an edited solver, trainer or
generator recomputes what it made.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .settings import _jsonable

_CACHE_SCHEMA = 1
"""Part of every cache key: bump when what an item stores changes, so old items are not read."""


def _key(kind: str, payload: Mapping) -> str:
    """24 hex digits of the SHA-256 of ``kind``, the schema and ``payload`` (as sorted JSON)."""
    blob = json.dumps({"kind": kind, "schema": _CACHE_SCHEMA, **_jsonable(payload)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


_FRONT_ENDS = frozenset({"cli.py", "cli_args.py", "__main__.py"})
"""Source files left out of a code tag: they parse arguments and print, and change no result."""


def _code_tag(module) -> str:
    """Hash of the sources ``module``'s results depend on: every ``.py`` file of its top-level package.

    A solver of :mod:`physics` is tagged with all of ``physics/*.py`` (validation, lattice and kernels
    included); training and generation with all of ``swnn/*.py`` but its command-line front end
    (:data:`_FRONT_ENDS`), which computes nothing. Editing any of those files changes the tag, and so the keys
    of the items computed with it. ``"unknown"`` when the sources cannot be read.
    """
    try:
        top = importlib.import_module(module.__name__.partition(".")[0])
        if hasattr(top, "__path__"):  # a package: all of its sources
            folder = Path(top.__file__).parent
            files = sorted(p for p in folder.rglob("*.py") if p.name not in _FRONT_ENDS)
        else:
            folder = Path(top.__file__).parent
            files = [Path(top.__file__)]
        digest = hashlib.sha256()
        for path in files:
            source = path.read_bytes()
            digest.update(f"{path.relative_to(folder).as_posix()}:{len(source)}:".encode())
            digest.update(source)
        return digest.hexdigest()[:16]
    except (OSError, TypeError, AttributeError):
        return "unknown"


class _Cache:
    """``DIR/cache/<kind>/<key>.json`` records (written last: an item is finished when its record exists)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, kind: str, key: str, suffix: str) -> Path:
        """Where item ``key`` of ``kind`` stores the file ending in ``suffix`` (its folder is made on writing)."""
        return self.root / kind / f"{key}{suffix}"

    def get(self, kind: str, key: str) -> dict | None:
        """The record of a finished item; None when missing or unreadable (the item is then redone)."""
        path = self.path(kind, key, ".json")
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, kind: str, key: str, record: Mapping) -> dict:
        """Write the record of a finished item (atomically); returns it as stored, with its ``key``."""
        from swnn.io import atomic_write

        record = _jsonable(dict(record, key=key))
        path = self.path(kind, key, ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, force=True) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
        return record


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to a compressed ``.npz`` atomically (its folder made if missing)."""
    from swnn.io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
