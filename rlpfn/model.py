"""The rlpfn model: the sufficient statistic of an MDP's history -> a policy for every (s, a), and Q estimates.

Input (a `Context`, batched): counts N[S,A,S'], reward sums and sums of squares [S,A] (rewards rescaled to
[0, 1]), and the history tokens: current state, step h within the episode, horizon H, episodes so far.

How it computes, and why:
1. **Planning features, exactly** (`features`): visit counts, 1/sqrt(N), r̂ and its spread, the certainty-
   equivalent Q̂ and the UCB-VI-optimistic Q̂ from backward induction on the empirical model (docs/design.md:
   do not make attention rediscover backward induction on 2 cores of training).
2. **A size-agnostic trunk** over one token per (s, a). Each block mixes along the MDP's own structure and
   has no positional identity for states or actions, so relabelling states or actions permutes the output
   the same way, and any S, A works: attention across the actions of a state; attention across states (on
   per-state summaries); a message from successor states weighted by P̂(s'|s,a) (one Bellman backup's
   wiring); an MLP.
3. **A learned correction of an optimistic planner** (`plan`): the trunk outputs, per (s, a), a log-multiplier
   of UCB-VI's exploration bonus, an additive reward correction, and the value of an unvisited pair; backward
   induction on the empirical model with those gives Q_plan[h, s, a] for every step; the policy logits are
   Q_plan / (temperature · (H - h)). The heads start at zero, so the untrained model *is* UCB-VI with the
   prior-tuned bonus (data/tuned.json), and training can only move it where the prior rewards moving.
   Why: imitation from scratch stalled well above UCB-VI's regret (docs/design.md, first experiment).
   One forward pass gives the whole [H, S, A] policy table, so acting costs one pass per refresh, flat in
   the history length.
4. **A Q head**: Q̂_CE[h] + (H - h) · correction, regressed on Q* (an auxiliary loss; offline, acting greedily
   on it is certainty equivalence corrected by what the prior taught).
5. **A transition head** (optional, `transition_head`): where each pair leads, log P̃(s'|s, a), a softmax over the
   states from a query per (s, a) and a key per state (any S). Online, the planner then values an untried pair of
   a state where some action was tried at one step of the best reward plus P̃·V_{h+1}, instead of H - h. Why: most
   of UCB-VI's regret on the priors is the optimism that H - h puts on every untried pair
   (docs/model/regret_sources.md); the prediction is trained by cross-entropy to the prior's true P.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from torch import nn

from .planning import DTYPE, backward_induction, expect, repeat, variance, with_dtype
from .stats import Stats, behaviour_entropy

N_FEATURES = 19
# The reward head's quantile levels: one output each, so that the level the planner uses is chosen after training
# (ModelConfig.planner_reward_quantile), on the training prior.
REWARD_QUANTILES = (0.5, 0.75, 0.9, 0.97)


@dataclass(frozen=True)
class ModelConfig:
    """The rlpfn model's architecture (section model)."""

    d_model: PositiveInt = 64
    """width of the trunk's tokens"""
    n_layers: PositiveInt = 3
    """trunk blocks"""
    n_heads: PositiveInt = 4
    """attention heads (must divide d_model)"""
    mlp_ratio: PositiveInt = 4
    """the MLP's hidden width over d_model"""
    # The defaults `rlpfn tune` chose on the training prior (data/tuned.json; Azar et al. 2017's bonus shape).
    ucb_scale: NonNegativeFloat = 0.1
    """scale of UCB-VI's Hoeffding bonus the planner starts from: b = scale·sqrt(1/N) + h_term·(H-h)/N"""
    ucb_h_term: NonNegativeFloat = 0.01
    """h_term of that bonus"""
    planner_h_term_scale: NonNegativeFloat = 1.0
    """multiplies the planner's h_term only (the 1/N part of its bonus online, and of its penalty offline: how
    little a few visits are trusted); the trunk's features keep ucb_h_term. Measured on the training prior with
    scripts/bonus_variant.py --h-term-scale"""
    planner_novelty: NonNegativeFloat = 0.0
    """ν: online, how much the planner believes a tried pair may lead to a state never visited. A tried pair's
    expected next value is (1-w)·P̂·V + w·V̄_new, w = min(1, ν·n1/N) (Good-Turing: n1 successors seen once in N
    visits), V̄_new the mean value of the states where no action was tried yet (while there are any): one unlucky
    transition no longer closes a way forward. Off (0): measured worse on the training prior
    (docs/model/v2.md). Set by scripts/bonus_variant.py --novelty; the features stay as they were"""
    planner_novelty_pooled: bool = False
    """how planner_novelty's w is estimated: false, from the pair alone (Good-Turing, n1/N); true, from the run's
    other pairs, w = min(1, ν·ρ/N) with ρ = Σ(k-1) / Σ(N-1) over the pairs of N >= 2 visits and k distinct successors
    (`novelty_rate`: how often a repeat visit found a successor not seen before; 0 in a deterministic MDP). One
    visit cannot tell a slip from the truth; the MDP's other pairs can. Set by scripts/bonus_variant.py --pooled"""
    # Off: trained with the quantile loss it became a uniform optimism (+0.18 reward per step on FrozenLake after
    # 50 episodes, growing with data) and doubled FrozenLake's regret; optimism then lives only in the bonus scale
    # (shrinks as 1/sqrt(N)) and unvisited values.
    reward_correction: bool = False
    """an additive reward correction δ in the planner"""
    unvisited_logit: float = 6.0
    """an unvisited pair starts at sigmoid(logit)·(H-h) (6: about UCB-VI's H-h)"""
    # At logit 6 sigmoid' = 0.0025: v1's u had to move by 6 to halve the value, and barely moved (why_v1.md).
    unvisited_linear: bool = False
    """how the correction u moves an unvisited pair's value fraction: false, sigmoid(unvisited_logit + u) (v1);
    true, sigmoid(unvisited_logit) + u, floored at 0 (the planner caps it at 1)"""
    # Off (v1): offline reuses the online bonus's α, whose best scale is not the best penalty's (offline_head.md).
    offline_head: bool = False
    """a fifth head row β for offline acting: the pessimistic planner's penalty is e^β·b instead of e^α·b"""
    offline_tried_strength: NonNegativeFloat = 0.0
    """κ: offline, every tried pair plans with (N·P̂ + κ·P̃)/(N + κ), the transition head's P̃ as the mean of a
    Dirichlet prior of strength κ; the mass it puts on states the data never acted from is worth 0 to the pessimistic
    planner (0: P̂ alone, v2). Measured on the training prior (docs/model/offline_head.md)"""
    offline_narrow_below: ClosedUnitInterval = 0.0
    """offline: a dataset whose behaviour entropy (stats.behaviour_entropy: 0 when the data take one action per state,
    1 when they spread evenly) is below this is narrow, and its penalty is multiplied by offline_narrow_multiplier
    (0: no dataset is narrow)"""
    offline_narrow_multiplier: PositiveFloat = 1.0
    """the penalty's multiplier on narrow datasets (offline_narrow_below). Narrow data cover few actions, and an
    action they rarely took deserves more doubt; chosen on the training prior (docs/model/offline_head.md)"""
    init_temperature: PositiveFloat = 0.1
    """the policy's initial temperature (logits are Q_plan / (T·(H-h)))"""
    # Off (v1): relabelling actions per state then permutes the output; on, only relabelling them alike in every state.
    action_attention: bool = False
    """each trunk block also attends across states among the tokens of one action (ties an action's label across
    states: for priors whose actions mean the same thing everywhere, relabel.actions global)"""
    # Off (v1). On: trained by loss.transition_weight (cross-entropy to the prior's P).
    transition_head: bool = False
    """predict where each pair leads; online, an untried pair of a tried state is then worth one step of the best
    reward plus the predicted P̃·V instead of H-h"""
    transition_edges: bool = False
    """the transition head also reads the statistic's graph: each row's logits get, with weights the pair's token
    sets, the pair's own log(1 + N(s,a,s')), the state graph's log(1 + Σ_a N(s,a,s')) both ways (s to s' and s' to
    s), s' = s, and s' never acted from. The trunk's tokens carry no identity of a state, so without these the
    head cannot point at one particular successor (docs/model/v2.md, "A transition head that reads the graph")"""
    tried_below: NonNegativeInt = 0
    """the transition head also predicts tried pairs of fewer visits than this (0: none): trained there
    (loss.transition_weight), and planned with when planner_tried_strength > 0"""
    planner_tried_strength: NonNegativeFloat = 0.0
    """κ: online, a tried pair of fewer than tried_below visits plans with (N·P̂ + κ·P̃)/(N + κ), the head's P̃ as
    the mean of a Dirichlet prior of strength κ (0: P̂ alone)"""
    planner_tried_known_only: bool = False
    """online, the head's row at a tried pair (planner_tried_strength) keeps only its mass on states where some
    action was tried, renormalized: a state never acted from is valued at H-h, and mass the head puts there would
    make a tried pair look like a way to unexplored ground (docs/model/v2.md). Guessed pairs are untouched (and the
    agent's backups use a pair's row of the last pass: one guessed then, and tried since, keeps its unmasked row)"""
    planner_guess_until: NonNegativeInt = 0
    """N1: online, an untried pair of a tried state is valued by the head's prediction only while its state has fewer
    than N1 visits; from then on it is an ordinary untried pair, worth H-h, so every action is tried in the end
    (0: always the prediction, v2). Measured on the training prior (docs/model/v2.md)"""
    planner_guess_temperature: NonNegativeFloat = 0.0
    """τ: online, a guessed pair's next value is the soft maximum t·log Σ P̃(s')·exp(V(s')/t), t = τ·(H-h), instead
    of P̃·V (0): optimistic where the head puts some mass on a good successor, so that a confident wrong prediction
    undervalues a good pair less. The smaller τ > 0, the more optimistic: towards the best state's value as τ → 0
    (P̃ gives every state some mass), towards P̃·V as τ grows. Measured worse or equal on the training prior
    (docs/model/transition_head.md). Set by scripts/bonus_variant.py --guess-temperature; the features stay as
    they were"""

    reward_head: bool = False
    """also predict, at the pairs the transition head guesses, quantiles (REWARD_QUANTILES) of their mean reward
    (trained by loss.reward_weight against the prior's true mean reward)"""
    reward_head_stats: bool = False
    """the reward head also reads the rewards seen (`reward_stats`): the best and the mean of the mean rewards of the
    pair's state's tried actions, and of all the run's tried pairs, so that it can say "about what this state's
    other actions pay" without the trunk having to carry it"""
    planner_reward_quantile: ClosedUnitInterval = 1.0
    """online, a guessed pair's one step of reward: 1, the best the reward bounds allow; or the reward head's
    prediction at this level (one of REWARD_QUANTILES; needs reward_head), clipped to [0, 1]. Chosen on the
    training prior (docs/model/reward_head.md)"""
    planner_state_log: bool = False
    """online, the bonus at (s, a) grows with its state's visits N_s, as UCB1's log at each state: its flat part ×
    sqrt(L), its 1/N part × L, L = 1 + ln N_s. Without it the bonus is constant in time, so an action that looked
    worse after one unlucky visit is never tried again however often its state is visited (docs/model/v2.md,
    "Where v2 loses, and a log term per state"; negative there). Set by scripts/bonus_variant.py --state-log; the
    features stay as they were. The agent's `monotone` would keep the older, smaller bonus"""
    planner_state_log_from: PositiveFloat = 1.0
    """N0: planner_state_log's L is 1 + ln max(1, N_s / N0), so the bonus is the plain one until a state has N0
    visits: retries only for actions passed over at a state visited many times (scripts/bonus_variant.py
    --state-log-from)"""
    planner_noise_h_term: NonNegativeFloat = 0.0
    """κ: online, the 1/N part of a tried pair's bonus × (1 + κ·σ̂), σ̂ the run's pooled within-pair standard deviation
    of the rewards (`reward_noise`; 0 when every pair's rewards repeat exactly): with noisy rewards one visit says
    less. Measured on the training prior (docs/model/v2.md, "Where v2 loses, and a log term per state"; negative).
    Set by scripts/bonus_variant.py --noise-h-term; the features stay as they were"""
    planner_variance: NonNegativeFloat = 0.0
    """c: online, a tried pair's Q_h gains c·sqrt(Var_P̂(V_{h+1}) / N), the leading term of UCBVI-BF's Bernstein bonus:
    exploration where the successors seen differ in value, none at a pair whose visits all led to one place
    (docs/model/v2.md, "A value-variance term, a late log term, ..."; negative). Set by scripts/bonus_variant.py
    --variance"""

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads = {self.n_heads} does not divide d_model = {self.d_model}")
        for key in ("ucb_scale", "ucb_h_term", "planner_h_term_scale", "planner_novelty", "planner_tried_strength",
                    "planner_noise_h_term", "planner_variance", "planner_state_log_from",
                    "planner_guess_temperature", "unvisited_logit", "init_temperature", "offline_narrow_multiplier",
                    "offline_tried_strength"):
            if not math.isfinite(getattr(self, key)):  # the config types let inf (and NaN) through
                raise ValueError(f"model.{key} must be finite, got {getattr(self, key)}")
        if not self.offline_narrow_multiplier > 0:
            raise ValueError(f"model.offline_narrow_multiplier must be > 0, got {self.offline_narrow_multiplier}")
        if not self.planner_state_log_from > 0:
            raise ValueError(f"model.planner_state_log_from must be > 0, got {self.planner_state_log_from}")
        if self.planner_state_log_from != 1.0 and not self.planner_state_log:
            raise ValueError(f"model.planner_state_log_from = {self.planner_state_log_from} delays the state's log term, "
                             "but model.planner_state_log is off")
        if not 0.0 <= self.offline_narrow_below <= 1.0:
            raise ValueError(f"model.offline_narrow_below must lie between 0 and 1 (a behaviour entropy), got "
                             f"{self.offline_narrow_below}")
        if self.transition_edges and not self.transition_head:
            raise ValueError("model.transition_edges gives the transition head the statistic's graph, but "
                             "model.transition_head is false")
        if self.tried_below > 0 and not self.transition_head:
            raise ValueError(f"model.tried_below = {self.tried_below} trains the transition head at tried pairs, but "
                             "model.transition_head is false")
        if not (self.planner_reward_quantile == 1.0 or self.planner_reward_quantile in REWARD_QUANTILES):
            raise ValueError(f"model.planner_reward_quantile must be 1 (the bound) or one of the reward head's levels "
                             f"{', '.join(map(str, REWARD_QUANTILES))}, got {self.planner_reward_quantile}")
        if self.planner_reward_quantile != 1.0 and not self.reward_head:
            raise ValueError(f"model.planner_reward_quantile = {self.planner_reward_quantile} plans with the reward "
                             "head's prediction, but model.reward_head is false")
        if self.reward_head_stats and not self.reward_head:
            raise ValueError("model.reward_head_stats gives the reward head the rewards seen, but model.reward_head is "
                             "false")
        if self.reward_head and not self.transition_head:
            raise ValueError("model.reward_head predicts rewards at the pairs the transition head guesses, but "
                             "model.transition_head is false")
        if self.planner_novelty_pooled and self.planner_novelty == 0:
            raise ValueError("model.planner_novelty_pooled estimates planner_novelty's weight from the run's pairs, but "
                             "model.planner_novelty is 0")
        if self.planner_tried_strength > 0 and self.tried_below == 0:
            raise ValueError(f"model.planner_tried_strength = {self.planner_tried_strength} plans with the head's rows "
                             "at tried pairs, but model.tried_below is 0")
        if self.offline_tried_strength > 0 and not self.transition_head:
            raise ValueError(f"model.offline_tried_strength = {self.offline_tried_strength} plans offline with the "
                             "transition head's rows, but model.transition_head is false")
        if self.planner_guess_until > 0 and not self.transition_head:
            raise ValueError(f"model.planner_guess_until = {self.planner_guess_until} limits the transition head's "
                             "guesses, but model.transition_head is false")
        if self.planner_tried_known_only and self.planner_tried_strength == 0:
            raise ValueError("model.planner_tried_known_only masks the head's rows at tried pairs, but "
                             "model.planner_tried_strength is 0 (no such rows are planned with)")

    def to_dict(self) -> dict:
        from .config import to_dict

        return to_dict(self)


@dataclass
class Context:
    """What the model reads: the statistic and the history tokens, batched over B contexts of one (S, A, H)."""

    stats: Stats  # [B,...]: counts [B,S,A,S], reward sums and sums of squares [B,S,A] (rewards in [0, 1])
    state: torch.Tensor  # [B] long; -1 = no current state (an offline dataset)
    step: torch.Tensor  # [B] long, 0..H-1
    horizon: int
    episodes: torch.Tensor  # [B] whole episodes seen

    def to(self, device) -> "Context":
        return Context(self.stats.to(device), self.state.to(device), self.step.to(device), self.horizon,
                       self.episodes.to(device))

    @classmethod
    def at(cls, stats: Stats, state, step: int, horizon: int, episodes: int) -> "Context":
        """An agent's Stats (one row per run) at the same step and episode count for every run."""
        B, device = stats.n_runs, stats.counts.device
        return cls(stats, state, torch.full((B,), step, dtype=torch.long, device=device), horizon,
                   torch.full((B,), episodes, dtype=torch.long, device=device))


@dataclass
class Output:
    logits: torch.Tensor  # [B,S,A] policy logits at each context's step
    q: torch.Tensor  # [B,S,A] Q estimate at each context's step (rewards in [0, 1], values in [0, H-h])
    q_plan: torch.Tensor  # [B,H,S,A] the corrected planner's Q, every step (acting uses it)
    q_est: torch.Tensor  # [B,H,S,A] the Q head at every step
    corrections: torch.Tensor  # [B,S,A,3] log bonus multiplier, reward correction, unvisited logit
    temperature: torch.Tensor  # scalar
    log_p_next: torch.Tensor | None = None  # [B,S,A,S] the head's log P̃(s'|s, a), float64 (transitions=True)
    summary: torch.Tensor | None = None  # [B,d] the trunk's output averaged over (s, a): what a critic reads
    successor_rows: tuple | None = None  # ((b, s, a), log P̃ [K,S]): the rows acting asked for (transitions=False)
    reward_quantiles: torch.Tensor | None = None  # [B,S,A,len(REWARD_QUANTILES)] the reward head's (reward_head)


def ucb_bonus(n: torch.Tensor, remaining, cfg: ModelConfig) -> torch.Tensor:
    flat, per_step = bonus_terms(n, 1.0, cfg)
    return flat + per_step * remaining


def bonus_terms(n: torch.Tensor, multiplier, cfg: ModelConfig, state_visits=None):
    """UCB-VI's bonus scaled by `multiplier`, split so that the bonus with `remaining` steps to go is
    flat + per_step·remaining: the planner folds the flat part into the reward once, not at every stage.
    The per-step part is further scaled by planner_h_term_scale. With cfg.planner_state_log and `state_visits`
    (N_s, broadcasting against n), flat × sqrt(L) and per_step × L, L = 1 + ln max(1, N_s / N0), N0 =
    cfg.planner_state_log_from. Tensors or numpy arrays alike (the agent's per-step backup runs in numpy)."""
    inv_n = 1.0 / n.clip(min=1.0)
    flat, per_step = (multiplier * cfg.ucb_scale * inv_n**0.5,
                      multiplier * (cfg.ucb_h_term * cfg.planner_h_term_scale) * inv_n)
    if cfg.planner_state_log and state_visits is not None:
        log = np.log if isinstance(state_visits, np.ndarray) else torch.log
        L = 1.0 + log((state_visits / cfg.planner_state_log_from).clip(min=1.0))
        flat, per_step = flat * L**0.5, per_step * L
    return flat, per_step


def capped(q, remaining, per_step, cap=1.0) -> torch.Tensor:
    """A stage's planner value from its backup q = r̂ + δ + flat + P̂·V_{h+1}: the bonus's per-step part added,
    capped at cap·(H-h) (`remaining` = H-h: a number, or a tensor broadcasting against q; `cap` a number or a
    tensor, inf for no cap). Tensors or numpy arrays alike."""
    return (q + per_step * remaining).clip(max=cap * remaining)


def planner_terms(r_hat, n, cfg: ModelConfig, corrections: torch.Tensor | None = None, pessimistic: bool = False,
                  guessed: torch.Tensor | None = None, guess_reward: torch.Tensor | None = None,
                  h_term_multiplier: torch.Tensor | None = None):
    """The planner's per-pair reward and per-step bonus (`plan`), so that Q_h = capped(reward + P̂·V_{h+1}, H-h,
    per_step). An unvisited pair's P̂ row is zero, so one formula serves every pair: with reward 0 and per_step
    its unvisited fraction, min(0 + frac·(H-h), H-h) = frac·(H-h) (or 0 offline). `guessed` [B,S,A]: unvisited
    pairs whose successors are predicted (`plan`): reward `guess_reward` [B,S,A] there (default 1, the best), no
    bonus. `h_term_multiplier` [B]: online, each run's tried pairs' 1/N part × it (ModelConfig.planner_noise_h_term)."""
    visited = n > 0
    alpha, delta, unv = (torch.zeros_like(n),) * 3 if corrections is None else corrections.to(DTYPE).unbind(-1)
    flat, per_step = bonus_terms(n, alpha.exp(), cfg, None if pessimistic else n.sum(-1, keepdim=True))
    zero = torch.zeros_like(flat)
    if pessimistic:  # offline: the same learned bonus as a penalty (VI-LCB's form)
        return torch.where(visited, r_hat - flat, zero), torch.where(visited, -per_step, zero)
    reward = torch.where(visited, r_hat + delta + flat, zero)
    if h_term_multiplier is not None:
        per_step = per_step * h_term_multiplier.view(-1, 1, 1)
    per_step = torch.where(visited, per_step, unvisited_fraction(unv, cfg))
    if guessed is not None:
        guess = 1.0 if guess_reward is None else guess_reward.to(reward.dtype)
        reward, per_step = torch.where(guessed, guess, reward), torch.where(guessed, 0.0, per_step)
    return reward, per_step


def unvisited_fraction(u: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """An unvisited pair's value as a fraction of H-h, from its correction u (ModelConfig.unvisited_linear)."""
    if cfg.unvisited_linear:
        return (u + 1.0 / (1.0 + math.exp(-cfg.unvisited_logit))).clamp_min(0.0)
    return torch.sigmoid(cfg.unvisited_logit + u)


# A spread of successor values below this (in squared value units, V <= H <= a few hundred) is round-off: one
# successor, or equal values. Both the planner and the agent's per-step backup read it as zero.
SPREAD_ROUND_OFF = 1e-9


def plan_terms(P_hat, reward, per_step, H: int, floor: float | None = None, cap=1.0, guess=None, tried=None,
               novelty=None, guess_temperature: float = 0.0, value_spread=None):
    """Backward induction with Q_h = capped(reward + P̂·V_{h+1}, H-h, per_step, cap), clipped below at `floor`.
    `guess` ((b, s, a), rows [K,S]): predicted successors of K pairs whose P̂ row is zero, added to P̂ there. Only
    those rows are stored and multiplied: a dense [B,S,A,S] table costs S·A·S per step, which on Taxi was most of a
    forward pass. `tried` ((b, s, a), rows [K,S], w [K]): predicted successors of K tried pairs, P̂·V becoming
    (1-w)·P̂·V + w·P̃·V there. `novelty` (w [B,S,A], new [B,S]; `novelty_terms`): P̂·V becomes (1-w)·P̂·V + w·V̄_new,
    V̄_new the mean of V_{h+1} over the states `new`. `guess_temperature` τ > 0: a guessed pair's P̃·V becomes the
    soft maximum t·log Σ P̃·exp(V/t), t = τ·(H-h) (ModelConfig.planner_guess_temperature). `value_spread`
    (c, N [B,S,A]): Q_h gains c·sqrt(Var_P̂(V_{h+1}) / N) at tried pairs (ModelConfig.planner_variance)."""
    B = reward.shape[0]
    tried_pv = None if tried is None else rows_times(tried[0][0], tried[1], B)
    guess_pv = None if guess is None else rows_times(guess[0][0], guess[1], B)

    def adjust(h, q, v_next):
        needs_pv = novelty is not None or tried is not None or value_spread is not None
        pv = q - reward if needs_pv else None  # P̂·V_{h+1}
        if value_spread is not None:
            c, n = value_spread
            spread = variance(P_hat, v_next, pv)  # zero rows (untried pairs) give 0
            spread = torch.where(spread > SPREAD_ROUND_OFF, spread, 0.0)  # the root would magnify round-off
            q = q + c * (spread / n.clamp_min(1.0)).sqrt()
        if novelty is not None:
            w, new = novelty
            v_new = (v_next * new).sum(-1) / new.sum(-1).clamp_min(1)  # [B]
            q = q + w * (v_new.view(-1, 1, 1) - pv)
        if tried is not None:
            (b, s, a), _, w = tried
            q = q.index_put((b, s, a), w * (tried_pv(v_next) - pv[b, s, a]), accumulate=True)
        if guess is not None:
            pv_guess = guess_pv(v_next)
            if guess_temperature > 0:
                t = guess_temperature * (H - h)
                top = v_next.amax(-1, keepdim=True)  # [B,1]: exp((V - top)/t) <= 1 cannot overflow
                soft = top[guess[0][0], 0] + t * guess_pv(((v_next - top) / t).exp()).clamp_min(1e-300).log()
                pv_guess = torch.maximum(pv_guess, soft)  # >= P̃·V (Jensen): the max only absorbs round-off
            q = q.index_put(guess[0], pv_guess, accumulate=True)
        q = capped(q, float(H - h), per_step, cap)
        return q if floor is None else q.clamp_min(floor)

    return backward_induction(P_hat, reward, H, adjust)[0]


def rows_times(b: torch.Tensor, rows: torch.Tensor, B: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> [K] the products rows[k]·v[b[k]], for rows [K,S] of runs b (sorted, as nonzero() gives them) and v [B,S].
    The rows are laid out once as a zero-padded block [B, K_max, S], so that each planning stage is one batched
    matrix-vector product: gathering v per row and multiplying elementwise copied [K,S] twice per stage, about a
    fifth of a forward pass on Taxi."""
    counts = torch.bincount(b, minlength=B)
    width = int(counts.max()) if len(b) else 0
    slot = torch.arange(len(b), device=b.device) - (counts.cumsum(0) - counts)[b]
    block = rows.new_zeros(B, width, rows.shape[-1]).index_put((b, slot), rows)
    flat = b * width + slot
    return lambda v: torch.bmm(block, v.to(block.dtype).unsqueeze(-1)).view(-1)[flat]


def novelty_weight(n, n1, nu):
    """How much of a tried pair's next value goes to a never-visited state: ν times the Good-Turing estimate of the
    mass of successors not yet seen from the pair, n1/N (n1: successors seen exactly once), capped at 1. A pair that
    led to one place twice gets none; one that slipped once keeps some. Tensors or numpy arrays alike."""
    return (nu * n1 / n.clip(min=1.0)).clip(max=1.0)


def novelty_rate(counts: torch.Tensor) -> torch.Tensor:
    """ρ [B] (ModelConfig.planner_novelty_pooled) from the counts [B,S,A,S]: over the pairs of N >= 2 visits, the
    successors found after the first visit per visit after the first, Σ(k-1) / Σ(N-1); 0 where no pair has two."""
    n = counts.sum(-1)
    again = n >= 2
    found = torch.where(again, (counts > 0).sum(-1).to(n.dtype) - 1, 0.0).sum((1, 2))
    return found / torch.where(again, n - 1, 0.0).sum((1, 2)).clamp_min(1.0)


def reward_noise(stats: Stats) -> torch.Tensor:
    """σ̂ [B] (ModelConfig.planner_noise_h_term): the run's pooled within-pair standard deviation of the rewards, over
    the pairs of N >= 2 visits, sqrt(Σ(Σr² - (Σr)²/N) / Σ(N - 1)); 0 where no pair has two, and where the spread is
    round-off (rewards that repeat exactly leave v2's bonus exactly as it was)."""
    n = stats.counts.sum(-1)
    again = n >= 2
    spread = torch.where(again, stats.reward_sq_sum - stats.reward_sum**2 / n.clamp_min(1.0), 0.0).clamp_min(0.0)
    var = spread.sum((1, 2)) / torch.where(again, n - 1, 0.0).sum((1, 2)).clamp_min(1.0)
    return torch.where(var > 1e-12, var, 0.0).sqrt()


def novelty_terms(counts: torch.Tensor, nu: float, pooled: bool = False):
    """(w [B,S,A], new [B,S]) for plan_terms from the counts [B,S,A,S]: new = the states where no action was tried;
    w = novelty_weight on tried pairs of runs that still have such a state, 0 elsewhere; with `pooled`, the
    run's novelty_rate ρ stands for each pair's n1."""
    n = counts.sum(-1)
    new = n.sum(-1) == 0
    live = (n > 0) & new.any(-1).view(-1, 1, 1)
    n1 = novelty_rate(counts).view(-1, 1, 1) if pooled else (counts == 1).sum(-1).to(n.dtype)
    return torch.where(live, novelty_weight(n, n1, nu), 0.0), new.to(n.dtype)


def known_only(log_rows: torch.Tensor, pairs: tuple, n: torch.Tensor) -> torch.Tensor:
    """log P̃ [K,S] of `pairs` (b, s, a), with the rows of tried pairs (n [B,S,A] > 0) restricted to the states of
    their run where some action was tried and renormalized (ModelConfig.planner_tried_known_only); a tried pair's own
    state is such a state, so no row is left empty."""
    b, s, a = pairs
    known = (n.sum(-1) > 0)[b]  # [K,S]
    masked = log_rows.masked_fill(~known, -math.inf)
    masked = masked - masked.logsumexp(-1, keepdim=True)
    return torch.where((n[b, s, a] > 0)[:, None], masked, log_rows)


def guessed_pairs(n: torch.Tensor) -> torch.Tensor:
    """[B,S,A] the pairs whose successors the transition head guesses: untried, at a state where some action was
    tried (visits n [B,S,A])."""
    return (n == 0) & (n.sum(-1, keepdim=True) > 0)


def plan(P_hat, r_hat, n, H: int, cfg: ModelConfig, corrections: torch.Tensor | None = None,
         pessimistic: bool = False, successors: Callable[[tuple], torch.Tensor] | None = None, counts=None,
         guess_reward: torch.Tensor | None = None, h_term_multiplier: torch.Tensor | None = None):
    """Backward induction on the empirical model with UCB-VI's bonus, corrected: Q_h = min(H-h, r̂ + δ +
    e^α·b_h + P̂·V_{h+1}) on visited pairs, unvisited_fraction(u)·(H-h) on unvisited ones.
    `corrections` [B,S,A,3] = (α, δ, u); None = uncorrected UCB-VI. Differentiable in `corrections`.
    `pessimistic`: the lower-confidence twin for offline use, Q_h = clip(r̂ - e^α·b_h + P̂·V_{h+1}, 0, H-h) on
    visited pairs and 0 on unvisited ones; no reward correction δ, which the quantile loss makes optimistic
    (README, "The pretrained model").
    `successors`: pairs (b, s, a) -> [K,S] their predicted log P̃(s'|s, a) (the transition head's,
    `TransitionHead`; a dense table T [B,S,A,S] is `lambda pairs: T[pairs]`); an unvisited pair of a state where
    some action was tried is then worth min(H-h, 1 + P̃·V_{h+1}). Only those pairs are asked for.
    With cfg.planner_tried_strength κ > 0 they are asked for the tried pairs of fewer than cfg.tried_below visits
    too, planned with (N·P̂ + κ·P̃)/(N + κ). Offline, cfg.offline_tried_strength κ > 0 plans every tried pair so.
    Online, with cfg.planner_novelty ν > 0, a tried pair's P̂·V_{h+1} is (1-w)·P̂·V + w·V̄_new (`novelty_terms`, from
    `counts` [B,S,A,S]). `guess_reward` [B,S,A]: a guessed pair's one step of reward in place of 1 (the reward
    head's, ModelConfig.planner_reward_quantile)."""
    guessed = guess = tried = None
    if successors is not None and not pessimistic:
        guessed = guessed_pairs(n)
        if cfg.planner_guess_until > 0:  # a state visited N1 times has its untried actions at H - h again
            guessed = guessed & (n.sum(-1, keepdim=True) < cfg.planner_guess_until)
        if cfg.planner_tried_strength > 0:  # (the config ensures tried_below > 0) one request for both kinds of pair
            few = (n > 0) & (n < cfg.tried_below)
            where = (guessed | few).nonzero(as_tuple=True)
            rows = successors(where).to(DTYPE).exp()
            is_guess = guessed[where]
            guess = (tuple(x[is_guess] for x in where), rows[is_guess])
            kappa, t = cfg.planner_tried_strength, ~is_guess
            tried = (tuple(x[t] for x in where), rows[t], kappa / (n[where][t] + kappa))
        else:
            where = guessed.nonzero(as_tuple=True)
            guess = (where, successors(where).to(DTYPE).exp())
    elif successors is not None and cfg.offline_tried_strength > 0:  # offline: the head's rows as a prior at tried pairs
        where = (n > 0).nonzero(as_tuple=True)
        kappa = cfg.offline_tried_strength
        tried = (where, successors(where).to(DTYPE).exp(), kappa / (n[where] + kappa))
    reward, per_step = planner_terms(r_hat, n, cfg, corrections, pessimistic, guessed,
                                     None if guessed is None else guess_reward,
                                     None if pessimistic else h_term_multiplier)
    novelty = None
    if cfg.planner_novelty > 0 and not pessimistic:
        if counts is None:
            raise ValueError("planner_novelty needs the counts (plan's `counts`)")
        novelty = novelty_terms(counts, cfg.planner_novelty, cfg.planner_novelty_pooled)
    spread = (cfg.planner_variance, n) if cfg.planner_variance > 0 and not pessimistic else None
    return plan_terms(P_hat, reward, per_step, H, 0.0 if pessimistic else None, guess=guess, tried=tried,
                      novelty=novelty, guess_temperature=cfg.planner_guess_temperature, value_spread=spread)


def features(ctx: Context, P_hat, r_hat, n, cfg: ModelConfig):
    """[B,S,A,N_FEATURES] exact features of the statistic at each context's step, and the CE Q̂ [B,H,S,A]."""
    B, S, A = n.shape
    H = ctx.horizon
    rows = torch.arange(B, device=n.device)
    # UCB-VI's own bonus, whatever the planner's
    cfg = replace(cfg, planner_h_term_scale=1.0, planner_state_log=False, planner_state_log_from=1.0)
    # Certainty equivalence is the same planner with reward r̂, no bonus and no cap (r̂ may exceed 1 under reward
    # noise): it and uncorrected UCB-VI in one pass over the batch doubled.
    reward, per_step = planner_terms(r_hat, n, cfg)
    cap = torch.cat([torch.full((B, 1, 1), math.inf, dtype=DTYPE, device=n.device),
                     torch.ones(B, 1, 1, dtype=DTYPE, device=n.device)])
    q = plan_terms(repeat(P_hat, 2), torch.cat([r_hat, reward]), torch.cat([torch.zeros_like(per_step), per_step]), H,
                   cap=cap)
    q_ce, q_ucb = q[:B], q[B:]
    rem = (H - ctx.step).to(DTYPE).view(B, 1, 1)
    ce, ucb = q_ce[rows, ctx.step] / rem, q_ucb[rows, ctx.step] / rem
    visited = (n > 0).to(DTYPE)
    mean_sq = ctx.stats.reward_sq_sum / n.clamp_min(1.0)
    r_std = (mean_sq - r_hat**2).clamp_min(0).sqrt()
    self_loop = ctx.stats.counts.diagonal(dim1=1, dim2=3).transpose(1, 2) / n.clamp_min(1.0)  # P̂(s|s,a)
    is_current = (torch.arange(S, device=n.device).view(1, S) == ctx.state.view(B, 1)).to(DTYPE)  # state -1: all zero
    n_state = n.sum(-1)
    per_sa = [
        torch.log1p(n) / 5, visited / n.clamp_min(1.0).sqrt(), visited, r_hat, r_std, ce, ucb,
        ce - ce.amax(-1, keepdim=True), ucb - ucb.amax(-1, keepdim=True), self_loop,
        (ucb_bonus(n, rem, cfg) / rem).clamp(max=1.0),
    ]
    per_s = [is_current, torch.log1p(n_state) / 5, ce.amax(-1)]
    total = n.sum((1, 2))
    glob = [ctx.step.to(DTYPE) / H, torch.full((B,), math.log(H) / math.log(100), dtype=DTYPE, device=n.device),
            torch.log1p(ctx.episodes.to(DTYPE)) / math.log(500), torch.log1p(total) / 10, rem.view(B) / H]
    x = torch.cat([torch.stack(per_sa, -1), torch.stack(per_s, -1)[:, :, None].expand(B, S, A, -1),
                   torch.stack(glob, -1)[:, None, None].expand(B, S, A, -1)], -1)
    return x.float(), q_ce


class Block(nn.Module):
    """Attention across actions, attention across states, (optionally) attention across states within one action, a
    P̂-weighted message from successors, an MLP."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.ln_a, self.ln_s, self.ln_p, self.ln_m = (nn.LayerNorm(d) for _ in range(4))
        self.attn_actions = nn.MultiheadAttention(d, cfg.n_heads, batch_first=True)
        self.attn_states = nn.MultiheadAttention(d, cfg.n_heads, batch_first=True)
        if cfg.action_attention:
            self.ln_sa = nn.LayerNorm(d)
            self.attn_same_action = nn.MultiheadAttention(d, cfg.n_heads, batch_first=True)
        self.successor = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(), nn.Linear(cfg.mlp_ratio * d, d))

    def forward(self, x: torch.Tensor, P_hat) -> torch.Tensor:
        """`P_hat`: the empirical model in x's dtype, dense [B,S,A,S] or sparse (planning.SparseP)."""
        B, S, A, d = x.shape
        y = self.ln_a(x).reshape(B * S, A, d)
        x = x + self.attn_actions(y, y, y, need_weights=False)[0].view(B, S, A, d)
        u = self.ln_s(x).mean(2)  # [B,S,d]: a state's summary, symmetric in its actions
        x = x + self.attn_states(u, u, u, need_weights=False)[0][:, :, None]
        if hasattr(self, "attn_same_action"):  # the tokens (·, a) of one action, across states
            y = self.ln_sa(x).transpose(1, 2).reshape(B * A, S, d)
            y = self.attn_same_action(y, y, y, need_weights=False)[0]
            x = x + y.view(B, A, S, d).transpose(1, 2)
        u = self.successor(self.ln_p(x).mean(2))
        x = x + expect(P_hat, u)
        return x + self.mlp(self.ln_m(x))


N_EDGES = 5


def edge_terms(counts: torch.Tensor, weights: torch.Tensor, pairs: tuple | None = None) -> torch.Tensor:
    """Σ_j w_j·e_j(s, a, s'): the graph terms of the transition head's logits (ModelConfig.transition_edges), from
    the counts [B,S,A,S] and per-pair weights `weights` ([B,S,A,N_EDGES], or [K,N_EDGES] for `pairs`). The terms
    e_j: log(1 + N(s,a,s')), log(1 + Σ_a' N(s,a',s')), log(1 + Σ_a' N(s',a',s)), [s' = s], [no action tried at s'].
    Dense [B,S,A,S] without `pairs`, else [K,S] for the pairs ((b, s, a) index tensors), in their order."""
    counts = counts.to(weights.dtype)
    graph = torch.log1p(counts.sum(2))  # [B,S,S]: state to state, by any action
    fresh = (counts.sum((2, 3)) == 0).to(weights.dtype)  # [B,S]
    S = counts.shape[1]
    if pairs is None:
        w = weights.unbind(-1)  # each [B,S,A]
        eye = torch.eye(S, dtype=weights.dtype, device=weights.device)
        return (w[0][..., None] * torch.log1p(counts) + w[1][..., None] * graph[:, :, None]
                + w[2][..., None] * graph.transpose(1, 2)[:, :, None] + w[3][..., None] * eye[None, :, None]
                + w[4][..., None] * fresh[:, None, None])
    b, s, a = pairs
    terms = torch.stack([torch.log1p(counts[b, s, a]), graph[b, s], graph[b, :, s],
                         nn.functional.one_hot(s, S).to(weights.dtype), fresh[b]], -1)  # [K,S,N_EDGES]
    return (terms * weights[:, None]).sum(-1)


class TransitionHead(nn.Module):
    """log P̃(s'|s, a) = log-softmax over s' of ⟨query(x_sa), key(mean_a x_s'a)⟩ / sqrt(d) (+ the graph's terms,
    `edges`): any S, and relabelling states or actions permutes it the same way."""

    def __init__(self, d: int, edges: bool = False):
        super().__init__()
        self.query, self.key = nn.Linear(d, d), nn.Linear(d, d)
        if edges:  # zero at the start: the head begins as the one without them
            self.edge = nn.Linear(d, N_EDGES)
            nn.init.zeros_(self.edge.weight)
            nn.init.zeros_(self.edge.bias)

    def forward(self, h: torch.Tensor, pairs: tuple | None = None, counts: torch.Tensor | None = None) -> torch.Tensor:
        """[B,S,A,S] from the trunk's output h [B,S,A,d]; with `pairs` ((b, s, a) index tensors), only those pairs'
        rows [K,S], in their order. Acting needs only the pairs it guesses; on Taxi the dense float64 table was a
        fifth of a forward pass. `counts` [B,S,A,S]: the statistic, which the graph's terms read (needed with
        them)."""
        keys = self.key(h.mean(2))  # [B,S,d]
        if pairs is None:
            scores = torch.einsum("bsad,btd->bsat", self.query(h), keys)
        else:
            order = pairs[0].argsort(stable=True)  # grouped by run (`nonzero` gives them so already)
            per_run = torch.bincount(pairs[0], minlength=h.shape[0]).tolist()
            queries = self.query(h[tuple(x[order] for x in pairs)]).split(per_run)
            grouped = torch.cat([q @ keys[i].T for i, q in enumerate(queries)])
            scores = torch.empty_like(grouped).index_copy_(0, order, grouped)
        scores = scores.to(DTYPE) / h.shape[-1] ** 0.5
        if hasattr(self, "edge"):
            if counts is None:
                raise ValueError("this transition head reads the statistic's graph: pass counts")
            weights = self.edge(h if pairs is None else h[pairs])
            scores = scores + edge_terms(counts, weights, pairs).to(DTYPE)
        return torch.log_softmax(scores, -1)


N_REWARD_STATS = 5


def reward_stats(r_hat: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """[B,S,A,N_REWARD_STATS] what the reward head reads of the rewards seen (ModelConfig.reward_head_stats), the same
    at every action of a state: the best and the mean of the mean rewards r̂ of the state's tried actions, whether any
    was tried, and the best and the mean of r̂ over all the run's tried pairs (0 where nothing was tried)."""
    tried = (n > 0).to(r_hat.dtype)
    low = torch.where(n > 0, r_hat, torch.full_like(r_hat, -math.inf))
    k_state = tried.sum(-1)  # [B,S]
    best_state = low.amax(-1).clamp_min(0.0)  # -inf where nothing was tried: 0
    mean_state = (r_hat * tried).sum(-1) / k_state.clamp_min(1.0)
    k_run = tried.sum((1, 2))  # [B]
    best_run = low.flatten(1).amax(-1).clamp_min(0.0)
    mean_run = (r_hat * tried).sum((1, 2)) / k_run.clamp_min(1.0)
    B, S, A = n.shape
    per_state = torch.stack([best_state, mean_state, (k_state > 0).to(r_hat.dtype)], -1)  # [B,S,3]
    per_run = torch.stack([best_run, mean_run], -1)  # [B,2]
    return torch.cat([per_state[:, :, None].expand(B, S, A, 3), per_run[:, None, None].expand(B, S, A, 2)], -1)


class RLPFN(nn.Module):
    architecture = "rlpfn"  # what a checkpoint records (the other kind: rlpfn.ad.model.ADModel, "ad")

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Sequential(nn.Linear(N_FEATURES, d), nn.GELU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, 5 if cfg.offline_head else 4)  # α, δ, u, Q correction[, β]
        nn.init.zeros_(self.head.weight)  # start exactly at UCB-VI (policy) and certainty equivalence (Q)
        nn.init.zeros_(self.head.bias)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(cfg.init_temperature)))
        self.transition = TransitionHead(d, cfg.transition_edges) if cfg.transition_head else None
        # Starts at the bound, 1: the model plans as without it until trained (loss.reward_weight).
        self.reward = nn.Linear(d + (N_REWARD_STATS if cfg.reward_head_stats else 0), len(REWARD_QUANTILES)) \
            if cfg.reward_head else None
        if self.reward is not None:
            nn.init.zeros_(self.reward.weight)
            nn.init.ones_(self.reward.bias)

    def forward(self, ctx: Context, pessimistic: bool = False, head_delta: torch.Tensor | None = None,
                transitions: bool = True) -> Output:
        """`pessimistic`: q_plan (and the logits) from the planner's lower-confidence twin (offline acting).
        `transitions`: also return the transition head's dense log P̃ [B,S,A,S] (its training loss reads it); acting
        passes False, and only the rows of the pairs the planner guesses are computed.
        `head_delta` [B,rows,d+1]: a change of the head's weights and bias (last column) per context, as if B models
        differing only there (evolution strategies perturb the head so: rlpfn/es.py, rlpfn/offline_es.py)."""
        B, S, A, _ = ctx.stats.counts.shape
        H = ctx.horizon
        if not (ctx.step.min() >= 0 and ctx.step.max() < H):
            raise ValueError(f"steps must lie in [0, H={H}), got {ctx.step.min().item()}..{ctx.step.max().item()}")
        P_hat, r_hat, n = ctx.stats.empirical()  # float64; dense, or sparse CSR for large S
        x, q_ce = features(ctx, P_hat, r_hat, n, self.cfg)
        P_msg = with_dtype(P_hat, x.dtype)
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, P_msg)
        h = self.ln_out(h)
        out = self.head(h)
        if head_delta is not None:
            d = h.shape[-1]
            delta = head_delta.to(h)
            out = out + torch.einsum("bsad,bkd->bsak", h, delta[..., :d]) + delta[:, None, None, :, d]
        corrections = out[..., :3]
        if not self.cfg.reward_correction:
            corrections = corrections * torch.tensor([1.0, 0.0, 1.0], device=out.device)
        if pessimistic and self.cfg.offline_head:  # the offline penalty's own log-multiplier β in α's place
            corrections = torch.cat([out[..., 4:5], corrections[..., 1:]], -1)
        if pessimistic and self.cfg.offline_narrow_below > 0:  # α is the penalty's log-multiplier
            narrow = behaviour_entropy(n) < self.cfg.offline_narrow_below
            shift = narrow.to(corrections.dtype) * math.log(self.cfg.offline_narrow_multiplier)
            corrections = torch.cat([corrections[..., :1] + shift.view(B, 1, 1, 1), corrections[..., 1:]], -1)
        log_p_next = None
        asked = {}  # the rows acting asked the transition head for (its backups reuse them)
        if self.transition is None:
            successors = None
        else:
            if transitions:  # the dense table, for the training loss
                log_p_next = self.transition(h, counts=ctx.stats.counts)

            def successors(pairs):  # the planner's rows are trained by the head's own loss only
                rows = (self.transition(h.detach(), pairs, ctx.stats.counts) if log_p_next is None
                        else log_p_next[pairs]).detach()
                if self.cfg.planner_tried_known_only and not pessimistic:  # an online rule (offline: worth 0)
                    rows = known_only(rows, pairs, n)
                if log_p_next is None:
                    asked["rows"] = (pairs, rows)
                return rows
        reward_quantiles = guess_reward = None
        if self.reward is not None:  # trained by its own loss only, like the transition head
            reward_quantiles = self.reward(torch.cat([h, reward_stats(r_hat, n).to(h.dtype)], -1)
                                           if self.cfg.reward_head_stats else h)
            if self.cfg.planner_reward_quantile != 1.0:
                level = REWARD_QUANTILES.index(self.cfg.planner_reward_quantile)
                guess_reward = reward_quantiles[..., level].detach().to(DTYPE).clamp(0.0, 1.0)
        noise = None if pessimistic or self.cfg.planner_noise_h_term == 0 else \
            1.0 + self.cfg.planner_noise_h_term * reward_noise(ctx.stats)
        q_plan = plan(P_hat, r_hat, n, H, self.cfg, corrections, pessimistic, successors, ctx.stats.counts,
                      guess_reward, noise)  # [B,H,S,A] float64
        remaining = torch.arange(H, 0, -1, dtype=DTYPE, device=n.device).view(1, H, 1, 1)
        q_est = q_ce + remaining * out[..., 3].to(DTYPE).unsqueeze(1)
        rows = torch.arange(B, device=n.device)
        rem = (H - ctx.step).to(DTYPE).view(B, 1, 1)
        temperature = self.log_temperature.exp()
        logits = (q_plan[rows, ctx.step] / rem).float() / temperature
        return Output(logits=logits, q=q_est[rows, ctx.step].float(), q_plan=q_plan, q_est=q_est,
                      corrections=corrections, temperature=temperature, summary=h.mean((1, 2)),
                      log_p_next=log_p_next, successor_rows=asked.get("rows"), reward_quantiles=reward_quantiles)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = ["REWARD_QUANTILES", "reward_stats", "ModelConfig", "Context", "Output", "RLPFN", "TransitionHead", "guessed_pairs", "novelty_rate", "novelty_terms", "reward_noise", "plan", "planner_terms", "plan_terms", "capped", "bonus_terms", "features", "ucb_bonus"]
