"""What an exact transition head would buy: a model's planner with the head's predicted rows replaced by the true P.

The transition head is the learned part of rlpfn-v2 (docs/model/transition_head.md): the planner values an untried
pair of a tried state at one step of the best reward plus P̃·V, P̃ the head's prediction. This script runs the same
agent (the `local` refresh, argmax) with P̃ replaced by the MDP's true rows, so that its regret is what a head
predicting P exactly could reach with the planner, bonus and agent as they are. It is not a lower bound on the
regret (the planner is optimistic, not Bayes-optimal: on some MDPs the true rows do worse than the head's), but it
says how much room a better head has:

- `oracle-untried`: the true rows at the pairs the head guesses (untried pairs of tried states);
- `oracle-few`: also at tried pairs of fewer than FEW visits, where a head trained at tried pairs
  (ModelConfig.tried_below) would stand in for P̂;
- `oracle-new`: as `oracle-few`, but a tried pair's row is its P̂ with only the true mass to the states where no
  action was tried yet moved there (spread evenly over them): what exploration needs to know of P;
- `pooled-support` (a rule, no oracle): the head's own rows at untried pairs, and at tried pairs of fewer than FEW
  visits the uniform row over the states that any action of the pair's state has led to (with `--strength κ`);
- `oracle-tried`: also at every tried pair, in place of the empirical P̂ (ModelConfig.planner_tried_strength at a
  strength that makes P̂'s weight vanish): the planner told every transition of the pairs it has tried or guesses.
- `oracle-reward`: the checkpoint's own rows, and a guessed pair's one step of reward the true mean reward instead
  of the bound, 1: what an exact reward head (ModelConfig.reward_head) would buy;
- `state-reward` (a rule, no oracle): the checkpoint's own rows, and a guessed pair's reward the best mean reward
  seen at its state plus `--reward-margin`, capped at 1: what a reward head must beat to count as learned.

`--strength κ` plans tried pairs with (N·P̂ + κ·P)/(N + κ), an exact head at the strength the planner would give a
learned one; `--mix λ` replaces the rows by λ·P + (1 - λ)·P̃, P̃ the checkpoint's own prediction (a head λ of the way
to perfect); `--support` tells only where each pair can lead (its true row made uniform over its successors);
`--know` sets what the rows tell of P: `row` (default) each pair's own true row; `state` only where the pair's state
leads (the mean of the true rows of its actions), which is what a head could know of a state's neighbourhood when
nothing says which action goes where (the priors relabel actions per state); `state+data` the state's true rows,
with which of them is which action inferred from the run's own counts at that state (`label_posterior`), the most a head
could know short of being told the labels.

Runs on the MDPs and seeds of `rlpfn validate --prior SPLIT --batches B --episodes E` (batch i's rollout seed), so
the rows `rlpfn` and `ucbvi` reproduce validate's, and writes a JSON in validate's format, which
`python -m rlpfn.experiments.compare FILE --base rlpfn` reads. Issue 9: is the head's quality the lever for the
held-out bar, or the planner around it?
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math

import numpy as np
import torch
from jsonargparse.typing import PositiveFloat

# Weight of the true rows at tried pairs in `oracle-tried`: (N·P̂ + κ·P)/(N + κ) is P to within N/κ.
TOLD = 1e9
FEW = 6  # the tried_below of the transitions-tried run (docs/model/v2.md)
REWARD_MARGIN = 0.1  # `state-reward`: how far above the best reward seen the rule puts a guessed pair
VARIANTS = ("oracle-untried", "oracle-few", "oracle-tried", "oracle-new", "pooled-support", "oracle-reward",
            "state-reward")
KNOW = ("row", "state", "state+data")


def label_posterior(counts: torch.Tensor, P: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """[K,A,A] weights w[k, a, a']: the posterior probability that action a of the state is the one whose true row is
    P[k, a'], from the counts [K,A,S] the run has at that state, given its rows P [K,A,S] and a labelling uniform
    over the permutations. Exact: with likelihoods L[a, a'] = Π_s' P[a'](s')^N(a, s') (flat for an untried action),
    w[a, a'] = L[a, a'] · perm(L without row a and column a') / perm(L), the permanents by Ryser's formula (2^A terms,
    A ≤ 10 in the priors). An untried action is unlikely to be one that a tried action's data already claim."""
    log = counts.to(P.dtype) @ P.clamp_min(1e-300).log().transpose(1, 2)  # [K,A,A']
    L = (log - log.amax(-1, keepdim=True)).exp()  # a row's scale cancels in w
    A = L.shape[-1]
    subsets = ((torch.arange(1, 2**A, device=L.device)[:, None] >> torch.arange(A, device=L.device)) & 1).to(L.dtype)
    sign = (-1.0) ** (A - subsets.sum(-1))  # Ryser: perm = Σ_S (-1)^(A - |S|) Π_a Σ_{a' in S} L[a, a']
    out = []
    for block in L.split(chunk):
        r = block @ subsets.T  # [k,A,2^A-1]: each row's sum over each subset of columns
        ones = torch.ones_like(r[:, :1])
        before = torch.cat([ones, r[:, :-1]], 1).cumprod(1)  # Π over the rows above a
        after = torch.cat([r[:, 1:], ones], 1).flip(1).cumprod(1).flip(1)  # Π over the rows below a
        minors = (before * after * sign) @ subsets  # [k,A,A']: perm of L without row a, column a'
        perm = (r.prod(1) * sign).sum(-1)  # [k]
        w = (block * minors / perm[:, None, None]).clamp_min(0)  # (Ryser's signed sum leaves -1e-13 round-off)
        w = w / w.sum(-1, keepdim=True)
        out.append(torch.where(perm[:, None, None] > 0, w, torch.full_like(w, 1 / A)))
    return torch.cat(out)


class TrueRows(torch.nn.Module):
    """Stands in for the model's TransitionHead when acting: the log of the true rows of the pairs asked for, or with
    `head` and `mix` λ < 1, of λ·P + (1 - λ)·P̃, P̃ the head's own prediction (a head λ of the way to perfect)."""

    def __init__(self, P: torch.Tensor, head: torch.nn.Module | None = None, mix: float = 1.0,
                 new_mass: bool = False, pooled: bool = False, labels: bool = False):
        super().__init__()
        self.P, self.head, self.mix, self.new_mass, self.pooled, self.labels = P, head, mix, new_mass, pooled, labels

    def forward(self, h, pairs, counts):
        """`counts`: the pass's statistic [B,S,A,S], as the model hands it to its head."""
        if self.pooled:  # tried pairs: uniform over where the state's actions have led; untried: the head's guess
            n = counts[pairs].sum(-1, keepdim=True)
            reach = (counts.sum(2) > 0)[pairs[0], pairs[1]].to(self.P.dtype)  # [K,S]
            rows = reach / reach.sum(-1, keepdim=True).clamp_min(1)
            return torch.where(n > 0, rows.log(), self.head(h, pairs, counts).to(self.P.dtype))
        if self.new_mass:  # tried pairs: P̂ on the states where some action was tried, the true mass to the others
            new = (counts.sum((2, 3)) == 0)[pairs[0]].to(self.P.dtype)  # [K,S]: nothing tried there yet
            counts = counts[pairs].to(self.P.dtype)  # [K,S]
            n = counts.sum(-1, keepdim=True)
            old_counts = counts * (1 - new)  # (a pair may have led to a state never acted from: not P̂'s to keep)
            z = old_counts.sum(-1, keepdim=True)
            fallback = (1 - new) / (1 - new).sum(-1, keepdim=True)  # every seen successor new: no P̂ to keep
            old = torch.where(z > 0, old_counts / z.clamp_min(1), fallback)
            mass = (self.P[pairs] * new).sum(-1, keepdim=True)
            rows = (1 - mass) * old + mass * new / new.sum(-1, keepdim=True).clamp_min(1)
            return torch.where(n > 0, rows, self.P[pairs]).log()
        true = self.P[pairs]
        if self.labels:  # the state's rows, weighted by how likely each is this action's (`--know state+data`)
            b, s, a = pairs
            states, which = torch.unique(b * counts.shape[1] + s, return_inverse=True)  # one posterior per state
            sb, ss = states // counts.shape[1], states % counts.shape[1]
            w = label_posterior(counts[sb, ss], self.P[sb, ss])[which, a]  # [K,A']
            true = (w[:, None] @ self.P[b, s])[:, 0]
        if self.mix == 1.0:
            return true.log()  # log 0 = -inf: exp gives back the 0
        return (self.mix * true + (1 - self.mix) * self.head(h, pairs, counts).to(self.P.dtype).exp()).log()


class TrueReward(torch.nn.Module):
    """Stands in for the model's reward head: the true mean rewards R [B,S,A] (on the [0, 1] scale the model sees) at
    every level."""

    def __init__(self, R: torch.Tensor, levels: int):
        super().__init__()
        self.R, self.levels = R, levels

    def forward(self, h):
        return self.R[..., None].expand(*self.R.shape, self.levels).to(h.dtype)


class StateReward(torch.nn.Module):
    """Stands in for the model's reward head, a rule: at every pair, the best mean reward seen at its state (over
    its tried actions; 0 where none was tried) plus `margin`, capped at 1, at every level."""

    def __init__(self, stats, margin: float, levels: int):
        super().__init__()
        from rlpfn.model import reward_stats

        _, r_hat, n = stats.empirical(sparse=False)
        best = reward_stats(r_hat, n)[..., 0]  # [B,S,A]: the best r̂ at the pair's state, what the head may read
        self.value = (best + margin).clamp(max=1.0)[..., None].expand(*r_hat.shape, levels)

    def forward(self, h):
        return self.value.to(h.dtype)


def oracle_agent(variant: str, checkpoint: str | None, strength: float = TOLD, mix: float = 1.0,
                 support: bool = False, know: str = "row", margin: float = REWARD_MARGIN):
    """An rlpfn agent that acts with a copy of the checkpoint whose transition head reads the true MDP."""
    from rlpfn.agents.rlpfn import RlpfnAgent
    from rlpfn.checkpoint import load_cached
    from rlpfn.errors import UserError
    from rlpfn.train import support_rows

    model = copy.deepcopy(load_cached(checkpoint, "rlpfn"))
    head = model.transition
    if head is None:
        raise UserError(f"{checkpoint or 'the shipped model'} has no transition head to replace")
    if variant in ("oracle-reward", "state-reward"):  # the checkpoint's rows; its reward head's place taken
        from rlpfn.model import REWARD_QUANTILES

        model.cfg = dataclasses.replace(model.cfg, reward_head=True, planner_reward_quantile=REWARD_QUANTILES[0])
    elif variant == "oracle-untried":  # untried pairs only, whatever the checkpoint plans tried pairs with
        model.cfg = dataclasses.replace(model.cfg, tried_below=0, planner_tried_strength=0.0,
                                        planner_tried_known_only=False)
    else:
        below = FEW if variant in ("oracle-few", "oracle-new", "pooled-support") else 2**62
        model.cfg = dataclasses.replace(model.cfg, tried_below=below, planner_tried_strength=strength)

    class Oracle(RlpfnAgent):
        needs_mdp = True  # the harness passes the true MDP to reset

        def reset(self, spec, n_runs, seed, mdp=None):
            super().reset(spec, n_runs, seed)
            if len(mdp) != n_runs:
                raise ValueError("one run per MDP (a prior batch) is what the rows are indexed by")
            if variant == "state-reward":
                return
            if variant == "oracle-reward":
                from rlpfn.model import REWARD_QUANTILES

                R = spec.rescale(torch.as_tensor(mdp.R, dtype=torch.float64))  # as the agent sees rewards
                self.model.reward = TrueReward(R, len(REWARD_QUANTILES))
                return
            P = torch.as_tensor(mdp.P)
            if know == "state":  # where the state leads, whichever action
                P = P.mean(2, keepdim=True).expand_as(P).contiguous()
            if support:  # where a pair can lead, not how likely: the support as training's target reads it
                P = support_rows(P.float())
            P = P.to(torch.float64)
            self.model.transition = TrueRows(P, head, mix, new_mass=variant == "oracle-new",
                                               pooled=variant == "pooled-support", labels=know == "state+data")

        def _forward(self, stats, *args, **kwargs):
            if stats.counts.shape[0] != self.n_runs:  # a pass for some runs only: b would not be the MDP
                raise ValueError("the oracle's rows are indexed by run: every pass must be for all runs")
            if variant == "state-reward":  # the rule reads this pass's statistic
                from rlpfn.model import REWARD_QUANTILES

                self.model.reward = StateReward(stats, margin, len(REWARD_QUANTILES))
            return super()._forward(stats, *args, **kwargs)

    return Oracle.with_model(model)  # refresh "local": every pass is for all runs, so a row's run is its MDP


def _job(args) -> np.ndarray:
    label, prior, batches, episodes, seed, checkpoint, strength, mix, support, know, margin, i = args
    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import held_out_batch

    mdps, rollout_seed = held_out_batch(prior, batches, seed, i)
    if label == "ucbvi":
        agent = make_agent("ucbvi")
    elif label == "rlpfn":
        agent = make_agent("rlpfn", checkpoint=checkpoint)
    else:
        agent = oracle_agent(label, checkpoint, strength, mix, support, know, margin)
    return prior_regret(mdps, agent, episodes, seed=rollout_seed)


def main() -> None:
    from rlpfn.experiments.validate import by_label, split_options, write_regrets
    from rlpfn.files import check_output_file
    from rlpfn.metrics import mean_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    split_options(parser, "a model with a transition head (default: the shipped one)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--strength", type=PositiveFloat, default=TOLD,
                        help="κ of the true rows at tried pairs, (N·P̂ + κ·P)/(N + κ) (default: so large that P̂ drops out)")
    parser.add_argument("--mix", type=float, default=1.0,
                        help="λ in [0, 1]: the rows are λ·P + (1 - λ)·the head's prediction (1: the true rows)")
    parser.add_argument("--support", action="store_true",
                        help="tell only where each pair can lead: the true rows made uniform over their successors")
    parser.add_argument("--know", choices=KNOW, default="row",
                        help="what the rows tell: each pair's true row (row), the mean of its state's true rows "
                             "(state), or the state's true rows weighted by which is likely this action's, from the "
                             "run's counts (state+data)")
    parser.add_argument("--reward-margin", type=float, default=REWARD_MARGIN,
                        help="state-reward: a guessed pair's reward is the best seen at its state plus this")
    args = parser.parse_args()
    if not 0.0 <= args.mix <= 1.0:
        parser.error(f"argument --mix: must lie in [0, 1], got {args.mix}")
    own = {"oracle-new", "pooled-support", "oracle-reward", "state-reward"} & set(args.variants)  # not the true rows: no mix, no support
    if own and (args.mix < 1.0 or args.support or args.know != "row"):
        parser.error(f"--mix, --support and --know change the true rows, which these variants do not use: "
                     f"{', '.join(sorted(own))}")
    if args.support and args.know != "row":
        parser.error(f"--support and --know {args.know}: tell either where each pair can lead or what the state's "
                     "rows are")
    if not math.isfinite(args.reward_margin):
        parser.error(f"argument --reward-margin: must be finite, got {args.reward_margin}")
    if not math.isfinite(args.strength):
        parser.error(f"argument --strength: must be finite, got {args.strength}")
    from rlpfn.checkpoint import load
    from rlpfn.errors import UserError
    from rlpfn.prior import load_spec

    try:  # a bad prior or checkpoint: refused before any work
        load_spec(args.prior)
        if load(args.checkpoint, "rlpfn").transition is None:
            parser.error(f"--checkpoint {args.checkpoint or 'the shipped model'}: the model has no transition head")
        check_output_file(args.json, "--json")
    except UserError as e:
        parser.error(str(e))
    labels = ["ucbvi", "rlpfn", *args.variants]
    res = by_label(_job, {label: (label, args.prior, args.batches, args.episodes, args.seed, args.checkpoint,
                                  args.strength, args.mix, args.support, args.know, args.reward_margin)
                          for label in labels}, args.batches, args.workers, "oracle rows")
    ref = res["ucbvi"]
    for label, r in res.items():
        m, ci = mean_ci(r)
        print(f"{label:<16} {m:.3f} ± {ci:.3f}   ratio to UCB-VI {r.mean() / ref.mean():.2f}, "
              f"lower on {np.mean(r < ref):.0%}")
    config = {"prior": args.prior, "batches": args.batches, "episodes": args.episodes, "seed": args.seed,
              "checkpoint": args.checkpoint, "strength": args.strength, "mix": args.mix, "support": args.support,
              "know": args.know, "reward_margin": args.reward_margin}
    write_regrets(args.json, config, {k: [k, {}] for k in labels}, res)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
