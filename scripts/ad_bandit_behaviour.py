"""Issue 10: how an AD model trained on bandits imitates its source and how it acts (docs/ad/bandit/README.md).

Two measures on the bandit prior's MDPs (S = 1, H = 1; 16 bandits, seed 7):
- imitation at a run's start: on windows that begin at UCB-VI's first pull, how often the model's argmax equals
  UCB-VI's next pull, by position in the window (UCB-VI pulls every untried arm once first);
- acting: in the agent's own runs (sampling and argmax) and UCB-VI's, the number of distinct arms among the first
  10 pulls and the share of pulls on the best arm, by range of pulls.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

POSITIONS = [(0, 5), (5, 10), (10, 20), (20, 50), (50, 100)]
PULLS = [(0, 10), (10, 30), (30, 60), (60, 100)]


def distinct_first(a: np.ndarray, k: int = 10) -> float:
    """Mean over runs of the number of distinct actions among a run's first k."""
    return float(np.mean([len(set(row[:k].tolist())) for row in a]))


def main() -> None:
    from rlpfn.ad.data import tokens_of
    from rlpfn.ad.model import random_labels
    from rlpfn.agents import make_agent
    from rlpfn.errors import UserError
    from rlpfn.prior import load_spec, sample_sized_batch
    from rlpfn.threads import use_one_thread
    from rlpfn.traces import run_trace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="an AD checkpoint trained on bandits (path without extension)")
    parser.add_argument("--prior", default="docs/ad/bandit/prior.yaml", help="a bandit prior (S = 1, H = 1)")
    args = parser.parse_args()
    use_one_thread()
    try:
        mdps = sample_sized_batch(load_spec(args.prior), 16, np.random.default_rng(7))
        if (mdps.n_states, mdps.horizon) != (1, 1):
            raise UserError(f"{args.prior}: not a bandit prior (S = {mdps.n_states}, H = {mdps.horizon}; "
                            "this script needs S = 1 and H = 1)")
        agent = make_agent("ad", checkpoint=args.checkpoint, sample=False)
        model = agent.model.eval()
    except UserError as e:
        parser.error(str(e))
    T = max(hi for _, hi in POSITIONS)
    if model.cfg.window < T:
        parser.error(f"{args.checkpoint}: its window ({model.cfg.window}) is shorter than the {T} pulls scored here")
    source = run_trace(mdps, make_agent("ucbvi"), T, seed=3)
    gen = torch.Generator().manual_seed(0)
    labels = (random_labels(16, 1, model.cfg.label_dim, gen), random_labels(16, mdps.n_actions, model.cfg.label_dim, gen))
    with torch.no_grad():
        logits = model(tokens_of(source, torch.arange(16), torch.zeros(16, dtype=torch.long), T, labels))
    match = (logits.argmax(-1) == source.a[:, :T]).float()
    print("imitation at a run's start (argmax = UCB-VI's next pull), by position in the window:")
    print("  " + ", ".join(f"{lo}-{hi}: {match[:, lo:hi].mean():.3f}" for lo, hi in POSITIONS))
    best = mdps.solution.Q[:, 0, 0].argmax(-1)[:, None]
    print("acting (16 bandits, 100 pulls): distinct arms in the first 10 pulls; share of pulls on the best arm")
    for label, name, hp in (("ucbvi", "ucbvi", {}), ("ad, sampling", "ad", {"checkpoint": args.checkpoint}),
                            ("ad, argmax", "ad", {"checkpoint": args.checkpoint, "sample": False})):
        a = run_trace(mdps, make_agent(name, **hp), 100, seed=3).a
        share = ", ".join(f"{lo}-{hi}: {(a[:, lo:hi] == best).float().mean():.2f}" for lo, hi in PULLS)
        print(f"  {label:14s} distinct {distinct_first(a.numpy()):.2f}; on the best arm {share}")


if __name__ == "__main__":
    main()
