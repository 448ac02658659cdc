"""Offline agents: a policy from a fixed dataset's statistics.

- `VILCB`: pessimistic value iteration (Rashidinejad, Zhu, Ma, Jiao, Russell, NeurIPS 2021,
  arXiv:2103.12021) in docs/reference.md's finite-horizon form: Q_h = max(0, r̂ + P̂·V_{h+1} - b_h),
  clipped above at H-h, unvisited pairs 0.
  "hoeffding": b_h = c·(H-h)·sqrt(L/max(N,1)), L = log(2·H·S·A·n/δ) (V_max = H-h; the paper's
  2000·log(2(T+1)SA/δ) is very conservative, so the scale c is tuned on the prior).
  "bernstein" (Li, Shi, Chen, Chi, Wei 2022, arXiv:2204.05275):
  b_h = min(sqrt(c·log(H·n/δ)·Var_P̂(V_{h+1})/N) + c·H·log(H·n/δ)/N, H), c their c_b.
  n = dataset transitions, δ = 0.1.
- `CertaintyEquivalence`: the same with no penalty (plan on the empirical model).
- `BehaviourCloning`: π(a|s) ∝ N(s,a); uniform where s was never visited.
Greedy policies spread over tied actions uniformly, so an unvisited state's action is not
biased toward index 0 — except that among actions tied on Q the most-visited ones win: when
pessimism pushes every lower bound of a state to 0, an action the data has tried is still a
better bet than one it never saw (without this VI-LCB at moderate penalty scales degrades to
near-uniform behaviour on expert data).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..planning import DTYPE, backward_induction, variance
from .base import AgentError, OfflineAgent

DELTA = 0.1


def tie_uniform(Q: torch.Tensor, visits: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
    """Policy uniform over the (near-)maximal actions of Q [..., A], keeping only the most-visited
    of the tied actions (`visits` broadcastable to Q)."""
    best = Q >= Q.amax(-1, keepdim=True) - tol
    v = torch.where(best, visits.expand_as(Q).to(DTYPE), torch.full_like(Q, -1.0))
    best = v == v.amax(-1, keepdim=True)
    best = best.to(DTYPE)
    return best / best.sum(-1, keepdim=True)


@dataclass
class VILCB(OfflineAgent):
    name = "vilcb"
    penalty: str = "hoeffding"
    scale: float = 0.1

    def __post_init__(self):
        if self.penalty not in ("hoeffding", "bernstein"):
            raise AgentError(f"vilcb: penalty must be 'hoeffding' or 'bernstein', got {self.penalty!r}")
        if not 0 <= self.scale < math.inf:
            raise AgentError(f"vilcb: scale must be a finite number >= 0, got {self.scale}")

    def fit(self, spec, stats, seed=0):
        S, A, H = spec.n_states, spec.n_actions, spec.horizon
        P_hat, r_hat, n = stats.empirical()
        visited = n > 0
        n_data = stats.visits.sum((1, 2)).clamp_min(2.0).view(-1, 1, 1)  # transitions per run (>= 2: log > 0)
        inv_n = 1.0 / n.clamp_min(1.0)
        remaining = torch.arange(H, 0, -1, dtype=DTYPE)

        def adjust(h, q, v_next):
            rem = remaining[h]
            if self.scale == 0:
                b = 0.0
            elif self.penalty == "hoeffding":
                b = self.scale * rem * (torch.log(2 * H * S * A * n_data / DELTA) * inv_n).sqrt()
            else:
                log_term = torch.log(H * n_data / DELTA)
                b = (self.scale * log_term * variance(P_hat, v_next) * inv_n).sqrt() \
                    + self.scale * H * log_term * inv_n
                b = b.clamp(max=H)
            q = (q - b).clamp(min=0.0)
            q = torch.minimum(q, rem)
            return torch.where(visited, q, torch.zeros_like(q))

        Q, _ = backward_induction(P_hat, r_hat, H, adjust)
        return tie_uniform(Q, n.unsqueeze(1))


@dataclass
class CertaintyEquivalence(OfflineAgent):
    name = "certainty-equivalence"

    def fit(self, spec, stats, seed=0):
        return VILCB(scale=0.0).fit(spec, stats, seed)


@dataclass
class BehaviourCloning(OfflineAgent):
    name = "bc"

    def fit(self, spec, stats, seed=0):
        n = stats.visits  # [N,S,A]
        total = n.sum(-1, keepdim=True)
        pi = torch.where(total > 0, n / total.clamp_min(1.0), torch.full_like(n, 1.0 / spec.n_actions))
        return pi.unsqueeze(1).expand(-1, spec.horizon, -1, -1).contiguous()
