"""The model file format: weights as safetensors plus a JSON config beside them, never pickle.

`NAME.safetensors` holds the tensors; `NAME.json` holds the format version, the package version, the
architecture ("rlpfn", or "ad" for an Algorithm Distillation model; absent in files older than AD: "rlpfn"), the
model config, the prior spec it was trained on, the training config and steps, and the SHA-256 of the
weights file. Loading checks every one of those and refuses a corrupt, truncated or mismatched file with
a one-line `CheckpointError` naming the file. `load()` with no argument loads the shipped model.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch


from . import __version__
from .config import build
from .errors import UserError
from .files import atomic, write_text
from .model import RLPFN, ModelConfig
from .resources import data_dir

FORMAT = "rlpfn-checkpoint"
FORMAT_VERSION = 1
DEFAULT_NAME = "rlpfn-v2"
SHIPPED = {"rlpfn": DEFAULT_NAME, "ad": "ad-v1"}  # the model each architecture's agent loads by default


def architectures() -> dict:
    """architecture name -> (model class, config class)."""
    from .ad.model import ADConfig, ADModel

    return {"rlpfn": (RLPFN, ModelConfig), "ad": (ADModel, ADConfig)}


class CheckpointError(UserError):
    pass


def _paths(path: str | Path) -> tuple[Path, Path]:
    """Accept NAME, NAME.json or NAME.safetensors; return (weights, config)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def _located(path: str | Path) -> tuple[Path, Path]:
    """_paths for reading: a bare name with no such checkpoint here that names a shipped one (rlpfn-v2, rlpfn-v1,
    ad-v1) is that one, so older models stay loadable by name. Never used to write: save writes where it is told."""
    weights, config = _paths(path)
    if len(config.parts) == 1 and not config.exists() and (data_dir("checkpoints") / config.name).exists():
        return _paths(data_dir("checkpoints") / config.name)
    return weights, config


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(model, path: str | Path, prior: dict, training: dict) -> Path:
    """Write NAME.safetensors and NAME.json (weights first, config last: a config names a complete file)."""
    from safetensors.torch import save_file

    weights, config = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "rlpfn_version": __version__,
            "architecture": model.architecture, "model": model.cfg.to_dict(), "prior": prior, "training": training,
            "weights": weights.name, "sha256": _sha256(weights), "n_parameters": model.n_parameters()}
    write_text(config, json.dumps(meta, indent=2) + "\n")
    return config


def read_config(path: str | Path, architecture: str | None = None) -> dict:
    """The checked JSON config; with `architecture`, a checkpoint of another kind is refused."""
    weights, config = _located(path)
    if not config.exists():
        raise CheckpointError(f"{config}: no such checkpoint config")
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config}: not valid JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{config}: not an rlpfn checkpoint config (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{config}: format version {meta.get('format_version')!r}, this rlpfn reads {FORMAT_VERSION}")
    kind = meta.get("architecture", "rlpfn")
    if kind not in architectures():
        raise CheckpointError(f"{config}: unknown architecture {kind!r} (this rlpfn reads: {', '.join(architectures())})")
    if architecture is not None and kind != architecture:
        raise CheckpointError(f"{config}: an {kind!r} model, not an {architecture!r} one (use it with --agent {kind})")
    build(architectures()[kind][1], meta.get("model"), str(config), "model.", CheckpointError)  # keys and types
    return meta


def check(path: str | Path, architecture: str | None = None) -> dict:
    """read_config, and the weights file present with the SHA-256 the config names: what `load` checks before it
    reads a tensor, without reading one."""
    weights, config = _located(path)
    meta = read_config(path, architecture)
    if not weights.exists():
        raise CheckpointError(f"{weights}: weights file missing (the config {config.name} names it)")
    if _sha256(weights) != meta.get("sha256"):
        raise CheckpointError(f"{weights}: SHA-256 does not match {config.name}: corrupt, truncated or from another run")
    return meta


def load(path: str | Path | None = None, architecture: str | None = None):
    """The model in `path` (NAME, NAME.json or NAME.safetensors); no argument: the shipped checkpoint of
    `architecture` (default rlpfn). With `architecture`, a checkpoint of another kind is refused."""
    path = shipped_path(architecture or "rlpfn") if path is None else path
    weights, config = _located(path)
    meta = check(path, architecture)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({e})") from None
    for name, t in state.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{weights}: tensor {name} holds non-finite values (NaN or inf)")
    model_cls, config_cls = architectures()[meta.get("architecture", "rlpfn")]
    model = model_cls(config_cls(**meta["model"]))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        diff = sorted(set(expected.items()) ^ set(got.items()))[:3]
        raise CheckpointError(f"{weights}: tensors do not match the model config (first differences: {diff})")
    model.load_state_dict(state)
    model.eval()
    model.meta = meta
    return model


@lru_cache(maxsize=4)
def load_cached(path: str | None = None, architecture: str = "rlpfn"):
    """One model per process and path, shared by every agent that acts with it (inference only)."""
    model = load(path, architecture)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def shipped_path(architecture: str = "rlpfn") -> Path:
    """The shipped model of an architecture, rlpfn/data/checkpoints/rlpfn-v2 or ad-v1 (package data)."""
    return data_dir("checkpoints") / SHIPPED[architecture]


__all__ = ["CheckpointError", "save", "check", "load", "load_cached", "read_config", "shipped_path", "DEFAULT_NAME"]
