"""Random gridworlds: a connected map of open cells, compass moves with slip, absorbing goals and pits."""
from __future__ import annotations

import numpy as np

from .common import Arrays, _check_range, _check_sizes, _int_param, _one_hot, _param, _reward_std

# Moves as (drow, dcol). GRID_MOVES are the moves of A = 4 (up, down, left, right) and A = 5 (+ stay);
# ALL_MOVES appends the diagonals used by A = 6..9.
GRID_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)])
GRID_ACTIONS = ("up", "down", "left", "right", "stay")
ALL_MOVES = np.concatenate([GRID_MOVES, [(-1, -1), (-1, 1), (1, -1), (1, 1)]])
ALL_ACTIONS = GRID_ACTIONS + ("up-left", "up-right", "down-left", "down-right")
STAY = 4
CORRIDOR_MOVES = (2, 3, 4)  # left, right, stay: the actions of A <= 3, on a one-row corridor


def action_moves(n_actions: int) -> np.ndarray:
    """[A] index into ALL_MOVES (and ALL_ACTIONS) of each action: left, right(, stay) for A <= 3; otherwise
    up, down, left, right, stay, the four diagonals, repeated cyclically from A = 10 on."""
    if n_actions <= 3:
        return np.array(CORRIDOR_MOVES[:n_actions])
    return np.arange(n_actions) % len(ALL_MOVES)


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


def grid_neighbours(open_: np.ndarray, moves: np.ndarray = GRID_MOVES) -> np.ndarray:
    """[S, len(moves)] index of the state reached by each move (itself when blocked by a wall or the border);
    states are the open cells in row-major order. Default moves: GRID_MOVES."""
    rows, cols = open_.shape
    index = np.full((rows + 2, cols + 2), -1)  # padded: the border reads as wall
    cells = np.argwhere(open_)
    index[cells[:, 0] + 1, cells[:, 1] + 1] = np.arange(len(cells))
    target = index[cells[:, None, 0] + 1 + moves[:, 0], cells[:, None, 1] + 1 + moves[:, 1]]
    return np.where(target < 0, np.arange(len(cells))[:, None], target)


def _place_pits(open_: np.ndarray, candidates: np.ndarray, k: int) -> list[int]:
    """Up to k pit states, taken in the order of `candidates` (state indices), skipping any whose removal
    would disconnect the remaining open cells, so that the pits never cut the start off from the goals."""
    cells = np.argwhere(open_)
    free = open_.copy()
    pits = []
    for s in candidates:
        if len(pits) == k:
            break
        r, c = cells[s]
        free[r, c] = False
        if _connected(free):
            pits.append(int(s))
        else:
            free[r, c] = True
    return pits


def _move_probs(dirs: np.ndarray, used: np.ndarray, p_slip: np.ndarray) -> np.ndarray:
    """[n, A, D] probability that action a moves along used[d]: its own move w.p. 1 - slip, each other move
    direction present among the actions w.p. slip / (#moves - 1); stay is deterministic."""
    same = (dirs[:, None] == used[None, :]).astype(np.float64)
    is_move = used != STAY
    other = ((dirs != STAY)[:, None] & is_move[None, :]).astype(np.float64) * (1 - same)
    n_moves = int(is_move.sum())
    p = p_slip[:, None, None]
    if n_moves == 1:  # a single move direction (A = 1) has nowhere to slip to
        p = np.zeros_like(p)
    slipping = (1 - p) * same + (p / max(n_moves - 1, 1)) * other
    return np.where((dirs != STAY)[None, :, None], slipping, same)


def wall_fractions(wall_fraction, n: int, rng: np.random.Generator) -> np.ndarray:
    """The per-MDP wall fractions [n] of a family's `wall_fraction` parameter: default 0.1, each in [0, 1)."""
    wall = _param(wall_fraction, n, rng, lambda k: np.full(k, 0.1))
    if np.any(~((wall >= 0) & (wall < 1))):
        raise ValueError(f"wall_fraction must lie in [0, 1), got {wall_fraction}")
    return wall


def random_maps(n_cells: int, n_actions: int, wall_fraction: np.ndarray, rng: np.random.Generator) -> list:
    """One open-cell map per entry of wall_fraction [n]: a one-row corridor when n_actions <= 3 (no random
    numbers), else `grid_map`."""
    if n_actions <= 3:
        return [np.ones((1, n_cells), dtype=bool)] * len(wall_fraction)
    return [grid_map(n_cells, w, rng) for w in wall_fraction]  # the one loop over the batch


def cell_transitions(maps: list[np.ndarray], n_cells: int, n_actions: int, p_slip: np.ndarray) -> np.ndarray:
    """[n, C, A, C] moves on n maps of n_cells open cells each (`action_moves(n_actions)`, slipping w.p.
    p_slip [n] as `_move_probs` says; a move into a wall or the border stays put). Consumes no random numbers."""
    n, C, A = len(maps), n_cells, n_actions
    dirs = action_moves(A)
    used = np.unique(dirs)  # the moves any action can take
    nbr = np.stack([grid_neighbours(m, ALL_MOVES[used]) for m in maps]) if n else np.zeros((0, C, len(used)), int)
    move = _move_probs(dirs, used, p_slip)
    P = np.zeros((n, C, A, C))
    bi, si, ai, di = np.meshgrid(np.arange(n), np.arange(C), np.arange(A), np.arange(len(used)), indexing="ij")
    np.add.at(P, (bi, si, ai, nbr[bi, si, di]), move[bi, ai, di])
    return P


def gridworld(n: int, n_states: int, n_actions: int, horizon: int, rng: np.random.Generator, *,
              slip=None, wall_fraction=0.1, n_goals=1, n_pits=0, reward_std=0.0) -> Arrays:
    """Gridworld with exactly n_states open cells (walls are not states, so no episode can start on one).

    Map: for A >= 4 see `grid_map` (a box about n_states / (1 - wall_fraction) cells, random walls, open cells
    connected); for A <= 3 a one-row corridor of n_states cells (wall_fraction unused).
    Actions (`action_moves`): A = 2 left, right; A = 3 left, right, stay; A = 4 up, down, left, right; A = 5
    adds stay; A = 6..9 add the diagonals up-left, up-right, down-left, down-right; A >= 10 repeat that list
    cyclically (duplicate actions). A move succeeds w.p. 1 - slip and otherwise goes in one of the other move
    directions present among the actions, uniformly (the other three for A = 4, 5); a move into a wall or the
    border stays put; stay is deterministic.
    Goals: absorbing, paying their mean reward for every action taken in them (so the return is the reward
    collected while sitting at a goal). Pits: absorbing, zero reward (FrozenLake's holes), placed so that the
    other cells stay 4-connected: the start always reaches a goal (though a goal may shield another). All
    other rewards are 0.
    Start: a random cell that is neither a goal nor a pit. Goals, pits and start are distinct cells; counts
    are capped so that the start remains (n_states = 1: the one cell is goal and start).

    slip: default a per-MDP draw from U(0, 0.3).
    wall_fraction: in [0, 1); default 0.1.
    n_goals: integer >= 1; default 1 (mean reward 1). With more, the first goal pays 1 and the others
        U(0, 1] rewards each (drawn per goal), capped at n_states - 1 goals.
    n_pits: integer >= 0; default 0; capped at n_states - 1 - n_goals and by the connectivity rule.
    reward_std: Gaussian reward noise; default 0.
    The defaults consume exactly the random numbers of the original one-goal gridworld.
    """
    S, A = n_states, n_actions
    _check_sizes(n, S, A)
    wall = wall_fractions(wall_fraction, n, rng)
    p_slip = _param(slip, n, rng, lambda k: rng.uniform(0.0, 0.3, size=k))
    _check_range(p_slip, 0.0, 1.0, "slip", slip)
    goals_k = _int_param(n_goals, n, rng, lambda k: np.ones(k), "n_goals", low=1)
    pits_k = _int_param(n_pits, n, rng, lambda k: np.zeros(k), "n_pits", low=0)
    R_std = _reward_std(reward_std, n, S, A, rng)

    maps = random_maps(S, A, wall, rng)
    P = cell_transitions(maps, S, A, p_slip)

    cell_reward = np.zeros((n, S))
    absorbing = np.zeros((n, S), dtype=bool)
    if S == 1 or ((goals_k == 1).all() and (pits_k == 0).all()):
        # One goal: the draws of the original gridworld, kept so that its MDPs stay the same.
        goal = rng.integers(S, size=n)
        start = (goal + 1 + rng.integers(max(S - 1, 1), size=n)) % S if S > 1 else goal
        cell_reward[np.arange(n), goal] = 1.0
        absorbing[np.arange(n), goal] = True
    else:
        g = np.minimum(goals_k, S - 1)
        order = np.argsort(rng.random((n, S)), axis=1)  # a random ranking of the cells: goals, start, pits
        rank = np.argsort(order, axis=1)
        start = order[np.arange(n), g]
        goal_reward = 1.0 - rng.random((n, S))  # U(0, 1]; the first goal pays 1
        goal_reward[:, 0] = 1.0
        is_goal = rank < g[:, None]
        cell_reward = np.where(is_goal, np.take_along_axis(goal_reward, np.minimum(rank, S - 1), 1), 0.0)
        absorbing = is_goal.copy()
        for i in np.flatnonzero(pits_k > 0):  # pits need the map: a loop like the map generation's
            pits = _place_pits(maps[i], order[i, g[i] + 1:], min(int(pits_k[i]), S - 1 - int(g[i])))
            absorbing[i, pits] = True
    P[absorbing] = 0.0
    b, s = np.nonzero(absorbing)
    P[b, s, :, s] = 1.0
    R = np.broadcast_to(cell_reward[:, :, None], (n, S, A)).copy()
    return P, R, R_std, _one_hot(start, S)
