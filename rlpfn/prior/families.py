"""The registry of random-MDP families (`FAMILIES`) and their simple mixture `sample_mdps`, the generic sampler
behind baseline tuning.

Every family is one batched, seeded function with the same signature

    family(n, n_states, n_actions, horizon, rng, **params) -> (P [n,S,A,S], R [n,S,A], R_std [n,S,A], mu0 [n,S])

returning numpy float64 arrays. Mean rewards lie in [0, 1] (so r_min = 0, r_max = 1 is always a valid bound);
each family's hyper-parameters are keyword-only and default to *drawn* values (per MDP) or fixed ones.
The families live in their own modules: random_mdps (dirichlet, garnet), gridworld, river, tree, banded, lock.
`horizon` is part of the common signature for families whose structure depends on it (only lock uses it).

`sample_mdps` draws a family, S, A and H per MDP and returns validated `TabularMDP`s, rejecting MDPs in which
acting well is hardly better than acting at random (see `MIN_GAP`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..mdp import TabularMDP
from .banded import banded
from .common import Arrays, Family, random_rewards
from .gridworld import grid_map, grid_neighbours, gridworld
from .lock import lock
from .random_mdps import dirichlet, garnet
from .river import river
from .tree import tree

__all__ = ["FAMILIES", "FIXED_ACTIONS", "MIN_GAP", "MAX_TRIES", "Arrays", "Family", "sample_mdps",
           "random_rewards", "grid_map", "grid_neighbours", "dirichlet", "garnet", "gridworld", "river", "tree",
           "banded", "lock"]

# An MDP is kept only if V*(mu0) - V^uniform(mu0) >= MIN_GAP * H * (r_max - r_min): acting optimally must
# collect, averaged over the episode, at least 10% of the reward range per step more than acting uniformly at
# random. Measured with the default ranges (S 5-30, A 2-4, H 10-30): this redraws about 11% of Dirichlet MDPs
# (sparse rewards that are tiny or out of reach), 5% of Garnet MDPs and <1% of gridworlds (goal farther than H).
MIN_GAP = 0.1
MAX_TRIES = 1000


FAMILIES: dict[str, Family] = {
    "dirichlet": dirichlet, "garnet": garnet, "gridworld": gridworld,
    "river": river, "tree": tree, "banded": banded, "lock": lock,
}
# sample_mdps uses this A instead of drawing one. Every family now takes any A >= 1 (gridworld: corridor for
# A <= 3, diagonals from A = 6), but sample_mdps keeps gridworld at A = 4 so that its draws, the MDPs behind
# rlpfn/agents/tuned.json, stay the same.
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
