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
    for pretraining traces, where the TabularMDP is a prior batch with one MDP per run."""

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
        self.q_star, self.run = mdp.solution.Q, mdp.run_index(n_runs)  # Q* [M,H,S,A]; run i acts in MDP run[i]

    def act(self, states, h):
        a = self.argmax_random_ties(self.q_star[self.run, h, states])
        if self.epsilon > 0:  # no extra draws at epsilon = 0: the oracle's stream stays as it was
            explore = torch.rand(a.shape, dtype=self.q_star.dtype, generator=self.gen) < self.epsilon
            a = torch.where(explore, torch.randint(self.spec.n_actions, a.shape, generator=self.gen), a)
        return a
