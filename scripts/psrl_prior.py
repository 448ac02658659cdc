"""PSRL with an informed prior: what posterior sampling would gain if its Dirichlet prior knew where pairs lead.

rlpfn's transition head predicts P̃(s'|s, a) from the run's statistic: a posterior predictive, the thing a PFN
learns. v2 uses it inside an optimistic planner (docs/model/v2.md). Thompson sampling is the other use of a
posterior: PSRL (rlpfn/agents/psrl.py) draws P ~ Dirichlet(α0 + N(s,a,·)), whose prior mean is uniform. This script
runs PSRL with the prior pseudo-counts α0 + κ·P_prior(s,a,·) instead:

- `true`: P_prior is the MDP's true P (an oracle): how much room an informed prior leaves, at κ pseudo-visits of
  exact knowledge per pair;
- `head`: P_prior is the checkpoint's transition head's prediction for every pair, from the run's statistic,
  refreshed before every episode (the learned version).

`--sigmas` scales the spread of PSRL's reward draw, its mean unchanged (1: PSRL's own draw, from the prior N(0, 1)
with unit noise, docs/reference.md); `--adaptive` also scales it by each pair's own reward spread.

Runs on the MDPs and seeds of `rlpfn validate --prior SPLIT --batches B --episodes E`, with `rlpfn` (the shipped
model or --checkpoint), plain `psrl` and `ucbvi` for reference, and writes validate's JSON format, which
`python -m rlpfn.experiments.compare FILE --base rlpfn` reads.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
import torch
from jsonargparse.typing import PositiveFloat

SOURCES = ("true", "head")


def informed_psrl(source: str, kappa: float, sigma: float = 1.0, adaptive: bool = False,
                  checkpoint: str | None = None):
    """PSRL drawing P ~ Dirichlet(α0 + κ·P_prior + N) and each pair's mean reward Σr/(1+n) + σ'·ξ/√(1+n), ξ ~ N(0, 1),
    σ' = σ (1: PSRL's own draw), or σ·√((v̂·n + 1)/(n + 1)) with `adaptive` (v̂ the pair's empirical reward
    variance: the spread shrinks fast where rewards are exact). Only the draw's spread is scaled; its mean is PSRL's."""
    from rlpfn.agents.psrl import PSRL
    from rlpfn.errors import UserError
    from rlpfn.planning import DTYPE

    @dataclass
    class InformedPSRL(PSRL):
        needs_mdp = source == "true"

        def reset(self, spec, n_runs, seed, mdp=None):
            super().reset(spec, n_runs, seed)
            self.episode = 0  # the head reads the episodes so far
            self.P_true = torch.as_tensor(mdp.P)[mdp.run_index(n_runs)] if mdp is not None else None

        def prior_rows(self) -> torch.Tensor:
            if source == "true":
                return self.P_true
            from rlpfn.checkpoint import load_cached
            from rlpfn.model import Context

            model = load_cached(checkpoint, "rlpfn")
            if model.transition is None:
                raise UserError(f"checkpoint {checkpoint or 'the shipped model'}: the model has no transition head")
            ctx = Context.at(self.stats, self.start, 0, self.spec.horizon, self.episode)  # at the episode's start
            with torch.no_grad():
                return model(ctx, transitions=True).log_p_next.exp().to(DTYPE)

        def dirichlet_counts(self) -> torch.Tensor:  # P ~ Dirichlet(α0 + κ·P_prior + N)
            return self.stats.counts.to(DTYPE) + kappa * self.prior_rows()

        def draw_rewards(self) -> torch.Tensor:
            st, n = self.stats, self.stats.visits
            noise = torch.randn(n.shape, dtype=DTYPE, generator=self.gen)
            scale = sigma
            if adaptive:  # the pair's reward spread: its empirical variance, with a unit pseudo-variance of weight 1
                seen = n.clamp(min=1)
                var = (st.reward_sq_sum / seen - (st.reward_sum / seen) ** 2).clamp(min=0)
                scale = sigma * ((var * n + 1) / (n + 1)).sqrt()
            return st.reward_sum / (1 + n) + scale * noise / (1 + n).sqrt()

        def act(self, states, h):
            if h == 0:
                self.start = states  # the episode's first states, which the head's context reads
            return super().act(states, h)

        def plan(self):
            Q = super().plan()
            self.episode += 1
            return Q

    return InformedPSRL()


def agent_label(source: str, kappa: float, sigma: float, adaptive: bool) -> str:
    """An informed PSRL's name in the JSON: 'true-k1', 'head-k10-s0.1', 'true-k1-adaptive' (σ = 1 left out); the agent
    itself is built from the values, not from its name."""
    return f"{source}-k{kappa:g}" + (f"-s{sigma:g}" if sigma != 1 else "") + ("-adaptive" if adaptive else "")


def _job(args) -> np.ndarray:
    label, prior, batches, episodes, seed, checkpoint, informed, i = args
    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import held_out_batch

    mdps, rollout_seed = held_out_batch(prior, batches, seed, i)
    if label in ("ucbvi", "psrl"):
        agent = make_agent(label)
    elif label == "rlpfn":
        agent = make_agent("rlpfn", checkpoint=checkpoint)
    else:
        agent = informed_psrl(*informed, checkpoint)  # (source, κ, σ, adaptive)
    return prior_regret(mdps, agent, episodes, seed=rollout_seed)


def main() -> None:
    from rlpfn.experiments.validate import by_label, split_options, write_regrets
    from rlpfn.files import check_output_file
    from rlpfn.metrics import mean_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    split_options(parser, "a model with a transition head, for --sources head (default: the shipped one)")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=["true"], help="where the prior rows come from")
    parser.add_argument("--kappas", nargs="+", type=PositiveFloat, default=[1.0],
                        help="pseudo-visits κ of the prior rows per pair")
    parser.add_argument("--sigmas", nargs="+", type=PositiveFloat, default=[1.0],
                        help="the reward draw's spread × σ, its mean unchanged (1: PSRL's own draw)")
    parser.add_argument("--adaptive", action="store_true",
                        help="the reward draw's spread also scaled by the pair's own reward spread (empirical variance "
                             "with a unit pseudo-variance of weight 1), so that it shrinks fast where rewards are exact")
    parser.add_argument("--references", nargs="*", default=["ucbvi", "psrl", "rlpfn"],
                        choices=["ucbvi", "psrl", "rlpfn"], help="agents run beside, for the paired comparison")
    args = parser.parse_args()
    for name, values in (("--kappas", args.kappas), ("--sigmas", args.sigmas)):
        if not all(math.isfinite(v) for v in values):
            parser.error(f"argument {name}: must be finite, got {' '.join(map(str, values))}")
    from rlpfn.checkpoint import load
    from rlpfn.errors import UserError
    from rlpfn.prior import load_spec

    try:  # a bad prior, checkpoint or output path: refused before any work
        load_spec(args.prior)
        if "head" in args.sources and load(args.checkpoint, "rlpfn").transition is None:
            parser.error(f"--checkpoint {args.checkpoint or 'the shipped model'}: the model has no transition head")
        check_output_file(args.json, "--json")
    except UserError as e:
        parser.error(str(e))
    # (label, None for a reference or informed_psrl's (source, κ, σ, adaptive))
    agents = [(label, None) for label in args.references] + [
        (agent_label(s, k, g, args.adaptive), (s, k, g, args.adaptive))
        for s in args.sources for k in args.kappas for g in args.sigmas]
    labels = [label for label, _ in agents]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        parser.error(f"agents named twice (--references, --sources, --kappas or --sigmas repeat a value): "
                     f"{', '.join(twice)}")
    res = by_label(_job, {label: (label, args.prior, args.batches, args.episodes, args.seed, args.checkpoint, informed)
                          for label, informed in agents}, args.batches, args.workers, "informed PSRL")
    for label, r in res.items():
        m, ci = mean_ci(r)
        print(f"{label:<12} {m:.3f} ± {ci:.3f}")
    config = {"prior": args.prior, "batches": args.batches, "episodes": args.episodes, "seed": args.seed,
              "checkpoint": args.checkpoint}
    write_regrets(args.json, config, {k: [k, {}] for k in labels}, res)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
