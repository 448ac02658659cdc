"""UCB-VI (Azar, Osband, Munos, ICML 2017, arXiv:1703.05449), textbook version.

Pooled counts over stages; before every episode, backward induction on the empirical model
with a bonus, Q_h = min(Q_h^{previous episode}, H-h, r̂ + P̂·V_{h+1} + b); unvisited pairs
get H-h (stage h = 0..H-1, so H-h steps remain). Act greedily all episode.

Bonuses (rewards in [0, 1]), with bonus scale c:
- "hoeffding": b = c·sqrt(1/N) + d·(H-h)/N. With d = 1 (`h_term`, the default) this is the
  practical rlberry-style form behind docs/reference.md's measured regrets; c = 7·H·L, d = 0 gives
  the paper's UCBVI-CH bonus 7·H·L·sqrt(1/N). The lower-order term gets its own weight because
  on MDPs of 5-30 states it dominates c·sqrt(1/N): tuned with d = 1 every c scores alike.
- "bernstein": UCBVI-BF of the paper (its Algorithm 4), the whole bonus multiplied by c:
  sqrt(8·L·Var_P̂(V_{h+1})/N) + 14·H·L/(3N) + sqrt(8·Σ_y P̂(y)·min(1e4·H³·S²·A·L²/N'_{h+1}(y), H²)/N),
  N'_{h+1}(y) = visits to y at stage h+1. At the last stage V_H = 0 and there is no stage H to
  have visited, so that third term is taken as 0 there (read literally it would be sqrt(8H²/N)).
L = ln(5·S·A·T/δ) with T = k·H after k episodes (anytime), δ = 0.1.
rlberry's UCBVIAgent refreshes a stage's bonus only where the pair was visited at that stage
and clips V at H; docs/reference.md measured both to roughly double regret, so we do neither.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..planning import DTYPE, backward_induction, expect, variance
from ..stats import Stats
from .base import Agent, AgentError

DELTA = 0.1


@dataclass
class UCBVI(Agent):
    name = "ucbvi"
    stackable = True  # scale and h_term are read per run (Agent.per_run)
    stack_by = ("bonus",)
    bonus: str = "hoeffding"
    scale: float = 0.1  # c
    h_term: float = 1.0  # d, weight of the Hoeffding bonus' (H-h)/N term

    def __post_init__(self):
        if self.bonus not in ("hoeffding", "bernstein"):
            raise AgentError(f"ucbvi: bonus must be 'hoeffding' or 'bernstein', got {self.bonus!r}")
        if not 0 <= self.scale < math.inf:
            raise AgentError(f"ucbvi: scale must be a finite number >= 0, got {self.scale}")
        if not 0 <= self.h_term < math.inf:
            raise AgentError(f"ucbvi: h_term must be a finite number >= 0, got {self.h_term}")

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        S, A, H = spec.n_states, spec.n_actions, spec.horizon
        self.stats = Stats.zeros(n_runs, S, A)
        self.stage_visits = torch.zeros(n_runs, H, S, dtype=DTYPE)  # N'_h(y), for Bernstein
        self.remaining = torch.arange(H, 0, -1, dtype=DTYPE)  # H - h
        self.Q = self.remaining.view(1, H, 1, 1).expand(n_runs, H, S, A).clone()
        self.episodes = 0
        self.c, self.d = (torch.tensor(self.per_run(key), dtype=DTYPE).view(-1, 1, 1) for key in ("scale", "h_term"))

    def plan(self) -> torch.Tensor:
        """Recompute the optimistic Q from everything observed so far."""
        S, A, H = self.spec.n_states, self.spec.n_actions, self.spec.horizon
        P_hat, r_hat, n = self.stats.empirical()
        visited = n > 0
        inv_n = 1.0 / n.clamp_min(1.0)
        L = math.log(5 * S * A * max(self.episodes, 1) * H / DELTA)
        if self.bonus == "bernstein":  # stage-independent pieces, computed once per plan
            lower_order = 14 * H * L / 3 * inv_n

        def adjust(h, q, v_next):
            rem = self.remaining[h]
            if self.bonus == "hoeffding":
                b = self.c * inv_n.sqrt() + self.d * rem * inv_n
            else:
                var = variance(P_hat, v_next)
                if h + 1 < H:
                    n_next = self.stage_visits[:, h + 1]
                    w = (1e4 * H**3 * S**2 * A * L**2 / n_next.clamp_min(1e-300)).clamp(max=H * H)
                    cross = expect(P_hat, w)
                else:
                    cross = torch.zeros_like(q)
                b = self.c * ((8 * L * var * inv_n).sqrt() + lower_order + (8 * cross * inv_n).sqrt())
            q = torch.minimum(torch.minimum(q + b, self.Q[:, h]), rem)
            return torch.where(visited, q, rem)

        self.Q, _ = backward_induction(P_hat, r_hat, H, adjust)
        return self.Q

    def act(self, states, h):
        if h == 0:
            self.episodes += 1
            self.plan()
        return self.argmax_random_ties(self.Q[torch.arange(self.n_runs), h, states])

    def observe(self, states, actions, rewards, next_states, h):
        self.stats.add(states, actions, rewards, next_states)
        self.stage_visits[torch.arange(self.n_runs), h, states] += 1
