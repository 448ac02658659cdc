"""Paired comparison of checkpoints on held-out MDPs, and a control for a trained head.

`rlpfn validate --agents ucbvi rlpfn --checkpoint X --json X.json` scores one checkpoint; this compares several
such files on the same MDPs and seeds (their UCB-VI regrets must agree, which checks that):

    python -m rlpfn.experiments.compare BASE.json OTHER.json ...

prints, per file, the rlpfn agent's regret, its paired difference to UCB-VI and to the first file's model (mean ±
95% CI over MDPs) and the share of MDPs where it is lower.

    python -m rlpfn.experiments.compare --base AGENT FILE.json [MORE.json ...]

prints every agent of one validate file (`--agents` may name several checkpoints: 'rlpfn[checkpoint=PATH]')
against the agent named AGENT in it: regret, paired difference and share of MDPs where it is lower. Several files
of one validate setting (the same prior, batches, seed, episodes and rollouts: the same MDPs and seeds) count as one:
an agent scored in two of them must have the same regrets in both (to 1e-9). With `--by-family`, also the paired
difference within each of the prior's families (the MDPs are drawn again from the file's `config`: prior, batches,
seed).

    python -m rlpfn.experiments.compare --random-head TRAINED BASE OUT [--seed 1]

writes OUT: the checkpoint BASE with the head rows that acting reads set to random directions of TRAINED's norms
(biases copied). Scored like the others, it tells a learned head from one that is merely large.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt

from ..errors import UserError
from ..metrics import mean_ci

# Two runs of the same MDPs and seeds agree to the last bits that summation order moves; a run that went another
# way differs by far more. Below this, two regrets are the same (for "lower on" shares, and for merging files).
SAME = 1e-9


def lower(r: np.ndarray, b: np.ndarray) -> float:
    """The share of MDPs where r is lower than b by more than round-off."""
    return float(np.mean(r < b - SAME))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= SAME))


def paired_table(docs: dict[str, dict], agent: str = "rlpfn") -> list[dict]:
    """{name: validate JSON} -> per name: mean ± CI of `agent`'s regret, its paired difference to UCB-VI and to the
    first name's `agent`, and the shares of MDPs where it is lower."""
    rows, base, ref = [], None, None
    for name, doc in docs.items():
        reg = doc.get("regret") if isinstance(doc, dict) else None
        if not isinstance(reg, dict) or agent not in reg or "ucbvi" not in reg:
            raise UserError(f"{name}: holds no {agent!r} and 'ucbvi' regrets (validate --agents ucbvi {agent})")
        r, u = (_regrets(name, key, reg[key]) for key in (agent, "ucbvi"))
        if r.shape != u.shape:
            raise UserError(f"{name}: {len(r)} {agent!r} regrets but {len(u)} 'ucbvi' ones")
        if base is None:
            base, ref, first = r, u, name
        elif not same(u, ref):
            raise UserError(f"{name}: its UCB-VI regrets differ from {first}'s: not the same MDPs and seeds")
        rows.append({"name": name, "regret": mean_ci(r), "minus_ucbvi": mean_ci(r - u),
                     "below_ucbvi": lower(r, u), "minus_first": mean_ci(r - base),
                     "below_first": lower(r, base), "ucbvi": mean_ci(u)})
    return rows


def against(doc: dict, name: str, base: str) -> list[dict]:
    """Every agent of one validate JSON against the agent `base` in it: mean ± CI of its regret, its paired
    difference to `base` and the share of MDPs where it is lower."""
    reg = doc.get("regret") if isinstance(doc, dict) else None
    if not isinstance(reg, dict) or base not in reg:
        raise UserError(f"{name}: holds no {base!r} regrets (it holds: {', '.join(reg or {}) or 'none'})")
    b = _regrets(name, base, reg[base])
    rows = []
    for agent, values in reg.items():
        r = _regrets(name, agent, values)
        if r.shape != b.shape:
            raise UserError(f"{name}: {len(r)} {agent!r} regrets but {len(b)} {base!r} ones")
        rows.append({"name": agent, "regret": mean_ci(r), "minus_base": mean_ci(r - b),
                     "below_base": lower(r, b)})
    return rows


SETTING = ("prior", "batches", "seed", "episodes", "rollouts")  # what makes two validate files the same MDPs and seeds


def merged(docs: dict[str, dict]) -> dict:
    """One validate document from several of the same setting (SETTING of their configs): the agents of all of
    them. A UserError names a file whose setting differs from the first's, or an agent two files disagree on."""
    for name, d in docs.items():
        if not (isinstance(d, dict) and isinstance(d.get("regret"), dict)):
            raise UserError(f"{name}: holds no regrets (written by rlpfn validate --json)")
    # files written before validate had --rollouts hold no "rollouts": one rollout
    setting = lambda d: {k: {"rollouts": 1, **(d.get("config") or {})}.get(k) for k in SETTING}  # noqa: E731
    (first, doc), *rest = docs.items()
    out = {"config": doc.get("config"), "regret": dict(doc["regret"])}
    source = dict.fromkeys(doc["regret"], first)
    for name, d in rest:
        if setting(d) != setting(doc):
            raise UserError(f"{name}: validated {setting(d)}, but {first} {setting(doc)}: not the same MDPs and seeds")
        for agent, values in d["regret"].items():
            if agent in out["regret"] and not same(_regrets(name, agent, values),
                                                   _regrets(source[agent], agent, out["regret"][agent])):
                raise UserError(f"{name}: its {agent!r} regrets differ from those in {source[agent]} (a plain 'rlpfn' "
                                "is each file's --checkpoint; or the runs' code or CPU kernels differed: "
                                "docs/reproducibility.md)")
            out["regret"].setdefault(agent, values)  # the first file's, where two agree
            source.setdefault(agent, name)
    return out


def families(doc: dict, name: str) -> np.ndarray:
    """The family of each MDP a `rlpfn validate --json` file was scored on, drawn again from its config."""
    from .validate import held_out_batch

    cfg = doc.get("config") if isinstance(doc, dict) else None
    try:
        prior, batches, seed = cfg["prior"], int(cfg["batches"]), int(cfg["seed"])
    except (TypeError, KeyError, ValueError):
        raise UserError(f"{name}: no config with prior, batches and seed (written by rlpfn validate --json)") from None
    out = []
    for i in range(batches):
        mdps, _ = held_out_batch(prior, batches, seed, i)
        fam = mdps.meta.get("family", "?")
        out += [fam] * len(mdps) if isinstance(fam, str) else list(fam)
    return np.array(out)


def _regrets(name: str, key: str, values) -> np.ndarray:
    """One agent's per-MDP regrets: a non-empty list of finite numbers, or a UserError naming it."""
    try:
        r = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        r = None
    if r is None or r.ndim != 1 or r.size == 0 or not np.isfinite(r).all():
        raise UserError(f"{name}: the {key!r} regrets are not a list of finite numbers")
    return r


def read_validation(path: str) -> dict:
    """A `rlpfn validate --json` file, or a UserError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a JSON file ({e})") from None


def random_head(trained, base, seed: int):
    """`base` (a model, changed in place and returned) with each acting head row a random direction of the norm of
    `trained`'s row, and `trained`'s biases."""
    from ..es import acting_rows

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for row in acting_rows(trained):
            w = torch.randn(base.head.weight.shape[1], generator=gen, dtype=base.head.weight.dtype)
            base.head.weight[row] = w / w.norm() * trained.head.weight[row].norm()
            base.head.bias[row] = trained.head.bias[row]
    return base


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help="`rlpfn validate --json` files of the same MDPs and seeds")
    p.add_argument("--random-head", nargs=3, metavar=("TRAINED", "BASE", "OUT"),
                   help="instead: write the control checkpoint OUT (see the module's description)")
    p.add_argument("--seed", type=NonNegativeInt, default=1, help="seed of the random directions (default 1)")
    p.add_argument("--base", metavar="AGENT", help="instead: every agent of the files (one validate setting) "
                   "against this one of them")
    p.add_argument("--by-family", action="store_true", help="with --base: also per family of the prior")
    args = p.parse_args(argv)
    fmt = lambda mc: f"{mc[0]:+.3f} ± {mc[1]:.3f}"  # noqa: E731
    try:
        if args.by_family and not args.base:
            p.error("--by-family goes with --base")
        if args.base:
            if not args.files:
                p.error("--base compares the agents of validate JSON files: give at least one")
            name = " + ".join(args.files)
            doc = merged({f: read_validation(f) for f in args.files})
            rows = against(doc, name, args.base)
            print(f"{name}: paired against {args.base}, mean ± 95% CI over MDPs")
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                print(f"  {r['name']:<{width}} {r['regret'][0]:.3f} ± {r['regret'][1]:.3f}; minus {args.base} "
                      f"{fmt(r['minus_base'])} (lower on {r['below_base']:.0%})")
            if args.by_family:
                fam, reg = families(doc, name), doc["regret"]
                if len(fam) != len(reg[args.base]):
                    raise UserError(f"{name}: {len(reg[args.base])} regrets, but its config draws {len(fam)}")
                for f in sorted(set(fam)):
                    sel = fam == f
                    print(f"{f} ({sel.sum()} MDPs), minus {args.base}:")
                    for r in rows:
                        d = np.asarray(reg[r["name"]])[sel] - np.asarray(reg[args.base])[sel]
                        print(f"  {r['name']:<{width}} {fmt(mean_ci(d))}")
            return 0
        if args.random_head:
            from ..checkpoint import load, read_config, save
            from ..files import check_output_file

            trained, base, out = args.random_head
            check_output_file(Path(f"{out}.json"), "OUT")  # before any work; save writes OUT.json beside the weights
            model = random_head(load(trained, "rlpfn"), load(base, "rlpfn"), args.seed)
            cfg = read_config(base, "rlpfn")
            print(save(model, out, prior=cfg.get("prior", {}), training={
                "command": f"python -m rlpfn.experiments.compare --random-head {trained} {base} {out} "
                           f"--seed {args.seed}"}))
            return 0
        if not args.files:
            p.error("give validate JSON files, or --random-head")
        rows = paired_table({f: read_validation(f) for f in args.files})
    except UserError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 2
    print(f"UCB-VI: {rows[0]['ucbvi'][0]:.3f} ± {rows[0]['ucbvi'][1]:.3f}; paired differences, mean ± 95% CI")
    for r in rows:
        print(f"{r['name']}: {r['regret'][0]:.3f} ± {r['regret'][1]:.3f}; minus UCB-VI {fmt(r['minus_ucbvi'])} "
              f"(lower on {r['below_ucbvi']:.0%}); minus the first {fmt(r['minus_first'])} "
              f"(lower on {r['below_first']:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
