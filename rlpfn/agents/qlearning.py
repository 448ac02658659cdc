"""Tabular Q-learning, stage-dependent Q_h (finite horizon), batched over runs.

- `OptQL`: optimistic Q-learning with the UCB-Hoeffding bonus (Jin, Allen-Zhu, Bubeck, Jordan,
  NeurIPS 2018, arXiv:1807.03765, Algorithm 1): Q_h ← H initially; with t = N_h(x,a),
  α_t = (H+1)/(H+t), b_t = c·sqrt(H³·ι/t), ι = log(S·A·T/p);
  Q_h(x,a) ← (1-α_t)·Q_h(x,a) + α_t·[r + V_{h+1}(x') + b_t], V_h(x) = min(H, max_a Q_h(x,a)).
  T = k·H after k episodes (anytime), p = 0.1.
- `EpsGreedyQL`: Watkins' Q-learning, ε-greedy: Q_h ← Q_h + α·(r + max_a' Q_{h+1}(x',a') - Q_h),
  α constant or (H+1)/(H+t); zero or optimistic (H-h) initial values.
  (Colosseum's episodic Q-learning swaps the learning-rate weights; docs/reference.md: don't copy it.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..planning import DTYPE
from .base import Agent, AgentError

P_FAIL = 0.1


@dataclass
class _StageQ(Agent):
    """Shared bookkeeping: Q [N,H,S,A] and per-stage visit counts t = N_h(x,a). Hyperparameters are read per run
    (Agent.per_run), so a whole grid can run as one batch (agents.stacked)."""

    stackable = True

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        N, S, A, H = n_runs, spec.n_states, spec.n_actions, spec.horizon
        self.Q = torch.full((N, H, S, A), float(H), dtype=DTYPE)
        self.t = torch.zeros(N, H, S, A, dtype=DTYPE)
        self.runs = torch.arange(N)
        self.episodes = 0

    def greedy(self, states, h):
        if h == 0:
            self.episodes += 1
        return self.argmax_random_ties(self.Q[self.runs, h, states])

    def learning_rate(self, t):
        H = self.spec.horizon
        return (H + 1) / (H + t)

    def next_value(self, next_states, h) -> torch.Tensor:
        if h + 1 == self.spec.horizon:
            return torch.zeros(self.n_runs, dtype=DTYPE)
        return self.Q[self.runs, h + 1, next_states].amax(-1)


@dataclass
class OptQL(_StageQ):
    name = "optql"
    scale: float = 0.01  # c

    def __post_init__(self):
        if not 0 <= self.scale < math.inf:
            raise AgentError(f"optql: scale must be a finite number >= 0, got {self.scale}")

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        self.c = torch.tensor(self.per_run("scale"), dtype=DTYPE)

    def act(self, states, h):
        return self.greedy(states, h)

    def observe(self, states, actions, rewards, next_states, h):
        S, A, H = self.spec.n_states, self.spec.n_actions, self.spec.horizon
        idx = (self.runs, h, states, actions)
        t = self.t[idx] + 1
        self.t[idx] = t
        iota = math.log(S * A * self.episodes * H / P_FAIL)
        b = self.c * torch.sqrt(H**3 * iota / t)
        v_next = self.next_value(next_states, h).clamp(max=H)  # V_{h+1} = min(H, max_a Q_{h+1})
        a = self.learning_rate(t)
        self.Q[idx] = (1 - a) * self.Q[idx] + a * (rewards + v_next + b)


@dataclass
class EpsGreedyQL(_StageQ):
    name = "qlearning"
    epsilon: float = 0.1
    lr: float | str = "hpt"  # a constant, or "hpt" for α_t = (H+1)/(H+t)
    init: str = "zero"  # "zero" or "optimistic" (H - h)

    def __post_init__(self):
        if not 0 <= self.epsilon <= 1:
            raise AgentError(f"qlearning: epsilon must be in [0, 1], got {self.epsilon}")
        if self.init not in ("zero", "optimistic"):
            raise AgentError(f"qlearning: init must be 'zero' or 'optimistic', got {self.init!r}")
        if self.lr != "hpt" and not (isinstance(self.lr, (int, float)) and 0 < self.lr <= 1):
            raise AgentError(f"qlearning: lr must be 'hpt' or a number in (0, 1], got {self.lr!r}")

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        H = spec.horizon
        optimistic = torch.tensor([init == "optimistic" for init in self.per_run("init")]).view(-1, 1, 1, 1)
        remaining = torch.arange(H, 0, -1, dtype=DTYPE).view(1, H, 1, 1)  # H - h
        self.Q = torch.where(optimistic, remaining, 0.0).expand_as(self.Q).clone()
        self.eps = torch.tensor(self.per_run("epsilon"), dtype=DTYPE)
        lrs = self.per_run("lr")
        self.hpt = torch.tensor([lr == "hpt" for lr in lrs])
        self.alpha = torch.tensor([0.0 if lr == "hpt" else float(lr) for lr in lrs], dtype=DTYPE)

    def act(self, states, h):
        greedy = self.greedy(states, h)
        explore = torch.rand(states.shape, dtype=DTYPE, generator=self.gen) < self.eps
        uniform = torch.randint(self.spec.n_actions, states.shape, generator=self.gen)
        return torch.where(explore, uniform, greedy)

    def observe(self, states, actions, rewards, next_states, h):
        idx = (self.runs, h, states, actions)
        t = self.t[idx] + 1
        self.t[idx] = t
        a = torch.where(self.hpt, self.learning_rate(t), self.alpha)
        target = rewards + self.next_value(next_states, h)
        self.Q[idx] = self.Q[idx] + a * (target - self.Q[idx])
