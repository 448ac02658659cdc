"""`rlpfn.Agent`: any registered agent (by default the pretrained model) driven from your own loop, with plain
Python values: `act(state) -> action`, `observe(state, action, reward, next_state, terminated, truncated)`.

    agent = rlpfn.Agent("rlpfn", n_states=16, n_actions=4, horizon=100, reward_bounds=(0.0, 1.0))
    obs, _ = env.reset(seed=0)
    while True:
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated, truncated)
        if agent.episode_over:
            break
        obs = next_obs

Inside, every episode lasts exactly `horizon` steps, as the agents are built for: rewards are rescaled to
[0, 1] by the bounds, and an episode that ends early spends its remaining steps in the added absorbing state
that pays 0 (rlpfn/terminal.py), which `observe` plays out by itself.
"""
from __future__ import annotations

import torch

from .agents import AgentSpec, make_agent
from .agents.base import Agent as _Protocol
from .mdp import MDPError
from .planning import DTYPE
from .terminal import TERMINAL_REWARD, bounds_with_terminal


class Agent:
    def __init__(self, agent: str | _Protocol = "rlpfn", n_states: int = 1, n_actions: int = 1, horizon: int = 1,
                 reward_bounds: tuple[float, float] = (0.0, 1.0), seed: int = 0, **hparams):
        for key, v in (("n_states", n_states), ("n_actions", n_actions), ("horizon", horizon)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise MDPError(f"{key} must be a positive integer, got {v!r}")
        lo, hi = bounds_with_terminal(*(float(b) for b in reward_bounds))
        if not (hi > lo and abs(lo) < float("inf") and abs(hi) < float("inf")):
            raise MDPError(f"reward_bounds must be finite (low, high) with high > low, got {reward_bounds}")
        self.agent = make_agent(agent, **hparams) if isinstance(agent, str) else agent
        if not self.agent.online:
            raise MDPError(f"agent {self.agent.name!r} is offline-only: it cannot act in a loop")
        self.n_states, self.n_actions, self.horizon = n_states, n_actions, horizon
        self.absorbing = n_states  # where an episode that ended early spends its remaining steps
        self.spec = AgentSpec(n_states + 1, n_actions, horizon, lo, hi)
        self.agent.reset(self.spec, 1, seed=seed)
        self.step = 0  # step within the current episode
        self.episode_over = False

    def act(self, state: int) -> int:
        """The action in `state` at the current step of the episode."""
        if self.episode_over:
            self.step, self.episode_over = 0, False  # a new episode begins
        state = self._state(state, "state")
        return int(self.agent.act(torch.tensor([state]), self.step)[0])

    def observe(self, state: int, action: int, reward: float, next_state: int, terminated: bool = False,
                truncated: bool = False) -> None:
        """The outcome of acting `action` in `state`. After the last step of an episode (`terminated`,
        `truncated`, or the horizon reached) `episode_over` is True and the next `act` starts a new one."""
        s, s2 = self._state(state, "state"), self._state(next_state, "next_state")
        if not (isinstance(action, int) or hasattr(action, "__index__")) or not 0 <= int(action) < self.n_actions:
            raise MDPError(f"action {action!r} is not in [0, {self.n_actions})")
        r = float(reward)
        if not self.spec.r_min <= r <= self.spec.r_max:
            raise MDPError(f"reward {r} is outside reward_bounds ({self.spec.r_min}, {self.spec.r_max})")
        self._record(s, int(action), r, self.absorbing if terminated else s2)
        if terminated or truncated:  # the remaining steps, in the absorbing state, paying 0
            while self.step < self.horizon:
                a = int(self.agent.act(torch.tensor([self.absorbing]), self.step)[0])
                self._record(self.absorbing, a, TERMINAL_REWARD, self.absorbing)
        self.episode_over = self.step == self.horizon

    def _record(self, s: int, a: int, r: float, s2: int) -> None:
        if self.step >= self.horizon:
            raise MDPError(f"the episode is longer than the horizon {self.horizon}: end it with terminated or "
                           "truncated, or give a longer horizon")
        self.agent.observe(torch.tensor([s]), torch.tensor([a]), self.spec.rescale(torch.tensor([r], dtype=DTYPE)),
                           torch.tensor([s2]), self.step)
        self.step += 1

    def _state(self, x, what: str) -> int:
        if not hasattr(x, "__index__") or not 0 <= int(x) < self.n_states:
            raise MDPError(f"{what} {x!r} is not a state in [0, {self.n_states})")
        return int(x)
