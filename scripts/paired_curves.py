"""Two pretraining runs' logged metric compared step by step, in windows of steps.

Runs with the same data seed draw the same prior batches at the same steps (rlpfn.train), so the difference of a
training loss at a logged step is paired: the batch's own difficulty cancels, and what is left is the models'.
Prints, per window, each run's mean and the mean paired difference (second minus first) ± a 95% t-interval over
the logged steps in it. The steps are logged every trainer.log_every; each run's metrics.csv is read (or a CSV of
the same columns, such as the docs' trimmed copies).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from jsonargparse.typing import PositiveInt


def read_metric(path: Path, metric: str) -> dict[int, float]:
    """{step: value} of `metric` in a metrics CSV (rows without it skipped)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        names = [str(n) for n in reader.fieldnames or []]
        missing = [c for c in ("step", metric) if c not in names]
        if missing:
            raise KeyError(f"{path}: no column {missing[0]!r} (columns: {', '.join(names) or 'none'})")
        return {int(r["step"]): float(r[metric]) for r in reader if r.get(metric)}


def windows(a: dict[int, float], b: dict[int, float], width: int) -> list[dict]:
    """Per window of `width` steps holding steps logged by both runs: n, each run's mean, b − a's mean and CI."""
    from rlpfn.metrics import mean_ci

    common = sorted(set(a) & set(b))
    out = []
    for lo in range(0, (common[-1] // width + 1) * width if common else 0, width):
        steps = [s for s in common if lo <= s < lo + width]
        if not steps:
            continue
        diff, half = mean_ci(np.array([b[s] - a[s] for s in steps]))
        out.append({"steps": f"{lo}-{lo + width - 1}", "n": len(steps), "first": float(np.mean([a[s] for s in steps])),
                    "second": float(np.mean([b[s] for s in steps])), "diff": float(diff), "ci": float(half)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="the reference run's metrics CSV")
    parser.add_argument("second", type=Path, help="the other run's metrics CSV")
    parser.add_argument("--metric", default="train/transition_relative_ce", help="column to compare")
    parser.add_argument("--window", type=PositiveInt, default=500, help="steps per window (default 500)")
    args = parser.parse_args()
    try:
        a, b = read_metric(args.first, args.metric), read_metric(args.second, args.metric)
    except (OSError, KeyError, ValueError, csv.Error) as e:
        parser.error(str(e).strip('"'))
    rows = windows(a, b, args.window)
    if not rows:
        parser.error(f"the two runs share no logged step of {args.metric}")
    print(f"{args.metric}: second ({args.second}) minus first ({args.first}), paired by step")
    print("| steps | logged | first | second | second minus first |\n| :--- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['steps']} | {r['n']} | {r['first']:.3f} | {r['second']:.3f} | {r['diff']:+.3f} ± {r['ci']:.3f} |")


if __name__ == "__main__":
    main()
