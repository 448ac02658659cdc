"""Run the whole benchmark suite × agents, online and offline, as independent jobs.

Each job (one benchmark, one agent, a group of seeds batched) runs in a worker process with
one torch thread: on 2 cores two single-threaded jobs side by side beat one job using both
cores (small tensors, see threads.py). Online runs are split into groups of at most
SEED_GROUP seeds, group g with base seed `seed + SEED_STRIDE·g`, so the one expensive pair
(exact PSRL on Taxi) is shared by both workers, and results do not depend on the number of
workers. Jobs start most expensive first so neither worker idles at the end. With --hindsight, an online agent's
grid runs as one batch per seed group (agents.stacked), in chunks that fit STACK_BYTES: on small MDPs a step costs
Python overhead, not arithmetic, so 40 settings of Q-learning cost about what one does.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveInt

from ..agents import AGENTS, make_agent, parse_agent, stacked, tuned_defaults
from ..agents.base import ModelAgent
from ..benchmarks import BENCHMARKS, SUITE, BenchmarkName, make_benchmark
from .. import __version__
from ..config import ConfigError, option
from ..files import write_json
from ..limits import rollout_bytes
from .evaluate import run_offline, run_online
from .parallel import run_jobs, tick

DEFAULT_ONLINE = ["random", "optimal", "ucbvi", "psrl", "optql", "qlearning", "rlpfn"]
DEFAULT_OFFLINE = ["vilcb", "certainty-equivalence", "bc", "rlpfn"]
EPSILONS = [0.0, 0.5, 1.0]
DATASET_SIZES = [10, 100]
SEED_GROUP = 5
SEED_STRIDE = 1000
STACK_BYTES = 2**30  # the most memory one stacked grid job's rollout may take (limits.rollout_bytes)


@dataclass
class SuiteConfig:
    """What `rlpfn benchmark` runs; every field is also its command-line option (config.option)."""

    benchmarks: list[BenchmarkName] = option(default_factory=lambda: list(SUITE), metavar="NAME",
                                             help="benchmarks to run (default: the suite)")
    agents: Optional[list[str]] = option(None, metavar="NAME",
                                         help="agents to run, online and offline as each can (default: rlpfn and "
                                              f"every classical agent; choose from {', '.join(AGENTS)}); "
                                              "NAME[KEY=VALUE,...] sets hyperparameters, e.g. "
                                              "'rlpfn[checkpoint=runs/my-model]' runs a model of your own")
    parts: list[Literal["online", "offline"]] = option(default_factory=lambda: ["online", "offline"],
                                                       help="which halves of the suite to run")
    episodes: PositiveInt = option(500, help="online episodes per run")
    seeds: PositiveInt = option(10, help="runs per agent and benchmark")
    seed: NonNegativeInt = option(0, help="base random seed")
    epsilons: list[ClosedUnitInterval] = option(default_factory=lambda: list(EPSILONS), metavar="E",
                                                help="offline datasets: ε of the behaviour (1-ε)·π* + ε·uniform")
    dataset_sizes: list[PositiveInt] = option(default_factory=lambda: list(DATASET_SIZES), metavar="N",
                                              help="offline datasets: episodes in each")
    hindsight: bool = option(False, help="also report each baseline tuned in hindsight (best grid entry per "
                                         "benchmark; an upper bound)")
    workers: PositiveInt = option(2, help="worker processes")
    skip: list[str] = option(default_factory=list, metavar="AGENT:BENCHMARK",
                             help="leave out these pairs, e.g. psrl:taxi (exact PSRL on Taxi's 501 states dominates "
                                  "the run time)")

    def __post_init__(self):
        for key in ("benchmarks", "agents", "epsilons", "dataset_sizes", "parts"):
            values = getattr(self, key) or []
            twice = sorted({str(v) for v in values if values.count(v) > 1})
            if twice:
                raise ConfigError(f"--{key.replace('_', '-')}: {', '.join(twice)} given twice")
        # each label parsed and its agent built once, here: a bad one is refused by name before any work
        object.__setattr__(self, "_parsed", {a: parse_agent(a) for a in self.agents or []})
        for item in self.skip:
            agent, _, bench = item.rpartition(":")
            if (agent not in AGENTS and agent not in self._parsed) or bench not in BENCHMARKS:
                raise ConfigError(f"--skip {item!r} is not AGENT:BENCHMARK with a known agent and benchmark")

    @property
    def online_agents(self) -> list[str]:
        if "online" not in self.parts:
            return []
        return DEFAULT_ONLINE if self.agents is None else [a for a in self.agents if AGENTS[self.agent(a)[0]].online]

    @property
    def offline_agents(self) -> list[str]:
        if "offline" not in self.parts:
            return []
        return DEFAULT_OFFLINE if self.agents is None else [a for a in self.agents if AGENTS[self.agent(a)[0]].offline]

    def agent(self, label: str) -> tuple[str, tuple]:
        """(registry name, hyperparameter overrides as sorted pairs) of an agent label such as 'ucbvi[scale=0.1]'."""
        name, hparams = self._parsed.get(label) or (label, {})
        return name, tuple(sorted(hparams.items()))

    @property
    def skip_pairs(self) -> set[tuple[str, str]]:
        return {tuple(item.rsplit(":", 1)) for item in self.skip}


@dataclass(frozen=True)
class Job:
    kind: str  # "online" or "offline"
    benchmark: str
    agent: str
    label: str
    hparams: tuple = ()  # overrides of the agent's defaults, as sorted (key, value) pairs
    epsilon: float = 0.0
    dataset_episodes: int = 0
    group: int = 0  # online: which group of SEED_GROUP seeds
    n_seeds: int = 0
    grid: tuple = ()  # online: several hparams overrides run as one batch of n_seeds runs each (agents.stacked)

    def cost(self, sizes: dict) -> float:
        S, A, H = sizes[self.benchmark]
        if self.kind == "offline":
            return self.dataset_episodes * H * 1e-3 + S * S * A * H * 1e-7
        weight = {"psrl": S * S * A, "ucbvi": S * A * 8, "rlpfn": S * A * 30, "random": 1, "optimal": 2}.get(self.agent, 4)
        return self.n_seeds * H * (1 + weight * 1e-3) * (1 + 0.02 * len(self.grid))


def _stack_chunks(agent: str, grid: list[tuple], n_seeds: int, cfg: SuiteConfig, size: tuple) -> list[tuple]:
    """An agent's grid split into chunks that can each run as one stacked batch (agents.stacked): entries that agree
    on the agent's `stack_by` hyperparameters, as many as fit STACK_BYTES with n_seeds runs each."""
    S, A, H = size
    k = max(1, int(STACK_BYTES // rollout_bytes(n_seeds, cfg.episodes, H, S, A)))
    groups: dict = {}
    for hp in grid:
        filled = make_agent(agent, **dict(hp))
        groups.setdefault(tuple(getattr(filled, key) for key in filled.stack_by), []).append(hp)
    return [tuple(g[i:i + k]) for g in groups.values() for i in range(0, len(g), k)]


def _jobs(cfg: SuiteConfig, sizes: dict) -> list[Job]:
    from .tune import GRIDS

    jobs = []
    skip = cfg.skip_pairs
    groups = [(g, min(SEED_GROUP, cfg.seeds - g * SEED_GROUP)) for g in range(-(-cfg.seeds // SEED_GROUP))]
    for b in cfg.benchmarks:
        for a in cfg.online_agents:
            if (a, b) in skip:
                continue
            name, hparams = cfg.agent(a)
            jobs += [Job("online", b, name, a, hparams, group=g, n_seeds=n) for g, n in groups]
            if not (cfg.hindsight and a in GRIDS):
                continue
            grid = [tuple(sorted(hp.items())) for hp in GRIDS[a]]
            jobs += [Job("online", b, a, f"{a}@hindsight", grid=chunk, group=g, n_seeds=n)
                     for g, n in groups for chunk in _stack_chunks(a, grid, n, cfg, sizes[b])]
        for a in cfg.offline_agents:
            if (a, b) in skip:
                continue
            name, hparams = cfg.agent(a)
            for eps in cfg.epsilons:
                for n in cfg.dataset_sizes:
                    jobs.append(Job("offline", b, name, a, hparams, eps, n))
                    if cfg.hindsight and a in GRIDS:
                        jobs += [Job("offline", b, a, f"{a}@hindsight", tuple(sorted(hp.items())), eps, n)
                                 for hp in GRIDS[a]]
    return jobs


def _run_job(args):
    """(kind, entries): one entry per hyperparameter setting the job ran (several for a stacked grid)."""
    job, cfg = args
    start = time.time()
    mdp = make_benchmark(job.benchmark)
    if job.grid:
        agent = stacked(job.agent, [dict(hp) for hp in job.grid])
        settings = [entry.hparams() for entry in agent._grid]
        res = run_online(mdp, agent, cfg.episodes, job.n_seeds * len(job.grid), cfg.seed + SEED_STRIDE * job.group,
                         progress=tick)
        runs = [slice(i * job.n_seeds, (i + 1) * job.n_seeds) for i in range(len(job.grid))]
        entries = [{"benchmark": job.benchmark, "agent": job.label, "hparams": hp, "regret": res.regret[r].tolist(),
                    "returns": res.returns[r].tolist()} for hp, r in zip(settings, runs)]
    else:
        agent = make_agent(job.agent, **dict(job.hparams))
        entry = {"benchmark": job.benchmark, "agent": job.label, "hparams": agent.hparams()}
        if job.kind == "online":
            res = run_online(mdp, agent, cfg.episodes, job.n_seeds, cfg.seed + SEED_STRIDE * job.group, progress=tick)
            entry.update(regret=res.regret.tolist(), returns=res.returns.tolist())
        else:
            res = run_offline(mdp, agent, job.epsilon, job.dataset_episodes, cfg.seeds, cfg.seed)
            entry.update(epsilon=job.epsilon, dataset_episodes=job.dataset_episodes,
                         scores=res.scores.tolist(), values=res.values.tolist())
        entries = [entry]
    for entry in entries:  # wall time of this job on one core, shared by the settings it ran
        entry["seconds"] = (time.time() - start) / len(entries)
    return job.kind, entries


def _merge_seed_groups(jobs: list[Job], outputs: list) -> dict:
    """One entry per (benchmark, agent, hyperparameters, setting): seed groups concatenated in
    group order, their seconds summed (the pair's total time on one core)."""
    merged: dict = {}
    for job, (kind, entries) in sorted(zip(jobs, outputs), key=lambda jo: jo[0].group):
        for entry in entries:
            key = (replace(job, group=0, n_seeds=0, hparams=(), grid=()), json.dumps(entry["hparams"], sort_keys=True))
            if key not in merged:
                merged[key] = (kind, entry)
                continue
            whole = merged[key][1]
            for field_ in ("regret", "returns"):
                whole[field_] = whole[field_] + entry[field_]
            whole["seconds"] += entry["seconds"]
    results = {"online": [], "offline": []}
    for kind, entry in merged.values():
        results[kind].append(entry)
    return results


def _keep_best_hindsight(entries: list[dict], kind: str) -> list[dict]:
    """Of the '@hindsight' grid runs, keep per benchmark (and offline setting) the best one."""
    best: dict = {}
    out = []
    for e in entries:
        if not e["agent"].endswith("@hindsight"):
            out.append(e)
            continue
        key = (e["benchmark"], e["agent"], e.get("epsilon"), e.get("dataset_episodes"))
        score = -np.sum(e["regret"], 1).mean() if kind == "online" else np.mean(e["scores"])
        if key not in best or score > best[key][0]:
            best[key] = (score, e)
    return out + [e for _, e in best.values()]


def cell_key(job: Job, cfg: SuiteConfig) -> str:
    """A file name for one job's result that changes with every setting the result depends on."""
    hparams = {**tuned_defaults().get(job.agent, {}), **dict(job.hparams)}
    if issubclass(AGENTS[job.agent], ModelAgent):
        # the model's weights and config, not only its path: a user's model retrained in place, or a new shipped one
        from ..checkpoint import read_config, shipped_path

        path = hparams.get("checkpoint") or shipped_path(AGENTS[job.agent].architecture)
        hparams["checkpoint_meta"] = read_config(path)  # its weights' sha256 and its model config
    settings = {"job": asdict(job), "hparams": hparams,
                "episodes": cfg.episodes if job.kind == "online" else None, "seed": cfg.seed,
                "seeds": cfg.seeds if job.kind == "offline" else job.n_seeds, "version": __version__}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    label = re.sub(r"[^\w.,=@\[\]-]", "_", job.label)[:80]  # a portable file name; the digest keeps it unique
    return f"{job.kind}-{job.benchmark}-{label}-{digest}.json"


def _run_cells(jobs: list[Job], cfg: SuiteConfig, cells: Path | None, progress: bool) -> list:
    """Every job's (kind, entry), each saved to CELLS/<key>.json as it finishes; jobs whose file exists (a
    finished cell of an earlier, interrupted run with the same settings) are read back, not rerun."""
    keys = [cell_key(j, cfg) for j in jobs] if cells is not None else [None] * len(jobs)
    done = {i: tuple(json.loads((cells / k).read_text())) for i, k in enumerate(keys)
            if cells is not None and (cells / k).is_file()}
    todo = [i for i in range(len(jobs)) if i not in done]
    if done:
        print(f"resuming: {len(done)} of {len(jobs)} cells already done in {cells}", file=sys.stderr)

    def save(n: int, result) -> None:
        if cells is not None:
            write_json(cells / keys[todo[n]], list(result))

    # the bar counts episodes (online jobs tick once per episode of all their seeds; an offline job is one)
    sizes = [cfg.episodes if jobs[i].kind == "online" else 1 for i in todo]
    outputs = run_jobs(_run_job, [(jobs[i], cfg) for i in todo], cfg.workers, "benchmark", progress, save, sizes,
                       unit="ep")
    done.update(zip(todo, outputs))
    return [done[i] for i in range(len(jobs))]


def run_suite(cfg: SuiteConfig, progress: bool = True, cells: Path | None = None) -> dict:
    """The whole suite; with `cells`, a folder where each finished job is saved at once and from which a rerun
    with the same settings resumes."""
    start = time.time()
    if cells is not None:
        cells.mkdir(parents=True, exist_ok=True)
    mdps = {b: make_benchmark(b) for b in cfg.benchmarks}
    sizes = {b: (m.n_states, m.n_actions, m.horizon) for b, m in mdps.items()}
    info = {}
    for b, m in mdps.items():
        sol = m.solution
        info[b] = {"S": m.n_states, "A": m.n_actions, "H": m.horizon, "v_star": sol.v_star.item(),
                   "v_random": sol.v_random.item()}
    jobs = sorted(_jobs(cfg, sizes), key=lambda j: -j.cost(sizes))
    outputs = _run_cells(jobs, cfg, cells, progress)
    results = _merge_seed_groups(jobs, outputs)
    order = {(b, a): i for i, (b, a) in enumerate((b, a) for b in cfg.benchmarks
                                                   for a in cfg.online_agents + cfg.offline_agents)}

    def key(e):
        base = e["agent"].split("@")[0]
        return (order.get((e["benchmark"], base), 0), e["agent"], e.get("epsilon", 0), e.get("dataset_episodes", 0))

    online = sorted(_keep_best_hindsight(results["online"], "online"), key=key)
    offline = sorted(_keep_best_hindsight(results["offline"], "offline"), key=key)
    config = {
        "episodes": cfg.episodes, "seeds": cfg.seeds, "seed": cfg.seed, "benchmarks": cfg.benchmarks,
        "online_agents": cfg.online_agents, "offline_agents": cfg.offline_agents, "epsilons": cfg.epsilons,
        "dataset_sizes": cfg.dataset_sizes, "parts": cfg.parts, "hindsight": cfg.hindsight, "workers": cfg.workers,
        "skipped": list(cfg.skip), "seed_group": SEED_GROUP, "seed_stride": SEED_STRIDE,
        "wall_time_s": time.time() - start,
    }
    return {"config": config, "benchmarks": info, "online": online, "offline": offline}
