"""Zero-shot solving for users: `rlpfn.solve(mdp_or_env, episodes=...)` online, `solve_offline(...)` from a log.

Online, anything goes in:
- a TabularMDP, an `.npz` path, a benchmark name or a gymnasium id / env whose tables are exposed
  (FrozenLake, Taxi, ...): run through the evaluation harness, so regret against the exact V* is reported;
- a gymnasium environment with only `reset` / `step` (Discrete spaces, no tables): the agent interacts with
  it directly, one episode of H steps at a time; returns are reported (no V* is known). An episode that
  terminates early continues in one added absorbing state (reward 0), as `from_gymnasium` converts tabled
  environments, so every episode lasts H steps for the agent.

Offline: a transition log (arrays obs, action, reward, next_obs, optional terminated, plus n_states,
n_actions, horizon) -> the statistic -> a policy table [H, S, A].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .agents import AgentError, AgentSpec, make_agent
from .mdp import MDPError, TabularMDP
from .stats import Stats
from .limits import check_memory, memory_limit
from .terminal import add_absorbing, bounds_with_terminal


@dataclass
class SolveResult:
    returns: np.ndarray  # [runs, episodes] in the environment's reward units
    regret: np.ndarray | None  # [runs, episodes] (None when the environment's tables are unknown)
    v_star: float | None
    agent: str
    hparams: dict = field(default_factory=dict)

    def summary(self) -> str:
        last = self.returns[:, -10:].mean()
        text = f"{self.agent}: {self.returns.shape[1]} episodes x {self.returns.shape[0]} runs; mean return over the last 10: {last:.4g}"
        if self.regret is not None:
            text += f"; cumulative regret {self.regret.sum(1).mean():.4g} (V* = {self.v_star:.4g})"
        return text


def _tabular(mdp_or_env, horizon, env_kwargs: dict | None):
    """A TabularMDP if `mdp_or_env` has (or is) tables, else None (a reset/step-only environment)."""
    if isinstance(mdp_or_env, TabularMDP):
        return mdp_or_env if horizon is None else mdp_or_env.with_horizon(horizon)
    if isinstance(mdp_or_env, (str, Path)):
        from .resolve import load_mdp

        return load_mdp(str(mdp_or_env), horizon, env_kwargs)
    if env_kwargs:
        raise MDPError("env_kwargs apply to a gymnasium id; this environment is already made")
    if isinstance(getattr(getattr(mdp_or_env, "unwrapped", mdp_or_env), "P", None), dict):
        from .gym_import import from_gymnasium

        return from_gymnasium(mdp_or_env, horizon=horizon)
    return None


def solve(mdp_or_env, episodes: int = 100, agent: str = "rlpfn", runs: int = 1, seed: int = 0,
          horizon: int | None = None, reward_bounds: tuple[float, float] | None = None, progress: bool = False,
          env_kwargs: dict | None = None, **hparams) -> SolveResult:
    """Act online in `mdp_or_env` for `episodes` episodes with `agent` (default: the shipped rlpfn model,
    zero-shot) and report returns (and regret, where the MDP's tables are known). `env_kwargs` are the options
    of a gymnasium id (`env_kwargs={"map_name": "8x8"}`); `hparams` are the agent's."""
    from tqdm import tqdm

    if episodes < 1 or runs < 1:
        raise AgentError(f"episodes and runs must be >= 1, got {episodes} and {runs}")
    a = make_agent(agent, **hparams)
    if not a.online:
        raise AgentError(f"agent {agent!r} is offline-only: use solve_offline")
    mdp = _tabular(mdp_or_env, horizon, env_kwargs)
    with tqdm(total=episodes, desc=f"{a.name}", unit="ep", disable=not progress) as bar:
        if mdp is not None:
            from .experiments.evaluate import run_online

            res = run_online(mdp, a, episodes, runs, seed, progress=bar.update)
            return SolveResult(res.returns, res.regret, mdp.solution.v_star.item(), a.name, a.hparams())
        returns = np.stack([_interact(mdp_or_env, a, episodes, seed + i, horizon, reward_bounds, bar)
                            for i in range(runs)])
    return SolveResult(returns, None, None, a.name, a.hparams())


def _interact(env, agent, episodes: int, seed: int, horizon, reward_bounds, bar) -> np.ndarray:
    """Run one agent in a reset/step-only gymnasium env; episodes of exactly H agent steps."""
    from gymnasium.spaces import Discrete

    name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
    for what, space in (("observation", getattr(env, "observation_space", None)),
                        ("action", getattr(env, "action_space", None))):
        if not isinstance(space, Discrete) or int(space.start) != 0:
            raise MDPError(f"{name}: {what} space {space} is not Discrete(n) starting at 0")
    H = horizon or getattr(getattr(env, "spec", None), "max_episode_steps", None)
    if not H:
        raise MDPError(f"{name}: its episodes need not end (no time limit, max_episode_steps): give a horizon "
                       "(horizon=H)")
    from .loop import Agent as LoopAgent

    S, A = int(env.observation_space.n), int(env.action_space.n)
    loop = LoopAgent(agent, S, A, int(H), reward_bounds if reward_bounds is not None else (0.0, 1.0), seed)
    returns = np.zeros(episodes)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed * 100003 + k)
        while True:  # one episode: until the env ends it or the horizon is reached
            action = loop.act(int(obs))
            next_obs, r, terminated, truncated, _ = env.step(action)
            loop.observe(int(obs), action, float(r), int(next_obs), bool(terminated), bool(truncated))
            returns[k] += float(r)
            if loop.episode_over:
                break
            obs = next_obs
        bar.update(1)
    return returns


# ---- offline: transition logs ------------------------------------------------------------------------------
REQUIRED = ("obs", "action", "reward", "next_obs", "n_states", "n_actions", "horizon")


@dataclass
class TransitionLog:
    stats: Stats  # one run, over `states` (+ an added absorbing state last if any transition terminated)
    spec: AgentSpec
    n_states: int  # the log's declared states (without the absorbing one)
    n_transitions: int
    # The declared states the statistic covers, in its order: all of them, or, when a dense statistic over
    # every declared state would not fit in memory, only those the log mentions (the others have no data,
    # and nothing leads to them, so they change no value; the policy acts uniformly there).
    states: np.ndarray = None

    def __post_init__(self):
        if self.states is None:
            self.states = np.arange(self.n_states)

    @property
    def visited(self) -> np.ndarray:
        """[n_states] bool: declared states where the log took an action."""
        out = np.zeros(self.n_states, dtype=bool)
        out[self.states] = self.stats.visits[0, :len(self.states)].sum(-1).numpy() > 0
        return out


def load_transitions(path: str | Path, reward_bounds: tuple[float, float] | None = None) -> TransitionLog:
    """Read and check a transition log `.npz`; every problem is an MDPError naming the file and the array."""
    path = Path(path)
    if not path.is_file():
        raise MDPError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled arrays), OSError
        raise MDPError(f"{path}: not a readable .npz file ({e.__class__.__name__}: {e})") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise MDPError(f"{path}: missing array(s) {', '.join(missing)} (needs {', '.join(REQUIRED)}, optional terminated)")
    sizes = {}
    for k in ("n_states", "n_actions", "horizon"):
        v = data[k]
        if v.shape != () or not np.issubdtype(v.dtype, np.integer) or int(v) < 1:
            got = f"an array of shape {list(v.shape)}" if v.shape != () else f"{v.item()!r} ({v.dtype})"
            raise MDPError(f"{path}: {k} must be a positive integer scalar, got {got}")
        sizes[k] = int(v)
    S, A, H = sizes["n_states"], sizes["n_actions"], sizes["horizon"]
    n = data["obs"].shape[0] if data["obs"].ndim == 1 else -1
    for k in ("obs", "action", "reward", "next_obs") + (("terminated",) if "terminated" in data else ()):
        if data[k].ndim != 1 or data[k].shape[0] != n:
            raise MDPError(f"{path}: {k} must be 1-D with one entry per transition ({n}), got shape {list(data[k].shape)}")
    if n == 0:
        raise MDPError(f"{path}: the log has no transitions")
    for k, hi in (("obs", S), ("next_obs", S), ("action", A)):
        x = data[k]
        if not np.issubdtype(x.dtype, np.integer):
            raise MDPError(f"{path}: {k} must be integers, got dtype {x.dtype}")
        bad = np.flatnonzero((x < 0) | (x >= hi))
        if bad.size:
            raise MDPError(f"{path}: {k}[{bad[0]}] = {x[bad[0]]} outside [0, {hi})")
    if data["reward"].dtype.kind not in "biuf":
        raise MDPError(f"{path}: reward must be numbers, got dtype {data['reward'].dtype}")
    r = data["reward"].astype(np.float64)
    if not np.isfinite(r).all():
        raise MDPError(f"{path}: reward[{np.flatnonzero(~np.isfinite(r))[0]}] is not finite")
    term = np.zeros(n, dtype=bool)
    if "terminated" in data:
        t = data["terminated"]
        if not (t.dtype == bool or (t.dtype.kind in "iu" and np.isin(t, (0, 1)).all())):
            raise MDPError(f"{path}: terminated must be booleans (or 0/1), got dtype {t.dtype}")
        term = t.astype(bool)
    if reward_bounds is not None:
        low, high = (float(b) for b in reward_bounds)
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise MDPError(f"reward bounds must be finite LOW < HIGH, got {low} {high}")
        bad = np.flatnonzero((r < low) | (r > high))
        if bad.size:
            raise MDPError(f"{path}: reward[{bad[0]}] = {r[bad[0]]:.6g} is outside the reward bounds [{low}, {high}] "
                           f"({bad.size} transitions are)")
    # given bounds are kept, widened to 0 only where the absorbing state needs it; the default is the log's range
    # with 0 included
    lo, hi = reward_bounds if reward_bounds is not None else bounds_with_terminal(r.min(), r.max())
    if term.any():
        lo, hi = bounds_with_terminal(lo, hi)
    if not np.isfinite(2.0 * max(abs(lo), abs(hi)) * H):
        raise MDPError(f"{path}: rewards up to {max(abs(lo), abs(hi)):.3g} over horizon {H} overflow float64")
    if hi <= lo:
        hi = lo + 1.0
    absorbing = bool(term.any())
    obs, nxt = data["obs"].astype(np.int64), data["next_obs"].astype(np.int64)
    states = np.arange(S)
    check_memory(8.0 * 3 * H * S * A, f"{path}: a policy table over H={H} steps, S={S} states and A={A} actions",
                 "the log's horizon or n_states")
    if 8.0 * 2 * (S + 1) ** 2 * A > memory_limit():  # too many declared states: keep the ones the log mentions
        states = np.unique(np.concatenate([obs, nxt[~term]]))
        index = np.full(S, -1, dtype=np.int64)
        index[states] = np.arange(len(states))
        obs, nxt = index[obs], np.where(term, 0, index[nxt])
        check_memory(8.0 * 2 * (len(states) + 1) ** 2 * A, f"{path}: the statistic of the {len(states)} states "
                     "the log visits", "the number of distinct states in the log")
    n_kept = len(states)
    nxt = np.where(term, n_kept, nxt)  # terminated transitions lead to the absorbing state, last
    spec = AgentSpec(n_kept + absorbing, A, H, lo, hi)
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.int64)).view(1, -1)  # noqa: E731
    stats = Stats.from_transitions(n_kept + absorbing, A, t(obs), t(data["action"]),
                                   spec.rescale(torch.as_tensor(r).view(1, -1)), t(nxt))
    if absorbing:  # the absorbing state's known dynamics (terminal.py), as certain as the whole log
        add_absorbing(stats, n_kept, float(n), spec.rescale)
    return TransitionLog(stats, spec, S, n, states)


def solve_offline(log: TransitionLog | str | Path, agent: str = "rlpfn", seed: int = 0, **hparams) -> np.ndarray:
    """The policy [H, S, A] an offline agent (default: the shipped model) extracts from a transition log."""
    log = log if isinstance(log, TransitionLog) else load_transitions(log)
    a = make_agent(agent, **hparams)
    if not a.offline:
        raise AgentError(f"agent {agent!r} cannot learn from a fixed dataset; offline agents: rlpfn, vilcb, "
                         "certainty-equivalence, bc")
    pi = a.fit(log.spec, log.stats, seed)[0][:, :len(log.states)].numpy()
    if len(log.states) == log.n_states:
        return pi
    full = np.full((pi.shape[0], log.n_states, pi.shape[2]), 1.0 / pi.shape[2])  # no data: act uniformly
    full[:, log.states] = pi
    return full


__all__ = ["solve", "SolveResult", "solve_offline", "load_transitions", "TransitionLog"]
