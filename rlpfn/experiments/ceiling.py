"""The ceiling of a per-MDP rule: how far can exploration go that is one fixed rule per MDP, chosen with hindsight?

The model's planner (rlpfn/model.py) scales UCB-VI's bonus on tried pairs by e^α and values an untried pair at a
fraction f of H - h. A head that learned, from context, one (scale c, fraction f) per MDP could at best act on each
MDP with the rule that does best there. This measures that best on a prior split, honestly:
- every rule of the grid scales × fractions acts on the same MDPs with several rollout seeds (the untrained model,
  UCB-VI's planner with the `local` refresh, at those biases); prior-tuned UCB-VI runs beside them;
- the per-MDP oracle is cross-fitted: for each rollout, each MDP's rule is the one with the lowest mean regret on
  that MDP over the *other* rollouts, and it is scored on this one. Picking and scoring on the same rollouts would
  credit the oracle with the rollouts' luck (the in-sample figure, printed too, shows how much);
- the best single rule is chosen the same way, for comparison.

If the oracle is not better than the best single rule, no head that picks a rule per MDP can be: better exploration
must change within a run and across pairs, not per MDP.

    python -m rlpfn.experiments.ceiling [--prior heldout] [--batches 8] [--rollouts 4] [--json OUT]
    python -m rlpfn.experiments.ceiling --from OUT      # the summary of a saved run again

Its MDPs are `rlpfn validate`'s for the same --prior, --batches and --seed; rollout 0 is validate's rollout.
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt

from ..errors import UserError
from ..metrics import mean_ci

SCALES = (0.03, 0.1, 0.3, 1.0, 3.0)
FRACTIONS = (1.0, 0.6, 0.3)
BAR = 0.7  # issue 9's held-out bar: at most 0.7 × UCB-VI's regret


def rule_model(scale: float, fraction: float):
    """The untrained model (UCB-VI's planner) with tried pairs' bonus × `scale` and untried pairs worth
    `fraction`·(H - h), whatever the context: the head's biases alone."""
    import torch

    from ..model import RLPFN, ModelConfig

    cfg = ModelConfig(unvisited_linear=True)
    model = RLPFN(cfg).eval()
    with torch.no_grad():
        model.head.bias[0] = math.log(scale)
        model.head.bias[2] = fraction - 1.0 / (1.0 + math.exp(-cfg.unvisited_logit))
    return model


def _job(args) -> np.ndarray:
    rule, prior, batches, seed, episodes, i, rollout = args
    from ..agents import RlpfnAgent, make_agent
    from .evaluate import prior_regret
    from .validate import held_out_batch

    agent = make_agent("ucbvi") if rule is None else RlpfnAgent.with_model(rule_model(*rule))
    mdps, rollout_seed = held_out_batch(prior, batches, seed, i, rollout)
    return prior_regret(mdps, agent, episodes, seed=rollout_seed)


def run(prior: str = "heldout", batches: int = 8, episodes: int = 100, rollouts: int = 4, seed: int = 0,
        scales=SCALES, fractions=FRACTIONS, workers: int = 2, progress: bool = True) -> dict:
    """Regrets [rollouts, rules, MDPs] of every rule, and UCB-VI's [rollouts, MDPs], on the same MDPs."""
    from .parallel import run_jobs

    rules = list(dict.fromkeys((float(c), float(f)) for c in scales for f in fractions))  # repeats once
    jobs = [(rule, prior, batches, seed, episodes, i, k) for k in range(rollouts) for rule in [None, *rules]
            for i in range(batches)]
    out = np.concatenate(run_jobs(_job, jobs, workers, "ceiling", progress)).reshape(rollouts, 1 + len(rules), -1)
    return {"rules": rules, "regret": out[:, 1:], "ucbvi": out[:, 0]}


def cross_fitted(regret: np.ndarray) -> dict:
    """From regrets [rollouts, rules, MDPs]: per MDP, the regret of the per-MDP oracle and of the best single rule,
    each picked on the other rollouts and scored on the held-out one (averaged over which one is held out); the
    in-sample oracle (picked and scored on the mean of all rollouts: biased low); and how often the oracle picked
    each rule [rules]."""
    K, C, M = regret.shape
    if K < 2:
        raise UserError(f"cross-fitting needs at least 2 rollouts, got {K}")
    mdps = np.arange(M)
    oracle, single, picks = np.zeros(M), np.zeros(M), np.zeros(C)
    for k in range(K):
        other = np.delete(regret, k, 0).mean(0)  # [rules, MDPs]
        pick = other.argmin(0)
        oracle += regret[k][pick, mdps] / K
        single += regret[k][other.mean(1).argmin()] / K
        picks += np.bincount(pick, minlength=C) / (K * M)
    return {"oracle": oracle, "single": single, "in_sample": regret.mean(0).min(0), "picks": picks}


def _name(rule) -> str:
    return f"c={rule[0]:g}, f={rule[1]:g}"


def summary(res: dict) -> dict:
    """What `main` prints: per rule and for the two cross-fitted choices, mean regret and the paired difference to
    UCB-VI over MDPs (each MDP's regret averaged over rollouts)."""
    u = res["ucbvi"].mean(0)
    fit = cross_fitted(res["regret"])
    rows = {_name(rule): res["regret"][:, j].mean(0) for j, rule in enumerate(res["rules"])}
    rows.update({"best single rule (cross-fitted)": fit["single"], "per-MDP oracle (cross-fitted)": fit["oracle"],
                 "per-MDP oracle (in-sample, biased low)": fit["in_sample"]})
    return {"ucbvi": mean_ci(u), "oracle_minus_single": mean_ci(fit["oracle"] - fit["single"]),
            "oracle_minus_bar": mean_ci(fit["oracle"] - BAR * u), "in_sample_minus_bar": mean_ci(fit["in_sample"] - BAR * u),
            "oracle_picks": {_name(rule): float(x) for rule, x in zip(res["rules"], fit["picks"])},
            "rows": {name: {"regret": mean_ci(r), "minus_ucbvi": mean_ci(r - u), "ratio": float(r.mean() / u.mean()),
                            "below_ucbvi": float(np.mean(r < u))} for name, r in rows.items()}}


def main(argv=None) -> int:
    from ..files import check_output_file, write_json
    from ..prior import load_spec

    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.ceiling", description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", default="heldout", metavar="SPEC", help="prior split (default heldout)")
    p.add_argument("--batches", type=PositiveInt, default=8, help="batches of 8 MDPs (default 8)")
    p.add_argument("--episodes", type=PositiveInt, default=100, help="episodes per run (default 100)")
    p.add_argument("--rollouts", type=PositiveInt, default=4, help="rollout seeds per MDP, at least 2 (default 4)")
    p.add_argument("--seed", type=NonNegativeInt, default=0, help="random seed (default 0)")
    p.add_argument("--scales", type=PositiveFloat, nargs="+", default=SCALES, help="bonus scales c on tried pairs")
    p.add_argument("--fractions", type=ClosedUnitInterval, nargs="+", default=FRACTIONS,
                   help="untried pairs' value, as a fraction f of H - h")
    p.add_argument("--workers", type=PositiveInt, default=2, help="worker processes (default 2)")
    p.add_argument("--json", metavar="OUT", help="also write the regrets and the summary to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--from", dest="saved", metavar="JSON",
                   help="print the summary of a saved --json file instead (with --json: write it again, summary refreshed)")
    args = p.parse_args(argv)
    try:
        if args.json:
            check_output_file(args.json, "--json")
        if args.saved:
            config, res = read_saved(args.saved)
        else:
            if args.rollouts < 2:
                raise UserError(f"--rollouts must be at least 2 for cross-fitting, got {args.rollouts}")
            if not all(map(math.isfinite, args.scales)):
                raise UserError(f"--scales must be finite, got {' '.join(map(str, args.scales))}")
            load_spec(args.prior)
            config = {k: v for k, v in vars(args).items() if k not in ("json", "quiet", "saved")}
            res = run(args.prior, args.batches, args.episodes, args.rollouts, args.seed, args.scales, args.fractions,
                      args.workers, not args.quiet)
        s = summary(res)
        if args.json:
            write_json(args.json, {"config": config, "rules": res["rules"], "regret": res["regret"].tolist(),
                                   "ucbvi": res["ucbvi"].tolist(), "summary": _jsonable(s)}, indent=1)
    except UserError as e:
        print(f"ceiling: error: {e}", file=sys.stderr)
        return 2
    K, _, M = res["regret"].shape
    print(f"{config['prior']}: {M} MDPs x {K} rollouts x {config['episodes']} episodes; "
          f"UCB-VI {s['ucbvi'][0]:.3f} ± {s['ucbvi'][1]:.3f}; mean ± 95% CI over MDPs")
    for name, r in s["rows"].items():
        print(f"{name:40s} {r['regret'][0]:.3f} ± {r['regret'][1]:.3f}   minus UCB-VI {r['minus_ucbvi'][0]:+.3f} ± "
              f"{r['minus_ucbvi'][1]:.3f}   ratio {r['ratio']:.2f}   lower on {r['below_ucbvi']:.0%}")
    for key, what in (("oracle_minus_single", "per-MDP oracle minus best single rule (both cross-fitted)"),
                      ("oracle_minus_bar", f"per-MDP oracle (cross-fitted) minus {BAR:g} x UCB-VI"),
                      ("in_sample_minus_bar", f"per-MDP oracle (in-sample) minus {BAR:g} x UCB-VI")):
        print(f"{what}: {s[key][0]:+.3f} ± {s[key][1]:.3f}")
    print("the cross-fitted oracle's picks: " + ", ".join(f"{k} {v:.0%}" for k, v in s["oracle_picks"].items() if v))
    return 0


def read_saved(path: str) -> tuple[dict, dict]:
    """A saved --json file's config and regrets, or a UserError naming what is wrong with it."""
    from .compare import read_validation

    doc = read_validation(path)
    try:
        rules = np.asarray(doc["rules"], float)
        res = {"rules": [(c, f) for c, f in rules.tolist()], "regret": np.asarray(doc["regret"], float),
               "ucbvi": np.asarray(doc["ucbvi"], float)}
        config = dict(doc["config"])
        if not {"prior", "episodes"} <= config.keys():
            raise KeyError("config")
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: not a file written by this command's --json") from None
    K, C, M = res["regret"].shape if res["regret"].ndim == 3 else (0, 0, 0)
    if K < 2 or M == 0 or C != len(rules) or res["ucbvi"].shape != (K, M):
        raise UserError(f"{path}: its regrets do not match its rules and UCB-VI's (not this command's --json)")
    if not all(np.isfinite(x).all() for x in (rules, res["regret"], res["ucbvi"])):
        raise UserError(f"{path}: holds rules or regrets that are not finite numbers")
    return config, res


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return [_jsonable(v) for v in x]
    return float(x)


if __name__ == "__main__":
    raise SystemExit(main())
