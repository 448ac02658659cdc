"""Why the v1 pretraining did not move the model off UCB-VI: what each loss term's gradient reaches, how much of
it survives the planner's cap, what gradient clipping leaves of it, and whether it is signal or noise.

`python -m rlpfn.experiments.diagnose [--batches 8] [--out docs/model/diagnosis]` writes diagnosis.json and
diagnosis.png there; instead, with `--regret`, regret_agreement.json (the regret objective's gradient
agreement), with `--es`, es_agreement.json (the same for the evolution-strategies estimate). docs/model/why_v1.md
reads them. Everything is measured on fresh batches of the training
prior with the v1 training loss (rlpfn.train.pretrain_loss) and its config (the built-in `pretrain`).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..model import RLPFN, ModelConfig
from ..planning import DTYPE

TERMS = {"ce": "policy_weight", "q_mse": "q_weight", "pinball": "quantile_weight", "anchor": "anchor_weight"}


def term_gradients(model: RLPFN, batch, cfg) -> dict[str, torch.Tensor]:
    """Per weighted loss term of pretrain_loss (no state dropping): its gradient over all parameters, flat."""
    from ..train import pretrain_loss

    out = {}
    for term, key in TERMS.items():
        only = replace(cfg, drop_state_prob=0.0, **{k: (getattr(cfg, k) if k == key else 0.0) for k in TERMS.values()})
        model.zero_grad()
        pretrain_loss(model, batch, only)["loss"].backward()
        out[term] = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
                               for p in model.parameters()])
    return out


def cap_share(model: RLPFN, batch) -> dict:
    """At each context's step: the share of (s, a) entries of Q_plan that are unvisited, visited and capped at
    H-h (no gradient to the bonus scale α), or visited and free."""
    ctx = batch.context
    with torch.no_grad():
        out = model(ctx, transitions=False)
    rows = torch.arange(len(ctx.step))
    q = out.q_plan[rows, ctx.step]  # [B,S,A]
    rem = (ctx.horizon - ctx.step).to(DTYPE).view(-1, 1, 1)
    visited = ctx.stats.visits > 0
    capped = visited & (q >= rem - 1e-9)
    total = visited.numel()
    return {"unvisited": float((~visited).sum() / total), "visited_capped": float(capped.sum() / total),
            "visited_free": float((visited & ~capped).sum() / total),
            "alpha_abs_mean": float(out.corrections[..., 0].abs().mean()),
            "alpha_abs_p99": float(out.corrections[..., 0].abs().flatten().quantile(0.99)),
            "u_abs_mean": float(out.corrections[..., 2].abs().mean())}


def _agreement(grads: list[torch.Tensor]) -> dict:
    """Signal or noise: the mean cosine between independent batches' gradients, and |mean| / mean |deviation|."""
    stack = torch.stack(grads)
    unit = stack / stack.norm(dim=1, keepdim=True).clamp_min(1e-12)
    off_diagonal = ~torch.eye(len(unit), dtype=torch.bool)
    mean = stack.mean(0)
    return {"cosine": float((unit @ unit.T)[off_diagonal].mean()),
            "snr": float(mean.norm() / (stack - mean).norm(dim=1).mean().clamp_min(1e-12))}


def diagnose(n_batches: int = 16, seed: int = 0, checkpoint: str | None = None) -> dict:
    """The untrained model (exactly UCB-VI) and the shipped v1 on the same fresh batches of the training prior."""
    from ..checkpoint import load
    from ..prior import get_batch, load_spec
    from ..train import load_config, pretrain_loss

    cfg = load_config("pretrain")
    spec = load_spec(cfg.data.prior)
    batches = [get_batch(spec, cfg.data.batch_size, seed + 10**6 + i) for i in range(n_batches)]
    result = {}
    for name, model in {"untrained (UCB-VI)": RLPFN(cfg.model), "shipped v1": load(checkpoint, "rlpfn")}.items():
        model.train()
        names = [n for n, _ in model.named_parameters()]
        offsets = np.cumsum([0] + [p.numel() for p in model.parameters()])
        part = {n: slice(offsets[i], offsets[i + 1]) for i, n in enumerate(names)}
        grads = {t: [] for t in TERMS}
        clips, caps, losses, head = [], [], [], []
        for batch in batches:
            g = term_gradients(model, batch, cfg.loss)
            total = sum(g.values())
            clips.append(min(1.0, cfg.optim.grad_clip / (float(total.norm()) + 1e-6)))  # Lightning's clip_grad_norm
            caps.append(cap_share(model, batch))
            with torch.no_grad():
                parts = pretrain_loss(model, batch, replace(cfg.loss, drop_state_prob=0.0))
            losses.append({t: float(parts[t]) for t in TERMS})
            # which head output each term pushes on: columns α, δ, u, Q-correction
            head.append({t: g[t][part["head.weight"]].view(4, -1).norm(dim=1).tolist() for t in TERMS})
            for t in TERMS:
                grads[t].append(g[t])
        share_t = {t: float(np.mean([float(x[part["log_temperature"]].norm() / x.norm().clamp_min(1e-12))
                                     for x in grads[t]])) for t in TERMS}
        result[name] = {
            "loss": {t: float(np.mean([r[t] for r in losses])) for t in TERMS},
            "loss_per_batch": {t: [r[t] for r in losses] for t in TERMS},
            "grad_norm": {t: float(np.mean([float(x.norm()) for x in grads[t]])) for t in TERMS},
            "grad_share_temperature": share_t,
            "agreement": {t: _agreement(grads[t]) for t in TERMS},
            "clip_factor_mean": float(np.mean(clips)), "clip_factor_min": float(np.min(clips)),
            "clip_active_share": float(np.mean(np.array(clips) < 1.0)),
            "cap": {k: float(np.mean([c[k] for c in caps])) for k in caps[0]},
            "head_columns": {t: np.mean([h[t] for h in head], 0).tolist() for t in TERMS},
        }
    return result


def regret_agreement(n_batches: int = 6, n_seeds: int = 4, discounts=(1.0, 0.8, 0.0)) -> dict:
    """Is the regret objective's gradient (rlpfn/regret.py) signal or noise? Per across-episode discount γ: the
    agreement of its gradients over `n_batches` batches of 8 training-prior MDPs, and over `n_seeds` rollout seeds
    on one fixed batch. The model is untrained (temperature 0.01, linear untried-pair value, head weights ~
    N(0, 0.01) so that every parameter gets a gradient)."""
    from ..prior import load_spec, sample_sized_batch
    from ..regret import RegretConfig, regret_loss

    spec = load_spec("default")
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(init_temperature=0.01, unvisited_linear=True))
    with torch.no_grad():
        model.head.weight.normal_(0, 0.01)

    def grad(mdps, cfg, seed):
        model.zero_grad()
        regret_loss(model, mdps, cfg, seed)["loss"].backward()
        return torch.cat([p.grad.reshape(-1) for p in model.parameters()])

    batches = [sample_sized_batch(spec, 8, np.random.default_rng(100 + i)) for i in range(n_batches)]
    out = {}
    for gamma in discounts:
        cfg = RegretConfig(weight=1.0, discount=gamma)
        out[f"discount {gamma}"] = {
            "across_batches": _agreement([grad(b, cfg, i) for i, b in enumerate(batches)]),
            "same_batch_other_seeds": _agreement([grad(batches[0], cfg, 50 + k) for k in range(n_seeds)])}
    return out


def es_agreement(n_batches: int = 6, n_seeds: int = 4, pairs=(8, 32)) -> dict:
    """The same question for the evolution-strategies estimate (rlpfn/es.py) on the deployed agent: per number of
    antithetic pairs, its agreement over `n_batches` batches of 16 training-prior MDPs, and over `n_seeds`
    perturbation seeds on one fixed batch. The model is untrained (it is UCB-VI's planner), with the linear
    untried-pair value."""
    from ..es import ESConfig, es_gradient
    from ..prior import load_spec, sample_sized_batch

    spec = load_spec("default")
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(unvisited_linear=True))
    batches = [sample_sized_batch(spec, 16, np.random.default_rng(100 + i)) for i in range(n_batches)]
    out = {}
    for p in pairs:
        cfg = ESConfig(weight=1.0, pairs=p, mdps=16)
        out[f"pairs {p}"] = {
            "across_batches": _agreement([es_gradient(model, b, cfg, i)[0].reshape(-1) for i, b in enumerate(batches)]),
            "same_batch_other_seeds": _agreement([es_gradient(model, batches[0], cfg, 50 + k)[0].reshape(-1)
                                                  for k in range(n_seeds)])}
    return out


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    names = list(result)
    x, labels = np.arange(len(TERMS)), list(TERMS)
    for i, name in enumerate(names):
        r = result[name]
        axes[0].bar(x + 0.4 * i, [r["grad_norm"][t] for t in TERMS], 0.4, label=name)
        axes[1].bar(x + 0.4 * i, [r["agreement"][t]["cosine"] for t in TERMS], 0.4, label=name)
    for ax, title in zip(axes[:2], ("gradient norm, per weighted term", "cosine between batches' gradients")):
        ax.set_xticks(x + 0.2, labels)
        ax.set_title(title)
        ax.legend()
    axes[0].set_yscale("log")
    for name in names:
        axes[2].plot(result[name]["loss_per_batch"]["pinball"], marker="o", label=name)
    axes[2].set_title("pinball loss per fresh batch")
    axes[2].set_xlabel("batch")
    axes[2].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlpfn.experiments.diagnose", description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=8, help="fresh prior batches per model (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="docs/model/diagnosis", help="folder for diagnosis.json and diagnosis.png")
    p.add_argument("--regret", action="store_true",
                   help="instead: the agreement of the regret objective's gradients (regret_agreement.json)")
    p.add_argument("--es", action="store_true",
                   help="instead: the agreement of the evolution-strategies estimates (es_agreement.json)")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.regret or args.es:
        result, name = (regret_agreement(), "regret_agreement.json") if args.regret else (es_agreement(),
                                                                                            "es_agreement.json")
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / name).write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return 0
    result = diagnose(args.batches, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnosis.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out / "diagnosis.png")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "loss_per_batch"} for k, v in result.items()},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
