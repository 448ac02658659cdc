"""How good is a model's transition head at pairs that were already tried, as the prior mean of a Dirichlet posterior?

For prior contexts (`get_batch`) it scores P_κ = (N(s,a,·) + κ·P̃(·|s,a)) / (N(s,a) + κ) against the true P, at tried
pairs grouped by their visits N, for several strengths κ: cross-entropy in nats (lower is better) and L1 distance.
The same with P̃ uniform over the states is the baseline a head must beat. κ → 0 is the empirical P̂ (smoothed by
10⁻⁶ so that its cross-entropy is finite). A last line scores P̃ alone at the pairs the planner guesses (untried pairs
of tried states). `--rows state|true` puts the MDP's own rows in the head's place: the mean of the true rows of the
pair's state, or the true rows (bounds for a head). Issue 9: whether the head could stand in for P̂ at pairs seen once
or twice (docs/model/v2.md, "Optimism about never-visited states", "Where the exact head's room lies").
"""
from __future__ import annotations

import argparse

import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt

BUCKETS = ((1, 2), (2, 3), (3, 6), (6, 21))  # visits lo..hi-1


def label(lo: int, hi: int) -> str:
    return str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}"
KAPPAS = (1e-6, 0.1, 0.3, 1.0, 3.0)


ROWS = ("head", "state", "true")


def score(model, prior: str, batches: int, seed: int, batch_size: int = 16, rows: str = "head") -> dict:
    """{(visits, prior mean, κ): (cross-entropy, L1, pairs)} over `batches` prior batches. `rows`: what stands as
    P̃, the model's prediction (head), the mean of the true rows of the pair's state (state: which states the state
    leads to, not which action goes where), or the true rows (true)."""
    from rlpfn.prior import get_batch

    acc = {}
    for i in range(batches):
        b = get_batch(prior, batch_size, seed + i)
        P = b.P[b.mdp].double()
        if rows == "head":
            with torch.no_grad():
                predicted = model(b.context).log_p_next.double().exp()
        else:
            predicted = P.mean(2, keepdim=True).expand_as(P) if rows == "state" else P
        add(acc, predicted, P, b.context.stats.counts)
    return {key: (ce / max(m, 1), l1 / max(m, 1), m) for key, (ce, l1, m) in acc.items()}


def add(acc: dict, head: torch.Tensor, P: torch.Tensor, counts: torch.Tensor) -> None:
    """Sums of cross-entropy and L1 of P_κ to the true P [B,S,A,S] into `acc`, for the head's P̃ and for uniform;
    and of P̃ itself at the pairs the planner guesses (key "guessed", κ None)."""
    from rlpfn.model import guessed_pairs

    n = counts.sum(-1)
    sel = guessed_pairs(n)
    for name, rows in (("head", head), ("uniform", torch.full_like(P, 1 / P.shape[-1]))):
        a = acc.setdefault(("guessed", name, None), [0.0, 0.0, 0])
        a[0] += (-(P * rows.clamp_min(1e-300).log()).sum(-1))[sel].sum().item()
        a[1] += (rows - P).abs().sum(-1)[sel].sum().item()
        a[2] += int(sel.sum())
    for lo, hi in BUCKETS:
        sel = (n >= lo) & (n < hi)
        for name, mean in (("head", head), ("uniform", torch.full_like(P, 1 / P.shape[-1]))):
            for k in KAPPAS:
                blend = (counts + k * mean) / (n + k).unsqueeze(-1)
                ce = -(P * blend.clamp_min(1e-300).log()).sum(-1)
                a = acc.setdefault((label(lo, hi), name, k), [0.0, 0.0, 0])
                a[0] += ce[sel].sum().item()
                a[1] += (blend - P).abs().sum(-1)[sel].sum().item()
                a[2] += int(sel.sum())


def main() -> None:
    from rlpfn.checkpoint import load
    from rlpfn.errors import UserError
    from rlpfn.prior import load_spec

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="rlpfn-v2", help="a model with a transition head (default rlpfn-v2)")
    p.add_argument("--prior", default="wide", help="prior spec to draw contexts from (default wide)")
    p.add_argument("--batches", type=PositiveInt, default=40, help="prior batches of 16 contexts (default 40)")
    p.add_argument("--seed", type=NonNegativeInt, default=10_000, help="seed of the first batch (default 10000)")
    p.add_argument("--rows", choices=ROWS, default="head",
                   help="what stands as P̃: the checkpoint's head (default), the mean of the true rows of the pair's "
                        "state, or the true rows (bounds for the head; --checkpoint is then not read)")
    args = p.parse_args()
    model = None  # --rows state|true: the MDP's own rows, no model
    try:
        load_spec(args.prior)
        if args.rows == "head":
            model = load(args.checkpoint, "rlpfn")
    except UserError as e:
        p.error(str(e))
    if model is not None and model.transition is None:
        p.error(f"--checkpoint {args.checkpoint}: the model has no transition head")
    torch.set_num_threads(1)
    who = args.checkpoint if args.rows == "head" else f"P̃ = {args.rows} rows"
    print(f"{who} on {args.batches} batches of {args.prior}: P_κ = (N + κ·P̃)/(N + κ) at tried pairs")
    print("| visits | prior mean | " + " | ".join(f"κ = {k:g}" for k in KAPPAS) + " | pairs |")
    print("| :--- | :--- | " + " | ".join("---:" for _ in KAPPAS) + " | ---: |")
    table = score(model, args.prior, args.batches, args.seed, rows=args.rows)
    for lo, hi in BUCKETS:
        for name in ("head", "uniform"):
            cells = [table[(label(lo, hi), name, k)] for k in KAPPAS]
            shown = args.rows if name == "head" else name
            print(f"| {label(lo, hi)} | {shown} | " + " | ".join(f"{ce:.3f} ({l1:.2f})" for ce, l1, _ in cells)
                  + f" | {cells[0][2]} |")
    guessed = [table[("guessed", name, None)] for name in ("head", "uniform")]
    print(f"untried pairs of tried states (the planner's guesses), P̃ alone: {args.rows} {guessed[0][0]:.3f} "
          f"({guessed[0][1]:.2f}), uniform {guessed[1][0]:.3f} ({guessed[1][1]:.2f}), {guessed[0][2]} pairs")
    print("cross-entropy to the true P in nats (L1 distance in brackets); lower is better")


if __name__ == "__main__":
    main()
