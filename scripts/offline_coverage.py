"""Issue 9, offline bar: could an explicit coverage feature choose the offline penalty per dataset?

docs/model/offline_head.md found that no single penalty scale suits every kind of data, and that a linear read-out of
the trunk's mean output captured almost none of a per-dataset oracle's gain. This probe asks the question with the
feature made explicit: the dataset's behaviour entropy (rlpfn.stats.behaviour_entropy: per visited state, the entropy of the data's action counts
over log A, weighted by the state's visits: about 0 for expert data, 1 for uniform-random data).

For `--steps` batches of 8 prior MDPs (one dataset per cell of the benchmark's offline grid, as the offline head's
training draws them), every dataset is scored with the model's penalty (`--checkpoint`, default the shipped model)
times each of `--multipliers` (default `MULTIPLIERS`; 1, the model's own penalty, must be among them;
offline_es.shift_scores). Rules that pick one multiplier per group of datasets are then scored by
5-fold cross-validation (chosen on four folds, scored on the fifth): one multiplier for all, one per bin of the
coverage feature × dataset size, and, as a bound no model can reach, one per true behaviour ε × size.
`--json` keeps the per-dataset scores with the multipliers; `--from` reads them back instead of scoring.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

MULTIPLIERS = [1.0, 0.3, 0.1, 0.03, 0.01, 0.001, 1e-6]
EDGES = [0.2, 0.4, 0.6, 0.8]  # bins of the coverage feature


def score(prior: str, steps: int, seed: int, multipliers: list[float], checkpoint: str | None) -> list[dict]:
    from rlpfn.checkpoint import load
    from rlpfn.offline_es import datasets, shift_scores, with_offline_head
    from rlpfn.prior import load_spec, sample_sized_batch
    from rlpfn.stats import behaviour_entropy

    model, spec, rows = with_offline_head(load(checkpoint)), load_spec(prior), []
    for step in range(steps):
        batch = sample_sized_batch(spec, 8, np.random.default_rng([seed, step]))
        data = datasets(batch, seed * 1_000_003 + step)
        _, Y = shift_scores(model, batch, data, torch.log(torch.tensor(multipliers)))
        meta = [(e, stats.visits.sum().item() / stats.n_runs / batch.horizon, c)
                for eps_values, stats in data for e, c in zip(np.repeat(eps_values, len(batch)), behaviour_entropy(stats.visits.double()))]
        rows += [{"eps": float(e), "episodes": round(n), "coverage": round(float(c), 5), "scores": [round(v, 5) for v in y]}
                 for (e, n, c), y in zip(meta, Y.tolist())]
        print(f"step {step + 1}/{steps}: S {batch.n_states}, A {batch.n_actions}, H {batch.horizon}", flush=True)
    return rows


def cross_validated(Y: np.ndarray, group: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each dataset's score under the multiplier that scored best, on the other folds, in its group."""
    fold = np.random.default_rng(0).integers(0, folds, len(Y))
    out = np.zeros(len(Y))
    for f in range(folds):
        for g in np.unique(group):
            train, test = (fold != f) & (group == g), (fold == f) & (group == g)
            out[test] = Y[test, int(np.argmax(Y[train].mean(0))) if train.any() else 0]
    return out


def report(rows: list[dict], multipliers: list[float]) -> None:
    Y = np.array([r["scores"] for r in rows])
    own = multipliers.index(1.0)
    eps, big = np.array([r["eps"] for r in rows]), np.array([r["episodes"] for r in rows]) > 50
    cov = np.array([r["coverage"] for r in rows])
    rules = {"the model's penalty (× 1)": Y[:, own], "one multiplier": cross_validated(Y, np.zeros(len(Y))),
             "coverage bin × size": cross_validated(Y, np.digitize(cov, EDGES) * 2 + big),
             "true ε × size (a bound)": cross_validated(Y, eps * 4 + big), "per-dataset oracle": Y.max(1)}
    cells = [(e, b) for e in (0.0, 0.5, 1.0) for b in (False, True)]
    print(f"{len(Y)} datasets; mean normalized score per cell (ε, episodes)\n")
    print("| rule | " + " | ".join(f"ε={e:g}, {100 if b else 10}" for e, b in cells) + " | all |")
    print("| :--- |" + " ---: |" * (len(cells) + 1))
    for name, s in rules.items():
        print(f"| {name} | " + " | ".join(f"{s[(eps == e) & (big == b)].mean():.3f}" for e, b in cells) + f" | {s.mean():.3f} |")
    print("\nbest multiplier per cell: " + ", ".join(
        f"ε={e:g}, {100 if b else 10}: {multipliers[int(Y[(eps == e) & (big == b)].mean(0).argmax())]:g}" for e, b in cells))
    print("coverage feature (5th, 50th, 95th percentile): " + ", ".join(
        f"ε={e:g}: {np.percentile(cov[eps == e], [5, 50, 95]).round(2).tolist()}" for e in (0.0, 0.5, 1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="wide", help="prior spec (default: wide, v2's training prior)")
    parser.add_argument("--checkpoint", help="the model whose penalty is scaled (default: the shipped model)")
    parser.add_argument("--multipliers", type=float, nargs="+", default=MULTIPLIERS,
                        help=f"penalty multipliers, 1 among them (default: {' '.join(f'{m:g}' for m in MULTIPLIERS)})")
    parser.add_argument("--steps", type=PositiveInt, default=30, help="batches of 8 MDPs (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="save the per-dataset scores here")
    parser.add_argument("--from", dest="source", help="report the scores saved in this file instead of scoring")
    args = parser.parse_args()
    if not all(np.isfinite(m) and m > 0 for m in args.multipliers) or 1.0 not in args.multipliers:
        parser.error(f"--multipliers must be finite, > 0 and include 1 (the model's own penalty), got {args.multipliers}")
    if not args.source:  # refused before any work, in one line
        from pathlib import Path

        from rlpfn.checkpoint import check
        from rlpfn.errors import UserError
        from rlpfn.files import check_output_file

        try:
            if args.json:
                check_output_file(Path(args.json), "--json")
            if args.checkpoint and check(args.checkpoint, "rlpfn")["model"].get("offline_head"):
                parser.error(f"--checkpoint {args.checkpoint} has an offline head already; the probe scales the "
                             "penalty of a model without one")
        except UserError as e:
            parser.error(str(e))
    torch.set_num_threads(1)
    if args.source:
        saved = json.loads(open(args.source).read())
        # files written before --multipliers hold only the rows, scored with the default multipliers
        rows, multipliers = (saved, MULTIPLIERS) if isinstance(saved, list) else (saved["rows"], saved["multipliers"])
    else:
        multipliers = args.multipliers
        rows = score(args.prior, args.steps, args.seed, multipliers, args.checkpoint)
    if args.json and not args.source:
        from pathlib import Path

        from rlpfn.files import write_json

        write_json(Path(args.json), {"multipliers": multipliers, "checkpoint": args.checkpoint, "prior": args.prior,
                                     "rows": rows})
    report(rows, multipliers)


if __name__ == "__main__":
    main()
