"""Issue 9: can the model's trunk learn where untried pairs lead, better than a guess from the state's other actions?

docs/model/regret_sources.md finds that a perfect prediction of untried pairs' transitions is worth much of UCB-VI's
regret, and that guessing them from the pooled successors of the state's tried actions buys nothing. This probe
asks whether the trunk (rlpfn/model.py, untrained at the start) can learn a better prediction from the prior. A
transition head reads the trunk's output, one query per (s, a) and one key per state s', and predicts
P̂(s' | s, a) = softmax over s' (any S). The trunk and head are trained together by cross-entropy to the true P of
prior MDPs, at the pairs that matter here: untried pairs at states where some action was tried. Each step draws 8
prior MDPs of one size, a UCB-VI or random history of 1–19 episodes on each, and a point on it.

Printed every 100 steps, and then on 60 fresh batches of the training prior and of `heldout`: the cross-entropy in
nats of the model, of the state's pooled successors (mixed with uniform, at the best of four weights for each
batch: generous to it), and of uniform over all states. `--save` writes the model, a checkpoint that
scripts/regret_sources.py's `predicted` variant plays (`rlpfn pretrain --config transitions` trains the same head
with the pretraining machinery).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from jsonargparse.typing import PositiveInt
from torch import nn


def main() -> None:
    from rlpfn.agents import make_agent
    from rlpfn.checkpoint import save
    from rlpfn.errors import UserError
    from rlpfn.files import check_output_file
    from rlpfn.model import RLPFN, Context, ModelConfig, guessed_pairs
    from rlpfn.prior import load_spec, sample_sized_batch
    from rlpfn.traces import run_trace
    from rlpfn.train import transition_loss

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="default", help="training prior spec (default: default)")
    parser.add_argument("--steps", type=PositiveInt, default=1500, help="training steps (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained model here, a checkpoint (regret_sources.py --predictor)")
    parser.add_argument("--action-attention", action="store_true",
                        help="the trunk also attends across states within one action (ModelConfig.action_attention)")
    parser.add_argument("--eval", nargs="+", default=["heldout"], help="splits scored besides the training prior")
    args = parser.parse_args()
    try:  # before any work
        spec, eval_specs = load_spec(args.prior), [load_spec(split) for split in args.eval]
        if args.save:
            check_output_file(Path(f"{args.save}.json"), "--save")
    except UserError as e:
        parser.error(str(e))
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = RLPFN(ModelConfig(transition_head=True, action_attention=args.action_attention))
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)

    def batch(spec, rng):
        mdps = sample_sized_batch(spec, 8, rng)
        episodes = int(rng.integers(1, 20))
        trace = run_trace(mdps, make_agent(str(rng.choice(["ucbvi", "random"]))), episodes, int(rng.integers(2**31)))
        k = torch.as_tensor(rng.integers(1, trace.length + 1, size=8))
        ctx = Context(trace.stats_at(k, torch.arange(8)), torch.full((8,), -1), torch.zeros(8, dtype=torch.long),
                      mdps.horizon, k // mdps.horizon)
        return ctx, torch.as_tensor(mdps.P, dtype=torch.float64)

    def cross_entropies(ctx, P):
        """(model, pooled, uniform) mean cross-entropy to the true P at untried pairs of tried states; None if none."""
        counts = ctx.stats.counts
        n = counts.sum(-1)
        n_s = n.sum(-1)
        where = guessed_pairs(n)
        if not where.any():
            return None
        S = P.shape[-1]
        pooled = (counts.sum(2) / n_s.clamp_min(1)[..., None])[:, :, None, :]
        pool = min(-(P * (w * pooled + (1 - w) / S).log()).sum(-1)[where].mean() for w in (0.1, 0.3, 0.5, 0.7))
        return transition_loss(model(ctx).log_p_next, counts, P), pool, torch.tensor(np.log(S))

    rng, start, log = np.random.default_rng(args.seed), time.time(), []
    for step in range(args.steps):
        out = cross_entropies(*batch(spec, rng))
        if out is None:
            continue
        opt.zero_grad()
        out[0].backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        log.append([v.item() for v in out])
        if (step + 1) % 100 == 0:
            a = np.array(log[-100:]).mean(0)
            print(f"step {step + 1} ({time.time() - start:.0f} s): model {a[0]:.3f}, pooled {a[1]:.3f}, "
                  f"uniform {a[2]:.3f}", flush=True)
    for split, split_spec in zip((args.prior, *args.eval), (spec, *eval_specs)):
        eval_rng, rows = np.random.default_rng(12345), []
        with torch.no_grad():
            for _ in range(60):
                out = cross_entropies(*batch(split_spec, eval_rng))
                if out is not None:
                    rows.append([v.item() for v in out])
        a = np.array(rows).mean(0)
        print(f"{split}, 60 fresh batches: model {a[0]:.3f}, pooled {a[1]:.3f}, uniform {a[2]:.3f} "
              "(nats, untried pairs at tried states)")

    if args.save:
        save(model, args.save, {"name": args.prior}, {"steps": args.steps, "command": "scripts/transition_probe.py"})
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
