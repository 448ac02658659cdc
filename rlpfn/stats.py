"""Stats: the sufficient statistic of tabular data, batched over runs.

Whatever the history length, what a model-based learner needs of a tabular MDP's data is
N(s,a,s') and the per-(s,a) reward sums and sums of squares. Every model-based baseline
(UCB-VI, PSRL, VI-LCB, certainty equivalence, BC) and the rlpfn model (inside its model.Context) read this.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .planning import DTYPE, normalize_counts


@dataclass
class Stats:
    counts: torch.Tensor  # [N,S,A,S] visit counts N(s,a,s')
    reward_sum: torch.Tensor  # [N,S,A]
    reward_sq_sum: torch.Tensor  # [N,S,A]

    @classmethod
    def zeros(cls, n_runs: int, n_states: int, n_actions: int, device: torch.device | str = "cpu") -> "Stats":
        return cls(
            torch.zeros(n_runs, n_states, n_actions, n_states, dtype=DTYPE, device=device),
            torch.zeros(n_runs, n_states, n_actions, dtype=DTYPE, device=device),
            torch.zeros(n_runs, n_states, n_actions, dtype=DTYPE, device=device),
        )

    @classmethod
    def from_transitions(cls, n_states, n_actions, s, a, r, s_next) -> "Stats":
        """Build from logs [N,T] of transitions (one row per run)."""
        st = cls.zeros(s.shape[0], n_states, n_actions)
        st.add(s, a, r, s_next)
        return st

    @property
    def n_runs(self) -> int:
        return self.counts.shape[0]

    def add(self, s, a, r, s_next) -> None:
        """Add transitions: tensors [N] (one per run) or [N,T] (T per run)."""
        N, S, A, _ = self.counts.shape
        run = torch.arange(N, device=s.device).view(N, *([1] * (s.dim() - 1))).expand_as(s)
        r = r.to(DTYPE)
        self.counts.index_put_((run, s, a, s_next), torch.ones_like(r), accumulate=True)
        self.reward_sum.index_put_((run, s, a), r, accumulate=True)
        self.reward_sq_sum.index_put_((run, s, a), r * r, accumulate=True)

    def rows(self, idx: torch.Tensor) -> "Stats":
        """The statistic of the runs `idx` only."""
        return Stats(self.counts[idx], self.reward_sum[idx], self.reward_sq_sum[idx])

    def to(self, device) -> "Stats":
        return Stats(self.counts.to(device), self.reward_sum.to(device), self.reward_sq_sum.to(device))

    @property
    def visits(self) -> torch.Tensor:
        """N(s,a): [N,S,A]."""
        return self.counts.sum(-1)

    def empirical(self, sparse: bool | None = None):
        """(P̂, r̂, N): the empirical model; unvisited pairs have zero rows and r̂ = 0."""
        P_hat, n = normalize_counts(self.counts, sparse)
        r_hat = self.reward_sum / n.clamp_min(1.0)
        return P_hat, r_hat, n


def behaviour_entropy(visits: torch.Tensor) -> torch.Tensor:
    """[B] how evenly each dataset's actions spread over the actions of a state, from its visits N(s, a) [B,S,A]: per
    visited state the entropy of the action counts over log A, averaged with the states' visits as weights. About 0
    for data that always take one action per state (expert data), 1 for uniform-random data."""
    n_s = visits.sum(-1)
    p = visits / n_s.clamp_min(1)[..., None]
    A = visits.shape[-1]
    entropy = -(p * p.clamp_min(1e-30).log()).sum(-1) / (math.log(A) if A > 1 else 1.0)  # one action: 0, narrow
    return (entropy * n_s).sum(-1) / n_s.sum(-1).clamp_min(1)
