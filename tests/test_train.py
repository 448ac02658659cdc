"""Pretraining on the tiny config: logs, checkpoints, export, SIGKILL + --resume, DDP on CPU (gloo), config errors."""
import csv
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlpfn.agents import make_agent
from rlpfn.checkpoint import load
from rlpfn.prior import get_batch
from rlpfn.train import ConfigError, LossConfig, load_config, pretrain_loss
from rlpfn.model import RLPFN, ModelConfig

from rlpfn.resources import data_file

ROOT = Path(__file__).resolve().parent.parent
TINY = data_file("configs", "tiny.yaml")


def tiny_config(tmp_path, **trainer):
    doc = yaml.safe_load(TINY.read_text())
    doc["trainer"].update(out=str(tmp_path / "run"), export=str(tmp_path / "model"), **trainer)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def rlpfn_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlpfn.cli", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def metrics(run: Path) -> list[dict]:
    return list(csv.DictReader((run / "metrics.csv").open()))


def test_pretrain_tiny_logs_validates_checkpoints_and_exports(tmp_path):
    cfg = tiny_config(tmp_path)
    res = rlpfn_cli("pretrain", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    rows = metrics(run)
    assert any(r["train/loss"] for r in rows) and any(r["train/dagger_loss"] for r in rows)
    val = [r for r in rows if r.get("val/regret")]
    assert val and float(val[0]["val/regret_ucbvi"]) >= 0
    assert json.loads((run / "progress.json").read_text())["global_step"] == 6
    assert load(run / "model").meta["training"]["steps"] == 6  # the model is always under trainer.out too
    model = load(tmp_path / "model")
    assert model.meta["training"]["steps"] == 6 and model.meta["prior"]["name"] == "tiny"
    assert model.cfg.d_model == 16
    # a second run into the same folder must not silently overwrite it
    again = rlpfn_cli("pretrain", "--config", str(cfg))
    assert again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_pretrain_on_regret_alone_draws_no_prior_batches_and_logs_the_rollout_regret(tmp_path):
    cfg = tiny_config(tmp_path)
    res = rlpfn_cli("pretrain", "--config", str(cfg), "--regret.weight", "1", "--regret.mdps", "2", "--regret.runs",
                    "2", "--regret.episodes", "3", "--regret.grad_episodes", "2", "--regret.critic", "true",
                    *[f"--loss.{k}=0" for k in (
                        "policy_weight", "q_weight", "quantile_weight", "anchor_weight")])
    assert res.returncode == 0, res.stderr
    rows = metrics(tmp_path / "run")
    assert all(float(r["train/regret"]) > 0 and float(r["train/critic_mse"]) >= 0 for r in rows if r.get("train/loss"))
    assert not any(k in rows[0] for k in ("train/pinball", "train/dagger_loss"))  # no supervised term was computed
    assert any(r.get("val/regret") for r in rows)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pretrain_by_evolution_strategies_alone_moves_only_the_acting_rows_of_the_head(tmp_path, workers):
    cfg = tiny_config(tmp_path)
    res = rlpfn_cli("pretrain", "--config", str(cfg), "--es.weight", "1", "--es.mdps", "2", "--es.pairs", "2",
                    "--es.episodes", "3", "--es.workers", workers, "--optim.weight_decay", "0",
                    *[f"--loss.{k}=0" for k in ("policy_weight", "q_weight", "quantile_weight", "anchor_weight")])
    assert res.returncode == 0, res.stderr
    rows = metrics(tmp_path / "run")
    assert all(float(r["train/es_regret"]) >= 0 for r in rows if r.get("train/loss"))
    model = load(tmp_path / "run" / "model")
    head = torch.cat([model.head.weight, model.head.bias.unsqueeze(1)], 1)
    assert head[[0, 2]].abs().sum() > 0 and head[[1, 3]].abs().sum() == 0  # α and u moved; δ and the Q head not
    # greedy acting never reads the temperature
    assert float(model.log_temperature.detach().exp()) == pytest.approx(load_config(cfg).model.init_temperature, rel=1e-6)


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    """Optimiser options given on the command line reach the optimiser's saved state: they must be plain floats
    there, or the resume cannot unpickle it (it did not, until they were)."""
    cfg = tiny_config(tmp_path, max_steps=400, checkpoint_every=5, val_every=1000)
    run = tmp_path / "run"
    optim = ["--optim.lr", "1e-3", "--optim.weight_decay", "0.02"]
    proc = subprocess.Popen([sys.executable, "-m", "rlpfn.cli", "pretrain", "--config", str(cfg), *optim], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "progress.json").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((run / "progress.json").read_text())["global_step"]
    assert 0 < killed_at < 400
    res = rlpfn_cli("pretrain", "--config", str(cfg), "--resume", "--trainer.max_steps", str(killed_at + 10), *optim)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "progress.json").read_text())["global_step"] == killed_at + 10
    steps = sorted({int(r["step"]) for r in metrics(run) if r["train/loss"]})
    assert steps[-1] >= killed_at + 5  # logging went on past the kill
    assert steps[0] == 0 and len([t for t in steps if t < killed_at]) >= killed_at - 2  # and kept what came before


def test_resume_without_a_run_is_a_one_line_error(tmp_path, capsys):
    from rlpfn.cli import main

    assert main(["pretrain", "--config", str(tiny_config(tmp_path)), "--resume"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nothing to resume" in err


def test_resume_refuses_a_model_its_weights_do_not_fit_and_says_other_changed_options(tmp_path, capsys):
    """A run resumed under another config (the README's `--resume` without the run's `--config`) used to end in a
    state-dict traceback. Now: one line before anything is written. Another loss goes on, said (docs/ fine-tune
    so); how long and where it runs, and its validation, change quietly."""
    from rlpfn.cli import main

    cfg = tiny_config(tmp_path, max_steps=2)
    run = tmp_path / "run"
    assert rlpfn_cli("pretrain", "--config", str(cfg)).returncode == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["pretrain", "--config", str(cfg), "--resume", "--model.d_model", "32"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "saved weights do not fit" in err
    assert "model.d_model 16 (this command: 32)" in err and "--trainer.init_from" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing written
    res = rlpfn_cli("pretrain", "--config", str(cfg), "--resume", "--trainer.max_steps", "3", "--loss.q_weight", "0.5",
                    "--data.val_episodes", "2")
    assert res.returncode == 0, res.stderr
    assert "loss.q_weight: 1.0 -> 0.5" in res.stderr and "val_episodes" not in res.stderr
    assert json.loads((run / "progress.json").read_text())["global_step"] == 3
    (run / "last.ckpt").write_bytes(b"not a checkpoint")
    assert main(["pretrain", "--config", str(cfg), "--resume", "--trainer.max_steps", "4"]) == 2
    assert "last.ckpt: unreadable resume state" in capsys.readouterr().err


def test_resume_refuses_to_freeze_other_parameters(tmp_path):
    """optim.new_only (with trainer.init_from) sets which parameters the saved optimiser state belongs to."""
    from rlpfn.train import _lightning_module, check_same_run, parse_pretrain_args

    cfg, _ = parse_pretrain_args(["--config", str(tiny_config(tmp_path))])
    module = _lightning_module(cfg)()
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"state_dict": module.state_dict()}, run / "last.ckpt")
    config = cfg.to_dict()
    (run / "model.json").write_text(json.dumps({"training": {"config": config}}))
    assert check_same_run(run, config, module) == []
    frozen = {**config, "optim": {**config["optim"], "new_only": True}}
    with pytest.raises(ConfigError, match="froze other parameters; it began with optim.new_only False"):
        check_same_run(run, frozen, module)
    lr = {**config, "optim": {**config["optim"], "lr": 0.5}}
    assert check_same_run(run, lr, module) == [f"optim.lr: {config['optim']['lr']!r} -> 0.5"]


def test_ddp_on_two_cpu_processes(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=4, val_every=2)
    res = rlpfn_cli("pretrain", "--config", str(cfg), "--trainer.devices", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "run" / "progress.json").read_text())["global_step"] == 4
    assert load(tmp_path / "model").meta["training"]["config"]["trainer"]["devices"] == 2


@pytest.mark.parametrize("patch,message", [
    ({"trainer": {"max_stepz": 3}}, "trainer.max_stepz: unknown key"),
    ({"optim": {"lr": "fast"}}, "optim.lr: Not of type PositiveFloat.*'fast'"),
    ({"loss": {"policy_target": "greedy"}}, "loss.policy_target: Expected .*Got value: greedy"),
    ({"trainer": {"accelerator": "tpu"}}, "trainer.accelerator: Expected .*Got value: tpu"),
    ({"trainer": {"threads": 0}}, "trainer.threads: Not of type PositiveInt"),
    ({"model": {"d_model": -16}}, "model.d_model: Not of type PositiveInt"),
    ({"model": {"n_heads": 5}}, "n_heads = 5 does not divide d_model = 16"),
    ({"model": {"init_temperature": 0}}, "model.init_temperature: Not of type PositiveFloat"),
    ({"model": {"planner_h_term_scale": float("inf")}}, ".*model.planner_h_term_scale must be finite, got inf"),
    ({"model": {"ucb_scale": float("inf")}}, ".*model.ucb_scale must be finite, got inf"),
    ({"model": {"planner_novelty": float("inf")}}, ".*model.planner_novelty must be finite, got inf"),
    ({"model": {"planner_novelty": -1.0}}, "model.planner_novelty: Not of type NonNegativeFloat"),
    ({"model": {"tried_below": 4}}, ".*model.tried_below = 4 trains the transition head at tried pairs, but"),
    ({"model": {"transition_head": True, "planner_tried_strength": 1.0}},
     ".*planner_tried_strength = 1.0 plans with the head's rows at tried pairs, but model.tried_below is 0"),
    ({"model": {"unvisited_logit": float("nan")}}, ".*model.unvisited_logit must be finite, got nan"),
    ({"data": {"prior": "nonexistent"}}, "data.prior: nonexistent: no such prior spec"),
    ({"modle": {"d_model": 8}}, "modle: unknown section"),
    ({"regret": {"runs": 1}}, ".*regret.runs must be >= 2"),
    ({"regret": {"episodes": 2, "grad_episodes": 3}}, ".*regret.grad_episodes = 3 exceeds regret.episodes = 2"),
    ({"loss": {"policy_weight": 0, "q_weight": 0, "quantile_weight": 0, "anchor_weight": 0}},
     "loss: every weight is 0, and regret.weight and es.weight are 0: nothing to train"),
    ({"es": {"sigma": 0}}, "es.sigma: Not of type PositiveFloat"),
    ({"es": {"sigma": float("inf")}}, ".*es.sigma must be finite, got inf"),
    ({"trainer": {"accelerator": "gpu"}, "es": {"workers": 2}}, ".*es.workers = 2 runs the perturbed agents in CPU"),
    ({"loss": {"transition_weight": 1.0}}, ".*loss.transition_weight = 1.0 trains the transition head, but "
                                           "model.transition_head is false"),
    ({"loss": {"transition_value_weight": 2.0}}, ".*loss.transition_value_weight = 2.0 trains the transition head"),
    ({"loss": {"transition_weight": float("inf")}}, ".*loss.transition_weight must be finite, got inf"),
    ({"loss": {"transition_value_quantile": 1.0}}, "loss.transition_value_quantile: .*OpenUnitInterval"),
    ({"model": {"transition_head": True}, "loss": {"reward_weight": 1.0}},
     ".*loss.reward_weight = 1.0 trains the reward head, but model.reward_head is false"),
    ({"optim": {"new_only": True}}, ".*optim.new_only trains only the parameters trainer.init_from lacks, but "
                                    "trainer.init_from is null"),
    ({"trainer": {"init_from": "nonexistent"}}, ".*trainer.init_from: .*nonexistent"),
    ({"trainer": {"init_from": "rlpfn-v2"}, "optim": {"new_only": True}, "es": {"weight": 1.0}},
     ".*optim.new_only freezes every loaded parameter, and regret.weight = 0.0, es.weight = 1.0"),
])
def test_config_errors_name_the_key(tmp_path, patch, message):
    doc = yaml.safe_load(TINY.read_text())
    for section, values in patch.items():
        doc.setdefault(section, {}).update(values)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=f"^{path}: {message}"):
        load_config(path)


def test_loss_targets_are_config_and_all_parts_train():
    batch = get_batch("tiny", 8, seed=1)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    for target in ("optimal", "boltzmann"):
        parts = pretrain_loss(model, batch, LossConfig(policy_target=target), torch.Generator().manual_seed(0))
        parts["loss"].backward()
        assert all(torch.isfinite(v) for v in parts.values())
        assert model.head.weight.grad.abs().sum() > 0
        model.zero_grad()


def test_transition_loss_is_the_cross_entropy_at_untried_pairs_of_tried_states_and_training_lowers_it():
    from rlpfn.train import transition_loss

    counts = torch.zeros(1, 3, 2, 3)
    counts[0, 0, 0, 1] = 2  # state 0: action 0 tried, action 1 not; states 1, 2: nothing tried
    P = torch.softmax(torch.randn(1, 3, 2, 3, generator=torch.Generator().manual_seed(0)), -1)
    log_p = torch.log_softmax(torch.randn(1, 3, 2, 3, dtype=torch.float64), -1)
    torch.testing.assert_close(transition_loss(log_p, counts, P), -(P[0, 0, 1].double() * log_p[0, 0, 1]).sum())
    assert transition_loss(log_p, torch.zeros_like(counts), P) == 0
    # with tried_below 3, the tried pair of 2 visits counts too; with 2 it does not
    both = (-(P[0, 0, 1].double() * log_p[0, 0, 1]).sum() - (P[0, 0, 0].double() * log_p[0, 0, 0]).sum()) / 2
    torch.testing.assert_close(transition_loss(log_p, counts, P, tried_below=3), both)
    torch.testing.assert_close(transition_loss(log_p, counts, P, tried_below=2), transition_loss(log_p, counts, P))

    torch.manual_seed(0)
    batch = get_batch("tiny", 8, seed=1)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True))
    cfg = LossConfig(policy_weight=0, current_state_weight=0, q_weight=0, anchor_weight=0, quantile_weight=0,
                     transition_weight=1)
    first = pretrain_loss(model, batch, cfg)["transition_ce"]
    last = trained_briefly(model, batch, cfg)
    assert "transition_value" not in last  # its term is built only when weighted
    assert first > 0 and last["transition_ce"] < 0.8 * first
    assert last["transition_relative_ce"] == last["transition_ce"] / math.log(batch.P.shape[-1])
    assert model.head.weight.abs().sum() == 0  # the other heads have no loss: the planner is still UCB-VI's


def test_through_the_blend_the_head_is_scored_as_the_planner_uses_it():
    """loss.transition_blend: at a tried pair the cross-entropy is that of (N·P̂ + κ·P̃)/(N + κ); at an untried one
    it is P̃'s, as without the blend; and the config refuses the blend when the planner has none."""
    from rlpfn.train import PretrainConfig, transition_loss

    counts = torch.zeros(1, 3, 2, 3)
    counts[0, 0, 0, 1] = 2  # state 0: action 0 tried twice (to state 1), action 1 not
    P = torch.softmax(torch.randn(1, 3, 2, 3, generator=torch.Generator().manual_seed(0)), -1).double()
    log_p = torch.log_softmax(torch.randn(1, 3, 2, 3, dtype=torch.float64), -1).requires_grad_()
    blend = (counts[0, 0, 0].double() + 0.5 * log_p[0, 0, 0].exp()) / 2.5
    want = (-(P[0, 0, 1] * log_p[0, 0, 1]).sum() - (P[0, 0, 0] * blend.log()).sum()) / 2
    got = transition_loss(log_p, counts, P, tried_below=3, kappa=0.5)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(transition_loss(log_p, counts, P, kappa=0.5), transition_loss(log_p, counts, P))
    got.backward()
    assert log_p.grad[0, 0, 0].abs().sum() > 0 and log_p.grad[0, 1].abs().sum() == 0
    # pretraining's loss takes κ from the planner when (and only when) the blend is on
    torch.manual_seed(0)
    batch = get_batch("tiny", 8, seed=1)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True, tried_below=6,
                              planner_tried_strength=2.0))
    log_p_next = model(batch.context).log_p_next
    counts, P_true = batch.context.stats.counts, batch.P[batch.mdp]
    for blend_on, k in ((True, 2.0), (False, 0.0)):
        cfg = LossConfig(policy_weight=0, current_state_weight=0, q_weight=0, anchor_weight=0, quantile_weight=0,
                         transition_weight=1, transition_blend=blend_on, drop_state_prob=0)
        torch.testing.assert_close(pretrain_loss(model, batch, cfg)["transition_ce"],
                                   transition_loss(log_p_next, counts, P_true, 6, k))
    assert not torch.allclose(transition_loss(log_p_next, counts, P_true, 6, 2.0),
                              transition_loss(log_p_next, counts, P_true, 6, 0.0))
    with pytest.raises(ValueError, match="planner_tried_strength is 0"):
        PretrainConfig(model=ModelConfig(transition_head=True, tried_below=3),
                       loss=LossConfig(transition_blend=True, transition_weight=1))
    with pytest.raises(ValueError, match="transition_weight is 0"):
        PretrainConfig(model=ModelConfig(transition_head=True, tried_below=3, planner_tried_strength=1.0),
                       loss=LossConfig(transition_blend=True))
    with pytest.raises(ValueError, match="transition_target must be p or support, got 'P'"):
        LossConfig(transition_target="P")
    PretrainConfig(model=ModelConfig(transition_head=True, tried_below=3, planner_tried_strength=1.0),
                   loss=LossConfig(transition_blend=True, transition_weight=1))


def test_the_support_target_is_uniform_over_where_a_pair_can_lead_and_reaches_the_head():
    from rlpfn.train import support_rows

    P = torch.tensor([[0.7, 0.3, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(support_rows(P), torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 1.0, 0]], dtype=torch.float64))
    torch.manual_seed(0)
    batch = get_batch("tiny", 8, seed=1)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True))
    from rlpfn.train import transition_loss

    log_p = model(batch.context).log_p_next
    for target, rows in (("p", batch.P[batch.mdp]), ("support", support_rows(batch.P[batch.mdp]))):
        cfg = LossConfig(policy_weight=0, current_state_weight=0, q_weight=0, anchor_weight=0, quantile_weight=0,
                         transition_weight=1, transition_target=target, drop_state_prob=0)
        want = transition_loss(log_p, batch.context.stats.counts, rows)
        torch.testing.assert_close(pretrain_loss(model, batch, cfg)["transition_ce"], want)
    assert not torch.allclose(transition_loss(log_p, batch.context.stats.counts, batch.P[batch.mdp]), want)


def test_transition_value_loss_is_the_pinball_of_the_predicted_value_and_its_quantile_favours_optimism():
    from rlpfn.train import transition_value_loss

    counts = torch.zeros(1, 3, 2, 3)
    counts[0, 0, 0, 1] = 2  # state 0: action 1 untried, the one pair the loss reads
    P = torch.zeros(1, 3, 2, 3)
    P[0, :, :, 2] = 1.0  # every pair leads to state 2, the valuable one
    v = torch.tensor([[0.0, 0.0, 4.0]])
    rem = torch.full((1, 1, 1), 8.0, dtype=torch.float64)
    uniform = torch.full((1, 3, 2, 3), -math.log(3), dtype=torch.float64)
    # P·v = 4, P̃·v = 4/3: undervalued by 8/3, i.e. 1/3 per remaining step, weighted by the quantile
    torch.testing.assert_close(transition_value_loss(uniform, counts, P, v, rem, 0.75),
                               torch.tensor(0.25, dtype=torch.float64))
    torch.testing.assert_close(transition_value_loss(P.double().clamp_min(1e-30).log(), counts, P, v, rem, 0.5),
                               torch.tensor(0.0, dtype=torch.float64), atol=1e-12, rtol=0)
    assert transition_value_loss(uniform, torch.zeros_like(counts), P, v, rem, 0.5) == 0
    # overvalued (P̃ says state 2, the truth state 0): -4/8 per step, weighted by 1 - τ
    low = torch.zeros(1, 3, 2, 3)
    low[0, :, :, 0] = 1.0
    torch.testing.assert_close(transition_value_loss(P.double().clamp_min(1e-30).log(), counts, low, v, rem, 0.75),
                               torch.tensor(0.125, dtype=torch.float64))
    # its gradient moves the guessed row's mass toward the valuable state
    logits = torch.zeros(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    transition_value_loss(torch.log_softmax(logits, -1), counts, P, v, rem, 0.75).backward()
    assert logits.grad[0, 0, 1, 2] < 0 < logits.grad[0, 0, 1, 0]
    assert logits.grad[0, 1].abs().sum() == 0  # pairs the planner does not guess get none

    batch = get_batch("tiny", 8, seed=1)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True))
    cfg = LossConfig(policy_weight=0, current_state_weight=0, q_weight=0, anchor_weight=0, quantile_weight=0,
                     transition_value_weight=1)
    parts = pretrain_loss(model, batch, cfg)
    parts["loss"].backward()
    assert parts["transition_value"] > 0 and parts["loss"] == parts["transition_value"].float()
    assert model.transition.query.weight.grad.abs().sum() > 0


def test_sigterm_stops_quietly_with_a_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=400, checkpoint_every=1000, val_every=1000)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "rlpfn.cli", "pretrain", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.csv").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143
    assert err.strip().splitlines() == ["rlpfn: stopped by SIGTERM; --resume continues from its last checkpoint, "
                                        "if one was written"]
    # checkpoint_every is beyond the run: the checkpoint is the one written at the stop
    assert 0 < json.loads((run / "progress.json").read_text())["global_step"] < 400 and (run / "last.ckpt").exists()


def test_diagnosis_term_gradients_add_up_to_the_training_loss_gradient():
    """rlpfn.experiments.diagnose splits the v1 loss's gradient by term: the parts must sum to the whole."""
    from dataclasses import replace

    from rlpfn.experiments.diagnose import term_gradients

    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)  # off the zero init, so that every term reaches the trunk
    batch = get_batch("tiny", 8, seed=3)
    cfg = replace(LossConfig(), drop_state_prob=0.0)
    parts = term_gradients(model, batch, cfg)
    model.zero_grad()
    pretrain_loss(model, batch, cfg)["loss"].backward()
    whole = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert torch.allclose(sum(parts.values()), whole, atol=1e-6)
    assert all(parts[t].norm() > 0 for t in ("ce", "q_mse", "pinball", "anchor"))


@pytest.mark.parametrize("name", ["pretrain", "transitions", "transitions-tried", "reward-head", "tiny"])
def test_the_built_in_rlpfn_configs_parse(name):
    from rlpfn.train import load_config

    cfg = load_config(name)
    assert cfg.model.tried_below == (6 if name == "transitions-tried" else 0)
    # a head is trained by its own loss, or loaded and frozen (reward-head: v2's transition head)
    assert cfg.loss.transition_weight > 0 or not cfg.model.transition_head or cfg.optim.new_only
    assert (cfg.loss.reward_weight > 0) == cfg.model.reward_head


def trained_briefly(model, batch, cfg, steps=30):
    """The loss parts after `steps` Adam steps on one batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        pretrain_loss(model, batch, cfg)["loss"].backward()
        opt.step()
    return pretrain_loss(model, batch, cfg)


def test_reward_loss_is_the_pinball_loss_at_guessed_pairs_and_training_lowers_it():
    from rlpfn.model import REWARD_QUANTILES
    from rlpfn.train import reward_loss

    n = torch.zeros(1, 3, 2)
    n[0, 0, 0] = 2  # state 0: action 0 tried, action 1 guessed; states 1, 2: nothing tried, nothing guessed
    R = torch.rand(1, 3, 2, generator=torch.Generator().manual_seed(0))
    q = torch.rand(1, 3, 2, len(REWARD_QUANTILES), generator=torch.Generator().manual_seed(1))
    levels = torch.tensor(REWARD_QUANTILES)
    d = R[0, 0, 1] - q[0, 0, 1]
    torch.testing.assert_close(reward_loss(q, n, R), torch.maximum(levels * d, (levels - 1) * d).sum())
    assert reward_loss(q, torch.zeros_like(n), R) == 0
    exact = q.clone()
    exact[0, 0, 1] = R[0, 0, 1]
    assert reward_loss(exact, n, R) == 0

    # PriorBatch.R is on the model's [0, 1] scale: at the last step Q* is the mean reward, rescaled the same way
    from rlpfn.prior import load_spec, sample_sized_batch
    from rlpfn.prior.batch import contexts
    from rlpfn.traces import run_trace

    mdps = sample_sized_batch(load_spec("tiny"), 2, np.random.default_rng(0))
    mdps = type(mdps)(mdps.P, mdps.R, mdps.mu0, mdps.horizon, r_min=mdps.r_min - 1, r_max=mdps.r_max + 2,
                      meta=mdps.meta)  # wider bounds than the rewards
    trace = run_trace(mdps, make_agent("random"), 1, seed=0)
    run, k = np.array([0, 1]), np.array([mdps.horizon - 1] * 2)
    at_end = contexts(mdps, trace, run, k, np.ones(2), "random")
    torch.testing.assert_close(at_end.R[at_end.mdp], at_end.q_star)
    batch = get_batch("tiny", 8, seed=1)
    torch.manual_seed(0)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True, reward_head=True))
    cfg = LossConfig(policy_weight=0, current_state_weight=0, q_weight=0, anchor_weight=0, quantile_weight=0,
                     reward_weight=1)
    first = pretrain_loss(model, batch, cfg)["reward_pinball"]
    last = trained_briefly(model, batch, cfg)["reward_pinball"]
    assert first > 0 and last < 0.5 * first
    q = model(batch.context).reward_quantiles.detach()
    assert (q.diff(dim=-1).mean((0, 1, 2)) > 0).all()  # higher levels, higher predictions


def test_warm_start_loads_what_the_checkpoint_has_and_trains_only_the_new_head(tmp_path):
    from rlpfn.checkpoint import save
    from rlpfn.train import warm_start

    base = ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True)
    torch.manual_seed(0)
    old = RLPFN(base)
    save(old, tmp_path / "old", {"name": "tiny"}, {})
    model = RLPFN(dataclasses.replace(base, reward_head=True, ucb_scale=0.2))
    with pytest.warns(UserWarning, match="differ from the checkpoint's: ucb_scale 0.1 -> 0.2, reward_head False -> True"):
        assert warm_start(model, str(tmp_path / "old"), new_only=True) == ["reward.bias", "reward.weight"]
    for name, p in model.named_parameters():
        assert p.requires_grad == name.startswith("reward.")
        if not name.startswith("reward."):
            torch.testing.assert_close(p, old.state_dict()[name])
    with pytest.raises(ConfigError, match="weights this model has no place for .*transition"):
        warm_start(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), str(tmp_path / "old"), False)
    with pytest.raises(ConfigError, match="has shape .* set the model section as the checkpoint's"):
        warm_start(RLPFN(dataclasses.replace(base, d_model=8)), str(tmp_path / "old"), False)
    with pytest.raises(ConfigError, match="no parameter that trainer.init_from .* lacks: nothing would train"):
        warm_start(RLPFN(base), str(tmp_path / "old"), True)


def test_the_reward_head_config_trains_only_its_head_from_the_shipped_model(tmp_path):
    """`rlpfn pretrain --config reward-head` for two steps: the trunk and transition head stay v2's."""
    from rlpfn.checkpoint import load as load_model

    res = rlpfn_cli("pretrain", "--config", "reward-head", "--trainer.max_steps", "2", "--trainer.out",
                    str(tmp_path / "run"), "--trainer.progress", "false", "--trainer.val_every", "100",
                    "--trainer.log_every", "1", "--data.num_workers", "0", timeout=300)
    assert res.returncode == 0, res.stderr
    trained, v2 = load_model(tmp_path / "run" / "model"), load_model("rlpfn-v2")
    state = trained.state_dict()
    assert all(torch.equal(state[k], v) for k, v in v2.state_dict().items())
    assert not torch.equal(state["reward.bias"], torch.ones(4))
