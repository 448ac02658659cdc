"""The benchmark suite, by name (docs/reference.md, "Benchmark MDPs").

`make_benchmark(name, **kwargs)` builds one; `SUITE` is the default order; `BENCHMARKS` maps every
name to its builder. Every builder takes `horizon`. The reference MDPs behind the measured
baseline regrets (`rlberry-chain`, `rlberry-gridworld`) and the classic MDPs of rlpfn/unseen.py
are in BENCHMARKS but not in SUITE.

Rewards are in each MDP's own units (agents rescale with r_min / r_max = the range of the mean
rewards R). Terminal states are one absorbing zero-reward state, so every episode lasts H steps.
Where a reward depends on the random outcome of an action (gymnasium tables, Strens' Chain),
R is the mean and R_std the standard deviation over the outcomes (see gym_import).
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from .gym_import import from_gymnasium
from .mdp import MDPError, Outcomes, TabularMDP, start_at
from .unseen import UNSEEN

# Grid moves as (d_row, d_col). Dark Room actions: up, down, left, right, stay.
_UP, _DOWN, _LEFT, _RIGHT, _STAY = (-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)
DARKROOM_ACTIONS = ("up", "down", "left", "right", "stay")


def _grid_next(n_rows: int, n_cols: int, moves) -> np.ndarray:
    """Next cell index [S, A] of deterministic moves on an open grid; the border blocks."""
    moves = np.asarray(moves)
    row, col = np.divmod(np.arange(n_rows * n_cols), n_cols)
    r = np.clip(row[:, None] + moves[:, 0], 0, n_rows - 1)
    c = np.clip(col[:, None] + moves[:, 1], 0, n_cols - 1)
    return r * n_cols + c


# ---- gymnasium toy text -------------------------------------------------------------------------
def _registered(*ids: str) -> str:
    import gymnasium

    for env_id in ids:
        if env_id in gymnasium.registry:
            return env_id
    raise ValueError(f"none of the gymnasium environments {ids} is registered")


def frozenlake4x4(horizon: int = 100) -> TabularMDP:
    """FrozenLake-v1, 4x4, slippery (intended direction and each perpendicular one w.p. 1/3);
    +1 on reaching G; holes and G terminate. S = 16 + 1 absorbing, A = 4, H = 100 (the env's
    time limit)."""
    return from_gymnasium("FrozenLake-v1", horizon, "frozenlake4x4", map_name="4x4", is_slippery=True)


def frozenlake8x8(horizon: int = 200) -> TabularMDP:
    """FrozenLake8x8-v1, slippery: S = 64 + 1 absorbing, A = 4, H = 200 (the env's time limit)."""
    return from_gymnasium("FrozenLake8x8-v1", horizon, "frozenlake8x8", is_slippery=True)


def cliffwalking(horizon: int = 100) -> TabularMDP:
    """CliffWalking-v1, the deterministic classic (Sutton & Barto Example 6.6; is_slippery=False,
    also gymnasium's default): -1 per step, stepping into the cliff -100 and back to the start (not
    terminal); reaching the goal terminates. S = 48 + 1 absorbing, A = 4. The env has no time
    limit, so H = 100 (docs/reference.md)."""
    return from_gymnasium("CliffWalking-v1", horizon, "cliffwalking", is_slippery=False)


def taxi(horizon: int = 200) -> TabularMDP:
    """Taxi (v4 where registered, else v3): -1 per step, +20 for a correct drop-off (terminal),
    -10 for an illegal pickup / drop-off. S = 500 + 1 absorbing, A = 6, μ0 uniform over 300
    states, H = 200 (the env's time limit)."""
    env_id = _registered("Taxi-v4", "Taxi-v3")
    return from_gymnasium(env_id, horizon, "taxi")


# ---- small hand-written MDPs --------------------------------------------------------------------
def riverswim(horizon: int = 20) -> TabularMDP:
    """RiverSwim, the version of Osband, Russo & Van Roy (NeurIPS 2013, arXiv:1306.0940), NOT
    Strehl & Littman's original (other probabilities, rewards 5 and 10000).

    6 states, start s0; actions 0 = LEFT, 1 = RIGHT. LEFT moves one state left deterministically
    (s0 stays). RIGHT: at s0 stay .4 / right .6; at s1..s4 right .35 / stay .6 / left .05; at s5
    stay .6 / left .4. Reward 0.005 for LEFT in s0 and 1 for RIGHT in s5, else 0."""
    S = 6
    s = np.arange(S)
    mid = s[1:-1]
    P = np.zeros((S, 2, S))
    P[s, 0, np.maximum(s - 1, 0)] = 1.0
    P[0, 1, [0, 1]] = 0.4, 0.6
    P[mid, 1, mid + 1], P[mid, 1, mid], P[mid, 1, mid - 1] = 0.35, 0.6, 0.05
    P[S - 1, 1, [S - 1, S - 2]] = 0.6, 0.4
    R = np.zeros((S, 2))
    R[0, 0], R[S - 1, 1] = 0.005, 1.0
    return TabularMDP(P, R, start_at(S), horizon, name="riverswim",
                      meta={"source": "Osband, Russo & Van Roy 2013 (RiverSwim, their version)"})


# Strehl & Littman 2008 (J. Comput. Syst. Sci. 74(8), "An analysis of model-based interval
# estimation for MDPs"), SixArms: success probability of arm i from s0, and payoff of each arm
# (scaled by 1/6000 so the largest is 1, as in docs/reference.md).
SIXARMS_P = (1.0, 0.15, 0.10, 0.05, 0.03, 0.01)
SIXARMS_PAY = (50, 133, 300, 800, 1660, 6000)


def sixarms(horizon: int = 20) -> TabularMDP:
    """SixArms (Strehl & Littman 2008). States: s0 and arms 1..6; 6 actions.

    - From s0, action i (0..5) reaches arm i+1 w.p. SIXARMS_P[i], else stays in s0; reward 0.
    - In arm j >= 2 only action j-1 (the action that leads to it) stays in arm j and pays
      SIXARMS_PAY[j-1]/6000; every other action returns to s0 with reward 0.
    - Arm 1 is the easy, cheap trap of the paper's figure: every action except action 4 stays
      and pays 50/6000; action 4 returns to s0.
    This is our reading of the paper's transition diagram (the same as the common public
    re-implementations). Start s0, H = 20 by default.
    """
    S, A = 7, 6
    stays = np.eye(A, dtype=bool)  # [arm, action]: which actions keep the agent in the arm
    stays[0] = True
    stays[0, 4] = False
    arms = np.arange(1, S)
    P = np.zeros((S, A, S))
    P[0, np.arange(A), arms] = SIXARMS_P
    P[0, :, 0] = 1.0 - np.asarray(SIXARMS_P)
    P[arms, :, 0] = ~stays
    P[arms[:, None], np.arange(A), arms[:, None]] = stays
    R = np.zeros((S, A))
    R[arms] = stays * (np.asarray(SIXARMS_PAY, dtype=float) / 6000.0)[:, None]
    return TabularMDP(P, R, start_at(S), horizon, name="sixarms",
                      meta={"source": "Strehl & Littman 2008", "reward_scale": 1 / 6000})


def chain(horizon: int = 20, slip: float = 0.2) -> TabularMDP:
    """The Chain of Strens (ICML 2000, "A Bayesian framework for RL"): 5 states, start s0.

    Executed action "forward" (0) moves s -> s+1 with reward 0, and at the end s4 stays with reward
    10; "backward" (1) returns to s0 with reward 2. The chosen action is executed w.p. 1 - slip and
    the other one w.p. slip (0.2 in the paper). Rewards follow the executed action, so the MDP
    carries an outcome table (outcome = executed action) and R is the mean over the slip."""
    S = 5
    s = np.arange(S)
    P_exec = np.zeros((S, 2, S))  # [s, executed action, s']
    P_exec[s, 0, np.minimum(s + 1, S - 1)] = 1.0
    P_exec[s, 1, 0] = 1.0
    r_exec = np.zeros((S, 2))
    r_exec[S - 1, 0], r_exec[:, 1] = 10.0, 2.0
    mix = np.array([[1 - slip, slip], [slip, 1 - slip]])  # [chosen, executed]
    P = np.einsum("ce,sex->scx", mix, P_exec)
    R = r_exec @ mix.T
    # outcome k = executed action k: chosen c executes k w.p. mix[c, k]
    outcomes = Outcomes(
        prob=np.broadcast_to(mix, (S, 2, 2)).copy(),
        next_state=np.broadcast_to(P_exec.argmax(-1)[:, None, :], (S, 2, 2)).copy(),
        reward=np.broadcast_to(r_exec[:, None, :], (S, 2, 2)).copy(),
    )
    return TabularMDP(P, R, start_at(S), horizon, name="chain", outcomes=outcomes,
                      meta={"source": "Strens 2000", "slip": slip, "actions": ("forward", "backward")})


def deepsea(size: int = 10, seed: int = 0, horizon: int | None = None) -> TabularMDP:
    """DeepSea (Osband et al., arXiv:1703.07608; bsuite `deep_sea`, deterministic version).

    N x N grid, state row*N + col, start (0, 0); every step moves down one row and left or right
    one column (clipped at the walls). Which action index means "right" is drawn per cell as in
    bsuite: np.random.RandomState(seed).binomial(1, 0.5, [N, N]) (= bsuite's mapping_seed).
    Going right costs 0.01/N; going right in the last column pays +1. After the bottom row the
    episode is over: state N*N is absorbing. H = N, optimum 0.99."""
    N = size
    H = N if horizon is None else horizon
    right_action = np.random.RandomState(seed).binomial(1, 0.5, [N, N]).reshape(-1)
    row, col = np.divmod(np.arange(N * N), N)
    S = N * N + 1
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    for a in range(2):
        right = right_action == a
        new_col = np.clip(col + np.where(right, 1, -1), 0, N - 1)
        nxt = np.where(row + 1 < N, (row + 1) * N + new_col, N * N)
        P[np.arange(N * N), a, nxt] = 1.0
        R[:N * N, a] = right * (-0.01 / N + (col == N - 1))
    P[N * N, :, N * N] = 1.0
    return TabularMDP(P, R, start_at(S), H, name="deepsea",
                      meta={"source": "bsuite deep_sea (deterministic)", "size": N, "seed": seed,
                            "right_action": right_action.reshape(N, N)})


# ---- Dark Room ----------------------------------------------------------------------------------
def _darkroom(n: int, start: tuple, goal: tuple, horizon: int, name: str, source: str) -> TabularMDP:
    goal = tuple(int(x) for x in goal)
    if not all(0 <= x < n for x in goal):
        raise ValueError(f"goal {goal} is outside the {n}x{n} room")
    nxt = _grid_next(n, n, [_UP, _DOWN, _LEFT, _RIGHT, _STAY])
    S = n * n
    P = np.eye(S)[nxt]
    R = (nxt == goal[0] * n + goal[1]).astype(float)  # +1 for each step that ends on the goal
    return TabularMDP(P, R, start_at(S, start[0] * n + start[1]), horizon, name=name,
                      meta={"source": source, "goal": goal, "start": tuple(start), "actions": DARKROOM_ACTIONS})


def _heldout_goals(n: int, k: int, seed: int) -> list[tuple[int, int]]:
    cells = np.random.default_rng(seed).choice(n * n, size=k, replace=False)
    return [tuple(int(x) for x in divmod(int(c), n)) for c in sorted(cells)]


# Held-out goals: k cells drawn without replacement from the whole room with
# np.random.default_rng(seed).choice (seed 0), sorted. Dark Room (AD): 8 of the 81 goals;
# Dark Room 10x10 (DPT, Lee et al. 2023): 20 of the 100 goals, as in the paper's 80/20 split.
DARKROOM_HELDOUT_GOALS = _heldout_goals(9, 8, seed=0)
DARKROOM10_HELDOUT_GOALS = _heldout_goals(10, 20, seed=0)
DARKROOM_TRAIN_GOALS = [g for g in np.ndindex(9, 9) if g not in DARKROOM_HELDOUT_GOALS]
DARKROOM10_TRAIN_GOALS = [g for g in np.ndindex(10, 10) if g not in DARKROOM10_HELDOUT_GOALS]


def darkroom(goal: tuple = (8, 8), horizon: int = 20) -> TabularMDP:
    """Dark Room of Algorithm Distillation (Laskin et al. 2022): 9x9, start at the centre (4, 4),
    5 actions (up, down, left, right, stay), the border blocks, no terminal state. Reward 1 for
    each step at whose end the agent is in the goal cell (so arriving pays, and so does staying).
    Default goal: the corner (8, 8), 8 moves away, V* = 13 at H = 20."""
    return _darkroom(9, (4, 4), goal, horizon, "darkroom", "Algorithm Distillation (Laskin et al. 2022)")


def darkroom10(goal: tuple = (9, 9), horizon: int = 100) -> TabularMDP:
    """Dark Room of DPT (Lee et al. 2023): 10x10, start (0, 0), H = 100, otherwise as `darkroom`.
    Default goal (9, 9), 18 moves away, V* = 83."""
    return _darkroom(10, (0, 0), goal, horizon, "darkroom10", "Decision-Pretrained Transformer (Lee et al. 2023)")


# ---- reference MDPs behind the measured baseline regrets (rlberry) ------------------------------
def rlberry_chain(L: int = 10, fail_prob: float = 0.1, horizon: int = 20) -> TabularMDP:
    """rlberry `Chain(L, fail_prob)`: actions 0 = left, 1 = right; the chosen move happens w.p.
    1 - fail_prob, the opposite one w.p. fail_prob; a move off either end stays put. Reward 0.05
    for acting in state 0, 1 in state L-1, else 0. Start 0. V* = 8.126 at L=10, H=20."""
    s = np.arange(L)
    left, right = np.maximum(s - 1, 0), np.minimum(s + 1, L - 1)
    P = np.zeros((L, 2, L))
    np.add.at(P, (s, 0, left), 1 - fail_prob)
    np.add.at(P, (s, 0, right), fail_prob)
    np.add.at(P, (s, 1, right), 1 - fail_prob)
    np.add.at(P, (s, 1, left), fail_prob)
    R = np.zeros((L, 2))
    R[0], R[L - 1] = 0.05, 1.0
    return TabularMDP(P, R, start_at(L), horizon, name="rlberry-chain",
                      meta={"source": "rlberry.envs.finite.Chain", "L": L, "fail_prob": fail_prob})


def rlberry_gridworld(horizon: int = 20, success_probability: float = 0.9) -> TabularMDP:
    """rlberry `GridWorld()`: 5x5, walls at (1, 1) and (2, 2) (so 23 states, numbered row-major
    over the free cells), actions left, right, up, down, start (0, 0), no terminal state. An
    action towards a free cell moves there w.p. 0.9 and w.p. 0.1 to one of the other free
    neighbours, uniformly (w.p. 1 if there is none); towards a wall or the border it stays put.
    Reward 1 for acting in (4, 4). V* = 10.855 at H = 20."""
    n, walls = 5, {(1, 1), (2, 2)}
    cells = [c for c in np.ndindex(n, n) if c not in walls]
    index = {c: i for i, c in enumerate(cells)}
    S, moves = len(cells), [(0, -1), (0, 1), (-1, 0), (1, 0)]
    P = np.zeros((S, 4, S))
    for i, (r, c) in enumerate(cells):
        nbrs = [index.get((r + dr, c + dc)) for dr, dc in moves]  # None: wall or border
        free = [j for j in nbrs if j is not None]
        for a, j in enumerate(nbrs):
            if j is None:
                P[i, a, i] = 1.0
                continue
            others = [k for k in free if k != j]
            P[i, a, j] = success_probability if others else 1.0
            P[i, a, others] = (1 - success_probability) / max(len(others), 1)
    R = np.zeros((S, 4))
    R[index[(n - 1, n - 1)]] = 1.0
    return TabularMDP(P, R, start_at(S, index[(0, 0)]), horizon, name="rlberry-gridworld",
                      meta={"source": "rlberry.envs.finite.GridWorld", "cells": cells})


BENCHMARKS: dict[str, Callable[..., TabularMDP]] = {
    "frozenlake4x4": frozenlake4x4,
    "frozenlake8x8": frozenlake8x8,
    "cliffwalking": cliffwalking,
    "taxi": taxi,
    "riverswim": riverswim,
    "sixarms": sixarms,
    "chain": chain,
    "deepsea": deepsea,
    "darkroom": darkroom,
    "darkroom10": darkroom10,
    "rlberry-chain": rlberry_chain,
    "rlberry-gridworld": rlberry_gridworld,
    **UNSEEN,
}
BenchmarkName = Literal[tuple(BENCHMARKS)]  # a benchmark name, as a type: command-line options offer these as choices
SUITE: list[str] = [
    "riverswim", "chain", "sixarms", "deepsea", "darkroom", "darkroom10",
    "frozenlake4x4", "frozenlake8x8", "cliffwalking", "taxi",
]


def make_benchmark(name: str, **kwargs) -> TabularMDP:
    """Build the benchmark `name` (see BENCHMARKS); kwargs go to its builder (e.g. horizon=...)."""
    builder = BENCHMARKS.get(name)
    if builder is None:
        raise MDPError(f"unknown benchmark {name!r}; valid names: {', '.join(BENCHMARKS)}")
    return builder(**kwargs)
