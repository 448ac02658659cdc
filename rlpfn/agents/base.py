"""The one agent protocol, batched over N independent runs.

An agent is told only what a user would know (`AgentSpec`: S, A, H, reward bounds) and sees
only the transitions it generated. Rewards reach agents rescaled to [0, 1] with the known
bounds (docs/reference.md, "Setting throughout"), so value bounds are H - h and bonuses are
comparable across MDPs; the harness reports returns in the MDP's own units.

Online agents: `reset(spec, n_runs, seed)`, then per step `act(states, h)` and
`observe(states, actions, rewards, next_states, h)`. Every run is at the same step h, since
every episode lasts exactly H steps. Offline agents: `fit(spec, stats, seed) -> π [N,H,S,A]`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..env import draw
from ..errors import UserError
from ..planning import DTYPE


class AgentError(UserError):
    """An unknown agent, an unknown hyperparameter or a hyperparameter's bad value."""


@dataclass(frozen=True)
class AgentSpec:
    n_states: int
    n_actions: int
    horizon: int
    r_min: float = 0.0
    r_max: float = 1.0

    @classmethod
    def of(cls, mdp) -> "AgentSpec":
        return cls(mdp.n_states, mdp.n_actions, mdp.horizon, mdp.r_min, mdp.r_max)

    def rescale(self, r: torch.Tensor) -> torch.Tensor:
        """Rewards in the MDP's units -> [0, 1] (a constant-reward MDP maps to 0)."""
        span = self.r_max - self.r_min
        return (r - self.r_min) / span if span > 0 else torch.zeros_like(r)


@dataclass
class Agent:
    """Base of every agent; subclasses are dataclasses whose fields are their hyperparameters."""

    name = "agent"
    online = True  # acts step by step: reset / act / observe
    offline = False  # fits a policy from a fixed dataset: fit
    needs_mdp = False  # oracle references only: the harness then passes the true MDP
    stackable = False  # hyperparameters may differ between runs: a whole grid in one batch (agents.stacked)
    stack_by = ()  # hyperparameters that must still be equal across a stacked grid
    streams = None  # [n_runs]: runs with equal numbers break ties with the same random numbers (run_trace sets it)
    # Can its runs live on another device than the CPU (run_trace's `device`; it then sets `device`)
    on_device = False
    device = torch.device("cpu")

    def hparams(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def reset(self, spec: AgentSpec, n_runs: int, seed: int, mdp=None) -> None:
        self.spec, self.n_runs = spec, n_runs
        self.gen = torch.Generator().manual_seed(int(seed))
        grid = getattr(self, "_grid", None)
        if grid is not None and n_runs % len(grid):
            raise AgentError(f"{self.name}: {n_runs} runs do not split evenly over a grid of {len(grid)} entries")

    def act(self, states: torch.Tensor, h: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, states, actions, rewards, next_states, h: int) -> None:
        pass

    # shared helpers -----------------------------------------------------------------------
    def per_run(self, key: str) -> list:
        """Hyperparameter `key` of each run: this agent's own value, or, for a stacked agent (agents.stacked) with a
        grid of G entries, entry i's value for runs i·k ... (i+1)·k - 1, where k = n_runs / G."""
        grid = getattr(self, "_grid", None)
        if grid is None:
            return [getattr(self, key)] * self.n_runs
        k = self.n_runs // len(grid)
        return [getattr(entry, key) for entry in grid for _ in range(k)]

    def argmax_random_ties(self, q: torch.Tensor) -> torch.Tensor:
        """argmax over the last axis, ties broken uniformly at random (seeded): greedy agents
        that start with all-equal values must not all march along action 0."""
        best = q == q.amax(-1, keepdim=True)
        noise = draw(lambda n: torch.rand(n, *q.shape[1:], dtype=DTYPE, generator=self.gen), q.shape[0], self.streams,
                     q.device)
        return torch.where(best, noise, torch.full_like(noise, -1.0)).argmax(-1)


@dataclass
class OfflineAgent(Agent):
    online = False
    offline = True

    def fit(self, spec: AgentSpec, stats, seed: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@dataclass
class ModelAgent(Agent):
    """An agent that acts with a pretrained model of one `architecture`: the checkpoint in its `checkpoint` field
    (None: the shipped one), loaded once per process, or a live model (pretraining rolls out the model it trains)."""

    architecture = "rlpfn"

    @classmethod
    def with_model(cls, model, **hparams):
        agent = cls(**hparams)
        agent._model = model
        return agent

    @property
    def model(self):
        if getattr(self, "_model", None) is None:
            from ..checkpoint import load_cached

            self._model = load_cached(self.checkpoint, self.architecture)
        return self._model
