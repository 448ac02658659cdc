"""Random-MDP families: the generic sampler behind baseline tuning and the pretraining prior.

Every family is one batched, seeded function with the same signature

    family(n, n_states, n_actions, horizon, rng, **params) -> (P [n,S,A,S], R [n,S,A], R_std [n,S,A], mu0 [n,S])

returning numpy float64 arrays. Mean rewards lie in [0, 1] (so r_min = 0, r_max = 1 is always a valid bound);
each family's hyper-parameters default to *drawn* values (per MDP) unless fixed by the caller.
`horizon` is part of the common signature for families whose structure depends on it; the ones here ignore it.

`sample_mdps` draws a family, S, A and H per MDP and returns validated `TabularMDP`s, rejecting MDPs in which
acting well is hardly better than acting at random (see `MIN_GAP`).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..mdp import TabularMDP

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Family = Callable[..., Arrays]

# An MDP is kept only if V*(mu0) - V^uniform(mu0) >= MIN_GAP * H * (r_max - r_min): acting optimally must
# collect, averaged over the episode, at least 10% of the reward range per step more than acting uniformly at
# random. Measured with the default ranges (S 5-30, A 2-4, H 10-30): this redraws about 11% of Dirichlet MDPs
# (sparse rewards that are tiny or out of reach), 5% of Garnet MDPs and <1% of gridworlds (goal farther than H).
MIN_GAP = 0.1
MAX_TRIES = 1000


# ---- shared pieces -----------------------------------------------------------------------------
def _dirichlet_rows(alpha: np.ndarray, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Dirichlet(alpha·1) rows of length size[-1]; alpha broadcasts against size[:-1].

    Sampled in log space (Gamma(a) = Gamma(a+1)·U^(1/a)) so that small concentrations never underflow to an
    all-zero row: the largest entry of every row is exactly exp(0) before normalisation.
    """
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64)[..., None], size)
    log_g = np.log(rng.gamma(alpha + 1.0)) + np.log(rng.random(size)) / alpha
    log_g -= log_g.max(-1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(-1, keepdims=True)


def _log_uniform(lo: float, hi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))


def _param(value, n: int, rng: np.random.Generator, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """A per-MDP parameter vector [n]: `draw(n)` if value is None, else the given scalar (or [n] array)."""
    if value is None:
        return draw(n)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


def random_rewards(n: int, S: int, A: int, rng: np.random.Generator, reward_density: float = 0.2,
                   reward_std: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean rewards [n,S,A]: each pair rewarding with probability `reward_density` (reward ~ U(0,1), else 0),
    at least one rewarding pair per MDP; reward_density = 1 gives dense U(0,1) rewards. R_std = reward_std."""
    if not 0.0 <= reward_density <= 1.0:
        raise ValueError(f"reward_density must lie in [0, 1], got {reward_density}")
    if reward_std < 0:
        raise ValueError(f"reward_std must be >= 0, got {reward_std}")
    mask = rng.random((n, S, A)) < reward_density
    forced = rng.integers(S * A, size=n)  # drawn unconditionally so the stream does not depend on the mask
    none = ~mask.reshape(n, S * A).any(-1)
    mask.reshape(n, S * A)[none, forced[none]] = True
    R = np.where(mask, rng.random((n, S, A)), 0.0)
    return R, np.full((n, S, A), float(reward_std))


def _single_start(n: int, S: int, rng: np.random.Generator) -> np.ndarray:
    mu0 = np.zeros((n, S))
    mu0[np.arange(n), rng.integers(S, size=n)] = 1.0
    return mu0


def _check_sizes(n: int, S: int, A: int) -> None:
    if n < 0 or S < 1 or A < 1:
        raise ValueError(f"need n >= 0, n_states >= 1 and n_actions >= 1, got n={n}, S={S}, A={A}")


# ---- families ----------------------------------------------------------------------------------
def dirichlet(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
              concentration: float | None = None, reward_density: float = 0.2, reward_std: float = 0.0) -> Arrays:
    """P(.|s,a) ~ Dirichlet(concentration·1) over all S states. `concentration` defaults to a per-MDP draw,
    log-uniform in [0.05, 1] (small = nearly deterministic transitions, 1 = uniform over the simplex)."""
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    c = _param(concentration, n, rng, lambda k: _log_uniform(0.05, 1.0, k, rng))
    if np.any(c <= 0):
        raise ValueError(f"concentration must be > 0, got {concentration}")
    P = _dirichlet_rows(c[:, None, None], (n, S, A, S), rng)
    R, R_std = random_rewards(n, S, A, rng, reward_density, reward_std)
    return P, R, R_std, _single_start(n, S, rng)


def garnet(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
           b: int = 3, reward_density: float = 0.2, reward_std: float = 0.0) -> Arrays:
    """Garnet: each (s,a) has min(b, S) distinct successors chosen uniformly at random, with probabilities
    ~ Dirichlet(1) (uniform stick-breaking) over them."""
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    if b < 1:
        raise ValueError(f"b (successors per pair) must be >= 1, got {b}")
    k = min(int(b), S)
    succ = np.argsort(rng.random((n, S, A, S)), axis=-1)[..., :k]  # k distinct successors, uniformly
    P = np.zeros((n, S, A, S))
    np.put_along_axis(P, succ, _dirichlet_rows(np.ones((n, S, A)), (n, S, A, k), rng), axis=-1)
    R, R_std = random_rewards(n, S, A, rng, reward_density, reward_std)
    return P, R, R_std, _single_start(n, S, rng)


# Moves for actions 0..3 (and 4 = stay when A = 5), as (drow, dcol).
GRID_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)])
GRID_ACTIONS = ("up", "down", "left", "right", "stay")


def grid_shape(n_states: int, wall_fraction: float) -> tuple[int, int]:
    """Near-square rows×cols box with at least n_states / (1 - wall_fraction) cells (and at least n_states)."""
    cells = max(n_states, int(np.ceil(n_states / (1.0 - wall_fraction) - 1e-9)))
    rows = max(1, int(np.floor(np.sqrt(cells))))
    return rows, int(np.ceil(cells / rows))


def grid_map(n_states: int, wall_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean open-cell map [rows, cols] with exactly n_states open cells, all 4-connected.

    Starts from the full box of `grid_shape` and turns random cells into walls, skipping any that would
    disconnect the open cells, until n_states remain.
    """
    rows, cols = grid_shape(n_states, wall_fraction)
    open_ = np.ones((rows, cols), dtype=bool)
    n_walls = rows * cols - n_states
    for cell in rng.permutation(rows * cols):
        if n_walls == 0:
            break
        r, c = divmod(int(cell), cols)
        open_[r, c] = False
        if _connected(open_):
            n_walls -= 1
        else:
            open_[r, c] = True
    if n_walls:  # unreachable: removing a leaf of a spanning tree never disconnects, so some cell always works
        raise RuntimeError("could not place walls without disconnecting the grid")
    return open_


def _connected(open_: np.ndarray) -> bool:
    cells = np.argwhere(open_)
    if len(cells) <= 1:
        return True
    rows, cols = open_.shape
    seen = np.zeros_like(open_)
    stack = [tuple(cells[0])]
    seen[stack[0]] = True
    count = 1
    while stack:
        r, c = stack.pop()
        for dr, dc in GRID_MOVES[:4]:
            y, x = r + dr, c + dc
            if 0 <= y < rows and 0 <= x < cols and open_[y, x] and not seen[y, x]:
                seen[y, x] = True
                count += 1
                stack.append((y, x))
    return count == len(cells)


def grid_neighbours(open_: np.ndarray) -> np.ndarray:
    """[S, 5] index of the state reached by each move of GRID_MOVES (itself when blocked by a wall or the border);
    states are the open cells in row-major order."""
    rows, cols = open_.shape
    index = np.full((rows + 2, cols + 2), -1)  # padded: the border reads as wall
    cells = np.argwhere(open_)
    index[cells[:, 0] + 1, cells[:, 1] + 1] = np.arange(len(cells))
    target = index[cells[:, None, 0] + 1 + GRID_MOVES[:, 0], cells[:, None, 1] + 1 + GRID_MOVES[:, 1]]
    return np.where(target < 0, np.arange(len(cells))[:, None], target)


def gridworld(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
              slip: float | None = None, wall_fraction: float = 0.1, reward_std: float = 0.0) -> Arrays:
    """Gridworld with exactly n_states open cells (walls are not states, so no episode can start on one).

    Map: see `grid_map` (a box about n_states / (1 - wall_fraction) cells, random walls, open cells connected).
    Actions: up, down, left, right (A = 4), plus stay (A = 5). A move succeeds with probability 1 - slip and
    otherwise goes in one of the other three directions, uniformly; a move into a wall or the border stays put;
    stay is deterministic. slip defaults to a per-MDP draw from U(0, 0.3).
    One goal cell, absorbing, with mean reward 1 for every action taken in it (so the return is the number of
    steps spent at the goal); all other rewards are 0. Start: a random open cell other than the goal (when S > 1).
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    if A not in (4, 5):
        raise ValueError(f"gridworld has 4 actions (up, down, left, right) or 5 (with stay), got n_actions={A}")
    if not 0.0 <= wall_fraction < 1.0:
        raise ValueError(f"wall_fraction must lie in [0, 1), got {wall_fraction}")
    p_slip = _param(slip, n, rng, lambda k: rng.uniform(0.0, 0.3, size=k))
    if np.any((p_slip < 0) | (p_slip > 1)):
        raise ValueError(f"slip must lie in [0, 1], got {slip}")
    maps = [grid_map(S, wall_fraction, rng) for _ in range(n)]  # the one loop over the batch
    nbr = np.stack([grid_neighbours(m) for m in maps]) if n else np.zeros((0, S, 5), dtype=int)

    # move[b, a, d]: probability that action a ends up moving in direction d (5 = four moves + stay).
    move = np.zeros((n, A, 5))
    eye = np.eye(4)
    move[:, :4, :4] = (1 - p_slip)[:, None, None] * eye + (p_slip / 3)[:, None, None] * (1 - eye)
    if A == 5:
        move[:, 4, 4] = 1.0
    P = np.zeros((n, S, A, S))
    bi, si, ai, di = np.meshgrid(np.arange(n), np.arange(S), np.arange(A), np.arange(5), indexing="ij")
    np.add.at(P, (bi, si, ai, nbr[bi, si, di]), move[bi, ai, di])

    goal = rng.integers(S, size=n)
    start = (goal + 1 + rng.integers(max(S - 1, 1), size=n)) % S if S > 1 else goal
    P[np.arange(n), goal] = 0.0
    P[np.arange(n), goal, :, goal] = 1.0
    R = np.zeros((n, S, A))
    R[np.arange(n), goal] = 1.0
    mu0 = np.zeros((n, S))
    mu0[np.arange(n), start] = 1.0
    return P, R, np.full((n, S, A), float(reward_std)), mu0


FAMILIES: dict[str, Family] = {"dirichlet": dirichlet, "garnet": garnet, "gridworld": gridworld}
# Families whose action count is fixed by their structure: sample_mdps uses this A instead of drawing one.
FIXED_ACTIONS: dict[str, int] = {"gridworld": 4}


# ---- the mixture -------------------------------------------------------------------------------
def _draw_int(spec, rng: np.random.Generator) -> int:
    """An int from an inclusive (lo, hi) range, or the int itself."""
    if np.isscalar(spec):
        return int(spec)
    lo, hi = spec
    return int(rng.integers(int(lo), int(hi) + 1))


def sample_mdps(
    n: int,
    rng: np.random.Generator | int | None,
    families: Sequence[str] = ("dirichlet", "garnet", "gridworld"),
    states: tuple[int, int] | int = (5, 30),
    actions: tuple[int, int] | int = (2, 4),
    horizon: tuple[int, int] | int = (10, 30),
    params: Mapping[str, Mapping] | None = None,
    min_gap: float = MIN_GAP,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_tries: int = MAX_TRIES,
) -> list[TabularMDP]:
    """n validated TabularMDPs: per MDP a family (uniformly from `families`), S, A and H (uniform integers
    from the inclusive ranges; gridworld forces A = 4) and one draw of the family, named "<family>-<i>".

    `params` maps a family name to keyword arguments for it. An MDP with
    V*(mu0) - V^uniform(mu0) < min_gap·H·(r_max - r_min) is redrawn (same family, S, A, H) — see MIN_GAP;
    single-action MDPs (A = 1, where V* = V^uniform) are kept as drawn.
    The same seed (or a generator in the same state) gives identical MDPs. RuntimeError if `max_tries`
    draws in a row fail the margin.
    """
    from ..planning import solve  # torch import deferred: the families themselves are numpy only

    rng = np.random.default_rng(rng)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"unknown families {unknown}; known: {sorted(FAMILIES)}")
    params = dict(params or {})
    mdps = []
    for i in range(n):
        fam = families[int(rng.integers(len(families)))]
        S = _draw_int(states, rng)
        A = FIXED_ACTIONS.get(fam) or _draw_int(actions, rng)
        H = _draw_int(horizon, rng)
        for tries in range(1, max_tries + 1):
            P, R, R_std, mu0 = FAMILIES[fam](1, S, A, H, rng, **params.get(fam, {}))
            mdp = TabularMDP(P[0], R[0], mu0[0], H, R_std[0], r_min, r_max, name=f"{fam}-{i}",
                             meta={"family": fam, "tries": tries})
            if A == 1:  # nothing to decide: V* = V_random, so the margin cannot apply
                break
            sol = solve(mdp)
            if sol.v_star - sol.v_random >= min_gap * H * (r_max - r_min):
                break
        else:
            raise RuntimeError(f"{fam} with S={S}, A={A}, H={H}: no MDP in {max_tries} draws has "
                               f"V* - V_random >= {min_gap}·H·(r_max - r_min)")
        mdps.append(mdp)
    return mdps
