"""Learning traces: behaviour agents run in a batch of prior MDPs, one MDP per run, all stepped together.

A trace is the raw transition log (s, a, r, s') [N, T] of every run, rewards rescaled to [0, 1] as agents
see them (and in the MDP's units). The same loop runs the online harness (evaluate.run_online). Its sufficient statistic after any prefix of k transitions, `Trace.stats_at`, is what the model
is shown; history tokens and the behaviour's next action come from the same log. Behaviours are the
registry's online agents (`random`, `optimal` with an ε, `ucbvi`, `psrl`, `qlearning`, `optql`, ...) and
`agents.Mixture`, which switches among several of them between episodes. Offline datasets are prefixes that end
at an episode boundary: any behaviour (an ε-mixture, a learning agent's replay), any size.
"""
from __future__ import annotations

from .errors import UserError
from .limits import check_memory, rollout_bytes

from dataclasses import dataclass
from typing import Callable

import torch

from .agents import Agent, AgentSpec
from .env import BatchedEnv
from .planning import DTYPE
from .stats import Stats


@dataclass
class Trace:
    s: torch.Tensor  # [N,T] long
    a: torch.Tensor  # [N,T] long
    r: torch.Tensor  # [N,T] float64, rescaled to [0, 1] as the agent saw it
    s_next: torch.Tensor  # [N,T] long
    reward: torch.Tensor  # [N,T] float64, in the MDP's own units
    n_states: int
    n_actions: int
    horizon: int

    @property
    def length(self) -> int:
        return self.s.shape[1]

    def per_episode(self, x: torch.Tensor) -> torch.Tensor:
        """[N,T] per-step values -> [N,K] sums over each episode."""
        return x.view(x.shape[0], -1, self.horizon).sum(-1)

    def stats_at(self, k: torch.Tensor, run: torch.Tensor) -> Stats:
        """Statistics of run[j]'s first k[j] transitions, for every j: Stats with M = len(k) rows.

        One masked scatter over the log prefixes, rather than a copy of running counts at every step:
        on 64 runs of 10^4 steps this costs milliseconds, and the loop that steps the runs stays lean."""
        S, A = self.n_states, self.n_actions
        M, T = len(k), self.length
        device = self.s.device  # a trace stays where its runs acted
        k, run = k.to(device), run.to(device)
        mask = (torch.arange(T, device=device) < k[:, None]).to(DTYPE)  # [M,T]
        s, a, s2, r = self.s[run], self.a[run], self.s_next[run], self.r[run]
        counts = torch.zeros(M, S * A * S, dtype=DTYPE, device=device).scatter_add_(1, (s * A + a) * S + s2, mask)
        reward_sum = torch.zeros(M, S * A, dtype=DTYPE, device=device).scatter_add_(1, s * A + a, r * mask)
        reward_sq = torch.zeros(M, S * A, dtype=DTYPE, device=device).scatter_add_(1, s * A + a, r * r * mask)
        return Stats(counts.view(M, S, A, S), reward_sum.view(M, S, A), reward_sq.view(M, S, A))


def run_trace(mdp, behaviour: Agent, episodes: int, seed: int, n_runs: int | None = None,
              progress: Callable[[int], None] | None = None, streams: torch.Tensor | None = None,
              device: torch.device | str = "cpu") -> Trace:
    """The one rollout loop: `behaviour` acts for `episodes` episodes in every run, batched.

    `mdp` is a TabularMDP: a prior batch with one run per MDP (n_runs None: run i acts in MDP i) or one MDP
    that `n_runs` runs share (the online harness, evaluate.run_online). The agent is told what a user knows (`AgentSpec.of(mdp)`: S, A, H and
    the reward bounds) and sees rewards rescaled to [0, 1] by the bounds; an oracle (`needs_mdp`) also
    gets `mdp`. The environment and the agent draw from generators derived from `seed`; runs with the same
    `streams` number share the environment's random numbers (env.BatchedEnv) and the agent's tie-breaking ones
    (Agent.argmax_random_ties); `progress(1)` is called after every episode. `device`: where the runs live while
    they act (pretraining's rollouts on a GPU; an agent that can, `Agent.on_device`), and where the trace stays.
    The random numbers are drawn on the CPU: a seed gives the same runs on any device, up to its arithmetic."""
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    N = len(mdp) if n_runs is None else n_runs
    spec = AgentSpec.of(mdp)
    check_memory(rollout_bytes(N, episodes, spec.horizon, spec.n_states, spec.n_actions),
                 f"{N} runs of {episodes} episodes (S={spec.n_states}, A={spec.n_actions}, H={spec.horizon})",
                 "the number of runs (--seeds), episodes or the horizon")
    device = torch.device(device)
    if device.type != "cpu" and not behaviour.on_device:
        raise UserError(f"agent {behaviour.name} acts on the CPU only, not on {device}")
    env = BatchedEnv(mdp, N, torch.Generator().manual_seed(2 * seed), streams, device)
    behaviour.streams, behaviour.device = env.streams, device
    behaviour.reset(spec, N, seed=2 * seed + 1, mdp=mdp if behaviour.needs_mdp else None)
    logs = [], [], [], [], []  # s, a, rescaled r, s', raw r: appended per step, stacked once
    for _ in range(episodes):
        s = env.reset()
        for h in range(spec.horizon):
            a = behaviour.act(s, h)
            reward, s_next = env.step(a)
            r = spec.rescale(reward)
            behaviour.observe(s, a, r, s_next, h)
            for log, x in zip(logs, (s, a, r, s_next, reward)):
                log.append(x)
            s = s_next
        if progress is not None:
            progress(1)
    return Trace(*(torch.stack(x, 1) for x in logs), spec.n_states, spec.n_actions, spec.horizon)


def offline_datasets(mdp, behaviour: Agent, episodes: int, seed: int, n_runs: int | None = None) -> Stats:
    """One offline dataset per run: the statistic of `episodes` whole episodes of `behaviour` (an ε-mixture:
    make_agent("optimal", epsilon=ε); a learner's replay: make_agent("ucbvi"), ...), on each MDP of a prior
    batch or in `n_runs` runs of one MDP (as run_trace)."""
    trace = run_trace(mdp, behaviour, episodes, seed, n_runs=n_runs)
    N = trace.s.shape[0]
    return trace.stats_at(torch.full((N,), trace.length), torch.arange(N))
