"""Evolution strategies on the deployed agent's regret (rlpfn/es.py): common random numbers, per-run heads, and a
gradient that points the right way where exploring pays."""
import copy

import numpy as np
import torch

from rlpfn.agents import make_agent
from rlpfn.benchmarks import make_benchmark
from rlpfn.es import ESConfig, acting_rows, es_gradient, perturbed_regret
from rlpfn.model import RLPFN, Context, ModelConfig
from rlpfn.prior import load_spec, sample_sized_batch
from rlpfn.traces import run_trace
from test_regret import explore_pays


def test_runs_of_one_stream_share_their_luck():
    """Same stream, same agent: the same path through a stochastic MDP, ties broken alike; other streams differ."""
    mdp = make_benchmark("riverswim")
    trace = run_trace(mdp, make_agent("optimal", epsilon=0.0), 4, seed=0, n_runs=3, streams=torch.tensor([0, 0, 1]))
    assert torch.equal(trace.s[0], trace.s[1]) and torch.equal(trace.a[0], trace.a[1])
    assert not torch.equal(trace.s[0], trace.s[2])
    plain = run_trace(mdp, make_agent("optimal", epsilon=0.0), 4, seed=0, n_runs=3)
    assert not torch.equal(plain.s[0], plain.s[1])


def test_head_delta_acts_as_a_model_with_that_head():
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_layers=1, n_heads=2)
    model = RLPFN(cfg)
    batch = sample_sized_batch(load_spec("tiny"), 3, np.random.default_rng(0))
    trace = run_trace(batch, make_agent("random"), 2, seed=1)
    ctx = Context.at(trace.stats_at(torch.full((3,), trace.length), torch.arange(3)), trace.s[:, -1], 0,
                     batch.horizon, 2)
    delta = torch.randn(3, 4, 17) * 0.3
    out = model(ctx, head_delta=delta)
    for b in range(3):
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.head.weight += delta[b, :, :16]
            other.head.bias += delta[b, :, 16]
        one = Context(ctx.stats.rows(torch.tensor([b])), ctx.state[b:b + 1], ctx.step[b:b + 1], ctx.horizon,
                      ctx.episodes[b:b + 1])
        assert torch.allclose(other(one).q_plan[0], out.q_plan[b], atol=1e-5)


def test_a_perturbation_that_changes_no_action_changes_no_regret():
    """Common random numbers: +σε and −σε runs that act alike see the same outcomes, so their regrets are equal
    to the last bit and the estimate is exactly zero (without them it would be the runs' difference in luck)."""
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    mdps = sample_sized_batch(load_spec("tiny"), 3, np.random.default_rng(1))
    eps = torch.randn(2, len(acting_rows(model)), 17)
    J = perturbed_regret(model, mdps, eps, 1e-12, 3, seed=0)
    assert J.shape == (2, 2, 3) and torch.equal(J[:, 0], J[:, 1]) and J.sum() > 0


def test_es_gradient_raises_optimism_where_exploring_pays():
    """The bandit of test_regret, with untried arms valued at sigmoid(-2 + 2)·(H-h): just too low to try the second
    arm once the first has paid. The estimate must say that raising u (the untried-pair correction's bias) lowers
    the regret, and raising it must indeed lower it. 128 pairs: u's bias is one of 34 perturbed coordinates, and
    J is a step function of it."""
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, unvisited_logit=-2.0))
    with torch.no_grad():
        model.head.bias[2] = 2.0
    mdps = explore_pays(16)
    cfg = ESConfig(weight=1.0, pairs=128, episodes=6, sigma=0.5)
    grad, regret = es_gradient(model, mdps, cfg, seed=0)
    assert grad.shape == (2, 17)
    assert grad[1, -1] < -0.05  # row u, bias column
    with torch.no_grad():
        model.head.bias[2] += 2.0
    assert es_gradient(model, mdps, cfg, seed=0)[1].mean() < regret.mean() - 0.2


def test_workers_split_the_pairs_and_change_nothing():
    """The pairs split over processes draw the same common random numbers as in one process: the same regrets."""
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    mdps = sample_sized_batch(load_spec("tiny"), 3, np.random.default_rng(2))
    eps = torch.randn(3, len(acting_rows(model)), 17)
    one = perturbed_regret(model, mdps, eps, 0.5, 3, seed=4)
    two = perturbed_regret(model, mdps, eps, 0.5, 3, seed=4, workers=2)
    assert two.shape == (3, 2, 3) and torch.allclose(one, two, rtol=0, atol=1e-12)
    assert not torch.equal(one[0], one[1])  # the perturbations differ, so the check above has something to check
    cfg = ESConfig(weight=1.0, pairs=3, episodes=3, sigma=0.5)
    g1 = es_gradient(model, mdps, cfg, seed=4)[0]
    assert torch.equal(g1, es_gradient(model, mdps, ESConfig(**{**vars(cfg), "workers": 3}), seed=4)[0])


def test_only_an_agent_that_can_acts_off_the_cpu():
    """A rollout on another device than the CPU is for the model's agent (pretraining on a GPU): a baseline there
    is refused by name before anything runs."""
    import pytest

    from rlpfn.errors import UserError

    with pytest.raises(UserError, match="ucbvi acts on the CPU only"):
        run_trace(make_benchmark("riverswim"), make_agent("ucbvi"), 2, seed=0, n_runs=2, device="meta")
