"""Classic tabular MDPs from outside the benchmark suite, never drawn from the pretraining prior (docs/reference.md,
"MDPs outside the suite and the prior"): the test of the claim that the model acts well on MDPs it was never shown
and that no choice of the project was made on. Dyna Maze and Four Rooms are gridworlds of the kind the prior's
gridworld family draws; the wind and the loops are shapes it does not. They are in `benchmarks.BENCHMARKS` (so
`rlpfn benchmark --benchmarks` runs them) but not in its SUITE.

Conventions as in benchmarks.py: rewards in each MDP's own units, R[s, a] the mean reward for acting a in s, a goal
is one absorbing zero-reward state, so every episode lasts H steps.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .mdp import TabularMDP, start_at

# Moves as (d_row, d_col), rows counted from the top.
_UP, _DOWN, _LEFT, _RIGHT = (-1, 0), (1, 0), (0, -1), (0, 1)
_KING = (_UP, _DOWN, _LEFT, _RIGHT, (-1, 1), (-1, -1), (1, 1), (1, -1))  # N, S, W, E, NE, NW, SE, SW


def _grid_mdp(cells: list, step: Callable, n_actions: int, start, goal, step_reward: float, goal_reward: float,
              horizon: int, name: str, meta: dict) -> TabularMDP:
    """A grid task on the free `cells` [(row, col)]: `step(cell, a)` gives [(probability, next cell)]; entering
    `goal` moves to the absorbing state (index len(cells)) and earns goal_reward; every action outside it earns
    step_reward."""
    index = {c: i for i, c in enumerate(cells)}
    S = len(cells) + 1
    P, R = np.zeros((S, n_actions, S)), np.zeros((S, n_actions))
    for i, cell in enumerate(cells):
        if cell == goal:  # never occupied: entering it ends the episode
            P[i, :, S - 1] = 1.0
            continue
        for a in range(n_actions):
            for prob, nxt in step(cell, a):
                P[i, a, S - 1 if nxt == goal else index[nxt]] += prob
            R[i, a] = step_reward + goal_reward * P[i, a, S - 1]
    P[S - 1, :, S - 1] = 1.0
    return TabularMDP(P, R, start_at(S, index[start]), horizon, name=name, meta=meta)


def _layout_cells(layout: str) -> tuple[list, set]:
    """The free cells of an ASCII map ('w' a wall), row-major, and the set of them."""
    rows = layout.strip("\n").splitlines()
    cells = [(r, c) for r, line in enumerate(rows) for c, ch in enumerate(line) if ch != "w"]
    return cells, set(cells)


# ---- Sutton & Barto (2018), Reinforcement Learning: An Introduction ----------------------------------------------
WINDY_WIND = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)  # upward push of each column (Example 6.5)


def _windy(moves, wind_spread: bool, horizon: int, name: str, source: str) -> TabularMDP:
    n_rows, n_cols = 7, len(WINDY_WIND)

    def step(cell, a):
        (r, c), (dr, dc) = cell, moves[a]
        w = WINDY_WIND[c]  # the wind of the column the move starts from
        pushes = (w - 1, w, w + 1) if wind_spread and w > 0 else (w,)
        return [(1 / len(pushes), (min(max(r + dr - p, 0), n_rows - 1), min(max(c + dc, 0), n_cols - 1)))
                for p in pushes]

    cells = [(r, c) for r in range(n_rows) for c in range(n_cols)]
    return _grid_mdp(cells, step, len(moves), (3, 0), (3, 7), -1.0, 0.0, horizon, name,
                     {"source": source, "wind": WINDY_WIND})


def windy_gridworld(horizon: int = 100) -> TabularMDP:
    """Windy Gridworld (Sutton & Barto Example 6.5): 7x10, start (3, 0), goal (3, 7), moves up, down, left, right;
    each column pushes the agent up by its wind (0 0 0 1 1 1 2 2 1 0) from the column it moves from; the border
    clips. -1 a step until the goal. S = 70 + 1 absorbing, A = 4, H = 100; V* = -15."""
    return _windy((_UP, _DOWN, _LEFT, _RIGHT), False, horizon, "windy-gridworld", "Sutton & Barto Example 6.5")


def windy_gridworld_king(horizon: int = 100) -> TabularMDP:
    """Windy Gridworld with King's Moves and stochastic wind (Sutton & Barto Exercises 6.9 and 6.10): 8 moves (the
    four and the diagonals); in a windy column the push is the column's wind, one more or one less, w.p. 1/3 each.
    Otherwise as windy-gridworld. S = 71, A = 8, H = 100."""
    return _windy(_KING, True, horizon, "windy-gridworld-king", "Sutton & Barto Exercise 6.10")


DYNA_MAZE_OBSTACLES = ((1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7))


def dyna_maze(horizon: int = 100) -> TabularMDP:
    """Dyna Maze (Sutton & Barto Figure 8.2): 6x9 with 7 obstacle cells, start (2, 0), goal (0, 8), moves up, down,
    left, right; a move into an obstacle or the border stays put. +1 on reaching the goal, else 0. S = 47 + 1
    absorbing, A = 4, H = 100; the shortest path is 14 moves, V* = 1."""
    cells = [(r, c) for r in range(6) for c in range(9) if (r, c) not in DYNA_MAZE_OBSTACLES]
    free = set(cells)
    moves = (_UP, _DOWN, _LEFT, _RIGHT)

    def step(cell, a):
        nxt = (cell[0] + moves[a][0], cell[1] + moves[a][1])
        return [(1.0, nxt if nxt in free else cell)]

    return _grid_mdp(cells, step, 4, (2, 0), (0, 8), 0.0, 1.0, horizon, "dyna-maze",
                     {"source": "Sutton & Barto Figure 8.2", "obstacles": DYNA_MAZE_OBSTACLES})


# ---- Sutton, Precup & Singh (1999), Between MDPs and semi-MDPs -----------------------------------------------------
FOUR_ROOMS = """
wwwwwwwwwwwww
w     w     w
w     w     w
w           w
w     w     w
w     w     w
ww wwww     w
w     www www
w     w     w
w     w     w
w           w
w     w     w
wwwwwwwwwwwww
"""


def four_rooms(horizon: int = 100) -> TabularMDP:
    """Four Rooms (Sutton, Precup & Singh 1999): 104 cells in four rooms joined by four hallways; moves up, down,
    left, right; the chosen move happens w.p. 2/3, each of the other three w.p. 1/9; a move into a wall stays put.
    Start the top-left cell (1, 1), goal the bottom-right cell (11, 11), +1 on reaching it, else 0. S = 104 + 1
    absorbing, A = 4, H = 100."""
    cells, free = _layout_cells(FOUR_ROOMS)
    moves = (_UP, _DOWN, _LEFT, _RIGHT)

    def step(cell, a):
        out = []
        for b, (dr, dc) in enumerate(moves):
            nxt = (cell[0] + dr, cell[1] + dc)
            out.append((2 / 3 if b == a else 1 / 9, nxt if nxt in free else cell))
        return out

    return _grid_mdp(cells, step, 4, (1, 1), (11, 11), 0.0, 1.0, horizon, "four-rooms",
                     {"source": "Sutton, Precup & Singh 1999"})


# ---- Strens (2000), A Bayesian framework for reinforcement learning (after Dearden et al. 1998) ------------------
def loop(horizon: int = 20) -> TabularMDP:
    """Loop (Strens 2000): 9 states, actions a (0) and b (1), start 0. From 0, a enters the right loop (1, 2, 3, 4)
    and b the left one (5, 6, 7, 8). In the right loop both actions go on; from 4 back to 0, earning 1. In the left
    loop b goes on and a falls back to 0; from 8 either action goes back to 0, earning 2. Deterministic. A = 2,
    H = 20: four left loops, V* = 8."""
    P, R = np.zeros((9, 2, 9)), np.zeros((9, 2))
    P[0, 0, 1] = P[0, 1, 5] = 1.0
    for s in range(1, 5):  # the right loop: both actions go on
        P[s, :, (s + 1) % 5] = 1.0
    for s in range(5, 8):  # the left loop: b goes on, a falls back
        P[s, 1, s + 1] = P[s, 0, 0] = 1.0
    P[8, :, 0] = 1.0
    R[4], R[8] = 1.0, 2.0
    return TabularMDP(P, R, start_at(9, 0), horizon, name="loop", meta={"source": "Strens 2000"})


UNSEEN: dict[str, Callable[..., TabularMDP]] = {
    "windy-gridworld": windy_gridworld,
    "windy-gridworld-king": windy_gridworld_king,
    "dyna-maze": dyna_maze,
    "four-rooms": four_rooms,
    "loop": loop,
}
