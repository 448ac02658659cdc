"""Memory limits: a run's cost is estimated before anything is allocated, and a run that cannot fit is
refused in one line saying what it would need and how to lift the limit.

The limit is RLPFN_MAX_MEMORY (bytes, or with a suffix: 500M, 16G) when set, else 80% of the memory the
operating system reports available when the run starts. The estimates are upper bounds of the largest
tensors a run holds at once (float64 throughout), not of every temporary.
"""
from __future__ import annotations

import os
import re

from .errors import UserError

ENV = "RLPFN_MAX_MEMORY"
FRACTION = 0.8
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class ResourceError(UserError):
    """A run that would need more memory than the limit allows."""


def _available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no such query here (macOS, Windows): total memory, or no limit
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return 2**62


def memory_limit() -> int:
    """The memory one run may use, in bytes."""
    text = os.environ.get(ENV)
    if not text:
        return int(FRACTION * _available())
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)B?\s*", text, re.IGNORECASE)
    if not m:
        raise ResourceError(f"{ENV}={text!r} is not a size such as 500M or 16G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def fmt(nbytes: float) -> str:
    for unit in ("T", "G", "M", "K"):
        if nbytes >= _UNITS[unit]:
            return f"{nbytes / _UNITS[unit]:.3g} {unit}B"
    return f"{nbytes:.0f} B"


def check_memory(nbytes: float, what: str, lower: str) -> None:
    """Refuse `what` if it would need more than the limit; `lower` says which settings make it smaller."""
    limit = memory_limit()
    if nbytes > limit:
        raise ResourceError(f"{what} would need about {fmt(nbytes)} of memory, more than the {fmt(limit)} allowed: "
                            f"lower {lower}, or raise the limit with {ENV}=<size> (default: 80% of available memory)")


# ---- estimates (bytes) of the tensors each kind of run holds at once -------------------------------------------
def rollout_bytes(n_runs: int, episodes: int, horizon: int, n_states: int, n_actions: int) -> float:
    """run_trace: five [N, episodes·H] logs, the agent's statistic [N,S,A,S] and a planned Q [N,H,S,A] (a
    model-based agent's largest tensors)."""
    N, T, S, A = n_runs, episodes * horizon, n_states, n_actions
    return 8.0 * (5 * N * T + N * S * A * S + 3 * N * horizon * S * A)


def planning_bytes(n_mdps: int, horizon: int, n_states: int, n_actions: int) -> float:
    """Exact backward induction and policy evaluation: P [M,S,A,S], Q [M,H,S,A] twice, V [M,H+1,S] twice."""
    M, H, S, A = n_mdps, horizon, n_states, n_actions
    return 8.0 * (M * S * A * S + 2 * M * H * S * A + 2 * M * (H + 1) * S)
