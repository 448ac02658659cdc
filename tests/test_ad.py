"""Algorithm Distillation: causal masking, label-free inputs, the training windows, pretraining and resume with
the shared trainer, the `ad` agent."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from rlpfn.ad.data import ADDataConfig, ad_batch
from rlpfn.ad.model import ADConfig, ADModel, Tokens, random_labels
from rlpfn.agents import make_agent
from rlpfn.benchmarks import make_benchmark
from rlpfn.checkpoint import CheckpointError, load
from rlpfn.config import ConfigError
from rlpfn.resources import data_file
from rlpfn.traces import run_trace
from rlpfn.train import load_config

ROOT = Path(__file__).resolve().parent.parent
CFG = ADConfig(d_model=16, n_layers=2, n_heads=2, label_dim=8, window=12)


def tokens(B=3, T=10, S=5, A=3, H=4, seed=0) -> Tokens:
    g = torch.Generator().manual_seed(seed)
    prev_s = torch.randint(0, S, (B, T), generator=g)
    prev_s[:, 0] = -1
    prev_a = torch.where(prev_s >= 0, torch.randint(0, A, (B, T), generator=g), -1)
    return Tokens(prev_s, prev_a, torch.rand(B, T, generator=g), torch.randint(0, S, (B, T), generator=g),
                  torch.arange(T).expand(B, T) % H, torch.arange(T).expand(B, T) // H, H, random_labels(B, S, 8, g), random_labels(B, A, 8, g))


def test_the_prediction_at_t_does_not_change_when_later_tokens_change():
    torch.manual_seed(0)
    model = ADModel(CFG).eval()
    tok = tokens()
    before = model(tok)
    t = 6
    for name in ("prev_state", "state", "prev_action"):
        getattr(tok, name)[:, t + 1:] = 0
    tok.prev_reward[:, t + 1:] = 0.77
    after = model(tok)
    torch.testing.assert_close(after[:, :t + 1], before[:, :t + 1])
    assert not torch.allclose(after[:, t + 1:], before[:, t + 1:])  # and later positions do read them
    tok.state[:, t] = (tok.state[:, t] + 1) % 5
    assert not torch.allclose(model(tok)[:, t], after[:, t])


def test_relabelling_states_and_actions_permutes_the_output_with_them():
    """Labels carry no meaning: renaming states and actions (with their label vectors) renames the output."""
    torch.manual_seed(1)
    model = ADModel(CFG).eval()
    tok = tokens()
    ps, pa = torch.tensor([3, 0, 4, 1, 2]), torch.tensor([2, 0, 1])  # new label of old state i: ps[i]
    inv_s, inv_a = torch.argsort(ps), torch.argsort(pa)
    rel = lambda x, p: torch.where(x >= 0, p[x.clamp_min(0)], x)  # noqa: E731
    renamed = Tokens(rel(tok.prev_state, ps), rel(tok.prev_action, pa), tok.prev_reward, rel(tok.state, ps), tok.step,
                     tok.episode, tok.horizon, tok.state_labels[:, inv_s], tok.action_labels[:, inv_a])
    torch.testing.assert_close(model(renamed)[..., pa], model(tok), atol=1e-5, rtol=1e-5)


def test_training_windows_are_seeded_and_hold_the_source_actions_or_the_optimal_policy():
    cfg = ADDataConfig(prior="tiny", val_prior="tiny", episodes=3, mdps=2, windows_per_mdp=3)
    a, b = ad_batch(cfg, 8, 4, seed=5), ad_batch(cfg, 8, 4, seed=5)
    torch.testing.assert_close(a.tokens.state, b.tokens.state)
    torch.testing.assert_close(a.target, b.target)
    tok = a.tokens
    assert tok.state.shape == (6, 8) and a.target.shape[:2] == (6, 8)
    assert torch.equal(a.target.sum(-1), torch.ones(6, 8)) and set(a.target.unique().tolist()) <= {0.0, 1.0}
    # inside a window, token t's previous transition is token t-1's decision
    has = tok.prev_action[:, 1:] >= 0
    assert torch.equal(tok.prev_action[:, 1:][has], a.target[:, :-1].argmax(-1)[has])
    assert torch.equal(tok.prev_state[:, 1:][has], tok.state[:, :-1][has])
    assert torch.equal(tok.step[:, 1:], (tok.step[:, :-1] + 1) % tok.horizon)
    opt = ad_batch(ADDataConfig(prior="tiny", val_prior="tiny", episodes=3, mdps=2, windows_per_mdp=3,
                                target="optimal"), 8, 4, seed=5)
    torch.testing.assert_close(opt.target.sum(-1), torch.ones(6, 8))


def test_the_annealed_source_fades_from_random_play_to_its_base():
    """AD^ε's source: in episode k a fraction max(0, 1 - k/K) of the actions are uniform random, the rest the
    base's; here the base is the oracle, so a non-optimal action marks the noise."""
    from rlpfn.agents import Annealed

    mdp = make_benchmark("riverswim")
    trace = run_trace(mdp, Annealed(make_agent("optimal"), episodes=4), 6, seed=0, n_runs=400)
    H, A = mdp.horizon, mdp.n_actions
    q = mdp.solution.Q[0][torch.arange(trace.length) % H, trace.s]  # [N,T,A]
    optimal = q.gather(-1, trace.a[..., None]).squeeze(-1) >= q.amax(-1) - 1e-9
    off = 1.0 - optimal.float().view(400, 6, H).mean((0, 2))  # per episode: random actions that missed π*
    expected = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0, 0.0]) * (A - 1) / A
    torch.testing.assert_close(off, expected.float(), atol=0.03, rtol=0)
    again = run_trace(mdp, Annealed(make_agent("optimal"), episodes=4), 6, seed=0, n_runs=400)
    assert torch.equal(again.a, trace.a)  # seeded


def test_ad_data_with_noise_accepts_the_oracle_as_its_source():
    with pytest.raises(ConfigError, match="'optimal' with data.noise_episodes"):
        load_config("ad-tiny", "--data.source=optimal")
    assert load_config("ad-tiny", "--data.source=optimal", "--data.noise_episodes=2").data.source == "optimal"
    with pytest.raises(ConfigError, match="'intended' needs data.noise_episodes > 0"):
        load_config("ad-tiny", "--data.target=intended")
    cfg = ADDataConfig(prior="tiny", val_prior="tiny", episodes=3, mdps=2, windows_per_mdp=3, noise_episodes=2)
    a = ad_batch(cfg, 8, 4, seed=5)
    assert not torch.equal(a.target, ad_batch(ADDataConfig(prior="tiny", val_prior="tiny", episodes=3, mdps=2,
                                                           windows_per_mdp=3), 8, 4, seed=5).target)


def test_intended_targets_are_the_sources_choices_under_the_noise():
    """DART-style labels: on a noisy history of the oracle, every `intended` target is an optimal action at its
    (h, s), while the taken actions (`source`) are not; the tokens are the same."""
    common = dict(prior="tiny", val_prior="tiny", source="optimal", noise_episodes=3, episodes=4, mdps=4,
                  windows_per_mdp=2)
    taken, intended = (ad_batch(ADDataConfig(target=t, **common), 8, 4, seed=3) for t in ("source", "intended"))
    for key in ("state", "prev_action", "prev_reward"):  # one history: the taken actions, labelled two ways
        torch.testing.assert_close(getattr(taken.tokens, key), getattr(intended.tokens, key))
    optimal = ad_batch(ADDataConfig(target="optimal", **common), 8, 4, seed=3).target > 0  # [B,T,A] the tied best
    chose = lambda b: optimal.gather(-1, b.target.argmax(-1, keepdim=True)).squeeze(-1)  # noqa: E731
    assert chose(intended).all()
    assert not chose(taken).all()


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="data.source: 'rlpfn' is not a source algorithm"):
        load_config("ad-tiny", "--data.source=rlpfn")
    with pytest.raises(ConfigError, match="model.window"):
        load_config("ad-tiny", "--model.window=0")
    with pytest.raises(ConfigError, match="loss"):  # a section of the other kind
        load_config("ad-tiny", "--loss.q_weight=1")


def test_the_kind_comes_from_the_last_config_that_sets_it_and_ad_runs_have_their_own_folder(tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text("trainer: {max_steps: 3}\n")  # an override file without a kind keeps the first file's
    cfg = load_config("ad-tiny", f"--config={over}")
    assert cfg.kind == "ad" and cfg.trainer.max_steps == 3
    bare = tmp_path / "bare.yaml"
    bare.write_text("kind: ad\n")
    assert load_config(bare).trainer.out == "runs/ad" and load_config("tiny").trainer.out == "runs/tiny"
    with pytest.raises(ConfigError, match="kind 'sequence' is not a model kind"):
        load_config(bare, "--kind=sequence")


def test_resuming_a_run_of_the_other_kind_is_refused(tmp_path):
    from rlpfn.train import resume_step

    (tmp_path / "progress.json").write_text('{"global_step": 4}')  # written before AD: an rlpfn run
    assert resume_step(tmp_path, "rlpfn") == 4
    with pytest.raises(ConfigError, match="holds a run of an 'rlpfn' model and this config trains 'ad'"):
        resume_step(tmp_path, "ad")


def test_pretrain_resume_and_the_agent_on_a_tiny_mdp(tmp_path):
    doc = yaml.safe_load(data_file("configs", "ad-tiny.yaml").read_text())
    doc["trainer"]["out"] = str(tmp_path / "run")
    cfg = tmp_path / "ad.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    cli = lambda *a: subprocess.run([sys.executable, "-m", "rlpfn.cli", "pretrain", "--config", str(cfg), *a],  # noqa: E731
                                    capture_output=True, text=True, cwd=ROOT)
    res = cli()
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    res = cli("--resume", "--trainer.max_steps", "6")
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "progress.json").read_text())["global_step"] == 6
    meta = json.loads((run / "model.json").read_text())
    assert meta["architecture"] == "ad" and meta["training"]["steps"] == 6 and meta["training"]["config"]["kind"] == "ad"
    steps = {int(r.split(",")[1]) for r in (run / "metrics.csv").read_text().splitlines()[1:]}
    assert {0, 5} <= steps
    with pytest.raises(CheckpointError, match="an 'ad' model, not an 'rlpfn' one"):
        load(run / "model", "rlpfn")
    # the agent plays a tiny MDP past its window (riverswim: H = 20 > window 16), the same seed alike
    mdp = make_benchmark("riverswim")
    one = run_trace(mdp, make_agent("ad", checkpoint=str(run / "model")), 3, seed=3, n_runs=2)
    two = run_trace(mdp, make_agent("ad", checkpoint=str(run / "model")), 3, seed=3, n_runs=2)
    assert one.a.shape == (2, 60) and torch.equal(one.a, two.a)
    assert ((one.a >= 0) & (one.a < mdp.n_actions)).all()
    other = run_trace(mdp, make_agent("ad", checkpoint=str(run / "model")), 3, seed=4, n_runs=2)
    assert not torch.equal(one.a, other.a)


def test_the_report_refuses_an_unwritable_output_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    res = subprocess.run([sys.executable, "-m", "rlpfn.experiments.ad_report", "--out", str(afile)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2 and "exists and is not a directory" in res.stderr and afile.read_text() == ""


def test_the_fit_probe_explains_itself_and_names_a_checkpoint_it_cannot_use(capsys):
    from rlpfn.experiments.ad_fit import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "CKPT" in capsys.readouterr().out
    assert main(["no/such/run"]) == 2 and "no/such/run.json: no such checkpoint" in capsys.readouterr().err
    assert main(["rlpfn-v2"]) == 2 and "not an 'ad' one" in capsys.readouterr().err


@pytest.mark.parametrize("episode_feature", [False, True])
def test_the_agent_builds_the_tokens_training_shows_it(episode_feature):
    """Fed a source's trace step by step, the agent scores each decision exactly as the model scores the training
    window cut from that trace at its start, past several episodes and past the window (then the latest tokens)."""
    from rlpfn.ad.data import tokens_of
    from rlpfn.agents import ADAgent, AgentSpec

    torch.manual_seed(2)
    model = ADModel(ADConfig(d_model=16, n_layers=2, n_heads=2, label_dim=8, window=12,
                             episode_feature=episode_feature)).eval()
    mdp = make_benchmark("riverswim")  # H = 20: the window holds less than one episode
    trace = run_trace(mdp, make_agent("ucbvi"), 3, seed=1, n_runs=3)
    agent = ADAgent.with_model(model, sample=False)
    agent.reset(AgentSpec.of(mdp), 3, seed=0)
    W, H = model.cfg.window, mdp.horizon
    for t in range(trace.length):
        scored = {}
        original = model.forward
        model.forward = lambda tok: scored.setdefault("x", original(tok))  # noqa: E731
        agent.act(trace.s[:, t], t % H)
        model.forward = original
        start = max(0, t + 1 - W)
        window = tokens_of(trace, torch.arange(3), torch.full((3,), start), t + 1 - start, agent.labels)
        with torch.no_grad():
            expected = model(window)[:, -1]
        torch.testing.assert_close(scored["x"][:, -1], expected)
        agent.observe(trace.s[:, t], trace.a[:, t], trace.r[:, t], trace.s_next[:, t], t % H)
    assert torch.equal(window.episode[:, -1], torch.full((3,), 2))  # the third episode's last decision
    # set directly from the same history (as `rlpfn latency` does), run 0 holds the same window and counters
    direct = ADAgent.with_model(model, sample=False)
    direct.reset(AgentSpec.of(mdp), 1, seed=0)
    direct.load_history(trace.s[0], trace.a[0], trace.r[0])
    assert torch.equal(direct.buf[:, 0], agent.buf[:, 0])
    assert (direct.filled, direct.decisions) == (agent.filled, agent.decisions) == (W, trace.length)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(direct.prev, agent.prev))


def test_an_ad_run_refuses_a_warm_start():
    with pytest.raises(ConfigError, match="trainer.init_from and optim.new_only warm-start an rlpfn model"):
        load_config("ad-tiny", "--trainer.init_from=rlpfn-v2")
