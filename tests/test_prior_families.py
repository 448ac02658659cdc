import numpy as np
import pytest

from rlpfn.mdp import TabularMDP
from rlpfn.planning import solve
from rlpfn.prior import FAMILIES, MIN_GAP, dirichlet, garnet, gridworld, sample_mdps
from rlpfn.prior.families import grid_map, grid_neighbours

CASES = [("dirichlet", 7, 3), ("garnet", 12, 2), ("gridworld", 9, 4), ("gridworld", 6, 5), ("dirichlet", 1, 1),
         ("garnet", 2, 3), ("gridworld", 1, 4)]


def _draw(fam, S, A, seed, n=4, H=7, **params):
    return FAMILIES[fam](n, S, A, H, np.random.default_rng(seed), **params)


@pytest.mark.parametrize("fam,S,A", CASES)
def test_family_outputs_are_valid_mdps(fam, S, A):
    P, R, R_std, mu0 = _draw(fam, S, A, seed=0)
    assert P.shape == (4, S, A, S) and R.shape == R_std.shape == (4, S, A) and mu0.shape == (4, S)
    for arr in (P, R, R_std, mu0):
        assert arr.dtype == np.float64
    assert R.min() >= 0 and R.max() <= 1 and (R_std >= 0).all()
    for i in range(4):
        TabularMDP(P[i], R[i], mu0[i], 7, R_std[i], r_min=0.0, r_max=1.0)  # raises if invalid
        assert np.count_nonzero(mu0[i]) == 1  # a single start state


@pytest.mark.parametrize("fam,S,A", CASES)
def test_family_seeding(fam, S, A):
    a, b, c = _draw(fam, S, A, seed=5), _draw(fam, S, A, seed=5), _draw(fam, S, A, seed=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    if S > 1:
        assert not np.array_equal(a[0], c[0])


def test_empty_batch():
    for fam, S, A in CASES:
        out = _draw(fam, S, A, seed=0, n=0)
        assert out[0].shape == (0, S, A, S)


def test_dirichlet_small_concentration_never_degenerate():
    P, *_ = dirichlet(8, 30, 4, 5, np.random.default_rng(1), concentration=1e-3)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-12)
    assert (P.max(-1) > 0.9).mean() > 0.8  # nearly deterministic
    P, *_ = dirichlet(8, 30, 4, 5, np.random.default_rng(1), concentration=100.0)
    assert P.max() < 0.2  # nearly uniform


def test_reward_density():
    _, R, _, _ = dirichlet(50, 10, 3, 5, np.random.default_rng(2), reward_density=0.2)
    assert 0.1 < (R > 0).mean() < 0.3
    assert ((R > 0).reshape(50, -1).sum(-1) >= 1).all()  # never an MDP without reward
    _, R, _, _ = garnet(5, 10, 3, 5, np.random.default_rng(2), reward_density=1.0)
    assert (R > 0).all()
    _, R, _, _ = garnet(5, 10, 3, 5, np.random.default_rng(2), reward_density=0.0)
    assert ((R > 0).reshape(5, -1).sum(-1) == 1).all()
    _, _, R_std, _ = garnet(2, 4, 2, 5, np.random.default_rng(2), reward_std=0.5)
    assert (R_std == 0.5).all()


def test_garnet_successor_count():
    P, *_ = garnet(6, 15, 3, 5, np.random.default_rng(3), b=3)
    assert ((P > 0).sum(-1) <= 3).all() and ((P > 0).sum(-1) >= 1).all()
    assert ((P > 0).sum(-1) == 3).mean() > 0.95  # Dirichlet(1) weights are almost surely all positive
    P, *_ = garnet(2, 2, 2, 5, np.random.default_rng(3), b=5)  # b > S: all states are successors
    np.testing.assert_allclose(P.sum(-1), 1.0)


def test_gridworld_structure():
    rng = np.random.default_rng(4)
    for S in (1, 2, 5, 13, 30, 64):
        for wall_fraction in (0.0, 0.1, 0.4):
            open_ = grid_map(S, wall_fraction, rng)
            assert open_.sum() == S
            nbr = grid_neighbours(open_)
            assert nbr.shape == (S, 5)
            # connected: every state reachable from state 0 along moves
            seen, frontier = {0}, [0]
            while frontier:
                s = frontier.pop()
                for t in nbr[s]:
                    if int(t) not in seen:
                        seen.add(int(t))
                        frontier.append(int(t))
            assert len(seen) == S

    P, R, _, mu0 = gridworld(3, 20, 4, 10, np.random.default_rng(5), slip=0.0)
    for i in range(3):
        goal = int(np.flatnonzero(R[i].sum(-1))[0])
        assert (R[i, goal] == 1).all() and R[i].sum() == 4  # one goal, reward 1 for every action taken in it
        assert (P[i, goal, :, goal] == 1).all()  # absorbing
        assert mu0[i, goal] == 0
        assert ((P[i] == 0) | (P[i] == 1)).all()  # slip 0: deterministic moves
    P, *_ = gridworld(2, 20, 5, 10, np.random.default_rng(5), slip=0.3)
    np.testing.assert_array_equal(P[:, :, 4], np.broadcast_to(np.eye(20), (2, 20, 20)))  # "stay" stays
    with pytest.raises(ValueError, match="n_actions"):
        gridworld(1, 10, 3, 10, np.random.default_rng(0))


def test_gridworld_slip_probabilities():
    # One row of 3 cells, no walls, goal/start drawn: the middle cell's "right" goes right w.p. 1 - slip and
    # slips up/down (blocked: stays) or left, each w.p. slip / 3.
    rng = np.random.default_rng(6)
    P, R, _, _ = gridworld(50, 3, 4, 5, rng, slip=0.3, wall_fraction=0.0)
    for i in range(50):
        goal = int(np.flatnonzero(R[i].sum(-1))[0])
        if goal != 1:
            row = P[i, 1, 3]  # state 1 is the middle cell of the 1x3 grid
            np.testing.assert_allclose(row, [0.1, 0.2, 0.7])
            return
    raise AssertionError("no map without the goal in the middle")


def test_sample_mdps_deterministic_and_valid():
    a = sample_mdps(9, 123)
    b = sample_mdps(9, np.random.default_rng(123))
    c = sample_mdps(9, 124)
    assert [m.name for m in a] == [m.name for m in b]
    for x, y in zip(a, b):
        for key in ("P", "R", "R_std", "mu0"):
            np.testing.assert_array_equal(getattr(x, key), getattr(y, key))
        assert x.horizon == y.horizon
    assert any(x.P.shape != y.P.shape or not np.array_equal(x.P, y.P) for x, y in zip(a, c))
    fams = set()
    for i, m in enumerate(a + c):
        fam, idx = m.name.rsplit("-", 1)
        fams.add(fam)
        assert int(idx) == i % 9 and m.meta["family"] == fam
        assert 5 <= m.n_states <= 30 and 10 <= m.horizon <= 30
        assert m.n_actions == 4 if fam == "gridworld" else 2 <= m.n_actions <= 4
        assert (m.r_min, m.r_max) == (0.0, 1.0)
        m.validate()
        sol = solve(m)
        assert sol.v_star - sol.v_random >= MIN_GAP * m.horizon - 1e-9
    assert fams == {"dirichlet", "garnet", "gridworld"}


def test_sample_mdps_options():
    ms = sample_mdps(5, 0, families=("garnet",), states=8, actions=3, horizon=4, params={"garnet": {"b": 1}})
    for m in ms:
        assert m.P.shape == (8, 3, 8) and m.horizon == 4
        assert ((m.P > 0).sum(-1) == 1).all()
    with pytest.raises(ValueError, match="unknown families"):
        sample_mdps(1, 0, families=("nope",))
    with pytest.raises(RuntimeError, match="no MDP"):  # an impossible margin
        sample_mdps(1, 0, families=("dirichlet",), states=3, horizon=2, min_gap=2.0, max_tries=5)
