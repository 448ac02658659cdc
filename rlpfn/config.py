"""Typed configs: a mapping (a YAML file, a checkpoint's JSON, `--set` values) -> a dataclass, checked
against the fields' declared types and ranges by jsonargparse, once, where the input enters.

An option's type and range are declared on its dataclass field (`PositiveInt`, `Literal[...]`, `OpenUnitInterval`
and the like from `jsonargparse.typing`); checks that involve several fields, or that the agents' own
dataclasses make in `__post_init__`, run when the dataclass is built here. A failure is a `ConfigError` naming
the source, the key and the offending value, in one line.
"""
from __future__ import annotations

import re
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any, Mapping, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import UserError

T = TypeVar("T")


class ConfigError(UserError):
    """A config file, a checkpoint's config or an option has an unknown key or a value of the wrong type."""


def one_line(message: str) -> str:
    """jsonargparse's multi-line messages as one line."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()


def parse_assignments(items: list[str] | None, option: str) -> dict:
    """['scale=0.3', 'bonus=bernstein', 'is_slippery=false'] -> {'scale': 0.3, 'bonus': 'bernstein',
    'is_slippery': False}: each VALUE read as a YAML scalar (numbers, true/false, null; anything else a string)."""
    import yaml

    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"{option} {item!r} is not of the form KEY=VALUE")
        if key in out:
            raise ConfigError(f"{option} {key!r} given twice")
        try:
            out[key] = float(value) if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value) else \
                (yaml.safe_load(value) if value else "")  # YAML 1.1 reads 1e-3 as text: numbers first
        except yaml.YAMLError:
            out[key] = value
        if isinstance(out[key], (dict, list)):  # a scalar was meant: keep the text as it was typed
            out[key] = value
    return out


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
        msg = re.sub(r'(?<![\w.])cfg\.', prefix, msg)
        raise error(f"{source}: {msg}") from None


def to_dict(obj) -> dict:
    """A (nested) config dataclass as plain JSON data: jsonargparse's PositiveInt and the like become plain
    int and float (a Lightning checkpoint's hyperparameters must unpickle with weights_only)."""
    import json
    from dataclasses import asdict

    assert is_dataclass(obj)
    return json.loads(json.dumps(asdict(obj)))


# ---- command-line options generated from dataclasses ------------------------------------------------------
def option(default=MISSING, *, help: str, default_factory=MISSING, positional: bool = False,
           metavar: str | None = None, nargs: str | None = None):
    """A dataclass field that is also a command-line option: `--name-with-dashes`, typed by the field's
    annotation (list[T]: one or more values), with this help. Declared once, here; `add_options` makes the
    option and jsonargparse checks every value against the annotation."""
    meta = {"help": help, "positional": positional, "metavar": metavar, "nargs": nargs}
    return field(default=default, default_factory=default_factory, metadata=meta)


def add_options(parser, cls) -> None:
    """Add every `option` field of the dataclass `cls` to a jsonargparse parser."""
    hints = get_type_hints(cls)
    for f in fields(cls):
        if "help" not in f.metadata:
            continue
        hint, meta = hints[f.name], f.metadata
        kwargs: dict = {"help": meta["help"]}
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        optional_list = get_origin(hint) is Union and any(get_origin(a) is list for a in get_args(hint))
        if get_origin(hint) is list or optional_list:  # several values after one flag
            inner = next(a for a in get_args(hint) if get_origin(a) is list) if optional_list else hint
            kwargs.update(type=get_args(inner)[0], nargs=meta["nargs"] or "+")
        elif hint is bool:
            kwargs.update(action="store_true")
        else:
            kwargs["type"] = hint
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        default = f.default if f.default is not MISSING else (f.default_factory() if has_default else None)
        if meta["positional"]:
            if has_default:
                kwargs.update(nargs="?", default=default)
            parser.add_argument(f.name, **kwargs)
            continue
        if has_default and hint is not bool:
            kwargs["default"] = default
        elif not has_default:
            kwargs["required"] = True
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def from_namespace(cls: type[T], ns) -> T:
    """The dataclass `cls` from a parsed namespace (its __post_init__ checks run here)."""
    values = dict(ns)
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.init and f.name in values})
