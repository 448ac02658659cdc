"""The model: shapes, size-agnosticism, label equivariance, and that the untrained model is UCB-VI."""
import dataclasses

import pytest
import torch

from rlpfn.agents import AgentSpec, make_agent
from rlpfn.model import RLPFN, Context, ModelConfig, plan
from rlpfn.planning import normalize_counts
from rlpfn.prior import get_batch
from rlpfn.stats import Stats

CFG = ModelConfig(d_model=16, n_layers=1, n_heads=2)


def random_context(B, S, A, H, seed=0, density=0.3):
    g = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((B, S, A, S), density), generator=g)
    n = counts.sum(-1)
    r = torch.rand(B, S, A, generator=g) * n
    stats = Stats(counts.double(), r.double(), 0.7 * r.double())
    return Context(stats, torch.randint(S, (B,), generator=g), torch.randint(H, (B,), generator=g),
                   H, torch.randint(50, (B,), generator=g))


def relabelled(ctx, ps, pa):
    """The context relabelled: new state i is old state ps[i], new action j is old action pa[j] at every state."""
    st, inv = ctx.stats, torch.argsort(ps)
    return Context(Stats(st.counts[:, ps][:, :, pa][:, :, :, ps], st.reward_sum[:, ps][:, :, pa],
                         st.reward_sq_sum[:, ps][:, :, pa]), inv[ctx.state], ctx.step, ctx.horizon, ctx.episodes)


def perturbed(cfg=CFG, seed=1):
    """A model whose correction heads are non-zero, so equivariance is tested through them too."""
    torch.manual_seed(seed)
    m = RLPFN(cfg)
    torch.nn.init.normal_(m.head.weight, std=0.2)
    return m.eval()


def twin(model, **changes):
    """The same weights under a config with these settings changed."""
    other = RLPFN(dataclasses.replace(model.cfg, **changes))
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_outputs_shapes_and_one_pass_policy_table():
    ctx = random_context(3, 5, 3, 7)
    out = perturbed()(ctx)
    assert out.logits.shape == (3, 5, 3) and out.q.shape == (3, 5, 3)
    assert out.q_plan.shape == (3, 7, 5, 3) and out.q_est.shape == (3, 7, 5, 3)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.q_plan).all()
    remaining = torch.arange(7, 0, -1).view(1, 7, 1, 1).double()
    assert (out.q_plan <= remaining + 1e-9).all() and (out.q_plan >= 0).all()


@pytest.mark.parametrize("cfg", [CFG, dataclasses.replace(CFG, action_attention=True)], ids=["v1", "action-attention"])
def test_relabelling_states_and_actions_permutes_the_output(cfg):
    """The same action permutation at every state (with action_attention, only that one keeps the output's form)."""
    B, S, A, H = 2, 6, 4, 5
    ctx = random_context(B, S, A, H, seed=3)
    ps, pa = torch.randperm(S, generator=torch.Generator().manual_seed(0)), torch.tensor([2, 0, 3, 1])
    moved = relabelled(ctx, ps, pa)
    m = perturbed(cfg)
    with torch.no_grad():
        a, b = m(ctx), m(moved)
    torch.testing.assert_close(a.logits[:, ps][:, :, pa], b.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.q[:, ps][:, :, pa], b.q, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.q_plan[:, :, ps][:, :, :, pa], b.q_plan, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("S,A,H", [(2, 2, 3), (500, 10, 4), (500, 6, 200)])
def test_any_size_from_2_states_to_taxi(S, A, H):
    ctx = random_context(1, S, A, H, density=0.002 if S > 100 else 0.5)
    with torch.no_grad():
        out = perturbed()(ctx)
    assert out.logits.shape == (1, S, A) and out.q_plan.shape == (1, H, S, A)
    assert torch.isfinite(out.q_plan).all()


def test_untrained_model_plans_exactly_like_ucbvi():
    """Zero-initialised heads: the planner is UCB-VI with the configured (prior-tuned) bonus."""
    S, A, H = 4, 3, 6
    ctx = random_context(2, S, A, H, seed=5)
    ctx.stats.counts[:, 0, 0] = 0  # an unvisited pair
    ctx.stats.reward_sum[:, 0, 0] = 0
    cfg = dataclasses.replace(CFG, unvisited_logit=50.0)  # sigmoid(50) = 1: unvisited pairs worth H - h exactly
    out = RLPFN(cfg)(ctx)
    ucb = make_agent("ucbvi", scale=CFG.ucb_scale, h_term=CFG.ucb_h_term)
    ucb.reset(AgentSpec(S, A, H), 2, seed=0)
    ucb.stats = ctx.stats
    q_ucb = ucb.plan()
    visited = ctx.stats.counts.sum(-1) > 0
    torch.testing.assert_close(out.q_plan[visited.unsqueeze(1).expand_as(out.q_plan)],
                               q_ucb[visited.unsqueeze(1).expand_as(q_ucb)], atol=1e-9, rtol=0)
    torch.testing.assert_close(out.q_plan[:, :, 0, 0], torch.arange(H, 0, -1).double().expand(2, H))
    # the default unvisited value sigmoid(6)·(H - h) is UCB-VI's H - h up to 0.25%
    default = RLPFN(CFG)(ctx).q_plan
    assert default[:, :, 0, 0].div(torch.arange(H, 0, -1).double()).sub(1).abs().max() < 3e-3


def test_planner_h_term_scale_moves_the_planner_and_not_the_features():
    """planner_h_term_scale k plans UCB-VI with h_term k·ucb_h_term; the trunk's features stay UCB-VI's own."""
    from rlpfn.model import features

    S, A, H = 4, 3, 6
    ctx = random_context(2, S, A, H, seed=5)
    base = dataclasses.replace(CFG, unvisited_logit=50.0)
    scaled = dataclasses.replace(base, planner_h_term_scale=10.0)
    ucb = make_agent("ucbvi", scale=CFG.ucb_scale, h_term=10 * CFG.ucb_h_term)
    ucb.reset(AgentSpec(S, A, H), 2, seed=0)
    ucb.stats = ctx.stats
    torch.testing.assert_close(RLPFN(scaled)(ctx).q_plan, ucb.plan(), atol=1e-9, rtol=0)
    assert not torch.allclose(RLPFN(base)(ctx).q_plan, ucb.plan())
    P_hat, r_hat, n = ctx.stats.empirical()
    assert torch.equal(features(ctx, P_hat, r_hat, n, scaled)[0], features(ctx, P_hat, r_hat, n, base)[0])


def test_planner_state_log_grows_the_bonus_with_the_state_visits_online_only():
    """planner_state_log: online, a visited pair's bonus is c·sqrt(L/N) + h·L·(H-h)/N with L = 1 + ln N_s (N_s the
    visits of its state); offline planning and the features stay as they were."""
    from rlpfn.model import features

    S, A, H = 4, 3, 1  # one stage: Q = min(1, r̂ + bonus) at a visited pair, nothing after it
    ctx = random_context(2, S, A, H, seed=5, density=0.8)
    ctx.stats.counts[0, 1, 0, 2] += 50  # state 1 of run 0 often visited by action 0: its other actions' L grows
    base = dataclasses.replace(CFG, unvisited_logit=50.0)
    logged = dataclasses.replace(base, planner_state_log=True)
    P_hat, r_hat, n = ctx.stats.empirical()
    L = 1 + n.sum(-1, keepdim=True).clamp_min(1).log()
    bonus = CFG.ucb_scale * (L / n.clamp_min(1)).sqrt() + CFG.ucb_h_term * L / n.clamp_min(1)
    visited = n > 0
    q = RLPFN(logged)(ctx).q_plan[:, 0]
    torch.testing.assert_close(q[visited], (r_hat + bonus).clamp(max=1)[visited], atol=1e-9, rtol=0)
    assert L[0, 1, 0] > 4 and (q > RLPFN(base)(ctx).q_plan[:, 0])[visited & (r_hat + bonus < 1)].all()
    torch.testing.assert_close(RLPFN(logged)(ctx, pessimistic=True).q_plan, RLPFN(base)(ctx, pessimistic=True).q_plan,
                               atol=0, rtol=0)
    assert torch.equal(features(ctx, P_hat, r_hat, n, logged)[0], features(ctx, P_hat, r_hat, n, base)[0])
    # planner_state_log_from N0: L = 1 + ln max(1, N_s / N0), the plain bonus at states of at most N0 visits
    late = dataclasses.replace(logged, planner_state_log_from=20.0)
    n_s = n.sum(-1, keepdim=True)
    L = 1 + (n_s / 20).clamp_min(1).log()
    bonus = CFG.ucb_scale * (L / n.clamp_min(1)).sqrt() + CFG.ucb_h_term * L / n.clamp_min(1)
    q = RLPFN(late)(ctx).q_plan[:, 0]
    torch.testing.assert_close(q[visited], (r_hat + bonus).clamp(max=1)[visited], atol=1e-9, rtol=0)
    quiet = visited & (n_s <= 20)
    assert quiet.any() and (visited & (n_s > 20)).any()
    assert torch.equal(q[quiet], RLPFN(base)(ctx).q_plan[:, 0][quiet])
    for bad, match in ((dict(planner_state_log_from=0.0), "must be > 0"), (dict(planner_state_log_from=5.0),
                                                                         "planner_state_log is off")):
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(base, **bad)


def test_planner_noise_h_term_scales_the_1_over_n_part_by_the_runs_reward_noise():
    """reward_noise: the pooled within-pair standard deviation over pairs of two or more visits (0 when rewards
    repeat exactly); planner_noise_h_term κ multiplies a tried pair's 1/N part by 1 + κ·σ̂, online only; the
    features stay as they were."""
    from rlpfn.model import features, reward_noise

    S, A, H = 3, 2, 1
    st = Stats.zeros(2, S, A)
    s0, a0 = torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    for r in ([0.2, 0.5], [0.4, 0.5], [0.9, 0.5]):  # run 0: rewards 0.2, 0.4, 0.9 at one pair; run 1: 0.5 thrice
        st.add(s0, a0, torch.tensor(r, dtype=torch.float64), s0)
    st.add(s0 + 1, a0, torch.tensor([1.0, 1.0], dtype=torch.float64), s0)  # one visit: no spread to pool
    sigma = reward_noise(st)
    spread = float(torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64).std())
    assert sigma[0].item() == pytest.approx(spread, abs=1e-12) and sigma[1] == 0
    ctx = Context.at(st, torch.zeros(2, dtype=torch.long), 0, H, 4)
    base = dataclasses.replace(CFG, unvisited_logit=50.0)
    gated = dataclasses.replace(base, planner_noise_h_term=5.0)
    P_hat, r_hat, n = st.empirical()
    bonus = CFG.ucb_scale / n.clamp_min(1).sqrt() + CFG.ucb_h_term * (1 + 5.0 * sigma).view(2, 1, 1) / n.clamp_min(1)
    q = RLPFN(gated)(ctx).q_plan[:, 0]
    visited = n > 0
    torch.testing.assert_close(q[visited], (r_hat + bonus).clamp(max=1)[visited], atol=1e-12, rtol=0)
    assert torch.equal(q[1], RLPFN(base)(ctx).q_plan[1, 0])  # rewards that repeat exactly: v2's plan to the bit
    assert not torch.equal(q[0], RLPFN(base)(ctx).q_plan[0, 0])
    torch.testing.assert_close(RLPFN(gated)(ctx, pessimistic=True).q_plan, RLPFN(base)(ctx, pessimistic=True).q_plan,
                               atol=0, rtol=0)
    assert torch.equal(features(ctx, P_hat, r_hat, n, gated)[0], features(ctx, P_hat, r_hat, n, base)[0])


def test_planner_variance_adds_the_spread_of_the_successors_values_at_tried_pairs():
    """planner_variance c: a tried pair's Q_h gains c·sqrt(Var_P̂(V_{h+1}) / N); a pair whose visits all led to one
    place, untried pairs, offline planning and the features stay as they were."""
    from rlpfn.model import features

    S, A, H, c = 3, 2, 4, 0.5
    st = Stats.zeros(1, S, A)
    for s_, a, s_next, r in ((0, 0, 1, 0.0), (0, 0, 2, 0.0), (0, 0, 2, 0.0), (0, 1, 1, 0.3), (0, 1, 1, 0.3),
                             (1, 1, 2, 1.0)):  # (0,0): two successors; state 1's action 1 pays and leads to 2
        st.add(*(torch.tensor([x]) for x in (s_, a)), torch.tensor([r], dtype=torch.float64), torch.tensor([s_next]))
    ctx = Context.at(st, torch.zeros(1, dtype=torch.long), 0, H, 3)
    base = dataclasses.replace(CFG, unvisited_logit=-50.0)  # untried pairs worth ~0: the successors' values differ
    spread_model = dataclasses.replace(base, planner_variance=c)
    with torch.no_grad():
        q_base, q = RLPFN(base)(ctx).q_plan[0], RLPFN(spread_model)(ctx).q_plan[0]
    v_base = q_base.amax(-1)  # [H,S]
    # the last stage has no future: nothing to spread
    torch.testing.assert_close(q[H - 1], q_base[H - 1], atol=1e-12, rtol=0)
    # at H-2, V_{H-1} is v_base's own (the last stage did not move): (0,0) gains c·sqrt(Var/3); (1,1), one successor
    p = torch.tensor([0.0, 1 / 3, 2 / 3], dtype=torch.float64)
    var = p @ v_base[H - 1] ** 2 - (p @ v_base[H - 1]) ** 2
    assert var > 1e-3
    expected = min(2.0, float(q_base[H - 2, 0, 0] + c * (var / 3) ** 0.5))
    assert q[H - 2, 0, 0].item() == pytest.approx(expected, abs=1e-12)
    assert q[H - 2, 1, 1].item() == pytest.approx(q_base[H - 2, 1, 1].item(), abs=1e-12)
    assert q[H - 2, 2].equal(q_base[H - 2, 2])  # untried pairs
    torch.testing.assert_close(RLPFN(spread_model)(ctx, pessimistic=True).q_plan,
                               RLPFN(base)(ctx, pessimistic=True).q_plan, atol=0, rtol=0)
    P_hat, r_hat, n = st.empirical()
    assert torch.equal(features(ctx, P_hat, r_hat, n, spread_model)[0], features(ctx, P_hat, r_hat, n, base)[0])


def test_planner_novelty_mixes_a_never_visited_successor_into_tried_pairs():
    """planner_novelty ν: a tried pair's P̂·V_{h+1} becomes (1-w)·P̂·V + w·V̄_new, w = min(1, ν·n1/N) (n1 successors
    seen once), V̄_new the mean V_{h+1} of the states where no action was tried; untried pairs, runs with no such
    state, offline planning and the features stay as they were."""
    from rlpfn.model import capped, features, planner_terms

    S, A, H, nu = 5, 2, 6, 0.5
    ctx = random_context(2, S, A, H, seed=7, density=0.6)
    ctx.stats.counts[0, 3:] = 0  # run 0: states 3 and 4 never acted in; run 1: every state has
    ctx.stats.counts[1, :, :, :] += 1
    ctx.stats.counts[0, 2, 0] = torch.tensor([0.0, 0, 3, 0, 0])  # one successor, thrice: nothing left unseen
    ctx.stats.reward_sum[0, 3:] = ctx.stats.reward_sq_sum[0, 3:] = 0
    model = perturbed()
    novel = twin(model, planner_novelty=nu)
    with torch.no_grad():
        base, out = model(ctx), novel(ctx)
    assert torch.equal(out.q_plan[1], base.q_plan[1])  # no state left to discover
    assert torch.equal(novel(ctx, pessimistic=True).q_plan, model(ctx, pessimistic=True).q_plan)
    P_hat, r_hat, n = ctx.stats.empirical()
    assert torch.equal(features(ctx, P_hat, r_hat, n, novel.cfg)[0], features(ctx, P_hat, r_hat, n, model.cfg)[0])
    reward, per_step = planner_terms(r_hat, n, novel.cfg, out.corrections)
    v = out.q_plan.amax(-1)  # [B,H,S]
    weights = []
    for h, s, a in ((0, 0, 0), (2, 1, 1), (4, 2, 0), (1, 2, 0)):
        counts = ctx.stats.counts[0, s, a]
        w = min(1.0, nu * float((counts == 1).sum()) / float(n[0, s, a]))
        v_next = v[0, h + 1]
        by_hand = capped(reward[0, s, a] + (1 - w) * P_hat[0, s, a] @ v_next + w * v_next[3:].mean(), H - h,
                         per_step[0, s, a])
        assert out.q_plan[0, h, s, a].item() == pytest.approx(by_hand.item(), abs=1e-12)
        weights.append(w)
    assert weights[-1] == 0 and max(weights) > 0
    assert (out.q_plan[0, :, :3] > base.q_plan[0, :, :3] + 1e-9).any()  # optimism where the unknown is worth more
    torch.testing.assert_close(out.q_plan[0, :, 3:], base.q_plan[0, :, 3:])  # untried pairs as before


def test_pooled_novelty_reads_how_often_the_runs_repeat_visits_found_a_new_successor():
    """novelty_rate ρ = Σ(k-1)/Σ(N-1) over pairs of N >= 2 visits (k distinct successors): 0 for a run whose repeat
    visits always went where the first did, whatever its once-visited pairs; with planner_novelty_pooled every
    tried pair's w is min(1, ν·ρ/N) in place of ν·n1/N."""
    from rlpfn.model import novelty_rate, novelty_terms

    counts = torch.zeros(3, 4, 2, 4, dtype=torch.float64)  # state 3 never acted in: a state left to discover
    counts[0, 0, 0] = torch.tensor([4.0, 0, 0, 0])  # deterministic, visited 4 times
    counts[0, 1, 1] = torch.tensor([0.0, 1, 0, 0])  # once: says nothing either way
    counts[1] = counts[0]
    counts[1, 2, 0] = torch.tensor([2.0, 1, 0, 0])  # 3 visits, 2 successors: one new in 2 repeats
    counts[2, 1, 1] = torch.tensor([0.0, 1, 0, 0])  # no pair visited twice
    rho = novelty_rate(counts)
    torch.testing.assert_close(rho, torch.tensor([0.0, 1 / 5, 0.0], dtype=torch.float64))
    w, new = novelty_terms(counts, 2.0, pooled=True)
    assert torch.equal(new[:, 3], torch.ones(3, dtype=torch.float64))
    assert w[0].eq(0).all() and w[2].eq(0).all()  # no evidence of slips: no optimism
    expected = {(1, 0, 0): 2 * 0.2 / 4, (1, 1, 1): 2 * 0.2 / 1, (1, 2, 0): 2 * 0.2 / 3}
    for (b, st, a), value in expected.items():
        assert w[b, st, a].item() == pytest.approx(value, abs=1e-12)
    assert w[1].count_nonzero() == 3
    with pytest.raises(ValueError, match="planner_novelty is 0"):
        dataclasses.replace(CFG, planner_novelty_pooled=True)  # nothing to pool: refused, not silently ignored
    per_pair, _ = novelty_terms(counts, 2.0)
    assert per_pair[0, 1, 1] == 1.0 and per_pair[0, 0, 0] == 0.0  # per pair, the once-visited pair's slip is feared


def test_planner_tried_strength_plans_a_few_times_tried_pair_with_the_heads_row():
    """With κ > 0, acting asks the transition head for tried pairs of fewer than tried_below visits as well as the
    guessed ones, and plans such a pair with (N·P̂ + κ·P̃)/(N + κ); κ = 0 asks for the guessed pairs alone."""
    from rlpfn.model import capped, guessed_pairs, planner_terms

    S, A, H, kappa = 5, 3, 6, 0.5
    ctx = random_context(2, S, A, H, seed=9, density=0.25)
    cfg = dataclasses.replace(CFG, transition_head=True, tried_below=3, planner_tried_strength=kappa)
    model = perturbed(cfg)
    base = twin(model, planner_tried_strength=0.0)
    with torch.no_grad():
        out, ref = model(ctx, transitions=False), base(ctx, transitions=False)
    P_hat, r_hat, n = ctx.stats.empirical()
    few = (n > 0) & (n < 3)
    asked = torch.zeros_like(few)
    asked[out.successor_rows[0]] = True
    assert torch.equal(asked, guessed_pairs(n) | few) and few.any()
    asked[:] = False
    asked[ref.successor_rows[0]] = True
    assert torch.equal(asked, guessed_pairs(n))
    reward, per_step = planner_terms(r_hat, n, cfg, out.corrections, guessed=guessed_pairs(n))
    v = out.q_plan.amax(-1)
    (b, s, a), log_rows = out.successor_rows
    checked = 0
    for i in range(len(b)):
        if few[b[i], s[i], a[i]]:
            for h in range(H - 1):
                w = kappa / (n[b[i], s[i], a[i]] + kappa)
                pv = P_hat[b[i], s[i], a[i]] @ v[b[i], h + 1]
                by_hand = capped(reward[b[i], s[i], a[i]] + pv + w * (log_rows[i].double().exp() @ v[b[i], h + 1] - pv),
                                 H - h, per_step[b[i], s[i], a[i]])
                assert out.q_plan[b[i], h, s[i], a[i]].item() == pytest.approx(by_hand.item(), abs=1e-9)
                checked += 1
    assert checked > 0
    assert not torch.equal(out.q_plan, ref.q_plan)
    torch.testing.assert_close(model(ctx, pessimistic=True).q_plan, base(ctx, pessimistic=True).q_plan)


def test_planner_tried_known_only_keeps_a_tried_pairs_row_on_states_acted_from():
    """planner_tried_known_only: the head's row at a tried pair loses its mass on states where no action was tried
    and is renormalized; a guessed pair's row is the head's as before; the
    option needs the rows it masks."""
    from rlpfn.model import known_only

    S, A, H, kappa = 6, 3, 6, 1.0
    ctx = random_context(2, S, A, H, seed=9, density=0.25)
    ctx.stats.counts[:, 4:] = 0  # states 4 and 5: no action tried
    cfg = dataclasses.replace(CFG, transition_head=True, tried_below=3, planner_tried_strength=kappa)
    masked_cfg = dataclasses.replace(cfg, planner_tried_known_only=True)
    model = perturbed(cfg)
    masked = twin(model, planner_tried_known_only=True)
    with torch.no_grad():
        out, ref = masked(ctx, transitions=False), model(ctx, transitions=False)
    _, _, n = ctx.stats.empirical()
    (b, s, a), rows = out.successor_rows
    assert torch.equal(torch.stack([b, s, a]), torch.stack(ref.successor_rows[0]))
    tried = n[b, s, a] > 0
    assert tried.any() and (~tried).any()
    p, p_ref = rows.double().exp(), ref.successor_rows[1].double().exp()
    known = n.sum(-1)[b] > 0  # [K,S]
    assert known[:, 4:].logical_not().all() and p[tried][:, 4:].eq(0).all()
    torch.testing.assert_close(p[tried], p_ref[tried] * known[tried] / (p_ref[tried] * known[tried]).sum(-1, keepdim=True))
    assert torch.equal(rows[~tried], ref.successor_rows[1][~tried])  # guessed pairs untouched
    assert not torch.equal(out.q_plan, ref.q_plan)
    torch.testing.assert_close(known_only(ref.successor_rows[1], (b, s, a), n), rows)
    with pytest.raises(ValueError, match="planner_tried_strength is 0"):
        dataclasses.replace(masked_cfg, planner_tried_strength=0.0)


def test_rows_times_is_each_rows_product_with_its_runs_vector():
    """model.rows_times: rows of runs of unequal counts (run 1 has none), and no rows at all."""
    from rlpfn.model import rows_times

    g = torch.Generator().manual_seed(0)
    b = torch.tensor([0, 0, 0, 2, 3, 3])
    rows, v = torch.rand(6, 5, dtype=torch.float64, generator=g), torch.rand(4, 5, dtype=torch.float64, generator=g)
    torch.testing.assert_close(rows_times(b, rows, 4)(v), (rows * v[b]).sum(-1))
    assert rows_times(b[:0], rows[:0], 4)(v).shape == (0,)


def test_a_narrow_dataset_multiplies_the_offline_penalty_and_nothing_else():
    """offline_narrow_below / offline_narrow_multiplier: offline, a run whose data take one action per state plans as
    a model whose penalty (the head's α bias) is raised by log(multiplier); a run of evenly spread data, and online
    acting, are unchanged."""
    import math

    B, S, A, H = 2, 4, 3, 5
    counts = torch.zeros(B, S, A, S, dtype=torch.float64)
    counts[0, torch.arange(S), 1, (torch.arange(S) + 1) % S] = 3.0  # narrow: one action per state
    counts[1] = 1.0  # every action of every state, alike
    n = counts.sum(-1)
    ctx = Context(Stats(counts, 0.5 * n, 0.3 * n), torch.zeros(B, dtype=torch.long), torch.zeros(B, dtype=torch.long),
                  H, torch.full((B,), 3))
    base = perturbed()
    rule = perturbed(dataclasses.replace(CFG, offline_narrow_below=0.5, offline_narrow_multiplier=10.0))
    raised = perturbed()
    with torch.no_grad():
        raised.head.bias[0] += math.log(10.0)
        low, ref, up = (m(ctx, pessimistic=True).q_plan for m in (rule, base, raised))
    torch.testing.assert_close(low[0], up[0])
    assert not torch.equal(low[0], ref[0]) and (low[0] <= ref[0] + 1e-12).all()  # more doubt: lower values
    assert torch.equal(low[1], ref[1])
    assert torch.equal(rule(ctx).q_plan, base(ctx).q_plan)


def test_offline_tried_strength_plans_each_tried_pair_on_the_heads_row_blended_with_the_counts():
    """offline_tried_strength κ: offline, the planner equals the pessimistic planner of κ = 0 run on the rows
    (N·P̂ + κ·P̃)/(N + κ) at every tried pair (untried rows stay zero, worth 0); online acting is unchanged."""
    S, A, H, kappa = 5, 3, 6, 2.0
    ctx = random_context(2, S, A, H, seed=9, density=0.25)
    ctx.stats.counts[:, 4] = 0  # state 4: no action tried (the head's mass there is worth 0)
    ctx.stats.reward_sum[:, 4] = ctx.stats.reward_sq_sum[:, 4] = 0
    cfg = dataclasses.replace(CFG, transition_head=True, offline_tried_strength=kappa)
    model = perturbed(cfg)
    base = twin(model, offline_tried_strength=0.0)
    with torch.no_grad():
        out, ref = model(ctx, pessimistic=True), base(ctx, pessimistic=True)
    P_hat, r_hat, n = ctx.stats.empirical()
    tried = n > 0
    assert tried.any() and (~tried).any() and (n[tried] < 3).any()
    rows = out.log_p_next.double().exp()
    blend = torch.where(tried[..., None], (n[..., None] * P_hat + kappa * rows) / (n + kappa)[..., None], P_hat)
    by_hand = plan(blend, r_hat, n, H, base.cfg, out.corrections, pessimistic=True)
    torch.testing.assert_close(out.q_plan, by_hand)
    assert not torch.equal(out.q_plan, ref.q_plan)
    with torch.no_grad():
        # as acting asks (only the rows planned with), and with the online mask of tried rows, which offline ignores
        torch.testing.assert_close(model(ctx, pessimistic=True, transitions=False).q_plan, by_hand)
        masked = twin(model, tried_below=3, planner_tried_strength=1.0, planner_tried_known_only=True)
        torch.testing.assert_close(masked(ctx, pessimistic=True, transitions=False).q_plan, by_hand)
        assert torch.equal(model(ctx).q_plan, base(ctx).q_plan)
    with pytest.raises(ValueError, match="transition_head is false"):
        dataclasses.replace(CFG, offline_tried_strength=1.0)
    with pytest.raises(ValueError, match="finite"):
        dataclasses.replace(cfg, offline_tried_strength=float("inf"))


@pytest.mark.parametrize("key, value, message", [("offline_narrow_below", 1.5, "between 0 and 1"),
                                                 ("offline_narrow_multiplier", float("inf"), "finite"),
                                                 ("offline_narrow_multiplier", 0.0, "must be > 0")])
def test_offline_narrow_settings_are_checked(key, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CFG, **{key: value})


def test_linear_unvisited_value_starts_where_the_sigmoid_does_and_moves_one_for_one():
    """unvisited_linear: the same starting value as v1, but d(value)/du = 1 (v1: sigmoid'(6) = 0.0025), floored at 0."""
    from rlpfn.model import unvisited_fraction

    u = torch.tensor([0.0, -0.5, -2.0], dtype=torch.float64, requires_grad=True)
    linear = dataclasses.replace(CFG, unvisited_linear=True)
    value = unvisited_fraction(u, linear)
    torch.testing.assert_close(value[0], unvisited_fraction(u, CFG)[0])
    torch.testing.assert_close(value[1], value[0] - 0.5)
    assert value[2] == 0.0
    value.sum().backward()
    assert u.grad.tolist() == [1.0, 1.0, 0.0]


def test_planner_is_differentiable_in_the_corrections():
    ctx = random_context(2, 4, 2, 5)
    P_hat, n = normalize_counts(ctx.stats.counts)
    corr = torch.zeros(2, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    q = plan(P_hat, ctx.stats.reward_sum / n.clamp_min(1), n, 5, CFG, corr)
    q[:, 0].sum().backward()
    assert corr.grad is not None and corr.grad.abs().sum() > 0


def test_prior_batch_context_roundtrip():
    b = get_batch("tiny", 8, seed=0)
    out = RLPFN(CFG)(b.context)
    assert out.logits.shape == b.pi_star.shape


def test_bad_step_is_refused():
    ctx = random_context(1, 3, 2, 4)
    ctx.step = torch.tensor([4])
    with pytest.raises(ValueError, match="steps must lie in"):
        RLPFN(CFG)(ctx)


def test_pessimistic_plan_sits_below_certainty_equivalence_below_optimistic():
    from rlpfn.planning import backward_induction

    ctx = random_context(2, 5, 3, 6, seed=7)
    P_hat, n = normalize_counts(ctx.stats.counts)
    r_hat = ctx.stats.reward_sum / n.clamp_min(1)
    q_ce, _ = backward_induction(P_hat, r_hat, 6)
    visited = (n > 0).unsqueeze(1).expand_as(q_ce)
    low = plan(P_hat, r_hat, n, 6, CFG, pessimistic=True)
    high = plan(P_hat, r_hat, n, 6, CFG)
    assert (low[visited] <= q_ce[visited] + 1e-9).all() and (q_ce <= high + 1e-9).all()
    assert (low[~visited] == 0).all()


def test_reward_correction_is_off_unless_configured():
    ctx = random_context(1, 4, 2, 5)
    m = perturbed()
    assert (m(ctx).corrections[..., 1] == 0).all()
    m2 = perturbed(dataclasses.replace(CFG, reward_correction=True))
    assert (m2(ctx).corrections[..., 1] != 0).any()


@pytest.mark.parametrize("S", [5, 70])  # a dense and a sparse (CSR) empirical model
def test_features_plan_certainty_equivalence_and_ucbvi_exactly(S):
    """The features plan certainty equivalence (uncapped: under reward noise r̂ may exceed 1) and uncorrected
    UCB-VI in one doubled pass; each must equal its own backward induction."""
    from rlpfn.model import features
    from rlpfn.planning import backward_induction

    ctx = random_context(2, S, 3, 6, seed=3)
    ctx.stats.reward_sum *= 1.8  # rescaled rewards above 1, as Gaussian noise gives
    P_hat, r_hat, n = ctx.stats.empirical()
    assert r_hat.max() > 1
    _, q_ce = features(ctx, P_hat, r_hat, n, CFG)
    expected, _ = backward_induction(P_hat, r_hat, 6)
    torch.testing.assert_close(q_ce, expected, rtol=0, atol=1e-12)


TRANSITIONS = dataclasses.replace(CFG, transition_head=True)
EDGES = [False, True]  # the transition head without and with the statistic's graph (transition_edges)


def with_transition_head(seed=1, edges=False):
    m = perturbed(dataclasses.replace(TRANSITIONS, transition_edges=edges), seed)
    torch.nn.init.normal_(m.transition.query.weight, std=0.5)
    if edges:
        torch.nn.init.normal_(m.transition.edge.weight, std=0.5)
    return m


@pytest.mark.parametrize("edges", EDGES, ids=["head", "edges"])
def test_transition_head_predicts_a_distribution_over_states_and_permutes_with_the_labels(edges):
    B, S, A, H = 2, 6, 4, 5
    ctx = random_context(B, S, A, H, seed=3)
    ps, pa = torch.randperm(S, generator=torch.Generator().manual_seed(0)), torch.tensor([2, 0, 3, 1])
    moved = relabelled(ctx, ps, pa)
    m = with_transition_head(edges=edges)
    with torch.no_grad():
        a, b = m(ctx), m(moved)
    assert a.log_p_next.shape == (B, S, A, S)
    torch.testing.assert_close(a.log_p_next.exp().sum(-1), torch.ones(B, S, A, dtype=torch.float64))
    assert a.log_p_next.exp().std() > 1e-3  # not uniform: the test would not see a wrong permutation otherwise
    torch.testing.assert_close(a.log_p_next[:, ps][:, :, pa][:, :, :, ps], b.log_p_next, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.q_plan[:, :, ps][:, :, :, pa], b.q_plan, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("edges", EDGES, ids=["head", "edges"])
def test_acting_computes_only_the_guessed_rows_and_plans_as_the_dense_table_does(edges):
    """forward(transitions=False) asks the head for the guessed pairs' rows alone: the same rows as the dense
    table's, and the same plan, on a batch whose runs guess different numbers of pairs (one guesses none)."""
    from rlpfn.model import guessed_pairs

    B, S, A, H = 3, 6, 4, 5
    ctx = random_context(B, S, A, H, seed=3)
    ctx.stats.counts[0] = ctx.stats.counts[0].clamp_min(1)  # run 0: every pair tried, nothing to guess
    ctx.stats.counts[1, :, 1:] = 0  # run 1: only action 0 tried anywhere
    ctx.stats.counts[2, 2:, 2:] = 0
    m = with_transition_head(edges=edges)
    with torch.no_grad():
        dense, acting = m(ctx), m(ctx, transitions=False)
    assert acting.log_p_next is None
    torch.testing.assert_close(acting.q_plan, dense.q_plan, atol=1e-9, rtol=0)
    n = ctx.stats.counts.sum(-1)
    pairs = guessed_pairs(n).nonzero(as_tuple=True)
    assert set(pairs[0].tolist()) == {1, 2}
    h = torch.randn(B, S, A, 16, generator=torch.Generator().manual_seed(1))
    c = ctx.stats.counts
    with torch.no_grad():
        table = m.transition(h, counts=c)
        torch.testing.assert_close(m.transition(h, pairs, c), table[pairs], atol=1e-6, rtol=0)
        shuffled = tuple(x.flip(0) for x in pairs)  # pairs in any order give their own rows
        torch.testing.assert_close(m.transition(h, shuffled, c), table[shuffled], atol=1e-6, rtol=0)
        none = tuple(x[:0] for x in pairs)
        assert m.transition(h, none, c).shape == (0, S)


def test_planner_values_untried_pairs_of_tried_states_by_the_predicted_successors():
    """An untried pair at a state where some action was tried: min(H-h, 1 + P̃·V_{h+1}). At a state where nothing
    was tried it keeps the unvisited value; tried pairs and the offline planner ignore the prediction."""
    S, A, H = 4, 3, 6
    ctx = random_context(1, S, A, H, seed=5, density=1.0)
    counts = ctx.stats.counts
    counts[:, 0, 1:] = 0  # state 0: only action 0 tried
    counts[:, 1] = 0  # state 1: nothing tried
    ctx.stats.reward_sum[:, 0, 1:] = ctx.stats.reward_sum[:, 1] = 0
    P_hat, r_hat, n = ctx.stats.empirical(sparse=False)
    p_next = torch.softmax(torch.randn(1, S, A, S, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), -1)
    q = plan(P_hat, r_hat, n, H, CFG, successors=lambda pairs: p_next.log()[pairs])
    q0 = plan(P_hat, r_hat, n, H, CFG)
    v = torch.cat([q.amax(-1), torch.zeros(1, 1, S, dtype=torch.float64)], 1)  # V_h, V_H = 0
    for h in range(H):
        expected = (1 + p_next[0, 0, 1:] @ v[0, h + 1]).clamp(max=H - h)
        torch.testing.assert_close(q[0, h, 0, 1:], expected)
    torch.testing.assert_close(q[:, :, 1], q0[:, :, 1])  # nothing tried at state 1
    assert (q[:, :, 0, 1:] < q0[:, :, 0, 1:] - 1e-6).any()  # the prediction lowered some untried values
    pessimistic = plan(P_hat, r_hat, n, H, CFG, pessimistic=True)
    guess = lambda pairs: p_next.log()[pairs]  # noqa: E731
    torch.testing.assert_close(plan(P_hat, r_hat, n, H, CFG, pessimistic=True, successors=guess), pessimistic)


def test_planner_guess_until_stops_guessing_at_a_state_of_n1_visits():
    """planner_guess_until N1: an untried pair is valued by the prediction only while its state has fewer than N1
    visits; at a state of N1 or more it is an ordinary untried pair, as without a head; the option needs a head."""
    S, A, H = 4, 3, 6
    ctx = random_context(1, S, A, H, seed=5, density=1.0)
    counts = ctx.stats.counts
    counts[:, :2, 1:] = 0  # states 0 and 1: only action 0 tried
    counts[:, 0, 0] = 0
    counts[:, 0, 0, 2] = 2.0  # state 0: 2 visits
    counts[:, 1, 0, 3] = 9.0  # state 1: at least 9
    ctx.stats.reward_sum[:, :2, 1:] = 0
    P_hat, r_hat, n = ctx.stats.empirical(sparse=False)
    assert n[0, 0].sum() == 2 and n[0, 1].sum() >= 9
    p_next = torch.softmax(torch.randn(1, S, A, S, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), -1)
    guess = lambda pairs: p_next.log()[pairs]  # noqa: E731
    cfg = dataclasses.replace(CFG, transition_head=True)
    until = dataclasses.replace(cfg, planner_guess_until=5)
    q, q_guess, q_none = (plan(P_hat, r_hat, n, H, until, successors=guess), plan(P_hat, r_hat, n, H, cfg, successors=guess),
                          plan(P_hat, r_hat, n, H, cfg))
    torch.testing.assert_close(q[0, :, 1, 1:], q_none[0, :, 1, 1:])  # state 1, 9+ visits: H - h again
    assert not torch.allclose(q_guess[0, :, 1, 1:], q_none[0, :, 1, 1:])  # (the guess did lower them)
    v = torch.cat([q.amax(-1), torch.zeros(1, 1, S, dtype=torch.float64)], 1)
    for h in range(H):  # state 0, 2 visits: still guessed
        torch.testing.assert_close(q[0, h, 0, 1:], (1 + p_next[0, 0, 1:] @ v[0, h + 1]).clamp(max=H - h))
    with pytest.raises(ValueError, match="transition_head is false"):
        dataclasses.replace(CFG, planner_guess_until=5)


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_guess_temperature_values_a_guessed_pair_by_the_soft_maximum_of_its_predicted_successors(tau):
    """min(H-h, 1 + t·log Σ P̃·exp(V_{h+1}/t)), t = τ·(H-h): between P̃·V and the best predicted successor's value."""
    S, A, H, B = 4, 3, 6, 2
    ctx = random_context(B, S, A, H, seed=5, density=1.0)
    ctx.stats.counts[:, 0, 1:] = 0  # state 0: only action 0 tried
    ctx.stats.reward_sum[:, 0, 1:] = 0
    ctx.stats.reward_sum[1] *= 0.2  # the runs' values differ: each guessed row must read its own run's V
    P_hat, r_hat, n = ctx.stats.empirical(sparse=False)
    p_next = torch.softmax(torch.randn(B, S, A, S, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), -1)
    guess = lambda pairs: p_next.log()[pairs]  # noqa: E731
    cfg = dataclasses.replace(CFG, planner_guess_temperature=tau)
    q = plan(P_hat, r_hat, n, H, cfg, successors=guess)
    v = torch.cat([q.amax(-1), torch.zeros(B, 1, S, dtype=torch.float64)], 1)
    for b in range(B):
        for h in range(H - 1):  # at h = H-1, V_H = 0: every value is 1
            t = tau * (H - h)
            soft = t * torch.log(p_next[b, 0, 1:] @ torch.exp(v[b, h + 1] / t))
            torch.testing.assert_close(q[b, h, 0, 1:], (1 + soft).clamp(max=H - h))
            mean = p_next[b, 0, 1:] @ v[b, h + 1]
            assert (soft >= mean - 1e-12).all() and (soft <= v[b, h + 1].max() + 1e-12).all()
    assert (q[:, :, 0, 1:] > plan(P_hat, r_hat, n, H, CFG, successors=guess)[:, :, 0, 1:] + 1e-6).any()
    with pytest.raises(ValueError, match="planner_guess_temperature must be finite"):
        dataclasses.replace(CFG, planner_guess_temperature=float("inf"))


def test_action_attention_ties_an_action_across_states():
    """With it, what action 0 did at other states changes the output at state 0; without it, only through the
    states' summaries, which do not tell action 0 from action 1 (so swapping them elsewhere changes nothing)."""
    ctx = random_context(1, 5, 2, 4, seed=2, density=1.0)
    swapped = Context(Stats(ctx.stats.counts.clone(), ctx.stats.reward_sum.clone(), ctx.stats.reward_sq_sum.clone()),
                      torch.tensor([0]), ctx.step, 4, ctx.episodes)
    ctx = Context(ctx.stats, torch.tensor([0]), ctx.step, 4, ctx.episodes)
    for t in (swapped.stats.counts, swapped.stats.reward_sum, swapped.stats.reward_sq_sum):
        t[:, 1:] = t[:, 1:].flip(2)  # swap the two actions at every state but state 0
    for cfg, changes in ((CFG, False), (dataclasses.replace(CFG, action_attention=True), True)):
        m = perturbed(cfg)
        with torch.no_grad():
            diff = (m(ctx).logits[:, 0] - m(swapped).logits[:, 0]).abs().max()
        assert (diff > 1e-4) == changes, (cfg.action_attention, diff)


def test_a_model_without_the_transition_head_predicts_nothing():
    out = perturbed()(random_context(1, 3, 2, 4))
    assert out.log_p_next is None


def test_the_graph_terms_say_where_each_pair_and_state_has_led():
    """transition_edges: each term, alone, on a hand-made statistic; the dense table and the pairs' rows agree."""
    from rlpfn.model import N_EDGES, edge_terms

    S, A = 4, 2
    counts = torch.zeros(1, S, A, S, dtype=torch.float64)
    counts[0, 0, 0, 1] = 3  # 0 -a0-> 1 three times
    counts[0, 0, 1, 2] = 1  # 0 -a1-> 2 once
    counts[0, 2, 0, 0] = 1  # 2 -a0-> 0 once; nothing was done at states 1 and 3
    log = torch.log1p
    expected = {  # term j alone, the row of pair (s = 0, a = 0)
        0: torch.tensor([0, log(torch.tensor(3.0)), 0, 0]),  # its own counts
        1: torch.tensor([0, log(torch.tensor(3.0)), log(torch.tensor(1.0)), 0]),  # where state 0 led, by any action
        2: torch.tensor([0, 0, log(torch.tensor(1.0)), 0]),  # which states led to state 0
        3: torch.tensor([1.0, 0, 0, 0]),  # state 0 itself
        4: torch.tensor([0, 1.0, 0, 1.0]),  # states no action was tried at
    }
    for j, row in expected.items():
        w = torch.zeros(1, S, A, N_EDGES)
        w[..., j] = 1.0
        torch.testing.assert_close(edge_terms(counts, w)[0, 0, 0], row)
        pairs = (torch.tensor([0, 0]), torch.tensor([0, 3]), torch.tensor([0, 1]))
        torch.testing.assert_close(edge_terms(counts, w[pairs], pairs), edge_terms(counts, w)[pairs])


def test_a_head_with_the_graph_starts_as_the_head_without_it_and_needs_the_counts():
    ctx = random_context(2, 5, 3, 4, seed=2)
    plain, edges = with_transition_head(seed=4), perturbed(dataclasses.replace(TRANSITIONS, transition_edges=True), 4)
    missing = edges.load_state_dict(plain.state_dict(), strict=False).missing_keys  # the graph's weights: at zero
    assert sorted(missing) == ["transition.edge.bias", "transition.edge.weight"]
    with torch.no_grad():
        torch.testing.assert_close(edges(ctx).log_p_next, plain(ctx).log_p_next, atol=0, rtol=0)
        with pytest.raises(ValueError, match="pass counts"):
            edges.transition(torch.zeros(2, 5, 3, 16))
    with pytest.raises(ValueError, match="transition_edges.*transition_head is false"):
        ModelConfig(transition_edges=True)


def test_the_reward_head_sets_a_guessed_pairs_reward_and_starts_at_the_bound():
    """reward_head: untrained (bias 1) it plans exactly as the model without it; planning with a level, a guessed
    pair's one step of reward is that level's prediction clipped to [0, 1], and nothing else moves."""
    from rlpfn.model import REWARD_QUANTILES

    S, A, H = 4, 3, 6
    ctx = random_context(2, S, A, H, seed=5, density=1.0)
    ctx.stats.counts[:, 0, 1:] = 0  # state 0: only action 0 tried
    ctx.stats.reward_sum[:, 0, 1:] = ctx.stats.reward_sum[:, 0, 1:] * 0
    base = dataclasses.replace(CFG, transition_head=True)
    with_head = dataclasses.replace(base, reward_head=True, planner_reward_quantile=0.9)
    torch.manual_seed(3)
    m0 = RLPFN(base).eval()
    m = RLPFN(with_head).eval()
    m.load_state_dict(m0.state_dict(), strict=False)
    with torch.no_grad():
        out0, out = m0(ctx), m(ctx)
    torch.testing.assert_close(out.q_plan, out0.q_plan)  # predicts 1 everywhere: the bound
    assert out.reward_quantiles.shape == (2, S, A, len(REWARD_QUANTILES))
    with torch.no_grad():
        m.reward.bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        out = m(ctx)
    h = H - 1  # the last step: a guessed pair is worth its one step of reward
    torch.testing.assert_close(out.q_plan[:, h, 0, 1:], torch.full((2, A - 1), 0.3, dtype=torch.float64))
    torch.testing.assert_close(out.q_plan[:, h, 1:], out0.q_plan[:, h, 1:])  # no other state guesses
    torch.testing.assert_close(out.q_plan[:, h, 0, 0], out0.q_plan[:, h, 0, 0])  # nor does the tried pair
    assert (out.q_plan <= out0.q_plan + 1e-12).all()  # a smaller reward there lowers values upstream, never raises
    with torch.no_grad():  # offline planning guesses nothing: the head has no say there
        torch.testing.assert_close(m(ctx, pessimistic=True).q_plan, m0(ctx, pessimistic=True).q_plan)
        m.reward.bias.fill_(1.7)
        torch.testing.assert_close(m(ctx).q_plan, out0.q_plan)  # clipped to the bound


@pytest.mark.parametrize("changes, message", [
    ({"transition_head": True, "planner_reward_quantile": 0.9}, "planner_reward_quantile = 0.9 plans with the reward"),
    ({"transition_head": True, "reward_head": True, "planner_reward_quantile": 0.8}, "one of the reward head's levels"),
    ({"transition_head": True, "reward_head": True, "planner_reward_quantile": 5.0}, "one of the reward head's levels"),
    ({"transition_head": True, "reward_head": True, "planner_reward_quantile": float("nan")}, "got nan"),
    ({"reward_head": True}, "model.reward_head predicts rewards at the pairs the transition head guesses"),
])
def test_reward_head_settings_are_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CFG, **changes)


def test_reward_stats_are_the_rewards_seen_at_the_state_and_in_the_run():
    from rlpfn.model import reward_stats

    n = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])  # [1,2,3]: state 0 tried actions 0 and 2; state 1 none
    r_hat = torch.tensor([[[0.2, 0.0, 0.6], [0.0, 0.0, 0.0]]])
    x = reward_stats(r_hat, n)
    assert x.shape == (1, 2, 3, 5)
    torch.testing.assert_close(x[0, 0, 1], torch.tensor([0.6, 0.4, 1.0, 0.6, 0.4]))  # same at every action
    torch.testing.assert_close(x[0, 1, 0], torch.tensor([0.0, 0.0, 0.0, 0.6, 0.4]))
    assert (reward_stats(r_hat, torch.zeros_like(n)) == 0).all()
    m = RLPFN(dataclasses.replace(CFG, transition_head=True, reward_head=True, reward_head_stats=True))
    assert m.reward.in_features == CFG.d_model + 5
    with pytest.raises(ValueError, match="reward_head_stats gives the reward head the rewards seen"):
        dataclasses.replace(CFG, reward_head_stats=True)
