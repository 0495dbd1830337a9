"""Content-addressed storage under ``DATA_DIR/<business>/<kind>/``: the same bytes are stored once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def store_blob(data_dir: Path, business_id: int, kind: str, data: bytes, suffix: str = "") -> tuple[str, str]:
    """Write ``data`` (if not already there) and return (path relative to DATA_DIR, sha256 hex)."""
    digest = hashlib.sha256(data).hexdigest()
    relpath = f"{business_id}/{kind}/{digest[:2]}/{digest}{suffix}"
    store_file(data_dir, relpath, data)
    return relpath, digest


def store_file(data_dir: Path, relpath: str, data: bytes) -> bool:
    """Write ``data`` at ``relpath`` unless a file is there already; True when this call wrote it."""
    target = Path(data_dir) / relpath
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)  # atomic: a reader never sees half a file
    return True


def absolute_path(data_dir: Path, business_id: int, relpath: str) -> Path | None:
    """The file for ``relpath`` if it lies inside the business's own folder and exists."""
    root = (Path(data_dir) / str(business_id)).resolve()
    path = (Path(data_dir) / relpath).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
