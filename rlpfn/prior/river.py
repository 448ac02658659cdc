"""Rivers: RiverSwim-like chains where one action swims upstream against a current towards a large reward."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _log_uniform, _one_hot, _param, _reward_std


def river(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
          p_right=None, p_left=None, p_back=1.0, distractor=None, reward_std=0.0) -> Arrays:
    """A river after RiverSwim (Strehl & Littman 2008; the version of Osband, Russo & Van Roy 2013, see
    rlpfn.benchmarks.riverswim): states 0..S-1 on a line, start at state 0. `horizon` sets where the large reward starts (see g).

    Per MDP one "forward" action (index uniform in 0..A-1); every other action is "backward".
    Forward: from s, to s+1 w.p. p_right, to s-1 w.p. p_left, else stays (a step off either end stays, so
    state 0 moves right w.p. p_right and the far end S-1 moves left w.p. p_left).
    Backward: to s-1 w.p. p_back, else stays (state 0 stays).
    Rewards: `distractor` for each backward action in state 0 (the easy, small reward), 1 for forward in the
    upper river, states g..S-1; 0 elsewhere. g = min(S-1, max(1, floor((p_right - p_left)·H/2))): swimming
    there takes about half the episode, so the large reward stays within reach whatever S and H (with
    g = S-1 always, a long river and a short horizon would leave only the distractor, and be rejected).

    p_right: default a per-MDP draw from U(0.3, 0.9).
    p_left: default a per-MDP draw from U(0, 0.1); p_right + p_left <= 1.
    p_back: default 1 (backward moves are deterministic).
    distractor: default a per-MDP draw, log-uniform in [0.001, 0.1]; in [0, 1].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    forward = rng.integers(A, size=n)
    pr = _param(p_right, n, rng, lambda k: rng.uniform(0.3, 0.9, size=k))
    pl = _param(p_left, n, rng, lambda k: rng.uniform(0.0, 0.1, size=k))
    pb = _param(p_back, n, rng, lambda k: np.ones(k))
    d = _param(distractor, n, rng, lambda k: _log_uniform(0.001, 0.1, k, rng))
    for x, name, value in ((pr, "p_right", p_right), (pl, "p_left", p_left), (pb, "p_back", p_back),
                           (d, "distractor", distractor)):
        _check_range(x, 0.0, 1.0, name, value)
    _check_range(pr + pl, 0.0, 1.0, "p_right + p_left", (p_right, p_left))

    s = np.arange(S)
    stay, right, left = np.eye(S), np.eye(S)[np.minimum(s + 1, S - 1)], np.eye(S)[np.maximum(s - 1, 0)]
    col = (slice(None), None, None)  # per-MDP scalars against [S, S]
    fwd = pr[col] * right + pl[col] * left + (1 - pr - pl)[col] * stay  # [n, S, S]
    back = pb[col] * left + (1 - pb)[col] * stay
    is_fwd = (np.arange(A) == forward[:, None])[:, None, :, None]  # [n, 1, A, 1]
    P = np.where(is_fwd, fwd[:, :, None, :], back[:, :, None, :])

    R = np.zeros((n, S, A))
    R[:, 0, :] = d[:, None]
    R[np.arange(n), 0, forward] = 0.0
    g = np.clip(np.floor((pr - pl) * horizon / 2), 1, S - 1).astype(np.int64)  # [n]
    upper = (s[None, :] >= g[:, None]) | (s[None, :] == S - 1)  # [n, S]; with S = 1, state 0 is the far end
    R[np.arange(n)[:, None], s[None, :], forward[:, None]] = np.where(upper, 1.0, R[np.arange(n)[:, None], s[None, :], forward[:, None]])
    return P, R, _reward_std(reward_std, n, S, A, rng), _one_hot(np.zeros(n, dtype=np.int64), S)
