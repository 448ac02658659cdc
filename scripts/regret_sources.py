"""Issue 9: where does UCB-VI's regret come from on a prior: not knowing the transitions, or not knowing the rewards?

A learned agent can only save regret where the prior says more than UCB-VI assumes. This splits UCB-VI's regret by
telling it half of the MDP:
- `transitions known`: it plans with the true P everywhere and learns only the mean rewards. A pair never tried is
  worth the best reward plus the true expected value after it; tried pairs get the Hoeffding bonus on r̂.
- `rewards known`: it plans with the true mean rewards and learns only P. An untried pair is worth H − h, as in
  UCB-VI (where it leads is unknown); tried pairs get the bonus on P̂.
- `tried transitions`: told the true transitions of the pairs it has tried (not of the others, still worth H − h):
  the precision that P gives on tried pairs, without its help in valuing untried ones.
- `untried transitions`: the converse, told the true transitions only of pairs it has not tried (valued as under
  `transitions known`); tried pairs use P̂. What a perfect predictor of untried pairs' transitions would buy.
- `neither` is UCB-VI itself (this script's planner, which `--check` compares with the registry's `ucbvi`).
- `pooled` is told nothing: a rule. An untried pair at a state where some action was tried is assumed to lead
  where that state's tried actions led (their pooled P̂), with the best reward for one step; at a state with no
  tried action it is worth H − h. It asks whether the structure "actions of one state lead to similar places",
  which survives the priors' per-state action relabelling, could stand in for knowing the transitions.
- `predicted` is told nothing either: as `pooled`, but an untried pair of a tried state is assumed to lead where a
  model's transition head predicts (`--predictor`: a checkpoint with one, from scripts/transition_probe.py --save or
  `rlpfn pretrain --config transitions`), asked before every episode. Does a learned prediction lower the regret?
- `--shrink K` (with `pooled` or `predicted`): tried pairs, too, plan with a posterior mean built on that guess,
  (N(s,a,·) + K·guess) / (N(s,a) + K), a Dirichlet prior of K pseudo-counts centred on the guess, instead of P̂.
  Can the structural guess sharpen the estimates of pairs tried a few times?
Each variant is scored with a few bonus scales c (h_term fixed) and the best c per variant is reported, so no
variant loses for being mis-tuned. `--prior` should be a training prior: choosing c on a held-out split would make
it a choice made on it. Normalized cumulative regret over `--episodes` episodes, as `rlpfn validate` scores it,
on the same MDPs and seeds as `rlpfn validate --prior P --batches B`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

from rlpfn.agents.ucbvi import UCBVI
from rlpfn.checkpoint import load_cached
from rlpfn.errors import UserError
from rlpfn.model import Context, guessed_pairs


@dataclass
class Informed(UCBVI):
    """UCB-VI (Hoeffding) told the true transitions or the true mean rewards of the MDP it acts in."""

    known: str = "neither"  # "transitions", "tried-transitions", "untried-transitions", "rewards", "neither", "pooled",
    # "predicted"
    predictor: str | None = None  # `predicted`: a checkpoint with a transition head
    blend: float = 0.0  # a guessed pair's value moves this fraction of the way from its guess back to H - h
    shrink: float = 0.0  # pooled / predicted: pseudo-counts of the guess in tried pairs' transition estimates
    name = "informed-ucbvi"
    needs_mdp = True

    def reset(self, spec, n_runs, seed, mdp=None):
        super().reset(spec, n_runs, seed)
        run = mdp.run_index(n_runs)
        self.P_true = torch.as_tensor(mdp.P[run], dtype=torch.float64)
        self.R_true = spec.rescale(torch.as_tensor(mdp.R[run], dtype=torch.float64))

    def plan(self) -> torch.Tensor:
        from rlpfn.planning import backward_induction

        P_hat, r_hat, n = self.stats.empirical(sparse=False)
        visited = n > 0
        inv_n = 1.0 / n.clamp_min(1.0)
        P, r = P_hat, r_hat
        guessed = torch.zeros_like(visited)  # untried pairs valued from a transition row, not as H − h
        if self.known == "transitions":
            P, r = self.P_true, torch.where(visited, r_hat, torch.ones_like(r_hat))  # untried: the best reward
        elif self.known == "rewards":
            r = self.R_true
        elif self.known == "tried-transitions":
            P = torch.where(visited[..., None], self.P_true, P_hat)
        elif self.known == "untried-transitions":  # untried pairs: true P, the best reward for one step
            guessed = ~visited
            P = torch.where(guessed[..., None], self.P_true, P_hat)
            r = torch.where(guessed, torch.ones_like(r_hat), r_hat)
        if self.known in ("pooled", "predicted"):  # untried pairs of a tried state: a guess where they lead
            counts = self.stats.counts.to(P_hat.dtype)
            n_s = counts.sum((2, 3))  # [N,S]
            if self.known == "pooled":  # the state's pooled successors
                guess = (counts.sum(2) / n_s.clamp_min(1.0)[..., None])[:, :, None, :]  # [N,S,1,S']
            else:
                with torch.no_grad():
                    guess = load_cached(self.predictor)(Context.at(
                        self.stats, torch.full((self.n_runs,), -1), 0, self.spec.horizon, self.episodes - 1)
                    ).log_p_next.exp()
            guessed = guessed_pairs(n)
            if self.shrink:  # tried pairs: a Dirichlet posterior mean centred on the guess
                P_hat = (counts + self.shrink * guess) / (n + self.shrink)[..., None]
            P = torch.where(guessed[..., None], guess, P_hat)
            r = torch.where(guessed, torch.ones_like(r_hat), r_hat)

        def adjust(h, q, v_next):
            rem = self.remaining[h]
            b = self.c * inv_n.sqrt() + self.d * rem * inv_n
            q = torch.minimum(torch.minimum(torch.where(visited, q + b, q), self.Q[:, h]), rem)
            if self.blend:
                q = torch.where(guessed, (1 - self.blend) * q + self.blend * rem, q)
            return q if self.known == "transitions" else torch.where(visited | guessed, q, rem)

        self.Q, _ = backward_induction(P, r, self.spec.horizon, adjust)
        return self.Q


def main() -> None:
    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import held_out_batch
    from rlpfn.metrics import mean_ci

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="wide", help="prior spec (default: wide, v2's training prior)")
    parser.add_argument("--batches", type=PositiveInt, default=8, help="batches of 8 MDPs (default 8)")
    parser.add_argument("--episodes", type=PositiveInt, default=100, help="episodes per run (default 100)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.03, 0.01], help="bonus scales c")
    parser.add_argument("--h-term", type=float, default=0.003, help="the bonus's h_term (default: wide-tuned 0.003)")
    parser.add_argument("--variants", nargs="+", default=["neither", "rewards", "transitions"],
                        choices=["neither", "rewards", "transitions", "tried-transitions", "untried-transitions",
                                 "pooled", "predicted"],
                        help="what UCB-VI is told (neither first)")
    parser.add_argument("--predictor", help="`predicted`: a checkpoint with a transition head")
    parser.add_argument("--blend", type=float, default=0.0,
                        help="`pooled`, `predicted`, `untried-transitions`: value a guessed pair at (1 - blend)·its "
                             "guess + blend·(H - h) (default 0: the guess)")
    parser.add_argument("--shrink", type=float, default=0.0,
                        help="`pooled`, `predicted`: tried pairs plan with (N + K·guess) / (N(s,a) + K) (default 0: P̂)")
    parser.add_argument("--check", action="store_true", help="also run the registry's ucbvi at the first scale")
    args = parser.parse_args()
    torch.set_num_threads(1)
    batches = [held_out_batch(args.prior, args.batches, 0, i) for i in range(args.batches)]

    def regret(make) -> np.ndarray:
        return np.concatenate([prior_regret(mdps, make(), args.episodes, seed) for mdps, seed in batches])

    results = {}
    if args.variants[0] != "neither":
        parser.error("--variants: 'neither' (UCB-VI itself, the reference) must come first")
    if not 0 <= args.blend <= 1:
        parser.error(f"--blend must lie in [0, 1], got {args.blend}")
    if not (np.isfinite(args.shrink) and args.shrink >= 0):
        parser.error(f"--shrink must be a finite number >= 0, got {args.shrink}")
    if ("predicted" in args.variants) != bool(args.predictor):
        parser.error("--predictor is needed by, and only by, the `predicted` variant")
    if args.predictor:  # before any work
        try:
            has_head = load_cached(args.predictor).transition is not None
        except UserError as e:
            parser.error(f"--predictor: {e}")
        if not has_head:
            parser.error(f"--predictor {args.predictor}: the model has no transition head (model.transition_head)")
    for known in args.variants:
        for c in args.scales:
            results[(known, c)] = regret(lambda: Informed(scale=c, h_term=args.h_term, known=known,
                                                             predictor=args.predictor, blend=args.blend,
                                                             shrink=args.shrink))
            print(f"{known:<12} c={c:<6g} {results[(known, c)].mean():.3f}", flush=True)
    if args.check:
        ref = regret(lambda: make_agent("ucbvi", scale=args.scales[0], h_term=args.h_term))
        print(f"registry ucbvi c={args.scales[0]:g}: {ref.mean():.3f}; this script's: "
              f"{results[('neither', args.scales[0])].mean():.3f} (max difference {np.abs(ref - results[('neither', args.scales[0])]).max():.2g})")
    base = min((results[("neither", c)] for c in args.scales), key=np.mean)
    print(f"\n{args.prior}: {len(base)} MDPs, {args.episodes} episodes; best c per variant; minus UCB-VI paired (95% CI)")
    for known in args.variants:
        c = min(args.scales, key=lambda c: results[(known, c)].mean())
        x = results[(known, c)]
        m, ci = mean_ci(x - base)
        print(f"  {known + ('' if known in ('pooled', 'predicted') else ' known'):<24} c={c:<6g} {x.mean():.3f} ± {mean_ci(x)[1]:.3f}  ratio {x.mean() / base.mean():.2f}  "
              f"minus UCB-VI {m:+.3f} ± {ci:.3f}")


if __name__ == "__main__":
    main()
