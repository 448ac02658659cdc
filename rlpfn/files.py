"""Writing result files: whole or not at all."""
from __future__ import annotations

import json
import os
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
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{option} {path}: directory {path.parent} is not writable")
    return path


def write_json(path, doc, indent: int | None = None) -> None:
    """Write `doc` as JSON to `path` through a temporary file and a rename, so an interrupted or
    failed write never leaves a partial file under `path`."""
    path = check_output_file(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=indent) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
