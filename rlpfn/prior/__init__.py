"""Priors over MDPs: random-MDP families (one batched, seeded sampler function each) and their mixture."""
from .banded import banded
from .common import random_rewards
from .families import FAMILIES, FIXED_ACTIONS, MIN_GAP, sample_mdps
from .gridworld import gridworld
from .lock import lock
from .random_mdps import dirichlet, garnet
from .river import river
from .tree import tree

__all__ = [
    "FAMILIES", "FIXED_ACTIONS", "MIN_GAP", "banded", "dirichlet", "garnet", "gridworld", "lock", "random_rewards",
    "river", "sample_mdps", "tree",
]
