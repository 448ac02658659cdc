"""Typed configs: a mapping (a YAML file, a checkpoint's JSON, `--set` values) -> a dataclass, checked
against the fields' declared types and ranges by jsonargparse, once, where the input enters.

The declared types are the only place an option's type and range live: `PositiveInt`, `Literal[...]`,
`OpenUnitInterval` and the like from `jsonargparse.typing` on the dataclass fields. A failure is a
`ConfigError` naming the source, the key and the offending value, in one line.
"""
from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from typing import Any, Mapping, TypeVar

from .errors import UserError

T = TypeVar("T")


class ConfigError(UserError):
    """A config file, a checkpoint's config or an option has an unknown key or a value of the wrong type."""


def one_line(message: str) -> str:
    """jsonargparse's multi-line messages as one line."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()


def parser_for(cls):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_class_arguments(cls, "cfg", sub_configs=True)
    return parser


def build(cls: type[T], doc: Any, source: str, prefix: str = "", error: type[UserError] = ConfigError) -> T:
    """`cls(**doc)` after checking every key and value of `doc` against `cls`'s declared field types
    (nested dataclasses included); `prefix` is how the keys are named in errors (e.g. "model.")."""
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise error(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {doc!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise error(f"{source}: {prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    parser = parser_for(cls)
    try:
        ns = parser.parse_object({"cfg": dict(doc)})
        return parser.instantiate(ns).cfg
    except Exception as e:  # jsonargparse's ArgumentError / ValueError from __post_init__ checks
        msg = one_line(e)
        msg = re.sub(r"Group '[^']*' does not accept option '(?:cfg\.)?([^']+)'.*", lambda m: f"{prefix}{m.group(1)}: unknown key", msg)
        msg = re.sub(r'[Pp]arser key "cfg\.([^"]+)":?', lambda m: f"{prefix}{m.group(1)}:", msg)
        msg = msg.replace('"cfg.', f'"{prefix}').replace("cfg.", prefix)
        raise error(f"{source}: {msg}") from None


def to_dict(obj) -> dict:
    """A (nested) config dataclass as plain JSON data: jsonargparse's PositiveInt and the like become plain
    int and float (a Lightning checkpoint's hyperparameters must unpickle with weights_only)."""
    import json
    from dataclasses import asdict

    assert is_dataclass(obj)
    return json.loads(json.dumps(asdict(obj)))
