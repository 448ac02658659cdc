"""Cost per decision against history length: the model reads a fixed-size statistic, so its latency should
not grow with the number of past transitions; UCB-VI's per-episode planning cost is shown beside it."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..agents import AgentSpec, make_agent
from ..limits import check_memory
from ..stats import Stats


def history_stats(mdp, n_transitions: int, seed: int = 0) -> Stats:
    """The statistic (one run) of `n_transitions` uniformly random transitions in `mdp`, simulated as one
    episode in each of ceil(n / H) parallel runs by the one rollout loop, so that 10^5 transitions take a
    second, not a minute."""
    from ..traces import run_trace

    H = mdp.horizon
    check_memory(8.0 * 6 * n_transitions, f"a history of {n_transitions} transitions", "--sizes")
    trace = run_trace(mdp, make_agent("random"), 1, seed, n_runs=-(-n_transitions // H))
    first = lambda x: x.reshape(1, -1)[:, :n_transitions]  # noqa: E731
    return Stats.from_transitions(mdp.n_states, mdp.n_actions, first(trace.s), first(trace.a), first(trace.r),
                                  first(trace.s_next))


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def measure(mdp, sizes=(100, 10_000, 100_000), repeats: int = 10, checkpoint: str | None = None) -> list[dict]:
    """Per history size: the rlpfn agent's time per decision (one forward pass; refresh='step'), its time per
    episode with refresh='episode' (one pass per H decisions), and UCB-VI's planning time per episode."""
    spec = AgentSpec.of(mdp)
    rows = []
    for n in sizes:
        stats = history_stats(mdp, n)
        agent = make_agent("rlpfn", refresh="step", **({"checkpoint": checkpoint} if checkpoint else {}))
        agent.reset(spec, 1, seed=0)
        agent.stats = stats
        agent.episodes = n // mdp.horizon
        state = torch.zeros(1, dtype=torch.long)
        t_model = _median_time(lambda: agent.act(state, 1), repeats)
        ucb = make_agent("ucbvi")
        ucb.reset(spec, 1, seed=0)
        ucb.stats = stats
        ucb.episodes = max(1, n // mdp.horizon)
        t_ucb = _median_time(ucb.plan, repeats)
        rows.append({"transitions": int(stats.visits.sum()), "rlpfn_decision_s": t_model,
                     "rlpfn_per_step_refresh_episode_s": t_model / mdp.horizon, "ucbvi_plan_per_episode_s": t_ucb})
    return rows


def episode_times(mdp, episodes: int, repeats: int = 3, checkpoint: str | None = None) -> dict[str, float]:
    """Wall time per episode of the rlpfn agent (its default refresh rule) and of UCB-VI, each acting from scratch
    for `episodes` episodes in one run: what a user waits for, refreshes and planning included. The two agents
    take turns `repeats` times and the median is reported, so that a noisy machine slows both alike."""
    from .evaluate import run_online

    agents = {"rlpfn": {"checkpoint": checkpoint} if checkpoint else {}, "ucbvi": {}}
    for name, hp in agents.items():
        run_online(mdp, make_agent(name, **hp), 1, 1, seed=0)  # warm-up: model load, first-call overheads
    times = {name: [] for name in agents}
    for _ in range(repeats):
        for name, hp in agents.items():
            start = time.perf_counter()
            run_online(mdp, make_agent(name, **hp), episodes, 1, seed=0)
            times[name].append((time.perf_counter() - start) / episodes)
    return {name: float(np.median(t)) for name, t in times.items()}
