"""The evaluation harness: online learning curves and offline scores, all seeds at once."""
from __future__ import annotations

from ..errors import UserError

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from ..agents import Agent, AgentSpec, make_agent
from ..mdp import TabularMDP
from ..planning import policy_value
from ..traces import offline_datasets, run_trace


@dataclass
class OnlineResult:
    returns: np.ndarray  # [seeds, episodes] realised returns, MDP units
    regret: np.ndarray  # [seeds, episodes] per-episode regret estimate Σ_h V*_h(s_h) - Q*_h(s_h, a_h)


def run_online(mdp: TabularMDP, agent: Agent, episodes: int, n_seeds: int, seed: int = 0,
               progress: Callable[[int], None] | None = None) -> OnlineResult:
    """Run `n_seeds` independent copies of `agent` for `episodes` episodes, batched (traces.run_trace).

    Per-episode regret is the gap along the visited path, Σ_h [V*_h(s_h) - Q*_h(s_h, a_h)]:
    by the performance-difference lemma its expectation is V*(s_1) - V^{π_k}(s_1), the same as
    the realised-return regret V*(μ0) - G_k, but without the reward and transition noise
    (docs/reference.md, Metrics): an oracle's regret is exactly 0 instead of 0 ± hundreds.
    Seeds are the runs of one batch; the environment and the agent get generators derived
    from `seed`, so the same seed reproduces the same curves.
    """
    if episodes < 1 or n_seeds < 1:
        raise UserError(f"episodes and seeds must be >= 1, got {episodes} and {n_seeds}")
    trace = run_trace(mdp, agent, episodes, seed, n_runs=n_seeds, progress=progress)
    return OnlineResult(trace.per_episode(trace.reward).numpy(), trace.per_episode(path_gap(mdp, trace)).numpy())


def path_gap(mdp: TabularMDP, trace, run: torch.Tensor | None = None) -> torch.Tensor:
    """Per-step regret along a trace of `mdp`, V*_h(s_h) - Q*_h(s_h, a_h) in the MDP's units: [N,T]. `run` [N]:
    the MDP of `mdp` that each run acted in (default `mdp.run_index`)."""
    device = trace.s.device  # a trace stays where its runs acted (run_trace)
    run = (mdp.run_index(trace.s.shape[0]) if run is None else run).view(-1, 1).to(device)
    step = torch.arange(trace.length, device=device) % trace.horizon
    Q = mdp.solution.Q.to(device)  # [M,H,S,A]; V*_h = max_a Q*_h exactly (planning.backward_induction)
    row = (run * trace.horizon + step) * trace.n_states + trace.s  # [N,T] flat (MDP, h, s), no [N,T,A] copy
    rows = Q.view(-1, trace.n_actions)
    return rows.amax(-1).take(row) - rows.view(-1).take(row * trace.n_actions + trace.a)


@dataclass
class OfflineResult:
    scores: np.ndarray  # [n_seeds] normalized scores
    values: np.ndarray  # [n_seeds] V^π(μ0) in the MDP's units


def run_offline(mdp: TabularMDP, agent, epsilon: float, dataset_episodes: int, n_seeds: int,
                seed: int = 0) -> OfflineResult:
    if not 0 <= epsilon <= 1:
        raise UserError(f"behavior epsilon must be in [0, 1], got {epsilon}")
    if dataset_episodes < 1 or n_seeds < 1:
        raise UserError(f"dataset episodes and seeds must be >= 1, got {dataset_episodes} and {n_seeds}")
    sol = mdp.solution
    # the behaviour (1-ε)·π* + ε·uniform (ties in π* broken uniformly), through the one rollout loop
    stats = offline_datasets(mdp, make_agent("optimal", epsilon=epsilon), dataset_episodes, seed, n_runs=n_seeds)
    pi = agent.fit(AgentSpec.of(mdp), stats, seed)
    values = policy_value(mdp, pi).numpy()
    return OfflineResult(normalized_score(values, sol.v_star.item(), sol.v_random.item()), values)


def normalized_score(value, v_star: float, v_random: float):
    """(V - V_random) / (V* - V_random); 1 = optimal, 0 = uniform random."""
    gap = v_star - v_random
    return (np.asarray(value) - v_random) / gap if gap > 0 else np.zeros_like(np.asarray(value, dtype=float))


# ---- validation: regret on held-out prior MDPs -----------------------------------------------------------
def prior_regret(batch: TabularMDP, agent, episodes: int, seed: int) -> np.ndarray:
    """Cumulative regret of `agent` on each MDP of a prior batch (one run per MDP), normalized by
    episodes·(V* - V_random): the gap along the visited path (evaluate.run_online's estimator)."""
    trace = run_trace(batch, agent, episodes, seed, n_runs=len(batch))
    sol = batch.solution
    return path_gap(batch, trace).sum(1).numpy() / (episodes * (sol.v_star - sol.v_random))


@lru_cache(maxsize=8)
def validation_mdps(spec: str, n_batches: int, seed: int):
    """Held-out MDP batches (8 MDPs each), the same for a given (spec, n_batches, seed); cached per process."""
    from ..prior import load_spec, sample_sized_batch

    spec = load_spec(spec)
    rng = np.random.default_rng(seed)
    return [sample_sized_batch(spec, 8, rng) for _ in range(n_batches)]
