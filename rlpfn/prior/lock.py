"""Combination locks: deep-exploration chains where one wrong action anywhere loses all progress."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _log_uniform, _one_hot, _param, _reward_std


def lock(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
         slip=None, distractor=None, reward_std=0.0) -> Arrays:
    """A combination lock (deep exploration, as in DeepSea: Osband et al. 2019, "Behaviour Suite for
    Reinforcement Learning" (bsuite), and the combination locks of the exploration literature). Start at 0.

    Lock states 0..L-1 with L = min(S, ceil(H / 2)): the end is reached halfway through the episode at the
    earliest, so opening the lock pays for about half the episode (with L = H - 1 the prize would last one
    step, and the MDP would be rejected as trivial whenever H is below S).
    In each lock state s < L-1 exactly one correct action (uniform per state) advances to s+1 w.p. 1 - slip
    (else stays); every other action pays `distractor` and resets: to state 0 when S = L, otherwise into one
    of the S - L trap states (uniform per state and action). Traps are absorbing with reward 0 (like a wrong
    move in DeepSea, it forfeits the prize for the rest of the episode). The last lock state L-1 is absorbing
    and pays 1 for every action taken in it.

    slip: in [0, 1]; default a per-MDP draw from U(0, 0.1).
    distractor: reward of a wrong action, in [0, 1]; default a per-MDP draw: 0 w.p. 1/2, otherwise
        log-uniform in [0.001, 0.01].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A, H = n_states, n_actions, horizon
    _check_sizes(n, S, A)
    L = min(S, max((H + 1) // 2, 1))
    p_slip = _param(slip, n, rng, lambda k: rng.uniform(0.0, 0.1, size=k))
    _check_range(p_slip, 0.0, 1.0, "slip", slip)
    d = _param(distractor, n, rng,
               lambda k: np.where(rng.random(k) < 0.5, 0.0, _log_uniform(0.001, 0.01, k, rng)))
    _check_range(d, 0.0, 1.0, "distractor", distractor)
    correct = rng.integers(A, size=(n, L))
    wrong_to = L + rng.integers(S - L, size=(n, L, A)) if S > L else np.zeros((n, L, A), dtype=np.int64)

    b, s, a = np.meshgrid(np.arange(n), np.arange(L), np.arange(A), indexing="ij")
    right = a == correct[:, :, None]  # [n, L, A]
    P = np.zeros((n, S, A, S))
    P[b, s, a, wrong_to] = np.where(right, 0.0, 1.0)
    bc, sc = np.meshgrid(np.arange(n), np.arange(L - 1), indexing="ij")
    P[bc, sc, correct[:, :-1], sc + 1] = 1 - p_slip[:, None]
    P[bc, sc, correct[:, :-1], sc] = p_slip[:, None]
    R = np.zeros((n, S, A))
    R[:, :L] = np.where(right, 0.0, d[:, None, None])
    absorbing = np.arange(S) >= L - 1  # the last lock state and the traps
    P[:, absorbing] = 0.0
    P[:, absorbing, :, absorbing] = 1.0
    R[:, absorbing] = 0.0
    R[:, L - 1] = 1.0
    return P, R, _reward_std(reward_std, n, S, A, rng), _one_hot(np.zeros(n, dtype=np.int64), S)
