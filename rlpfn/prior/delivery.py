"""Deliveries: Taxi-like navigation where a vehicle picks passengers up at sites and drops them at a depot."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _int_param, _param, _reward_std
from .gridworld import cell_transitions, random_maps, wall_fractions


def delivery(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
             n_sites=None, slip=None, wall_fraction=0.1, reward_std=0.0) -> Arrays:
    """Pick-up and delivery on a random map, shaped like Taxi (Dietterich 2000) but never its map: a vehicle
    moves on C open cells; a passenger waits at one of the pick-up sites; carrying her to the depot pays 1,
    and the next passenger then appears at a uniformly drawn site. `horizon` is ignored.

    States: (passenger, cell) with passenger in {waiting at site 1, .., waiting at site K-1, on board}, so
    K = min(n_sites + 1, floor(sqrt(S))) passenger states (fewer sites when the map would have fewer cells than
    locations; K = 1, S < 4: no sites, the vehicle is always loaded and every arrival at the depot pays) and
    C = S // K cells (a `gridworld` map, or a corridor when the moves are A <= 3); the S - K·C states left over
    are unreachable, absorbing and pay nothing. Depot and sites are distinct random cells.
    Actions: with A >= 6, A - 2 moves (as `gridworld` with A - 2 actions), then pick up (boards a passenger
    waiting at the vehicle's cell) and drop off (pays 1 when on board at the depot); either is a no-op
    otherwise. With A <= 5 all actions are moves, and arriving at the waiting passenger's site boards her,
    arriving at the depot with her on board delivers (pays 1). Moves slip as in `gridworld`.
    Start: a uniformly drawn cell, the passenger waiting at a uniformly drawn site.

    n_sites: pick-up sites, an integer >= 1; default a per-MDP draw, uniform in {1, 2, 3}.
    slip: in [0, 1]; default a per-MDP draw from U(0, 0.3).
    wall_fraction: in [0, 1); default 0.1.
    reward_std: Gaussian reward noise; default 0.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    sites = _int_param(n_sites, n, rng, lambda k: rng.integers(1, 4, size=k), "n_sites", low=1)
    p_slip = _param(slip, n, rng, lambda k: rng.uniform(0.0, 0.3, size=k))
    _check_range(p_slip, 0.0, 1.0, "slip", slip)
    wall = wall_fractions(wall_fraction, n, rng)
    R_std = _reward_std(reward_std, n, S, A, rng)

    explicit = A >= 6  # room for pick-up and drop-off actions beside at least four moves
    n_moves = A - 2 if explicit else A
    K = np.minimum(sites + 1, int(np.sqrt(S)))  # C = S // K >= K cells: room for the depot and the sites
    P, R = np.zeros((n, S, A, S)), np.zeros((n, S, A))
    P[:, np.arange(S), :, np.arange(S)] = 1.0  # the left-over states; the layout's rows are overwritten below
    mu0 = np.zeros((n, S))
    for k in sorted(set(K.tolist())):  # MDPs with as many passenger states share one layout
        idx = np.flatnonzero(K == k)
        m, C = len(idx), S // k
        T = cell_transitions(random_maps(C, n_moves, wall[idx], rng), C, n_moves, p_slip[idx])  # [m,C,M,C]
        order = np.argsort(rng.random((m, C)), axis=1)  # depot, then the sites, at distinct cells
        depot = order[:, 0]
        site = order[:, 1:k]  # [m, k-1]
        arrive, paid = _passenger(site, depot, k, C)  # [m,k,C,k], [m,k,C]
        if explicit:
            stay = np.eye(k)[None, :, None, :]
            board = np.where(np.arange(k)[None, :, None, None] < k - 1, arrive, stay)
            drop = np.where(np.arange(k)[None, :, None, None] == k - 1, arrive, stay)
            eye_c = np.eye(C)
            P6 = np.concatenate([  # [m, p, c, a, q, d]
                np.einsum("mcad,pq->mpcaqd", T, np.eye(k)),
                np.einsum("mpcq,cd->mpcqd", board, eye_c)[:, :, :, None],
                np.einsum("mpcq,cd->mpcqd", drop, eye_c)[:, :, :, None]], axis=3)
            r = np.zeros((m, k, C, A))
            r[:, k - 1, :, A - 1] = paid[:, k - 1]
        else:
            P6 = np.einsum("mcad,mpdq->mpcaqd", T, arrive)
            r = np.minimum(np.einsum("mcad,mpd->mpca", T, paid), 1.0)  # a sum of slips can exceed 1 by an ulp
        L = k * C
        P[idx, :L, :, :L] = P6.reshape(m, L, A, L)
        R[idx, :L] = r.reshape(m, L, A)
        start = rng.integers(max(k - 1, 1), size=m) * C + rng.integers(C, size=m)
        mu0[idx, start] = 1.0
    return P, R, R_std, mu0


def _passenger(site: np.ndarray, depot: np.ndarray, k: int, C: int) -> tuple[np.ndarray, np.ndarray]:
    """What happens to the passenger when the vehicle is at a cell: arrive [m,p,c,q], the distribution of
    the next passenger state q from passenger state p at cell c, and paid [m,p,c], 1 for a delivery.
    Waiting at c (p < k-1, site[p] == c): she boards (q = k-1). On board at the depot: delivered, the next one
    waits at a uniform site (stays on board when there are no sites, k = 1). Otherwise nothing changes."""
    m = len(depot)
    c = np.arange(C)
    arrive = np.broadcast_to(np.eye(k)[None, :, None, :], (m, k, C, k)).copy()
    boards = site[:, :, None] == c  # [m, k-1, C]
    arrive[:, :k - 1] = np.where(boards[..., None], np.eye(k)[k - 1], arrive[:, :k - 1])
    at_depot = depot[:, None] == c  # [m, C]
    next_one = np.full(k, 1.0 / (k - 1)) * (np.arange(k) < k - 1) if k > 1 else np.ones(1)
    arrive[:, k - 1] = np.where(at_depot[..., None], next_one, arrive[:, k - 1])
    paid = np.zeros((m, k, C))
    paid[:, k - 1] = at_depot
    return arrive, paid
