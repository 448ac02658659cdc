"""Writing result files: whole or not at all."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path, doc, indent: int | None = None) -> None:
    """Write `doc` as JSON to `path` through a temporary file and a rename, so an interrupted or
    failed write never leaves a partial file under `path`."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=indent) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
