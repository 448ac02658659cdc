"""Training on the deployed agent's regret by evolution strategies, with common random numbers (issue 9).

The policy-gradient estimate (rlpfn/regret.py) needs a stochastic policy, and was noise at the batch sizes two
cores allow (docs/model/why_v1.md). This estimate needs neither: the head rows that acting reads (the bonus
log-multiplier α, the untried-pair correction u, and δ when the reward correction is on) are perturbed, θ ± σ·ε_j
for j = 1..P, and each perturbed model acts as deployed (greedy, the default refresh rule) for `episodes` episodes
in the same M prior MDPs. Both signs of a pair, and every pair, draw the same environment random numbers in the
same MDP, and break ties between equal actions with the same random numbers (common random numbers: run_trace's
streams): a pair's difference in regret then measures its
perturbation, not its luck. The estimate of the gradient of the mean normalised regret J is antithetic,
ĝ = Σ_j (J(θ+σε_j) − J(θ−σε_j))·ε_j / (2σP); all 2P·M runs are one batch (RLPFN.forward's head_delta).
Training descends the surrogate <θ_head, ĝ>, whose gradient is ĝ, so the same optimiser and the other losses
apply unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt

from .planning import DTYPE

ALPHA, DELTA, UNVISITED = 0, 1, 2  # the head's rows that acting reads (row 3 is the Q head)


@dataclass
class ESConfig:
    """Evolution strategies on the deployed agent's regret, in the head's acting rows (section es)."""

    weight: NonNegativeFloat = 0.0
    """weight of the ES gradient; 0: off"""
    every: PositiveInt = 1
    """an estimate every this many steps"""
    pairs: PositiveInt = 8
    """antithetic perturbation pairs per estimate"""
    mdps: PositiveInt = 16
    """prior MDPs per estimate (one (S, A, H) bucket), shared by every perturbation"""
    episodes: PositiveInt = 20
    """episodes per run"""
    sigma: PositiveFloat = 0.1
    """perturbation scale, in the head's units"""
    # Each process acts in all the MDPs, so its runs draw the same common random numbers as in one process.
    workers: PositiveInt = 1
    """processes that share an estimate's runs, split by perturbation pairs (CPU training only)"""

    def __post_init__(self):
        for key in ("weight", "sigma"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"es.{key} must be finite, got {getattr(self, key)}")


def acting_rows(model) -> list[int]:
    return [ALPHA, DELTA, UNVISITED] if model.cfg.reward_correction else [ALPHA, UNVISITED]


def perturbed_regret(model, mdps, eps: torch.Tensor, sigma: float, episodes: int, seed: int,
                     workers: int = 1) -> torch.Tensor:
    """J(θ ± σ·ε_j): [P, 2, M] normalised cumulative regret of the deployed agent with head rows acting_rows(model)
    moved by +σ·ε_j (index 0) and −σ·ε_j (index 1), ε [P, rows, d+1], in each MDP of `mdps` (a prior batch of M
    MDPs); every run in MDP m shares random stream m. `workers` > 1: the pairs split over that many processes."""
    groups = [g for g in np.array_split(np.arange(eps.shape[0]), workers) if len(g)]
    if len(groups) == 1:
        return _pairs_regret(model, mdps, eps, sigma, episodes, seed)
    if next(model.parameters()).device.type != "cpu":
        # forked processes act on the CPU, whose arithmetic (and so, through exact ties, actions) can differ
        raise ValueError("es.workers > 1 runs the perturbed agents in CPU processes: train on the CPU, or set "
                         "es.workers 1 with the model on a GPU")
    from .experiments.parallel import run_jobs

    global _SHARED
    _SHARED = model, mdps  # inherited by the forked workers, not pickled (pickling moves tensors to shared memory)
    try:
        jobs = [(eps[torch.as_tensor(g)], sigma, episodes, seed) for g in groups]
        return torch.cat([torch.as_tensor(r) for r in run_jobs(_pairs_job, jobs, len(groups), progress=False)])
    finally:
        _SHARED = None


_SHARED = None  # (model, mdps) of the estimate that perturbed_regret's workers are running


def _pairs_job(args) -> np.ndarray:
    return _pairs_regret(*_SHARED, *args).numpy()


def _pairs_regret(model, mdps, eps: torch.Tensor, sigma: float, episodes: int, seed: int) -> torch.Tensor:
    from .agents import RlpfnAgent
    from .experiments.evaluate import path_gap
    from .traces import run_trace

    P, M = eps.shape[0], len(mdps)
    d = model.head.in_features
    mdp_of_run = np.tile(np.arange(M), 2 * P)  # run (j, sign, m) at index (2j + sign)·M + m
    runs = mdps.take(mdp_of_run)
    rows = model.head.out_features
    delta = torch.zeros(P, 2, rows, d + 1)
    delta[:, 0, acting_rows(model)] = sigma * eps
    delta[:, 1, acting_rows(model)] = -sigma * eps
    device = next(model.parameters()).device  # the runs act where the model is (a GPU when training on one)
    agent = RlpfnAgent.with_model(model)
    agent.head_delta = delta.unsqueeze(2).expand(P, 2, M, rows, d + 1).reshape(-1, rows, d + 1).to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        trace = run_trace(runs, agent, episodes, seed, streams=torch.as_tensor(mdp_of_run), device=device)
    model.train(was_training)
    sol = mdps.solution  # the M MDPs' (the 2P·M copies in `runs` are not solved again)
    norm = torch.as_tensor((sol.v_star - sol.v_random)[mdp_of_run] * episodes, dtype=DTYPE).clamp_min(1e-12)
    return (path_gap(mdps, trace, torch.as_tensor(mdp_of_run)).sum(1).cpu() / norm).view(P, 2, M)


def es_gradient(model, mdps, cfg: ESConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ĝ [rows, d+1]: the estimated gradient of J in the acting rows of the head, weights then bias; the
    unperturbed-direction regret J averaged over every run, [M]) on `mdps`."""
    gen = torch.Generator().manual_seed(seed)
    d = model.head.in_features
    eps = torch.randn(cfg.pairs, len(acting_rows(model)), d + 1, generator=gen)
    J = perturbed_regret(model, mdps, eps, cfg.sigma, cfg.episodes, seed, cfg.workers)
    return antithetic(J.mean(-1), eps, cfg.sigma), J.mean((0, 1))


def antithetic(J: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """ĝ = Σ_j (J(θ+σε_j) − J(θ−σε_j))·ε_j / (2σP) from J [P, 2] (+ then −) and the directions ε [P, ...]."""
    diff = (J[:, 0] - J[:, 1]).float()
    return (diff.view(-1, *[1] * (eps.dim() - 1)) * eps).sum(0) / (2 * sigma * eps.shape[0])


def es_loss(model, mdps, cfg: ESConfig, seed: int) -> dict:
    """A surrogate whose gradient in the head is the ES estimate (and zero elsewhere), and the regret (logging)."""
    grad, regret = es_gradient(model, mdps, cfg, seed)
    rows = acting_rows(model)
    grad = grad.to(model.head.weight.device)
    surrogate = (model.head.weight[rows] * grad[:, :-1]).sum() + (model.head.bias[rows] * grad[:, -1]).sum()
    return {"loss": surrogate, "regret": regret.mean().float()}


__all__ = ["ESConfig", "antithetic", "es_gradient", "es_loss", "perturbed_regret", "acting_rows"]
