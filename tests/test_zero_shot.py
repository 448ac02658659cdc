"""The rlpfn agent, checkpoints and zero-shot solving (Python and CLI), with a small untrained model file."""
import json
import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlpfn
from rlpfn.agents import AGENTS, OFFLINE_AGENTS, ONLINE_AGENTS, make_agent
from rlpfn.checkpoint import CheckpointError, load, save, shipped_path
from rlpfn.cli import main
from rlpfn.experiments.evaluate import run_offline, run_online
from rlpfn.benchmarks import make_benchmark
from rlpfn.model import RLPFN, ModelConfig, novelty_rate, reward_noise
from rlpfn.zero_shot import load_transitions, solve, solve_offline


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    return str(save(model, tmp_path_factory.mktemp("ckpt") / "m", {"name": "tiny"}, {"steps": 0}))


@pytest.fixture(scope="module")
def ad_ckpt(tmp_path_factory):
    from rlpfn.ad.model import ADConfig, ADModel

    torch.manual_seed(0)
    model = ADModel(ADConfig(d_model=16, n_layers=1, n_heads=2, label_dim=8, window=32))
    return str(save(model, tmp_path_factory.mktemp("ad") / "m", {"name": "tiny"}, {"steps": 0}))


def test_rlpfn_is_registered_online_and_offline():
    assert "rlpfn" in ONLINE_AGENTS and "rlpfn" in OFFLINE_AGENTS and AGENTS["rlpfn"].online


@pytest.mark.parametrize("hp", [{"refresh": "episode"}, {"refresh": "step", "sample": True}])
def test_agent_runs_online_seeded(ckpt, hp):
    mdp = make_benchmark("riverswim")
    a = run_online(mdp, make_agent("rlpfn", checkpoint=ckpt, **hp), 6, 3, seed=1)
    b = run_online(mdp, make_agent("rlpfn", checkpoint=ckpt, **hp), 6, 3, seed=1)
    assert a.regret.shape == (3, 6) and (a.regret >= -1e-9).all()
    np.testing.assert_array_equal(a.returns, b.returns)


def test_agent_offline_policy_is_a_distribution(ckpt):
    mdp = make_benchmark("chain")
    res = run_offline(mdp, make_agent("rlpfn", checkpoint=ckpt), 0.5, 10, 2)
    assert res.scores.shape == (2,) and np.isfinite(res.scores).all()


def test_bad_agent_options_are_refused():
    with pytest.raises(ValueError, match="refresh must be"):
        make_agent("rlpfn", refresh="sometimes")
    for key, value in (("explore_every", -1), ("explore_scale", 0.0), ("explore_scale", float("inf")),
                       ("retry_rate", -1.0), ("retry_rate", float("nan")), ("retry_rate", float("inf"))):
        with pytest.raises(ValueError, match=f"{key} must be.*got {value}"):
            make_agent("rlpfn", **{key: value})
    with pytest.raises(ValueError, match="explore_every and monotone"):
        make_agent("rlpfn", explore_every=5, monotone=True)
    with pytest.raises(ValueError, match="retry_rate.*True"):
        make_agent("rlpfn", retry_rate=True)


# ---- checkpoints ---------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_and_no_pickle(ckpt, tmp_path):
    m = load(ckpt)
    assert m.meta["format_version"] == 1 and m.cfg.d_model == 16
    raw = open(ckpt.replace(".json", ".safetensors"), "rb").read()
    assert not raw.startswith(b"\x80")  # not a pickle stream


def test_a_transition_head_survives_the_checkpoint_and_the_agent_plays_with_it(tmp_path):
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True))
    torch.nn.init.normal_(model.transition.query.weight)
    path = str(save(model, tmp_path / "m", {"name": "tiny"}, {"steps": 0}))
    loaded = load(path)
    assert loaded.cfg.transition_head
    torch.testing.assert_close(loaded.transition.query.weight, model.transition.query.weight)
    mdp = make_benchmark("riverswim")
    a = run_online(mdp, make_agent("rlpfn", checkpoint=path), 6, 3, seed=1)
    b = run_online(mdp, make_agent("rlpfn", checkpoint=path), 6, 3, seed=1)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert (a.regret >= -1e-9).all()


@pytest.mark.parametrize("damage", ["truncate", "flip", "config", "version", "missing"])
def test_damaged_checkpoints_are_refused_in_one_line(ckpt, tmp_path, damage):
    import shutil
    from pathlib import Path

    src = Path(ckpt)
    dst = tmp_path / "m.json"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".safetensors"), tmp_path / "m.safetensors")
    w = tmp_path / "m.safetensors"
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[:100])
    elif damage == "flip":
        b = bytearray(w.read_bytes())
        b[-5] ^= 0xFF
        w.write_bytes(bytes(b))
    elif damage == "config":
        doc = json.loads(dst.read_text())
        doc["model"]["d_model"] = 32
        dst.write_text(json.dumps(doc))
    elif damage == "version":
        doc = json.loads(dst.read_text())
        doc["format_version"] = 99
        dst.write_text(json.dumps(doc))
    else:
        w.unlink()
    with pytest.raises(CheckpointError) as e:
        load(dst)
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def test_garbage_config_is_refused(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(tmp_path / "x.json")


def test_shipped_checkpoint_loads_by_default_and_is_small():
    model = rlpfn.load()  # v2: trained on the wide prior, with a transition head
    assert model.meta["training"]["steps"] > 0 and model.meta["prior"]["name"] == "wide" and model.transition is not None
    assert shipped_path().name == "rlpfn-v2" and shipped_path().with_suffix(".safetensors").stat().st_size < 20 * 2**20


def test_an_older_shipped_model_loads_by_name_unless_a_file_here_has_that_name(tmp_path, monkeypatch):
    v1 = load("rlpfn-v1")
    assert v1.meta["prior"]["name"] == "default" and v1.transition is None
    assert load("rlpfn-v1.json").meta["sha256"] == v1.meta["sha256"]
    shipped = (shipped_path().parent / "rlpfn-v1.safetensors").read_bytes()
    monkeypatch.chdir(tmp_path)
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), "rlpfn-v1", {"name": "mine"}, {})
    assert (tmp_path / "rlpfn-v1.json").is_file()  # saving by a shipped name writes here, never over the shipped one
    assert (shipped_path().parent / "rlpfn-v1.safetensors").read_bytes() == shipped
    assert load("rlpfn-v1").meta["prior"]["name"] == "mine"  # the file here wins
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load("rlpfn-v9")


# ---- zero-shot solving -----------------------------------------------------------------------------------
def test_solve_tabular_gym_env_reports_regret(ckpt):
    res = solve("FrozenLake-v1", episodes=3, checkpoint=ckpt)
    assert res.returns.shape == (1, 3) and res.regret is not None and res.v_star > 0


class NoTables(gym.Wrapper):
    """FrozenLake behind a wrapper that hides its tables: only reset / step."""

    @property
    def unwrapped(self):
        return self


def test_solve_reset_step_only_env_reports_returns(ckpt):
    env = NoTables(gym.make("FrozenLake-v1"))
    assert not hasattr(env, "P")
    res = solve(env, episodes=4, runs=2, checkpoint=ckpt)
    assert res.returns.shape == (2, 4) and res.regret is None
    assert set(np.unique(res.returns)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="outside reward_bounds"):
        solve(NoTables(gym.make("CliffWalking-v1")), episodes=1, horizon=10, checkpoint=ckpt)


def write_log(path, n=200, S=4, A=2, H=5, seed=0, **override):
    rng = np.random.default_rng(seed)
    data = dict(obs=rng.integers(S, size=n), action=rng.integers(A, size=n), reward=rng.random(n),
                next_obs=rng.integers(S, size=n), terminated=rng.random(n) < 0.1,
                n_states=np.int64(S), n_actions=np.int64(A), horizon=np.int64(H))
    data.update(override)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(path, **data)
    return path


def test_solve_offline_python_and_cli(ckpt, tmp_path, capsys):
    log = write_log(tmp_path / "t.npz")
    pi = solve_offline(log, checkpoint=ckpt)
    assert pi.shape == (5, 4, 2)
    np.testing.assert_allclose(pi.sum(-1), 1.0)
    assert load_transitions(log).spec.n_states == 5  # an absorbing state for the terminated transitions
    out = tmp_path / "pi.npz"
    code = main(["solve-offline", str(log), "--agent", "vilcb", "--out", str(out)])
    assert code == 0 and np.load(out)["policy"].shape == (5, 4, 2)


@pytest.mark.parametrize("override,message", [
    ({"action": None}, "missing array"),
    ({"obs": np.array([0, 9])}, "must be 1-D with one entry per transition"),
    ({"next_obs": np.full(200, 7)}, r"next_obs\[0\] = 7 outside \[0, 4\)"),
    ({"n_states": np.float64(4.0)}, "n_states must be a positive integer"),
    ({"reward": np.full(200, np.nan)}, "reward\\[0\\] is not finite"),
])
def test_solve_offline_bad_logs_exit_2_and_write_nothing(tmp_path, capsys, override, message):
    log = write_log(tmp_path / "bad.npz", **override)
    out = tmp_path / "pi.npz"
    code = main(["solve-offline", str(log), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not out.exists()


def test_solve_offline_not_an_npz(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_text("hello")
    assert main(["solve-offline", str(bad)]) == 2
    assert "not a readable .npz" in capsys.readouterr().err


def test_latency_command_prints_one_row_per_history_size(ckpt, ad_ckpt, capsys):
    code = main(["latency", "riverswim", "--sizes", "10", "2000", "--repeats", "1", "--checkpoint", ckpt,
                 "--ad-checkpoint", ad_ckpt])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert [int(r.split()[0]) for r in rows] == [10, 2000]
    assert "11 tokens" in rows[0] and "window" not in rows[0]  # AD reads the whole short history
    assert "32 tokens (window: last 32)" in rows[1]  # and says when its window truncates a long one
    per_episode = re.search(r"rlpfn ([0-9.]+) s, UCB-VI ([0-9.]+) s, ratio ([0-9.]+)", out)  # both, one line
    assert per_episode and float(per_episode.group(1)) > 0 and float(per_episode.group(2)) > 0


def test_peak_memory_counts_what_is_alive_at_once():
    from rlpfn.experiments.latency import peak_bytes

    def two_then_one():
        a = torch.ones(250_000)  # 1 MB
        b = a + 1  # 2 MB alive
        del a
        c = b * 2  # 2 MB alive again: the peak stays 2 MB
        return c.sum()

    assert abs(peak_bytes(two_then_one) - 2_000_000) < 10_000
    # inside one operator: a transformer layer's attention matrices (4 heads of 256 x 256 floats, 1 MiB), freed
    # before the operator returns, still count
    from rlpfn.ad.model import ADConfig, ADModel

    model = ADModel(ADConfig(d_model=16, n_layers=1, n_heads=4, label_dim=8, window=256)).eval()
    x = torch.randn(1, 256, 16)
    with torch.no_grad():
        assert peak_bytes(lambda: model.trunk(x, mask=torch.nn.Transformer.generate_square_subsequent_mask(256),
                                              is_causal=True)) >= 2**20


def test_validate_command_compares_with_ucbvi(ckpt, capsys, tmp_path):
    out_json = tmp_path / "v.json"
    code = main(["validate", "--prior", "tiny", "--batches", "1", "--episodes", "3", "--workers", "1", "--quiet",
                 "--agents", "ucbvi", "rlpfn", "--checkpoint", ckpt, "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0 and "below it on" in out
    doc = json.loads(out_json.read_text())
    assert len(doc["regret"]["rlpfn"]) == 8 and len(doc["regret"]["ucbvi"]) == 8
    # the paired difference to UCB-VI is the mean of per-MDP differences on the same MDPs and seeds
    diff = np.mean(np.subtract(doc["regret"]["rlpfn"], doc["regret"]["ucbvi"]))
    line = next(x for x in out.splitlines() if x.strip().startswith("rlpfn"))
    assert f"minus UCB-VI (paired) {diff:.4g} ±" in line


def test_validate_takes_an_agent_with_hyperparameters_set(capsys, tmp_path):
    """'ucbvi[scale=1.0]' runs UCB-VI with that bonus scale, under that label, beside the tuned one."""
    from rlpfn.experiments.validate import ValidationConfig, validate

    out_json = tmp_path / "v.json"
    code = main(["validate", "--prior", "tiny", "--batches", "1", "--episodes", "3", "--workers", "1", "--quiet",
                 "--agents", "ucbvi", "ucbvi[scale=1.0,h_term=1]", "--json", str(out_json)])
    assert code == 0 and "ucbvi[scale=1.0,h_term=1]" in capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    assert doc["agents"]["ucbvi[scale=1.0,h_term=1]"] == ["ucbvi", {"scale": 1.0, "h_term": 1}]
    direct = validate({"big": ("ucbvi", {"scale": 1.0, "h_term": 1.0})},
                      ValidationConfig(prior="tiny", batches=1, episodes=3), workers=1, progress=False)["big"]
    assert np.allclose(doc["regret"]["ucbvi[scale=1.0,h_term=1]"], direct)
    assert not np.allclose(doc["regret"]["ucbvi"], direct)  # the override changed the agent


def test_validate_rollouts_average_runs_whose_first_is_the_one_rollout_run(capsys, tmp_path):
    """--rollouts R: each MDP's regret is the mean of R runs with held_out_batch's rollout seeds, the first of them
    validate's own; the config records R."""
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import ValidationConfig, held_out_batch, validate

    out_json = tmp_path / "v.json"
    code = main(["validate", "--prior", "tiny", "--batches", "2", "--episodes", "3", "--workers", "1", "--quiet",
                 "--agents", "ucbvi", "--rollouts", "3", "--json", str(out_json)])
    assert code == 0 and "16 MDPs × 3 rollouts" in capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    assert doc["config"]["rollouts"] == 3
    one = validate({"u": ("ucbvi", {})}, ValidationConfig(prior="tiny", batches=2, episodes=3), workers=1,
                   progress=False)["u"]
    by_hand = []
    for i in range(2):
        runs = [prior_regret(*held_out_batch("tiny", 2, 0, i, r)[:1], make_agent("ucbvi"), 3,
                             seed=held_out_batch("tiny", 2, 0, i, r)[1]) for r in range(3)]
        assert np.array_equal(runs[0], one[8 * i:8 * (i + 1)])  # rollout 0 is the one-rollout run
        assert not np.array_equal(runs[0], runs[1])  # the others are other seeds
        by_hand.append(np.mean(runs, axis=0))
    np.testing.assert_allclose(doc["regret"]["ucbvi"], np.concatenate(by_hand), rtol=0, atol=1e-12)
    assert main(["validate", "--rollouts", "0"]) != 0


def test_new_pair_refresh_asks_the_model_only_after_first_visits(ckpt):
    """refresh='new-pair': one pass per episode start, plus one per run for each first visit of a pair."""
    mdp = make_benchmark("riverswim")
    agent = make_agent("rlpfn", checkpoint=ckpt, refresh="new-pair")
    calls = []
    original = agent._forward

    def counting(stats, state, step, episodes, **kwargs):
        calls.append((stats.counts.shape[0], step))
        return original(stats, state, step, episodes, **kwargs)

    agent._forward = counting
    run_online(mdp, agent, 4, 3, seed=0)
    starts = [c for c in calls if c[1] == 0]
    mid = [c for c in calls if c[1] > 0]
    assert len(starts) >= 4 and all(n == 3 for n, _ in starts)  # every episode start, all runs
    visited_pairs = int((agent.stats.visits > 0).sum())
    assert 0 < sum(n for n, _ in mid) <= visited_pairs  # only runs with a first visit, at most one per pair


def _perturbed_model(seed: int = 3, **cfg):
    """A small model whose heads are not zero, so the planner's corrections (α, u) differ per pair."""
    torch.manual_seed(seed)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, **cfg))
    torch.nn.init.normal_(model.head.weight, std=0.3)
    return model.eval()


def test_local_refresh_passes_once_per_episode():
    from rlpfn.agents.rlpfn import RlpfnAgent

    agent = RlpfnAgent.with_model(_perturbed_model(), refresh="local")
    calls = []
    original = agent._forward
    agent._forward = lambda stats, state, step, episodes, **kw: calls.append(step) or original(stats, state, step,
                                                                                           episodes, **kw)
    run_online(make_benchmark("riverswim"), agent, 4, 3, seed=0)
    assert calls == [0, 0, 0, 0]


def test_a_log_term_from_beyond_any_visit_count_acts_exactly_as_without_it():
    """planner_state_log_from N0: below N0 visits of a state its bonuses are the plain ones, and the per-step backup
    re-plans only the pair just visited, as without the log term; with N0 = 1 the other tried actions move too."""
    from rlpfn.agents.rlpfn import RlpfnAgent

    mdp = make_benchmark("sixarms")
    plain = run_online(mdp, RlpfnAgent.with_model(_perturbed_model()), 6, 3, seed=0)
    late = run_online(mdp, RlpfnAgent.with_model(_perturbed_model(planner_state_log=True,
                                                                  planner_state_log_from=1e9)), 6, 3, seed=0)
    early = run_online(mdp, RlpfnAgent.with_model(_perturbed_model(planner_state_log=True)), 6, 3, seed=0)
    np.testing.assert_array_equal(late.regret, plain.regret)
    assert not np.array_equal(early.regret, plain.regret)


def test_a_retry_rate_takes_random_actions_ever_more_rarely_and_zero_changes_nothing():
    """retry_rate c: at a state of N_s visits a uniformly random action w.p. min(1, c / N_s); 0 draws nothing, so
    the run is v2's to the bit; seeded."""
    from rlpfn.agents.base import AgentSpec
    from rlpfn.agents.rlpfn import RlpfnAgent
    from rlpfn.traces import run_trace

    mdp = make_benchmark("sixarms")
    plain = run_online(mdp, RlpfnAgent.with_model(_perturbed_model()), 6, 3, seed=0)
    zero = run_online(mdp, RlpfnAgent.with_model(_perturbed_model(), retry_rate=0.0), 6, 3, seed=0)
    np.testing.assert_array_equal(zero.regret, plain.regret)
    runs = [run_trace(mdp, RlpfnAgent.with_model(_perturbed_model(), retry_rate=c), 30, 0, n_runs=4) for c in (0, 3, 3)]
    assert torch.equal(runs[1].a, runs[2].a) and not torch.equal(runs[0].a, runs[1].a)
    agent = RlpfnAgent.with_model(_perturbed_model(), retry_rate=3.0)
    n, A = 4000, mdp.n_actions
    agent.reset(AgentSpec.of(mdp), n, seed=0)
    agent.out, agent.q = object(), torch.zeros(n, mdp.horizon, mdp.n_states, A, dtype=torch.float64)
    agent.q[..., 2] = 1.0  # the greedy action everywhere
    zeros = torch.zeros(n, dtype=torch.long)
    for visits in (10, 100):  # N_s: the share of random actions that are not the greedy one is (c / N_s)(A - 1) / A
        while agent.stats.visits[0, 0].sum() < visits:
            agent.stats.add(zeros, zeros, torch.zeros(n, dtype=torch.float64), zeros)
        share = (agent.act(zeros, 1) != 2).double().mean().item()
        assert abs(share - 3.0 / visits * (A - 1) / A) < (0.03 if visits == 10 else 0.01), (visits, share)


def test_optimistic_episodes_raise_the_bonus_of_every_kth_pass_only():
    """explore_every k, explore_scale M: episodes k-1, 2k-1, ... plan with α + ln M for every pair (so the bonus × M),
    the others as without the option; k = 0 acts exactly as without it; offline planning is unchanged."""
    from rlpfn.agents.rlpfn import RlpfnAgent
    from rlpfn.stats import Stats

    mdp = make_benchmark("riverswim")
    agent = RlpfnAgent.with_model(_perturbed_model(), explore_every=3, explore_scale=10.0)
    shifts, original = [], agent._forward

    def recording(*args, **kwargs):  # each pass's α against the same pass without the option
        out = original(*args, **kwargs)
        agent.explore_every = 0
        plain = original(*args, **kwargs)
        agent.explore_every = 3
        shifts.append(out.corrections[..., 0] - plain.corrections[..., 0])
        return out

    agent._forward = recording
    run_online(mdp, agent, 7, 2, seed=0)
    assert len(shifts) == 7
    for episode, shift in enumerate(shifts):
        torch.testing.assert_close(shift, torch.full_like(shift, math.log(10.0) if episode in (2, 5) else 0.0),
                                   atol=1e-5, rtol=0)
    plain = run_online(mdp, RlpfnAgent.with_model(_perturbed_model()), 7, 2, seed=0)
    never = run_online(mdp, RlpfnAgent.with_model(_perturbed_model(), explore_every=0, explore_scale=10.0), 7, 2, seed=0)
    boosted = run_online(mdp, RlpfnAgent.with_model(_perturbed_model(), explore_every=3, explore_scale=10.0), 7, 2,
                         seed=0)
    np.testing.assert_array_equal(never.regret, plain.regret)
    np.testing.assert_array_equal(boosted.regret[:, :2], plain.regret[:, :2])  # the first optimistic episode is the 3rd
    stats = Stats.zeros(1, mdp.n_states, mdp.n_actions)
    stats.add(*(torch.tensor([x]) for x in (0, 1)), torch.tensor([0.5], dtype=torch.float64), torch.tensor([1]))
    assert torch.equal(RlpfnAgent.with_model(_perturbed_model(), explore_every=1).fit(agent.spec, stats),
                       RlpfnAgent.with_model(_perturbed_model()).fit(agent.spec, stats))


@pytest.mark.parametrize("h_term_scale,novelty,kappa,pooled,state_log,noise,variance", [
    (1.0, 0.0, 0.0, False, False, 0.0, 0.0), (10.0, 0.0, 0.0, False, False, 0.0, 0.0),
    (1.0, 0.3, 0.0, False, False, 0.0, 0.0), (1.0, 0.0, 1.0, False, False, 0.0, 0.0),
    (1.0, 0.3, 0.5, False, False, 0.0, 0.0), (1.0, 3.0, 0.0, True, False, 0.0, 0.0),
    (1.0, 0.0, 0.0, False, True, 0.0, 0.0), (1.0, 0.0, 0.0, False, False, 5.0, 0.0),
    (1.0, 0.0, 0.0, False, False, 0.0, 0.3)])
def test_local_backup_is_the_planners_bellman_backup(h_term_scale, novelty, kappa, pooled, state_log, noise, variance):
    """Backing up a pair against the table that the planner produced leaves it unchanged (the table is a fixed
    point of the same backup); after a new transition it changes that pair's later steps and nothing else. With the
    planner's h_term scaled, its optimism ν about never-visited states (per pair, or pooled over the run's pairs),
    its predicted rows for tried pairs (κ), a bonus growing with the state's visits (which moves every tried action
    of the state), a 1/N part scaled by the run's reward noise (the pass's) or a term in the spread of the
    successors' values, the backup does alike."""
    from rlpfn.agents.rlpfn import RlpfnAgent

    # DeepSea and FrozenLake 8x8: states still untried after 3 episodes; the pooled rate needs slips (ρ = 0 on DeepSea)
    mdp = make_benchmark("frozenlake8x8" if pooled else "deepsea" if novelty else "sixarms")
    model = _perturbed_model(planner_h_term_scale=h_term_scale, planner_novelty=novelty, transition_head=kappa > 0,
                             tried_below=6 if kappa else 0, planner_tried_strength=kappa,
                             planner_novelty_pooled=pooled, planner_state_log=state_log,
                             planner_noise_h_term=noise, planner_variance=variance)
    agent = RlpfnAgent.with_model(model, refresh="local")
    run_online(mdp, agent, 3, 2, seed=0)
    if novelty:  # what the backups read, kept up to date step by step, is what it would be computed afresh
        assert torch.equal(agent.new, agent.stats.visits.sum(-1) == 0)
        fresh = (agent.new[:, :, None] * agent.v).sum(1) / agent.new.sum(-1, keepdim=True)
        torch.testing.assert_close(agent.v_new, fresh, atol=1e-12, rtol=0)
        rho = agent.rho if pooled else 1.0  # ν of the runs that still have such a state, with the last pass's ρ
        torch.testing.assert_close(agent.nu[:, 0], novelty * rho * agent.new.any(-1).double(), atol=1e-12, rtol=0)
    H, rows = mdp.horizon, torch.arange(2)
    few = (agent.stats.visits > 0) & (agent.stats.visits < (5 if kappa else 10**9))  # room for one more visit
    if novelty:  # a pair with a successor seen once, so that ν moves its value
        few &= (agent.stats.counts == 1).any(-1)
    if variance:  # a pair with two successors, so that their values' spread is in the table the backup must keep
        few &= (agent.stats.counts > 0).sum(-1) >= 2
    s = torch.stack([few[i].nonzero()[0] for i in range(2)])  # a pair each run has visited
    states, actions = s[:, 0], s[:, 1]
    if noise:  # SixArms' rewards repeat exactly (σ̂ = 0): give the runs some spread first
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            agent.stats.add(states, actions, torch.rand(2, dtype=torch.float64, generator=gen), states)
    agent.episodes += 1
    agent._refresh(rows, states, 0)
    if noise:
        assert torch.equal(agent.h_term_multiplier[:, 0], 1 + noise * reward_noise(agent.stats))
        assert (agent.h_term_multiplier > 1.1).all()
    if pooled:  # a pass reads ρ from the counts as they are
        assert torch.equal(agent.rho, novelty_rate(agent.stats.counts))
    q, v = agent.q.clone(), agent.v.clone()
    assert (agent.corrections[..., 0] != 0).any()  # the corrections are live
    if variance:  # the spread is there at the pair backed up (and the backup must reproduce it)
        p = agent.stats.counts[rows, states, actions] / agent.stats.visits[rows, states, actions, None]  # [2,S]
        spread = (p[:, :, None] * v[rows, :, 1:H] ** 2).sum(1) - ((p[:, :, None] * v[rows, :, 1:H]).sum(1)) ** 2
        assert (spread > 1e-6).any(-1).all()  # far above SPREAD_ROUND_OFF
    agent._backup(states, actions, 0)
    torch.testing.assert_close(agent.q, q, atol=1e-9, rtol=0)
    torch.testing.assert_close(agent.v, v, atol=1e-9, rtol=0)

    q, v = agent.q.clone(), agent.v.clone()
    rho_pass = None if agent.rho is None else agent.rho.clone()
    agent.stats.add(states, actions, torch.zeros(2, dtype=torch.float64), states)  # a new, rewardless self-loop
    if pooled:  # the backups read the pass's ρ, as they read its corrections, though the counts moved it
        assert not torch.equal(novelty_rate(agent.stats.counts), rho_pass)
    agent._backup(states, actions, 5)
    changed = (agent.q != q).nonzero()
    assert len(changed) > 0
    assert ((changed[:, 0] == 0) | (changed[:, 0] == 1)).all()
    for run, k, st, a in changed.tolist():  # with state_log, N_s moved every tried action's bonus at s
        assert k > 5 and st == states[run] and (a == actions[run] or state_log)
    if state_log:
        assert {a for run, _, _, a in changed.tolist() if run == 0} == set(
            agent.stats.visits[0, states[0]].nonzero().squeeze(1).tolist())
    # one entry by hand: min(H-k, r̂ + e^α·b_k(n) + P̂·V_{k+1}) with the table's V before the backup
    from rlpfn.model import bonus_terms

    s0, a0, k = states[0], actions[0], min(9, H - 3)  # V_{k+1} not yet 0
    counts = agent.stats.counts[0, s0, a0]
    n = counts.sum()
    new = agent.stats.visits[0].sum(-1) == 0
    if novelty:
        rho = float(rho_pass[0]) if pooled else 1.0
        assert new.any() and agent.nu[0] == novelty * rho and rho > 0
    pv = (counts / n) @ v[0, :, k + 1]
    n1 = float(rho_pass[0]) if pooled else float((counts == 1).sum())
    w = min(1.0, novelty * n1 / float(n))  # 0 without novelty
    expected = pv + (w * (v[0, new, k + 1].mean() - pv) if w else 0.0)
    if kappa:
        row = agent.row_index[0, s0, a0]
        assert row >= 0 and n < 6  # the pair has a predicted row from the last pass
        expected = expected + kappa / (n + kappa) * (agent.successor_rows[row] @ v[0, :, k + 1] - pv)
    if variance:  # the new self-loop gives the pair two successors of different values
        spread = float((counts / n) @ v[0, :, k + 1] ** 2 - pv**2)
        assert spread > 1e-3
        expected = expected + variance * (spread / float(n)) ** 0.5
    flat, per_step = bonus_terms(n, 1.0, agent.model.cfg, agent.stats.visits[0, s0].sum())  # N_s: with state_log
    if noise:  # the pass's multiplier, though the counts moved σ̂ since
        per_step = per_step * float(agent.h_term_multiplier[0])
    if state_log:
        L = 1 + math.log(float(agent.stats.visits[0, s0].sum()))
        assert L > 2 and flat == pytest.approx(agent.model.cfg.ucb_scale * (L / float(n)) ** 0.5, rel=1e-12)
    by_hand = min(H - k, float(agent.stats.reward_sum[0, s0, a0] / n + agent.corrections[0, s0, a0, 0].exp()
                               * (flat + per_step * (H - k)) + expected))
    assert agent.q[0, k, s0, a0].item() == pytest.approx(by_hand, abs=1e-12)
    for b in agent.stats.visits[0, s0].nonzero().squeeze(1).tolist() if state_log else []:  # the state's others
        nb = agent.stats.visits[0, s0, b]
        flat, per_step = bonus_terms(nb, 1.0, agent.model.cfg, agent.stats.visits[0, s0].sum())
        by_hand = min(H - k, float(agent.stats.reward_sum[0, s0, b] / nb + agent.corrections[0, s0, b, 0].exp()
                                   * (flat + per_step * (H - k)) + agent.stats.counts[0, s0, b] / nb @ v[0, :, k + 1]))
        assert agent.q[0, k, s0, b].item() == pytest.approx(by_hand, abs=1e-12)


@pytest.mark.parametrize("novelty,kappa,state_log,noise,variance", [
    (0.0, 0.0, False, 0.0, 0.0), (0.3, 0.5, False, 0.0, 0.0), (0.0, 0.0, True, 0.0, 0.0), (0.0, 0.0, False, 5.0, 0.0),
    (0.0, 0.0, False, 0.0, 0.3)])
def test_local_backup_on_tensors_equals_the_numpy_one(novelty, kappa, state_log, noise, variance):
    """The backup a GPU rollout runs (torch tensors, rlpfn/es.py's rollouts) is the CPU's numpy backup: to the bit as
    shipped; with ν, κ, the state's log or the noise multiplier, up to round-off (the two libraries sum in different
    orders)."""
    from rlpfn.agents.rlpfn import RlpfnAgent, local_backup

    mdp = make_benchmark("deepsea" if novelty else "sixarms")
    agent = RlpfnAgent.with_model(_perturbed_model(planner_novelty=novelty, transition_head=kappa > 0,
                                                   tried_below=6 if kappa else 0, planner_tried_strength=kappa,
                                                   planner_state_log=state_log, planner_noise_h_term=noise,
                                                   planner_variance=variance),
                                  refresh="local")
    run_online(mdp, agent, 3, 4, seed=1)
    gen = torch.Generator().manual_seed(0)
    states = torch.randint(mdp.n_states, (4,), generator=gen)
    actions = torch.randint(mdp.n_actions, (4,), generator=gen)
    agent.stats.add(states, actions, torch.rand(4, dtype=torch.float64, generator=gen), states)
    st, cfg = agent.stats, agent.model.cfg
    before = agent.q.clone()
    tables = [x.clone() for x in (agent.q, agent.v, agent.corrections)]
    args = (agent.rows, states, actions, *tables, st.counts, st.reward_sum, agent.remaining)
    if noise:  # a multiplier per run, as a pass after noisy rewards leaves it
        agent.h_term_multiplier = 1 + torch.rand(4, 1, dtype=torch.float64, generator=gen)
    extra = ((agent.v_new, agent.nu) if novelty else None, (agent.row_index, agent.successor_rows) if kappa else None,
             agent.h_term_multiplier if noise else None)
    local_backup(torch, 2, mdp.horizon, *args, cfg, *extra)
    agent._backup(states, actions, 2)  # numpy, in place on the agent's tables
    assert not torch.equal(before, agent.q)  # the new transitions moved the table
    if novelty or kappa or state_log or noise or variance:
        torch.testing.assert_close(tables[0], agent.q, atol=1e-12, rtol=0)
        torch.testing.assert_close(tables[1], agent.v, atol=1e-12, rtol=0)
    else:
        assert torch.equal(tables[0], agent.q) and torch.equal(tables[1], agent.v)
