"""Reference agents: uniform random and the oracle optimal policy."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..planning import solve
from .base import Agent


@dataclass
class RandomAgent(Agent):
    name = "random"

    def act(self, states, h):
        return torch.randint(self.spec.n_actions, states.shape, generator=self.gen)


@dataclass
class OptimalAgent(Agent):
    """Oracle: acts with π* of the true MDP (the harness hands it the MDP). A yardstick only."""

    name = "optimal"
    needs_mdp = True

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        if mdp is None:
            raise ValueError("the 'optimal' agent is an oracle: it needs the true MDP")
        self.q_star = solve(mdp).Q  # [H,S,A]

    def act(self, states, h):
        return self.argmax_random_ties(self.q_star[h, states])
