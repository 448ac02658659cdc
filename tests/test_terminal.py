"""Terminal transitions mean the same everywhere (rlpfn/terminal.py): the episode ends and its remaining steps
pay 0. Checked offline on a CliffWalking log (rewards -1 and -100, the goal terminal), evaluated exactly."""
import numpy as np
import pytest
import torch

from rlpfn.agents import OFFLINE_AGENTS, make_agent
from rlpfn.benchmarks import make_benchmark
from rlpfn.planning import policy_value
from rlpfn.traces import run_trace
from rlpfn.zero_shot import load_transitions, solve_offline


def cliff_log(path, epsilon: float, episodes: int = 100):
    """A log of (1-ε)·π* + ε·uniform on CliffWalking as a user would record it: no steps after the goal,
    `terminated` on the step that reaches it."""
    mdp = make_benchmark("cliffwalking")
    S = mdp.meta["absorbing_state"]
    trace = run_trace(mdp, make_agent("optimal", epsilon=epsilon), episodes, seed=0, n_runs=1)
    s, a, r, s2 = (x[0].numpy() for x in (trace.s, trace.a, trace.reward, trace.s_next))
    keep, term = s != S, s2 == S
    np.savez(path, obs=s[keep], action=a[keep], reward=r[keep], next_obs=np.where(term, 0, s2)[keep],
             terminated=term[keep], n_states=S, n_actions=mdp.n_actions, horizon=mdp.horizon)
    return mdp


def value_of(mdp, pi: np.ndarray) -> float:
    """V^π(μ0) on the MDP, the absorbing state (not in the log's policy) acting uniformly."""
    pi = torch.as_tensor(pi)
    full = torch.cat([pi, torch.full((pi.shape[0], 1, pi.shape[2]), 1 / pi.shape[2], dtype=pi.dtype)], 1)
    return float(policy_value(mdp, full[None])[0])


@pytest.mark.parametrize("agent", [a for a in OFFLINE_AGENTS if a != "bc"])
def test_offline_agents_solve_a_negative_reward_log_with_terminals(tmp_path, agent):
    mdp = cliff_log(tmp_path / "log.npz", epsilon=0.1)
    v_star = mdp.solution.v_star.item()  # -13
    assert value_of(mdp, solve_offline(tmp_path / "log.npz", agent)) >= v_star - 0.01 * abs(v_star)


def test_behaviour_cloning_of_an_expert_log_with_terminals(tmp_path):
    # BC clones the behaviour's action distribution: an ε-greedy log gives an ε-greedy policy, so it is held
    # to V* on the expert's log only
    mdp = cliff_log(tmp_path / "log.npz", epsilon=0.0)
    v_star = mdp.solution.v_star.item()
    assert value_of(mdp, solve_offline(tmp_path / "log.npz", "bc")) >= v_star - 0.01 * abs(v_star)


def test_absorbing_state_is_known_and_pays_zero_and_bounds_hold_zero(tmp_path):
    cliff_log(tmp_path / "log.npz", epsilon=0.1, episodes=5)
    log = load_transitions(tmp_path / "log.npz")
    S = log.n_states
    assert (log.spec.r_min, log.spec.r_max) == (np.load(tmp_path / "log.npz")["reward"].min(), 0.0)  # 0 included
    P_hat, r_hat, n = log.stats.empirical(sparse=False)
    assert torch.all(P_hat[0, S, :, S] == 1) and torch.all(n[0, S] == log.n_transitions)
    assert torch.allclose(r_hat[0, S], log.spec.rescale(torch.tensor(0.0, dtype=torch.float64)))
    positive = tmp_path / "pos.npz"
    np.savez(positive, obs=[0, 1], action=[0, 0], reward=[2.0, 3.0], next_obs=[1, 0], terminated=[False, True],
             n_states=2, n_actions=1, horizon=3)
    assert (load_transitions(positive).spec.r_min, load_transitions(positive).spec.r_max) == (0.0, 3.0)
