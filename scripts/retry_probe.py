"""Can a model tell, in context, which passed-over action is worth retrying? (issue 9; docs/model/v2.md, "Where v2
loses, and a log term per state")

v2 acts for 100 episodes in MDPs of the training prior (never validate's: `--seed` draws others). At episodes 10, 30
and 60 its statistic is read back as a context, and at every tried, non-greedy pair of a state visited at least 20
times the label says whether that action is truly better than the one v2's planner prefers there (Q* at stage 0).
Logistic regressions on three inputs are fitted on the first three quarters of the batches and scored (AUC) on the
rest: the trunk's per-pair tokens (what the head reads), the counts and the planner's value gap (log N, log N_s and
(Q_plan(greedy) - Q_plan(a)) / H: what a bonus rule can read), and both.

`--variants BETA ...` then fits the tokens-only regression on every batch and writes, per β, a copy of the checkpoint
whose bonus multiplier per pair is 0.3 · exp(β · (logit - its mean over the fitted pairs)): the head's α row set to
the regression, so that a pair the probe thinks worth retrying gets more bonus (`--out PREFIX`: PREFIX-bBETA).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt

EPISODES, SNAPSHOTS = 100, (10, 30, 60)


def probe_data(model, batches: int, seed: int):
    """(tokens [K,d], simple features [K,3], labels [K], batch index [K]) over the batches."""
    from rlpfn.agents import RlpfnAgent
    from rlpfn.model import Context
    from rlpfn.prior import load_spec, sample_sized_batch
    from rlpfn.traces import run_trace

    spec, rng = load_spec("wide"), np.random.default_rng(seed)
    tokens = []
    hook = model.head.register_forward_hook(lambda module, inputs, output: tokens.append(inputs[0].detach()))
    X, F, Y, G = [], [], [], []
    for b in range(batches):
        mdps = sample_sized_batch(spec, 8, rng)
        trace = run_trace(mdps, RlpfnAgent.with_model(model), EPISODES, seed=seed + b, n_runs=len(mdps))
        H, A, M = mdps.horizon, mdps.n_actions, len(mdps)
        q_star = mdps.solution.Q[:, 0]  # [M,S,A]
        for k in SNAPSHOTS:
            T = k * H
            st = trace.stats_at(torch.full((M,), T), torch.arange(M))  # each run's first k episodes
            tokens.clear()
            with torch.no_grad():
                out = model(Context.at(st, trace.s[:, T], 0, H, k), transitions=False)
            n, q = st.visits, out.q_plan[:, 0]
            greedy = q.argmax(-1, keepdim=True)
            spread = q_star.amax(-1, keepdim=True) - q_star.amin(-1, keepdim=True)
            better = q_star > q_star.gather(-1, greedy) + 1e-6 * spread
            n_s = n.sum(-1, keepdim=True).expand_as(n)
            mask = (n > 0) & (n_s >= 20) & (torch.arange(A) != greedy)
            gap = (q.gather(-1, greedy) - q) / H
            X.append(tokens[-1].double()[mask])
            F.append(torch.stack([n.clamp_min(1).log(), n_s.clamp_min(1).log(), gap], -1)[mask])
            Y.append(better[mask].double())
            G.append(torch.full((int(mask.sum()),), b))
    hook.remove()
    return tuple(torch.cat(v) for v in (X, F, Y, G))


def fit_logistic(Z: torch.Tensor, y: torch.Tensor, l2: float = 1e-2) -> torch.Tensor:
    """[d+1] weights and bias of an L2-regularized logistic regression (LBFGS)."""
    w = torch.zeros(Z.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    Zb = torch.cat([Z, torch.ones(len(Z), 1, dtype=torch.float64)], 1)
    opt = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Zb @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def auc(score: torch.Tensor, y: torch.Tensor) -> float:
    """The probability that a positive scores above a negative (ties counted by rank order)."""
    ranks = torch.empty_like(score)
    ranks[score.argsort()] = torch.arange(1, len(score) + 1, dtype=score.dtype)
    pos = y > 0.5
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def standardized_fit(Z, y):
    mu, sd = Z.mean(0), Z.std(0) + 1e-9
    w = fit_logistic((Z - mu) / sd, y)
    return lambda Z2: ((Z2 - mu) / sd) @ w[:-1] + w[-1], (w[:-1] / sd, w[-1] - (w[:-1] * mu / sd).sum())


def with_retry_row(model, w: torch.Tensor, b: float, centre: float, beta: float):
    """The model with its head's α row set so that a pair's bonus multiplier is its old one times
    exp(β · (w·x + b - centre)), x the pair's token: × 1 at the logit `centre`."""
    with torch.no_grad():
        model.head.weight[0] += (beta * w).to(model.head.weight.dtype)
        model.head.bias[0] += float(beta * (b - centre))
    return model


def main() -> None:
    from rlpfn.checkpoint import load, save
    from rlpfn.files import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="rlpfn-v2")
    parser.add_argument("--batches", type=PositiveInt, default=48, help="batches of 8 MDPs of `wide`")
    parser.add_argument("--seed", type=NonNegativeInt, default=12345)
    parser.add_argument("--variants", type=PositiveFloat, nargs="*", default=[], metavar="BETA")
    parser.add_argument("--out", default=None, help="prefix of the variants' checkpoints")
    parser.add_argument("--json", required=True, help="where to write the AUCs")
    args = parser.parse_args()
    from rlpfn.errors import UserError
    from rlpfn.files import check_output_file

    if args.variants and not args.out:
        parser.error("--variants needs --out")
    if args.batches < 4:
        parser.error(f"--batches {args.batches}: needs at least 4 (a quarter of them is held out)")
    try:  # a bad checkpoint or output: refused before any work
        model = load(args.checkpoint, "rlpfn").eval()
        check_output_file(args.json, "--json")
        for beta in args.variants:
            check_output_file(f"{args.out}-b{beta:g}.json", "--out")
    except UserError as e:
        parser.error(str(e))
    torch.set_num_threads(2)
    X, F, Y, G = probe_data(model, args.batches, args.seed)
    train = G < int(0.75 * args.batches)
    res = {"pairs": len(Y), "positives": int(Y.sum()), "batches": args.batches, "seed": args.seed}
    for name, Z in (("tokens", X), ("counts and value gap", F.double()), ("both", torch.cat([X, F.double()], -1))):
        score, _ = standardized_fit(Z[train], Y[train])
        res[name] = {"auc_held_out": auc(score(Z[~train]), Y[~train]), "auc_train": auc(score(Z[train]), Y[train])}
        print(f"{name:22s} AUC on held-out batches {res[name]['auc_held_out']:.3f} (train {res[name]['auc_train']:.3f})")
    write_json(args.json, res)
    if args.variants:
        score, (w, b) = standardized_fit(X, Y)
        centre = float(score(X).mean())
        for beta in args.variants:
            copy = with_retry_row(load(args.checkpoint, "rlpfn"), w, float(b), centre, beta)
            training = {**copy.meta.get("training", {}),
                        "retry_probe": {"of": args.checkpoint, "beta": beta, "batches": args.batches, "seed": args.seed}}
            print(f"wrote {save(copy, f'{args.out}-b{beta:g}', copy.meta.get('prior', {}), training)}")


if __name__ == "__main__":
    main()
