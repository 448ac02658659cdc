"""The registry of random-MDP families (`FAMILIES`). Mixtures of them are prior specs (spec.py, rlpfn/data/priors/*.yaml),
sampled by sampler.py: for pretraining, for the held-out split and for tuning the baselines alike.

Every family is one batched, seeded function with the same signature

    family(n, n_states, n_actions, horizon, rng, **params) -> (P [n,S,A,S], R [n,S,A], R_std [n,S,A], mu0 [n,S])

returning numpy float64 arrays. Mean rewards lie in [0, 1] (so r_min = 0, r_max = 1 is always a valid bound);
each family's hyper-parameters are keyword-only and default to *drawn* values (per MDP) or fixed ones.
The families live in their own modules: random_mdps (dirichlet, garnet), gridworld, river, tree, banded, lock,
delivery, stock (queue, inventory).
`horizon` is part of the common signature for families whose structure depends on it (only lock uses it).

"""
from __future__ import annotations

from .banded import banded
from .common import Arrays, Family, random_rewards
from .delivery import delivery
from .gridworld import grid_map, grid_neighbours, gridworld
from .lock import lock
from .random_mdps import dirichlet, garnet
from .river import river
from .stock import inventory, queue
from .tree import tree

__all__ = ["FAMILIES", "MIN_GAP", "Arrays", "Family", "random_rewards", "grid_map", "grid_neighbours", "dirichlet",
           "garnet", "gridworld", "river", "tree", "banded", "lock", "delivery",
           "queue", "inventory"]

# An MDP is kept only if V*(mu0) - V^uniform(mu0) >= MIN_GAP * H on its [0, 1] reward scale: acting optimally
# must collect, averaged over the episode, at least 10% of the reward range per step more than acting uniformly
# at random. The default of a spec's `min_gap`.
MIN_GAP = 0.1

FAMILIES: dict[str, Family] = {"dirichlet": dirichlet, "garnet": garnet, "gridworld": gridworld, "river": river,
                               "tree": tree, "banded": banded, "lock": lock,
                               "delivery": delivery, "queue": queue, "inventory": inventory}
