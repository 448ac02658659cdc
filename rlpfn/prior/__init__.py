"""Priors over MDPs: random-MDP families (one batched, seeded sampler function each) and their mixture."""
from .families import (
    FAMILIES,
    FIXED_ACTIONS,
    MIN_GAP,
    dirichlet,
    garnet,
    gridworld,
    random_rewards,
    sample_mdps,
)

__all__ = [
    "FAMILIES", "FIXED_ACTIONS", "MIN_GAP", "dirichlet", "garnet", "gridworld", "random_rewards", "sample_mdps",
]
