"""The batch API: `get_batch(spec, batch_size, seed)` -> a `PriorBatch` of tensors ready for the model.

Mixed sizes are handled by **bucketing**, not padding: S, A and H are drawn once per batch (as TabPFN's
priors draw the number of features and rows per batch), and the MDPs of a batch differ in everything else
(family, parameters, rewards, labels). Why: the behaviour agents of the registry act on a shared
(S, A, H), so one batched trace steps every MDP of the batch together; padded actions would be chosen by
those agents, and padded states would change PSRL's posterior. The model is size-agnostic, so across
batches it still sees every size; within a batch nothing is masked and no compute is spent on padding.

One batch = `batch_size` contexts from ceil(batch_size / snapshots_per_mdp) MDPs: one trace per MDP (one
behaviour for the batch, drawn by weight with its hyperparameters), and `snapshots_per_mdp` points k on each
trace, k uniform on [0, T) or, with probability `episode_start_fraction`, rounded down to an episode start
(an offline-style dataset of whole episodes). A context is the statistic of the first k transitions, the
history tokens (state s_k, step h_k = k mod H, H, episodes so far k div H), and the targets: Q*[h_k], the
optimal policy (uniform over tied optimal actions), a Boltzmann policy over Q*[h_k] at a drawn temperature,
the behaviour's next action a_k (Algorithm-Distillation-style), and the MDP's true transitions.
"""
from __future__ import annotations

from ..errors import UserError

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..agents import Agent, Mixture, make_agent
from ..model import Context
from ..traces import Trace, run_trace
from ..mdp import TabularMDP
from .sampler import sample_sized_batch
from .spec import PriorSpec, load_spec, weighted_choice

TIE_TOL = 1e-9  # actions within this of the best Q* count as optimal (Q* is on the [0, H] scale)


@dataclass
class PriorBatch:
    """A model.Context (the statistic after k transitions and the history tokens) and its training targets."""

    context: Context
    q_star: torch.Tensor  # [B,S,A] optimal Q at step h_k (rewards rescaled to [0, 1])
    pi_star: torch.Tensor  # [B,S,A] optimal policy at step h_k, uniform over tied optimal actions
    pi_boltzmann: torch.Tensor  # [B,S,A] softmax(Q*[h_k] / temperature)
    temperature: torch.Tensor  # [B]
    behaviour_action: torch.Tensor  # [B] long: the action the behaviour took at s_k (AD-style target)
    v_gap: torch.Tensor  # [B] (V* - V_uniform)(mu0) / H on the [0, 1] scale: how much acting well matters
    P: torch.Tensor  # [M,S,A,S] float32: the true transitions of the batch's M MDPs (the transition head's target)
    R: torch.Tensor  # [M,S,A] float32: their mean rewards rescaled to [0, 1] by the bounds (the reward head's target)
    mdp: torch.Tensor  # [B] long: which of them each context comes from
    family: tuple  # [B] family names
    behaviour: str  # the behaviour that generated the traces

    @property
    def batch_size(self) -> int:
        return self.q_star.shape[0]

    def to(self, device) -> "PriorBatch":
        return PriorBatch(**{f.name: (getattr(self, f.name).to(device) if hasattr(getattr(self, f.name), "to")
                                      else getattr(self, f.name)) for f in fields(self)})


def make_behaviour(spec: PriorSpec, name: str, rng: np.random.Generator) -> Agent:
    """The behaviour `name` with hyperparameters drawn from the spec (tuned defaults for the rest)."""
    comp = spec.traces.behaviours[name]
    if name != "mixture":
        return make_agent(name, **comp.draw_params(rng))
    # Two components, drawn by weight: every component acts (and plans) at every step, so a mixture of all
    # of them would cost the sum of their traces (0.5 s per default batch against 0.1-0.2 s for two).
    others = {k: c for k, c in spec.traces.behaviours.items() if k != "mixture" and c.weight > 0}
    w = np.array([c.weight for c in others.values()])
    picked = rng.choice(len(others), size=min(2, len(others)), replace=False, p=w / w.sum())
    names = [list(others)[i] for i in sorted(picked)]
    return Mixture([make_behaviour(spec, k, rng) for k in names], [others[k].weight for k in names],
                   float(spec.traces.switch.draw(rng)))


def snapshot_times(spec: PriorSpec, n_mdps: int, batch_size: int, T: int, H: int, rng: np.random.Generator):
    """(run, k) for every context: contexts cycle over the MDPs; k uniform on [0, T), some at episode starts."""
    run = np.arange(batch_size) % n_mdps
    k = rng.integers(0, T, size=batch_size)
    at_start = rng.random(batch_size) < spec.traces.episode_start_fraction
    return run, np.where(at_start, k - k % H, k)


def contexts(batch: TabularMDP, trace: Trace, run: np.ndarray, k: np.ndarray, temperature: np.ndarray,
             behaviour: str) -> PriorBatch:
    """The model-ready batch for contexts (run[j], k[j]) of a trace of `batch` (one run per MDP)."""
    H, sol, span = batch.horizon, batch.solution, batch.r_max - batch.r_min
    run_t, k_t = torch.as_tensor(run), torch.as_tensor(k)
    stats = trace.stats_at(k_t, run_t)
    step = k_t % H
    # Q*[h_k] with rewards rescaled to [0, 1] by the bounds, as the model sees them: Q is linear in R, and a
    # shift of r_min per step adds r_min·(H - h)
    q = (sol.Q[run_t, step] - batch.r_min * (H - step).view(-1, 1, 1).to(sol.Q.dtype)) / span  # [B,S,A]
    best = q >= q.amax(-1, keepdim=True) - TIE_TOL
    pi_star = best / best.sum(-1, keepdim=True)
    tau = torch.as_tensor(temperature, dtype=q.dtype)
    gap = (sol.v_star - sol.v_random) / (H * span)
    f32 = torch.float32
    return PriorBatch(
        context=Context(stats, trace.s[run_t, k_t], step, H, k_t // H),
        q_star=q.to(f32), pi_star=pi_star.to(f32), pi_boltzmann=torch.softmax(q / tau[:, None, None], -1).to(f32),
        temperature=tau.to(f32), behaviour_action=trace.a[run_t, k_t],
        v_gap=torch.as_tensor(gap[run], dtype=f32), P=torch.as_tensor(batch.P, dtype=f32),
        R=torch.as_tensor((batch.R - batch.r_min) / span, dtype=f32), mdp=run_t,
        family=tuple(str(f) for f in batch.meta["family"][run]),
        behaviour=behaviour,
    )


def get_batch(spec: PriorSpec | str, batch_size: int, seed: int, behaviour: Agent | None = None) -> PriorBatch:
    """One batch of `batch_size` contexts; the same (spec, batch_size, seed) gives the same batch.
    `behaviour` replaces the spec's behaviours (pretraining's DAgger step passes the model being trained)."""
    spec = spec if isinstance(spec, PriorSpec) else load_spec(spec)
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    tr = spec.traces
    mdps = sample_sized_batch(spec, math.ceil(batch_size / tr.snapshots_per_mdp), rng)
    n_mdps, H = len(mdps), mdps.horizon
    name = str(weighted_choice(tr.behaviours, lambda c: c.weight, rng, 1)[0])
    if behaviour is None:
        behaviour = make_behaviour(spec, name, rng)
    else:
        name = behaviour.name
    episodes = max(1, min(int(tr.episodes.draw(rng)), tr.max_transitions // H))
    trace = run_trace(mdps, behaviour, episodes, seed=int(rng.integers(2**31)))
    run, k = snapshot_times(spec, n_mdps, batch_size, trace.length, H, rng)
    return contexts(mdps, trace, run, k, spec.temperature.draw(rng, batch_size), name)


class SeededStream(torch.utils.data.IterableDataset):
    """An endless (or `length`-long) stream of batches for a `torch.utils.data.DataLoader(stream,
    batch_size=None, num_workers=w)`: background worker processes generate batches while the model trains.
    Batch i of the stream is make(seed + i) whatever the number of workers (worker j of w makes i = j, j + w,
    ...; the DataLoader interleaves them in order). `make` must be picklable (a module-level function or a
    functools.partial of one)."""

    def __init__(self, make, seed: int = 0, length: int | None = None):
        self.make, self.seed, self.length = make, seed, length

    def __iter__(self):
        from ..threads import use_one_thread

        info = torch.utils.data.get_worker_info()
        start, stride = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None:
            use_one_thread()  # each worker is one core's worth of small tensor ops
        i = start
        while self.length is None or i < self.length:
            yield self.make(self.seed + i)
            i += stride


class PriorDataset(SeededStream):
    """The prior's stream: batch i is get_batch(spec, batch_size, seed + i)."""

    def __init__(self, spec: PriorSpec | str, batch_size: int, seed: int = 0, length: int | None = None):
        from functools import partial

        self.spec = spec if isinstance(spec, PriorSpec) else load_spec(spec)
        super().__init__(partial(get_batch, self.spec, batch_size), seed, length)
