"""Trees of arms: SixArms-like bandit MDPs where riskier arms are harder to enter but pay more."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _log_uniform, _one_hot, _param, _reward_std


def tree(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
         p_min=0.01, risk=None, noop_reward=None, reward_std=0.0) -> Arrays:
    """A hub and arms after SixArms (Strehl & Littman 2008; see rlpfn.benchmarks.sixarms). Start at the hub,
    state 0. `horizon` is ignored.

    Arms: K = min(A, S-1). The S-1 other states are rooms, split over the K arms in contiguous blocks (every
    arm gets one room, the remaining S-1-K go to uniformly drawn arms), an arm with several rooms being a chain.
    Hub: action i < K tries to enter arm i's first room, succeeding w.p. p_i and otherwise staying in the hub
    (reward 0); actions i >= K (when S-1 < A) stay in the hub and pay `noop_reward`.
    Room: one designated action (uniform per room) moves to the next room of the arm, or in the arm's last room
    stays there and pays the arm's reward r_i; every other action returns to the hub (reward 0).
    Risk: p_i ~ log-uniform in [p_min, 1] per arm and r_i = (min_j p_j / p_i)^risk, so the hardest arm to
    enter pays 1 and easier arms pay less (SixArms: entry 1 .. 0.01, pay 50/6000 .. 1).

    p_min: smallest entry probability, in (0, 1]; default 0.01.
    risk: exponent of the reward/entry trade-off, >= 0; default a per-MDP draw from U(0.5, 1.5).
    noop_reward: the hub's safe reward for actions without an arm, in [0, 1]; default a per-MDP draw,
        log-uniform in [0.001, 0.01].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    lo = _param(p_min, n, rng, lambda k: np.full(k, 0.01))
    if np.any(~((lo > 0) & (lo <= 1))):
        raise ValueError(f"p_min must lie in (0, 1], got {p_min}")
    kappa = _param(risk, n, rng, lambda k: rng.uniform(0.5, 1.5, size=k))
    if np.any(~(kappa >= 0)):
        raise ValueError(f"risk must be >= 0, got {risk}")
    safe = _param(noop_reward, n, rng, lambda k: _log_uniform(0.001, 0.01, k, rng))
    _check_range(safe, 0.0, 1.0, "noop_reward", noop_reward)
    K, rooms = min(A, S - 1), S - 1
    b = np.arange(n)

    # Arms: entry probabilities, rewards, lengths (K = 0 only when S = 1: a lone hub).
    p = np.exp(np.log(lo)[:, None] * rng.random((n, K)))  # log-uniform in [p_min, 1]
    r = (p.min(-1, keepdims=True) / p) ** kappa[:, None] if K else p
    length = 1 + (rng.multinomial(rooms - K, np.full(K, 1.0 / K), size=n) if K else np.zeros((n, 0), int))
    end = np.cumsum(length, axis=1)  # one past each arm's last room (rooms numbered 0..S-2)
    first = end - length
    advance = rng.integers(A, size=(n, rooms))  # each room's designated action

    P = np.zeros((n, S, A, S))
    R = np.zeros((n, S, A))
    a = np.arange(K)
    P[b[:, None], 0, a, 1 + first] = p  # hub: enter arm i's first room ...
    P[b[:, None], 0, a, 0] = 1 - p  # ... or stay
    P[:, 0, K:, 0] = 1.0
    R[:, 0, K:] = safe[:, None]

    j = np.arange(rooms)
    arm = (j[None, :, None] >= end[:, None, :]).sum(-1)  # [n, rooms]: the arm of each room
    last = j + 1 == np.take_along_axis(end, arm, 1)
    bb, jj = np.meshgrid(b, j, indexing="ij")
    P[:, 1:, :, 0] = 1.0  # rooms: every action returns to the hub except the designated one
    P[bb, 1 + jj, advance, 0] = 0.0
    P[bb, 1 + jj, advance, np.where(last, 1 + jj, 2 + jj)] = 1.0
    R[bb, 1 + jj, advance] = np.where(last, np.take_along_axis(r, arm, 1), 0.0)
    return P, R, _reward_std(reward_std, n, S, A, rng), _one_hot(np.zeros(n, dtype=np.int64), S)
