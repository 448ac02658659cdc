"""A batched simulator: N independent runs of one TabularMDP, stepped together."""
from __future__ import annotations

import torch

from .mdp import TabularMDP
from .planning import DTYPE


class BatchedEnv:
    def __init__(self, mdp: TabularMDP, n_runs: int, generator: torch.Generator):
        self.mdp, self.n, self.gen = mdp, n_runs, generator
        S, A = mdp.n_states, mdp.n_actions
        # Inverse-CDF sampling: one uniform per run and step, compared against cumulative rows.
        self.cdf = _cdf(torch.as_tensor(mdp.P, dtype=DTYPE).reshape(S * A, S))
        self.mu0_cdf = _cdf(torch.as_tensor(mdp.mu0, dtype=DTYPE))
        self.R = torch.as_tensor(mdp.R, dtype=DTYPE).reshape(-1)
        self.R_std = torch.as_tensor(mdp.R_std, dtype=DTYPE).reshape(-1)
        o = mdp.outcomes
        if o is not None:  # sample an outcome, which fixes both the next state and the reward
            K = o.prob.shape[-1]
            self.cdf = _cdf(torch.as_tensor(o.prob, dtype=DTYPE).reshape(S * A, K))
            self.out_next = torch.as_tensor(o.next_state).reshape(S * A, K)
            self.out_reward = torch.as_tensor(o.reward, dtype=DTYPE).reshape(S * A, K)
        self.noisy = bool((self.R_std > 0).any())
        self.A = A
        self.state = torch.zeros(n_runs, dtype=torch.long)

    def reset(self) -> torch.Tensor:
        u = torch.rand(self.n, 1, dtype=DTYPE, generator=self.gen)
        self.state = (self.mu0_cdf.unsqueeze(0) < u).sum(-1)
        return self.state

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (rewards [N], next states [N]) and moves every run."""
        sa = self.state * self.A + actions
        u = torch.rand(self.n, 1, dtype=DTYPE, generator=self.gen)
        k = (self.cdf[sa] < u).sum(-1)
        if self.mdp.outcomes is None:
            nxt, r = k, self.R[sa]
        else:
            nxt, r = self.out_next[sa, k], self.out_reward[sa, k]
        if self.noisy:
            r = r + self.R_std[sa] * torch.randn(self.n, dtype=DTYPE, generator=self.gen)
        self.state = nxt
        return r, nxt


def _cdf(p: torch.Tensor) -> torch.Tensor:
    """Cumulative sums divided by the total, so the last entry with mass is exactly 1: a uniform
    draw u < 1 then never lands on a zero-probability entry, whatever the round-off."""
    c = p.cumsum(-1)
    return c / c[..., -1:]
