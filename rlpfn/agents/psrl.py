"""PSRL (Osband, Russo, Van Roy, NeurIPS 2013, arXiv:1306.0940).

Before every episode: sample P̃(.|s,a) ~ Dirichlet(α0 + N(s,a,.)) over all S states and mean
rewards from a Normal posterior (prior N(0,1), known noise precision 1: mean Σr/(1+n),
precision 1+n, as in REFERENCE.md), solve by backward induction, act greedily all episode.
α0 = 0.1 roughly halves regret against α0 = 1 on gridworlds (REFERENCE.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..planning import DTYPE, backward_induction
from ..stats import Stats
from .base import Agent


@dataclass
class PSRL(Agent):
    name = "psrl"
    alpha0: float = 0.1

    def __post_init__(self):
        if not self.alpha0 > 0:
            raise ValueError(f"psrl: alpha0 must be > 0, got {self.alpha0}")

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        self.stats = Stats.zeros(n_runs, spec.n_states, spec.n_actions)

    def plan(self) -> torch.Tensor:
        st = self.stats
        # Dirichlet as normalised Gammas; _standard_gamma is torch's seedable (generator) gamma.
        g = torch._standard_gamma(st.counts + self.alpha0, generator=self.gen)
        P = g / g.sum(-1, keepdim=True).clamp_min(1e-300)
        n = st.visits
        noise = torch.randn(n.shape, dtype=DTYPE, generator=self.gen)
        R = st.reward_sum / (1 + n) + noise / (1 + n).sqrt()
        self.Q, _ = backward_induction(P, R, self.spec.horizon)
        return self.Q

    def act(self, states, h):
        if h == 0:
            self.plan()
        return self.argmax_random_ties(self.Q[torch.arange(self.n_runs), h, states])

    def observe(self, states, actions, rewards, next_states, h):
        self.stats.add(states, actions, rewards, next_states)

