"""The regret objective (rlpfn/regret.py): its credit assignment by hand, and its gradient's direction on an MDP
where exploring pays."""
import numpy as np
import pytest
import torch

from rlpfn.mdp import TabularMDP
from rlpfn.model import RLPFN, ModelConfig
from rlpfn.regret import Critic, RegretConfig, leave_one_out, regret_loss, regret_to_go


def test_regret_to_go_counts_the_rest_of_the_episode_and_later_episodes():
    cost = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])  # two episodes of H = 3
    assert regret_to_go(cost, 3).tolist() == [[21.0, 20.0, 18.0, 15.0, 11.0, 6.0]]
    # discount 0.5: episode 2's total (15) counts half in episode 1
    assert regret_to_go(cost, 3, 0.5).tolist() == [[13.5, 12.5, 10.5, 15.0, 11.0, 6.0]]


def test_leave_one_out_subtracts_the_other_runs_mean_of_the_same_mdp():
    x = torch.tensor([1.0, 3.0, 5.0, 10.0, 20.0, 30.0])  # two MDPs, three runs each
    assert leave_one_out(x, 2).tolist() == [-3.0, 0.0, 3.0, -15.0, 0.0, 15.0]


def test_regret_config_refuses_one_run_and_too_many_grad_episodes():
    with pytest.raises(ValueError, match="runs must be >= 2"):
        RegretConfig(runs=1)
    with pytest.raises(ValueError, match="grad_episodes = 5 exceeds"):
        RegretConfig(episodes=4, grad_episodes=5)


def explore_pays(copies: int) -> TabularMDP:
    """A two-armed bandit as a one-state MDP (H = 2): arm 0 pays 0.5, arm 1 pays 1. An agent that values untried
    arms below 0.5 keeps pulling arm 0 once it has tried it first."""
    one = TabularMDP(np.ones((1, 2, 1)), np.array([[0.5, 1.0]]), np.array([1.0]), 2, r_min=0.0, r_max=1.0)
    return one.take([0] * copies)


@pytest.mark.parametrize("with_critic", [False, True])
def test_regret_gradient_raises_optimism_where_exploring_pays(with_critic):
    """A tiny untrained model that values untried pairs at sigmoid(-2)·(H-h) = 0.12·(H-h), below the known arm's
    0.5, under-explores: the regret gradient must push the untried-pair logit up (the head starts at zero, so
    its bias is that logit's shift for every pair) and the temperature down (in a deterministic bandit, sampling
    noise only costs); and more optimism must indeed lower the regret. A sign error in the surrogate flips both.
    With an (untrained) critic as the baseline, the same, and the critic's regression reaches the critic."""
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, unvisited_logit=-2.0, init_temperature=0.2))
    cfg = RegretConfig(weight=1.0, runs=16, episodes=6, grad_episodes=6, critic=with_critic)
    critic = Critic(16) if with_critic else None
    mdps = explore_pays(4)
    parts = regret_loss(model, mdps, cfg, seed=0, critic=critic)
    parts["loss"].backward()
    if with_critic:
        assert parts["critic_mse"] > 0 and all(p.grad.abs().sum() > 0 for p in critic.parameters())
    assert model.head.bias.grad[2] < -0.005  # descending the loss raises u: untried pairs look better
    assert model.log_temperature.grad > 0.01  # and lowers the temperature
    with torch.no_grad():
        model.head.bias[2] += 6.0  # sigmoid(4): untried pairs valued near H-h, as UCB-VI values them
    assert regret_loss(model, mdps, cfg, seed=0, critic=critic)["regret"] < parts["regret"] - 0.05
