"""The agent registry: every agent by name, with defaults chosen by `rlpfn tune`."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import fields
from functools import lru_cache
from typing import Literal

from ..config import build
from ..resources import data_file
from .ad import ADAgent
from .base import Agent, AgentError, AgentSpec, OfflineAgent
from .mixture import Annealed, Mixture
from .offline import VILCB, BehaviourCloning, CertaintyEquivalence
from .psrl import PSRL
from .rlpfn import RlpfnAgent
from .qlearning import EpsGreedyQL, OptQL
from .simple import OptimalAgent, RandomAgent
from .ucbvi import UCBVI

AGENTS: dict[str, type[Agent]] = {
    cls.name: cls
    for cls in (RandomAgent, OptimalAgent, UCBVI, PSRL, OptQL, EpsGreedyQL, RlpfnAgent, ADAgent, VILCB, CertaintyEquivalence,
                BehaviourCloning)
}
AgentName = Literal[tuple(AGENTS)]  # a registry name, as a type: command-line options offer these as choices
ONLINE_AGENTS = [n for n, c in AGENTS.items() if c.online]
OFFLINE_AGENTS = [n for n, c in AGENTS.items() if c.offline]


@lru_cache(maxsize=1)
def tuned_defaults() -> dict:
    """Hyperparameters chosen by `rlpfn tune` on prior-sampled MDPs (never on the benchmarks), shipped as
    rlpfn/data/tuned.json; a missing file is an error, never a silent fallback to untuned defaults."""
    return {name: entry["hparams"] for name, entry in json.loads(data_file("tuned.json").read_text())["agents"].items()}


def make_agent(name: str, **overrides) -> Agent:
    """An agent by registry name; tuned defaults, then `overrides`, fill its hyperparameters, each checked
    against the field's declared type (an AgentError names the agent, the key and the value)."""
    if name not in AGENTS:
        raise AgentError(f"unknown agent {name!r}; choose from: {', '.join(AGENTS)}")
    cls = AGENTS[name]
    valid = {f.name: f for f in fields(cls)}
    for key in overrides:
        if key not in valid:
            raise AgentError(f"agent {name!r} has no hyperparameter {key!r}" +
                             (f" (it has: {', '.join(valid)})" if valid else " (it has none)"))
    hparams = {**tuned_defaults().get(name, {}), **overrides}
    if not overrides:
        return cls(**hparams)  # the shipped defaults: checked when tuned.json was written
    return build(cls, hparams, f"agent {name!r}", error=AgentError)


def parse_agent(label: str, online: bool | None = None) -> tuple[str, dict]:
    """'ucbvi[scale=0.03,h_term=0.01]' -> ('ucbvi', {'scale': 0.03, 'h_term': 0.01}); a plain name -> (name, {}).
    The agent is built here, so an unknown name, key or value (and, for a model agent, a checkpoint that cannot be
    read) is refused by name before any work; with `online`, an agent that cannot act that way is refused too."""
    from ..config import ConfigError, parse_assignments

    m = re.fullmatch(r"([\w-]+)\[(.*)\]", label)
    name, hparams = (m.group(1), parse_assignments([i for i in m.group(2).split(",") if i], f"agent {label!r}:")) \
        if m else (label, {})
    agent = make_agent(name, **hparams)
    if online is not None and not (agent.online if online else agent.offline):
        raise ConfigError(f"agent {label!r} is not an {'online' if online else 'offline'} agent")
    if getattr(agent, "checkpoint", None) is not None:  # config, weights and their checksum; the tensors are read
        from ..checkpoint import check  # only where the agent acts (a worker process)

        check(agent.checkpoint, agent.architecture)
    return name, hparams


def stacked(name: str, grid: list[dict]) -> Agent:
    """One agent that runs a whole hyperparameter grid as a batch axis: reset with n_runs = G·k for a grid of G
    entries, runs i·k ... (i+1)·k - 1 act with entry i (each entry filled and checked as make_agent does). A
    grid of cheap agents (Q-learning: a Python loop per step) then costs about one run of them, not G."""
    entries = [make_agent(name, **hp) for hp in grid]
    if not entries:
        raise AgentError(f"agent {name!r}: an empty grid")
    if not entries[0].stackable:
        raise AgentError(f"agent {name!r} cannot run a grid in one batch; stackable agents: "
                         f"{', '.join(n for n, c in AGENTS.items() if c.stackable)}")
    for key in entries[0].stack_by:
        values = sorted({str(getattr(e, key)) for e in entries})
        if len(values) > 1:
            raise AgentError(f"agent {name!r}: a stacked grid needs one value of {key!r}, got {', '.join(values)}")
    agent = copy.copy(entries[0])
    agent._grid = entries
    return agent


__all__ = ["AGENTS", "AgentName", "Annealed", "Mixture", "ONLINE_AGENTS", "OFFLINE_AGENTS", "Agent", "AgentSpec", "OfflineAgent", "parse_agent",
           "AgentError", "make_agent", "stacked", "tuned_defaults"]
