"""Training on the regret the model is judged by: the model acts in prior MDPs for many episodes, and its parameters
move to lower its cumulative regret (issue 9; docs/model/why_v1.md says why the v1 losses did not move it).

One estimate (`regret_loss`): the model acts with its stochastic policy (softmax of Q_plan / ((H-h)·T), one
forward pass per episode, `RlpfnAgent(refresh="episode", sample=True)`) for `episodes` episodes in `runs` runs of
each of `mdps` prior MDPs. Every step costs its exact gap V*_h(s) - Q*_h(s, a), normalised per MDP as validation
normalises it (by V* - V_random and the episode count). An action is credited with the regret of the rest of the
run, across later episodes too: exploring pays off in what later episodes no longer lose. REINFORCE with that
regret-to-go, minus a per-MDP, per-step baseline (the mean over the MDP's other runs), is an unbiased gradient of
the expected cumulative regret. Log-probabilities are recomputed with gradient for `grad_episodes` episodes per
run (drawn at random): each episode's policy comes from one forward pass at its start, so one batched pass over
those episode-start contexts gives them all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, PositiveInt

from .model import Context
from .planning import DTYPE


@dataclass
class RegretConfig:
    """Policy gradient on the model's own in-context regret (section regret)."""

    weight: NonNegativeFloat = 0.0
    """weight of the regret objective; 0: the v1 objective alone (no rollouts)"""
    every: PositiveInt = 1
    """a regret estimate every this many steps"""
    mdps: PositiveInt = 8
    """prior MDPs per estimate (one (S, A, H) bucket)"""
    runs: PositiveInt = 8
    """runs per MDP, >= 2: the baseline of a run is the mean of the MDP's other runs"""
    episodes: PositiveInt = 20
    """episodes per run"""
    grad_episodes: PositiveInt = 4
    """episodes per run whose log-probabilities are differentiated"""
    discount: ClosedUnitInterval = 1.0
    """regret of episode e+j counts with discount^j in the credit of an action of episode e (< 1 trades the bias of
    a shorter memory for lower variance)"""
    # What the episode's data is worth for the later episodes is read from the statistic it leaves, not from the
    # noisy sum of their regrets (actor-critic, as RL² trained).
    critic: bool = False
    """a learned critic of the regret-to-go from an episode's start (trained alongside by regression on the realised
    regret-to-go): an action is credited with the rest of its episode plus the critic's value after it minus
    before it"""
    critic_weight: NonNegativeFloat = 1.0
    """weight of the critic's regression loss"""

    def __post_init__(self):
        if self.runs < 2:
            raise ValueError(f"regret.runs must be >= 2 (the baseline is the other runs' mean), got {self.runs}")
        if self.grad_episodes > self.episodes:
            raise ValueError(f"regret.grad_episodes = {self.grad_episodes} exceeds regret.episodes = {self.episodes}")


class Critic(torch.nn.Module):
    """The expected normalised regret of the rest of a rollout, from the model's summary of an episode-start
    context and the share of the rollout's episodes still to come. Only training uses it; it is not shipped."""

    def __init__(self, d_model: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(d_model + 1, d_model), torch.nn.GELU(),
                                       torch.nn.Linear(d_model, 1))

    def forward(self, summary: torch.Tensor, to_come: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([summary.float(), to_come.float().unsqueeze(-1)], -1)).squeeze(-1)


def rest_of_episode(cost: torch.Tensor, horizon: int) -> torch.Tensor:
    """cost [N,T] per step (T = episodes·H) -> [N,E,H]: the cost from each step to the end of its episode."""
    return cost.view(cost.shape[0], -1, horizon).flip(2).cumsum(2).flip(2)


def regret_to_go(cost: torch.Tensor, horizon: int, discount: float = 1.0) -> torch.Tensor:
    """cost [N,T] per step (T = episodes·H) -> [N,T]: the cost of the rest of the step's episode plus
    discount^j times episode e+j's total, for every later episode."""
    N, T = cost.shape
    within = rest_of_episode(cost, horizon)  # [N,E,H]
    totals = within[:, :, 0]  # [N,E]
    later = torch.zeros_like(totals)
    for e in range(totals.shape[1] - 2, -1, -1):  # E is tens: a short loop over episodes, not steps
        later[:, e] = discount * (totals[:, e + 1] + later[:, e + 1])
    return (within + later.unsqueeze(2)).reshape(N, T)


def leave_one_out(x: torch.Tensor, groups: int) -> torch.Tensor:
    """x [G·R, ...] (R consecutive rows per group) minus, row by row, the mean of its group's other rows."""
    g = x.view(groups, -1, *x.shape[1:])
    R = g.shape[1]
    return (g - (g.sum(1, keepdim=True) - g) / (R - 1)).reshape(x.shape)


def regret_loss(model, mdps, cfg: RegretConfig, seed: int, critic: Critic | None = None) -> dict:
    """The REINFORCE surrogate of the normalised cumulative regret of `model` acting in `mdps` (a prior batch,
    TabularMDP of M MDPs), and the regret itself (for logging). Backpropagating the surrogate's "loss" gives an
    unbiased estimate of the gradient of the expected regret."""
    from .agents import RlpfnAgent
    from .experiments.evaluate import path_gap
    from .traces import run_trace

    M, R, E, H = len(mdps), cfg.runs, cfg.episodes, mdps.horizon
    runs = mdps.take(np.repeat(np.arange(M), R))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        trace = run_trace(runs, RlpfnAgent.with_model(model, refresh="episode", sample=True), E, seed)
    model.train(was_training)
    sol = runs.solution
    norm = torch.as_tensor((sol.v_star - sol.v_random) * E, dtype=DTYPE).clamp_min(1e-12)  # [N]
    cost = path_gap(runs, trace) / norm.unsqueeze(1)  # [N,T]: sums to the run's normalised regret
    N, device = len(runs), next(model.parameters()).device
    togo = regret_to_go(cost, H, cfg.discount)
    if critic is None:
        advantage = leave_one_out(togo, M)
    else:  # the rest of the episode, then the critic's value of the statistic the episode leaves
        with torch.no_grad():
            value = torch.cat([episode_values(model, critic, trace, E, torch.arange(N), device).cpu(),
                               torch.zeros(N, 1)], 1).to(DTYPE)  # [N,E+1], nothing to come after the last
        advantage = (rest_of_episode(cost, H) + (cfg.discount * value[:, 1:] - value[:, :-1]).unsqueeze(2)).reshape(N, -1)
    # The differentiated episodes: the same random ones in every run, so their contexts batch as one pass.
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(E, generator=gen)[:cfg.grad_episodes].sort().values
    run = torch.arange(N).repeat_interleave(len(chosen))  # [N·k]
    start = (chosen * H).repeat(N)  # the episode's first transition
    out = model(episode_contexts(trace, run, start).to(device))
    steps = start.unsqueeze(1) + torch.arange(H)  # [N·k, H] transitions of each chosen episode
    s, a = trace.s[run.unsqueeze(1), steps].to(device), trace.a[run.unsqueeze(1), steps].to(device)
    h = torch.arange(H, device=device)
    q = out.q_plan[torch.arange(len(run), device=device).unsqueeze(1), h, s]  # [N·k, H, A]
    remaining = (H - h).to(q.dtype).view(1, H, 1)
    logp = torch.log_softmax((q / remaining).float() / out.temperature, -1).gather(-1, a.unsqueeze(-1)).squeeze(-1)
    adv = advantage[run.unsqueeze(1), steps].to(device=device, dtype=logp.dtype)
    # mean over runs of the sum over its episodes: the chosen k of E stand for all of them (scaled by E / k)
    surrogate = (adv * logp).sum(1).view(N, -1).sum(1).mean() * (E / len(chosen))
    regret = cost.sum(1)  # [N] normalised cumulative regret of each run
    parts = {"loss": surrogate, "regret": regret.mean().detach().float()}
    if critic is not None:  # regression on the realised regret-to-go from the chosen episodes' starts
        target = togo[run, start].to(device=device, dtype=torch.float32)
        critic_mse = (critic(out.summary, (E - start // H) / E) - target).pow(2).mean()
        parts.update(loss=surrogate + cfg.critic_weight * critic_mse, critic_mse=critic_mse.detach())
    return parts


def episode_contexts(trace, run: torch.Tensor, start: torch.Tensor) -> Context:
    """The contexts the agent planned from at the episode starts `start` (transition indices) of runs `run`."""
    H = trace.horizon
    return Context(trace.stats_at(start, run), trace.s[run, start], torch.zeros_like(start), H, start // H)


def episode_values(model, critic: Critic, trace, E: int, runs: torch.Tensor, device, chunk: int = 256):
    """The critic's value at every episode start of `runs`: [len(runs), E]."""
    H = trace.horizon
    run = runs.repeat_interleave(E)
    start = torch.arange(E).repeat(len(runs)) * H
    values = [critic(model(episode_contexts(trace, run[i:i + chunk], start[i:i + chunk]).to(device)).summary,
                     ((E - start[i:i + chunk] // H) / E).to(device)) for i in range(0, len(run), chunk)]
    return torch.cat(values).view(len(runs), E)


__all__ = ["RegretConfig", "Critic", "regret_loss", "regret_to_go", "leave_one_out"]
