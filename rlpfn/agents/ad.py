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
        self.buf[:, :, -1] = self._tokens(*self.prev, states, h, self.decisions // self.spec.horizon)
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

    @staticmethod
    def _tokens(prev_states, prev_actions, prev_rewards, states, step, episode) -> torch.Tensor:
        """Buffer columns [6, ...] of tokens (see reset), from tensors or numbers of one shape."""
        cols = torch.broadcast_tensors(*(torch.as_tensor(x, dtype=torch.float32) for x in
                                         (prev_states, prev_actions, prev_rewards, states, step, episode)))
        return torch.stack(cols)

    def load_history(self, s: torch.Tensor, a: torch.Tensor, r: torch.Tensor) -> None:
        """Run 0 as if it had acted through the n transitions (s, a, r) [n] (rewards as agents see them), set
        directly rather than replayed: its window holds the latest decisions, the next act() adds decision n."""
        n, H, W = len(s), self.spec.horizon, self.buf.shape[2]
        t = torch.arange(max(0, n - W), n)
        prev, first = (t - 1).clamp_min(0), t == 0
        self.buf[:, 0, W - len(t):] = self._tokens(torch.where(first, -1, s[prev]), torch.where(first, -1, a[prev]),
                                                   torch.where(first, 0.0, r[prev].float()), s[t], t % H, t // H)
        self.filled, self.decisions = len(t), n
        self.prev = (s[-1:].float(), a[-1:].float(), r[-1:].float())
