"""A batched simulator: N runs stepped together, either N copies of one TabularMDP or one MDP per
run (a prior `MDPBatch`, whose MDPs share S, A and H)."""
from __future__ import annotations

import numpy as np
import torch

from .mdp import TabularMDP
from .planning import DTYPE


class BatchedEnv:
    def __init__(self, mdp, n_runs: int, generator: torch.Generator):
        """`mdp`: a TabularMDP (every run simulates it) or anything with `sampling_tables()` returning
        [n_runs, ...] arrays (an MDPBatch: run i simulates MDP i)."""
        self.n, self.gen = n_runs, generator
        prob, nxt, reward, R_std, mu0 = tabular_tables(mdp) if isinstance(mdp, TabularMDP) else mdp.sampling_tables()
        M, S, A, K = prob.shape
        if M not in (1, n_runs):
            raise ValueError(f"{M} MDPs cannot be simulated by {n_runs} runs (need 1 or {n_runs})")
        # Tables are flat over (MDP, s, a): run i reads rows offset[i] + s·A + a, its own MDP's or the one
        # shared MDP's. One flat index per lookup is 3-4x faster than multi-dimensional indexing.
        run = torch.arange(n_runs) if M == n_runs else torch.zeros(n_runs, dtype=torch.long)
        self.offset = run * (S * A)
        # Inverse-CDF sampling: one uniform per run and step, compared against cumulative rows. An outcome
        # fixes both the next state and the reward (exact outcome-dependent and Bernoulli rewards).
        self.cdf = _cdf(torch.as_tensor(prob, dtype=DTYPE).reshape(M * S * A, K))
        self.out_next = torch.as_tensor(nxt, dtype=torch.long).reshape(-1)
        self.out_reward = torch.as_tensor(reward, dtype=DTYPE).reshape(-1)
        self.R_std = torch.as_tensor(R_std, dtype=DTYPE).reshape(-1)
        self.mu0_cdf = _cdf(torch.as_tensor(mu0, dtype=DTYPE))[run]
        self.K = K
        self.noisy = bool((self.R_std > 0).any())
        self.A = A
        self.state = torch.zeros(n_runs, dtype=torch.long)

    def reset(self) -> torch.Tensor:
        u = torch.rand(self.n, 1, dtype=DTYPE, generator=self.gen)
        self.state = (self.mu0_cdf < u).sum(-1)
        return self.state

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (rewards [N], next states [N]) and moves every run."""
        row = self.offset + self.state * self.A + actions
        u = torch.rand(self.n, 1, dtype=DTYPE, generator=self.gen)
        outcome = row * self.K + (self.cdf.index_select(0, row) < u).sum(-1)
        nxt, r = self.out_next.take(outcome), self.out_reward.take(outcome)
        if self.noisy:
            r = r + self.R_std.take(row) * torch.randn(self.n, dtype=DTYPE, generator=self.gen)
        self.state = nxt
        return r, nxt


def tabular_tables(mdp: TabularMDP):
    """Outcome tables of one MDP, with a leading batch dimension of 1: (prob, next, reward) [1,S,A,K],
    R_std [1,S,A], mu0 [1,S]. Without an exact outcome table, outcome k is "move to state k" and pays R."""
    S, A = mdp.n_states, mdp.n_actions
    o = mdp.outcomes
    if o is None:
        prob, nxt, reward = mdp.P, np.tile(np.arange(S), (S, A, 1)), np.repeat(mdp.R[..., None], S, -1)
    else:
        prob, nxt, reward = o.prob, o.next_state, o.reward
    return prob[None], nxt[None], reward[None], mdp.R_std[None], mdp.mu0[None]


def _cdf(p: torch.Tensor) -> torch.Tensor:
    """Cumulative sums divided by the total, so the last entry with mass is exactly 1: a uniform
    draw u < 1 then never lands on a zero-probability entry, whatever the round-off."""
    c = p.cumsum(-1)
    return c / c[..., -1:]
