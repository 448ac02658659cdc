"""Prior specifications: YAML files (built in: `rlpfn/data/priors/`) that say which MDPs and histories pretraining sees.

A spec is data, the samplers are code (families.py, sampler.py, ../traces.py). Every number in a
spec is a *distribution* written one of these ways:

    3                      a constant
    [0.0, 0.3]             uniform on the interval; integers, inclusive, when both ends are integers
    {log_uniform: [1, 300]} log-uniform (integers when both ends are; then floor of a log-uniform draw
                            on [lo, hi + 1), so each end is reachable)
    {choice: [a, b, c]}    one of the values, uniformly

Top-level keys (see rlpfn/data/priors/default.yaml for a commented example):
    name, description       free text
    states, actions, horizon  S, A, H: drawn once per *batch* (batches are bucketed by size, see batch.py)
    min_gap                an MDP is kept only if V* - V_uniform >= min_gap * H (rewards on [0, 1])
    families               {family: {weight, params: {param: distribution}}}; params must be keyword
                           arguments of that family's sampler
    rewards                bounds [r_min, r_max] declared to agents; scale (fraction of the bounds the
                           rewards occupy); kinds {deterministic|bernoulli|gaussian: weight}; gaussian_std
                           (noise sd as a fraction of the occupied range)
    relabel                {states: bool, actions: "none" | "global" | "per_state"}
    traces                 behaviours {name: {weight, params}} (agents from the registry, plus `optimal`
                           with an `epsilon`, and `mixture`, which switches among the others between
                           episodes with probability `switch`); episodes (trace length); max_transitions;
                           snapshots_per_mdp; episode_start_fraction
    targets                temperature of the Boltzmann policy over Q* (Q* on rewards rescaled to [0, 1])

Every error is a `PriorSpecError` naming the file and the key, e.g.
"rlpfn/data/priors/x.yaml: families.gridworld.weight: must be >= 0, got -1".
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from ..errors import UserError
from ..resources import builtin_names, data_dir, named_or_path
from .families import MIN_GAP

REWARD_KINDS = ("deterministic", "bernoulli", "gaussian")
RELABEL_ACTIONS = ("none", "global", "per_state")


class PriorSpecError(UserError):
    """A prior spec is invalid; the message names the file and the offending key."""


# ---- distributions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """One scalar distribution (see the module docstring for the YAML forms)."""

    kind: str  # "const" | "uniform" | "log_uniform" | "choice"
    values: tuple  # const: (v,); uniform / log_uniform: (lo, hi); choice: the values
    integer: bool = False

    def draw(self, rng: np.random.Generator, n: int | None = None):
        """One value (n None) or an array of n values."""
        size = 1 if n is None else n
        if self.kind == "const":
            out = np.full(size, self.values[0], dtype=object if isinstance(self.values[0], str) else None)
        elif self.kind == "choice":
            out = np.asarray(self.values, dtype=object)[rng.integers(len(self.values), size=size)]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values):
                out = out.astype(np.int64 if self.integer else np.float64)
        else:
            lo, hi = self.values
            if self.kind == "uniform":
                out = rng.integers(lo, hi + 1, size=size) if self.integer else rng.uniform(lo, hi, size=size)
            else:
                top = hi + 1 if self.integer else hi
                out = np.exp(rng.uniform(math.log(lo), math.log(top), size=size))
                out = np.minimum(np.floor(out).astype(np.int64), hi) if self.integer else out
        if n is not None:
            return out
        return out[0].item() if isinstance(out[0], np.generic) else out[0]

    @property
    def bounds(self) -> tuple:
        """(smallest, largest) value the distribution can take (numeric distributions only)."""
        return (min(self.values), max(self.values))


def parse_dist(value: Any, key: str, *, integer: bool | None = None, minimum: float | None = None,
               positive: bool = False) -> Dist:
    """Parse one YAML distribution; `integer=True` demands integers, `minimum` bounds every value."""

    def bad(msg: str):
        return PriorSpecError(f"{key}: {msg}")

    def number(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad(f"expected a finite number, got {v!r}")
        return v

    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in ("log_uniform", "choice"):
            raise bad(f"a distribution is a number, [lo, hi], {{log_uniform: [lo, hi]}} or {{choice: [...]}}, "
                      f"got {dict(value)!r}")
        kind, args = next(iter(value.items()))
        if not isinstance(args, (list, tuple)) or not args:
            raise bad(f"{kind} needs a non-empty list, got {args!r}")
        if kind == "choice":
            vals = tuple(args)
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
            is_int = numeric and all(isinstance(v, int) for v in vals)
            dist = Dist("choice", vals, is_int)
            if numeric:
                _check_range(dist, key, integer, minimum, positive)
            elif integer is not None or minimum is not None:
                raise bad(f"expected numbers, got {list(vals)!r}")
            return dist
        if len(args) != 2:
            raise bad(f"log_uniform needs [lo, hi], got {args!r}")
        lo, hi = number(args[0]), number(args[1])
        if lo <= 0:
            raise bad(f"log_uniform needs lo > 0, got {lo}")
        dist = Dist("log_uniform", (lo, hi), isinstance(lo, int) and isinstance(hi, int))
    elif isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise bad(f"a range is [lo, hi], got {list(value)!r}")
        lo, hi = number(value[0]), number(value[1])
        dist = Dist("uniform", (lo, hi), isinstance(lo, int) and isinstance(hi, int))
    else:
        if isinstance(value, str):
            if integer or minimum is not None or positive:
                raise bad(f"must be a number or a distribution of numbers, got {value!r}")
            return Dist("const", (value,))
        v = number(value)
        dist = Dist("const", (v,), isinstance(v, int))
    _check_range(dist, key, integer, minimum, positive)
    return dist


def _check_range(dist: Dist, key: str, integer, minimum, positive) -> None:
    if dist.kind in ("uniform", "log_uniform") and dist.values[0] > dist.values[1]:
        raise PriorSpecError(f"{key}: empty range [{dist.values[0]}, {dist.values[1]}] (lo > hi)")
    lo, hi = dist.bounds
    if integer and not dist.integer:
        raise PriorSpecError(f"{key}: must be integers, got {list(dist.values)}")
    if minimum is not None and lo < minimum:
        raise PriorSpecError(f"{key}: must be >= {minimum}, got {lo}")
    if positive and lo <= 0:
        raise PriorSpecError(f"{key}: must be > 0, got {lo}")


# ---- the spec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """A weighted mixture component (a family or a behaviour) with its parameter distributions."""

    weight: float
    params: Mapping[str, Dist] = field(default_factory=dict)

    def draw_params(self, rng: np.random.Generator, n: int | None = None) -> dict:
        return {k: d.draw(rng, n) for k, d in self.params.items()}


@dataclass(frozen=True)
class Rewards:
    bounds: tuple[float, float] = (0.0, 1.0)
    scale: Dist = Dist("const", (1.0,))
    kinds: Mapping[str, float] = field(default_factory=lambda: {"deterministic": 1.0})
    gaussian_std: Dist = Dist("const", (0.1,))


@dataclass(frozen=True)
class Traces:
    behaviours: Mapping[str, Component] = field(default_factory=lambda: {"random": Component(1.0)})
    switch: Dist = Dist("const", (0.2,))  # per-episode switch probability of the `mixture` behaviour
    episodes: Dist = Dist("const", (10,), True)
    max_transitions: int = 20000
    snapshots_per_mdp: int = 1
    episode_start_fraction: float = 0.25


@dataclass(frozen=True)
class PriorSpec:
    name: str
    states: Dist
    actions: Dist
    horizon: Dist
    families: Mapping[str, Component]
    min_gap: float = MIN_GAP
    rewards: Rewards = Rewards()
    relabel_states: bool = True
    relabel_actions: str = "global"
    traces: Traces = Traces()
    temperature: Dist = Dist("const", (0.1,))
    description: str = ""
    source: str = ""  # the file it was read from, for messages


def weighted_choice(components: Mapping[str, Any], weight, rng: np.random.Generator, n: int) -> np.ndarray:
    """n names drawn with probability proportional to weight(component)."""
    names = list(components)
    w = np.array([weight(components[k]) for k in names], dtype=float)
    return np.asarray(names, dtype=object)[rng.choice(len(names), size=n, p=w / w.sum())]


TOP_KEYS = {"name", "description", "states", "actions", "horizon", "min_gap", "families", "rewards", "relabel",
            "traces", "targets"}


def spec_path(spec: str | Path) -> Path:
    """The file a spec argument names: a path, or a built-in name ("default" -> rlpfn/data/priors/default.yaml)."""
    return named_or_path("priors", spec)


def load_spec(spec: str | Path | Mapping) -> PriorSpec:
    """A PriorSpec from a path, a built-in name ("default", "heldout", "tiny") or a mapping."""
    if isinstance(spec, Mapping):
        return parse_spec(spec, "<spec>")
    path = spec_path(spec)
    if not path.is_file():
        known = ", ".join(builtin_names("priors"))
        raise PriorSpecError(f"{spec}: no such prior spec file (built-in specs: {known})")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise PriorSpecError(f"{path}: not valid YAML ({e})".replace("\n", " ")) from None
    shipped = path.resolve().parent == data_dir("priors").resolve()
    return parse_spec(doc, f"rlpfn/data/priors/{path.name}" if shipped else str(path))


def parse_spec(doc: Any, source: str = "<spec>") -> PriorSpec:
    try:
        return _parse(doc, source)
    except PriorSpecError as e:
        raise PriorSpecError(f"{source}: {e}") from None


def _mapping(value, key: str, allowed: set | None = None) -> Mapping:
    if not isinstance(value, Mapping):
        raise PriorSpecError(f"{key}: expected a mapping, got {value!r}")
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise PriorSpecError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})")
    return value


def _weight(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PriorSpecError(f"{key}: weight must be a finite number, got {value!r}")
    if value < 0:
        raise PriorSpecError(f"{key}: must be >= 0, got {value}")
    return float(value)


def _weights_total(weights: Mapping[str, float], key: str) -> None:
    if not weights:
        raise PriorSpecError(f"{key}: needs at least one entry")
    if sum(weights.values()) <= 0:
        raise PriorSpecError(f"{key}: the weights sum to 0")


def _components(doc, key: str, known: Mapping[str, set], what: str) -> dict[str, Component]:
    out = {}
    for name, entry in _mapping(doc, key).items():
        k = f"{key}.{name}"
        if name not in known:
            raise PriorSpecError(f"{k}: unknown {what} (known: {', '.join(sorted(known))})")
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            entry = {"weight": entry}
        entry = _mapping(entry, k, {"weight", "params"})
        weight = _weight(entry.get("weight", 1.0), f"{k}.weight")
        params = {}
        for p, v in _mapping(entry.get("params") or {}, f"{k}.params").items():
            if p not in known[name]:
                raise PriorSpecError(f"{k}.params.{p}: unknown parameter of {what} {name!r} "
                                     f"(it has: {', '.join(sorted(known[name])) or 'none'})")
            params[p] = parse_dist(v, f"{k}.params.{p}")
        out[name] = Component(weight, params)
    _weights_total({n: c.weight for n, c in out.items()}, key)
    return out


def family_params() -> dict[str, set]:
    """Each family's tunable parameters: its keyword-only arguments, except reward_std (reward noise is
    the spec's `rewards.kinds`, applied to every family alike)."""
    from .families import FAMILIES

    return {name: {p.name for p in inspect.signature(fn).parameters.values()
                   if p.kind is p.KEYWORD_ONLY and p.name != "reward_std"} for name, fn in FAMILIES.items()}


def behaviour_params() -> dict[str, set]:
    """Behaviours usable in traces: every online agent of the registry (by its hyperparameters) and `mixture`."""
    from dataclasses import fields

    from ..agents import AGENTS, ONLINE_AGENTS

    out = {name: {f.name for f in fields(AGENTS[name])} for name in ONLINE_AGENTS}
    out["mixture"] = set()
    return out


def _probe_families(families: Mapping[str, "Component"], S: int, A: int, H: int) -> None:
    """Each family once at the smallest sizes with both ends of every numeric parameter range, so that a range
    the family refuses (concentration -1) fails here, naming the key, not in the middle of sampling."""
    from .families import FAMILIES

    rng = np.random.default_rng(0)
    for fam, comp in families.items():
        params = {k: (np.array(d.bounds) if d.kind != "choice" and not isinstance(d.values[0], str) else d.draw(rng, 2))
                  for k, d in comp.params.items()}
        try:
            FAMILIES[fam](2, S, A, H, rng, **params)
        except ValueError as e:
            raise PriorSpecError(f"families.{fam}.params: {e}") from None
        except Exception:  # noqa: BLE001 - e.g. no room for walls at the smallest size: a size matter, not a key's
            pass


def _parse(doc, source: str) -> PriorSpec:
    doc = _mapping(doc, "spec", TOP_KEYS)
    for req in ("name", "states", "actions", "horizon", "families"):
        if req not in doc:
            raise PriorSpecError(f"{req}: required key is missing")
    states = parse_dist(doc["states"], "states", integer=True, minimum=1)
    actions = parse_dist(doc["actions"], "actions", integer=True, minimum=1)
    horizon = parse_dist(doc["horizon"], "horizon", integer=True, minimum=1)
    min_gap = doc.get("min_gap", MIN_GAP)
    if isinstance(min_gap, bool) or not isinstance(min_gap, (int, float)) or not 0 <= min_gap <= 1:
        raise PriorSpecError(f"min_gap: must be a number in [0, 1], got {min_gap!r}")
    families = _components(doc["families"], "families", family_params(), "family")
    _probe_families(families, states.bounds[0], actions.bounds[0], horizon.bounds[0])

    r = _mapping(doc.get("rewards") or {}, "rewards", {"bounds", "scale", "kinds", "gaussian_std"})
    bounds = r.get("bounds", [0.0, 1.0])
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
            or bounds[0] >= bounds[1]):
        raise PriorSpecError(f"rewards.bounds: must be [r_min, r_max] with r_min < r_max, got {bounds!r}")
    scale = parse_dist(r.get("scale", 1.0), "rewards.scale", positive=True)
    if scale.bounds[1] > 1:
        raise PriorSpecError(f"rewards.scale: a fraction of the bounds, must be <= 1, got {scale.bounds[1]}")
    kinds = {}
    for kind, w in _mapping(r.get("kinds", {"deterministic": 1.0}), "rewards.kinds").items():
        if kind not in REWARD_KINDS:
            raise PriorSpecError(f"rewards.kinds.{kind}: unknown reward kind (known: {', '.join(REWARD_KINDS)})")
        kinds[kind] = _weight(w, f"rewards.kinds.{kind}")
    _weights_total(kinds, "rewards.kinds")
    rewards = Rewards((float(bounds[0]), float(bounds[1])), scale, kinds,
                      parse_dist(r.get("gaussian_std", 0.1), "rewards.gaussian_std", minimum=0))

    rl = _mapping(doc.get("relabel") or {}, "relabel", {"states", "actions"})
    relabel_states = rl.get("states", True)
    if not isinstance(relabel_states, bool):
        raise PriorSpecError(f"relabel.states: must be true or false, got {relabel_states!r}")
    relabel_actions = rl.get("actions", "global")
    if relabel_actions not in RELABEL_ACTIONS:
        raise PriorSpecError(f"relabel.actions: must be one of {', '.join(RELABEL_ACTIONS)}, got {relabel_actions!r}")

    t = _mapping(doc.get("traces") or {}, "traces", {"behaviours", "switch", "episodes", "max_transitions",
                                                     "snapshots_per_mdp", "episode_start_fraction"})
    behaviours = _components(t.get("behaviours", {"random": 1.0}), "traces.behaviours", behaviour_params(),
                             "behaviour")
    if "mixture" in behaviours and len(behaviours) == 1:
        raise PriorSpecError("traces.behaviours.mixture: switches among the other behaviours, but there are none")
    max_tr = t.get("max_transitions", 20000)
    if isinstance(max_tr, bool) or not isinstance(max_tr, int) or max_tr < 1:
        raise PriorSpecError(f"traces.max_transitions: must be an integer >= 1, got {max_tr!r}")
    snaps = t.get("snapshots_per_mdp", 1)
    if isinstance(snaps, bool) or not isinstance(snaps, int) or snaps < 1:
        raise PriorSpecError(f"traces.snapshots_per_mdp: must be an integer >= 1, got {snaps!r}")
    esf = t.get("episode_start_fraction", 0.25)
    if isinstance(esf, bool) or not isinstance(esf, (int, float)) or not 0 <= esf <= 1:
        raise PriorSpecError(f"traces.episode_start_fraction: must be a number in [0, 1], got {esf!r}")
    traces = Traces(behaviours, parse_dist(t.get("switch", 0.2), "traces.switch", minimum=0),
                    parse_dist(t.get("episodes", 10), "traces.episodes", integer=True, minimum=1),
                    max_tr, snaps, float(esf))
    if traces.switch.bounds[1] > 1:
        raise PriorSpecError(f"traces.switch: a probability, must be <= 1, got {traces.switch.bounds[1]}")

    tg = _mapping(doc.get("targets") or {}, "targets", {"temperature"})
    temperature = parse_dist(tg.get("temperature", 0.1), "targets.temperature", positive=True)
    return PriorSpec(str(doc["name"]), states, actions, horizon, families, float(min_gap), rewards, relabel_states,
                     relabel_actions, traces, temperature, str(doc.get("description", "")), source)
