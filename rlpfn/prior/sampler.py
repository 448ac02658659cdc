"""Sampling MDPs from a prior spec: a batch of n MDPs sharing S, A and H, each from a family drawn by weight.

Per MDP: a family (by weight) and its parameters (drawn from the spec's distributions), one draw of the
family, rejection of trivial MDPs (the optimal policy must beat the uniform one by min_gap·H on the
family's [0, 1] reward scale; redrawn otherwise), then rewards put on a random scale and kind inside the
spec's declared bounds, then states and actions relabelled at random, so that nothing can be learnt from
indices. The result is a TabularMDP with a batch axis (Bernoulli rewards as an exact outcome table; each MDP's
family, reward kind and reward range in `meta`), whose exact solution gives targets and ε-optimal behaviours.
"""
from __future__ import annotations

import numpy as np
import torch

from ..mdp import Outcomes, TabularMDP
from ..planning import DTYPE, backward_induction, evaluate_policy, uniform_policy
from .families import FAMILIES
from .spec import PriorSpec, PriorSpecError, weighted_choice

MAX_TRIES = 30  # rounds of redraws before a family is declared hopeless at the drawn (S, A, H)
MAX_SIZE_DRAWS = 50  # (S, A, H) draws for one batch before the spec itself is declared hopeless


class HopelessSizes(PriorSpecError):
    """A family cannot give non-trivial MDPs at these S, A, H (e.g. a 3-cell gridworld with H = 100: a
    random walk reaches the goal almost as soon as the optimal policy); the sizes are redrawn."""


def _reward_outcomes(P, R, bernoulli, r_low, r_high) -> Outcomes:
    """The exact outcome table of a batch whose Bernoulli MDPs pay r_low or r_high (mean R): outcome k < S is
    "move to k, pay the low reward" and k ≥ S "move to k - S, pay the high one" (K = 2S). The other MDPs pay R
    whatever the outcome (their high outcomes have probability 0)."""
    m, S, A, _ = P.shape
    bern, lo, hi = bernoulli[:, None, None], r_low[:, None, None], r_high[:, None, None]
    p = np.where(bern, (R - lo) / np.where(bern, hi - lo, 1.0), 0.0)[..., None]
    prob = np.concatenate([P * (1 - p), P * p], -1)
    nxt = np.broadcast_to(np.tile(np.arange(S), 2), prob.shape)
    low = np.broadcast_to(np.where(bern, lo, R)[..., None], (m, S, A, S))
    reward = np.concatenate([low, np.broadcast_to(hi[..., None], (m, S, A, S))], -1)
    return Outcomes(prob, nxt, reward)


def _solve(P: np.ndarray, R: np.ndarray, mu0: np.ndarray, H: int):
    """Batched Q* [n,H,S,A], V*(mu0) [n] and V_uniform(mu0) [n]."""
    P_t, R_t, mu0_t = (torch.as_tensor(x, dtype=DTYPE) for x in (P, R, mu0))
    Q, V = backward_induction(P_t, R_t, H)
    _, Vr = evaluate_policy(P_t, R_t, uniform_policy(*R.shape), H)
    return Q, (V[:, 0] * mu0_t).sum(-1).numpy(), (Vr[:, 0] * mu0_t).sum(-1).numpy()


def _draw_family(spec: PriorSpec, fam: str, n: int, S: int, A: int, H: int, rng: np.random.Generator):
    """n accepted draws of one family: P, R (on [0, 1]), mu0. Rejected MDPs are redrawn, parameters included."""
    P, R, mu0 = np.zeros((n, S, A, S)), np.zeros((n, S, A)), np.zeros((n, S))
    todo = np.arange(n)
    for _ in range(MAX_TRIES):
        params = spec.families[fam].draw_params(rng, len(todo))
        try:
            p, r, _, m = FAMILIES[fam](len(todo), S, A, H, rng, **params)
        except ValueError as e:  # a parameter the spec allows but the family refuses
            raise PriorSpecError(f"{spec.source}: families.{fam}.params: {e}") from None
        P[todo], R[todo], mu0[todo] = p, r, m
        if A == 1 or spec.min_gap == 0:  # one action: nothing to decide, V* = V_uniform
            return P, R, mu0
        _, v_star, v_rand = _solve(p, r, m, H)
        todo = todo[v_star - v_rand < spec.min_gap * H]
        if len(todo) == 0:
            return P, R, mu0
    raise HopelessSizes(f"{spec.source}: families.{fam}: with S={S}, A={A}, H={H}, {len(todo)} of {n} MDPs still "
                        f"have V* - V_uniform < {spec.min_gap}·H after {MAX_TRIES} draws")


def _relabel(P, R, R_std, mu0, rng: np.random.Generator, states: bool, actions: str):
    """Random permutations of state labels (per MDP) and action labels (per MDP, or per state)."""
    n, S, A, _ = P.shape
    b = np.arange(n)[:, None, None]
    if states:
        perm = rng.permuted(np.tile(np.arange(S), (n, 1)), axis=1)  # new state i is old state perm[:, i]
        P = P[b[..., None], perm[:, :, None, None], np.arange(A)[None, None, :, None], perm[:, None, None, :]]
        R, R_std, mu0 = R[b[..., 0], perm], R_std[b[..., 0], perm], mu0[b[:, 0], perm]
    if actions != "none":
        shape = (n, S, A) if actions == "per_state" else (n, 1, A)
        ap = np.broadcast_to(rng.permuted(np.broadcast_to(np.arange(A), shape), axis=2), (n, S, A))
        s = np.arange(S)[None, :, None]
        P, R, R_std = P[b, s, ap], R[b, s, ap], R_std[b, s, ap]
    return P, R, R_std, mu0


def sample_batch(spec: PriorSpec, n: int, n_states: int, n_actions: int, horizon: int,
                 rng: np.random.Generator, family: np.ndarray | None = None) -> TabularMDP:
    """n MDPs of the spec's mixture with the given S, A and H (see the module docstring); `family` [n] fixes
    each MDP's family (default: drawn by weight). HopelessSizes if a family cannot be non-trivial here."""
    S, A, H = n_states, n_actions, horizon
    if family is None:
        family = weighted_choice(spec.families, lambda c: c.weight, rng, n)
    P, R, mu0 = np.zeros((n, S, A, S)), np.zeros((n, S, A)), np.zeros((n, S))
    for fam in sorted(set(family)):  # sorted: the random stream must not depend on set order
        idx = np.flatnonzero(family == fam)
        P[idx], R[idx], mu0[idx] = _draw_family(spec, fam, len(idx), S, A, H, rng)

    _check(P, R, mu0, family, 0.0, 1.0)  # families promise mean rewards in [0, 1]

    # Rewards: the family's [0, 1] means, put on a random sub-range of the declared bounds.
    rw = spec.rewards
    lo, hi = rw.bounds
    span = rw.scale.draw(rng, n) * (hi - lo)
    r_low = lo + rng.uniform(0.0, 1.0, n) * ((hi - lo) - span)
    r_high = r_low + span
    kind = weighted_choice(rw.kinds, float, rng, n)
    R = r_low[:, None, None] + span[:, None, None] * R
    std = np.where(kind == "gaussian", rw.gaussian_std.draw(rng, n) * span, 0.0)
    R_std = np.broadcast_to(std[:, None, None], R.shape).copy()
    P, R, R_std, mu0 = _relabel(P, R, R_std, mu0, rng, spec.relabel_states, spec.relabel_actions)

    bernoulli = kind == "bernoulli"
    return TabularMDP(P, R, mu0, H, R_std, lo, hi, name=spec.name,
                      meta={"family": family, "reward_kind": kind, "reward_range": np.stack([r_low, r_high], 1)},
                      outcomes=_reward_outcomes(P, R, bernoulli, r_low, r_high) if bernoulli.any() else None)


def _check(P, R, mu0, family, lo: float, hi: float, tol: float = 1e-9) -> None:
    """Every MDP a family hands out must be proper: a bug there must stop the run, not train the model on
    improper MDPs. Vectorised over the batch; the error names the MDP, its family and the entry."""
    bad = {
        "P has a negative entry": (P < -tol).any((1, 2, 3)),
        "a row of P does not sum to 1": (np.abs(P.sum(-1) - 1) > 1e-6).any((1, 2)),
        "mu0 is not a distribution": (mu0 < -tol).any(1) | (np.abs(mu0.sum(-1) - 1) > 1e-6),
        f"a mean reward lies outside the bounds [{lo}, {hi}]": ((R < lo - tol) | (R > hi + tol)).any((1, 2)),
        "a value is not finite": ~(np.isfinite(P).all((1, 2, 3)) & np.isfinite(R).all((1, 2))),
    }
    for what, mask in bad.items():
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise RuntimeError(f"family {family[i]!r} produced an improper MDP (batch index {i}): {what}")


def draw_sizes(spec: PriorSpec, rng: np.random.Generator) -> tuple[int, int, int]:
    """S, A, H for one batch."""
    return int(spec.states.draw(rng)), int(spec.actions.draw(rng)), int(spec.horizon.draw(rng))


def sample_sized_batch(spec: PriorSpec, n: int, rng: np.random.Generator) -> TabularMDP:
    """n MDPs with S, A, H drawn from the spec: families first (so each keeps its weight exactly), then
    sizes, redrawn while some family of the batch cannot be non-trivial at them. The sizes are thus drawn
    from the spec's ranges conditioned on being feasible for the batch's families."""
    family = weighted_choice(spec.families, lambda c: c.weight, rng, n)
    for _ in range(MAX_SIZE_DRAWS):
        try:
            return sample_batch(spec, n, *draw_sizes(spec, rng), rng, family)
        except HopelessSizes:
            continue
    raise PriorSpecError(f"{spec.source}: no non-trivial MDPs of families {sorted(set(family))} in "
                         f"{MAX_SIZE_DRAWS} draws of (states, actions, horizon); widen the ranges or lower min_gap")


def sample_prior_mdps(spec: PriorSpec, n: int, seed: int, progress=None) -> list[TabularMDP]:
    """n MDPs, each with its own S, A and H, as TabularMDPs (what `rlpfn prior sample` writes);
    `progress(1)` is called after each."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        batch = sample_sized_batch(spec, 1, rng)
        out.append(batch.item(0, name=f"{spec.name}-{i:05d}-{batch.meta['family'][0]}"))
        if progress is not None:
            progress(1)
    return out
