"""What a terminated episode means, in one place, for every part of rlpfn.

An episode that terminates before its H steps are up continues in ONE added absorbing state (index S, after
the environment's own states) that every action keeps and that pays exactly 0, in the environment's own
reward units: the episode is over and its remaining steps are worth nothing, whatever sign the other rewards
have. So every episode lasts exactly H steps for the agents, and the reward bounds always include 0.

Online, the absorbing state is part of the MDP (gym_import for environments with tables, zero_shot for
reset/step-only ones) and agents learn it from the steps they spend there. Offline, a log never shows those
steps, so the absorbing state enters the statistic as what it is, known dynamics: each action a self-loop
paying 0, weighted as heavily as the whole log (`absorbing_counts`), so that no agent's pessimism or optimism
about "unvisited" or "rarely visited" pairs applies to it.
"""
from __future__ import annotations

TERMINAL_REWARD = 0.0


def bounds_with_terminal(low: float, high: float) -> tuple[float, float]:
    """Reward bounds that also hold the absorbing state's reward, 0."""
    return min(float(low), TERMINAL_REWARD), max(float(high), TERMINAL_REWARD)


def add_absorbing(stats, state: int, weight: float, rescale) -> None:
    """Write the absorbing state's known dynamics into an offline statistic (in place): every action of
    `state` loops to `state` and pays TERMINAL_REWARD (rescaled as agents see rewards), `weight` times."""
    import torch

    r = float(rescale(torch.tensor(TERMINAL_REWARD, dtype=torch.float64)))
    stats.counts[:, state, :, :] = 0.0
    stats.counts[:, state, :, state] = weight
    stats.reward_sum[:, state, :] = weight * r
    stats.reward_sq_sum[:, state, :] = weight * r * r
