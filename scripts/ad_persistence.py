"""Issue 10: does AD act on its history? How often each agent repeats, at a state, the action it took there last.

The README's reading of why `ad-v1` acts no better than random was that it copies its source's persistence (in a
long history UCB-VI mostly repeats its choices) and so commits each run to its own early random choices. This
measures it. For every decision at a state the run has visited before, it records whether the action equals the
one taken at that state's previous visit, and averages per range of episodes. A learner's rate climbs as it settles
on a policy; uniform random play stays at about 1/A; a fixed deterministic policy is at 1 from the start.
Agents: AD sampling (its default) and argmax, its source UCB-VI, and random play, on the `heldout` split's MDPs
that training's validation uses (2 batches of 8, seed 777), one run each, `--episodes` episodes.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

RANGES = [(0, 1), (1, 5), (5, 15), (15, None)]


def repeat_rate(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """[N, T] 1.0 where the action equals the run's previous action at the same state, NaN at a first visit."""
    N, T = s.shape
    key = (np.arange(N)[:, None] * (s.max() + 1) + s).ravel()  # (run, state)
    order = np.argsort(key, kind="stable")  # each (run, state)'s visits together, in time order
    flat_a, out = a.ravel()[order], np.full(N * T, np.nan)
    again = key[order][1:] == key[order][:-1]  # a visit with an earlier one at the same (run, state)
    out[order[1:][again]] = (flat_a[1:] == flat_a[:-1])[again]
    return out.reshape(N, T)


def main() -> None:
    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import validation_mdps
    from rlpfn.traces import run_trace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=PositiveInt, default=30, help="episodes per run (default 30)")
    parser.add_argument("--checkpoint", help="AD checkpoint (default: the shipped ad-v1)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    agents = {"ad (sampling)": ("ad", {"checkpoint": args.checkpoint}),
              "ad (argmax)": ("ad", {"checkpoint": args.checkpoint, "sample": False}),
              "ucbvi (AD's source)": ("ucbvi", {}), "random": ("random", {})}
    ranges = [(lo, hi or args.episodes) for lo, hi in RANGES if lo < args.episodes]
    print("| agent | " + " | ".join(f"episode {hi}" if hi == lo + 1 else f"episodes {lo + 1}–{hi}" for lo, hi in ranges)
          + " |")
    print("| :--- |" + " ---: |" * len(ranges))
    for label, (name, hp) in agents.items():
        rates = {r: [] for r in ranges}
        for b, mdps in enumerate(validation_mdps("heldout", 2, seed=777)):
            trace = run_trace(mdps, make_agent(name, **{k: v for k, v in hp.items() if v is not None}), args.episodes,
                              seed=b)
            rep, episode = repeat_rate(trace.s.numpy(), trace.a.numpy()), np.arange(trace.length) // trace.horizon
            for lo, hi in ranges:
                rates[(lo, hi)].append(np.nanmean(rep[:, (episode >= lo) & (episode < hi)], 1))
        print(f"| {label} | " + " | ".join(f"{np.nanmean(np.concatenate(v)):.3f}" for v in rates.values()) + " |",
              flush=True)


if __name__ == "__main__":
    main()
