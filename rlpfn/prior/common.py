"""Shared pieces of the random-MDP families: the common return type, parameter handling and reward draws.

Every family has the signature

    family(n, n_states, n_actions, horizon, rng, **params) -> (P [n,S,A,S], R [n,S,A], R_std [n,S,A], mu0 [n,S])

with numpy float64 arrays and mean rewards in [0, 1]. Each keyword parameter is keyword-only, defaults to a
per-MDP draw (None) or a fixed value, and also accepts a scalar or a per-MDP array [n] (see `_param`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Family = Callable[..., Arrays]


def _dirichlet_rows(alpha: np.ndarray, size: tuple[int, ...], rng: np.random.Generator,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """Dirichlet(alpha·1) rows of length size[-1]; alpha broadcasts against size[:-1].

    Sampled in log space (Gamma(a) = Gamma(a+1)·U^(1/a)) so that small concentrations never underflow to an
    all-zero row: the largest entry of every row is exactly exp(0) before normalisation.
    `mask` (broadcasting to size; every row needs one True) restricts each row to its True entries: the others
    get probability 0 and the kept ones are Dirichlet over their own count. The draws are the same with or
    without a mask, and an all-True mask changes nothing.
    """
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64)[..., None], size)
    log_g = np.log(rng.gamma(alpha + 1.0)) + np.log(rng.random(size)) / alpha
    if mask is not None:
        log_g = np.where(mask, log_g, -np.inf)
    log_g -= log_g.max(-1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(-1, keepdims=True)


def _log_uniform(lo: float, hi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))


def _param(value, n: int, rng: np.random.Generator, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """A per-MDP parameter vector [n]: `draw(n)` if value is None, else the given scalar (or [n] array).
    A given value consumes no random numbers."""
    if value is None:
        return draw(n)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


def _int_param(value, n: int, rng: np.random.Generator, draw: Callable[[int], np.ndarray], name: str,
               low: int = 0) -> np.ndarray:
    """`_param` for a count: int64 [n], every entry an integer >= low (ValueError otherwise)."""
    x = _param(value, n, rng, draw)
    if np.any(x != np.round(x)) or np.any(x < low):
        raise ValueError(f"{name} must be an integer >= {low} (or a per-MDP array of them), got {value}")
    return x.astype(np.int64)


def _check_range(x: np.ndarray, lo: float, hi: float, name: str, value) -> None:
    """ValueError unless every entry of x lies in [lo, hi]."""
    if np.any((x < lo) | (x > hi)) or np.any(np.isnan(x)):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")


def _reward_std(reward_std, n: int, S: int, A: int, rng: np.random.Generator) -> np.ndarray:
    """R_std [n,S,A] from a scalar or per-MDP [n] reward_std (>= 0); consumes no random numbers."""
    std = _param(reward_std, n, rng, lambda k: np.zeros(k))
    if np.any(std < 0) or np.any(np.isnan(std)):
        raise ValueError(f"reward_std must be >= 0, got {reward_std}")
    return np.broadcast_to(std[:, None, None], (n, S, A)).copy()


def random_rewards(n: int, S: int, A: int, rng: np.random.Generator, reward_density=0.2,
                   reward_std=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean rewards [n,S,A]: each pair rewarding with probability `reward_density` (reward ~ U(0,1), else 0),
    at least one rewarding pair per MDP; reward_density = 1 gives dense U(0,1) rewards. R_std = reward_std.
    Both take a scalar or a per-MDP array [n]."""
    density = _param(reward_density, n, rng, lambda k: np.full(k, 0.2))
    _check_range(density, 0.0, 1.0, "reward_density", reward_density)
    R_std = _reward_std(reward_std, n, S, A, rng)
    mask = rng.random((n, S, A)) < density[:, None, None]
    forced = rng.integers(S * A, size=n)  # drawn unconditionally so the stream does not depend on the mask
    none = ~mask.reshape(n, S * A).any(-1)
    mask.reshape(n, S * A)[none, forced[none]] = True
    R = np.where(mask, rng.random((n, S, A)), 0.0)
    return R, R_std


def _single_start(n: int, S: int, rng: np.random.Generator) -> np.ndarray:
    """mu0 [n,S] putting all mass on one uniformly drawn state per MDP."""
    return _one_hot(rng.integers(S, size=n), S)


def _one_hot(index: np.ndarray, S: int) -> np.ndarray:
    """[n,S] rows with a 1 at index[i]: a deterministic start state per MDP."""
    out = np.zeros((len(index), S))
    out[np.arange(len(index)), index] = 1.0
    return out


def _check_sizes(n: int, S: int, A: int) -> None:
    if n < 0 or S < 1 or A < 1:
        raise ValueError(f"need n >= 0, n_states >= 1 and n_actions >= 1, got n={n}, S={S}, A={A}")
