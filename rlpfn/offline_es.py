"""The offline head β trained by evolution strategies on the offline score it is judged by (issue 9, offline bar).

Offline, the model plans pessimistically: Q_h = clip(r̂ − e^β·b_h + P̂·V_{h+1}, 0, H−h), β per (s, a) from the head's
fifth row (ModelConfig.offline_head). Measured on the `wide` prior, no single penalty scale is best for every kind
of data: expert data wants v1's scale, uniform-random data almost none (docs/model/offline_head.md). β reads the
dataset's statistic, so it can tell them apart. Its score is cheap to estimate: one forward pass per dataset and an
exact policy evaluation, no rollout. The estimate is es.py's antithetic one on that row alone: each of P
directions ε_j is scored at θ ± σ·ε_j on the same datasets (common random numbers), and
ĝ = Σ_j (J(θ+σε_j) − J(θ−σε_j))·ε_j / (2σP) is the gradient of the mean normalized score J (to ascend).
"""
from __future__ import annotations

import dataclasses

import torch

from .agents import AgentSpec, RlpfnAgent, make_agent
from .es import antithetic
from .planning import policy_value
from .stats import Stats
from .traces import offline_datasets

OFFLINE = 4  # the head's row of β
# (behaviour ε, dataset episodes): the benchmark's offline cells, here on prior MDPs
SETTINGS = [(eps, n) for eps in (0.0, 0.5, 1.0) for n in (10, 100)]


def with_offline_head(model):
    """A copy of `model` with a fifth head row β, a copy of α's: offline it then acts exactly as `model` does."""
    from .model import RLPFN

    if model.cfg.offline_head:
        raise ValueError("the model already has an offline head")
    new = RLPFN(dataclasses.replace(model.cfg, offline_head=True))
    state = dict(model.state_dict())
    for key in ("head.weight", "head.bias"):
        state[key] = torch.cat([state[key], state[key][:1]])  # row 0 is α
    new.load_state_dict(state)
    return new.eval()


def datasets(mdps, seed: int, settings=SETTINGS) -> list[tuple[list[float], Stats]]:
    """Per dataset size: (its behaviour ε values, the statistic of every (ε, MDP) dataset, rows ordered (ε, m))."""
    out = []
    for k, n in enumerate(sorted({n for _, n in settings})):
        eps = [e for e, size in settings if size == n]
        parts = [offline_datasets(mdps, make_agent("optimal", epsilon=e), n, seed + 97 * k + i)
                 for i, e in enumerate(eps)]
        out.append((eps, Stats(*(torch.cat([getattr(p, f.name) for p in parts])
                                 for f in dataclasses.fields(Stats)))))
    return out


def perturbed_scores(model, mdps, data, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """J(θ ± σ·ε_j): [P, 2] mean normalized offline score over `data`'s datasets (datasets()) of the pessimistic
    greedy policy, with row β of the head moved by +σ·ε_j (index 0) and −σ·ε_j (index 1), ε [P, d+1]."""
    P, rows, d = eps.shape[0], model.head.out_features, model.head.in_features
    delta = torch.zeros(2 * P, rows, d + 1)
    delta[0::2, OFFLINE], delta[1::2, OFFLINE] = sigma * eps, -sigma * eps
    spec, M, sol = AgentSpec.of(mdps), len(mdps), mdps.solution
    gap = torch.as_tensor(sol.v_star - sol.v_random).clamp_min(1e-12)
    total, count = torch.zeros(2 * P, dtype=torch.float64), 0
    for eps_values, stats in data:
        E = len(eps_values)
        for m in range(M):  # one MDP at a time: 2P·E policy tables [H,S,A] at once, not 2P·E·M
            own = torch.arange(E) * M + m  # this MDP's datasets, one per ε
            rep = stats.rows(own.repeat(2 * P))  # [2P·E]: every perturbation on the same datasets
            agent = RlpfnAgent.with_model(model)
            agent.head_delta = delta.repeat_interleave(E, 0)
            pi = agent.fit(spec, rep)
            values = policy_value(mdps.item(m), pi).view(2 * P, E)
            total += ((values - sol.v_random[m]) / gap[m]).sum(1)
            count += E
    return (total / count).view(P, 2)


def offline_gradient(model, mdps, data, P: int, sigma: float, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """(ĝ [d+1]: the ascent direction of the mean offline score in β's weights then bias, the score J averaged over
    both signs of every pair)."""
    eps = torch.randn(P, model.head.in_features + 1, generator=gen)
    J = perturbed_scores(model, mdps, data, eps, sigma)
    return antithetic(J, eps, sigma), J.mean().item()


# β − α shifts the supervised fit chooses among (multipliers 1 ... 0.001 of the base's penalty)
SHIFTS = torch.log(torch.tensor([1.0, 0.3, 0.1, 0.03, 0.01, 0.001]))


def shift_scores(model, mdps, data, shifts: torch.Tensor = SHIFTS) -> tuple[torch.Tensor, torch.Tensor]:
    """The supervised alternative to ES: per dataset of `data`, (the trunk's summary [D, d] that β's row reads, the
    normalized score of the pessimistic greedy policy with β's bias moved by each shift [D, K])."""
    from .model import Context

    rows, d, K = model.head.out_features, model.head.in_features, len(shifts)
    delta = torch.zeros(K, rows, d + 1)
    delta[:, OFFLINE, d] = shifts
    spec, M, sol = AgentSpec.of(mdps), len(mdps), mdps.solution
    X, Y = [], []
    for eps_values, stats in data:
        D = stats.n_runs  # (ε, m) rows
        episodes = int(stats.visits.sum((1, 2)).max().item()) // mdps.horizon
        with torch.no_grad():
            ctx = Context.at(stats, torch.full((D,), -1), 0, mdps.horizon, episodes)
            X.append(model(ctx, pessimistic=True, transitions=False).summary.double())
        agent = RlpfnAgent.with_model(model)
        agent.head_delta = delta.repeat_interleave(D, 0)
        mdp_of = torch.arange(M).repeat(K * len(eps_values))
        values = policy_value(mdps.take(mdp_of.numpy()), agent.fit(spec, stats.rows(torch.arange(D).repeat(K))))
        gap = torch.as_tensor(sol.v_star - sol.v_random)[mdp_of[:D]]
        Y.append(((values.view(K, D) - torch.as_tensor(sol.v_random)[mdp_of[:D]]) / gap).T)
    return torch.cat(X), torch.cat(Y)


def fit_shift(X: torch.Tensor, Y: torch.Tensor, ridge: float, shifts: torch.Tensor = SHIFTS) -> torch.Tensor:
    """Ridge regression of each dataset's best shift (the largest multiplier among those that score best: ties
    keep the base's penalty) on its summary: [d+1], weights then bias, to add to β's row. β is linear in the
    per-pair trunk output, so its mean over pairs moves by exactly the regression's prediction."""
    best = Y >= Y.max(1, keepdim=True).values - 1e-9
    target = shifts.double()[best.double().argmax(1)]
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    return torch.linalg.solve(A.T @ A + ridge * torch.eye(A.shape[1], dtype=A.dtype), A.T @ target)


__all__ = ["OFFLINE", "SETTINGS", "SHIFTS", "with_offline_head", "datasets", "perturbed_scores", "offline_gradient",
           "shift_scores", "fit_shift"]
