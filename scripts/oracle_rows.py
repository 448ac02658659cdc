"""What a perfect transition head would buy: a model's planner with the head's predicted rows replaced by the true P.

The transition head is the learned part of rlpfn-v2 (docs/model/transition_head.md): the planner values an untried
pair of a tried state at one step of the best reward plus P̃·V, P̃ the head's prediction. This script runs the same
agent (the `local` refresh, argmax) with P̃ replaced by the MDP's true rows, so that its regret is the floor that no
training of the head can go below, with the planner, bonus and agent as they are:

- `oracle-untried`: the true rows at the pairs the head guesses (untried pairs of tried states);
- `oracle-few`: also at tried pairs of fewer than FEW visits, where a head trained at tried pairs
  (ModelConfig.tried_below) would stand in for P̂;
- `oracle-tried`: also at every tried pair, in place of the empirical P̂ (ModelConfig.planner_tried_strength at a
  strength that makes P̂'s weight vanish): the planner told every transition of the pairs it has tried or guesses.

Runs on the MDPs and seeds of `rlpfn validate --prior SPLIT --batches B --episodes E` (batch i's rollout seed), so
the rows `rlpfn` and `ucbvi` reproduce validate's, and writes a JSON in validate's format, which
`python -m rlpfn.experiments.compare FILE --base rlpfn` reads. Issue 9: is the head's quality the lever for the
held-out bar, or the planner around it?
"""
from __future__ import annotations

import argparse
import copy
import dataclasses

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt

# Weight of the true rows at tried pairs in `oracle-tried`: (N·P̂ + κ·P)/(N + κ) is P to within N/κ.
TOLD = 1e9
FEW = 6  # the tried_below of the transitions-tried run (docs/model/v2.md)
VARIANTS = ("oracle-untried", "oracle-few", "oracle-tried")


class TrueRows(torch.nn.Module):
    """Stands in for the model's TransitionHead when acting: the log of the true rows of the pairs asked for."""

    def __init__(self, P: torch.Tensor):
        super().__init__()
        self.log_P = P.log()  # log 0 = -inf: exp gives back the 0

    def forward(self, h, pairs):
        return self.log_P[pairs]


def oracle_agent(variant: str, checkpoint: str | None, strength: float = TOLD):
    """An rlpfn agent that acts with a copy of the checkpoint whose transition head reads the true MDP."""
    from rlpfn.agents.rlpfn import RlpfnAgent
    from rlpfn.checkpoint import load_cached
    from rlpfn.errors import UserError

    model = copy.deepcopy(load_cached(checkpoint, "rlpfn"))
    if model.transition is None:
        raise UserError(f"{checkpoint or 'the shipped model'} has no transition head to replace")
    if variant != "oracle-untried":
        below = FEW if variant == "oracle-few" else 2**62
        model.cfg = dataclasses.replace(model.cfg, tried_below=below, planner_tried_strength=strength)

    class Oracle(RlpfnAgent):
        needs_mdp = True  # the harness passes the true MDP to reset

        def reset(self, spec, n_runs, seed, mdp=None):
            super().reset(spec, n_runs, seed)
            if len(mdp) != n_runs:
                raise ValueError("one run per MDP (a prior batch) is what the rows are indexed by")
            self.model.transition = TrueRows(torch.as_tensor(mdp.P, dtype=torch.float64))

    return Oracle.with_model(model)  # refresh "local": every pass is for all runs, so a row's run is its MDP


def _job(args) -> np.ndarray:
    label, prior, batches, episodes, seed, checkpoint, strength, i = args
    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import held_out_batch

    mdps, rollout_seed = held_out_batch(prior, batches, seed, i)
    if label == "ucbvi":
        agent = make_agent("ucbvi")
    elif label == "rlpfn":
        agent = make_agent("rlpfn", checkpoint=checkpoint)
    else:
        agent = oracle_agent(label, checkpoint, strength)
    return prior_regret(mdps, agent, episodes, seed=rollout_seed)


def main() -> None:
    from rlpfn.experiments.parallel import run_jobs
    from rlpfn.files import check_output_file, write_json
    from rlpfn.metrics import mean_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="wide", help="prior spec or split, as rlpfn validate's --prior")
    parser.add_argument("--batches", type=PositiveInt, default=16, help="batches of 8 MDPs")
    parser.add_argument("--episodes", type=PositiveInt, default=100)
    parser.add_argument("--seed", type=NonNegativeInt, default=0)
    parser.add_argument("--checkpoint", default=None, help="a model with a transition head (default: the shipped one)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--strength", type=PositiveFloat, default=TOLD,
                        help="κ of the true rows at tried pairs, (N·P̂ + κ·P)/(N + κ) (default: so large that P̂ drops out)")
    parser.add_argument("--workers", type=PositiveInt, default=2)
    parser.add_argument("--json", required=True, help="where to write the per-MDP regrets (validate's format)")
    args = parser.parse_args()
    check_output_file(args.json, "--json")
    labels = ["ucbvi", "rlpfn", *args.variants]
    jobs = [(label, args.prior, args.batches, args.episodes, args.seed, args.checkpoint, args.strength, i)
            for label in labels for i in range(args.batches)]
    out = run_jobs(_job, jobs, args.workers, "oracle rows", True)
    res = {label: np.concatenate(out[k * args.batches:(k + 1) * args.batches]) for k, label in enumerate(labels)}
    ref = res["ucbvi"]
    for label, r in res.items():
        m, ci = mean_ci(r)
        print(f"{label:<16} {m:.3f} ± {ci:.3f}   ratio to UCB-VI {r.mean() / ref.mean():.2f}, "
              f"lower on {np.mean(r < ref):.0%}")
    config = {"prior": args.prior, "batches": args.batches, "episodes": args.episodes, "seed": args.seed,
              "checkpoint": args.checkpoint, "strength": args.strength}
    write_json(args.json, {"config": config, "agents": {k: [k, {}] for k in labels},
                           "regret": {k: v.tolist() for k, v in res.items()}})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
