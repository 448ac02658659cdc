"""Markdown tables and figures from a benchmark results dict (what the benchmark saves as results.json).

Everything here is a pure function of that dict, so a report can be rebuilt from a saved
results.json without rerunning anything. Figures are drawn on bare `matplotlib.figure.Figure`
objects (rendered by the Agg canvas), never through pyplot: no global backend switch, no figures
left open, safe to call from any thread or notebook.

Conventions shared by the tables and plots:
- 'optimal' and 'random' are references, not contenders: shown, never bolded as best.
- A label with a '@hindsight' suffix (e.g. 'ucbvi@hindsight') was tuned on the benchmark itself;
  it is marked with a dagger, never bolded, and drawn dashed / hatched in the same colour as its
  base agent.
- Benchmarks keep the order of `results["benchmarks"]`; agents keep their order of first appearance.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .evaluate import normalized_score
from .metrics import SOLVE_FRACTION, SOLVE_WINDOW, episodes_to_solve, mean_ci

REFERENCE_AGENTS = ("optimal", "random")
DAGGER = "†"
HINDSIGHT_NOTE = f"{DAGGER} tuned on the benchmark itself: an upper bound, not a fair comparison."
SCORE_XLABEL = "IQM normalized score (1 = optimal, 0 = uniform random)"
MAX_CURVE_POINTS = 400  # a curve drawn with more points than pixels only bloats the PNG


# ----------------------------------------------------------------------------- labels

def base_agent(label: str) -> str:
    """Registry name behind a label: 'ucbvi@hindsight' -> 'ucbvi'."""
    return label.split("@", 1)[0]


def is_hindsight(label: str) -> bool:
    """Whether the label is a variant tuned on the benchmark it is evaluated on."""
    return "@" in label and "hindsight" in label.split("@", 1)[1]


def display_name(label: str) -> str:
    """The label as shown in tables and legends: hindsight variants get a dagger."""
    return label + DAGGER if is_hindsight(label) else label


def is_contender(label: str) -> bool:
    """Whether an agent may be bolded as best: not a reference and not tuned in hindsight."""
    return base_agent(label) not in REFERENCE_AGENTS and not is_hindsight(label)


def _agents(entries: list[dict]) -> list[str]:
    """Agent labels in order of first appearance."""
    return list(dict.fromkeys(e["agent"] for e in entries))


def _benchmarks(results: dict, entries: list[dict]) -> list[str]:
    """Benchmarks that `entries` ran on, in the fixed order of `results["benchmarks"]`."""
    present = {e["benchmark"] for e in entries}
    return [b for b in results["benchmarks"] if b in present]


def _colours(labels: list[str]) -> dict[str, tuple]:
    """One colour per base agent, so 'ucbvi' and 'ucbvi@hindsight' share it in every figure."""
    bases = list(dict.fromkeys(base_agent(a) for a in labels))
    cmap = colormaps["tab10" if len(bases) <= 10 else "tab20"]
    colour = {b: cmap(i % cmap.N) for i, b in enumerate(bases)}
    return {a: colour[base_agent(a)] for a in labels}


# ----------------------------------------------------------------------------- formatting

def _decimals(x: float) -> int:
    """Decimals that keep about three significant digits without scientific notation."""
    x = abs(x)
    return 0 if x >= 100 else 1 if x >= 10 else 2 if x >= 1 else 3


def format_pm(mean: float, half_width: float, decimals: int | None = None) -> str:
    """'mean ± half-width' with both numbers at the same precision."""
    if decimals is None:
        decimals = _decimals(max(abs(mean), abs(half_width)))
    return f"{mean:.{decimals}f} ± {half_width:.{decimals}f}"


def _best(means: dict[str, float], lower: bool) -> set[str]:
    """Contenders whose mean ties the best one (all of them when several tie)."""
    vals = {a: m for a, m in means.items() if is_contender(a) and np.isfinite(m)}
    if not vals:
        return set()
    target = min(vals.values()) if lower else max(vals.values())
    return {a for a, m in vals.items() if np.isclose(m, target, rtol=1e-9, atol=1e-12)}


def _md_table(header: list[str], rows: list[list], n_left: int = 1) -> str:
    """A Markdown table; the first `n_left` columns left-aligned, the rest right-aligned."""
    align = [":---"] * n_left + ["---:"] * (len(header) - n_left)
    lines = ["| " + " | ".join(map(str, r)) + " |" for r in [header, align, *rows]]
    return "\n".join(lines) + "\n"


def _agent_headers(agents: list[str]) -> list[str]:
    return [display_name(a) for a in agents]


def _footnotes(agents: list[str], *notes: str) -> str:
    extra = [HINDSIGHT_NOTE] if any(is_hindsight(a) for a in agents) else []
    return "".join(f"\n{n}\n" for n in [*notes, *extra])


# ----------------------------------------------------------------------------- tables

def _index(entries: list[dict]) -> dict[tuple, dict]:
    return {(e["benchmark"], e["agent"]): e for e in entries}


def online_table(results: dict) -> str:
    """Final cumulative regret (mean ± 95% t-CI over seeds) per benchmark × agent, then
    episodes to solve. Regret is the headline online metric; episodes to solve says when an
    agent became good enough, which final regret alone hides."""
    entries = results.get("online", [])
    if not entries:
        return "_No online runs._\n"
    benches, agents, idx = _benchmarks(results, entries), _agents(entries), _index(entries)
    regret_rows, solve_rows = [], []
    for b in benches:
        meta = results["benchmarks"][b]
        runs = {a: idx[b, a] for a in agents if (b, a) in idx}
        stats = {a: mean_ci(np.asarray(e["regret"], float).sum(1)) for a, e in runs.items()}
        best = _best({a: float(m) for a, (m, _) in stats.items()}, lower=True)
        cells = [(f"**{format_pm(*stats[a])}**" if a in best else format_pm(*stats[a]))
                 if a in stats else "n/a" for a in agents]
        regret_rows.append([b, meta["S"], meta["A"], meta["H"], f"{meta['v_star']:.4g}",
                            f"{meta['v_random']:.4g}", *cells])
        solve_rows.append([b, *(_solve_cell(runs[a]["returns"], meta) if a in runs else "n/a"
                                for a in agents)])
    regret = _md_table(["benchmark", "S", "A", "H", "V*", "V_rand", *_agent_headers(agents)], regret_rows)
    solve = _md_table(["benchmark", *_agent_headers(agents)], solve_rows)
    return ("### Online: final cumulative regret\n\n" + regret + _footnotes(
        agents,
        "Σ over episodes of the per-episode regret, mean ± 95% t-interval half-width over seeds. "
        "**Bold**: lowest regret among contenders (not optimal, random or †).")
        + "\n### Online: episodes to solve\n\n" + solve + _footnotes(
        agents,
        f"First episode at which the mean return over the last {SOLVE_WINDOW} episodes reaches "
        f"V_rand + {SOLVE_FRACTION:g}·(V* − V_rand): median over the runs that reached it, "
        "(reached/runs); runs that never reach it are censored, not counted."))


def _solve_cell(returns, meta: dict) -> str:
    """'median (reached/runs)', or '— (0/runs)' when no run reached the threshold."""
    k = episodes_to_solve(np.asarray(returns, float), meta["v_star"], meta["v_random"])
    hit = k[np.isfinite(k)]
    frac = f"({hit.size}/{k.size})"
    return f"{np.median(hit):.0f} {frac}" if hit.size else f"— {frac}"


def offline_table(results: dict) -> str:
    """Normalized score of the fitted policy (mean ± 95% t-CI over seeds), one row per
    benchmark × behaviour ε × dataset size, bold = highest-scoring contender."""
    entries = results.get("offline", [])
    if not entries:
        return "_No offline runs._\n"
    agents = _agents(entries)
    idx = {(e["benchmark"], e["epsilon"], e["dataset_episodes"], e["agent"]): e for e in entries}
    settings = sorted({(e["epsilon"], e["dataset_episodes"]) for e in entries})
    rows = []
    for b in _benchmarks(results, entries):
        for eps, n in settings:
            stats = {a: mean_ci(np.asarray(idx[b, eps, n, a]["scores"], float))
                     for a in agents if (b, eps, n, a) in idx}
            if not stats:
                continue
            best = _best({a: float(m) for a, (m, _) in stats.items()}, lower=False)
            cells = [(f"**{format_pm(*stats[a], decimals=3)}**" if a in best
                      else format_pm(*stats[a], decimals=3)) if a in stats else "n/a" for a in agents]
            rows.append([b, f"{eps:g}", n, *cells])
    table = _md_table(["benchmark", "ε", "dataset episodes", *_agent_headers(agents)], rows, n_left=1)
    return "### Offline: normalized score\n\n" + table + _footnotes(
        agents,
        "(V^π − V_rand)/(V* − V_rand) of the returned policy, mean ± 95% t-interval half-width over "
        "seeds; data from the (1−ε)·π* + ε·uniform behaviour policy. **Bold**: best contender.")


# ----------------------------------------------------------------------------- score matrices

def _stack(per_task: list[np.ndarray]) -> np.ndarray:
    """[runs, tasks] from one per-run vector per task; rliable needs a rectangle."""
    sizes = {len(x) for x in per_task}
    if len(sizes) != 1:
        raise ValueError(f"different numbers of runs across benchmarks: {sorted(sizes)}")
    return np.stack(per_task, axis=1)


def online_scores(results: dict) -> dict[str, np.ndarray]:
    """Normalized online score [runs, tasks] per agent: 1 − mean per-episode regret/(V* − V_rand).

    That is the normalized score of the run's average policy, so online and offline agents share
    one scale. Only agents that ran on every online benchmark are kept: an aggregate over a
    different task set would not be comparable.
    """
    entries = results.get("online", [])
    benches, idx = _benchmarks(results, entries), _index(entries)
    out = {}
    for a in _agents(entries):
        if all((b, a) in idx for b in benches):
            per_task = []
            for b in benches:
                meta = results["benchmarks"][b]
                mean_regret = np.asarray(idx[b, a]["regret"], float).mean(1)
                per_task.append(normalized_score(meta["v_star"] - mean_regret, meta["v_star"], meta["v_random"]))
            out[a] = _stack(per_task)
    return out


def offline_scores(results: dict) -> dict[str, dict[tuple, np.ndarray]]:
    """Normalized offline score [runs, tasks] per agent and (ε, dataset size); a setting is kept
    for an agent only where it ran on every offline benchmark."""
    entries = results.get("offline", [])
    benches = _benchmarks(results, entries)
    idx = {(e["benchmark"], e["epsilon"], e["dataset_episodes"], e["agent"]): e for e in entries}
    settings = sorted({(e["epsilon"], e["dataset_episodes"]) for e in entries})
    out: dict[str, dict[tuple, np.ndarray]] = {}
    for a in _agents(entries):
        for eps, n in settings:
            if all((b, eps, n, a) in idx for b in benches):
                out.setdefault(a, {})[eps, n] = _stack(
                    [np.asarray(idx[b, eps, n, a]["scores"], float) for b in benches])
    return out


# ----------------------------------------------------------------------------- figures

def _grid(fig: Figure, n: int, ncols: int):
    """n axes on a grid of `ncols` columns; the unused cells removed."""
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.remove()
    return axes.flat[:n], nrows


def _thin(k: int) -> np.ndarray:
    """At most MAX_CURVE_POINTS episode indices, always including the last."""
    return np.unique(np.linspace(0, k - 1, min(k, MAX_CURVE_POINTS)).round().astype(int))


def plot_regret_curves(results: dict, path, include_random: bool = False, yscale: str = "linear") -> Path:
    """Mean cumulative regret vs episode with a 95% t-band over seeds, one panel per benchmark.

    Uniform random is left out by default: its regret grows linearly at a slope that flattens
    every learning agent's curve into the axis; the title says so. `yscale='symlog'` is an
    alternative when it is included ('log' cannot show the oracle's zero regret).
    """
    entries = [e for e in results.get("online", [])
               if include_random or base_agent(e["agent"]) != "random"]
    path = Path(path)
    benches, agents, idx = _benchmarks(results, entries), _agents(entries), _index(entries)
    colours = _colours(agents)
    n = max(len(benches), 1)
    ncols = min(n, 3 if n <= 6 else 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.3 * ncols, 3.2 * nrows + 1.2), layout="constrained")
    if not benches:
        fig.text(0.5, 0.5, "no online runs", ha="center")
        fig.savefig(path, dpi=110)
        return path
    axes, nrows = _grid(fig, len(benches), ncols)
    for i, (ax, b) in enumerate(zip(axes, benches)):
        meta = results["benchmarks"][b]
        for a in agents:
            if (b, a) not in idx:
                continue
            cum = np.cumsum(np.asarray(idx[b, a]["regret"], float), axis=1)
            mean, hw = mean_ci(cum)
            t = _thin(cum.shape[1])
            x = t + 1
            ls = "--" if is_hindsight(a) else "-"
            ax.plot(x, mean[t], color=colours[a], ls=ls, lw=1.6, label=display_name(a))
            ax.fill_between(x, (mean - hw)[t], (mean + hw)[t], color=colours[a], alpha=0.18, lw=0)
        ax.set_title(f"{b}  (S={meta['S']}, A={meta['A']}, H={meta['H']})", fontsize=10)
        ax.set_yscale(yscale)
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        if i % ncols == 0:
            ax.set_ylabel("cumulative regret")
        if i >= len(benches) - ncols:
            ax.set_xlabel("episode")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=min(len(handles), 7),
               frameon=False, title=HINDSIGHT_NOTE if any(map(is_hindsight, agents)) else None,
               title_fontsize=9)
    seeds = results.get("config", {}).get("seeds")
    title = f"Cumulative regret: mean and 95% t-interval over {seeds} seeds" if seeds else \
        "Cumulative regret: mean and 95% t-interval over seeds"
    if not include_random:
        title += "\n(uniform random omitted: its linear regret would flatten every other curve)"
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110)
    return path


def _iqm_estimates(scores: dict[str, np.ndarray], reps: int, seed: int):
    """rliable IQM point estimates and stratified-bootstrap 95% CIs, {label: (point, lo, hi)}."""
    from rliable import library as rly
    from rliable import metrics as rm

    with warnings.catch_warnings():  # arch warns that RandomState is deprecated; rliable passes one
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates(
            scores, lambda x: np.array([rm.aggregate_iqm(x)]), reps=reps,
            random_state=np.random.RandomState(seed))
    return {a: (float(point[a][0]), float(interval[a][0, 0]), float(interval[a][1, 0])) for a in scores}


def _aggregate_panels(results: dict) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(title, {label: [runs, tasks]}) for online, then each offline (ε, size) setting."""
    panels = []
    on = online_scores(results)
    if on:
        k = results.get("config", {}).get("episodes")
        panels.append((f"Online (average policy over {k} episodes)" if k else "Online (average policy)", on))
    off = offline_scores(results)
    for eps, n in sorted({s for d in off.values() for s in d}):
        panels.append((f"Offline: ε = {eps:g}, {n} episodes of data",
                       {a: d[eps, n] for a, d in off.items() if (eps, n) in d}))
    return panels


def plot_aggregate(results: dict, path, reps: int = 2000, seed: int = 0) -> Path:
    """IQM normalized score over runs × benchmarks with stratified-bootstrap 95% CIs (rliable).

    One horizontal interval panel for online and one per offline (ε, dataset size), all on a
    common x-axis so panels compare at a glance; dotted lines mark random (0) and optimal (1).
    Each panel bootstraps from its own `seed`, so adding a panel never moves another's CIs.
    """
    path = Path(path)
    panels = _aggregate_panels(results)
    all_agents = list(dict.fromkeys(a for _, s in panels for a in s))
    colours = _colours(all_agents)
    n = max(len(panels), 1)
    ncols = min(n, 3)
    rows_per_panel = max((len(s) for _, s in panels), default=1)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.6 * ncols, nrows * (0.42 * rows_per_panel + 1.1) + 1.0), layout="constrained")
    if not panels:
        fig.text(0.5, 0.5, "no scores to aggregate", ha="center")
        fig.savefig(path, dpi=110)
        return path
    estimates = [_iqm_estimates(s, reps, seed) for _, s in panels]
    lo = min(0.0, *(v[1] for est in estimates for v in est.values()))
    hi = max(1.0, *(v[2] for est in estimates for v in est.values()))
    pad = 0.05 * (hi - lo)
    axes, _ = _grid(fig, len(panels), ncols)
    for ax, (title, scores), est in zip(axes, panels, estimates):
        labels = list(scores)
        for y, a in enumerate(labels):
            point, l, h = est[a]
            ax.barh(y, h - l, left=l, height=0.6, color=colours[a], alpha=0.75,
                    hatch="///" if is_hindsight(a) else None, edgecolor="white" if is_hindsight(a) else None)
            ax.vlines(point, y - 0.32, y + 0.32, color="k", alpha=0.7)
        ax.set_yticks(range(len(labels)), [display_name(a) for a in labels])
        ax.set_ylim(rows_per_panel - 0.5, -0.5)  # first agent on top; same row height everywhere
        ax.set_xlim(lo - pad, hi + pad)
        for x in (0.0, 1.0):
            ax.axvline(x, color="grey", ls=":", lw=1)
        runs, tasks = next(iter(scores.values())).shape
        ax.set_title(f"{title}\n{runs} runs × {tasks} benchmarks", fontsize=10)
        ax.grid(True, axis="x", alpha=0.25)
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.tick_params(axis="y", length=0)
    fig.supxlabel(SCORE_XLABEL, fontsize=10)
    note = f"IQM with stratified-bootstrap 95% CIs ({reps} reps); bar = CI, tick = point estimate"
    if any(map(is_hindsight, all_agents)):
        note += "\n" + HINDSIGHT_NOTE
    fig.suptitle(note, fontsize=10)
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- report

def _header(results: dict) -> str:
    """What was run, so a results.md is interpretable on its own."""
    cfg = results.get("config", {})
    lines = ["# rlpfn benchmark report", ""]
    if cfg.get("command"):
        lines += ["```", str(cfg["command"]), "```", ""]
    fields = [("episodes", cfg.get("episodes")), ("seeds", cfg.get("seeds")), ("base seed", cfg.get("seed")),
              ("online agents", ", ".join(cfg.get("online_agents", [])) or None),
              ("offline agents", ", ".join(cfg.get("offline_agents", [])) or None),
              ("behaviour ε", ", ".join(f"{e:g}" for e in cfg.get("epsilons", [])) or None),
              ("dataset episodes", ", ".join(map(str, cfg.get("dataset_sizes", []))) or None)]
    if cfg.get("wall_time_s") is not None:
        fields.append(("wall time", f"{cfg['wall_time_s']:.1f} s"))
    lines += [f"- {k}: {v}" for k, v in fields if v is not None]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out_dir, reps: int = 2000, seed: int = 0) -> list[Path]:
    """results.md (config header and both tables), regret_curves.png and aggregate_iqm.png in
    `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "results.md"
    md.write_text("\n".join([
        _header(results),
        "![Cumulative regret](regret_curves.png)\n",
        "![Aggregate IQM](aggregate_iqm.png)\n",
        "## Online\n", online_table(results),
        "## Offline\n", offline_table(results)]), encoding="utf-8")
    curves = plot_regret_curves(results, out / "regret_curves.png")
    agg = plot_aggregate(results, out / "aggregate_iqm.png", reps=reps, seed=seed)
    return [md, curves, agg]
