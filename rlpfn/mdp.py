"""TabularMDP: the one MDP type every part of rlpfn reads, with a batch axis.

A TabularMDP holds M MDPs of equal S, A and H (arrays [M, S, A, S] and so on; M = 1 for a benchmark or a
user's MDP, whose unbatched arrays the constructor accepts; M > 1 for a batch drawn from a prior). Runs of
the harness act either all in the one MDP or run i in MDP i (`run_index`). Its exact solution is computed
once, batched, and kept.

Finite horizon H; every episode lasts exactly H steps. Terminal states are
absorbing zero-reward states, so "the episode ended" is just "the agent sits in
a state where nothing happens any more".
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import UserError

ROW_SUM_TOL = 1e-6


class MDPError(UserError):
    """An MDP (or a file that should hold one) is malformed; the message names the entry."""


@dataclass(eq=False)
class Outcomes:
    """Optional exact outcome table: acting a in s yields outcome k w.p. prob[s,a,k], which moves to
    next_state[s,a,k] and pays reward[s,a,k]. Where a reward depends on the outcome (FrozenLake pays 1
    only if the slip lands on G, Strens' Chain pays by the executed action) this is the exact model;
    P and R are its summaries (and R_std, if any, is extra Gaussian noise on top). Unused
    slots have prob 0."""

    prob: np.ndarray  # [M, S, A, K] (from_lists gives one MDP's [S, A, K])
    next_state: np.ndarray  # [M, S, A, K] int
    reward: np.ndarray  # [M, S, A, K]

    @classmethod
    def from_lists(cls, S: int, A: int, s, a, prob, next_state, reward) -> "Outcomes":
        """From flat outcome rows (s, a, prob, s', r), any number per (s, a)."""
        s, a = np.asarray(s, np.int64), np.asarray(a, np.int64)
        order = np.lexsort((a, s))
        s, a = s[order], a[order]
        pair = s * A + a
        counts = np.bincount(pair, minlength=S * A)
        K = max(int(counts.max()), 1)
        slot = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
        out = cls(np.zeros((S, A, K)), np.zeros((S, A, K), np.int64), np.zeros((S, A, K)))
        out.prob[s, a, slot] = np.asarray(prob, float)[order]
        out.next_state[s, a, slot] = np.asarray(next_state, np.int64)[order]
        out.reward[s, a, slot] = np.asarray(reward, float)[order]
        return out

    def transition_matrix(self) -> np.ndarray:
        """P [..., S, A, S] summed over outcomes (next states must be in range)."""
        *lead, S, A, K = self.prob.shape
        rows = np.arange(int(np.prod(lead, dtype=np.int64)) * S * A).reshape(*lead, S, A, 1)
        flat = (rows * S + self.next_state).ravel()
        return np.bincount(flat, weights=self.prob.ravel(), minlength=rows.size * S).reshape(*lead, S, A, S)

    def mean_reward(self) -> np.ndarray:
        return (self.prob * self.reward).sum(-1)


@dataclass(eq=False)
class TabularMDP:
    P: np.ndarray  # [M, S, A, S] transition probabilities P(s' | s, a) (an unbatched [S, A, S] is M = 1)
    R: np.ndarray  # [M, S, A] mean reward for acting a in s
    mu0: np.ndarray  # [M, S] initial-state distribution
    horizon: int  # H: steps per episode
    R_std: np.ndarray | None = None  # [M, S, A] Gaussian reward noise; 0 = deterministic
    r_min: float | None = None  # bounds on the mean reward, known to agents (shared by the batch)
    r_max: float | None = None
    name: str = "mdp"
    meta: dict = field(default_factory=dict)  # free-form provenance (not saved); per-MDP entries are arrays [M]
    outcomes: Outcomes | None = None  # exact outcome-dependent rewards, when the source has them
    _solution: object = field(default=None, init=False, repr=False)  # planning.Solution, computed once

    def __post_init__(self):
        self.P = _as_float_array(self.P, "P")
        batched = self.P.ndim == 4  # else one MDP's arrays: each gets the batch axis of length 1
        lift = (lambda x: x) if batched else (lambda x: x[None])
        self.P = lift(self.P)
        self.R = lift(_as_float_array(self.R, "R"))
        self.mu0 = lift(_as_float_array(self.mu0, "mu0"))
        self.R_std = np.zeros_like(self.R) if self.R_std is None else lift(_as_float_array(self.R_std, "R_std"))
        if self.outcomes is not None:
            o = self.outcomes
            self.outcomes = Outcomes(lift(_as_float_array(o.prob, "outcome_prob")),
                                     lift(_as_int_array(o.next_state, "outcome_next")),
                                     lift(_as_float_array(o.reward, "outcome_reward")))
        # default bounds: the range of single rewards (of outcomes with mass, if there is a table)
        span = self.R if self.outcomes is None or self.outcomes.prob.shape != self.outcomes.reward.shape \
            else self.outcomes.reward[self.outcomes.prob != 0]
        if self.r_min is None:
            self.r_min = float(span.min()) if span.size else 0.0
        if self.r_max is None:
            self.r_max = float(span.max()) if span.size else 0.0
        self.r_min, self.r_max = float(self.r_min), float(self.r_max)
        self.horizon = _as_int(self.horizon, "horizon")
        self.name = str(self.name)
        self.validate()

    @property
    def solution(self):
        """The exact solution of every MDP of the batch (planning.Solution: Q*, V*, π* [M, ...], V*(μ0) and
        V_random(μ0) [M], in the MDPs' reward units), computed on first use and kept: nothing solves the same MDP
        twice. An MDP is not changed after construction (with_horizon makes a new one)."""
        if self._solution is None:
            from .limits import check_memory, planning_bytes
            from .planning import solve

            check_memory(planning_bytes(len(self), self.horizon, self.n_states, self.n_actions),
                         f"solving {self.name} exactly (S={self.n_states}, A={self.n_actions}, H={self.horizon})",
                         "the horizon (--horizon)")

            self._solution = solve(self)
        return self._solution

    def __len__(self) -> int:
        """M, the number of MDPs in the batch."""
        return self.P.shape[0]

    @property
    def n_states(self) -> int:
        return self.P.shape[1]

    @property
    def n_actions(self) -> int:
        return self.P.shape[2]

    def run_index(self, n_runs: int):
        """Which MDP each of `n_runs` runs acts in: all in the one MDP (M = 1), or run i in MDP i (M = n_runs)."""
        import torch

        if len(self) not in (1, n_runs):
            raise ValueError(f"{len(self)} MDPs cannot be acted in by {n_runs} runs (need 1 or {n_runs})")
        return torch.arange(n_runs) if len(self) == n_runs > 1 else torch.zeros(n_runs, dtype=torch.long)

    def item(self, i: int, name: str | None = None) -> "TabularMDP":
        """MDP i alone (a batch of 1), e.g. to save it; per-MDP meta entries become its own."""
        return self.take([i], name or f"{self.name}-{i}")

    def take(self, index, name: str | None = None) -> "TabularMDP":
        """The MDPs at `index` (a sequence of ints, repeats allowed: several runs per MDP), per-MDP meta along;
        a single MDP gets its own meta entries, not arrays of one."""
        keep = np.asarray(index, dtype=np.int64)
        pick = keep if len(keep) > 1 else keep[0]
        o = self.outcomes
        meta = {k: (v[pick] if isinstance(v, np.ndarray) and v.shape[:1] == (len(self),) else v)
                for k, v in self.meta.items()}
        return TabularMDP(self.P[keep], self.R[keep], self.mu0[keep], self.horizon, self.R_std[keep], self.r_min,
                          self.r_max, name or self.name, meta,
                          None if o is None else Outcomes(o.prob[keep], o.next_state[keep], o.reward[keep]))

    def _at(self, index) -> str:
        """An entry's index as messages show it: without the batch index when there is one MDP."""
        return _idx(index[1:]) if len(self) == 1 else _idx(index)

    def validate(self) -> None:
        """Raise MDPError naming the first offending entry."""
        P, R, mu0, R_std = self.P, self.R, self.mu0, self.R_std
        if P.ndim != 4 or P.shape[1] != P.shape[3]:
            raise MDPError(f"P must have shape [S, A, S], got {list(P.shape)[1:]} (a batch of MDPs: [M, S, A, S])")
        M, S, A, _ = P.shape
        if M < 1 or S < 1 or A < 1:
            raise MDPError(f"P must have at least one state and one action, got shape {list(P.shape)[1:]}")
        lead = [M] if M > 1 else []
        for key, arr, shape in (("R", R, (M, S, A)), ("R_std", R_std, (M, S, A)), ("mu0", mu0, (M, S))):
            if arr.shape != shape:
                raise MDPError(f"{key} must have shape {lead + list(shape[1:])} to match P "
                               f"{lead + list(P.shape[1:])}, got {list(arr.shape)[0 if lead else 1:]}")
        for key, arr in (("P", P), ("R", R), ("R_std", R_std), ("mu0", mu0)):
            bad = np.argwhere(~np.isfinite(arr))
            if len(bad):
                raise MDPError(f"{key}{self._at(bad[0])} is {arr[tuple(bad[0])]} (must be finite)")
        for key, arr in (("P", P), ("R_std", R_std), ("mu0", mu0)):
            bad = np.argwhere(arr < 0)
            if len(bad):
                raise MDPError(f"{key}{self._at(bad[0])} = {arr[tuple(bad[0])]:.6g} is negative")
        row_err = np.abs(P.sum(-1) - 1.0)
        bad = np.argwhere(row_err > ROW_SUM_TOL)
        if len(bad):
            row = tuple(bad[0])
            raise MDPError(f"P{self._at(row)[:-1]}, :] sums to {P[row].sum():.9g}, not 1 (tolerance {ROW_SUM_TOL})")
        bad = np.flatnonzero(np.abs(mu0.sum(-1) - 1.0) > ROW_SUM_TOL)
        if len(bad):
            raise MDPError(f"mu0{f'[{bad[0]}]' if M > 1 else ''} sums to {mu0[bad[0]].sum():.9g}, "
                           "not 1: it must be a distribution over states")
        if self.horizon < 1:
            raise MDPError(f"horizon must be >= 1, got {self.horizon}")
        if not (np.isfinite(self.r_min) and np.isfinite(self.r_max)):
            raise MDPError(f"reward bounds must be finite, got r_min={self.r_min}, r_max={self.r_max}")
        if self.r_min > self.r_max:
            raise MDPError(f"r_min = {self.r_min} is greater than r_max = {self.r_max}")
        if not np.isfinite(2.0 * max(abs(self.r_min), abs(self.r_max), float(np.abs(R).max(initial=0.0))) * self.horizon):
            raise MDPError(f"rewards up to {max(abs(self.r_min), abs(self.r_max)):.3g} over H = {self.horizon} steps overflow "
                           "float64: returns would be infinite")
        tol = 1e-9 * max(1.0, abs(self.r_min), abs(self.r_max))
        bad = np.argwhere((R < self.r_min - tol) | (R > self.r_max + tol))
        if len(bad):
            raise MDPError(
                f"R{self._at(bad[0])} = {R[tuple(bad[0])]:.6g} is outside the reward bounds [{self.r_min}, {self.r_max}]"
            )
        if self.outcomes is not None:
            self._validate_outcomes(tol)

    def _validate_outcomes(self, tol: float) -> None:
        o, (M, S, A, _) = self.outcomes, self.P.shape
        for key, arr in (("outcome_prob", o.prob), ("outcome_next", o.next_state), ("outcome_reward", o.reward)):
            if arr.ndim != 4 or arr.shape[:3] != (M, S, A) or arr.shape != o.prob.shape:
                want = f"[{S}, {A}, K]" if key == "outcome_prob" else f"{list(o.prob.shape)[1:]} like outcome_prob"
                raise MDPError(f"{key} must have shape {want}, got {list(arr.shape)[0 if M > 1 else 1:]}")
            bad = np.argwhere(~np.isfinite(arr))
            if len(bad):
                raise MDPError(f"{key}{self._at(bad[0])} is {arr[tuple(bad[0])]} (must be finite)")
        bad = np.argwhere(o.prob < 0)
        if len(bad):
            raise MDPError(f"outcome_prob{self._at(bad[0])} = {o.prob[tuple(bad[0])]:.6g} is negative")
        bad = np.argwhere((o.next_state < 0) | (o.next_state >= S))
        if len(bad):
            raise MDPError(f"outcome_next{self._at(bad[0])} = {o.next_state[tuple(bad[0])]} is not a state in [0, {S})")
        bad = np.argwhere((o.prob > 0) & ((o.reward < self.r_min - tol) | (o.reward > self.r_max + tol)))
        if len(bad):
            raise MDPError(f"outcome_reward{self._at(bad[0])} = {o.reward[tuple(bad[0])]:.6g} is outside the reward "
                           f"bounds [{self.r_min}, {self.r_max}]")
        bad = np.argwhere(np.abs(o.transition_matrix() - self.P) > ROW_SUM_TOL)
        if len(bad):
            raise MDPError(f"P{self._at(bad[0])} = {self.P[tuple(bad[0])]:.9g} disagrees with the outcome table")
        bad = np.argwhere(np.abs(o.mean_reward() - self.R) > ROW_SUM_TOL * max(1.0, self.r_max - self.r_min))
        if len(bad):
            raise MDPError(f"R{self._at(bad[0])} = {self.R[tuple(bad[0])]:.9g} is not the mean reward of the outcome table")

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the `.npz` format (keys P, R, R_std, mu0, horizon, r_min, r_max, name; and
        outcome_prob, outcome_next, outcome_reward when the MDP has an outcome table)."""
        from .files import write_npz  # probed, then written through a temporary file and a rename

        if len(self) != 1:
            raise MDPError(f"an .npz file holds one MDP; this batch holds {len(self)} (save each: mdp.item(i).save(...))")
        extra = {} if self.outcomes is None else dict(outcome_prob=self.outcomes.prob[0],
                                                      outcome_next=self.outcomes.next_state[0],
                                                      outcome_reward=self.outcomes.reward[0])
        write_npz(path, P=self.P[0], R=self.R[0], R_std=self.R_std[0], mu0=self.mu0[0], horizon=np.int64(self.horizon),
                  r_min=np.float64(self.r_min), r_max=np.float64(self.r_max), name=np.str_(self.name), **extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TabularMDP":
        """Read an `.npz` MDP; any defect is an MDPError naming the file and the problem."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MDPError(f"{path}: no such file")
        try:
            # Our own handle: np.load(path) leaks its file when a zip header hides a broken archive.
            with open(path, "rb") as f:
                data = np.load(f, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
                    raise MDPError(f"{path}: not an .npz archive (a single array, not named arrays)")
                with data:
                    arrays = {k: data[k] for k in data.files}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError) as e:
            raise MDPError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
        missing = [k for k in ("P", "R", "mu0", "horizon") if k not in arrays]
        if missing:
            raise MDPError(f"{path}: missing required key(s) {', '.join(missing)}")
        outcome_keys = ("outcome_prob", "outcome_next", "outcome_reward")
        unknown = sorted(set(arrays) - {"P", "R", "mu0", "horizon", "R_std", "r_min", "r_max", "name", *outcome_keys})
        if unknown:
            raise MDPError(f"{path}: unknown key(s) {', '.join(unknown)}")
        present = [k for k in outcome_keys if k in arrays]
        if present and len(present) != 3:
            missing = [k for k in outcome_keys if k not in arrays]
            raise MDPError(f"{path}: outcome table incomplete: has {', '.join(present)} but not {', '.join(missing)}")

        def scalar(key, conv):
            if key not in arrays:
                return None
            v = arrays[key]
            if v.size != 1:
                raise MDPError(f"{key} must be a scalar, got shape {list(v.shape)}")
            try:
                return conv(v.reshape(()).item())
            except (TypeError, ValueError):
                raise MDPError(f"{key} = {v.reshape(()).item()!r} is not a valid {conv.__name__}") from None

        default_name = os.path.splitext(os.path.basename(path))[0]
        if arrays["P"].ndim != 3:
            raise MDPError(f"{path}: P must have shape [S, A, S], got {list(arrays['P'].shape)}")
        try:
            return cls(
                P=arrays["P"], R=arrays["R"], mu0=arrays["mu0"], horizon=scalar("horizon", float),
                R_std=arrays.get("R_std"), r_min=scalar("r_min", float), r_max=scalar("r_max", float),
                name=scalar("name", str) or default_name,
                outcomes=Outcomes(*(arrays[k] for k in outcome_keys)) if present else None,
            )
        except MDPError as e:
            raise MDPError(f"{path}: {e}") from None

    # ---- derived quantities ------------------------------------------------------------------
    def sampling_tables(self):
        """Outcome tables for env.BatchedEnv: (prob, next, reward) [M,S,A,K], R_std [M,S,A], mu0 [M,S]. Without an
        exact outcome table, outcome k is "move to state k" and pays R."""
        M, S, A, o = len(self), self.n_states, self.n_actions, self.outcomes
        if o is None:
            nxt = np.broadcast_to(np.arange(S), (M, S, A, S))
            return self.P, nxt, np.broadcast_to(self.R[..., None], (M, S, A, S)), self.R_std, self.mu0
        return o.prob, o.next_state, o.reward, self.R_std, self.mu0

    def with_horizon(self, horizon: int) -> "TabularMDP":
        return TabularMDP(self.P, self.R, self.mu0, horizon, self.R_std, self.r_min, self.r_max, self.name,
                          dict(self.meta), self.outcomes)

    def __repr__(self) -> str:
        batch = f"M={len(self)}, " if len(self) > 1 else ""
        return f"TabularMDP({self.name!r}, {batch}S={self.n_states}, A={self.n_actions}, H={self.horizon})"


def start_at(S: int, s0: int = 0) -> np.ndarray:
    """The initial-state distribution [S] that always starts in s0 (the benchmarks' fixed starts)."""
    mu0 = np.zeros(S)
    mu0[s0] = 1.0
    return mu0


def _idx(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _as_float_array(x, key: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise MDPError(f"{key} is not a numeric array") from None
    return arr


def _as_int_array(x, key: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise MDPError(f"{key} must hold whole numbers (state indices)")
    return arr.astype(np.int64)


def _as_int(x, key: str) -> int:
    try:
        f = float(x)
    except (TypeError, ValueError):
        raise MDPError(f"{key} = {x!r} is not a number") from None
    if not np.isfinite(f) or f != int(f):
        raise MDPError(f"{key} = {x!r} is not a whole number")
    return int(f)
