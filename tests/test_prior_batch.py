"""The data engine: MDPs sampled from a spec, learning traces, and model-ready batches."""
import numpy as np
import pytest
import torch

from rlpfn.agents import make_agent
from rlpfn.env import BatchedEnv
from rlpfn.mdp import TabularMDP
from rlpfn.planning import solve
from rlpfn.prior.batch import PriorDataset, get_batch
from rlpfn.prior.families import FAMILIES
from rlpfn.prior.sampler import sample_batch, sample_prior_mdps
from rlpfn.prior.spec import PriorSpecError, load_spec, parse_spec
from rlpfn.stats import Stats
from rlpfn.agents import Mixture
from rlpfn.traces import run_trace


def _spec(families, **over):
    doc = {"name": "t", "states": [3, 6], "actions": [2, 3], "horizon": [3, 6], "families": families,
           "rewards": {"bounds": [-2.0, 3.0], "scale": [0.2, 1.0], "kinds": {"deterministic": 1, "bernoulli": 1,
                                                                             "gaussian": 1}},
           "relabel": {"states": True, "actions": "per_state"}}
    doc.update(over)
    return parse_spec(doc, "t.yaml")


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("S,A,H", [(2, 2, 4), (7, 3, 9), (12, 5, 15)])
def test_every_family_gives_valid_nontrivial_mdps_inside_the_bounds(family, S, A, H):
    spec = _spec({family: 1})
    batch = sample_batch(spec, 6, S, A, H, np.random.default_rng(0))  # TabularMDP validates the whole batch
    lo, hi = spec.rewards.bounds
    assert (batch.meta["family"] == family).all() and (batch.r_min, batch.r_max) == (lo, hi)
    r_low, r_high = batch.meta["reward_range"].T
    sol = solve(batch)
    for i in range(len(batch)):
        mdp = batch.item(i)  # TabularMDP validates: rows sum to 1, rewards inside [lo, hi], outcome table
        assert (mdp.r_min, mdp.r_max) == (lo, hi)
        assert lo <= r_low[i] < r_high[i] <= hi + 1e-12
        assert (batch.R[i] >= r_low[i] - 1e-12).all() and (batch.R[i] <= r_high[i] + 1e-12).all()
        alone = solve(mdp)
        np.testing.assert_allclose([alone.v_star.item(), alone.v_random.item()], [sol.v_star[i], sol.v_random[i]],
                                   atol=1e-9)
        assert alone.v_star.item() - alone.v_random.item() >= spec.min_gap * H * (r_high[i] - r_low[i]) - 1e-9


def test_q_star_targets_are_the_optimal_values_on_rewards_rescaled_to_the_unit_interval():
    from rlpfn.prior.batch import contexts

    spec = _spec({"dirichlet": 1, "river": 1})
    batch = sample_batch(spec, 4, 5, 3, 6, np.random.default_rng(1))
    lo, hi = spec.rewards.bounds
    unit = TabularMDP((batch.P), (batch.R - lo) / (hi - lo), batch.mu0, batch.horizon, r_min=0.0, r_max=1.0)
    trace = run_trace(batch, make_agent("random"), episodes=2, seed=0)
    run, k = np.array([0, 1, 2, 3, 0]), np.array([0, 3, 7, 11, 5])
    b = contexts(batch, trace, run, k, np.ones(5), "random")
    expected = unit.solution.Q[torch.as_tensor(run), torch.as_tensor(k % 6)]
    torch.testing.assert_close(b.q_star, expected.float(), rtol=0, atol=1e-6)
    gap = (unit.solution.v_star - unit.solution.v_random) / 6
    np.testing.assert_allclose(b.v_gap.numpy(), gap[run], rtol=0, atol=1e-6)


def test_same_seed_same_mdps_and_relabelling_preserves_values():
    spec = _spec({"dirichlet": 1, "gridworld": 1})
    a, b = (sample_batch(spec, 8, 5, 4, 6, np.random.default_rng(3)) for _ in range(2))
    for x, y in zip((a.P, a.R, a.R_std, a.mu0, a.solution.Q), (b.P, b.R, b.R_std, b.mu0, b.solution.Q)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    c = sample_batch(spec, 8, 5, 4, 6, np.random.default_rng(4))
    assert not np.array_equal(a.P, c.P)
    # Relabelling is the last random step: without it, the same seed gives the same MDPs, unpermuted.
    plain = sample_batch(_spec({"dirichlet": 1, "gridworld": 1}, relabel={"states": False, "actions": "none"}),
                         8, 5, 4, 6, np.random.default_rng(3))
    np.testing.assert_allclose(plain.solution.v_star, a.solution.v_star, atol=1e-9)
    np.testing.assert_allclose(np.sort(plain.R.ravel()), np.sort(a.R.ravel()))
    assert not np.array_equal(plain.P, a.P)


def test_family_weights():
    """Each family appears with its configured weight, within sampling error (4 standard deviations)."""
    spec = _spec({"dirichlet": 1, "garnet": 2, "lock": 3})
    batch = sample_batch(spec, 1200, 3, 2, 4, np.random.default_rng(0))
    for fam, w in (("dirichlet", 1 / 6), ("garnet", 2 / 6), ("lock", 3 / 6)):
        count = (batch.meta["family"] == fam).sum()
        assert abs(count - 1200 * w) < 4 * np.sqrt(1200 * w * (1 - w)), (fam, count)


def test_default_prior_family_weights():
    """The shipped default prior draws its families in proportion to its weights."""
    spec = load_spec("default")
    rng = np.random.default_rng(1)
    batch = sample_batch(spec, 600, 6, 3, 10, rng)
    total = sum(c.weight for c in spec.families.values())
    for fam, comp in spec.families.items():
        p = comp.weight / total
        count = (batch.meta["family"] == fam).sum()
        assert abs(count - 600 * p) < 4 * np.sqrt(600 * p * (1 - p)), (fam, count)


def test_reward_kinds_are_simulated_exactly():
    spec = _spec({"garnet": 1}, rewards={"bounds": [0, 1], "scale": 0.5, "kinds": {"bernoulli": 1}})
    batch = sample_batch(spec, 3, 4, 2, 5, np.random.default_rng(0))
    assert (batch.meta["reward_kind"] == "bernoulli").all() and (batch.R_std == 0).all()
    r_low, r_high = batch.meta["reward_range"].T
    env = BatchedEnv(batch, 3, torch.Generator().manual_seed(0))
    env.reset()
    rewards = []
    for _ in range(4000):
        env.state = torch.zeros(3, dtype=torch.long)  # always act 0 in state 0
        r, _ = env.step(torch.zeros(3, dtype=torch.long))
        rewards.append(r)
    r = torch.stack(rewards).numpy()
    for i in range(3):  # two values only, the ends of the occupied range, with the right mean
        assert set(np.unique(r[:, i])) <= {r_low[i], r_high[i]}
        assert abs(r[:, i].mean() - batch.R[i, 0, 0]) < 4 * 0.5 / np.sqrt(4000)
    mdp = batch.item(0)  # an exact outcome table
    assert mdp.outcomes is not None and set(np.unique(mdp.outcomes.reward[mdp.outcomes.prob > 0])) <= {
        r_low[0], r_high[0]}


def test_hopeless_spec_is_refused_with_the_family_named():
    spec = _spec({"dirichlet": 1}, min_gap=1.0)
    with pytest.raises(PriorSpecError, match="families.dirichlet: with S=4"):
        sample_batch(spec, 2, 4, 2, 3, np.random.default_rng(0))


# ---- traces ----------------------------------------------------------------------------------
@pytest.mark.parametrize("behaviour", ["ucbvi", "psrl"])
def test_trace_statistics_match_the_log_and_the_agents_incremental_statistics(behaviour):
    spec = load_spec("tiny")
    batch = sample_batch(spec, 5, 4, 3, 5, np.random.default_rng(0))
    agent = make_agent(behaviour)
    trace = run_trace(batch, agent, episodes=7, seed=1)
    N, T = 5, 35
    assert trace.s.shape == (N, T)
    exact = torch.as_tensor(batch.R_std.max((1, 2)) == 0)  # Gaussian rewards may leave the bounds of their mean
    assert exact.any() and (trace.r[exact] >= 0).all() and (trace.r[exact] <= 1).all()
    # the whole trace: the agent's own statistics, built one transition at a time while it acted
    full = trace.stats_at(torch.full((N,), T), torch.arange(N))
    for key in ("counts", "reward_sum", "reward_sq_sum"):
        torch.testing.assert_close(getattr(full, key), getattr(agent.stats, key), rtol=0, atol=1e-12)
    # any prefix: rebuilt from the raw log, and accumulated step by step
    k = torch.tensor([0, 1, 13, 34, 35, 20, 7])
    run = torch.tensor([0, 1, 2, 3, 4, 0, 4])
    snap = trace.stats_at(k, run)
    for j in range(len(k)):
        kj, rj = int(k[j]), int(run[j])
        log = [x[rj:rj + 1, :kj] for x in (trace.s, trace.a, trace.r, trace.s_next)]
        ref = Stats.from_transitions(4, 3, *log)
        step = Stats.zeros(1, 4, 3)
        for t in range(kj):
            step.add(*(x[rj:rj + 1, t] for x in (trace.s, trace.a, trace.r, trace.s_next)))
        for key in ("counts", "reward_sum", "reward_sq_sum"):
            torch.testing.assert_close(getattr(snap, key)[j:j + 1], getattr(ref, key), rtol=0, atol=1e-12)
            torch.testing.assert_close(getattr(snap, key)[j:j + 1], getattr(step, key), rtol=0, atol=1e-12)
        assert snap.counts[j].sum() == kj


def test_epsilon_optimal_behaviour():
    spec = load_spec("tiny")
    batch = sample_batch(spec, 6, 5, 3, 6, np.random.default_rng(2))
    greedy = run_trace(batch, make_agent("optimal"), episodes=4, seed=0)
    h = torch.arange(greedy.length) % batch.horizon
    q = batch.solution.Q[torch.arange(6)[:, None], h, greedy.s]  # [N,T,A]
    chosen = q.gather(-1, greedy.a[..., None])[..., 0]
    assert torch.all(chosen >= q.amax(-1) - 1e-9)  # ε = 0: always an optimal action
    noisy = run_trace(batch, make_agent("optimal", epsilon=1.0), episodes=20, seed=0)
    q = batch.solution.Q[torch.arange(6)[:, None], torch.arange(noisy.length) % batch.horizon, noisy.s]
    suboptimal = (q.gather(-1, noisy.a[..., None])[..., 0] < q.amax(-1) - 1e-9).float().mean()
    assert suboptimal > 0.1  # ε = 1: uniform actions


def test_mixture_switches_between_episodes():
    spec = load_spec("tiny")
    batch = sample_batch(spec, 64, 4, 2, 3, np.random.default_rng(0))
    for switch, expect_changes in ((0.0, False), (1.0, True)):
        mix = Mixture([make_agent("random"), make_agent("ucbvi")], [1, 1], switch)
        seen = []
        orig = mix.act

        def act(states, h, orig=orig, mix=mix, seen=seen):
            a = orig(states, h)
            if h == 0:
                seen.append(mix.current.clone())
            return a

        mix.act = act
        run_trace(batch, mix, episodes=6, seed=0)
        changed = any(not torch.equal(seen[0], c) for c in seen[1:])
        assert changed == expect_changes
        assert set(seen[0].tolist()) == {0, 1}  # both components are followed by some runs
    assert mix.components[1].stats.counts.sum() == 64 * 6 * 3  # every component observes every transition


# ---- batches ---------------------------------------------------------------------------------
def test_get_batch_shapes_targets_and_tokens():
    spec = load_spec("tiny")
    for seed in range(6):
        b = get_batch(spec, 10, seed)
        ctx = b.context
        B, S, A, _ = ctx.stats.counts.shape
        assert B == 10 and b.batch_size == 10
        for t in (ctx.stats.reward_sum, ctx.stats.reward_sq_sum):  # the one Stats, as agents keep it
            assert t.shape == (B, S, A) and t.dtype == torch.float64
        for t in (b.q_star, b.pi_star, b.pi_boltzmann):
            assert t.shape == (B, S, A) and t.dtype == torch.float32
        H = ctx.horizon
        assert (ctx.step < H).all() and (ctx.state < S).all()
        k = ctx.episodes * H + ctx.step
        assert torch.equal(ctx.stats.counts.sum((1, 2, 3)).long(), k)  # the statistic covers exactly k transitions
        torch.testing.assert_close(b.pi_star.sum(-1), torch.ones(B, S))
        torch.testing.assert_close(b.pi_boltzmann.sum(-1), torch.ones(B, S))
        assert (b.pi_star[b.q_star < b.q_star.amax(-1, keepdim=True) - 1e-5] == 0).all()
        assert ((b.behaviour_action >= 0) & (b.behaviour_action < A)).all()
        assert len(b.family) == B and b.behaviour in spec.traces.behaviours


def test_get_batch_is_reproducible():
    spec = load_spec("tiny")
    a, b, c = get_batch(spec, 8, 11), get_batch("tiny", 8, 11), get_batch(spec, 8, 12)
    for name in ("counts", "reward_sum"):
        assert torch.equal(getattr(a.context.stats, name), getattr(b.context.stats, name)), name
    for name in ("state", "step"):
        assert torch.equal(getattr(a.context, name), getattr(b.context, name)), name
    for name in ("q_star", "pi_boltzmann", "behaviour_action"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.family == b.family and a.behaviour == b.behaviour
    ac, cc = a.context.stats.counts, c.context.stats.counts
    assert not (ac.shape == cc.shape and torch.equal(ac, cc))


def test_background_workers_give_the_same_stream():
    ds = PriorDataset("tiny", 6, seed=100, length=5)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = list(loader)
    assert len(got) == 5
    for i, b in enumerate(got):
        ref = get_batch("tiny", 6, 100 + i)
        assert torch.equal(b.context.stats.counts, ref.context.stats.counts) and torch.equal(b.q_star, ref.q_star)


def test_sample_prior_mdps_are_plain_tabular_mdps(tmp_path):
    mdps = sample_prior_mdps(load_spec("tiny"), 4, seed=0)
    for m in mdps:
        m.save(tmp_path / f"{m.name}.npz")
        back = TabularMDP.load(tmp_path / f"{m.name}.npz")
        np.testing.assert_array_equal(back.P, m.P)
        assert solve(back).v_star.item() == pytest.approx(solve(m).v_star.item())


def test_offline_datasets_of_any_coverage():
    from rlpfn.traces import offline_datasets

    spec = load_spec("tiny")
    batch = sample_batch(spec, 8, 6, 3, 5, np.random.default_rng(0))
    expert = offline_datasets(batch, make_agent("optimal", epsilon=0.0), episodes=30, seed=0)
    uniform = offline_datasets(batch, make_agent("optimal", epsilon=1.0), episodes=30, seed=0)
    replay = offline_datasets(batch, make_agent("ucbvi"), episodes=30, seed=0)
    for d in (expert, uniform, replay):
        assert (d.counts.sum((1, 2, 3)) == 30 * 5).all()
    coverage = [(d.visits > 0).sum().item() for d in (expert, uniform)]
    assert coverage[0] < coverage[1]  # the expert's data covers fewer (state, action) pairs


def test_sizes_are_redrawn_where_a_family_is_hopeless_and_a_hopeless_spec_is_refused():
    from rlpfn.prior.sampler import sample_sized_batch

    # 2-cell gridworlds are trivial at H = 30 (a random walk finds the goal at once), 12-cell ones are not
    spec = _spec({"gridworld": 1}, states={"choice": [2, 12]}, horizon=30, min_gap=0.2)
    for seed in range(3):
        assert sample_sized_batch(spec, 4, np.random.default_rng(seed)).n_states == 12
    with pytest.raises(PriorSpecError, match="no non-trivial MDPs of families \\['gridworld'\\]"):
        sample_sized_batch(_spec({"gridworld": 1}, states=2, horizon=30, min_gap=0.2),
                           2, np.random.default_rng(0))


def test_an_improper_family_output_is_caught(monkeypatch):
    from rlpfn.prior import families

    def broken(n, S, A, H, rng, **kw):
        P, R, R_std, mu0 = families.garnet(n, S, A, H, rng, **kw)
        P[:, 0, 0] *= 0.5  # rows that no longer sum to 1
        return P, R, R_std, mu0

    monkeypatch.setitem(families.FAMILIES, "garnet", broken)
    with pytest.raises(RuntimeError, match="family 'garnet' produced an improper MDP .*does not sum to 1"):
        sample_batch(_spec({"garnet": 1}, min_gap=0.0), 3, 4, 2, 3, np.random.default_rng(0))
