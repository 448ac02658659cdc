"""Learning traces: behaviour agents run in a batch of prior MDPs, one MDP per run, all stepped together.

A trace is the raw transition log (s, a, r, s') [N, T] of every run, rewards rescaled to [0, 1] as agents
see them. Its sufficient statistic after any prefix of k transitions, `Trace.stats_at`, is what the model
is shown; history tokens and the behaviour's next action come from the same log. Behaviours are the
registry's online agents (`random`, `optimal` with an ε, `ucbvi`, `psrl`, `qlearning`, `optql`, ...) and
`Mixture`, which switches among several of them between episodes. Offline datasets are prefixes that end
at an episode boundary: any behaviour (an ε-mixture, a learning agent's replay), any size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .agents import Agent, AgentSpec
from .env import BatchedEnv
from .planning import DTYPE
from .stats import Stats


@dataclass
class Trace:
    s: torch.Tensor  # [N,T] long
    a: torch.Tensor  # [N,T] long
    r: torch.Tensor  # [N,T] float64, rescaled to [0, 1]
    s_next: torch.Tensor  # [N,T] long
    n_states: int
    n_actions: int
    horizon: int

    @property
    def length(self) -> int:
        return self.s.shape[1]

    def stats_at(self, k: torch.Tensor, run: torch.Tensor) -> Stats:
        """Statistics of run[j]'s first k[j] transitions, for every j: Stats with M = len(k) rows.

        One masked scatter over the log prefixes, rather than a copy of running counts at every step:
        on 64 runs of 10^4 steps this costs milliseconds, and the loop that steps the runs stays lean."""
        S, A = self.n_states, self.n_actions
        M, T = len(k), self.length
        mask = (torch.arange(T) < k[:, None]).to(DTYPE)  # [M,T]
        s, a, s2, r = self.s[run], self.a[run], self.s_next[run], self.r[run]
        counts = torch.zeros(M, S * A * S, dtype=DTYPE).scatter_add_(1, (s * A + a) * S + s2, mask)
        reward_sum = torch.zeros(M, S * A, dtype=DTYPE).scatter_add_(1, s * A + a, r * mask)
        reward_sq = torch.zeros(M, S * A, dtype=DTYPE).scatter_add_(1, s * A + a, r * r * mask)
        return Stats(counts.view(M, S, A, S), reward_sum.view(M, S, A), reward_sq.view(M, S, A))


def run_trace(batch, behaviour: Agent, episodes: int, seed: int) -> Trace:
    """Run `behaviour` for `episodes` episodes in every MDP of `batch` (an MDPBatch), one run per MDP.

    The agent is told S, A, H and bounds [0, 1] (rewards reach it rescaled by the batch's declared bounds);
    an oracle behaviour (`optimal`) also gets the batch, whose Q* it reads per run. The environment and the
    agent draw from generators derived from `seed` (as in evaluate.run_online)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    N, S, A, H = len(batch), batch.n_states, batch.n_actions, batch.horizon
    env = BatchedEnv(batch, N, torch.Generator().manual_seed(2 * seed))
    behaviour.reset(AgentSpec(S, A, H, 0.0, 1.0), N, seed=2 * seed + 1, mdp=batch if behaviour.needs_mdp else None)
    log_s, log_a, log_r, log_s2 = [], [], [], []  # appended per step, stacked once: cheaper than row writes
    for _ in range(episodes):
        s = env.reset()
        for h in range(H):
            a = behaviour.act(s, h)
            r, s_next = env.step(a)
            r = batch.rescale(r)
            behaviour.observe(s, a, r, s_next, h)
            log_s.append(s), log_a.append(a), log_r.append(r), log_s2.append(s_next)
            s = s_next
    return Trace(*(torch.stack(x, 1) for x in (log_s, log_a, log_r, log_s2)), S, A, H)


@dataclass
class Mixture(Agent):
    """Switches among behaviours between episodes: each run follows one component per episode and, at
    every episode start after the first, redraws it (by `weights`) with probability `switch`. Every
    component observes every transition, so the learners among them learn from the mixture's data."""

    components: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    switch: float = 0.2
    name = "mixture"

    def __post_init__(self):
        if not self.components or len(self.components) != len(self.weights):
            raise ValueError("mixture: needs components and one weight per component")
        if not 0.0 <= self.switch <= 1.0:
            raise ValueError(f"mixture: switch must lie in [0, 1], got {self.switch}")

    @property
    def needs_mdp(self) -> bool:
        return any(c.needs_mdp for c in self.components)

    def hparams(self) -> dict:
        return {"components": [(c.name, c.hparams()) for c in self.components], "weights": list(self.weights),
                "switch": self.switch}

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        for i, c in enumerate(self.components):
            c.reset(spec, n_runs, seed=seed * 1009 + i + 1, mdp=mdp if c.needs_mdp else None)
        w = torch.as_tensor(np.asarray(self.weights, dtype=float), dtype=DTYPE)
        self.probs = w / w.sum()
        self.current = self._draw(n_runs)
        self.started = False

    def _draw(self, n: int) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=self.gen)

    def act(self, states, h):
        if h == 0:
            if self.started:
                switch = torch.rand(self.n_runs, dtype=DTYPE, generator=self.gen) < self.switch
                self.current = torch.where(switch, self._draw(self.n_runs), self.current)
            self.started = True
        actions = torch.stack([c.act(states, h) for c in self.components])  # [C,N]: every component plans
        return actions.gather(0, self.current[None]).squeeze(0)

    def observe(self, states, actions, rewards, next_states, h):
        for c in self.components:
            c.observe(states, actions, rewards, next_states, h)


def offline_datasets(batch, behaviour: Agent, episodes: int, seed: int) -> Stats:
    """One offline dataset per MDP of `batch`: the statistic of `episodes` whole episodes of `behaviour`
    (an ε-mixture: make_agent("optimal", epsilon=ε); a learner's replay: make_agent("ucbvi"), ...)."""
    trace = run_trace(batch, behaviour, episodes, seed)
    N = len(batch)
    return trace.stats_at(torch.full((N,), trace.length), torch.arange(N))
