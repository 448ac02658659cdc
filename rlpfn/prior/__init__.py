"""The pretraining prior: random-MDP families (one batched, seeded sampler each), YAML specs that mix them
(rlpfn/data/priors/*.yaml), and the data engine that turns a spec into model-ready batches (`get_batch`)."""
from .banded import banded
from .batch import PriorBatch, PriorDataset, get_batch
from .common import random_rewards
from .families import FAMILIES, MIN_GAP
from .gridworld import gridworld
from .lock import lock
from .random_mdps import dirichlet, garnet
from .river import river
from .sampler import sample_batch, sample_prior_mdps, sample_sized_batch
from .spec import PriorSpec, PriorSpecError, load_spec, parse_spec
from .tree import tree

__all__ = [
    "FAMILIES", "MIN_GAP", "PriorBatch", "PriorDataset", "PriorSpec", "PriorSpecError",
    "banded", "dirichlet", "garnet", "get_batch", "gridworld", "load_spec", "lock", "parse_spec", "random_rewards", "river",
    "sample_batch", "sample_prior_mdps", "sample_sized_batch", "tree",
]
