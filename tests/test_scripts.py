"""The measuring scripts' own arithmetic (scripts/*.py), on hand-made inputs."""
import importlib.util
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repeat_rate_counts_repeats_at_revisited_states_only():
    rate = script("ad_persistence").repeat_rate(np.array([[0, 1, 0, 1, 0]]), np.array([[2, 1, 2, 0, 1]]))
    # state 0: a=2, then 2 (repeat), then 1 (not); state 1: a=1, then 0 (not); first visits are NaN
    np.testing.assert_array_equal(rate, [[np.nan, np.nan, 1.0, 0.0, 0.0]])


def test_a_rule_per_group_is_chosen_on_the_other_rollouts():
    cross_fitted = script("ceiling_by_size").cross_fitted
    # 2 rollouts x 2 rules x 4 MDPs: MDPs 0-1 want rule 0, MDPs 2-3 rule 1, in both rollouts
    R = np.array([[[0.1, 0.1, 0.9, 0.9], [0.9, 0.9, 0.1, 0.1]]] * 2)
    np.testing.assert_allclose(cross_fitted(R, np.array([0, 0, 1, 1])), 0.1)
    assert cross_fitted(R, np.zeros(4)).mean() == 0.5  # one rule for all: right for half of the MDPs
    # MDP 0: rule 0 looks best on rollout 0 (0.1) and worst on rollout 1 (0.9). Each rollout is scored with the
    # choice of the other: rollout 0 with rule 1 (0.5), rollout 1 with rule 0 (0.9), never the lucky 0.1
    lucky = np.array([[[0.1, 0.5], [0.5, 0.5]], [[0.9, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(cross_fitted(lucky, np.arange(2)), [(0.5 + 0.9) / 2, 0.5])
