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
        self.cdf = torch.as_tensor(mdp.P, dtype=DTYPE).cumsum(-1).reshape(S * A, S)
        self.cdf[:, -1] = 1.0  # guard against round-off leaving the last bucket short of 1
        self.mu0_cdf = torch.as_tensor(mdp.mu0, dtype=DTYPE).cumsum(-1)
        self.mu0_cdf[-1] = 1.0
        self.R = torch.as_tensor(mdp.R, dtype=DTYPE).reshape(-1)
        self.R_std = torch.as_tensor(mdp.R_std, dtype=DTYPE).reshape(-1)
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
        nxt = (self.cdf[sa] < u).sum(-1)
        r = self.R[sa]
        if self.noisy:
            r = r + self.R_std[sa] * torch.randn(self.n, dtype=DTYPE, generator=self.gen)
        self.state = nxt
        return r, nxt
