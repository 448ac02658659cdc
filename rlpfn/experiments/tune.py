"""Choose baseline hyperparameters on MDPs drawn from the pretraining prior (the built-in spec `default`).

Never on the benchmark suite: the defaults must be what a user without hindsight would pick, and the
baselines are tuned on the same prior the rlpfn model is trained on, so neither side sees the suite.
Each agent's grid (docs/reference.md gives the usual ones) is scored on the same sampled MDPs and
seeds; the best entry becomes the registry default (rlpfn/data/tuned.json, with the command
that chose it; `rlpfn tune --out FILE` writes it, a maintainer copies it there). Online score: mean over MDPs of the normalized cumulative regret
Σ_k regret_k / (K·(V* − V_random)), lower is better. Offline score: mean normalized score over
the MDPs, ε ∈ {0, 0.5, 1} and dataset sizes {10, 100} episodes, higher is better.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..agents import make_agent
from .evaluate import run_offline, run_online
from ..files import write_json
from .parallel import run_jobs
from ..config import option
from jsonargparse.typing import NonNegativeInt, PositiveInt
from ..prior.sampler import sample_prior_mdps
from ..prior.spec import load_spec

# Grids extend past docs/reference.md's usual ones where a tuning run chose an edge: on the generic sampler
# (2026-11-21, first run) UCB-VI Bernstein 0.001, OptQL 0.001, VI-LCB Bernstein 0.01 and lr 0.5; on the
# pretraining prior (the built-in spec `default`) PSRL α0 0.01, Q-learning ε 0.05 and VI-LCB 0.003 / 0.001.
_UCBVI_H = [{"bonus": "hoeffding", "scale": c, "h_term": d} for d in (1.0, 0.1, 0.01) for c in (1.0, 0.3, 0.1, 0.03, 0.01)]
_UCBVI_B = [{"bonus": "bernstein", "scale": c, "h_term": 1.0} for c in (0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5)]
GRIDS: dict[str, list[dict]] = {
    "ucbvi": _UCBVI_H + _UCBVI_B,
    "psrl": [{"alpha0": a} for a in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)],
    "optql": [{"scale": c} for c in (1.0, 0.1, 0.01, 0.001, 1e-4, 0.0)],  # Jin et al.'s c
    "qlearning": [{"epsilon": e, "lr": lr, "init": init}
                  for e in (0.01, 0.02, 0.05, 0.1, 0.2) for lr in ("hpt", 0.1, 0.5, 1.0) for init in ("zero", "optimistic")],
    "vilcb": [{"penalty": "hoeffding", "scale": c} for c in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4)]
    + [{"penalty": "bernstein", "scale": c} for c in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)],
}
OFFLINE_SETTINGS = [(eps, n) for eps in (0.0, 0.5, 1.0) for n in (10, 100)]


@dataclass(frozen=True)
class TuneConfig:
    """What `rlpfn tune` scores the grids on; every field is also its command-line option (config.option)."""

    n_mdps: PositiveInt = option(24, help="MDPs sampled from the prior")
    episodes: PositiveInt = option(300, help="online episodes per run")
    seeds: PositiveInt = option(4, help="runs per MDP")
    seed: NonNegativeInt = option(0, help="random seed")
    prior: str = option("default", metavar="SPEC", help="prior spec the MDPs are drawn from: a YAML path or a "
                                                        "built-in name (default: default, the pretraining prior)")

    def __post_init__(self):
        load_spec(self.prior)  # a bad spec fails here, before any work


def _score(args) -> float:
    agent_name, hp, mdp, cfg = args
    gap = (mdp.solution.v_star - mdp.solution.v_random).item()
    agent = make_agent(agent_name, **hp)
    if not agent.online:
        return float(np.mean([run_offline(mdp, agent, eps, n, cfg.seeds, cfg.seed).scores.mean()
                              for eps, n in OFFLINE_SETTINGS]))
    res = run_online(mdp, agent, cfg.episodes, cfg.seeds, cfg.seed)
    return float(res.regret.sum(1).mean() / (cfg.episodes * gap))


def tune(agents: list[str], cfg: TuneConfig, workers: int = 2, progress: bool = True) -> dict:
    """Score every grid entry of every agent on the same sampled MDPs; returns the JSON record."""
    mdps = sample_prior_mdps(load_spec(cfg.prior), cfg.n_mdps, cfg.seed)
    jobs = [(a, hp, m, cfg) for a in agents for hp in GRIDS[a] for m in mdps]
    scores = run_jobs(_score, jobs, workers, "tuning", progress)
    record = {}
    i = 0
    for a in agents:
        offline = not make_agent(a).online
        grid = []
        for hp in GRIDS[a]:
            s = scores[i:i + len(mdps)]
            i += len(mdps)
            grid.append({"hparams": hp, "score": float(np.mean(s)), "sem": float(np.std(s, ddof=1) / np.sqrt(len(s)))})
        best = max(grid, key=lambda g: g["score"]) if offline else min(grid, key=lambda g: g["score"])
        record[a] = {"hparams": best["hparams"], "score": best["score"],
                     "objective": "mean normalized score (higher is better)" if offline
                     else "mean normalized cumulative regret (lower is better)", "grid": grid}
    return record


def save_tuned(record: dict, cfg: TuneConfig, command: str, path: Path) -> None:
    """Write the shipped tuned.json with `record` merged in (agents not re-tuned keep their entries) to `path`,
    atomically. The installed package is never written: a maintainer copies the file to rlpfn/data/tuned.json."""
    from ..resources import data_file

    existing = json.loads(data_file("tuned.json").read_text())["agents"]
    existing.update(record)
    doc = {
        "note": "Defaults chosen by `rlpfn tune` on MDPs sampled from a prior spec (the pretraining prior unless "
                "--prior says otherwise), never on the benchmarks.",
        "command": command, "date": datetime.date.today().isoformat(),
        "config": {f.name: getattr(cfg, f.name) for f in fields(TuneConfig)},
        "agents": existing,
    }
    write_json(path, doc, indent=1)
