"""Validation regret on held-out prior MDPs: how agents (and variants of the rlpfn agent) compare on MDPs
drawn from a prior split the model never trained on. This is where the rlpfn agent's defaults are chosen
(never on the benchmark suite).

Regret per MDP is the gap along the visited path, normalized by episodes·(V* - V_random) on rewards rescaled
to [0, 1] (evaluate.prior_regret): 0 = optimal from the first episode, 1 = as bad as uniform random throughout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from jsonargparse.typing import NonNegativeInt, PositiveInt

from ..config import option

# The rlpfn agent's options, measured against each other here (README, "The pretrained model").
RLPFN_VARIANTS = {
    f"rlpfn[{refresh},{'sample' if sample else 'argmax'}{',monotone' if monotone else ''}]":
        {"refresh": refresh, "sample": sample, "monotone": monotone}
    for refresh in ("episode", "step") for sample in (False, True) for monotone in (True, False)
}
RLPFN_VARIANTS.update({f"rlpfn[{refresh},argmax]": {"refresh": refresh, "sample": False, "monotone": False}
                       for refresh in ("new-pair", "local")})


@dataclass
class ValidationConfig:
    """Which held-out MDPs `rlpfn validate` runs on; every field is also its command-line option."""

    prior: str = option("heldout", metavar="SPEC", help="prior spec to draw MDPs from")
    batches: PositiveInt = option(8, help="batches of 8 MDPs (one S, A, H per batch)")
    episodes: PositiveInt = option(100, help="episodes per MDP")
    seed: NonNegativeInt = option(0, help="random seed")
    checkpoint: Optional[str] = option(None, help="model checkpoint (default: the shipped one)")
    rollouts: PositiveInt = option(1, help="runs per MDP, each with its own seed (the first is the one-rollout run's); "
                                           "an MDP's regret is their mean. A rare total failure is a coin flip: "
                                           "several rollouts tell a rule that changes its odds from a re-rolled coin")


def held_out_batch(prior: str, batches: int, seed: int, i: int, rollout: int = 0):
    """Batch i of the held-out MDPs that `rlpfn validate --prior --batches --seed` runs on, and the seed of its
    rollout number `rollout` (0: validate's own; others for repeated runs on the same MDPs, never another batch's)."""
    from .evaluate import validation_mdps

    return validation_mdps(prior, batches, seed=seed + 777)[i], seed + i + max(1000, batches) * rollout


def _job(args) -> np.ndarray:
    label, name, hp, cfg, i = args
    from ..agents import make_agent
    from .evaluate import prior_regret

    if name == "rlpfn" and cfg.checkpoint is not None:
        hp = {**hp, "checkpoint": cfg.checkpoint}
    runs = []
    for rollout in range(cfg.rollouts):  # a fresh agent each time: rollout 0 is exactly the one-rollout run
        mdps, seed = held_out_batch(cfg.prior, cfg.batches, cfg.seed, i, rollout)
        runs.append(prior_regret(mdps, make_agent(name, **hp), cfg.episodes, seed=seed))
    return np.mean(runs, axis=0)


def validate(agents: dict[str, tuple[str, dict]], cfg: ValidationConfig, workers: int = 2,
             progress: bool = True) -> dict[str, np.ndarray]:
    """{label: (agent name, hyperparameters)} -> {label: normalized regret per MDP [batches·8]}."""
    return by_label(_job, {label: (label, name, hp, cfg) for label, (name, hp) in agents.items()}, cfg.batches,
                    workers, "validation", progress)


def by_label(job, heads: dict[str, tuple], batches: int, workers: int, desc: str, progress: bool = True
             ) -> dict[str, np.ndarray]:
    """job((*heads[label], i)) -> the regrets of held-out batch i, for every label and batch, in parallel (also for
    the measuring scripts' own agents, scripts/*.py); {label: its regrets, batches joined in order}."""
    from .parallel import run_jobs

    out = run_jobs(job, [(*head, i) for head in heads.values() for i in range(batches)], workers, desc, progress)
    return {label: np.concatenate(out[k * batches:(k + 1) * batches]) for k, label in enumerate(heads)}


def write_regrets(path, config: dict, agents: dict, res: dict[str, np.ndarray]) -> None:
    """The per-MDP regrets in `rlpfn validate --json`'s format, which experiments.compare reads."""
    from ..files import write_json

    write_json(path, {"config": config, "agents": agents, "regret": {k: v.tolist() for k, v in res.items()}})


def split_options(parser, checkpoint_help: str) -> None:
    """validate's MDPs and seeds as a measuring script's argparse options (scripts/*.py), on `wide` by default (v2's
    training prior), and where its per-MDP regrets go."""
    parser.add_argument("--prior", default="wide", help="prior spec or split, as rlpfn validate's --prior")
    parser.add_argument("--batches", type=PositiveInt, default=16, help="batches of 8 MDPs")
    parser.add_argument("--episodes", type=PositiveInt, default=100)
    parser.add_argument("--seed", type=NonNegativeInt, default=0)
    parser.add_argument("--checkpoint", default=None, help=checkpoint_help)
    parser.add_argument("--workers", type=PositiveInt, default=2)
    parser.add_argument("--json", required=True, help="where to write the per-MDP regrets (validate's format)")
