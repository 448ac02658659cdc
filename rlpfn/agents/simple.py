"""Reference agents: uniform random and the oracle optimal policy."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Agent, AgentError


@dataclass
class RandomAgent(Agent):
    name = "random"

    def act(self, states, h):
        return torch.randint(self.spec.n_actions, states.shape, generator=self.gen)


@dataclass
class OptimalAgent(Agent):
    """Oracle: acts with π* of the true MDP (the harness hands it the MDP), or with probability
    `epsilon` uniformly at random (an ε-optimal behaviour policy). A yardstick, and a behaviour
    for pretraining traces, where the "MDP" is a prior batch with one MDP (and its Q*) per run."""

    name = "optimal"
    needs_mdp = True
    epsilon: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.epsilon <= 1.0:
            raise AgentError(f"optimal: epsilon must lie in [0, 1], got {self.epsilon}")

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        if mdp is None:
            raise AgentError("the 'optimal' agent is an oracle: it needs the true MDP")
        q = getattr(mdp, "q_star", None)  # a prior MDPBatch carries Q* per run: [N,H,S,A]
        self.q_star = mdp.solution.Q.unsqueeze(0) if q is None else q
        self.run = torch.arange(n_runs) if self.q_star.shape[0] == n_runs else torch.zeros(n_runs, dtype=torch.long)

    def act(self, states, h):
        a = self.argmax_random_ties(self.q_star[self.run, h, states])
        if self.epsilon > 0:  # no extra draws at epsilon = 0: the oracle's stream stays as it was
            explore = torch.rand(a.shape, dtype=self.q_star.dtype, generator=self.gen) < self.epsilon
            a = torch.where(explore, torch.randint(self.spec.n_actions, a.shape, generator=self.gen), a)
        return a
