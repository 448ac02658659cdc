"""The benchmark suite and the gymnasium importer: shapes, and V* against docs/reference.md."""
import gymnasium
import numpy as np
import pytest
from gymnasium.spaces import Discrete

from rlpfn.benchmarks import (
    BENCHMARKS, DARKROOM10_HELDOUT_GOALS, DARKROOM_HELDOUT_GOALS, SUITE, make_benchmark,
)
from rlpfn.gym_import import from_gymnasium
from rlpfn.mdp import MDPError
from rlpfn.unseen import FOUR_ROOMS, UNSEEN
from rlpfn.planning import solve

REFERENCE_MDPS = ["rlberry-chain", "rlberry-gridworld", *UNSEEN]

# (S, A, H) as documented in rlpfn/benchmarks.py; "+1" is the added absorbing state.
SHAPES = {
    "frozenlake4x4": (16 + 1, 4, 100),
    "frozenlake8x8": (64 + 1, 4, 200),
    "cliffwalking": (48 + 1, 4, 100),
    "taxi": (500 + 1, 6, 200),
    "riverswim": (6, 2, 20),
    "sixarms": (7, 6, 20),
    "chain": (5, 2, 20),
    "deepsea": (10 * 10 + 1, 2, 10),
    "darkroom": (81, 5, 20),
    "darkroom10": (100, 5, 100),
    "rlberry-chain": (10, 2, 20),
    "rlberry-gridworld": (23, 4, 20),
    "windy-gridworld": (70 + 1, 4, 100),
    "windy-gridworld-king": (70 + 1, 8, 100),
    "dyna-maze": (47 + 1, 4, 100),
    "four-rooms": (104 + 1, 4, 100),
    "loop": (9, 2, 20),
}

# V* from docs/reference.md, with a tolerance matching the printed digits; darkrooms: H - distance + 1.
V_STAR = {
    ("frozenlake4x4", None): (0.744, 1e-3),
    ("frozenlake8x8", None): (0.913, 1e-3),
    ("frozenlake8x8", 100): (0.641, 1e-3),
    ("cliffwalking", None): (-13.0, 1e-9),
    ("taxi", None): (7.93, 5e-3),
    ("riverswim", None): (3.397, 1e-3),
    ("deepsea", None): (0.99, 1e-9),
    ("darkroom", None): (13.0, 1e-9),
    ("darkroom10", None): (83.0, 1e-9),
    ("rlberry-chain", None): (8.126, 1e-3),
    ("rlberry-gridworld", None): (10.855, 1e-3),
    ("windy-gridworld", None): (-15.0, 1e-9),  # Sutton & Barto: 15 steps on the shortest path
    ("dyna-maze", None): (1.0, 1e-9),
    ("dyna-maze", 14): (1.0, 1e-9),  # the shortest path is 14 moves: one step fewer cannot reach the goal
    ("dyna-maze", 13): (0.0, 1e-9),
    ("loop", None): (8.0, 1e-9),  # four left loops of five steps
    ("loop", 9): (2.0, 1e-9),  # one left loop (5 steps) beats a right one and a part of the next
}

_mdps, _solutions = {}, {}


def build(name, horizon=None):
    key = (name, horizon)
    if key not in _mdps:
        _mdps[key] = make_benchmark(name) if horizon is None else make_benchmark(name, horizon=horizon)
    return _mdps[key]


def solved(name, horizon=None):
    key = (name, horizon)
    if key not in _solutions:
        _solutions[key] = solve(build(name, horizon))
    return _solutions[key]


def test_registry():
    assert set(SUITE) <= set(BENCHMARKS)
    assert set(REFERENCE_MDPS) <= set(BENCHMARKS) and not set(REFERENCE_MDPS) & set(SUITE)
    assert set(SHAPES) == set(BENCHMARKS)
    with pytest.raises(ValueError, match="unknown benchmark 'nope'; valid names: .*riverswim"):
        make_benchmark("nope")


@pytest.mark.parametrize("name", SUITE + REFERENCE_MDPS)
def test_builds_with_documented_shape(name):
    mdp = build(name)
    mdp.validate()
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == SHAPES[name]
    assert mdp.name == name
    # bounds hold every mean reward (gymnasium imports: the range of single outcome rewards)
    assert mdp.r_min <= mdp.R.min() + 1e-12 and mdp.R.max() <= mdp.r_max + 1e-12
    sol = solved(name)
    assert sol.v_star >= sol.v_random - 1e-9


@pytest.mark.parametrize("name,horizon", list(V_STAR))
def test_v_star_matches_reference(name, horizon):
    value, tol = V_STAR[(name, horizon)]
    assert solved(name, horizon).v_star == pytest.approx(value, abs=tol)


def test_horizon_override():
    assert make_benchmark("riverswim", horizon=7).horizon == 7
    assert make_benchmark("deepsea", size=5).horizon == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deepsea_mapping_is_random_but_optimum_fixed(seed):
    mdp = make_benchmark("deepsea", size=6, seed=seed)
    assert (mdp.n_states, mdp.horizon) == (37, 6)
    assert solve(mdp).v_star == pytest.approx(0.99)
    maps = [make_benchmark("deepsea", seed=s).meta["right_action"] for s in (0, 1)]
    assert not np.array_equal(*maps)


def test_chain_reward_follows_executed_action():
    mdp = build("chain")
    # s0, forward chosen: forward (r 0) w.p. 0.8, backward (r 2) w.p. 0.2
    assert mdp.R[0, 0, 0] == pytest.approx(0.4) and mdp.R[0, 4, 0] == pytest.approx(8.4)
    o = mdp.outcomes  # outcome k = executed action k
    assert o.prob[0, 0, 0].tolist() == pytest.approx([0.8, 0.2]) and o.reward[0, 0, 0].tolist() == [0.0, 2.0]
    assert o.next_state[0, 4, 0].tolist() == [4, 0] and o.reward[0, 4, 0].tolist() == [10.0, 2.0]
    assert (mdp.r_min, mdp.r_max) == (0.0, 10.0) and not mdp.R_std.any()
    assert mdp.P[0, 2, 0, 3] == pytest.approx(0.8) and mdp.P[0, 2, 0, 0] == pytest.approx(0.2)


def test_sixarms_structure():
    mdp = build("sixarms")
    assert mdp.P[0, 0, 5, 6] == pytest.approx(0.01) and mdp.P[0, 0, 5, 0] == pytest.approx(0.99)
    assert mdp.P[0, 6, 5, 6] == 1 and mdp.R[0, 6, 5] == pytest.approx(1.0) and mdp.P[0, 6, 0, 0] == 1
    assert mdp.P[0, 1, 0, 1] == 1 and mdp.P[0, 1, 4, 0] == 1 and mdp.R[0, 1, 0] == pytest.approx(50 / 6000)


def test_darkroom_goals():
    for goals, n, count in ((DARKROOM_HELDOUT_GOALS, 9, 8), (DARKROOM10_HELDOUT_GOALS, 10, 20)):
        assert len(goals) == len(set(goals)) == count
        assert all(0 <= r < n and 0 <= c < n for r, c in goals)
    mdp = make_benchmark("darkroom", goal=DARKROOM_HELDOUT_GOALS[0])  # (0, 1): 7 moves from (4, 4)
    assert mdp.meta["goal"] == (0, 1) and solve(mdp).v_star == pytest.approx(20 - 7 + 1)
    assert solve(make_benchmark("darkroom", goal=(4, 4))).v_star == pytest.approx(20)
    with pytest.raises(ValueError, match="outside"):
        make_benchmark("darkroom10", goal=(10, 0))


# ---- from_gymnasium -----------------------------------------------------------------------------
def test_terminating_transition_goes_to_absorbing_state():
    mdp = build("frozenlake4x4")
    absorbing = 16
    assert mdp.meta["absorbing_state"] == absorbing
    assert np.all(mdp.P[0, absorbing, :, absorbing] == 1) and np.all(mdp.R[0, absorbing] == 0)
    assert mdp.mu0[0, absorbing] == 0 and mdp.mu0[0, 0] == 1
    # state 14 (row 3, col 2), RIGHT: reaches G (+1, terminal) w.p. 1/3; the reward is kept
    assert mdp.P[0, 14, 2, absorbing] == pytest.approx(1 / 3) and mdp.P[0, 14, 2, 15] == 0
    assert mdp.R[0, 14, 2] == pytest.approx(1 / 3) and not mdp.R_std.any()
    o = mdp.outcomes  # the exact outcome: reach G (absorbing, pays 1) w.p. 1/3
    paid = o.reward[0, 14, 2] == 1.0
    assert o.prob[0, 14, 2][paid].sum() == pytest.approx(1 / 3) and (o.next_state[0, 14, 2][paid] == 16).all()
    # state 1, DOWN: falls into the hole at 5 w.p. 1/3, reward 0
    assert mdp.P[0, 1, 1, absorbing] == pytest.approx(1 / 3) and mdp.R[0, 1, 1] == 0
    assert mdp.P[0, :, :, 15].sum() == 0 and mdp.P[0, :, :, 5].sum() == 0  # G and holes are never entered


def test_from_env_instance_matches_id():
    env = gymnasium.make("FrozenLake-v1")
    mdp = from_gymnasium(env)
    assert mdp.name == "FrozenLake-v1" and mdp.horizon == 100
    np.testing.assert_allclose(mdp.P, build("frozenlake4x4").P)


def test_from_gymnasium_errors():
    with pytest.raises(MDPError, match=r"observation space Box\(.*\) is not Discrete"):
        from_gymnasium("CartPole-v1")
    with pytest.raises(MDPError, match="unknown gymnasium environment 'NoSuchEnv-v0'"):
        from_gymnasium("NoSuchEnv-v0")
    with pytest.raises(MDPError, match="give a horizon"):
        from_gymnasium("CliffWalking-v1")  # registered without a time limit


class _TinyEnv(gymnasium.Env):
    """Two states, nothing terminates; s0 -> s1 w.p. 1/2 with reward 1 or 3."""

    observation_space, action_space = Discrete(2), Discrete(1)

    def __init__(self, with_mu0=True):
        self.P = {0: {0: [(0.5, 0, 1.0, False), (0.5, 1, 3.0, False)]}, 1: {0: [(1.0, 1, 0.0, False)]}}
        if with_mu0:
            self.initial_state_distrib = np.array([1.0, 0.0])


def test_frozenlake_bounds_cover_a_single_reward():
    mdp = build("frozenlake4x4")
    assert (mdp.r_min, mdp.r_max) == (0.0, 1.0)


def test_no_absorbing_state_without_termination():
    mdp = from_gymnasium(_TinyEnv(), horizon=3)
    assert mdp.n_states == 2 and mdp.meta["absorbing_state"] is None
    assert mdp.R[0, 0, 0] == pytest.approx(2.0) and not mdp.R_std.any()
    assert sorted(mdp.outcomes.reward[0, 0, 0].tolist()) == [1.0, 3.0]
    assert (mdp.r_min, mdp.r_max) == (0.0, 3.0)  # the range of single rewards, not of means
    with pytest.raises(MDPError, match="give a horizon"):
        from_gymnasium(_TinyEnv())
    with pytest.raises(MDPError, match="no initial_state_distrib"):
        from_gymnasium(_TinyEnv(with_mu0=False), horizon=3)


def test_simulator_samples_gymnasium_outcomes_exactly():
    """FrozenLake pays exactly 0 or 1, and 1 only on arriving in the absorbing state from G's neighbours."""
    import torch

    from rlpfn.env import BatchedEnv

    mdp = build("frozenlake4x4")
    env = BatchedEnv(mdp, 4000, torch.Generator().manual_seed(0))
    env.reset()
    env.state = torch.full((4000,), 14)
    r, nxt = env.step(torch.full((4000,), 2))  # RIGHT from 14: G w.p. 1/3
    assert set(r.tolist()) == {0.0, 1.0}
    assert (nxt[r == 1] == 16).all() and (r[nxt == 16] == 1).all()
    assert r.mean().item() == pytest.approx(1 / 3, abs=0.03)


def test_windy_gridworld_wind_pushes_up_from_the_column_moved_from():
    """Sutton & Barto Example 6.5: moving left from (4, 8) (wind 1) lands on the goal (3, 7), where column 7's wind (2)
    would have given (2, 7); the king's-moves variant spreads the push over wind - 1, wind, wind + 1 in windy columns
    and not in calm ones."""
    mdp = build("windy-gridworld")
    cell = lambda r, c: r * 10 + c  # noqa: E731 (row-major over the whole 7x10 grid)
    assert mdp.P[0, cell(3, 6), 3, cell(1, 7)] == 1.0
    assert mdp.P[0, cell(3, 0), 0, cell(2, 0)] == 1.0  # calm column: an ordinary move
    assert mdp.P[0, cell(0, 4), 1, cell(0, 4)] == 1.0  # down against wind 1 at the top edge: stays
    goal = cell(3, 7)  # never occupied: entering it ends the episode
    assert np.all(np.delete(mdp.R[0, :70], goal, 0) == -1.0)
    assert mdp.P[0, cell(4, 8), 2, 70] == 1.0  # left from (4, 8), wind 1: the goal, then the absorbing state
    king = build("windy-gridworld-king")
    assert king.P[0, cell(3, 6), 3].round(12).tolist().count(round(1 / 3, 12)) == 3  # pushes 1, 2, 3 up
    assert king.P[0, cell(3, 6), 3, cell(0, 7)] == pytest.approx(1 / 3)
    assert king.P[0, cell(3, 1), 0, cell(2, 1)] == 1.0


def test_four_rooms_move_succeeds_two_times_in_three():
    """Four Rooms: in an open cell the chosen move w.p. 2/3 and each other one w.p. 1/9; into a wall, stays."""
    mdp = build("four-rooms")
    free = [(r, c) for r, line in enumerate(FOUR_ROOMS.strip("\n").splitlines()) for c, ch in enumerate(line) if ch != "w"]
    idx = {c: i for i, c in enumerate(free)}
    s = idx[(2, 2)]  # open on all four sides
    assert mdp.P[0, s, 0, idx[(1, 2)]] == pytest.approx(2 / 3)
    assert [mdp.P[0, s, 0, idx[c]] for c in [(3, 2), (2, 1), (2, 3)]] == pytest.approx([1 / 9] * 3)
    corner = idx[(1, 1)]  # up and left are walls: the up action stays w.p. 2/3 + 1/9
    assert mdp.P[0, corner, 0, corner] == pytest.approx(2 / 3 + 1 / 9)
    assert mdp.mu0[0, corner] == 1.0
    for hallway, walls in [((3, 6), [(2, 6), (4, 6)]), ((6, 2), [(6, 1), (6, 3)]), ((7, 9), [(7, 8), (7, 10)]),
                           ((10, 6), [(9, 6), (11, 6)])]:
        assert hallway in idx and not any(w in idx for w in walls)
    assert len(free) == 104
    above = idx[(10, 11)]  # down into the goal w.p. 2/3: +1, then the absorbing state
    assert mdp.R[0, above, 1] == pytest.approx(2 / 3) and mdp.P[0, above, 1, 104] == pytest.approx(2 / 3)


def test_loop_pays_for_each_completed_loop():
    """Loop: b at every state of the left loop earns 2 each 5 steps; a there falls back to 0; the right loop pays 1."""
    mdp = build("loop")
    assert mdp.P[0, 0, 0, 1] == 1.0 and mdp.P[0, 0, 1, 5] == 1.0 and mdp.P[0, 8, 0, 0] == 1.0 and mdp.P[0, 8, 1, 0] == 1.0
    assert mdp.P[0, 6, 0, 0] == 1.0 and mdp.P[0, 6, 1, 7] == 1.0
    assert mdp.P[0, 2, 1, 3] == 1.0 and mdp.P[0, 4, 0, 0] == 1.0
    assert mdp.R[0].tolist() == [[0, 0]] * 4 + [[1, 1]] + [[0, 0]] * 3 + [[2, 2]]


def test_dyna_maze_obstacles_block():
    """Dyna Maze: each of the seven obstacle cells is no state, and a move into one stays put."""
    from rlpfn.unseen import DYNA_MAZE_OBSTACLES
    mdp = build("dyna-maze")
    cells = [(r, c) for r in range(6) for c in range(9) if (r, c) not in DYNA_MAZE_OBSTACLES]
    idx = {c: i for i, c in enumerate(cells)}
    assert sorted(DYNA_MAZE_OBSTACLES) == [(0, 7), (1, 2), (1, 7), (2, 2), (2, 7), (3, 2), (4, 5)]
    up, right = 0, 3
    for frm, a in [((4, 4), right), ((5, 5), up), ((2, 1), right), ((3, 1), right), ((0, 6), right), ((3, 7), up)]:
        assert mdp.P[0, idx[frm], a, idx[frm]] == 1.0  # into (4, 5), (4, 5), (2, 2), (3, 2), (0, 7), (2, 7): stays
    assert mdp.mu0[0, idx[(2, 0)]] == 1.0 and mdp.R[0, idx[(1, 8)], 0] == 1.0  # up from (1, 8): the goal
