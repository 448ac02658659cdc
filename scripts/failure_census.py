"""Where an agent's excess regret over another comes from, MDP by MDP (issue 9: why does v2 lose where it loses?).

Runs two agents (default: the shipped rlpfn and UCB-VI) on the MDPs and seeds of `rlpfn validate --prior P --batches
B --episodes E` (their regrets reproduce validate's) and classifies the first agent's failures:
- **missed**: it never visited a state that the optimal policy occupies for more than 5% of an episode's steps;
- **late**: its normalized regret over the last fifth of the episodes is above 0.5 (still paying, as if it had not
  learned);
- for the `--top K` MDPs where it loses most, the (state, action) that cost it most over the last fifth of the
  episodes: how often it took that action, and how often the optimal action there, over the whole run. A stuck run
  shows thousands against one or two: the better action was tried once or twice, looked worse, and was never retried.

Writes the per-MDP figures to `--json` (one record per MDP; nothing of validate's format) and prints the summary.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt


def census(prior: str, batches: int, episodes: int, seed: int, agents: list[str]) -> list[dict]:
    from rlpfn.agents import make_agent, parse_agent
    from rlpfn.experiments.evaluate import path_gap
    from rlpfn.experiments.validate import held_out_batch
    from rlpfn.planning import mdp_tensors
    from rlpfn.traces import run_trace

    records = []
    for b in range(batches):
        mdps, run_seed = held_out_batch(prior, batches, seed, b)
        sol, (P, _, mu0), H = mdps.solution, mdp_tensors(mdps), mdps.horizon
        occupancy = optimal_occupancy(sol.policy, P, mu0)
        norm = torch.as_tensor(episodes * (sol.v_star - sol.v_random))
        per_agent = {}
        for label in agents:
            name, hp = parse_agent(label)
            trace = run_trace(mdps, make_agent(name, **hp), episodes, run_seed, n_runs=len(mdps))
            gap = path_gap(mdps, trace)  # [M, T]
            per_agent[label] = (trace, gap, *run_figures(trace.s, gap, norm, occupancy, episodes, H))
        for j in range(len(mdps)):
            rec = {"mdp": b * 8 + j, "family": str(mdps.meta["family"][j]) if "family" in mdps.meta else "?",
                   "S": mdps.n_states, "A": mdps.n_actions, "H": H}
            for label, (_, _, reg, late, missed) in per_agent.items():
                rec[label] = {"regret": float(reg[j]), "late": float(late[j]), "missed": bool(missed[j])}
            trace, gap, *_ = per_agent[agents[0]]
            rec["worst_pair"] = _worst_pair(trace, gap, sol.Q[j], j, episodes, H)
            records.append(rec)
    return records


def optimal_occupancy(policy: torch.Tensor, P: torch.Tensor, mu0: torch.Tensor) -> torch.Tensor:
    """[M,S] the expected visits to each state in one episode of the optimal policy (policy [M,H,S,A] one-hot)."""
    occupancy, d = torch.zeros_like(mu0), mu0.clone()
    for h in range(policy.shape[1]):
        occupancy += d
        d = torch.einsum("ms,msa,msat->mt", d, policy[:, h], P)
    return occupancy


def run_figures(states: torch.Tensor, gap: torch.Tensor, norm: torch.Tensor, occupancy: torch.Tensor, episodes: int,
                H: int):
    """Per run (states and per-step regret gap [M,T], T = episodes·H): the normalized regret; the same per episode
    over the last fifth of the episodes, normalized like the whole (so that a run that learns nothing scores about
    its whole regret); and whether it never visited a state that the optimal policy occupies for more than 5% of an
    episode's steps."""
    tail = max(1, episodes // 5)
    per_episode = gap.view(gap.shape[0], episodes, H).sum(-1)
    visited = torch.zeros_like(occupancy, dtype=torch.bool).scatter_(1, states, True)
    return ((gap.sum(1) / norm).numpy(), (per_episode[:, -tail:].sum(1) / norm * episodes / tail).numpy(),
            ((occupancy > 0.05 * H) & ~visited).any(1).numpy())


def _worst_pair(trace, gap, Q, j: int, episodes: int, H: int) -> dict | None:
    """The (state, action) whose steps cost run j most over the last fifth of its episodes, and the visit counts of
    that action and of the optimal one at that state (at the median stage of those steps) over the whole run; None
    when those episodes cost nothing."""
    s, a = trace.s[j].numpy(), trace.a[j].numpy()
    S, A = Q.shape[1], Q.shape[2]
    counts = np.zeros((S, A), dtype=np.int64)
    np.add.at(counts, (s, a), 1)
    last = slice((episodes - max(1, episodes // 5)) * H, episodes * H)
    cost = np.zeros((S, A))
    np.add.at(cost, (s[last], a[last]), gap[j, last].numpy())
    if not cost.max() > 0:
        return None
    st, at = np.unravel_index(cost.argmax(), cost.shape)
    steps = np.tile(np.arange(H), episodes)[last][(s[last] == st) & (a[last] == at)]
    best = int(Q[int(np.median(steps)), st].argmax())
    return {"cost": float(cost.max()), "of": float(gap[j, last].sum()), "taken": int(counts[st, at]),
            "optimal": int(counts[st, best]), "states_visited": int(len(set(s.tolist())))}


def main() -> None:
    from rlpfn.files import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", default="wide", help="prior spec or split, as rlpfn validate's --prior")
    parser.add_argument("--batches", type=PositiveInt, default=16, help="batches of 8 MDPs")
    parser.add_argument("--episodes", type=PositiveInt, default=100)
    parser.add_argument("--seed", type=NonNegativeInt, default=0)
    parser.add_argument("--agents", nargs=2, default=["rlpfn", "ucbvi"], metavar=("AGENT", "REFERENCE"))
    parser.add_argument("--top", type=NonNegativeInt, default=10, help="MDPs to detail, where AGENT loses most")
    parser.add_argument("--json", required=True, help="where to write the per-MDP records")
    args = parser.parse_args()
    from rlpfn.agents import parse_agent
    from rlpfn.errors import UserError
    from rlpfn.files import check_output_file
    from rlpfn.prior import load_spec

    try:  # a bad prior, agent or output: refused before any work
        load_spec(args.prior)
        for label in args.agents:
            parse_agent(label, online=True)
        check_output_file(args.json, "--json")
    except UserError as e:
        parser.error(str(e))
    torch.set_num_threads(1)
    records = census(args.prior, args.batches, args.episodes, args.seed, args.agents)
    write_json(args.json, {"config": vars(args), "mdps": records})
    a, u = args.agents
    reg, ref = (np.array([r[x]["regret"] for r in records]) for x in (a, u))
    missed, ref_missed = (np.array([r[x]["missed"] for r in records]) for x in (a, u))
    late = np.array([r[a]["late"] for r in records]) > 0.5
    n = len(records)
    print(f"{args.prior}, {n} MDPs: {a} {reg.mean():.3f}, {u} {ref.mean():.3f} ({reg.mean() / ref.mean():.2f} x)")
    print(f"- missed a state of the optimal path: {missed.mean():.0%} of the MDPs ({u}: {ref_missed.mean():.0%}); "
          f"excess over {u} on those {u} did not miss: {((reg - ref) * (missed & ~ref_missed)).sum() / n:+.3f}")
    print(f"- late regret above 0.5: {late.mean():.0%} of the MDPs; excess over {u} there: "
          f"{((reg - ref) * late).sum() / n:+.3f} (all MDPs: {(reg - ref).mean():+.3f})")
    print(f"- the {args.top} MDPs where {a} loses most (the pair that cost most in the last fifth of the episodes):")
    for r in sorted(records, key=lambda r: r[u]["regret"] - r[a]["regret"])[:args.top]:
        w = r["worst_pair"]
        pair = "no cost in the last fifth" if w is None else (
            f"that pair {w['cost'] / w['of']:.0%} of the late cost, taken {w['taken']} times, the optimal action "
            f"there {w['optimal']}; states visited {w['states_visited']}/{r['S']}")
        print(f"  {r['mdp']:4d} {r['family']:10s} S={r['S']:3d} A={r['A']:2d} H={r['H']:3d}: {r[a]['regret']:.2f} "
              f"against {r[u]['regret']:.2f}; {pair}")


if __name__ == "__main__":
    main()
