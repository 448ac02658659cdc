"""Exact finite-horizon planning, batched over a leading dimension of MDPs (or of runs).

Everything model-based in rlpfn goes through here: V* and regret of the benchmark MDPs,
UCB-VI (backward induction with a bonus), PSRL (on a posterior sample), VI-LCB (with a
penalty), and later the pretraining targets.

Shapes: P [B,S,A,S] (dense; or [S,A,S] shared by the batch) or a `SparseP` (block-diagonal CSR, for large S with few
successors such as Taxi's empirical model), R [B,S,A], Q [B,H,S,A], V [B,H+1,S] with
V[:, H] = 0. Stage h runs 0..H-1 (the papers' h = 1..H shifted by one).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

DTYPE = torch.float64
# Above this many states an empirical model is stored sparse: its rows have at most as many
# successors as were observed, and a dense [B,S,A,S] matvec per stage is memory-bound.
SPARSE_MIN_STATES = 64
# A dense batch of models larger than this is planned a few MDPs at a time: the H stages re-read
# the same P, and a chunk that stays in the last-level cache is 7-11x faster than streaming the
# whole batch from memory at every stage (measured on Taxi: 10 x [501,6,501] float64, 200
# stages: 2.3 s batched, 0.33 s chunked, one core with a 32 MiB L3).
CACHE_BYTES = 8 * 2**20


def chunk_size(n_items: int, bytes_per_item: int) -> int:
    """How many items of a batch to process together so that a chunk fits in CACHE_BYTES."""
    return max(1, min(n_items, CACHE_BYTES // max(bytes_per_item, 1)))


def flush_subnormal(P: torch.Tensor) -> torch.Tensor:
    """P with its subnormal entries (below the dtype's smallest normal number) set to 0, in place.

    A posterior sample with a small Dirichlet prior (PSRL's α0 = 0.003 on Taxi) has about one entry in
    eight subnormal, and the CPU multiplies subnormals tens of times slower: on Taxi each planning stage
    took 8.6x longer. What they add to P·V is below float64's resolution (Q came out bit-identical)."""
    return P.masked_fill_(P < torch.finfo(P.dtype).tiny, 0.0)


@dataclass
class SparseP:
    """P for B MDPs as one block-diagonal CSR matrix [B*S*A, B*S]."""

    csr: torch.Tensor
    B: int
    S: int
    A: int


def expect(P, V: torch.Tensor) -> torch.Tensor:
    """E_{s'~P(.|s,a)} V[b, s', ...] for every (b, s, a): [B,S,A,...] from V [B,S,...] (P's dtype)."""
    if isinstance(P, SparseP):  # a vector V [B,S] takes the sparse matrix-vector kernel (a planning stage's case)
        flat = V.reshape(P.B * P.S, -1) if V.dim() > 2 else V.reshape(-1)
        return (P.csr @ flat).reshape(P.B, P.S, P.A, *V.shape[2:])
    if P.dim() == 3:  # one MDP shared by the whole batch (e.g. many policies on one MDP)
        return torch.einsum("sax,bx...->bsa...", P, V)
    return torch.einsum("bsax,bx...->bsa...", P, V)


def repeat(P, k: int):
    """P for the batch repeated k times along its batch axis: one backward pass then plans k reward functions
    on the same models (a stage's Python and dispatch overhead is paid once, not k times)."""
    if not isinstance(P, SparseP):
        return P if P.dim() == 3 else P.repeat(k, 1, 1, 1)
    crow, col, val = P.csr.crow_indices(), P.csr.col_indices(), P.csr.values()
    nnz, width = len(col), P.B * P.S
    crow = torch.cat([crow[:1]] + [crow[1:] + i * nnz for i in range(k)])
    col = torch.cat([col + i * width for i in range(k)])
    with warnings.catch_warnings():  # as in normalize_counts
        warnings.simplefilter("ignore", UserWarning)
        csr = torch.sparse_csr_tensor(crow, col, val.repeat(k), size=(k * P.csr.shape[0], k * width),
                                      check_invariants=False)
    return SparseP(csr, k * P.B, P.S, P.A)


def with_dtype(P, dtype: torch.dtype):
    """P (dense or SparseP) with entries of `dtype`: the model's trunk passes float32 messages along P̂."""
    return SparseP(P.csr.to(dtype), P.B, P.S, P.A) if isinstance(P, SparseP) else P.to(dtype)


def variance(P, V: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Var_{s'~P(.|s,a)} V[b, s']: [B,S,A] (clamped at 0 against round-off)."""
    mean = expect(P, V) if mean is None else mean
    return (expect(P, V * V) - mean * mean).clamp_min(0.0)


def normalize_counts(counts: torch.Tensor, sparse: bool | None = None):
    """Empirical transition model from counts [B,S,A,S]: P̂ = N(s,a,s')/N(s,a), rows of unvisited
    pairs all zero (callers decide what an unvisited pair is worth). Returns (P̂, N [B,S,A])."""
    B, S, A, _ = counts.shape
    n = counts.sum(-1)
    if sparse is None:
        sparse = S >= SPARSE_MIN_STATES
    if not sparse:
        return counts.to(DTYPE) / n.clamp_min(1.0).unsqueeze(-1), n
    b, s, a, y = counts.nonzero(as_tuple=True)
    vals = (counts[b, s, a, y] / n[b, s, a]).to(DTYPE)
    rows = (b * S + s) * A + a
    cols = b * S + y
    # nonzero() walks in row-major order, so rows come sorted: build CSR directly. int32 indices where they fit:
    # the CPU kernel converts int64 indices to int32 at every product (one conversion per planning stage).
    index = torch.int32 if B * S * A < 2**31 and len(vals) < 2**31 else torch.int64
    crow = torch.zeros(B * S * A + 1, dtype=index, device=counts.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=B * S * A), 0)
    cols = cols.to(index)
    with warnings.catch_warnings():  # torch flags sparse CSR as "beta"; we rely only on CSR @ dense
        warnings.simplefilter("ignore", UserWarning)
        csr = torch.sparse_csr_tensor(crow, cols, vals, size=(B * S * A, B * S), check_invariants=False)
    return SparseP(csr, B, S, A), n


Adjust = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


def _backward(P, R: torch.Tensor, horizon: int, adjust: Adjust | None, value: Callable, pi=None):
    """The one backward pass: Q_h = R + P·V_{h+1} (then `adjust`), V_h = value(h, Q_h, π)."""
    B, S = R.shape[0], R.shape[-2]
    if adjust is None and isinstance(P, torch.Tensor) and P.dim() == 4:
        step = chunk_size(B, P[0].numel() * P.element_size())
        if step < B:  # cache-sized chunks; `adjust` hooks see whole batches, so only without one
            parts = [_backward(P[i:i + step], R[i:i + step], horizon, None, value,
                               None if pi is None else pi[i:i + step]) for i in range(0, B, step)]
            return torch.cat([q for q, _ in parts]), torch.cat([v for _, v in parts])
    # Stages are collected in lists and stacked once, not written into preallocated tensors: in-place
    # writes would break autograd, and the model (rlpfn.model) backpropagates through this pass.
    Qs, Vs = [], [torch.zeros(B, S, dtype=R.dtype, device=R.device)]
    for h in range(horizon - 1, -1, -1):
        r = R[:, h] if R.dim() == 4 else R
        q = r + expect(P, Vs[-1])
        if adjust is not None:
            q = adjust(h, q, Vs[-1])
        Qs.append(q)
        Vs.append(value(h, q, pi))
    return torch.stack(Qs[::-1], 1), torch.stack(Vs[::-1], 1)


def backward_induction(P, R: torch.Tensor, horizon: int, adjust: Adjust | None = None):
    """Q_h = R + P·V_{h+1}, V_h = max_a Q_h, for h = H-1 .. 0.

    `adjust(h, Q_h, V_{h+1}) -> Q_h` is where an algorithm adds its bonus or penalty, clips, or
    overrides unvisited pairs; it runs before the max. R is [B,S,A] or per stage [B,H,S,A].
    Returns Q [B,H,S,A] and V [B,H+1,S].
    """
    # amax: max().values is ~5x slower on small tensors
    return _backward(P, R, horizon, adjust, lambda h, q, pi: q.amax(-1))


def evaluate_policy(P, R: torch.Tensor, pi: torch.Tensor, horizon: int):
    """Exact Q^π, V^π of a (possibly non-stationary, stochastic) policy π [B,H,S,A] or [B,S,A]."""
    return _backward(P, R, horizon, None, lambda h, q, pi: (pi[:, h] if pi.dim() == 4 else pi).mul(q).sum(-1),
                     pi.to(R.dtype))


def greedy(Q: torch.Tensor) -> torch.Tensor:
    """One-hot greedy policy from Q [..., A] (ties to the lowest action index)."""
    return torch.nn.functional.one_hot(Q.argmax(-1), Q.shape[-1]).to(Q.dtype)


def uniform_policy(B: int, S: int, A: int, dtype=DTYPE) -> torch.Tensor:
    return torch.full((B, S, A), 1.0 / A, dtype=dtype)


# ---- the same on TabularMDPs -----------------------------------------------------------------
def mdp_tensors(mdp) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A TabularMDP's P [M,S,A,S], R [M,S,A], mu0 [M,S] as float64 tensors."""
    return tuple(torch.as_tensor(x, dtype=DTYPE) for x in (mdp.P, mdp.R, mdp.mu0))


@dataclass
class Solution:
    """Exact optimal and reference values of every MDP of a TabularMDP (in its own reward units)."""

    Q: torch.Tensor  # [M,H,S,A]
    V: torch.Tensor  # [M,H+1,S]
    policy: torch.Tensor  # [M,H,S,A] one-hot
    v_star: np.ndarray  # [M] V*_0 under mu0
    v_random: np.ndarray  # [M] value of the uniform-random policy under mu0


def solve(mdp) -> Solution:
    P, R, mu0 = mdp_tensors(mdp)
    Q, V = backward_induction(P, R, mdp.horizon)
    _, Vr = evaluate_policy(P, R, uniform_policy(len(mdp), mdp.n_states, mdp.n_actions), mdp.horizon)
    return Solution(Q=Q, V=V, policy=greedy(Q), v_star=(V[:, 0] * mu0).sum(-1).numpy(),
                    v_random=(Vr[:, 0] * mu0).sum(-1).numpy())


def policy_value(mdp, pi: torch.Tensor) -> torch.Tensor:
    """V^π(μ0) for policies π [N,H,S,A] or [N,S,A]: [N]. Policy i acts in the MDP that run i of N acts in
    (`TabularMDP.run_index`): all in the one MDP, or policy i in MDP i."""
    P, R, mu0 = mdp_tensors(mdp)
    run = mdp.run_index(pi.shape[0])
    shared = P[0] if len(mdp) == 1 else P  # one MDP: every policy reads the same P, not N copies of it
    _, V = evaluate_policy(shared, R[run], pi, mdp.horizon)
    return (V[:, 0] * mu0[run]).sum(-1)
