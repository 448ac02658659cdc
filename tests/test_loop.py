"""rlpfn.Agent: an agent driven from the user's own loop with plain values."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rlpfn
from rlpfn.mdp import MDPError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs():
    block = re.search(r"```python\nimport gymnasium as gym\nimport rlpfn\n.*?```", README.read_text(), re.S).group(0)
    env = {}
    exec(block.removeprefix("```python").removesuffix("```"), env)  # noqa: S102
    assert env["agent"].agent.stats.counts.sum() == 20 * 100  # 20 episodes of exactly H agent steps


def test_an_early_end_is_played_out_in_the_absorbing_state_paying_zero():
    agent = rlpfn.Agent("ucbvi", n_states=3, n_actions=2, horizon=5, reward_bounds=(-2.0, -1.0))
    a = agent.act(0)
    agent.observe(0, a, -1.0, 2, terminated=True)
    assert agent.episode_over and agent.step == 5
    stats, spec = agent.agent.stats, agent.spec
    assert (spec.r_min, spec.r_max) == (-2.0, 0.0)  # 0 held by the bounds
    assert stats.counts[0, 0, a, 3] == 1  # the terminated step leads to the absorbing state (index 3)
    assert stats.counts[0, 3, :, 3].sum() == 4 and stats.counts.sum() == 5
    assert torch.allclose(stats.reward_sum[0, 3].sum(), 4 * spec.rescale(torch.tensor(0.0, dtype=torch.float64)))
    assert torch.isclose(stats.reward_sum[0, 0, a], spec.rescale(torch.tensor(-1.0, dtype=torch.float64)))
    agent.act(1)  # a new episode starts at step 0
    assert agent.step == 0 and not agent.episode_over


def test_truncation_records_the_real_next_state_and_no_false_transition():
    agent = rlpfn.Agent("ucbvi", n_states=3, n_actions=2, horizon=4)
    a = agent.act(1)
    agent.observe(1, a, 0.5, 2, truncated=True)
    counts = agent.agent.stats.counts[0]
    assert agent.episode_over and counts[1, a, 2] == 1 and counts[1, a, 3] == 0  # not to the absorbing state
    assert counts[3, :, 3].sum() == 3 and counts[:3, :, 3].sum() == 0  # padding stays inside the absorbing state


@pytest.mark.parametrize("call,message", [
    (lambda ag: ag.act(7), "state 7 is not a state"),
    (lambda ag: ag.observe(0, 5, 0.0, 1), "action 5"),
    (lambda ag: ag.observe(0, 0, 3.0, 1), "reward 3.0 is outside"),
    (lambda ag: ag.observe(0, 0, 0.0, -1), "next_state -1"),
    (lambda ag: [ag.observe(0, 0, 0.0, 1) for _ in range(3)], "longer than the horizon"),
])
def test_bad_values_are_refused(call, message):
    agent = rlpfn.Agent("ucbvi", n_states=2, n_actions=2, horizon=2)
    agent.act(0)
    with pytest.raises(MDPError, match=message):
        call(agent)


def test_bad_construction_is_refused():
    with pytest.raises(MDPError, match="n_states"):
        rlpfn.Agent("ucbvi", n_states=0, n_actions=2, horizon=3)
    with pytest.raises(MDPError, match="offline-only"):
        rlpfn.Agent("vilcb", n_states=2, n_actions=2, horizon=3)
    with pytest.raises(MDPError, match="reward_bounds"):
        rlpfn.Agent("ucbvi", n_states=2, n_actions=2, horizon=3, reward_bounds=(0.0, np.inf))
