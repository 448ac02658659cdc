"""Planning against independent references: pymdptoolbox's finite-horizon solver, brute-force enumeration of
policies and trajectories in plain Python, and properties that must hold for any MDP."""
import contextlib
import io
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rlpfn.mdp import TabularMDP
from rlpfn.planning import (
    DTYPE,
    SparseP,
    backward_induction,
    evaluate_policy,
    expect,
    greedy,
    mdp_tensors,
    normalize_counts,
    policy_value,
    solve,
    uniform_policy,
    variance,
)
from rlpfn.prior import dirichlet, parse_spec, sample_prior_mdps, sample_sized_batch

pytestmark = pytest.mark.filterwarnings("ignore:Sparse:UserWarning")


def t(x):
    return torch.as_tensor(np.array(x), dtype=DTYPE)


# ---- against pymdptoolbox (hiive) -----------------------------------------------------------------------
def _toolbox(mdp: TabularMDP):
    from hiive.mdptoolbox.mdp import FiniteHorizon

    # transitions [A,S,S], reward [S,A] (expected reward of acting a in s), gamma = 1, N = H periods.
    fh = FiniteHorizon(np.transpose(mdp.P[0], (1, 0, 2)).copy(), mdp.R[0].copy(), 1.0, mdp.horizon)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a convergence warning for gamma = 1
        fh.run()
    return fh.V.T, fh.policy.T  # V [H+1, S] with V[H] = 0, policy [H, S] of action indices


def _spec(**sizes):
    return parse_spec({"name": "t", "families": {"dirichlet": 1, "garnet": 1, "gridworld": 1}, **sizes})


@pytest.mark.parametrize("seed", range(3))
def test_backward_induction_matches_mdptoolbox(seed):
    mdps = sample_prior_mdps(_spec(states=[1, 15], actions=[1, 4], horizon=[1, 12], min_gap=0.0), 8, seed)
    for mdp in mdps:
        V_ref, pol_ref = _toolbox(mdp)
        sol = solve(mdp)
        np.testing.assert_allclose(sol.V[0].numpy(), V_ref, rtol=1e-12, atol=1e-10, err_msg=mdp.name)
        P, R, _ = mdp_tensors(mdp)
        H, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
        # The toolbox's policy and ours are both optimal at every stage (ties may pick different actions).
        pis = torch.stack([torch.nn.functional.one_hot(torch.as_tensor(pol_ref), A).to(DTYPE), sol.policy[0]])
        _, V_pi = evaluate_policy(P[0], R.expand(2, S, A), pis, H)
        np.testing.assert_allclose(V_pi.numpy(), np.stack([V_ref, V_ref]), rtol=1e-12, atol=1e-10)
        # Q* is consistent with the toolbox's greedy actions
        q_at = sol.Q[0].gather(-1, torch.as_tensor(pol_ref)[..., None])[..., 0]
        np.testing.assert_allclose(q_at.numpy(), V_ref[:H], rtol=1e-12, atol=1e-10)


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(0)
    P, R, _, _ = dirichlet(5, 6, 3, 7, rng, reward_density=0.5)
    Q, V = backward_induction(t(P), t(R), 7)
    for b in range(5):
        Qb, Vb = backward_induction(t(P[b : b + 1]), t(R[b : b + 1]), 7)
        torch.testing.assert_close(Qb[0], Q[b], rtol=0, atol=0)
        torch.testing.assert_close(Vb[0], V[b], rtol=0, atol=0)
    # one MDP shared by the batch ([S,A,S]) equals the same MDP repeated
    Qs, Vs = backward_induction(t(P[0]), t(R[:1]).expand(3, -1, -1), 7)
    torch.testing.assert_close(Qs, Q[:1].expand(3, -1, -1, -1))
    torch.testing.assert_close(Vs, V[:1].expand(3, -1, -1))


# ---- brute force on tiny MDPs ----------------------------------------------------------------------------
def _enumerate_value(P, R, policy, H, S, h, s0):
    """V^pi_h(s0) by summing over every state sequence s_h..s_{H-1}: P(trajectory) * return. Plain Python.
    P nested lists [S][A][S]; R nested lists [H][S][A]; policy a tuple: action policy[k*S + s] at stage k."""
    total = 0.0
    for rest in itertools.product(range(S), repeat=H - h - 1):
        states = (s0,) + rest
        prob, ret = 1.0, 0.0
        for k, s in enumerate(states):
            a = policy[(h + k) * S + s]
            ret += R[h + k][s][a]
            if k + 1 < len(states):
                prob *= P[s][a][states[k + 1]]
        total += prob * ret
    return total


@pytest.mark.parametrize("S,H", [(2, 2), (2, 3), (3, 2), (3, 3)])
@pytest.mark.parametrize("stage_rewards", [False, True])
def test_brute_force_tiny(S, H, stage_rewards):
    A = 2
    rng = np.random.default_rng(100 * S + 10 * H + stage_rewards)
    for P_np in (rng.dirichlet(np.ones(S), size=(S, A)), np.eye(S)[rng.integers(S, size=(S, A))]):
        R_np = rng.normal(size=(H, S, A)) if stage_rewards else np.broadcast_to(rng.random((S, A)), (H, S, A))
        P_l, R_l = P_np.tolist(), R_np.tolist()
        policies = list(itertools.product(range(A), repeat=H * S))  # deterministic, non-stationary
        brute = np.array([[[_enumerate_value(P_l, R_l, pol, H, S, h, s) for s in range(S)] for h in range(H)]
                          for pol in policies])  # [n_pol, H, S]

        R_t = t(R_np)[None] if stage_rewards else t(R_np[0])[None]
        Q, V = backward_induction(t(P_np)[None], R_t, H)
        np.testing.assert_allclose(V[0, :H].numpy(), brute.max(0), rtol=1e-12, atol=1e-12)
        assert (V[0, H] == 0).all()

        pi = torch.nn.functional.one_hot(torch.tensor(policies).reshape(-1, H, S), A).to(DTYPE)
        R_b = R_t.expand(len(policies), *R_t.shape[1:])
        _, V_pi = evaluate_policy(t(P_np), R_b, pi, H)
        np.testing.assert_allclose(V_pi[:, :H].numpy(), brute, rtol=1e-12, atol=1e-12)


# ---- dense and sparse empirical models -----------------------------------------------------------------
def _counts(B, S, A, rng, max_successors=3, unvisited=0.3):
    counts = np.zeros((B, S, A, S))
    idx = rng.integers(S, size=(B, S, A, max_successors))
    np.put_along_axis(counts, idx, rng.integers(1, 6, size=idx.shape).astype(float), axis=-1)
    counts[rng.random((B, S, A)) < unvisited] = 0.0
    return t(counts)


@pytest.mark.parametrize("B,S,A", [(1, 1, 1), (3, 5, 2), (2, 70, 3)])
def test_dense_and_sparse_counts_agree(B, S, A):
    rng = np.random.default_rng(S)
    counts = _counts(B, S, A, rng)
    Pd, nd = normalize_counts(counts, sparse=False)
    Ps, ns = normalize_counts(counts, sparse=True)
    assert isinstance(Ps, SparseP) and not isinstance(Pd, SparseP)
    assert isinstance(normalize_counts(counts)[0], SparseP) == (S >= 64)
    torch.testing.assert_close(nd, ns)
    torch.testing.assert_close(nd, counts.sum(-1))
    visited = nd > 0
    torch.testing.assert_close(Pd.sum(-1), visited.to(DTYPE))  # rows sum to 1 where visited, else all 0
    torch.testing.assert_close(Pd[visited] * nd[visited][:, None], counts[visited])

    R = t(rng.random((B, S, A)))
    H = 6

    def optimistic(h, q, v_next):  # unvisited pairs worth the maximum, as a learner would set them
        return torch.where(visited, q, torch.full_like(q, float(H - h)))

    for adjust in (None, optimistic):
        Qd, Vd = backward_induction(Pd, R, H, adjust)
        Qs, Vs = backward_induction(Ps, R, H, adjust)
        torch.testing.assert_close(Qd, Qs, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(Vd, Vs, rtol=1e-12, atol=1e-12)
    V = t(rng.normal(size=(B, S)))
    torch.testing.assert_close(expect(Pd, V), expect(Ps, V), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(variance(Pd, V), variance(Ps, V), rtol=1e-10, atol=1e-12)
    pi = t(rng.dirichlet(np.ones(A), size=(B, H, S)))
    for a, b in zip(evaluate_policy(Pd, R, pi, H), evaluate_policy(Ps, R, pi, H)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_normalized_counts_of_a_model_plan_like_the_model():
    # counts proportional to P give P back (up to round-off), hence the same plan, dense or sparse
    rng = np.random.default_rng(7)
    P, R, _, _ = dirichlet(2, 4, 2, 5, rng)
    _, V_ref = backward_induction(t(P), t(R), 5)
    for sparse in (False, True):
        P_hat, n = normalize_counts(t(P * 24), sparse=sparse)
        torch.testing.assert_close(n, torch.full((2, 4, 2), 24.0, dtype=DTYPE))
        _, V = backward_induction(P_hat, t(R), 5)
        torch.testing.assert_close(V, V_ref, rtol=1e-12, atol=1e-12)


# ---- properties ----------------------------------------------------------------------------------------
@st.composite
def small_mdps(draw, nonnegative=False):
    B = draw(st.integers(1, 3))
    S = draw(st.integers(1, 4))
    A = draw(st.integers(1, 3))
    H = draw(st.integers(1, 5))
    raw = draw(hnp.arrays(np.float64, (B, S, A, S), elements=st.one_of(st.just(0.0), st.floats(0, 1))))
    raw[raw.sum(-1) == 0, 0] = 1.0  # an all-zero row becomes a deterministic move to state 0
    P = raw / raw.sum(-1, keepdims=True)
    lo = 0.0 if nonnegative else -1.0
    # a few repeated values so that ties (and greedy tie-breaking) get exercised
    R = draw(hnp.arrays(np.float64, (B, S, A), elements=st.one_of(st.sampled_from([lo, 0.0, 0.5, 1.0]),
                                                                  st.floats(lo, 1.0))))
    return t(P), t(R), H


def _random_policy(draw, B, H, S, A):
    w = draw(hnp.arrays(np.float64, (B, H, S, A), elements=st.one_of(st.just(0.0), st.floats(0, 1))))
    w[w.sum(-1) == 0] = 1.0
    return t(w / w.sum(-1, keepdims=True))


@settings(max_examples=60, deadline=None)
@given(mdp=small_mdps(), data=st.data())
def test_optimal_beats_every_policy(mdp, data):
    P, R, H = mdp
    B, S, A = R.shape
    pi = _random_policy(data.draw, B, H, S, A)
    _, V_star = backward_induction(P, R, H)
    Q_pi, V_pi = evaluate_policy(P, R, pi, H)
    assert (V_star >= V_pi - 1e-12).all()
    # a stationary policy [B,S,A] evaluates like its non-stationary copy
    _, V_stat = evaluate_policy(P, R, pi[:, 0], H)
    _, V_copy = evaluate_policy(P, R, pi[:, :1].expand(B, H, S, A), H)
    torch.testing.assert_close(V_stat, V_copy, rtol=0, atol=0)


@settings(max_examples=60, deadline=None)
@given(mdp=small_mdps())
def test_greedy_policy_of_q_star_is_optimal(mdp):
    P, R, H = mdp
    Q_star, V_star = backward_induction(P, R, H)
    pi = greedy(Q_star)
    assert ((pi == 0) | (pi == 1)).all() and (pi.sum(-1) == 1).all()
    Q_pi, V_pi = evaluate_policy(P, R, pi, H)
    torch.testing.assert_close(V_pi, V_star, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Q_pi, Q_star, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(V_star[:, :H], Q_star.amax(-1), rtol=0, atol=0)
    assert (V_star[:, H] == 0).all()


@settings(max_examples=60, deadline=None)
@given(mdp=small_mdps(nonnegative=True))
def test_value_shrinks_with_fewer_steps_left(mdp):
    P, R, H = mdp
    _, V = backward_induction(P, R, H)
    assert (V[:, :-1] >= V[:, 1:] - 1e-12).all()  # V*_h has H - h steps to go
    assert (V[:, 0] <= H * R.amax((-2, -1))[:, None] + 1e-12).all()


def test_solve_and_policy_value():
    for mdp in sample_prior_mdps(_spec(states=[3, 8], actions=[2, 4], horizon=[2, 6]), 4, 11):
        sol = solve(mdp)
        mu0 = torch.as_tensor(mdp.mu0[0])
        assert sol.v_star.item() == pytest.approx(float(sol.V[0, 0] @ mu0), abs=1e-12)
        pis = torch.stack([sol.policy[0], uniform_policy(1, mdp.n_states, mdp.n_actions)[0].expand_as(sol.policy[0])])
        vals = policy_value(mdp, pis)
        assert vals[0].item() == pytest.approx(sol.v_star.item(), abs=1e-12)
        assert vals[1].item() == pytest.approx(sol.v_random.item(), abs=1e-12)
        assert sol.v_star.item() >= sol.v_random.item()
    # a batch of MDPs: policy i is valued in MDP i, the same as each MDP alone
    batch = sample_sized_batch(_spec(states=[3, 8], actions=[2, 4], horizon=[2, 6]), 3, np.random.default_rng(5))
    sol = solve(batch)
    np.testing.assert_allclose(policy_value(batch, sol.policy).numpy(), sol.v_star, rtol=0, atol=1e-12)
    for i in range(3):
        alone = solve(batch.item(i))
        np.testing.assert_allclose(alone.v_star, sol.v_star[i:i + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(alone.Q[0], sol.Q[i], rtol=0, atol=1e-12)


def test_flush_subnormal_zeroes_only_subnormals_and_keeps_the_plan():
    """PSRL's posterior samples on Taxi hold subnormal probabilities; flushing them must not change Q."""
    from rlpfn.planning import flush_subnormal
    g = torch.Generator().manual_seed(0)
    gam = torch._standard_gamma(torch.full((1, 30, 2, 30), 0.003, dtype=DTYPE), generator=g)
    P = gam / gam.sum(-1, keepdim=True)
    tiny = torch.finfo(DTYPE).tiny
    sub = (P > 0) & (P < tiny)
    assert sub.any()  # the case this is for
    R = torch.rand(1, 30, 2, dtype=DTYPE, generator=g)
    flushed = flush_subnormal(P.clone())
    assert not ((flushed > 0) & (flushed < tiny)).any()
    assert torch.equal(flushed[~sub], P[~sub])
    assert torch.equal(backward_induction(flushed, R, 10)[0], backward_induction(P, R, 10)[0])
