"""The `rlpfn` command line. Every user error is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import check_output_file, write_json

EXIT_USAGE = 2


class CLIError(UserError):
    """A bad combination of command-line options."""


# ---- argument types --------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {v}")
    return v


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
        print(f"{name:<20} {mdp.n_states:>5} {mdp.n_actions:>3} {mdp.horizon:>5} {sol.v_star:>10.4f} "
              f"{sol.v_random:>10.4f}  {source}")


def _agent_from_args(args, offline: bool):
    from .agents import make_agent, parse_hparams

    agent = make_agent(args.agent, **parse_hparams(args.set))
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

    mdp = load_mdp(args.mdp, args.horizon)
    agent = _agent_from_args(args, offline=False)
    sol = mdp.solution
    with tqdm(total=args.episodes, desc=f"{agent.name} on {mdp.name}", unit="ep", disable=args.quiet) as bar:
        res = run_online(mdp, agent, args.episodes, args.seeds, args.seed, progress=bar.update)
    last = res.returns[:, -10:].mean(1)
    cum = res.regret.sum(1)
    solved = episodes_to_solve(res.returns, sol.v_star, sol.v_random)
    reached = np.isfinite(solved)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}")
    print(f"agent {agent.name} {agent.hparams()}, {args.episodes} episodes x {args.seeds} seeds")
    print(f"V*                         {sol.v_star:.4f}   (uniform random: {sol.v_random:.4f})")
    print(f"mean return, last 10 ep.   {_fmt(*mean_ci(last))}")
    print(f"cumulative regret          {_fmt(*mean_ci(cum))}   (mean ± 95% CI over seeds)")
    if reached.any():
        print(f"episodes to solve          median {np.median(solved[reached]):.0f}, reached by {reached.sum()}/{len(solved)} runs")
    else:
        print(f"episodes to solve          not reached by any of {len(solved)} runs")
    if args.json:
        write_json(args.json, {
            "mdp": mdp.name, "S": mdp.n_states, "A": mdp.n_actions, "H": mdp.horizon,
            "v_star": sol.v_star, "v_random": sol.v_random, "agent": agent.name, "hparams": agent.hparams(),
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

    mdp = load_mdp(args.mdp, args.horizon)
    agent = _agent_from_args(args, offline=True)
    sol = mdp.solution
    res = run_offline(mdp, agent, args.behavior_epsilon, args.dataset_episodes, args.seeds, args.seed)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}; V* {sol.v_star:.4f}, V_random {sol.v_random:.4f}")
    print(f"agent {agent.name} {agent.hparams()}; data: {args.dataset_episodes} episodes of "
          f"(1-ε)·π* + ε·uniform, ε = {args.behavior_epsilon}; {args.seeds} seeds")
    print(f"policy value               {_fmt(*mean_ci(res.values))}")
    print(f"normalized score           {_fmt(*mean_ci(res.scores))}   (1 = optimal, 0 = uniform random)")
    if args.json:
        write_json(args.json, {
            "mdp": mdp.name, "v_star": sol.v_star, "v_random": sol.v_random, "agent": agent.name,
            "hparams": agent.hparams(), "behavior_epsilon": args.behavior_epsilon,
            "dataset_episodes": args.dataset_episodes, "seeds": args.seeds, "seed": args.seed,
            "scores": res.scores.tolist(), "values": res.values.tolist(),
        })
        print(f"wrote {args.json}")


def cmd_benchmark(args) -> None:
    from .agents import AGENTS
    from .benchmarks import BENCHMARKS
    from .experiments.report import write_report
    from .experiments.suite import SuiteConfig, run_suite

    cfg = SuiteConfig(episodes=args.episodes, seeds=args.seeds, seed=args.seed, hindsight=args.hindsight,
                      workers=args.workers)
    if args.benchmarks:
        cfg.benchmarks = args.benchmarks
    for b in cfg.benchmarks:
        if b not in BENCHMARKS:
            raise CLIError(f"unknown benchmark {b!r}; choose from: {', '.join(BENCHMARKS)}")
    if args.agents is not None:
        for a in args.agents:
            if a not in AGENTS:
                raise CLIError(f"unknown agent {a!r}; choose from: {', '.join(AGENTS)}")
        cfg.online_agents = [a for a in args.agents if AGENTS[a].online]
        cfg.offline_agents = [a for a in args.agents if AGENTS[a].offline]
    for item in args.skip or []:
        agent, _, bench = item.partition(":")
        if agent not in AGENTS or bench not in BENCHMARKS:
            raise CLIError(f"--skip {item!r} is not AGENT:BENCHMARK with a known agent and benchmark")
        cfg.skip.append((agent, bench))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a directory")
    results = run_suite(cfg, progress=not args.quiet)
    results["config"]["command"] = "rlpfn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    paths = write_report(results, out)
    print(f"wall time {results['config']['wall_time_s']:.0f} s; wrote {out / 'results.json'}, "
          + ", ".join(str(p) for p in paths))
    print((out / "results.md").read_text())


def cmd_tune(args) -> None:
    from .prior.spec import load_spec
    from .experiments.tune import GRIDS, TuneConfig, save_tuned, tune

    agents = args.agents or list(GRIDS)
    for a in agents:
        if a not in GRIDS:
            raise CLIError(f"no tuning grid for agent {a!r}; tunable: {', '.join(GRIDS)}")
    load_spec(args.prior)  # a bad spec fails here, before any work
    cfg = TuneConfig(n_mdps=args.n_mdps, episodes=args.episodes, seeds=args.seeds, seed=args.seed, prior=args.prior)
    start = time.time()
    record = tune(agents, cfg, workers=args.workers, progress=not args.quiet)
    for a, r in record.items():
        print(f"{a:<10} best {r['hparams']}  score {r['score']:.4f}  ({r['objective']})")
        for g in r["grid"]:
            print(f"    {str(g['hparams']):<60} {g['score']:.4f} ± {g['sem']:.4f}")
    print(f"tuning took {time.time() - start:.0f} s")
    if args.dry_run:
        return
    command = "rlpfn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
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
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a directory")
    # Everything is sampled before anything is written: an error leaves no half-filled directory.
    with tqdm(total=args.n, desc="sampling", disable=args.quiet, leave=False) as bar:
        mdps = sample_prior_mdps(spec, args.n, args.seed, bar.update)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for mdp in mdps:
        mdp.save(out / f"{mdp.name}.npz")
        index.append({"file": f"{mdp.name}.npz", "S": mdp.n_states, "A": mdp.n_actions, "H": mdp.horizon,
                      **mdp.meta,  # family, V* and V_random, computed by the sampler
                      "stochastic_rewards": bool(mdp.outcomes is not None or (mdp.R_std > 0).any())})
    cmd = "rlpfn " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["prior"] else None
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


# ---- parser ----------------------------------------------------------------------------------
def cmd_solve_offline(args) -> None:
    from .zero_shot import load_transitions, solve_offline

    bounds = tuple(args.reward_bounds) if args.reward_bounds else None
    if bounds is not None and not bounds[1] > bounds[0]:
        raise CLIError(f"--reward-bounds must be LOW HIGH with HIGH > LOW, got {bounds[0]} {bounds[1]}")
    log = load_transitions(args.transitions, bounds)
    pi = solve_offline(log, args.agent)
    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must end in .npz, got {out}")
    visited = log.stats.visits[0, :log.n_states].sum(-1) > 0
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, policy=pi, greedy_action=pi.argmax(-1), visited_states=visited.numpy())
    H, S, A = pi.shape
    print(f"{args.transitions}: {log.n_transitions} transitions, S={S} A={A} H={H}; "
          f"{int(visited.sum())}/{S} states visited; agent {args.agent}")
    print(f"wrote {out}: policy [H,S,A], greedy_action [H,S], visited_states [S]")


def cmd_validate(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from .agents import AGENTS
    from .metrics import mean_ci
    from .experiments.validate import RLPFN_VARIANTS, ValidationConfig, validate

    cfg = ValidationConfig(prior=args.prior, batches=args.batches, episodes=args.episodes, seed=args.seed,
                           checkpoint=args.checkpoint)
    agents = {}
    for name in args.agents:
        if name == "rlpfn-variants":
            agents.update({k: ("rlpfn", v) for k, v in RLPFN_VARIANTS.items()})
        elif name in RLPFN_VARIANTS:
            agents[name] = ("rlpfn", RLPFN_VARIANTS[name])
        else:
            if name not in AGENTS or not AGENTS[name].online:
                raise CLIError(f"unknown online agent {name!r}")
            agents[name] = (name, {})
    res = validate(agents, cfg, args.workers, progress=not args.quiet)
    ref = res.get("ucbvi")
    print(f"held-out prior {args.prior!r}: {cfg.batches * 8} MDPs, {cfg.episodes} episodes; normalized cumulative "
          "regret (mean ± 95% CI; lower is better)")
    for label, r in sorted(res.items(), key=lambda kv: kv[1].mean()):
        line = f"  {label:<24} {_fmt(*mean_ci(r))}"
        if ref is not None and label != "ucbvi":
            line += f"   below UCB-VI on {np.mean(r < ref):.0%} of MDPs"
        print(line)
    if args.json:
        from dataclasses import asdict

        write_json(args.json, {"config": asdict(cfg), "agents": agents,
                               "regret": {k: v.tolist() for k, v in res.items()}})
        print(f"wrote {args.json}")


def cmd_latency(args) -> None:
    if args.json:
        check_output_file(args.json, "--json")  # before any work
    from .experiments.latency import measure
    from .resolve import load_mdp

    mdp = load_mdp(args.mdp)
    rows = measure(mdp, args.sizes, args.repeats, args.checkpoint)
    print(f"MDP {mdp.name}: S={mdp.n_states} A={mdp.n_actions} H={mdp.horizon}; median of {args.repeats}, one thread")
    print(f"{'past transitions':>17} {'rlpfn forward pass':>19} {'per decision, refresh/episode':>30} "
          f"{'UCB-VI plan per episode':>24}")
    for r in rows:
        print(f"{r['transitions']:>17} {r['rlpfn_decision_s'] * 1e3:>16.2f} ms "
              f"{r['rlpfn_per_step_refresh_episode_s'] * 1e3:>27.3f} ms {r['ucbvi_plan_per_episode_s'] * 1e3:>21.2f} ms")
    print("A forward pass is one decision with refresh=step, or one episode's policy table with refresh=episode; "
          "the default, refresh=new-pair, adds one pass per first visit of a state-action pair.")
    if args.json:
        write_json(args.json, {"mdp": mdp.name, "rows": rows})
        print(f"wrote {args.json}")


def cmd_pretrain(argv: list[str]) -> None:
    from .train import parse_pretrain_args, pretrain

    cfg, resume = parse_pretrain_args(argv)
    path = pretrain(cfg, resume=resume, command="rlpfn " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    print(f"wrote {path} (and {path.with_suffix('.safetensors')})")


def _run_options(sp, episodes: int, seeds: int, seeds_help: str) -> None:
    """Options shared by the commands that run many jobs: benchmark, tune, check-baselines."""
    sp.add_argument("--episodes", type=_positive_int, default=episodes, help=f"online episodes (default {episodes})")
    sp.add_argument("--seeds", type=_positive_int, default=seeds, help=f"{seeds_help} (default {seeds})")
    sp.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    sp.add_argument("--workers", type=_positive_int, default=2, help="worker processes (default 2)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlpfn",
        description="rlpfn: a model pretrained on random tabular MDPs that solves new ones in context "
                    "(`--agent rlpfn`, `solve-offline`, `pretrain`, `validate`, `latency`); tabular MDPs, exact "
                    "planning, a benchmark suite and classical baselines (UCB-VI, PSRL, optimistic and ε-greedy "
                    "Q-learning; offline VI-LCB, certainty equivalence, BC), and the pretraining prior (`rlpfn prior`).",
        epilog="MDP arguments accept a benchmark name (see `rlpfn benchmarks`), a path to an .npz MDP "
               "(keys P [S,A,S], R [S,A], mu0 [S], horizon; optional R_std, r_min, r_max, name), or a "
               "gymnasium id with transition tables such as FrozenLake-v1 or Taxi-v4.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("benchmarks", help="list the benchmark MDPs with S, A, H, V* and the random policy's value",
                       description="List the benchmark suite: states, actions, horizon, optimal value V* and the "
                                   "uniform-random policy's value, both from the initial-state distribution.")
    b.add_argument("--all", action="store_true", help="also list the reference MDPs used by check-baselines")
    b.set_defaults(fn=cmd_benchmarks)

    def common(sp, seeds_default):
        sp.add_argument("mdp", metavar="MDP", help="benchmark name, .npz path or gymnasium id")
        sp.add_argument("--agent", required=True, help="agent name (online: rlpfn, the pretrained model; random, optimal, "
                                                       "ucbvi, psrl, optql, qlearning; offline: rlpfn, vilcb, "
                                                       "certainty-equivalence, bc)")
        sp.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                        help="override hyperparameters, e.g. --set scale=0.3 bonus=bernstein")
        sp.add_argument("--seeds", type=_positive_int, default=seeds_default, help=f"independent runs (default {seeds_default})")
        sp.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
        sp.add_argument("--horizon", type=_positive_int, default=None, help="override the MDP's horizon H")
        sp.add_argument("--json", metavar="OUT", help="write the full per-seed results to this JSON file")

    s = sub.add_parser("solve", help="run an online agent on an MDP and report regret and returns",
                       description="Run an online agent for K episodes in N independent runs (batched) and "
                                   "report V*, the mean return of the last 10 episodes, cumulative regret "
                                   "(mean ± 95% CI over seeds; per-episode regret is Σ_h V*_h(s_h) − Q*_h(s_h,a_h), "
                                   "an unbiased low-variance estimate of V* − V^π_k) and episodes to solve "
                                   "(first episode whose 10-episode running mean is 90% of the way from "
                                   "V_random to V*).")
    common(s, 10)
    s.add_argument("--episodes", type=_positive_int, default=500, help="episodes per run (default 500)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_solve)

    o = sub.add_parser("offline", help="fit an offline agent on a dataset from an ε-optimal behaviour policy",
                       description="Collect datasets with the behaviour policy (1−ε)·π* + ε·uniform, fit an offline "
                                   "agent on each, and report the normalized score (V^π − V_random)/(V* − V_random).")
    common(o, 10)
    o.add_argument("--behavior-epsilon", type=_probability, required=True, metavar="E",
                   help="ε of the behaviour policy: 0 expert, 0.5 medium, 1 uniform random")
    o.add_argument("--dataset-episodes", type=_positive_int, required=True, metavar="N", help="episodes in each dataset")
    o.set_defaults(fn=cmd_offline)

    bm = sub.add_parser("benchmark", help="the whole suite x agents, online and offline; writes JSON, Markdown and plots",
                        description="Run every benchmark with every agent (online: K episodes; offline: ε ∈ {0, 0.5, 1}, "
                                    "datasets of 10 and 100 episodes) and write results.json, results.md, "
                                    "regret_curves.png and aggregate_iqm.png into --out.")
    bm.add_argument("--agents", nargs="+", metavar="NAME", help="agents to run (default: rlpfn and all classical agents)")
    bm.add_argument("--benchmarks", nargs="+", metavar="NAME", help="benchmarks to run (default: the suite)")
    _run_options(bm, 500, 10, "runs per agent and benchmark")
    bm.add_argument("--out", default="results", help="output directory (default ./results)")
    bm.add_argument("--skip", nargs="+", metavar="AGENT:BENCHMARK",
                    help="leave out these pairs, e.g. psrl:taxi (exact PSRL on Taxi's 501 states dominates the run time)")
    bm.add_argument("--hindsight", action="store_true",
                    help="also report each baseline tuned in hindsight (best grid entry per benchmark; an upper bound)")
    bm.set_defaults(fn=cmd_benchmark)

    t = sub.add_parser("tune", help="choose baseline hyperparameters on random prior MDPs (never the benchmarks)",
                       description="Score each agent's grid on MDPs sampled from a prior spec (by default the "
                                   "pretraining prior, the built-in spec `default`) and save the best as defaults in "
                                   "--out (the shipped tuned.json with these merged in), together with this command.")
    t.add_argument("--agents", nargs="+", metavar="NAME", help="agents to tune (default: all with a grid)")
    t.add_argument("--n-mdps", type=_positive_int, default=24, help="sampled MDPs (default 24)")
    t.add_argument("--prior", default="default", metavar="SPEC",
                   help="prior spec the MDPs are drawn from (default: default, the pretraining prior)")
    _run_options(t, 300, 4, "runs per MDP")
    t.add_argument("--out", default="tuned.json",
                   help="where to save the defaults, the shipped ones with these merged in (default ./tuned.json; "
                        "copy it to rlpfn/data/tuned.json to ship it)")
    t.add_argument("--dry-run", action="store_true", help="print the scores, save nothing")
    t.set_defaults(fn=cmd_tune)

    c = sub.add_parser("check-baselines", help="reproduce docs/reference.md's UCB-VI and PSRL regrets",
                       description="UCB-VI (c = 0.1, 1) and PSRL (α0 = 0.1, 1) on rlberry Chain(10, 0.1), rlberry "
                                   "GridWorld 5x5 and RiverSwim, H = 20, against the reference regrets.")
    _run_options(c, 2000, 5, "runs")
    c.set_defaults(fn=cmd_check_baselines)

    so = sub.add_parser("solve-offline", help="extract a policy from a transition log (.npz) with an offline agent",
                        description="Read a transition log TRANSITIONS.npz (arrays obs, action, reward, next_obs, "
                                    "optional terminated, and scalars n_states, n_actions, horizon), build its "
                                    "statistic and write the policy table [H,S,A] an offline agent extracts from it.")
    so.add_argument("transitions", metavar="TRANSITIONS", help="the log, an .npz file")
    so.add_argument("--agent", default="rlpfn", help="offline agent (default rlpfn; also vilcb, certainty-equivalence, bc)")
    so.add_argument("--out", default="policy.npz", help="where to write the policy (default policy.npz)")
    so.add_argument("--reward-bounds", nargs=2, type=float, metavar=("LOW", "HIGH"),
                    help="the range rewards can take (default: from the log, with 0 included)")
    so.set_defaults(fn=cmd_solve_offline)

    va = sub.add_parser("validate", help="regret of agents on held-out prior MDPs (how rlpfn's defaults are chosen)",
                        description="Run agents online on MDPs from a held-out prior split and print their normalized "
                                    "cumulative regret (1 = uniform random throughout). 'rlpfn-variants' runs every "
                                    "refresh (episode, step) x acting (argmax, sample) x monotone (on, off) option of the "
                                    "rlpfn agent.")
    va.add_argument("--agents", nargs="+", default=["ucbvi", "rlpfn-variants"], help="default: ucbvi rlpfn-variants")
    va.add_argument("--prior", default="heldout", help="prior spec to draw MDPs from (default heldout)")
    va.add_argument("--batches", type=_positive_int, default=8, help="batches of 8 MDPs (default 8)")
    va.add_argument("--episodes", type=_positive_int, default=100, help="episodes per MDP (default 100)")
    va.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped one)")
    va.add_argument("--workers", type=_positive_int, default=2, help="processes (default 2)")
    va.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    va.add_argument("--json", metavar="OUT", help="also write per-MDP regrets to this JSON file")
    va.add_argument("--quiet", action="store_true", help="no progress bar")
    va.set_defaults(fn=cmd_validate)

    la = sub.add_parser("latency", help="the model's time per decision against history length, beside UCB-VI's planning",
                        description="Build the statistic of 10^2, 10^4 and 10^5 random transitions on one MDP and "
                                    "time one decision of the rlpfn agent (one forward pass) and one UCB-VI planning "
                                    "pass (its per-episode cost) on it.")
    la.add_argument("mdp", metavar="MDP", nargs="?", default="taxi", help="benchmark name, .npz or gymnasium id (default taxi)")
    la.add_argument("--sizes", nargs="+", type=_positive_int, default=[100, 10_000, 100_000], help="history sizes")
    la.add_argument("--repeats", type=_positive_int, default=10, help="timed repeats, median reported (default 10)")
    la.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped one)")
    la.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    la.set_defaults(fn=cmd_latency)

    # Its options are generated from the config dataclasses (rlpfn.train.pretrain_parser); main() hands the
    # arguments after `pretrain` to that parser. This entry lists the command in `rlpfn --help`.
    sub.add_parser("pretrain", add_help=False, help="pretrain the model on a prior (Lightning); checkpoints and resumes")

    pr = sub.add_parser("prior", help="the pretraining prior: sample MDPs from a spec, or time the data engine",
                        description="Prior specs are YAML files (built in: default, tiny, heldout, in rlpfn/data/priors/); "
                                    "SPEC is a path or the name of a built-in spec.")
    psub = pr.add_subparsers(dest="prior_command", required=True, metavar="PRIOR_COMMAND")
    ps = psub.add_parser("sample", help="write N sampled MDPs as .npz files (solve them with `rlpfn solve`)",
                         description="Sample N MDPs from SPEC (each with its own S, A, H, family and rewards) and "
                                     "write them as DIR/<spec>-<i>-<family>.npz, plus DIR/index.json listing each "
                                     "file's family, S, A, H, V* and V_random.")
    ps.add_argument("spec", metavar="SPEC", help="prior spec: a YAML path or a built-in name (default, tiny, heldout)")
    ps.add_argument("--n", type=_positive_int, required=True, help="number of MDPs")
    ps.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ps.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    ps.add_argument("--quiet", action="store_true", help="no progress bar")
    ps.set_defaults(fn=cmd_prior_sample)
    pb = psub.add_parser("bench", help="time the data engine: MDP samples/s and batches/s",
                         description="Time MDP sampling with exact targets (MDPs/s) and whole pretraining batches "
                                     "(MDPs, behaviour traces, statistics, targets; batches/s) in one process, and "
                                     "optionally the throughput of background DataLoader workers.")
    pb.add_argument("spec", metavar="SPEC", nargs="?", default="default", help="prior spec (default: default)")
    pb.add_argument("--batch-size", type=_positive_int, default=64, help="contexts per batch (default 64)")
    pb.add_argument("--batches", type=_positive_int, default=40, help="batches to time (default 40)")
    pb.add_argument("--mdps", type=_positive_int, default=512, help="MDPs to time sampling on (default 512)")
    pb.add_argument("--workers", type=int, default=1,
                    help="also check that a DataLoader with this many background workers keeps up with training "
                         "(default 1; 0 skips the check)")
    pb.add_argument("--train-step", type=float, default=0.3, metavar="SECONDS",
                    help="simulated training step for --workers, single-threaded compute (default 0.3: a 4-layer, "
                         "width-128 attention model on a 64-MDP batch on this 2-core machine)")
    pb.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    pb.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    pb.add_argument("--quiet", action="store_true", help="no progress bar")
    pb.set_defaults(fn=cmd_prior_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from .threads import use_one_thread

    use_one_thread()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["pretrain"]:
            cmd_pretrain(argv[1:])
        else:
            args = build_parser().parse_args(argv)
            args.fn(args)
    except UserError as e:  # bad input: one line; anything else is a bug and keeps its traceback
        print(f"rlpfn: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rlpfn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
