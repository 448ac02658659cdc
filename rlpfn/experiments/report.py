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
import re
import warnings
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..files import save_figure, write_text
from .evaluate import normalized_score
from ..metrics import SOLVE_FRACTION, SOLVE_WINDOW, episodes_to_solve, mean_ci

REFERENCE_AGENTS = ("optimal", "random")
DAGGER = "†"
HINDSIGHT_NOTE = f"{DAGGER} tuned on the benchmark itself: an upper bound, not a fair comparison."
SCORE_XLABEL = "IQM normalized score (1 = optimal, 0 = uniform random)"
MAX_CURVE_POINTS = 400  # a curve drawn with more points than pixels only bloats the PNG
EARLY_EPISODES = 50  # the "far fewer episodes" claim: regret over the first episodes, beside episodes to solve


# ----------------------------------------------------------------------------- labels

def base_agent(label: str) -> str:
    """Registry name behind a label: 'ucbvi@hindsight' -> 'ucbvi', 'rlpfn[checkpoint=m]' -> 'rlpfn'."""
    return re.split(r"[@\[]", label, maxsplit=1)[0]


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
    """One colour per agent, shared by its '@hindsight' variant ('ucbvi' and 'ucbvi@hindsight'); agents with their
    own hyperparameters ('ucbvi[scale=0.1]') get their own."""
    own = list(dict.fromkeys(a.split("@", 1)[0] for a in labels))
    cmap = colormaps["tab10" if len(own) <= 10 else "tab20"]
    colour = {b: cmap(i % cmap.N) for i, b in enumerate(own)}
    return {a: colour[a.split("@", 1)[0]] for a in labels}


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
    """Final cumulative regret (mean ± 95% t-CI over seeds) per benchmark × agent, the regret over the first
    EARLY_EPISODES episodes, then episodes to solve. Regret is the headline online metric; episodes to solve says
    when an agent became good enough, which final regret alone hides."""
    entries = results.get("online", [])
    if not entries:
        return "_No online runs._\n"
    benches, agents, idx = _benchmarks(results, entries), _agents(entries), _index(entries)
    early = min(EARLY_EPISODES, min(np.asarray(e["regret"], float).shape[1] for e in entries))
    regret_rows, early_rows, solve_rows = [], [], []
    for b in benches:
        meta = results["benchmarks"][b]
        runs = {a: idx[b, a] for a in agents if (b, a) in idx}
        regret_rows.append([b, meta["S"], meta["A"], meta["H"], f"{meta['v_star']:.4g}",
                            f"{meta['v_random']:.4g}", *_regret_cells(runs, agents, None)])
        early_rows.append([b, *_regret_cells(runs, agents, early)])
        solve_rows.append([b, *(_solve_cell(runs[a]["returns"], meta) if a in runs else "n/a"
                                for a in agents)])
    regret = _md_table(["benchmark", "S", "A", "H", "V*", "V_rand", *_agent_headers(agents)], regret_rows)
    first = _md_table(["benchmark", *_agent_headers(agents)], early_rows)
    solve = _md_table(["benchmark", *_agent_headers(agents)], solve_rows)
    bold = "**Bold**: lowest regret among contenders (not optimal, random or †)."
    return ("### Online: final cumulative regret\n\n" + regret + _footnotes(
        agents, f"Σ over episodes of the per-episode regret, mean ± 95% t-interval half-width over seeds. {bold}")
        + f"\n### Online: regret over the first {early} episodes\n\n" + first + _footnotes(
        agents, f"Σ over episodes 1–{early} of the per-episode regret, as above. {bold}")
        + "\n### Online: episodes to solve\n\n" + solve + _footnotes(
        agents,
        f"First episode at which the mean return over the last {SOLVE_WINDOW} episodes reaches "
        f"V_rand + {SOLVE_FRACTION:g}·(V* − V_rand): median over the runs that reached it, "
        "(reached/runs); runs that never reach it are censored, not counted."))


def ratio_table(results: dict) -> str:
    """Each rlpfn agent's mean regret as a ratio to each UCB-VI and PSRL agent's, per benchmark, over all episodes and
    over the first EARLY_EPISODES; then on how many benchmarks it is lower, the median ratio and the worst."""
    entries = results.get("online", [])
    agents = [a for a in _agents(entries) if is_contender(a)]
    models = [a for a in agents if base_agent(a) == "rlpfn"]
    refs = [a for a in agents if base_agent(a) in ("ucbvi", "psrl")]
    if not models or not refs:
        return ""
    benches, idx = _benchmarks(results, entries), _index(entries)
    early = min(EARLY_EPISODES, min(np.asarray(e["regret"], float).shape[1] for e in entries))

    def mean(b, a, k):
        return np.asarray(idx[b, a]["regret"], float)[:, :k].sum(1).mean()

    out = []
    for m in models:
        cols = [(r, k) for r in refs for k in (None, early)]
        ratios = [{b: mean(b, m, k) / mean(b, r, k) for b in benches if (b, m) in idx and (b, r) in idx
                   and mean(b, r, k) > 0} for r, k in cols]
        rows = [[b, *(f"{v[b]:.2f}" if b in v else "n/a" for v in ratios)] for b in benches]
        rows.append(["_lower on_", *(f"{sum(x < 1 for x in v.values())} of {len(v)}" for v in ratios)])
        rows.append(["_median ratio_", *(f"{np.median(list(v.values())):.2f}" if v else "n/a" for v in ratios)])
        rows.append(["_worst_", *(f"{max(v.values()):.2f} ({max(v, key=v.get)})" if v else "n/a" for v in ratios)])
        header = ["benchmark", *(f"÷ {display_name(r)}" + (f", first {k}" if k else "") for r, k in cols)]
        out.append(f"#### {display_name(m)}\n\n" + _md_table(header, rows))
    return "### Online: rlpfn's regret as a ratio to UCB-VI's and PSRL's\n\n" + "\n".join(out) + _footnotes(
        agents, f"Mean cumulative regret of the rlpfn agent divided by the other agent's on the same benchmark "
                f"(all episodes, and the first {early}); below 1, rlpfn's is lower.")


def _regret_cells(runs: dict[str, dict], agents: list[str], episodes: int | None) -> list[str]:
    """Cumulative regret over the first `episodes` (None: all), mean ± CI per agent; the best contenders bold."""
    stats = {a: mean_ci(np.asarray(e["regret"], float)[:, :episodes].sum(1)) for a, e in runs.items()}
    best = _best({a: float(m) for a, (m, _) in stats.items()}, lower=True)
    return [(f"**{format_pm(*stats[a])}**" if a in best else format_pm(*stats[a])) if a in stats else "n/a"
            for a in agents]


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
    return list(axes.flat[:n])


def _thin(k: int) -> np.ndarray:
    """At most MAX_CURVE_POINTS episode indices, always including the last."""
    return np.unique(np.linspace(0, k - 1, min(k, MAX_CURVE_POINTS)).round().astype(int))


def _regret_curve(ax, regret: np.ndarray, colour, label: str) -> None:
    """Mean cumulative regret of [seeds, episodes] per-episode regret, with its 95% t-band;
    hindsight variants dashed in their base agent's colour."""
    cum = np.cumsum(regret, axis=1)
    mean, hw = mean_ci(cum)
    t = _thin(cum.shape[1])
    ax.plot(t + 1, mean[t], color=colour, ls="--" if is_hindsight(label) else "-", lw=1.6,
            label=display_name(label))
    ax.fill_between(t + 1, (mean - hw)[t], (mean + hw)[t], color=colour, alpha=0.18, lw=0)


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
        save_figure(fig, path)
        return path
    axes = _grid(fig, len(benches), ncols)
    for i, (ax, b) in enumerate(zip(axes, benches)):
        meta = results["benchmarks"][b]
        for a in agents:
            if (b, a) in idx:
                _regret_curve(ax, np.asarray(idx[b, a]["regret"], float), colours[a], a)
        ax.set_title(f"{b}  (S={meta['S']}, A={meta['A']}, H={meta['H']})", fontsize=10)
        ax.set_yscale(yscale)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
    save_figure(fig, path)
    return path


def _iqm_estimates(scores: dict[str, np.ndarray], reps: int, seed: int):
    """rliable IQM point estimates and stratified-bootstrap 95% CIs, {label: (point, lo, hi)}.

    rliable 1.2's StratifiedBootstrap draws its resampling indices from the *global*
    `np.random`, ignoring `random_state`; so the global generator is seeded here for
    reproducible CIs, and its previous state restored so callers' streams are untouched.
    """
    from rliable import library as rly
    from rliable import metrics as rm

    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        with warnings.catch_warnings():  # arch: passing a RandomState is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = rly.get_interval_estimates(
                scores, lambda x: np.array([rm.aggregate_iqm(x)]), reps=reps,
                random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(saved)
    return {a: (float(point[a][0]), float(interval[a][0, 0]), float(interval[a][1, 0])) for a in scores}


def _interval_panel(ax, scores: dict[str, np.ndarray], reps: int, seed: int, colours: dict,
                    xlim: tuple[float, float], title: str) -> None:
    """One rliable-style horizontal interval plot: a bar per agent spanning its bootstrap CI, a
    coloured diamond at the IQM (visible even when the CI is thinner than a pixel), the value
    printed at the right edge, dotted lines at random (0) and optimal (1)."""
    est = _iqm_estimates(scores, reps, seed)
    labels = list(scores)
    to_right = ax.get_yaxis_transform()  # x in axes units, y in data units
    for y, a in enumerate(labels):
        point, lo, hi = est[a]
        ax.barh(y, hi - lo, left=lo, height=0.6, color=colours[a], alpha=0.45,
                hatch="///" if is_hindsight(a) else None, edgecolor=colours[a], lw=0)
        ax.plot(point, y, "D", color=colours[a], mec="k", mew=0.6, ms=6)
        ax.text(1.02, y, f"{point:.2f} [{lo:.2f}, {hi:.2f}]", transform=to_right, va="center", fontsize=8)
    ax.set_yticks(range(len(labels)), [display_name(a) for a in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first agent on top
    ax.set_xlim(*xlim)
    for x in (0.0, 1.0):
        ax.axvline(x, color="grey", ls=":", lw=1)
    runs, tasks = next(iter(scores.values())).shape
    ax.set_title(f"{title}  ({runs} runs × {tasks} benchmarks)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.25)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)


def _score_xlim(scores: list[np.ndarray]) -> tuple[float, float]:
    """A common x-range for every panel: [0, 1] widened to the data (IQM and CIs lie inside the
    range of the scores), so panels compare at a glance."""
    lo = min([0.0, *(float(s.min()) for s in scores)])
    hi = max([1.0, *(float(s.max()) for s in scores)])
    pad = 0.04 * (hi - lo)
    return lo - pad, hi + pad


def plot_aggregate(results: dict, path, reps: int = 2000, seed: int = 0) -> Path:
    """IQM normalized score over runs × benchmarks with stratified-bootstrap 95% CIs (rliable).

    Top row: online (score of the average policy). Below: one panel per offline setting, laid
    out as a grid of behaviour ε (rows) × dataset size (columns), so reading down a column shows
    the effect of data quality and across a row the effect of data quantity. All panels share
    one x-range. Each panel bootstraps from its own `seed`, so adding a panel never moves
    another's CIs.
    """
    path = Path(path)
    on, off = online_scores(results), offline_scores(results)
    eps_list = sorted({e for d in off.values() for e, _ in d})
    size_list = sorted({n for d in off.values() for _, n in d})
    off_agents = list(off)
    colours = _colours(list(dict.fromkeys([*on, *off_agents])))
    xlim = _score_xlim([*on.values(), *(s for d in off.values() for s in d.values())])
    row_h = 0.3  # inches per agent
    on_h = (0.9 + row_h * len(on)) if on else 0.0
    off_h = len(eps_list) * (0.9 + row_h * len(off_agents))
    ncols = max(len(size_list), 1)
    fig = Figure(figsize=(max(6.5, 4.8 * ncols), on_h + off_h + 1.0), layout="constrained")
    if not on and not off:
        fig.text(0.5, 0.5, "no scores to aggregate", ha="center")
        save_figure(fig, path)
        return path
    subs = fig.subfigures(2, 1, height_ratios=[on_h, off_h]) if on and off else [fig if on else None,
                                                                              fig if off else None]
    if on:
        k = results.get("config", {}).get("episodes")
        ax = subs[0].subplots(1, 1)
        _interval_panel(ax, on, reps, seed, colours, xlim,
                        f"Online: average policy over {k} episodes" if k else "Online: average policy")
    if off:
        subs[1].suptitle("Offline: datasets from the (1−ε)·π* + ε·uniform behaviour policy", fontsize=10)
        axes = subs[1].subplots(len(eps_list), ncols, squeeze=False, sharex=True)
        for (i, eps), (j, n) in ((ie, jn) for ie in enumerate(eps_list) for jn in enumerate(size_list)):
            scores = {a: d[eps, n] for a, d in off.items() if (eps, n) in d}
            if scores:
                _interval_panel(axes[i, j], scores, reps, seed, colours, xlim, f"ε = {eps:g}, {n} episodes")
            else:
                axes[i, j].set_axis_off()
    fig.supxlabel(SCORE_XLABEL, fontsize=10)
    note = f"IQM with stratified-bootstrap 95% CIs ({reps} reps): bar = CI, diamond = point estimate"
    if any(map(is_hindsight, colours)):
        note += "\n" + HINDSIGHT_NOTE
    fig.suptitle(note, fontsize=10)
    save_figure(fig, path)
    return path


# ----------------------------------------------------------------------------- report

def _header(results: dict) -> str:
    """What was run, so a results.md is interpretable on its own."""
    cfg = results.get("config", {})
    offline = bool(cfg.get("offline_agents", True))  # an online-only run has no datasets to describe
    lines = ["# rlpfn benchmark report", ""]
    if cfg.get("command"):
        lines += ["```", str(cfg["command"]), "```", ""]
    fields = [("episodes", cfg.get("episodes")), ("seeds", cfg.get("seeds")), ("base seed", cfg.get("seed")),
              ("online agents", ", ".join(cfg.get("online_agents", [])) or None),
              ("offline agents", ", ".join(cfg.get("offline_agents", [])) or None),
              ("behaviour ε", ", ".join(f"{e:g}" for e in cfg.get("epsilons", []) if offline) or None),
              ("dataset episodes", ", ".join(str(n) for n in cfg.get("dataset_sizes", []) if offline) or None),
              ("skipped (agent:benchmark)", ", ".join(cfg.get("skipped", [])) or None)]
    if cfg.get("wall_time_s") is not None:
        fields.append(("wall time", f"{cfg['wall_time_s']:.1f} s"))
    lines += [f"- {k}: {v}" for k, v in fields if v is not None]
    if cfg.get("skipped"):
        lines += ["", "Agents with a skipped benchmark are left out of the aggregate IQM plot."]
    return "\n".join(lines) + "\n"


def write_report(results: dict, out_dir, reps: int = 2000, seed: int = 0) -> list[Path]:
    """results.md (config header and both tables), regret_curves.png and aggregate_iqm.png in
    `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "results.md"
    write_text(md, "\n".join([
        _header(results),
        "![Cumulative regret](regret_curves.png)\n",
        "![Aggregate IQM](aggregate_iqm.png)\n",
        "## Online\n", online_table(results), ratio_table(results),
        "## Offline\n", offline_table(results)]))
    curves = plot_regret_curves(results, out / "regret_curves.png")
    agg = plot_aggregate(results, out / "aggregate_iqm.png", reps=reps, seed=seed)
    return [md, curves, agg]


def plot_training(metrics_csv: str | Path, out_png: str | Path, untrained: tuple = ()) -> Path:
    """Training loss parts and held-out validation regret (with UCB-VI's on the same MDPs) against steps.
    `untrained`: logged parts that the run gave weight 0 (not drawn as objectives)."""
    import csv

    from matplotlib.figure import Figure

    rows = list(csv.DictReader(Path(metrics_csv).read_text().splitlines()))

    def series(key):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])

    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    ad = any(r.get("train/accuracy") for r in rows) and not any(r.get("train/q_mse") for r in rows)  # an AD run
    logged = lambda key: any(r.get(key) for r in rows)  # noqa: E731
    transition = "train/transition_relative_ce" if logged("train/transition_relative_ce") else "train/transition_ce"
    keys = ((("train/relative_ce" if logged("train/relative_ce") else "train/loss"),) if ad else
            ("train/pinball", "train/q_mse", transition, "train/regret", "train/es_regret"))  # regret, es_regret:
    for key in (k for k in keys if k not in untrained):  # on its own rollouts
        x, y = series(key)
        if x:
            k = max(1, len(y) // 50)  # running mean over ~2% of the points
            ys = np.convolve(y, np.ones(k) / k, mode="valid")
            ax1.plot(x[k - 1:], ys, label=key.split("/")[1])
    ax1.set(xlabel="step", ylabel="running mean", yscale="log",
            title=("cross-entropy to the target actions" + (" / log A" if "train/relative_ce" in keys else ""))
            if ad else "training objectives")
    if ax1.lines:
        ax1.legend()
    deployed = "AD (sampling)" if ad else "rlpfn (as deployed: refresh local, argmax)"
    for key, label in (("val/regret", deployed), ("val/regret_ucbvi", "UCB-VI")):
        x, y = series(key)
        ax2.plot(x, y, marker="o", label=label)
    ax2.set(xlabel="step", ylabel="normalized cumulative regret", title="held-out prior validation")
    ax2.legend()
    fig.tight_layout()
    save_figure(fig, out_png)
    return Path(out_png)
