"""Writing result files: probed before the work, written whole or not at all."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


class OutputError(UserError):
    """An output path that cannot be written: its folder is missing or read-only, or it is a folder."""


def check_output_file(path, option: str = "output") -> Path:
    """Probe an output file before any work: its folder must exist and be writable, and it must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory, not a file")
    if not path.parent.is_dir():
        raise OutputError(f"{option} {path}: directory {path.parent} does not exist")
    _probe(path.parent, option, path)
    return path


def _probe(folder: Path, option: str, path: Path) -> None:
    """Create and remove a file in `folder`: the one test of writability that holds for root and read-only
    file systems alike."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rlpfn-probe-"):
            pass
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write in {folder} ({e.strerror or e})") from None


def check_output_dir(path, option: str = "--out") -> Path:
    """Probe an output folder before any work: it is a folder or does not exist yet, and it (or the nearest
    folder above it that exists) is writable. Nothing is created here."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: exists and is not a directory")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{option} {path}: {existing} is not a directory")
    _probe(existing, option, path)
    return path


@contextmanager
def atomic(path):
    """Write through a temporary file next to `path`, renamed to `path` only when the block succeeds:
    `with atomic(p) as tmp: np.save(tmp, ...)`. An interrupted or failed write leaves no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path, dpi: int = 110) -> None:
    with atomic(path) as tmp:
        fig.savefig(tmp, dpi=dpi)


def write_json(path, doc, indent: int | None = None) -> None:
    """Write `doc` as JSON to `path` through a temporary file and a rename, so an interrupted or
    failed write never leaves a partial file under `path`."""
    write_text(check_output_file(path), json.dumps(doc, indent=indent) + "\n")


def write_npz(path, **arrays) -> None:
    """np.savez through a temporary file in the same folder and a rename: never a partial file under `path`."""
    import numpy as np

    with atomic(check_output_file(path)) as tmp, open(tmp, "wb") as f:  # a file object: no ".npz" appended
        np.savez(f, **arrays)
