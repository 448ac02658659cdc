"""Algorithm Distillation beside the rlpfn model, on one prior and one harness: `python -m rlpfn.experiments.ad_report`.

Runs AD (`ad`), the rlpfn model, AD's source algorithm and UCB-VI (each at its shipped defaults) on the held-out
prior split (`validate`) and on the benchmark suite (`benchmark`, online), times one decision of each model
against history length (`latency`, on Taxi), and writes OUT/results.md with the tables, regret curves and the
early-episode comparison of AD with its source (does it learn faster, as Laskin et al. 2022 found?).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..errors import UserError
from ..files import check_output_dir, write_text


def _early_table(results: dict, agents: list[str], first: tuple[int, ...]) -> str:
    """Cumulative regret over the first k episodes per benchmark (mean ± 95% t-CI over seeds)."""
    from ..metrics import mean_ci
    from .report import _md_table, format_pm

    idx = {(e["benchmark"], e["agent"]): np.asarray(e["regret"], float) for e in results["online"]}
    rows = []
    for b in results["benchmarks"]:
        for k in first:
            rows.append([b, k, *(format_pm(*mean_ci(idx[b, a][:, :k].sum(1))) if (b, a) in idx else "n/a"
                                 for a in agents)])
    return _md_table(["benchmark", "first episodes", *agents], rows, n_left=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.ad_report", description=__doc__.split("\n\n")[1])
    p.add_argument("--out", default="docs/ad", help="folder for results.md and the figures (default: docs/ad)")
    p.add_argument("--episodes", type=int, default=100, help="online episodes per run, suite and held-out")
    p.add_argument("--seeds", type=int, default=5, help="runs per agent and benchmark")
    p.add_argument("--batches", type=int, default=4, help="held-out MDP batches (8 MDPs each)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    from ..checkpoint import load_cached
    from ..metrics import mean_ci
    from ..benchmarks import make_benchmark
    from .latency import measure
    from .report import online_table, plot_regret_curves
    from .suite import SuiteConfig, run_suite
    from .validate import ValidationConfig, validate

    try:
        out = check_output_dir(args.out)  # before 50 minutes of work, not after
    except UserError as e:
        p.error(str(e))
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    model = load_cached(None, "ad")  # the shipped AD model: the suite's agents are registry names at defaults
    source, window = model.meta["training"]["config"]["data"]["source"], model.cfg.window
    names = list(dict.fromkeys(["ad", "rlpfn", "ucbvi", source]))
    agents = {a: (a, {}) for a in names}
    held = validate(agents, ValidationConfig(batches=args.batches, episodes=args.episodes), workers=args.workers)
    suite = run_suite(SuiteConfig(agents=names, parts=["online"], episodes=args.episodes, seeds=args.seeds,
                                  workers=args.workers))
    curves = plot_regret_curves(suite, out / "regret_curves.png")
    lat = measure(make_benchmark("taxi"), repeats=5)

    ref = held["ucbvi"]
    held_rows = "\n".join(f"| {a} | {mean_ci(held[a])[0]:.3f} ± {mean_ci(held[a])[1]:.3f} | "
                          f"{np.mean(held[a] < ref):.0%} |" for a in names)
    short = {b: m["H"] for b, m in suite["benchmarks"].items() if m["H"] > window // 2}
    lat_rows = "\n".join(
        f"| {r['transitions']} | {r['rlpfn_decision_s'] * 1e3:.1f} ms, {r['rlpfn_peak_bytes'] / 2**20:.1f} MiB | "
        f"{r['ad_decision_s'] * 1e3:.1f} ms, {r['ad_peak_bytes'] / 2**20:.2f} MiB | {r['ad_tokens']}"
        f"{' (truncated)' if r['ad_tokens'] < r['transitions'] + 1 else ''} | "
        f"{r['ucbvi_plan_per_episode_s'] * 1e3:.1f} ms, {r['ucbvi_peak_bytes'] / 2**20:.1f} MiB |" for r in lat)
    command = "python -m rlpfn.experiments.ad_report " + " ".join(sys.argv[1:] if argv is None else argv)
    write_text(out / "results.md", f"""# Algorithm Distillation beside the rlpfn model

```
{command.strip()}
```

AD: the shipped `ad-v1` (source algorithm `{source}`, window {window} decisions); rlpfn: the shipped model;
each baseline at its prior-tuned defaults. {args.episodes} episodes per run. Wall time {time.time() - start:.0f} s.

## Held-out prior

Normalized cumulative regret (1 = uniform random throughout) on {8 * args.batches} MDPs of the held-out split,
mean ± 95% t-interval over MDPs, and the share of MDPs where each agent's regret is below UCB-VI's.

| agent | regret | below UCB-VI |
| :--- | ---: | ---: |
{held_rows}

## Benchmark suite (online, {args.seeds} seeds)

AD has no limit on S or A (labels enter as random per-run vectors), so it runs on every benchmark. It cannot
learn *across episodes* where its window holds fewer than two of them (H > {window // 2}):
{', '.join(f'{b} (H = {h})' for b, h in short.items()) or 'none'}; there it sees at most the current and the
previous episode, and nothing of its earlier history.

![Cumulative regret](regret_curves.png)

{online_table(suite)}

### AD against its source ({source}): the first episodes

Cumulative regret over the first 10 and 50 episodes (mean ± 95% t-interval over seeds).

{_early_table(suite, names, (10, 50))}

## Cost per decision against history length (Taxi: S = 501, A = 6, H = 200)

One decision after N past transitions, median time and peak memory allocated during it (`rlpfn latency taxi`).
AD reads the last min(N + 1, {window}) decisions: past its window it forgets.

| N | rlpfn | AD | AD reads (tokens) | UCB-VI plan per episode |
| ---: | ---: | ---: | ---: | ---: |
{lat_rows}
""")
    print(f"wrote {out / 'results.md'} and {curves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
