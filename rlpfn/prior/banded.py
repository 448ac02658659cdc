"""Banded MDPs: ordered states with local, sparse random transitions, a goal at the far end and pitfalls."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _dirichlet_rows, _int_param, _log_uniform, _one_hot, \
    _param, _reward_std


def banded(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
           band=None, concentration=None, n_pits=None, reward_density=None, reward_scale=None,
           reward_std=0.0) -> Arrays:
    """Banded random MDPs, loosely after AnyMDP (Wang et al. 2025, "Towards Large-Scale In-Context
    Reinforcement Learning by Meta-Training in Randomized Worlds", arXiv:2502.02869): random dynamics with a
    built-in sense of progress. `horizon` is ignored.

    States 0..S-1 in order. From s every action moves within the band [s - band, s + band] (clipped to the
    states), with P(.|s,a) ~ Dirichlet(concentration) over the band: small concentrations give nearly
    deterministic, action-specific jumps. Goal: state S-1, absorbing, mean reward 1 for every action taken in
    it. Pitfalls: n_pits states other than the start and the goal (uniform), absorbing with reward 0. Elsewhere
    each pair pays w.p. reward_density a small mean reward ~ U(0, reward_scale). Start: a uniform state among
    the lowest max(1, S // 4).

    band: half-width of the band, an integer >= 1; default a per-MDP draw, uniform in {1, 2, 3}.
    concentration: > 0; default a per-MDP draw, log-uniform in [0.05, 1].
    n_pits: integer >= 0, capped at S - 2; default a per-MDP draw, uniform in {0, .., S // 5}.
    reward_density: in [0, 1]; default a per-MDP draw from U(0, 1).
    reward_scale: in [0, 1]; default a per-MDP draw, log-uniform in [0.01, 0.2].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    w = _int_param(band, n, rng, lambda k: rng.integers(1, 4, size=k), "band", low=1)
    c = _param(concentration, n, rng, lambda k: _log_uniform(0.05, 1.0, k, rng))
    if np.any(~(c > 0)):
        raise ValueError(f"concentration must be > 0, got {concentration}")
    k_pits = np.minimum(_int_param(n_pits, n, rng, lambda k: rng.integers(S // 5 + 1, size=k), "n_pits"),
                        max(S - 2, 0))
    density = _param(reward_density, n, rng, lambda k: rng.random(k))
    _check_range(density, 0.0, 1.0, "reward_density", reward_density)
    scale = _param(reward_scale, n, rng, lambda k: _log_uniform(0.01, 0.2, k, rng))
    _check_range(scale, 0.0, 1.0, "reward_scale", reward_scale)

    s = np.arange(S)
    in_band = np.abs(s[:, None] - s[None, :]) <= w[:, None, None]  # [n, S, S]
    P = _dirichlet_rows(c[:, None, None], (n, S, A, S), rng, in_band[:, :, None, :])
    R = np.where(rng.random((n, S, A)) < density[:, None, None], rng.random((n, S, A)) * scale[:, None, None], 0.0)

    start = rng.integers(max(1, S // 4), size=n)
    keys = rng.random((n, S))  # pits: the k lowest keys among the states that are neither start nor goal
    keys[np.arange(n), start] = np.inf
    keys[:, S - 1] = np.inf
    is_pit = np.argsort(np.argsort(keys, axis=1), axis=1) < k_pits[:, None]
    is_goal = np.zeros((n, S), dtype=bool)
    is_goal[:, S - 1] = True
    absorbing = is_pit | is_goal
    P[absorbing] = 0.0
    bi, si = np.nonzero(absorbing)
    P[bi, si, :, si] = 1.0
    R[is_pit] = 0.0
    R[is_goal] = 1.0
    return P, R, _reward_std(reward_std, n, S, A, rng), _one_hot(start, S)
