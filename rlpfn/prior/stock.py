"""Queues and inventories: ordered states counting jobs or goods, the shape of operations problems."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _log_uniform, _one_hot, _param, _reward_std


def _rescale(raw: np.ndarray) -> np.ndarray:
    """Mean rewards [n,S,A] mapped onto [0, 1] per MDP (min to 0, max to 1; a constant MDP to 0)."""
    lo = raw.min((1, 2), keepdims=True)
    span = raw.max((1, 2), keepdims=True) - lo
    return (raw - lo) / np.where(span > 0, span, 1.0)


def queue(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
          arrival=None, holding=None, patience=None, reward_std=0.0) -> Arrays:
    """A service-rate-controlled queue: a birth-death chain (as in the queueing-control examples of Puterman
    1994, ch. 3). State s = jobs in a buffer of S - 1 places, start empty. `horizon` is ignored.

    Each step a job arrives w.p. `arrival` and, when s > 0, one is served w.p. mu_a (an arrival finding the
    buffer full while no job is served is lost), mu_a being the rate of the chosen action: the A rates are
    sorted U(0, 1) draws per MDP, action 0 the slowest. Reward: -holding·min(s / patience, 1) - (1 - holding)·mu_a,
    a holding cost against a cost of fast service, mapped onto [0, 1] per MDP.

    arrival: in [0, 1]; default a per-MDP draw from U(0.2, 0.8).
    holding: weight of the holding cost against the service cost, in [0, 1]; default a per-MDP draw from
        U(0.3, 0.9).
    patience: jobs at which the holding cost is full, >= 1; default a per-MDP draw, uniform in [1, S].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    lam = _param(arrival, n, rng, lambda k: rng.uniform(0.2, 0.8, size=k))
    _check_range(lam, 0.0, 1.0, "arrival", arrival)
    h = _param(holding, n, rng, lambda k: rng.uniform(0.3, 0.9, size=k))
    _check_range(h, 0.0, 1.0, "holding", holding)
    b = _param(patience, n, rng, lambda k: rng.uniform(1.0, max(S, 1), size=k))
    if np.any(~(b >= 1)):
        raise ValueError(f"patience must be >= 1, got {patience}")
    mu = np.sort(rng.random((n, A)), axis=1)

    s = np.arange(S)
    served = mu[:, None, :] * (s > 0)[None, :, None]  # [n, S, A]
    lam_ = lam[:, None, None]
    up, down = lam_ * (1 - served), served * (1 - lam_)
    P = np.zeros((n, S, A, S))
    b_, s_, a_ = np.meshgrid(np.arange(n), s, np.arange(A), indexing="ij")
    np.add.at(P, (b_, s_, a_, np.minimum(s_ + 1, S - 1)), up)
    np.add.at(P, (b_, s_, a_, np.maximum(s_ - 1, 0)), down)
    np.add.at(P, (b_, s_, a_, s_), 1 - up - down)
    hold = np.minimum(s[None, :] / b[:, None], 1.0)  # [n, S]
    raw = -h[:, None, None] * hold[:, :, None] - (1 - h)[:, None, None] * mu[:, None, :]
    return P, _rescale(raw), _reward_std(reward_std, n, S, A, rng), _one_hot(np.zeros(n, dtype=np.int64), S)


def inventory(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
              demand=None, max_order=None, order_cost=None, holding=None, reward_std=0.0) -> Arrays:
    """Inventory control with random demand (the classic stochastic inventory problem; Puterman 1994, 3.2).
    State s = goods in stock, 0..S-1 (S - 1 is the warehouse's capacity); start empty. `horizon` is ignored.

    Action a orders q_a = round(a · max_order / (A - 1)) goods (A = 1: none), delivered at once up to the
    capacity: y = min(s + q_a, S - 1). A Poisson(demand) number of customers then buy min(y, D), the rest is
    kept: s' = y - min(y, D). Reward: sales (price 1 each) - order_cost · q_a - holding · y, mapped onto
    [0, 1] per MDP.

    demand: mean demand per step, finite and > 0; default a per-MDP draw, log-uniform in [0.5, max(1, S / 3)].
    max_order: the largest order, >= 0; default a per-MDP draw, uniform in [1, S - 1] (0 when S = 1).
    order_cost: price of one good bought, >= 0; default a per-MDP draw from U(0.2, 0.8).
    holding: cost of keeping one good for a step, >= 0; default a per-MDP draw, log-uniform in [0.01, 0.2].
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    lam = _param(demand, n, rng, lambda k: _log_uniform(0.5, max(1.0, S / 3), k, rng))
    if np.any(~((lam > 0) & np.isfinite(lam))):
        raise ValueError(f"demand must be finite and > 0, got {demand}")
    q_max = _param(max_order, n, rng, lambda k: rng.uniform(min(1.0, S - 1.0), S - 1.0, size=k))
    c = _param(order_cost, n, rng, lambda k: rng.uniform(0.2, 0.8, size=k))
    h = _param(holding, n, rng, lambda k: _log_uniform(0.01, 0.2, k, rng))
    for x, name, value in ((q_max, "max_order", max_order), (c, "order_cost", order_cost), (h, "holding", holding)):
        if np.any(~((x >= 0) & np.isfinite(x))):
            raise ValueError(f"{name} must be finite and >= 0, got {value}")

    s = np.arange(S)
    q = np.rint(np.arange(A)[None, :] * q_max[:, None] / max(A - 1, 1))  # [n, A]
    y = np.minimum(s[None, :, None] + q[:, None, :], S - 1).astype(np.int64)  # [n, S, A] stock after ordering
    # left[n, Y, j] = P(y - min(y, D) = j | y): j > 0 needs D = y - j exactly; j = 0 takes D >= y.
    from scipy.stats import poisson  # here: scipy.stats costs a second, which a process that never draws stock need not pay

    Y = np.arange(S)
    pmf = poisson.pmf(Y[None, :, None] - Y[None, None, :], lam[:, None, None])  # D = y - j (0 where j > y)
    left = np.where(Y[None, None, :] > 0, pmf, poisson.sf(Y[None, :, None] - 1, lam[:, None, None]))
    sales = Y[None, :] - (left * Y[None, None, :]).sum(-1)  # E[min(y, D)] [n, Y]
    b_ = np.arange(n)[:, None, None]
    P = left[b_, y]  # [n, S, A, S]
    raw = sales[b_, y] - c[:, None, None] * q[:, None, :] - h[:, None, None] * y
    return P, _rescale(raw), _reward_std(reward_std, n, S, A, rng), _one_hot(np.zeros(n, dtype=np.int64), S)
