"""Summaries of learning curves: regret, confidence intervals, episodes to solve."""
from __future__ import annotations

import numpy as np
from scipy.special import stdtrit  # Student-t quantiles; scipy.stats would add a second to every start

SOLVE_WINDOW = 10
SOLVE_FRACTION = 0.9


def mean_ci(x: np.ndarray, axis: int = 0, level: float = 0.95):
    """Mean and the half-width of a Student-t confidence interval over `axis`."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = x.mean(axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    sem = x.std(axis, ddof=1) / np.sqrt(n)
    return mean, stdtrit(n - 1, 0.5 + level / 2) * sem


def episodes_to_solve(returns: np.ndarray, v_star: float, v_random: float,
                      window: int = SOLVE_WINDOW, fraction: float = SOLVE_FRACTION) -> np.ndarray:
    """Per run, the first episode (1-based) at which the running mean of the last `window`
    returns reaches V_random + fraction·(V* - V_random); NaN where it never does (censored)."""
    returns = np.atleast_2d(returns)
    target = v_random + fraction * (v_star - v_random)
    K = returns.shape[1]
    if K < window:
        return np.full(returns.shape[0], np.nan)
    c = np.cumsum(returns, axis=1)
    running = (c[:, window - 1:] - np.concatenate([np.zeros((returns.shape[0], 1)), c[:, :-window]], 1)) / window
    hit = running >= target - 1e-12
    first = np.where(hit.any(1), hit.argmax(1) + window, np.nan)
    return first.astype(float)
