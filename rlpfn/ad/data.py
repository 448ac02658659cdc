"""AD's training data: windows of learning traces of a source agent on prior MDPs, with its actions as targets.

One batch: `mdps` MDPs from the prior (one size per batch, as the rlpfn model's batches), the source agent's
learning history on each (`traces.run_trace`, the prior's trace engine), and `windows_per_mdp` windows of
`window` consecutive decisions cut from each history at random places, with probability `start_fraction` at
the run's very start (the agent's first decisions have no history, and the model must have seen such windows).
Targets per token: the source's action (AD), the action it chose before noise replaced it (`intended`, on
noisy histories), or the optimal policy at (h, s) (uniform over tied optimal actions: the DPT-style target,
Lee et al. 2023).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt

from ..errors import UserError
from .model import Tokens, random_labels


@dataclass
class ADDataConfig:
    """AD's training windows (section data of `kind: ad`)."""

    prior: str = "default"
    """prior spec the training MDPs are drawn from: a built-in name or a YAML path"""
    source: str = "ucbvi"
    """the agent whose learning histories AD distils: a registry name (at its tuned defaults)"""
    target: Literal["source", "intended", "optimal"] = "source"
    """the target per token: the action taken (AD; with noise_episodes, the noisy one, as AD^ε), the action the
    source chose before the noise replaced it (`intended`: its labels on histories it would not have made itself,
    as DART, Laskey et al. 2017, so the model learns to recover from its own mistakes), or the optimal action
    (DPT-style)"""
    noise_episodes: NonNegativeInt = 0
    """AD^ε (Zisman et al. 2023): in episode k the source's actions are replaced by uniform random ones with
    probability max(0, 1 − k / noise_episodes), so every history improves steadily from random play; 0: off. With
    it, the source may be the oracle `optimal` (the paper's demonstrator)"""
    episodes: PositiveInt = 60
    """length of each source history (more when a window needs more)"""
    mdps: PositiveInt = 8
    """MDPs per batch"""
    windows_per_mdp: PositiveInt = 4
    """windows cut from each MDP's history"""
    start_fraction: ClosedUnitInterval = 0.2
    """fraction of windows that start at the history's first decision"""
    num_workers: NonNegativeInt = 1
    """background processes that generate batches (0: in the training process)"""
    seed: NonNegativeInt = 0
    """seed of the batch stream (the same seed, the same batches)"""
    val_prior: str = "heldout"
    """prior spec of the validation MDPs (the held-out split)"""
    val_batches: PositiveInt = 2
    """held-out MDP batches (8 MDPs each) for validation regret"""
    val_episodes: PositiveInt = 30
    """episodes per validation run"""

    def __post_init__(self):
        from ..agents import ONLINE_AGENTS
        from ..config import ConfigError
        from ..prior import load_spec

        for key in ("prior", "val_prior"):
            try:
                load_spec(getattr(self, key))
            except UserError as e:
                raise ConfigError(f"data.{key}: {e}") from None
        if self.target == "intended" and not self.noise_episodes:
            raise ConfigError("data.target: 'intended' needs data.noise_episodes > 0 (without noise the source's "
                              "intended and taken actions are the same: use 'source')")
        excluded = ("ad", "rlpfn") if self.noise_episodes else ("ad", "rlpfn", "optimal")
        if self.source not in ONLINE_AGENTS or self.source in excluded:
            raise ConfigError(f"data.source: {self.source!r} is not a source algorithm (choose from: "
                              f"{', '.join(n for n in ONLINE_AGENTS if n not in excluded)}"
                              + ("" if self.noise_episodes else "; 'optimal' with data.noise_episodes") + ")")


@dataclass
class ADBatch:
    tokens: Tokens
    target: torch.Tensor  # [B,T,A] a distribution over actions per token

    def to(self, device) -> "ADBatch":
        return ADBatch(self.tokens.to(device), self.target.to(device))


def tokens_of(trace, run: torch.Tensor, start: torch.Tensor, T: int, labels: tuple) -> Tokens:
    """Windows [start[j], start[j] + T) of trace runs run[j] as Tokens."""
    t = start[:, None] + torch.arange(T)  # [B,T]
    r = run[:, None].expand_as(t)
    prev, has = (t - 1).clamp_min(0), t >= 1
    minus = torch.full_like(t, -1)
    return Tokens(torch.where(has, trace.s[r, prev], minus), torch.where(has, trace.a[r, prev], minus),
                  torch.where(has, trace.r[r, prev], torch.zeros_like(trace.r[r, prev])).float(),
                  trace.s[r, t], t % trace.horizon, t // trace.horizon, trace.horizon, *labels)


def ad_batch(cfg: ADDataConfig, window: int, label_dim: int, seed: int) -> ADBatch:
    """One batch; the same (cfg, window, label_dim, seed) gives the same batch."""
    from ..agents import Annealed, make_agent
    from ..prior import load_spec, sample_sized_batch
    from ..prior.batch import TIE_TOL
    from ..traces import run_trace

    rng = np.random.default_rng(seed)
    mdps = sample_sized_batch(load_spec(cfg.prior), cfg.mdps, rng)
    H = mdps.horizon
    episodes = max(cfg.episodes, math.ceil(window / H))
    source = make_agent(cfg.source)
    if cfg.noise_episodes:
        source = Annealed(source, cfg.noise_episodes)
    trace = run_trace(mdps, source, episodes, seed=int(rng.integers(2**31)))
    B = cfg.mdps * cfg.windows_per_mdp
    run = torch.arange(B) % cfg.mdps
    start = rng.integers(0, trace.length - window + 1, size=B)
    start[rng.random(B) < cfg.start_fraction] = 0
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    labels = random_labels(B, mdps.n_states, label_dim, gen), random_labels(B, mdps.n_actions, label_dim, gen)
    tok = tokens_of(trace, run, torch.as_tensor(start), window, labels)
    if cfg.target != "optimal":
        t = torch.as_tensor(start)[:, None] + torch.arange(window)
        chosen = torch.stack(source.intended, 1) if cfg.target == "intended" else trace.a
        target = torch.nn.functional.one_hot(chosen[run[:, None], t], mdps.n_actions).float()
    else:
        q = mdps.solution.Q[run[:, None], tok.step, tok.state]  # [B,T,A]
        best = (q >= q.amax(-1, keepdim=True) - TIE_TOL).float()
        target = best / best.sum(-1, keepdim=True)
    return ADBatch(tok, target)


def ad_stream(cfg: ADDataConfig, window: int, label_dim: int, seed: int):
    """The training stream: batch i is ad_batch(cfg, window, label_dim, seed + i), whatever the workers."""
    from functools import partial

    from ..prior.batch import SeededStream

    return SeededStream(partial(ad_batch, cfg, window, label_dim), seed)
