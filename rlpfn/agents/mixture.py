"""Mixture: a behaviour that switches among other agents between episodes (pretraining traces)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..planning import DTYPE
from .base import Agent, AgentError


@dataclass
class Mixture(Agent):
    """Switches among behaviours between episodes: each run follows one component per episode and, at
    every episode start after the first, redraws it (by `weights`) with probability `switch`. Every
    component observes every transition, so the learners among them learn from the mixture's data."""

    components: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    switch: float = 0.2
    name = "mixture"

    def __post_init__(self):
        if not self.components or len(self.components) != len(self.weights):
            raise AgentError("mixture: needs components and one weight per component")
        if not 0.0 <= self.switch <= 1.0:
            raise AgentError(f"mixture: switch must lie in [0, 1], got {self.switch}")

    @property
    def needs_mdp(self) -> bool:
        return any(c.needs_mdp for c in self.components)

    def hparams(self) -> dict:
        return {"components": [(c.name, c.hparams()) for c in self.components], "weights": list(self.weights),
                "switch": self.switch}

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        for i, c in enumerate(self.components):
            c.reset(spec, n_runs, seed=seed * 1009 + i + 1, mdp=mdp if c.needs_mdp else None)
        w = torch.as_tensor(np.asarray(self.weights, dtype=float), dtype=DTYPE)
        self.probs = w / w.sum()
        self.current = self._draw(n_runs)
        self.started = False

    def _draw(self, n: int) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=self.gen)

    def act(self, states, h):
        if h == 0:
            if self.started:
                switch = torch.rand(self.n_runs, dtype=DTYPE, generator=self.gen) < self.switch
                self.current = torch.where(switch, self._draw(self.n_runs), self.current)
            self.started = True
        actions = torch.stack([c.act(states, h) for c in self.components])  # [C,N]: every component plans
        return actions.gather(0, self.current[None]).squeeze(0)

    def observe(self, states, actions, rewards, next_states, h):
        for c in self.components:
            c.observe(states, actions, rewards, next_states, h)


@dataclass
class Annealed(Agent):
    """A learning history with noise that fades (AD^ε, Zisman et al. 2023): in episode k each action of `base` is
    replaced by a uniform random one with probability ε_k = max(0, 1 − k / episodes), so the history improves
    steadily from random play, whatever `base` learns. `base` observes every transition, its own or not.
    `intended` keeps what `base` chose at every decision of the runs, before the noise ([N, T] once stacked)."""

    base: Agent = None
    episodes: int = 30
    name = "annealed"

    def __post_init__(self):
        if self.base is None or self.episodes < 1:
            raise AgentError(f"annealed: needs a base agent and episodes >= 1, got {self.base!r}, {self.episodes}")

    @property
    def needs_mdp(self) -> bool:
        return self.base.needs_mdp

    def hparams(self) -> dict:
        return {"base": (self.base.name, self.base.hparams()), "episodes": self.episodes}

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        self.base.reset(spec, n_runs, seed=seed * 1009 + 1, mdp=mdp if self.base.needs_mdp else None)
        self.episode = -1
        self.intended = []

    def act(self, states, h):
        if h == 0:
            self.episode += 1
        actions = self.base.act(states, h)
        self.intended.append(actions)
        eps = max(0.0, 1.0 - self.episode / self.episodes)
        noise = torch.rand(states.shape, dtype=DTYPE, generator=self.gen) < eps
        return torch.where(noise, torch.randint(self.spec.n_actions, states.shape, generator=self.gen), actions)

    def observe(self, states, actions, rewards, next_states, h):
        self.base.observe(states, actions, rewards, next_states, h)
