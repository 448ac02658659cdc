"""Unstructured random MDPs: Dirichlet transition rows over all states, and Garnet (few random successors)."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_sizes, _dirichlet_rows, _int_param, _log_uniform, _param, _single_start, \
    random_rewards


def dirichlet(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
              concentration=None, reward_density=0.2, reward_std=0.0) -> Arrays:
    """P(.|s,a) ~ Dirichlet(concentration·1) over all S states; rewards from `random_rewards`; a uniformly
    drawn single start state. `horizon` is ignored.

    concentration: default a per-MDP draw, log-uniform in [0.05, 1] (small = nearly deterministic
        transitions, 1 = uniform over the simplex); must be > 0.
    reward_density: probability that a pair pays a U(0,1) mean reward (at least one pair always does);
        default 0.2.
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    c = _param(concentration, n, rng, lambda k: _log_uniform(0.05, 1.0, k, rng))
    if np.any(~(c > 0)):
        raise ValueError(f"concentration must be > 0, got {concentration}")
    P = _dirichlet_rows(c[:, None, None], (n, S, A, S), rng)
    R, R_std = random_rewards(n, S, A, rng, reward_density, reward_std)
    return P, R, R_std, _single_start(n, S, rng)


def garnet(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
           b=3, reward_density=0.2, reward_std=0.0) -> Arrays:
    """Garnet (Archibald et al. 1995; Bhatnagar et al. 2009): each (s,a) has min(b, S) distinct successors
    chosen uniformly at random, with probabilities ~ Dirichlet(1) (uniform stick-breaking) over them;
    rewards from `random_rewards`; a uniformly drawn single start state. `horizon` is ignored.

    b: successors per pair, an integer >= 1 (clamped to S); default 3.
    reward_density: probability that a pair pays a U(0,1) mean reward (at least one pair always does);
        default 0.2.
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    k = np.minimum(_int_param(b, n, rng, lambda m: np.full(m, 3), "b (successors per pair)", low=1), S)
    k_max = int(k.max()) if n else 1
    succ = np.argsort(rng.random((n, S, A, S)), axis=-1)[..., :k_max]  # k_max distinct successors, uniformly
    # MDP i keeps its first k[i] successors; a fixed b masks nothing, so its draws are as they always were.
    keep = np.arange(k_max) < k[:, None, None, None]
    P = np.zeros((n, S, A, S))
    np.put_along_axis(P, succ, _dirichlet_rows(np.ones((n, S, A)), (n, S, A, k_max), rng, keep), axis=-1)
    R, R_std = random_rewards(n, S, A, rng, reward_density, reward_std)
    return P, R, R_std, _single_start(n, S, rng)
