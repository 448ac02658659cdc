"""Files shipped inside the package (rlpfn/data/), found through importlib.resources so that they are there
wherever rlpfn is installed: the prior specs, the pretraining configs, the shipped checkpoint, tuned.json."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import DataFileError


def data_dir(kind: str) -> Path:
    """rlpfn/data/KIND (priors, configs, checkpoints) as a directory on disk."""
    path = Path(str(files("rlpfn").joinpath("data", kind)))
    if not path.is_dir():
        raise DataFileError(f"rlpfn's data folder {path} is missing: the package is installed incompletely")
    return path


def data_file(*parts: str) -> Path:
    """A shipped file, e.g. data_file("tuned.json"); its absence is an error, never a silent fallback."""
    path = Path(str(files("rlpfn").joinpath("data", *parts)))
    if not path.is_file():
        raise DataFileError(f"rlpfn's data file {path} is missing: the package is installed incompletely")
    return path


def builtin_names(kind: str, suffix: str = ".yaml") -> list[str]:
    """Names of the shipped files of a kind: builtin_names("priors") -> ["default", "heldout", "tiny"]."""
    return sorted(p.name[: -len(suffix)] for p in data_dir(kind).glob(f"*{suffix}"))


def named_or_path(kind: str, arg: str | Path) -> Path:
    """What a spec or config argument names: an existing path, or else a built-in name ("default" ->
    rlpfn/data/priors/default.yaml). The path is returned as given when neither exists (the caller's
    loader then names it in its error)."""
    path = Path(arg)
    if path.exists() or path.suffix:
        return path
    builtin = data_dir(kind) / f"{arg}.yaml"
    return builtin if builtin.is_file() else path
