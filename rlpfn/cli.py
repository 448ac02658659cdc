"""The `rlpfn` command line. Every user error is one line on stderr and exit code 2."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt

from .agents import OFFLINE_AGENTS, AgentName
from .config import add_options, from_namespace, one_line, option, parse_assignments
from .errors import UserError
from .experiments.reference_check import EPISODES as REFERENCE_EPISODES, SEEDS as REFERENCE_SEEDS
from .experiments.suite import SuiteConfig
from .experiments.tune import GRIDS, TuneConfig
from .experiments.validate import ValidationConfig
from .files import check_output_dir, check_output_file, write_json, write_npz
from .resources import builtin_names

EXIT_USAGE = 2
OfflineAgentName = Literal[tuple(OFFLINE_AGENTS)]
TunableName = Literal[tuple(GRIDS)]


class CLIError(UserError):
    """A bad combination of command-line options."""


def _fmt(mean, ci) -> str:
    return f"{mean:.4g} ± {ci:.2g}"


# ---- commands --------------------------------------------------------------------------------
def cmd_benchmarks(args) -> None:
    from .benchmarks import BENCHMARKS, SUITE, make_benchmark

    names = SUITE if not args.all else list(BENCHMARKS)
    print(f"{'name':<20} {'S':>5} {'A':>3} {'H':>5} {'V*':>10} {'V_random':>10}  source")
    for name in names:
        mdp = make_benchmark(name)
        sol = mdp.solution
        source = mdp.meta.get("env_id") or mdp.meta.get("source", "")
        print(f"{name:<20} {mdp.n_states:>5} {mdp.n_actions:>3} {mdp.horizon:>5} {sol.v_star.item():>10.4f} "
              f"{sol.v_random.item():>10.4f}  {source}")


def _agent_from_args(args, offline: bool):
    from .agents import make_agent

    agent = make_agent(args.agent, **parse_assignments(args.set, "--set"))
    if not (agent.offline if offline else agent.online):
        kind = "an offline" if agent.offline else "an online"
        use = "rlpfn offline" if agent.offline else "rlpfn solve"
        raise CLIError(f"agent {args.agent!r} is {kind} agent: use `{use}`")
    return agent


def cmd_solve(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from tqdm import tqdm

    from .experiments.evaluate import run_online
    from .metrics import episodes_to_solve, mean_ci
    from .resolve import load_mdp

    mdp = load_mdp(args.mdp, args.horizon, parse_assignments(args.env_kwargs, "--env-kwargs"))
    agent = _agent_from_args(args, offline=False)
    v_star, v_random = (v.item() for v in (mdp.solution.v_star, mdp.solution.v_random))
    with tqdm(total=args.episodes, desc=f"{agent.name} on {mdp.name}", unit="ep", disable=args.quiet) as bar:
        res = run_online(mdp, agent, args.episodes, args.seeds, args.seed, progress=bar.update)
    last = res.returns[:, -10:].mean(1)
    cum = res.regret.sum(1)
    solved = episodes_to_solve(res.returns, v_star, v_random)
    reached = np.isfinite(solved)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}")
    print(f"agent {agent.name} {agent.hparams()}, {args.episodes} episodes x {args.seeds} seeds")
    print(f"V*                         {v_star:.4f}   (uniform random: {v_random:.4f})")
    print(f"mean return, last 10 ep.   {_fmt(*mean_ci(last))}")
    print(f"cumulative regret          {_fmt(*mean_ci(cum))}   (mean ± 95% CI over seeds)")
    if reached.any():
        print(f"episodes to solve          median {np.median(solved[reached]):.0f}, reached by {reached.sum()}/{len(solved)} runs")
    else:
        print(f"episodes to solve          not reached by any of {len(solved)} runs")
    if args.json:
        write_json(args.json, {
            "mdp": mdp.name, "S": mdp.n_states, "A": mdp.n_actions, "H": mdp.horizon,
            "v_star": v_star, "v_random": v_random, "agent": agent.name, "hparams": agent.hparams(),
            "episodes": args.episodes, "seeds": args.seeds, "seed": args.seed,
            "returns": res.returns.tolist(), "regret": res.regret.tolist(),
        })
        print(f"wrote {args.json}")


def cmd_offline(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from .experiments.evaluate import run_offline
    from .metrics import mean_ci
    from .resolve import load_mdp

    mdp = load_mdp(args.mdp, args.horizon, parse_assignments(args.env_kwargs, "--env-kwargs"))
    agent = _agent_from_args(args, offline=True)
    v_star, v_random = (v.item() for v in (mdp.solution.v_star, mdp.solution.v_random))
    res = run_offline(mdp, agent, args.behavior_epsilon, args.dataset_episodes, args.seeds, args.seed)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}; V* {v_star:.4f}, V_random {v_random:.4f}")
    print(f"agent {agent.name} {agent.hparams()}; data: {args.dataset_episodes} episodes of "
          f"(1-ε)·π* + ε·uniform, ε = {args.behavior_epsilon}; {args.seeds} seeds")
    print(f"policy value               {_fmt(*mean_ci(res.values))}")
    print(f"normalized score           {_fmt(*mean_ci(res.scores))}   (1 = optimal, 0 = uniform random)")
    if args.json:
        write_json(args.json, {
            "mdp": mdp.name, "v_star": v_star, "v_random": v_random, "agent": agent.name,
            "hparams": agent.hparams(), "behavior_epsilon": args.behavior_epsilon,
            "dataset_episodes": args.dataset_episodes, "seeds": args.seeds, "seed": args.seed,
            "scores": res.scores.tolist(), "values": res.values.tolist(),
        })
        print(f"wrote {args.json}")


def cmd_benchmark(args: "BenchmarkOptions") -> None:
    from .experiments.report import write_report
    from .experiments.suite import run_suite

    out = check_output_dir(args.out)  # before any work
    cells = out / "cells"
    if args.overwrite and cells.is_dir():
        shutil.rmtree(cells)
    results = run_suite(args, progress=not args.quiet, cells=cells)
    results["config"]["command"] = _Command.text
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    paths = write_report(results, out)
    print(f"wall time {results['config']['wall_time_s']:.0f} s; wrote {out / 'results.json'}, "
          + ", ".join(str(p) for p in paths))
    print((out / "results.md").read_text())


def cmd_tune(args: "TuneOptions") -> None:
    from .experiments.tune import save_tuned, tune

    if not args.dry_run:
        check_output_file(args.out, "--out")  # before any work
    agents = args.agents or list(GRIDS)
    cfg = TuneConfig(**{f.name: getattr(args, f.name) for f in fields(TuneConfig)})
    start = time.time()
    record = tune(agents, cfg, workers=args.workers, progress=not args.quiet)
    for a, r in record.items():
        print(f"{a:<10} best {r['hparams']}  score {r['score']:.4f}  ({r['objective']})")
        for g in r["grid"]:
            print(f"    {str(g['hparams']):<60} {g['score']:.4f} ± {g['sem']:.4f}")
    print(f"tuning took {time.time() - start:.0f} s")
    if args.dry_run:
        return
    command = _Command.text
    path = Path(args.out)
    save_tuned(record, cfg, command, path)
    print(f"saved defaults to {path}")


def cmd_check_baselines(args) -> None:
    from .experiments.reference_check import check, format_rows

    start = time.time()
    rows = check(args.episodes, args.seeds, args.seed, args.workers, progress=not args.quiet)
    print(format_rows(rows))
    print(f"({args.episodes} episodes, {args.seeds} seeds, H = 20; {time.time() - start:.0f} s)")


def cmd_prior_sample(args) -> None:
    from tqdm import tqdm

    from .prior.sampler import sample_prior_mdps
    from .prior.spec import load_spec

    spec = load_spec(args.spec)
    out = check_output_dir(args.out)  # before any work
    # Everything is sampled before anything is written: an error leaves no half-filled directory.
    with tqdm(total=args.n, desc="sampling", disable=args.quiet, leave=False) as bar:
        mdps = sample_prior_mdps(spec, args.n, args.seed, bar.update)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for mdp in mdps:
        mdp.save(out / f"{mdp.name}.npz")
        index.append({"file": f"{mdp.name}.npz", "S": mdp.n_states, "A": mdp.n_actions, "H": mdp.horizon,
                      "family": str(mdp.meta["family"]), "reward_kind": str(mdp.meta["reward_kind"]),
                      "v_star": mdp.solution.v_star.item(), "v_random": mdp.solution.v_random.item(),
                      "stochastic_rewards": bool(mdp.outcomes is not None or (mdp.R_std > 0).any())})
    cmd = _Command.text
    write_json(out / "index.json", {"spec": spec.source, "seed": args.seed, "command": cmd, "mdps": index})
    print(f"wrote {len(mdps)} MDPs from {spec.source} (seed {args.seed}) to {out}/, listed in {out}/index.json")


def cmd_prior_bench(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from tqdm import tqdm

    from .prior.speed import time_batches, time_loader, time_mdp_sampling
    from .prior.spec import load_spec

    spec = load_spec(args.spec)
    print(f"prior {spec.name} ({spec.source}), batch size {args.batch_size}, one process, one torch thread")
    m = time_mdp_sampling(spec, args.mdps, args.batch_size, args.seed)
    print(f"MDP samples (with exact Q* targets): {m['mdps_per_s']:.0f} MDPs/s ({m['mdps']} MDPs in {m['seconds']:.1f} s)")
    with tqdm(total=args.batches, desc="batches", disable=args.quiet, leave=False) as bar:
        b = time_batches(spec, args.batches, args.batch_size, args.seed, bar.update)
    print(f"batches (MDPs + traces + targets): {b['batches_per_s']:.2f} batches/s, "
          f"{b['contexts_per_s']:.0f} contexts/s; per batch median {b['median_s']:.3f} s, 90th percentile "
          f"{b['p90_s']:.3f} s ({b['batches']} batches, largest S={b['largest']['S']}, A={b['largest']['A']}, "
          f"H={b['largest']['H']})")
    for name, v in b["per_behaviour"].items():
        print(f"  {name:<10} {v['mean_s']:.3f} s per batch ({v['batches']} batches)")
    if args.workers:
        w = time_loader(spec, args.batches, args.batch_size, args.seed, args.workers, args.train_step)
        print(f"background DataLoader, {w['workers']} worker(s), against a simulated {w['train_step_s']:.2f} s "
              f"training step: {w['steps_per_s']:.2f} steps/s, waiting {w['mean_wait_s']:.3f} s per step for data "
              f"({100 * w['wait_fraction']:.1f}% of the time)")
    if args.json:
        write_json(args.json, {"spec": spec.source, "mdp_sampling": m, "batches": b,
                               **({"loader": w} if args.workers else {})})


def cmd_solve_offline(args) -> None:
    from .zero_shot import load_transitions, solve_offline

    out = check_output_file(args.out, "--out")  # before any work
    bounds = tuple(args.reward_bounds) if args.reward_bounds else None
    log = load_transitions(args.transitions, bounds)
    pi = solve_offline(log, args.agent)
    visited = log.visited
    write_npz(out, policy=pi, greedy_action=pi.argmax(-1), visited_states=visited)
    H, S, A = pi.shape
    print(f"{args.transitions}: {log.n_transitions} transitions, S={S} A={A} H={H}; "
          f"{int(visited.sum())}/{S} states visited; agent {args.agent}")
    print(f"wrote {out}: policy [H,S,A], greedy_action [H,S], visited_states [S]")


def cmd_validate(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from .agents import parse_agent
    from .metrics import mean_ci

    from .experiments.validate import RLPFN_VARIANTS, validate

    cfg = ValidationConfig(**{f.name: getattr(args, f.name) for f in fields(ValidationConfig)})
    agents = {}
    for name in args.agents:
        if name == "rlpfn-variants":
            agents.update({k: ("rlpfn", v) for k, v in RLPFN_VARIANTS.items()})
        elif name in RLPFN_VARIANTS:
            agents[name] = ("rlpfn", RLPFN_VARIANTS[name])
        else:
            agents[name] = parse_agent(name, online=True)  # a bad name, key or value: refused before any work
    res = validate(agents, cfg, args.workers, progress=not args.quiet)
    ref = res.get("ucbvi")
    runs = f" × {cfg.rollouts} rollouts (the mean per MDP)" if cfg.rollouts > 1 else ""
    print(f"held-out prior {args.prior!r}: {cfg.batches * 8} MDPs{runs}, {cfg.episodes} episodes; normalized "
          "cumulative regret (mean ± 95% CI over MDPs; lower is better)")
    width = max(24, *map(len, res))
    for label, r in sorted(res.items(), key=lambda kv: kv[1].mean()):
        line = f"  {label:<{width}} {_fmt(*mean_ci(r))}"
        if ref is not None and label != "ucbvi":
            line += (f"   minus UCB-VI (paired) {_fmt(*mean_ci(r - ref))}, ratio {r.mean() / ref.mean():.2f}, "
                     f"below it on {np.mean(r < ref):.0%} of MDPs")
        print(line)
    if args.json:
        from dataclasses import asdict

        from .experiments.validate import write_regrets

        write_regrets(args.json, asdict(cfg), agents, res)
        print(f"wrote {args.json}")


def cmd_latency(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from .experiments.latency import episode_times, measure
    from .resolve import load_mdp

    mdp = load_mdp(args.mdp, env_kwargs=parse_assignments(args.env_kwargs, "--env-kwargs"))
    rows = measure(mdp, args.sizes, args.repeats, args.checkpoint, args.ad_checkpoint)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}; one decision after N past "
          f"transitions: median time of {args.repeats}, peak memory allocated during it; one thread")
    print(f"{'N':>7} {'rlpfn':>10} {'memory':>9} {'AD':>10} {'memory':>9}  {'AD reads':<28} {'UCB-VI plan/episode':>20} "
          f"{'memory':>9}")
    mib = lambda b: f"{b / 2**20:6.1f} MiB" if b >= 2**20 else f"{b / 2**10:6.1f} KiB"  # noqa: E731
    for r in rows:
        reads = f"{r['ad_tokens']} tokens" + (f" (window: last {r['ad_window']})" if r["ad_tokens"] < r["transitions"] + 1
                                              else "")
        print(f"{r['transitions']:>7} {r['rlpfn_decision_s'] * 1e3:>7.2f} ms {mib(r['rlpfn_peak_bytes'])} "
              f"{r['ad_decision_s'] * 1e3:>7.2f} ms {mib(r['ad_peak_bytes'])}  {reads:<28} "
              f"{r['ucbvi_plan_per_episode_s'] * 1e3:>17.2f} ms {mib(r['ucbvi_peak_bytes'])}")
    print("rlpfn: one forward pass, one decision with refresh=step, or one episode's policy table with the default "
          "refresh=local (which adds one backup of the visited pair per step, no pass). AD: one pass over its "
          "window, every decision; past the window it forgets the older history (truncated).")
    per_episode = {}
    if args.episodes:
        per_episode = episode_times(mdp, args.episodes, args.repeats, args.checkpoint)
        print(f"wall time per episode over the first {args.episodes} episodes (one run, from scratch, median of "
              f"{args.repeats}): rlpfn "
              f"{per_episode['rlpfn']:.3f} s, UCB-VI {per_episode['ucbvi']:.3f} s, "
              f"ratio {per_episode['rlpfn'] / per_episode['ucbvi']:.1f}")
    if args.json:
        write_json(args.json, {"mdp": mdp.name, "rows": rows, "seconds_per_episode": per_episode})
        print(f"wrote {args.json}")


def cmd_pretrain(argv: list[str]) -> None:
    from .train import parse_pretrain_args, pretrain

    cfg, resume = parse_pretrain_args(argv)
    path = pretrain(cfg, resume=resume, command=_Command.text)
    print(f"wrote {path} (and {path.with_suffix('.safetensors')})")


# ---- options: one dataclass per command; each field is its option (config.option), declared once ----------
@dataclass(kw_only=True)
class BenchmarksOptions:
    all: bool = option(False, help="also list the reference MDPs used by check-baselines")


@dataclass(kw_only=True)
class RunOptions:
    """Options shared by `solve` and `offline`."""

    mdp: str = option(positional=True, metavar="MDP", help="benchmark name, .npz path or gymnasium id")
    agent: AgentName = option(help="agent name; rlpfn is the pretrained model (online and offline); vilcb, "
                                   "certainty-equivalence and bc are offline only")
    set: list[str] = option(default_factory=list, metavar="KEY=VALUE",
                            help="override hyperparameters, e.g. --set scale=0.3 bonus=bernstein")
    env_kwargs: list[str] = option(default_factory=list, metavar="KEY=VALUE",
                                   help="options of a gymnasium environment, e.g. --env-kwargs map_name=8x8 "
                                        "is_slippery=false (values read as YAML scalars)")
    seeds: PositiveInt = option(10, help="independent runs")
    seed: NonNegativeInt = option(0, help="base random seed")
    horizon: Optional[PositiveInt] = option(None, help="override the MDP's horizon H (needed for an environment "
                                                       "without a time limit)")
    json: Optional[str] = option(None, metavar="OUT", help="write the full per-seed results to this JSON file")


@dataclass(kw_only=True)
class SolveOptions(RunOptions):
    episodes: PositiveInt = option(500, help="episodes per run")
    quiet: bool = option(False, help="no progress bar")


@dataclass(kw_only=True)
class OfflineOptions(RunOptions):
    behavior_epsilon: ClosedUnitInterval = option(metavar="E", help="ε of the behaviour policy: 0 expert, 0.5 "
                                                                   "medium, 1 uniform random")
    dataset_episodes: PositiveInt = option(metavar="N", help="episodes in each dataset")


@dataclass(kw_only=True)
class BenchmarkOptions(SuiteConfig):
    out: str = option("results", help="output directory; each finished (agent, benchmark) cell is saved in OUT/cells "
                                      "at once, and a rerun into the same folder reuses the cells whose settings "
                                      "match (resuming an interrupted run)")
    overwrite: bool = option(False, help="discard the saved cells in OUT/cells and run everything again")
    quiet: bool = option(False, help="no progress bar")


@dataclass(frozen=True, kw_only=True)
class TuneOptions(TuneConfig):
    agents: Optional[list[TunableName]] = option(None, metavar="NAME", help="agents to tune (default: all with a grid)")
    workers: PositiveInt = option(2, help="worker processes")
    out: str = option("tuned.json", help="where to save the defaults, the shipped ones with these merged in (copy it "
                                         "to rlpfn/data/tuned.json to ship it)")
    dry_run: bool = option(False, help="print the scores, save nothing")
    quiet: bool = option(False, help="no progress bar")


@dataclass(kw_only=True)
class CheckBaselinesOptions:
    episodes: PositiveInt = option(REFERENCE_EPISODES, help="episodes per run")
    seeds: PositiveInt = option(REFERENCE_SEEDS, help="runs")
    seed: NonNegativeInt = option(0, help="base random seed")
    workers: PositiveInt = option(2, help="worker processes")
    quiet: bool = option(False, help="no progress bar")


@dataclass(kw_only=True)
class SolveOfflineOptions:
    transitions: str = option(positional=True, metavar="TRANSITIONS", help="the log, an .npz file")
    agent: OfflineAgentName = option("rlpfn", help="offline agent")
    out: str = option("policy.npz", help="where to write the policy (an .npz file)")
    reward_bounds: Optional[list[float]] = option(None, nargs=2, metavar=("LOW", "HIGH"),
                                                  help="the range rewards can take (default: from the log, with 0 "
                                                       "included)")

    def __post_init__(self):
        if self.reward_bounds is not None and not self.reward_bounds[1] > self.reward_bounds[0]:
            raise CLIError(f"--reward-bounds must be LOW HIGH with HIGH > LOW, got {self.reward_bounds[0]} "
                           f"{self.reward_bounds[1]}")
        if Path(self.out).suffix != ".npz":
            raise CLIError(f"--out must end in .npz, got {self.out}")


@dataclass(kw_only=True)
class ValidateOptions(ValidationConfig):
    agents: list[str] = option(default_factory=lambda: ["ucbvi", "rlpfn-variants"], metavar="NAME",
                               help="online agents, rlpfn variants such as 'rlpfn[step,argmax]', "
                                    "rlpfn-variants for all of them, or an agent with hyperparameters set, e.g. "
                                    "'ucbvi[scale=0.03,h_term=0.01]' (the others keep their tuned defaults)")
    workers: PositiveInt = option(2, help="worker processes")
    json: Optional[str] = option(None, metavar="OUT", help="also write per-MDP regrets to this JSON file")
    quiet: bool = option(False, help="no progress bar")


@dataclass(kw_only=True)
class LatencyOptions:
    mdp: str = option("taxi", positional=True, metavar="MDP", help="benchmark name, .npz or gymnasium id")
    env_kwargs: list[str] = option(default_factory=list, metavar="KEY=VALUE",
                                   help="options of a gymnasium environment (values read as YAML scalars)")
    sizes: list[PositiveInt] = option(default_factory=lambda: [100, 1000, 10_000, 100_000], metavar="N",
                                      help="history sizes (transitions)")
    repeats: PositiveInt = option(10, help="timed repeats, median reported")
    episodes: NonNegativeInt = option(3, help="also time this many whole episodes of rlpfn (default refresh rule) "
                                              "and UCB-VI acting from scratch, per episode (0: skip)")
    checkpoint: Optional[str] = option(None, help="model checkpoint (default: the shipped one)")
    ad_checkpoint: Optional[str] = option(None, help="AD model checkpoint (default: the shipped ad-v1)")
    json: Optional[str] = option(None, metavar="OUT", help="also write the figures to this JSON file")


@dataclass(kw_only=True)
class PriorSampleOptions:
    spec: str = option(positional=True, metavar="SPEC",
                       help=f"prior spec: a YAML path or a built-in name ({', '.join(builtin_names('priors'))})")
    n: PositiveInt = option(help="number of MDPs")
    seed: NonNegativeInt = option(0, help="random seed")
    out: str = option(metavar="DIR", help="output directory (created if missing)")
    quiet: bool = option(False, help="no progress bar")


@dataclass(kw_only=True)
class PriorBenchOptions:
    spec: str = option("default", positional=True, metavar="SPEC", help="prior spec")
    batch_size: PositiveInt = option(64, help="contexts per batch")
    batches: PositiveInt = option(40, help="batches to time")
    mdps: PositiveInt = option(512, help="MDPs to time sampling on")
    workers: NonNegativeInt = option(1, help="also check that a DataLoader with this many background workers keeps "
                                             "up with training (0 skips the check)")
    train_step: PositiveFloat = option(0.3, metavar="SECONDS",
                                       help="simulated training step for --workers, single-threaded compute (0.3: a "
                                            "4-layer, width-128 attention model on a 64-MDP batch on a 2-core machine)")
    seed: NonNegativeInt = option(0, help="random seed")
    json: Optional[str] = option(None, metavar="OUT", help="also write the figures to this JSON file")
    quiet: bool = option(False, help="no progress bar")


# (name, options, function, help, description); "prior" has subcommands, "pretrain" its own parser.
COMMANDS = [
    ("benchmarks", BenchmarksOptions, cmd_benchmarks, "list the benchmark MDPs with S, A, H, V* and the random "
     "policy's value", "List the benchmark suite: states, actions, horizon, optimal value V* and the uniform-random "
     "policy's value, both from the initial-state distribution."),
    ("solve", SolveOptions, cmd_solve, "run an online agent on an MDP and report regret and returns",
     "Run an online agent for K episodes in N independent runs (batched) and report V*, the mean return of the last "
     "10 episodes, cumulative regret (mean ± 95% CI over seeds; per-episode regret is Σ_h V*_h(s_h) − Q*_h(s_h,a_h), "
     "an unbiased low-variance estimate of V* − V^π_k) and episodes to solve (first episode whose 10-episode running "
     "mean is 90% of the way from V_random to V*)."),
    ("offline", OfflineOptions, cmd_offline, "fit an offline agent on a dataset from an ε-optimal behaviour policy",
     "Collect datasets with the behaviour policy (1−ε)·π* + ε·uniform, fit an offline agent on each, and report the "
     "normalized score (V^π − V_random)/(V* − V_random)."),
    ("benchmark", BenchmarkOptions, cmd_benchmark, "the whole suite x agents, online and offline; writes JSON, "
     "Markdown and plots", "Run every benchmark with every agent (online: K episodes; offline: datasets from "
     "(1−ε)·π* + ε·uniform) and write results.json, results.md, regret_curves.png and aggregate_iqm.png into --out."),
    ("tune", TuneOptions, cmd_tune, "choose baseline hyperparameters on random prior MDPs (never the benchmarks)",
     "Score each agent's grid on MDPs sampled from a prior spec (by default the pretraining prior, the built-in "
     "spec `default`) and save the best as defaults in --out (the shipped tuned.json with these merged in), "
     "together with this command."),
    ("check-baselines", CheckBaselinesOptions, cmd_check_baselines, "reproduce docs/reference.md's UCB-VI and PSRL "
     "regrets", "UCB-VI (c = 0.1, 1) and PSRL (α0 = 0.1, 1) on rlberry Chain(10, 0.1), rlberry GridWorld 5x5 and "
     "RiverSwim, H = 20, against the reference regrets."),
    ("solve-offline", SolveOfflineOptions, cmd_solve_offline, "extract a policy from a transition log (.npz) with an "
     "offline agent", "Read a transition log TRANSITIONS.npz (arrays obs, action, reward, next_obs, optional "
     "terminated, and scalars n_states, n_actions, horizon), build its statistic and write the policy table "
     "[H,S,A] an offline agent extracts from it."),
    ("validate", ValidateOptions, cmd_validate, "regret of agents on held-out prior MDPs (how rlpfn's defaults are "
     "chosen)", "Run agents online on MDPs from a held-out prior split and print their normalized cumulative regret "
     "(1 = uniform random throughout). 'rlpfn-variants' runs every refresh (episode, step) x acting (argmax, "
     "sample) x monotone (on, off) option of the rlpfn agent, and the new-pair and local refreshes (argmax)."),
    ("latency", LatencyOptions, cmd_latency, "the models' time and memory per decision against history length, beside UCB-VI's "
     "planning", "Give each agent a history of random transitions on one MDP and time one decision of the rlpfn "
     "agent (one forward pass on the statistic) and of the AD agent (one pass over its window of raw transitions), "
     "and one UCB-VI planning pass (its per-episode cost), with the peak memory each allocates."),
]
PRIOR_COMMANDS = [
    ("sample", PriorSampleOptions, cmd_prior_sample, "write N sampled MDPs as .npz files (solve them with `rlpfn "
     "solve`)", "Sample N MDPs from SPEC (each with its own S, A, H, family and rewards) and write them as "
     "DIR/<spec>-<i>-<family>.npz, plus DIR/index.json listing each file's family, S, A, H, V* and V_random."),
    ("bench", PriorBenchOptions, cmd_prior_bench, "time the data engine: MDP samples/s and batches/s",
     "Time MDP sampling with exact targets (MDPs/s) and whole pretraining batches (MDPs, behaviour traces, "
     "statistics, targets; batches/s) in one process, and optionally the throughput of background DataLoader "
     "workers."),
]


def _parser(description: str, prog: str | None = None):
    from jsonargparse import ArgumentParser

    return ArgumentParser(prog=prog, description=description, exit_on_error=False, default_env=False)


def build_parser():
    """The whole command line, generated from the option dataclasses above (jsonargparse checks every value
    against its field's type; `rlpfn pretrain` gets its options from the pretraining config dataclasses)."""
    from .train import PRETRAIN_HELP

    top = _parser("rlpfn: a model pretrained on random tabular MDPs that solves new ones in context (`--agent "
                  "rlpfn`, `solve-offline`, `pretrain`, `validate`, `latency`); tabular MDPs, exact planning, a "
                  "benchmark suite and classical baselines (UCB-VI, PSRL, optimistic and ε-greedy Q-learning; "
                  "offline VI-LCB, certainty equivalence, BC), and the pretraining prior (`rlpfn prior`). MDP "
                  "arguments accept a benchmark name (see `rlpfn benchmarks`), a path to an .npz MDP (keys P "
                  "[S,A,S], R [S,A], mu0 [S], horizon; optional R_std, r_min, r_max, name), or a gymnasium id with "
                  "transition tables such as FrozenLake-v1 or Taxi-v4.", prog="rlpfn")
    commands = top.add_subcommands(dest="command", required=True)
    for name, cls, _, help_, description in COMMANDS:
        sp = _parser(description)
        add_options(sp, cls)
        commands.add_subcommand(name, sp, help=help_)
    prior = _parser(f"Prior specs are YAML files (built in: {', '.join(builtin_names('priors'))}, in "
                    "rlpfn/data/priors/); SPEC is a path or the name of a built-in spec.")
    commands.add_subcommand("prior", prior, help="the pretraining prior: sample MDPs from a spec, or time the data "
                                                 "engine")
    prior_commands = prior.add_subcommands(dest="prior_command", required=True)
    for name, cls, _, help_, description in PRIOR_COMMANDS:
        sp = _parser(description)
        add_options(sp, cls)
        prior_commands.add_subcommand(name, sp, help=help_)
    # `rlpfn pretrain` is parsed by train.parse_pretrain_args (config files, built-in names); listed here for --help
    commands.add_subcommand("pretrain", _parser(PRETRAIN_HELP), help="pretrain the model on a prior (Lightning); "
                                                                      "checkpoints and resumes")
    return top


def _key_value_lists_end_at_plain_words(argv: list[str]) -> list[str]:
    """`--set a=1 b=2 my_mdp.npz`: a KEY=VALUE list ends at the first word without '=', which is a positional
    argument (the MDP), not one more KEY=VALUE."""
    kv_options = {"--" + f.name.replace("_", "-") for _, cls, *_ in COMMANDS for f in fields(cls)
                  if f.metadata.get("metavar") == "KEY=VALUE"}
    out, moved, in_list = [], [], False
    for word in argv:
        if word in kv_options:
            in_list = True
        elif word.startswith("-"):
            in_list = False
        elif in_list and "=" not in word:
            moved.append(word)
            in_list = False
            continue
        out.append(word)
    return out + moved


def _parse(argv: list[str]):
    """(command function, its options) from argv; every bad value is a one-line CLIError naming the option."""
    parser = build_parser()
    try:
        ns = parser.parse_args(_key_value_lists_end_at_plain_words(argv))
    except SystemExit:  # --help
        raise
    except Exception as e:  # jsonargparse's ArgumentError; __post_init__ checks
        if isinstance(e, UserError):
            raise
        raise CLIError(_option_message(one_line(e))) from None
    table, sub = (PRIOR_COMMANDS, ns.prior[ns.prior.prior_command]) if ns.command == "prior" else (COMMANDS, ns[ns.command])
    name = ns.prior.prior_command if ns.command == "prior" else ns.command
    _, cls, fn, _, _ = next(c for c in table if c[0] == name)
    try:
        return fn, from_namespace(cls, sub)
    except UserError:
        raise
    except ValueError as e:  # a check in a config dataclass
        raise CLIError(str(e)) from None


def _option_message(msg: str) -> str:
    """jsonargparse's 'Parser key "dataset_episodes": ...' as '--dataset-episodes: ...'."""
    msg = re.sub(r'Parser key "(?:[\w-]+\.)*(\w+)"( element \d+)?:?', lambda m: "--" + m.group(1).replace("_", "-")
                 + (m.group(2) or "") + ":", msg)
    if "arguments are required" in msg:  # "offline.behavior_epsilon" -> "--behavior-epsilon"; positionals by name
        positional = {f.name: f.metadata["metavar"] for _, cls, *_ in COMMANDS + PRIOR_COMMANDS for f in fields(cls)
                      if f.metadata.get("positional")}
        msg = re.sub(r"(?:--)?(?:[\w-]+\.)*(\w+)", lambda m: positional.get(m.group(1)) or
                     "--" + m.group(1).replace("_", "-") if "." in m.group(0) or m.group(0).startswith("--")
                     else m.group(0), msg)
    return msg


class _Command:
    """The command line being run, as typed (recorded in results.json, tuned.json and checkpoints)."""

    text = "rlpfn"


STOP_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it


class _Stop:
    """Ctrl-C (SIGINT) and SIGTERM stop a command the same quiet way: the signal becomes a KeyboardInterrupt in
    the main process (pretraining then writes its resume checkpoint, the benchmark has saved its finished
    cells), and main prints one line and returns 130 or 143."""

    received: int | None = None

    @classmethod
    def handler(cls, signum, frame):
        cls.received = signum
        raise KeyboardInterrupt

    @classmethod
    def install(cls) -> dict:
        """Install the handlers; returns the previous ones, for `restore`."""
        cls.received = None
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, cls.handler) for sig in STOP_CODES}

    @staticmethod
    def restore(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(argv: list[str]) -> int:
    sig = _Stop.received or signal.SIGINT
    kept = {"pretrain": "--resume continues from its last checkpoint, if one was written",
            "benchmark": "finished cells are saved in OUT/cells; the same command resumes"}.get(argv[0] if argv else "",
                                                                                         "nothing was written")
    print(f"rlpfn: stopped by {signal.Signals(sig).name}; {kept}", file=sys.stderr)
    return STOP_CODES[sig]


def main(argv: list[str] | None = None) -> int:
    from .threads import use_one_thread

    use_one_thread()
    argv = sys.argv[1:] if argv is None else list(argv)
    _Command.text = "rlpfn " + " ".join(shlex.quote(a) for a in argv)
    previous = _Stop.install()
    try:
        if argv[:1] == ["pretrain"]:
            cmd_pretrain(argv[1:])
        else:
            fn, options = _parse(argv)
            fn(options)
    except UserError as e:  # bad input: one line; anything else is a bug and keeps its traceback
        print(f"rlpfn: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _stopped(argv)
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`): nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown flushes it
        return 0
    except SystemExit:
        if _Stop.received is not None:  # Lightning turns an interrupt into SystemExit(1) after its shutdown
            return _stopped(argv)
        raise
    finally:
        _Stop.restore(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
