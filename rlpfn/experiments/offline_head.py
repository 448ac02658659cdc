"""Train the offline head β of a model by evolution strategies on prior MDPs' offline scores (rlpfn/offline_es.py).

`python -m rlpfn.experiments.offline_head --out DIR [--base CHECKPOINT] [--prior wide] [--steps N] ...` starts from
`--base` (default: the shipped model) with β a copy of its α, so that step 0 acts offline exactly as the base does;
only β's row moves (Adam on the ES estimate). Every step draws MDPs from the prior (one (S, A, H) bucket) and one
dataset per (ε, size) of the benchmark's offline cells. DIR holds the model (DIR/model.*, a checkpoint for
`--checkpoint`), a CSV log and the resume state; `--resume` continues a stopped run where it left off.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt

from ..errors import UserError

STATE = "state.safetensors"


def train(out: Path, base: str | None, prior: str, steps: int, pairs: int, mdps: int, sigma: float, lr: float,
          seed: int, save_every: int, resume: bool, progress: bool = True) -> Path:
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    from ..checkpoint import load, save
    from ..files import atomic, write_text
    from ..offline_es import OFFLINE, datasets, offline_gradient, with_offline_head
    from ..prior import load_spec, sample_sized_batch

    spec = load_spec(prior)
    if resume:
        if not (out / STATE).exists():
            raise UserError(f"--resume: nothing to resume in {out} (no {STATE}); run without --resume first")
        model = load(out / "model")
        done = json.loads((out / "progress.json").read_text())["step"]
    else:
        if (out / STATE).exists():
            raise UserError(f"{out} holds a previous run ({STATE}): pass --resume to continue it, or choose another --out")
        model = with_offline_head(load(base))
        done = 0
    for p in model.parameters():
        p.requires_grad_(False)
    theta = torch.cat([model.head.weight[OFFLINE], model.head.bias[OFFLINE:OFFLINE + 1]]).clone().requires_grad_()
    opt = torch.optim.Adam([theta], lr=lr)
    if resume:
        st = load_file(str(out / STATE))
        opt.state[theta] = {"step": st["step"], "exp_avg": st["exp_avg"], "exp_avg_sq": st["exp_avg_sq"]}
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.csv"
    if not resume:
        log.write_text("step,S,A,H,score,grad_norm,beta_bias\n")
    record = {"prior": {"spec": prior}, "training": {"command": "python -m rlpfn.experiments.offline_head " +
                                                     " ".join(sys.argv[1:]), "base": base or "shipped"}}
    bar = tqdm(range(done, steps), initial=done, total=steps, desc="offline head", disable=not progress)
    for step in bar:
        batch = sample_sized_batch(spec, mdps, np.random.default_rng([seed, step]))
        data = datasets(batch, seed * 1_000_003 + step)
        g, score = offline_gradient(model, batch, data, pairs, sigma, torch.Generator().manual_seed(seed * 7919 + step))
        opt.zero_grad()
        theta.grad = -g  # ascend the score
        opt.step()
        with torch.no_grad():
            model.head.weight[OFFLINE] = theta[:-1]
            model.head.bias[OFFLINE] = theta[-1]
        with log.open("a") as f:
            csv.writer(f).writerow([step, batch.n_states, batch.n_actions, batch.horizon, f"{score:.5f}",
                                    f"{g.norm():.5f}", f"{theta[-1].item():.5f}"])
        bar.set_postfix(score=f"{score:.3f}")
        if (step + 1) % save_every == 0 or step + 1 == steps:
            save(model, out / "model", record["prior"], {**record["training"], "steps": step + 1})
            st = opt.state[theta]
            with atomic(out / STATE) as tmp:
                save_file({"step": torch.as_tensor(st["step"]).reshape(()), "exp_avg": st["exp_avg"],
                           "exp_avg_sq": st["exp_avg_sq"]}, str(tmp))
            write_text(out / "progress.json", json.dumps({"step": step + 1}) + "\n")
    return out / "model"


RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)


def train_supervised(out: Path, base: str | None, prior: str, steps: int, mdps: int, seed: int,
                     progress: bool = True) -> Path:
    """β = α + a ridge regression of each prior dataset's best shift on the trunk's summary (offline_es.fit_shift);
    the ridge is chosen by 5-fold cross-validation over whole steps (the training prior only)."""
    from tqdm import tqdm

    from ..checkpoint import load, save
    from ..files import write_json
    from ..offline_es import OFFLINE, SHIFTS, datasets, fit_shift, shift_scores, with_offline_head
    from ..prior import load_spec, sample_sized_batch

    if (out / "model.json").exists():
        raise UserError(f"{out} holds a model already: choose another --out")
    spec = load_spec(prior)
    model = with_offline_head(load(base))
    X, Y, step_of = [], [], []
    for step in tqdm(range(steps), desc="offline head (supervised)", disable=not progress):
        batch = sample_sized_batch(spec, mdps, np.random.default_rng([seed, step]))
        x, y = shift_scores(model, batch, datasets(batch, seed * 1_000_003 + step))
        X.append(x)
        Y.append(y)
        step_of.append(torch.full((len(x),), step))
    X, Y, step_of = torch.cat(X), torch.cat(Y), torch.cat(step_of)
    fold = step_of % 5

    def snapped(x, y, w):  # the score of the predicted shift, rounded to the nearest in SHIFTS
        pick = ((torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) @ w)[:, None] - SHIFTS.double()).abs()
        return y[torch.arange(len(y)), pick.argmin(1)].mean().item()

    cv = {r: float(np.mean([snapped(X[fold == k], Y[fold == k], fit_shift(X[fold != k], Y[fold != k], r))
                            for k in range(5)])) for r in RIDGES}
    ridge = max(cv, key=cv.get)
    w = fit_shift(X, Y, ridge)
    with torch.no_grad():
        model.head.weight[OFFLINE] += w[:-1].float()
        model.head.bias[OFFLINE] += w[-1].float()
    summary = {"datasets": len(Y), "base": Y[:, 0].mean().item(), "per_shift": Y.mean(0).tolist(),
               "oracle": Y.max(1).values.mean().item(), "cross_validated": cv, "ridge": ridge,
               "in_sample": snapped(X, Y, w)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "supervised.json", summary, indent=1)
    save(model, out / "model", {"spec": prior}, {"command": "python -m rlpfn.experiments.offline_head " +
                                                 " ".join(sys.argv[1:]), "base": base or "shipped", **summary})
    print(f"{len(Y)} datasets; mean score: base {summary['base']:.4f}, best single shift {max(summary['per_shift']):.4f},"
          f" per-dataset oracle {summary['oracle']:.4f}")
    print("cross-validated: " + ", ".join(f"ridge {r:g} {v:.4f}" for r, v in cv.items()) + f"; chose {ridge:g}")
    return out / "model"


def _score_job(args) -> list[float]:
    from ..agents import make_agent
    from ..offline_es import SETTINGS
    from .evaluate import run_offline

    (name, hparams), mdp, seeds = args
    agent = make_agent(name, **hparams)
    return [float(run_offline(mdp, agent, eps, n, seeds, 0).scores.mean()) for eps, n in SETTINGS]


def score(checkpoints: list[str], prior: str, n_mdps: int, seeds: int, seed: int, workers: int,
          progress: bool = True) -> dict:
    """Normalized offline scores [agent][MDP, setting] of VI-LCB (tuned) and rlpfn with each checkpoint, on `n_mdps`
    MDPs of `prior` (a held-out split), `seeds` datasets per MDP and setting (offline_es.SETTINGS)."""
    from ..benchmarks import SUITE, make_benchmark
    from ..prior.sampler import sample_prior_mdps
    from ..prior.spec import load_spec
    from .parallel import run_jobs

    # "suite": the benchmark suite's offline cells, a report only (nothing here is chosen on it)
    mdps = [make_benchmark(b) for b in SUITE] if prior == "suite" else sample_prior_mdps(load_spec(prior), n_mdps, seed)
    n_mdps = len(mdps)
    agents = {"vilcb": ("vilcb", {}), **{c: ("rlpfn", {"checkpoint": c}) for c in checkpoints}}
    jobs = [(a, m, seeds) for a in agents.values() for m in mdps]
    res = np.array(run_jobs(_score_job, jobs, workers, "scoring", progress)).reshape(len(agents), n_mdps, -1)
    return {name: res[i] for i, name in enumerate(agents)}


def print_scores(scores: dict) -> None:
    from ..offline_es import SETTINGS

    base = scores["vilcb"]
    print("mean normalized offline score over MDPs (higher is better); minus VI-LCB: paired mean ± 95% CI")
    print(f"{'':28s}" + "".join(f"  eps={e:g},n={n:<3d}" for e, n in SETTINGS) + "   all")
    for name, s in scores.items():
        print(f"{name[-28:]:28s}" + "".join(f"  {x:12.3f}" for x in s.mean(0)) + f"  {s.mean():.3f}")
        if name != "vilcb":
            d = s - base
            ci = 1.96 * d.std(0, ddof=1) / np.sqrt(len(d))
            print(f"{'  minus VI-LCB':28s}" + "".join(f"  {m:+6.3f}±{c:.3f}" for m, c in zip(d.mean(0), ci))
                  + f"  {d.mean():+.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.offline_head", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="run folder: model, log.csv, resume state")
    p.add_argument("--base", default=None, metavar="CHECKPOINT", help="model to start from (default: the shipped one)")
    p.add_argument("--prior", default="wide", metavar="SPEC", help="training prior (default wide)")
    p.add_argument("--steps", type=PositiveInt, default=200, help="ES steps in all (default 200)")
    p.add_argument("--pairs", type=PositiveInt, default=16, help="antithetic pairs per estimate (default 16)")
    p.add_argument("--mdps", type=PositiveInt, default=8, help="prior MDPs per step (default 8)")
    p.add_argument("--sigma", type=PositiveFloat, default=0.1, help="perturbation scale (default 0.1)")
    p.add_argument("--lr", type=PositiveFloat, default=0.02, help="Adam's step size (default 0.02)")
    p.add_argument("--seed", type=NonNegativeInt, default=0, help="random seed (default 0)")
    p.add_argument("--save-every", type=PositiveInt, default=10, help="steps between saves (default 10)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--supervised", action="store_true",
                   help="instead of ES: regress each prior dataset's best β shift on the trunk's summary (--steps "
                        "batches of --mdps MDPs; the ridge by cross-validation)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--score", nargs="+", metavar="CHECKPOINT",
                   help="instead: score these checkpoints and VI-LCB offline on --prior (a held-out split, or "
                        "'suite': the benchmark suite's offline cells)")
    p.add_argument("--n-mdps", type=PositiveInt, default=24, help="--score: MDPs (default 24)")
    p.add_argument("--seeds", type=PositiveInt, default=4, help="--score: datasets per MDP and setting (default 4)")
    p.add_argument("--json", metavar="OUT", help="--score: also write the scores here")
    args = p.parse_args(argv)
    try:
        from ..checkpoint import CheckpointError
        from ..files import check_output_dir, check_output_file

        if args.score:
            from ..files import write_json

            if args.json:
                check_output_file(args.json, "--json")
            scores = score(args.score, args.prior, args.n_mdps, args.seeds, args.seed, 2, not args.quiet)
            print_scores(scores)
            if args.json:
                write_json(args.json, {"config": {k: v for k, v in vars(args).items() if k != "json"},
                                       "scores": {k: v.tolist() for k, v in scores.items()}}, indent=1)
            return 0
        if not args.out:
            raise UserError("--out is required to train (or --score CHECKPOINT ... to score)")
        for key in ("sigma", "lr"):
            if not math.isfinite(getattr(args, key)):
                raise UserError(f"--{key} must be finite, got {getattr(args, key)}")
        check_output_dir(args.out)
        if args.supervised:
            path = train_supervised(Path(args.out), args.base, args.prior, args.steps, args.mdps, args.seed,
                                    not args.quiet)
            print(f"wrote {path}.json (and .safetensors)")
            return 0
        path = train(Path(args.out), args.base, args.prior, args.steps, args.pairs, args.mdps, args.sigma, args.lr,
                     args.seed, args.save_every, args.resume, not args.quiet)
    except (UserError, CheckpointError) as e:
        print(f"offline_head: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}.json (and .safetensors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
