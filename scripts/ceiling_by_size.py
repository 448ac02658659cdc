"""Issue 9: does the best bonus scale depend on the MDP's size? Read from a `rlpfn.experiments.ceiling --json` file.

The ceiling's MDPs come in batches of 8 that share S, A and H. Each rule below picks one of the file's rules per
group of MDPs, on the other rollouts, and is scored on the held-out rollout (cross-fitted, as the ceiling does):
one rule for all, one per bin of S, one per (S, A, H) batch, and one per MDP. Printed: each rule's mean normalized
regret, its ratio to the file's UCB-VI, and its difference to that UCB-VI, paired over MDPs (mean ± 95% CI).

`--against VALIDATE_JSON LABEL` also compares with another agent run by `rlpfn validate` on the same MDPs (the same
prior, batches and seed: validate's seeds are the ceiling's rollout 0, checked on UCB-VI's column). It scores the
rules on rollout 0 only: each fixed rule, the per-MDP oracle chosen on the other rollouts, and the in-sample oracle.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def cross_fitted(R: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """R [rollouts, rules, MDPs]: each MDP's regret, averaged over rollouts, under the rule that scored best in its
    group on the other rollouts."""
    out = np.zeros(R.shape[2])
    for r in range(R.shape[0]):
        others = [o for o in range(R.shape[0]) if o != r]
        for g in np.unique(groups):
            m = groups == g
            out[m] += R[r, int(np.argmin(R[others][:, :, m].mean((0, 2)))), m] / R.shape[0]
    return out


def main() -> None:
    from rlpfn.experiments.evaluate import validation_mdps
    from rlpfn.metrics import mean_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a ceiling --json file")
    parser.add_argument("--against", nargs=2, metavar=("VALIDATE_JSON", "LABEL"),
                        help="also compare rollout 0 with agent LABEL of this `rlpfn validate --json` file")
    args = parser.parse_args()
    doc = json.loads(open(args.json).read())
    cfg, R, ucbvi = doc["config"], np.array(doc["regret"]), np.array(doc["ucbvi"]).mean(0)
    batches = validation_mdps(cfg["prior"], cfg["batches"], seed=cfg["seed"] + 777)  # as the ceiling draws them
    S = np.repeat([b.n_states for b in batches], 8)
    rules = {"one rule for all": np.zeros(len(S)), "per S bin (8, 24, 64)": np.digitize(S, [8, 24, 64]),
             "per S bin (12, 40)": np.digitize(S, [12, 40]), "per (S, A, H) batch": np.repeat(np.arange(len(batches)), 8),
             "per MDP": np.arange(len(S))}
    print(f"{cfg['prior']}: {len(S)} MDPs x {R.shape[0]} rollouts; UCB-VI {ucbvi.mean():.3f}")
    for name, groups in rules.items():
        x = cross_fitted(R, groups)
        m, ci = mean_ci(x - ucbvi)
        print(f"  {name:<24} {x.mean():.3f}  ratio {x.mean() / ucbvi.mean():.2f}  minus UCB-VI {m:+.3f} ± {ci:.3f}")
    if args.against:
        path, label = args.against
        other = json.loads(open(path).read())["regret"]
        if not np.array_equal(np.array(other["ucbvi"]), np.array(doc["ucbvi"])[0]):
            raise SystemExit(f"{path}: its UCB-VI differs from rollout 0's: not the same MDPs and seeds")
        ref = np.array(other[label])
        print(f"rollout 0 against {label} ({ref.mean():.3f}):")
        others = R[1:].mean(0)  # [rules, MDPs]
        rows = {f"c={c:g}, f={f:g}": R[0, i] for i, (c, f) in enumerate(doc["rules"])}
        rows["per-MDP oracle (chosen on the other rollouts)"] = R[0, others.argmin(0), np.arange(len(S))]
        rows["per-MDP oracle (in-sample)"] = R[0].min(0)
        for name, x in rows.items():
            m, ci = mean_ci(x - ref)
            print(f"  {name:<46} {x.mean():.3f}  ratio {x.mean() / ref.mean():.2f}  minus it {m:+.3f} ± {ci:.3f}  "
                  f"lower on {np.mean(x < ref):.0%}")


if __name__ == "__main__":
    main()
