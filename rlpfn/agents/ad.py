"""The `ad` agent: an Algorithm Distillation model (rlpfn/ad) acting in context from its raw history.

It keeps each run's latest `window` decisions as tokens (the transition before each decision, the state and
the step), and before every decision runs the model over them and samples from the last position's action
distribution (AD's acting rule; `sample: false` takes the argmax). Older history falls out of the window: the
model sees at most `window` past decisions, whatever the run's length. Each run draws its own random label
vectors for states and actions at reset (seeded), as in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import AgentError, ModelAgent


@dataclass
class ADAgent(ModelAgent):
    name = "ad"
    architecture = "ad"
    sample: bool = True  # sample from the predicted action distribution (AD); false: its argmax
    checkpoint: str | None = None  # a checkpoint path; None = the shipped AD model (checkpoints/ad-v1)

    def __post_init__(self):
        if not isinstance(self.sample, bool):
            raise AgentError(f"ad: sample must be true or false, got {self.sample!r}")
        self._model = None

    def reset(self, spec, n_runs, seed, mdp=None):
        from ..ad.model import random_labels

        super().reset(spec, n_runs, seed)
        L, W = self.model.cfg.label_dim, self.model.cfg.window
        self.labels = (random_labels(n_runs, spec.n_states, L, self.gen),
                       random_labels(n_runs, spec.n_actions, L, self.gen))
        # token columns: previous state, previous action, previous reward, state, step, episode; the newest last
        self.buf = torch.zeros(6, n_runs, W, dtype=torch.float32)
        self.filled = self.decisions = 0  # tokens in the window; decisions made in the run (episodes last H)
        self.prev = (torch.full((n_runs,), -1.0),) * 2 + (torch.zeros(n_runs),)

    def act(self, states, h):
        from ..ad.model import Tokens

        self.buf = torch.roll(self.buf, -1, dims=2)
        episode = self.decisions // self.spec.horizon
        self.buf[:, :, -1] = torch.stack([*self.prev, states.float(), torch.full_like(self.prev[2], h),
                                          torch.full_like(self.prev[2], episode)])
        self.filled = min(self.filled + 1, self.buf.shape[2])
        self.decisions += 1
        w = self.buf[:, :, -self.filled:]
        device = next(self.model.parameters()).device
        tok = Tokens(w[0].long(), w[1].long(), w[2], w[3].long(), w[4].long(), w[5].long(), self.spec.horizon,
                     *self.labels)
        with torch.no_grad():
            logits = self.model(tok.to(device))[:, -1].cpu().double()
        if not self.sample:
            return self.argmax_random_ties(logits)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen).squeeze(1)

    def observe(self, states, actions, rewards, next_states, h):
        self.prev = (states.float(), actions.float(), rewards.float())
