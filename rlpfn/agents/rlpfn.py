"""The `rlpfn` agent: the pretrained model acting in context, with no gradient step and no tuning.

Online it keeps the sufficient statistic of everything it has seen and asks the model for a whole policy
table [H, S, A] at each refresh; it then takes the argmax of the model's planned Q or samples from its policy
logits. Offline it plans once, pessimistically, with the model's learned bonus scale (see `fit`).

The default refresh rule was chosen with `rlpfn validate` on the held-out prior split, never the benchmarks;
the measured table is in the README ("The pretrained model"). "step" refreshes before every decision (one
forward pass each, H times the cost of "episode"); "new-pair" also refreshes after a step that visited a
state-action pair for the first time (at most S·A extra passes per run). The default, "local", makes one
pass per episode and after every step re-plans only the pair just visited, with that pass's corrections and
the updated statistic (one Bellman backup of one pair, no forward pass): a just-tried pair stops looking
untried at once, as with "step", for the cost of "episode".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import SPREAD_ROUND_OFF, bonus_terms, capped, novelty_rate, novelty_weight, reward_noise
from ..env import draw
from ..planning import DTYPE
from ..stats import Stats
from .base import Agent, AgentError, ModelAgent
from .offline import tie_uniform

REFRESH = ("episode", "step", "new-pair", "local")


@dataclass
class RlpfnAgent(ModelAgent):
    name = "rlpfn"
    architecture = "rlpfn"
    online = True
    offline = True
    on_device = True
    # "episode": one forward pass per episode; "step": one per step; "new-pair": at each episode start and after
    # any step that visited a state-action pair for the first time (at most S·A extra passes per run: the
    # one time a pair's value jumps from the prior's guess to data); "local": one pass per episode, and after
    # each step the visited pair alone is re-planned from the updated statistic with that pass's corrections
    # (one Bellman backup, no forward pass)
    refresh: str = "local"
    sample: bool = False  # sample actions from the policy logits instead of taking the argmax of Q_plan
    checkpoint: str | None = None  # a checkpoint path; None = the shipped model (rlpfn.load())
    # Keep Q_plan monotone across refreshes, Q <- min(Q_previous, Q_new), as UCB-VI does with its optimistic Q
    # (each refresh's Q_plan is an upper estimate; the tightest so far is kept). Off: measured worse.
    monotone: bool = False
    # Every explore_every-th episode (0: never) plans with the bonus × explore_scale: a run that passed over the
    # better action after a few unlucky visits retries it now and then (docs/model/v2.md, "Optimistic episodes")
    explore_every: int = 0
    explore_scale: float = 3.0
    # c > 0: at a state visited N_s times in this run, a uniformly random action with probability min(1, c / N_s), so
    # c·ln N_s random tries at a state in all: a passed-over action is retried, ever more rarely (docs/model/v2.md,
    # "Retries at the suite's horizon"; negative). 0: never (v2 as shipped)
    retry_rate: float = 0.0

    def __post_init__(self):
        if self.refresh not in REFRESH:
            raise AgentError(f"rlpfn: refresh must be one of {', '.join(REFRESH)}, got {self.refresh!r}")
        for key in ("sample", "monotone"):
            if not isinstance(getattr(self, key), bool):
                raise AgentError(f"rlpfn: {key} must be true or false, got {getattr(self, key)!r}")
        if isinstance(self.explore_every, bool) or not isinstance(self.explore_every, int) or self.explore_every < 0:
            raise AgentError(f"rlpfn: explore_every must be an integer >= 0, got {self.explore_every!r}")
        for key, zero_ok in (("explore_scale", False), ("retry_rate", True)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    (0 <= value if zero_ok else 0 < value) and value < float("inf")):
                raise AgentError(f"rlpfn: {key} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}")
        if self.explore_every and self.monotone:  # the min over refreshes would drop the raised Q at once
            raise AgentError("rlpfn: explore_every and monotone do not go together (monotone keeps the smaller Q)")
        self._model = None

    def _forward(self, stats: Stats, state, step: int, episodes: int, pessimistic: bool = False, runs=None):
        from ..model import Context

        ctx = Context.at(stats, state, step, self.spec.horizon, episodes)
        device = next(self.model.parameters()).device  # a model being pretrained may sit on a GPU
        # head_delta [n_runs,rows,d+1]: each run acts with its own perturbation of the head (rlpfn/es.py sets it)
        delta = getattr(self, "head_delta", None)
        if delta is not None:
            delta = delta.to(device)
            delta = delta if runs is None else delta[runs.to(device)]
        if self._exploring(pessimistic):  # α, the bonus's log-multiplier, raised for every pair of every run
            weight = self.model.head.weight
            boost = weight.new_zeros(stats.n_runs, weight.shape[0], weight.shape[1] + 1)
            boost[:, 0, -1] = float(np.log(self.explore_scale))
            delta = boost if delta is None else delta + boost
        with torch.no_grad():
            out = self.model(ctx.to(device), pessimistic, head_delta=delta, transitions=False)
        if device != self.device:  # the runs live elsewhere (on the CPU, the model on a GPU)
            out.q_plan, out.q_est = out.q_plan.to(self.device), out.q_est.to(self.device)
            out.temperature, out.corrections = out.temperature.to(self.device), out.corrections.to(self.device)
        return out

    def _exploring(self, pessimistic: bool) -> bool:
        """Whether this online episode is one of the optimistic ones (episodes k-1, 2k-1, ...; every one for k = 1)."""
        k = self.explore_every
        return bool(k) and not pessimistic and self.episodes >= 0 and (self.episodes + 1) % k == 0

    # ---- online --------------------------------------------------------------------------------
    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        device = self.device
        self.stats = Stats.zeros(n_runs, spec.n_states, spec.n_actions, device)
        self.episodes = -1
        self.out = self.q = self.v = self.corrections = None
        self.v_new = self.nu = self.rho = None  # planner_novelty's V̄_new, ν and pooled ρ per run (`_novel_values`)
        self.h_term_multiplier = None  # [N,1] the last pass's 1 + κ·σ̂ per run (planner_noise_h_term)
        self.new_pair = torch.zeros(n_runs, dtype=torch.bool, device=device)
        self.rows = torch.arange(n_runs, device=device)
        self.remaining = torch.arange(spec.horizon, 0, -1, dtype=DTYPE, device=device)  # H-h

    def act(self, states, h):
        if h == 0:
            self.episodes += 1
        if self.out is None or h == 0 or self.refresh == "step":
            self._refresh(self.rows, states, h)
        elif self.refresh == "new-pair" and self.new_pair.any():
            self._refresh(self.new_pair.nonzero().squeeze(1), states, h)  # only the runs that met a new pair
        q = self.q[self.rows, h, states]  # [N,A]
        if not self.sample:
            actions = self.argmax_random_ties(q)
        else:
            logits = q / ((self.spec.horizon - h) * self.out.temperature.to(DTYPE))
            probs = torch.softmax(logits, -1).cpu()  # drawn with the CPU's generator, as everything random
            actions = torch.multinomial(probs, 1, generator=self.gen).squeeze(1).to(self.device)
        if self.retry_rate > 0:  # (nothing drawn otherwise: v2's random stream stays as it was)
            visits = self.stats.visits[self.rows, states].sum(-1)  # [N] N_s
            u = draw(lambda n: torch.rand(n, 2, dtype=DTYPE, generator=self.gen), q.shape[0], self.streams,
                     self.device)
            retry = u[:, 0] < self.retry_rate / visits.clamp_min(1.0)
            other = (u[:, 1] * q.shape[1]).long().clamp(max=q.shape[1] - 1)
            actions = torch.where(retry, other, actions)
        return actions

    def _refresh(self, runs: torch.Tensor, states, h: int) -> None:
        """Ask the model for a new policy table for `runs` (all runs, or the subset that needs one)."""
        st = self.stats if len(runs) == self.n_runs else self.stats.rows(runs)
        self.out = self._forward(st, states[runs], h, self.episodes, runs=runs)
        if self.q is None:
            self.q, self.corrections = self.out.q_plan, self.out.corrections.to(DTYPE)
        else:
            self.q[runs] = torch.minimum(self.q[runs], self.out.q_plan) if self.monotone else self.out.q_plan
            self.corrections[runs] = self.out.corrections.to(DTYPE)
        if self.refresh == "local":  # what the backups until the next pass read
            v = self.q.amax(-1).transpose(1, 2)  # V [N,S,H+1], state-major (a backup reads a few states' rows)
            self.v = torch.cat([v, v.new_zeros(self.n_runs, self.spec.n_states, 1)], 2).contiguous()
            if self.model.cfg.planner_novelty > 0:
                self.new = self.stats.visits.sum(-1) == 0  # [N,S] states where no action was tried
                if self.model.cfg.planner_novelty_pooled:  # the pass's ρ, which the backups until the next one read
                    self.rho = novelty_rate(self.stats.counts)
                self._novel_values(self.rows)
            if self.model.cfg.planner_noise_h_term > 0:  # the pass's multiplier of the 1/N part, for the backups
                if self.h_term_multiplier is None:
                    self.h_term_multiplier = torch.ones(self.n_runs, 1, dtype=DTYPE, device=self.device)
                self.h_term_multiplier[runs] = 1.0 + self.model.cfg.planner_noise_h_term * reward_noise(st)[:, None].to(
                    self.device)
            if self.model.cfg.planner_tried_strength > 0:  # the predicted rows this pass planned with, for the backups
                (b, st, a), log_rows = self.out.successor_rows
                self.row_index = torch.full(self.stats.visits.shape, -1, dtype=torch.long, device=self.device)
                self.row_index[runs[b.to(self.device)], st.to(self.device), a.to(self.device)] = torch.arange(
                    len(b), device=self.device)
                spare = torch.zeros(1, log_rows.shape[1], dtype=DTYPE, device=self.device)  # for pairs with none
                self.successor_rows = torch.cat([log_rows.to(self.device, DTYPE).exp(), spare])

    def _novel_values(self, runs: torch.Tensor) -> None:
        """V̄_new [N,H+1] of `runs`: the mean value of their untried states at each step (the planner's
        `novelty_terms`), and ν for the runs that still have such a state (0 for the others)."""
        if self.v_new is None:
            self.v_new = self.v.new_zeros(self.n_runs, self.spec.horizon + 1)
            self.nu = self.v.new_zeros(self.n_runs, 1)
        new = self.new[runs].to(DTYPE)  # [R,S]
        count = new.sum(-1, keepdim=True)
        self.v_new[runs] = (new[:, :, None] * self.v[runs]).sum(1) / count.clamp_min(1)
        self.nu[runs] = (count > 0).to(DTYPE) * self.model.cfg.planner_novelty
        if self.model.cfg.planner_novelty_pooled:
            self.nu[runs] *= self.rho[runs, None]

    def observe(self, states, actions, rewards, next_states, h):
        if self.refresh == "new-pair":
            self.new_pair = self.stats.counts[self.rows, states, actions].sum(-1) == 0  # [N]: first visit of (s, a)
        self.stats.add(states, actions, rewards, next_states)
        if self.refresh == "local" and self.model.cfg.planner_novelty > 0:
            first = self.new[self.rows, states]  # runs that just tried an action in an untried state
            if first.any():
                self.new[self.rows, states] = False
                self._novel_values(first.nonzero().squeeze(1))
        if self.refresh == "local" and h + 1 < self.spec.horizon:
            self._backup(states, actions, h)

    def _backup(self, states, actions, h: int) -> None:
        """Re-plan each run's just-visited pair (s, a) for the rest of the episode (steps h+1..H-1), as the
        model's planner would with the last pass's corrections: Q_k(s,a) = min(H-k, r̂ + δ + e^α·b_k + P̂·V_{k+1}),
        V_{k+1} from the current table. The pair's row is all that the new transition changes in the
        statistic (with planner_state_log also its state's visits, which move the bonus of every tried action of
        the state: all are backed up); what the change would do to its predecessors waits for the next pass. With
        the head's rows at tried pairs (planner_tried_strength), a pair uses its row of that pass: a guessed pair's
        once it is tried, and none for a pair of a state where nothing was tried then (the next pass gives it one).
        On the CPU it runs on numpy views of the agent's tensors (written in place): a backup is some twenty tiny
        operations, and numpy's cost per operation is a fraction of torch's dispatch (`rlpfn latency`); on a GPU, on
        the tensors."""
        on_cpu = self.device.type == "cpu"
        xp, arr = (np, torch.Tensor.numpy) if on_cpu else (torch, lambda x: x)
        novelty = (arr(self.v_new), arr(self.nu)) if self.model.cfg.planner_novelty > 0 else None
        tried = (arr(self.row_index), arr(self.successor_rows)) if self.model.cfg.planner_tried_strength > 0 else None
        noise = arr(self.h_term_multiplier) if self.model.cfg.planner_noise_h_term > 0 else None
        local_backup(xp, h, self.spec.horizon, arr(self.rows), arr(states), arr(actions), arr(self.q), arr(self.v),
                     arr(self.corrections), arr(self.stats.counts), arr(self.stats.reward_sum), arr(self.remaining),
                     self.model.cfg, novelty, tried, noise)

    # ---- offline -------------------------------------------------------------------------------
    def fit(self, spec, stats, seed=0):
        """Greedy policy [N,H,S,A] from a dataset's statistic (no current state): backward induction on the
        empirical model with the model's learned bonus scale e^α turned into a penalty, Q_h = clip(r̂ -
        e^α·b_h + P̂·V_{h+1}, 0, H-h), unvisited pairs 0 (VI-LCB's form, with the pessimism the model learned
        per (s, a)). Measured on the benchmarks' offline datasets (README, "The pretrained model"): acting on
        the Q head, or keeping the learned reward correction δ, chose untried or optimistically valued actions
        (SixArms / FrozenLake expert data: 0.03 / 0.005 against VI-LCB's 1.0 / 0.96): both are trained to be
        optimistic or posterior means, which offline, with no more data to come, is the wrong side."""
        Agent.reset(self, spec, stats.n_runs, seed)
        self.device = stats.counts.device  # where the answer goes (an earlier online run may have set another)
        n = stats.visits
        episodes = int(n.sum((1, 2)).max().item()) // spec.horizon
        no_state = torch.full((stats.n_runs,), -1, dtype=torch.long)
        Q = self._forward(stats, no_state, 0, episodes, pessimistic=True).q_plan
        return tie_uniform(Q, n.unsqueeze(1))


def local_backup(xp, h, H, rows, s, a, q, v, corrections, counts, reward_sum, remaining, cfg, novelty=None,
                 tried=None, h_term_multiplier=None) -> None:
    """RlpfnAgent._backup's arithmetic, in place on numpy arrays (xp = numpy) or tensors (xp = torch). `novelty`
    (V̄_new [N,H+1], ν [N,1], 0 for runs with no untried state left): ModelConfig.planner_novelty's terms. `tried`
    (row index [N,S,A], -1 for none; rows [K+1,S], the last a spare): the transition head's rows of the last pass,
    which a pair of fewer than cfg.tried_below visits plans with (ModelConfig.planner_tried_strength).
    `h_term_multiplier` [N,1]: the last pass's multiplier of the 1/N part (ModelConfig.planner_noise_h_term). With
    cfg.planner_state_log the new visit moved N_s, and with it (once N_s > cfg.planner_state_log_from) the bonus of
    every tried action of s: all of them are backed up, not only a; below that, a alone, as without the log term."""
    if cfg.planner_state_log:
        state_visits = counts[rows, s].sum((-2, -1))[:, None]  # [N,1]
        moved = state_visits > cfg.planner_state_log_from  # [N,1]: runs whose L (and every bonus at s) moved
        for b in range(counts.shape[2]):
            other = xp.full_like(a, b)
            _backup_pair(xp, h, rows, s, other, q, v, corrections, counts, reward_sum, remaining, cfg,
                         novelty, tried, h_term_multiplier, state_visits, moved | (other == a)[:, None])
    else:
        _backup_pair(xp, h, rows, s, a, q, v, corrections, counts, reward_sum, remaining, cfg, novelty, tried,
                     h_term_multiplier)
    v[rows, s, h + 1:H] = xp.amax(q[rows, h + 1:, s], -1)


def _backup_pair(xp, h, rows, s, a, q, v, corrections, counts, reward_sum, remaining, cfg, novelty, tried,
                 h_term_multiplier, state_visits=None, write=None) -> None:
    """local_backup's re-planning of one pair per run, (s, a), for steps h+1..H-1; with `state_visits` (N_s), only
    where the pair was tried and `write` [N,1] holds (elsewhere the pair keeps its value)."""
    counts = counts[rows, s, a]  # [N,S]
    n = counts.sum(-1, keepdims=True)  # [N,1]: at least 1 for the pair just visited
    if state_visits is not None:  # other actions of s too: an untried one's arithmetic is discarded below
        n = n.clip(min=1.0)
    alpha, delta = corrections[rows, s, a, 0:1], corrections[rows, s, a, 1:2]  # [N,1] each
    flat, per_step = bonus_terms(n, xp.exp(alpha), cfg, state_visits)
    if h_term_multiplier is not None:
        per_step = per_step * h_term_multiplier[rows]
    expected = (counts[:, None] @ v[:, :, h + 2:])[:, 0]  # Σ_s' N(s,a,s')·V_{k+1}(s'), k = h+1..H-1: [N,K]
    if cfg.planner_variance > 0:  # c·sqrt(Var_P̂(V_{k+1}) / N), as the planner's (plan_terms' `value_spread`)
        second = (counts[:, None] @ v[:, :, h + 2:] ** 2)[:, 0] / n
        spread = second - (expected / n) ** 2
        spread = xp.where(spread > SPREAD_ROUND_OFF, spread, 0.0)
        flat = flat + cfg.planner_variance * (spread / n) ** 0.5
    if novelty is None and tried is None:
        backup = (reward_sum[rows, s, a, None] + expected) / n + delta + flat
    else:
        pv = expected / n  # P̂·V_{k+1}
        backup = reward_sum[rows, s, a, None] / n + pv + delta + flat
        if novelty is not None:
            v_new, nu = novelty
            n1 = 1.0 if cfg.planner_novelty_pooled else (counts == 1).sum(-1, keepdims=True)  # pooled: ρ is in ν
            backup = backup + novelty_weight(n, n1, nu) * (v_new[:, h + 2:] - pv)
        if tried is not None:
            index, successor_rows = tried
            k = index[rows, s, a]  # [N]
            kappa = cfg.planner_tried_strength
            w = xp.where((k[:, None] >= 0) & (n < cfg.tried_below), kappa / (n + kappa), 0.0)  # [N,1]
            predicted = (successor_rows[k][:, None] @ v[:, :, h + 2:])[:, 0]  # k = -1: the spare row of zeros
            backup = backup + w * (predicted - pv)
    value = capped(backup, remaining[h + 1:], per_step)
    if state_visits is not None:
        keep = counts.sum(-1, keepdims=True) > 0
        value = xp.where(keep if write is None else keep & write, value, q[rows, h + 1:, s, a])
    q[rows, h + 1:, s, a] = value
