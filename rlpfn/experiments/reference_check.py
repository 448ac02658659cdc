"""Reproduce docs/reference.md's measured regrets for UCB-VI and PSRL, to show our baselines are as
strong as their references (H = 20, 2000 episodes, 5 seeds).

docs/reference.md, UCB-VI: textbook pooled-count UCB-VI with b = c·sqrt(1/N) + (H−h)/N, regret
≈ 224 (c = 0.1) to 288 (c = 1) on rlberry Chain(10, fail 0.1), 1096 to 1418 on GridWorld 5×5,
50 to 78 on RiverSwim (Osband). PSRL: Chain 255 (α0 = 0.1) / 472 (α0 = 1), GridWorld
1490 / 3369, RiverSwim 166 / 248.
"""
from __future__ import annotations

import numpy as np

from ..agents import make_agent
from ..benchmarks import make_benchmark
from .evaluate import run_online
from ..metrics import mean_ci
from .parallel import run_jobs

EPISODES, SEEDS = 2000, 5
MDPS = ["rlberry-chain", "rlberry-gridworld", "riverswim"]
# (agent, hyperparameters) -> reference regret per MDP
REFERENCE = {
    ("ucbvi", (("bonus", "hoeffding"), ("h_term", 1.0), ("scale", 0.1))): {"rlberry-chain": 224, "rlberry-gridworld": 1096, "riverswim": 50},
    ("ucbvi", (("bonus", "hoeffding"), ("h_term", 1.0), ("scale", 1.0))): {"rlberry-chain": 288, "rlberry-gridworld": 1418, "riverswim": 78},
    ("psrl", (("alpha0", 0.1),)): {"rlberry-chain": 255, "rlberry-gridworld": 1490, "riverswim": 166},
    ("psrl", (("alpha0", 1.0),)): {"rlberry-chain": 472, "rlberry-gridworld": 3369, "riverswim": 248},
}


def _run(args):
    agent, hp, mdp_name, episodes, seeds, seed = args
    mdp = make_benchmark(mdp_name)  # these are all H = 20
    res = run_online(mdp, make_agent(agent, **dict(hp)), episodes, seeds, seed)
    return res.regret.sum(1)


def check(episodes: int = EPISODES, seeds: int = SEEDS, seed: int = 0, workers: int = 2, progress: bool = True):
    """Returns rows (agent, hparams, mdp, reference, measured mean, CI half-width)."""
    jobs = [(a, hp, m, episodes, seeds, seed) for (a, hp) in REFERENCE for m in MDPS]
    finals = run_jobs(_run, jobs, workers, "reference runs", progress)
    rows = []
    for (a, hp, m, *_), f in zip(jobs, finals):
        mean, ci = mean_ci(np.asarray(f))
        rows.append((a, dict(hp), m, REFERENCE[(a, hp)][m], float(mean), float(ci)))
    return rows


def format_rows(rows) -> str:
    lines = ["| agent | hyperparameters | MDP | reference regret | measured (mean ± 95% CI) | ratio |",
             "|---|---|---|---|---|---|"]
    for a, hp, m, ref, mean, ci in rows:
        hps = ", ".join(f"{k}={v}" for k, v in hp.items())
        lines.append(f"| {a} | {hps} | {m} | {ref} | {mean:.0f} ± {ci:.0f} | {mean / ref:.2f} |")
    return "\n".join(lines)
