"""Turn what a user types (a benchmark name, an .npz path, a gymnasium id) into a TabularMDP."""
from __future__ import annotations

import os

from .benchmarks import BENCHMARKS, make_benchmark
from .mdp import MDPError, TabularMDP


def load_mdp(spec: str, horizon: int | None = None, env_kwargs: dict | None = None) -> TabularMDP:
    """`spec` is a benchmark name (see `rlpfn benchmarks`), a path to an `.npz` MDP, or a
    gymnasium id whose environment exposes its tables (FrozenLake-v1, Taxi-v4, ...), made with `env_kwargs`."""
    if env_kwargs and (spec in BENCHMARKS or spec.endswith(".npz") or os.path.exists(spec)):
        raise MDPError(f"environment options {sorted(env_kwargs)} apply to gymnasium ids only, not to {spec!r}")
    if spec in BENCHMARKS:
        mdp = make_benchmark(spec)
    elif spec.endswith(".npz") or os.path.exists(spec):
        mdp = TabularMDP.load(spec)
    else:
        from .gym_import import from_gymnasium

        try:
            mdp = from_gymnasium(spec, horizon=horizon, **(env_kwargs or {}))
        except MDPError as e:
            if "unknown gymnasium environment" in str(e):  # with gymnasium's own advice (which version exists)
                advice = str(e).split(": ", 1)[1]  # gymnasium's words, after "unknown gymnasium environment 'x': "
                raise MDPError(f"{spec!r} is neither a benchmark name ({', '.join(BENCHMARKS)}), "
                               f"an .npz file, nor a gymnasium id: {advice}") from None
            raise
    if horizon is not None and horizon != mdp.horizon:
        if horizon < 1:
            raise MDPError(f"horizon must be >= 1, got {horizon}")
        mdp = mdp.with_horizon(horizon)
    return mdp
