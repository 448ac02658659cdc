"""Cost per decision against history length: the rlpfn model reads a fixed-size statistic, so its latency should
not grow with the number of past transitions; the AD model reads raw transitions, as many as its window holds;
UCB-VI's per-episode planning cost is shown beside them."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..agents import AgentSpec, make_agent
from ..limits import check_memory
from ..stats import Stats


def random_history(mdp, n_transitions: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(s, a, r, s') [n] of `n_transitions` uniformly random transitions in `mdp` (rewards rescaled), simulated
    as one episode in each of ceil(n / H) parallel runs by the one rollout loop, so that 10^5 transitions take a
    second, not a minute; read in order, they are a history of whole episodes."""
    from ..traces import run_trace

    H = mdp.horizon
    check_memory(8.0 * 6 * n_transitions, f"a history of {n_transitions} transitions", "--sizes")
    trace = run_trace(mdp, make_agent("random"), 1, seed, n_runs=-(-n_transitions // H))
    return tuple(x.reshape(-1)[:n_transitions] for x in (trace.s, trace.a, trace.r, trace.s_next))


def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ layer prints a start and a stop line there)."""
    import contextlib
    import os

    @contextlib.contextmanager
    def quiet():
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)

    return quiet()


def peak_bytes(fn) -> int:
    """Peak memory that torch allocates during fn() above what was allocated before it: every allocation and free
    the profiler records (profile_memory; its chrome trace lists each one), summed in time order, their running
    maximum. Per allocation, not per operator: an operator that frees its children's temporaries would otherwise
    hide them (the attention matrices inside a transformer layer)."""
    import json
    import tempfile
    from itertools import accumulate
    from pathlib import Path

    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    return max(0, max(accumulate(e["args"]["Bytes"] for e in memory), default=0))


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _with_history(agent, mdp, hist, seed: int = 0):
    """`agent` reset for one run, as if it had acted through `hist` (its state set directly, not replayed)."""
    s, a, r, s2 = hist
    agent.reset(AgentSpec.of(mdp), 1, seed=seed)
    n, H = len(s), mdp.horizon
    if agent.name == "ad":  # the latest `window` decisions as tokens; the newest one is added by act()
        agent.load_history(s, a, r)
    else:
        agent.stats = Stats.from_transitions(mdp.n_states, mdp.n_actions, s[None], a[None], r[None], s2[None])
        agent.episodes = max(1, n // H)
    return agent


def measure(mdp, sizes=(100, 1000, 10_000, 100_000), repeats: int = 10, checkpoint: str | None = None,
            ad_checkpoint: str | None = None) -> list[dict]:
    """Per history size n: time and peak memory of one decision of the rlpfn model (a forward pass; refresh='step')
    and of the AD model (a pass over its window: the last min(n, window) decisions), and UCB-VI's planning per
    episode."""
    rows = []
    state = torch.zeros(1, dtype=torch.long)
    for n in sizes:
        hist = random_history(mdp, n)
        row = {"transitions": n}
        for name, ckpt in (("rlpfn", checkpoint), ("ad", ad_checkpoint)):
            hp = {"refresh": "step"} if name == "rlpfn" else {}
            agent = _with_history(make_agent(name, **hp, **({"checkpoint": ckpt} if ckpt else {})), mdp, hist)
            if name == "ad":
                row["ad_tokens"] = min(agent.filled + 1, agent.buf.shape[2])
                row["ad_window"] = agent.buf.shape[2]

            def decide(agent=agent):
                if name == "ad":  # act() appends a token: restore the window, so every repeat reads the same
                    buf, filled, decisions = agent.buf.clone(), agent.filled, agent.decisions
                    agent.act(state, n % mdp.horizon)
                    agent.buf, agent.filled, agent.decisions = buf, filled, decisions
                else:
                    agent.act(state, 1)

            row[f"{name}_decision_s"] = _median_time(decide, repeats)
            row[f"{name}_peak_bytes"] = peak_bytes(decide)
        ucb = _with_history(make_agent("ucbvi"), mdp, hist)
        row["ucbvi_plan_per_episode_s"] = _median_time(ucb.plan, repeats)
        row["ucbvi_peak_bytes"] = peak_bytes(ucb.plan)
        rows.append(row)
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
