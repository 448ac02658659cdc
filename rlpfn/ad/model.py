"""The AD network: one token per decision, a causal transformer, a score for every action.

Token t of a run (decision t of its learning history, across episodes) holds the transition before it,
(s_{t-1}, a_{t-1}, r_{t-1}), and what the agent knows when it decides: the state s_t and the step h_t of
its episode (with the horizon H). The output at token t scores the actions at s_t; causal attention makes it
a function of tokens 0..t only, so one pass over a window trains every position at once.

Labels have no fixed meaning: states and actions enter through random per-run label vectors (Gaussian,
drawn anew for every training window and for every run an agent starts), as headless-AD does for actions
(Sinii et al. 2024). An action's logit is the dot product of the output with its label vector, so any S and
any A work, and relabelling a run's states or actions permutes nothing the model could have memorised. The
one size limit is the window: `window` tokens of history (the agent keeps the latest ones).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jsonargparse.typing import PositiveInt
from torch import nn


EPISODE_SCALE = 5.0  # log(1 + k) / 5: about 1 at episode 150, unbounded past it


@dataclass(frozen=True)
class ADConfig:
    """The Algorithm Distillation model's architecture (section model of `kind: ad`)."""

    d_model: PositiveInt = 64
    """width of the transformer's tokens"""
    n_layers: PositiveInt = 3
    """transformer layers"""
    n_heads: PositiveInt = 4
    """attention heads (must divide d_model)"""
    mlp_ratio: PositiveInt = 4
    """the MLP's hidden width over d_model"""
    label_dim: PositiveInt = 32
    """dimension of the random label vectors of states and actions"""
    window: PositiveInt = 256
    """tokens (decisions) of history the model reads; older ones are dropped"""
    episode_feature: bool = False
    """give every token the run's episode index k (as log(1 + k)): without it, a window cut from late in a history
    begins like a run's first decisions, and the model learns to persist where the source explored (off: as ad-v1).
    Training histories last data.episodes episodes (or as many as a window needs): later indices are extrapolated"""

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads = {self.n_heads} does not divide d_model = {self.d_model}")
        if self.d_model % 2:
            raise ValueError(f"d_model = {self.d_model} must be even (sinusoidal positions come in sin/cos pairs)")

    def to_dict(self) -> dict:
        from ..config import to_dict

        return to_dict(self)


@dataclass
class Tokens:
    """A batch of B windows of T tokens (see the module docstring), with each window's label vectors."""

    prev_state: torch.Tensor  # [B,T] long; -1: no transition before this token (the run's first decision)
    prev_action: torch.Tensor  # [B,T] long, -1 likewise
    prev_reward: torch.Tensor  # [B,T] float, rescaled to [0, 1]
    state: torch.Tensor  # [B,T] long
    step: torch.Tensor  # [B,T] long, 0..H-1
    episode: torch.Tensor  # [B,T] long, the run's episode index (0 in its first episode)
    horizon: int
    state_labels: torch.Tensor  # [B,S,L] float
    action_labels: torch.Tensor  # [B,A,L] float

    def to(self, device) -> "Tokens":
        return Tokens(*(x.to(device) if torch.is_tensor(x) else x for x in self.__dict__.values()))

    def __len__(self) -> int:
        return self.state.shape[1]


def random_labels(n: int, k: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """[n,k,dim] label vectors, unit length in expectation: k labels for each of n runs."""
    return torch.randn(n, k, dim, generator=gen) / math.sqrt(dim)


def _gather(labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """labels [B,K,L], index [B,T] (-1 -> zeros) -> [B,T,L]."""
    picked = torch.gather(labels, 1, index.clamp_min(0).unsqueeze(-1).expand(-1, -1, labels.shape[-1]))
    return picked * (index >= 0).unsqueeze(-1)


def positions(T: int, d: int, device) -> torch.Tensor:
    """Sinusoidal encodings [T,d] of the token's place in the window (no maximum length)."""
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / d))
    enc = torch.zeros(T, d, device=device)
    enc[:, 0::2], enc[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return enc


class ADModel(nn.Module):
    architecture = "ad"  # what a checkpoint records, so that each agent loads only its own kind

    def __init__(self, cfg: ADConfig = ADConfig()):
        super().__init__()
        self.cfg = cfg
        d, L = cfg.d_model, cfg.label_dim
        self.cur_state = nn.Linear(L, d)
        self.prev_state = nn.Linear(L, d, bias=False)
        self.prev_action = nn.Linear(L, d, bias=False)
        # r_{t-1}, no-previous flag, h/H, first step of an episode (and log(1 + episode index))
        self.scalars = nn.Linear(5 if cfg.episode_feature else 4, d)
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, d * cfg.mlp_ratio, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.trunk = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, L)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, tok: Tokens) -> torch.Tensor:
        """Action logits [B,T,A]: position t scores the actions at tok.state[:, t]."""
        T = len(tok)
        none = (tok.prev_state < 0).float()
        scalars = [tok.prev_reward.float() * (1 - none), none, tok.step.float() / tok.horizon, (tok.step == 0).float()]
        if self.cfg.episode_feature:
            scalars.append(torch.log1p(tok.episode.float()) / EPISODE_SCALE)
        scalars = torch.stack(scalars, -1)
        x = (self.cur_state(_gather(tok.state_labels, tok.state)) + self.prev_state(_gather(tok.state_labels, tok.prev_state))
             + self.prev_action(_gather(tok.action_labels, tok.prev_action)) + self.scalars(scalars)
             + positions(T, self.cfg.d_model, tok.state.device))
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device)
        x = self.norm(self.trunk(x, mask=mask, is_causal=True))
        return torch.einsum("btl,bal->bta", self.head(x), tok.action_labels.to(x.dtype))
