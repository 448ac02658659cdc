"""Bad input, table-driven, across every command: exit 2, one line naming the culprit, nothing written, before
any work. Then the Python API's refusals, and fuzzing of the two file loaders (hypothesis)."""
import json
import os

import numpy as np
import torch
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rlpfn
from rlpfn.checkpoint import save
from rlpfn.cli import main
from rlpfn.model import RLPFN, ModelConfig
from rlpfn.errors import UserError
from rlpfn.mdp import MDPError, TabularMDP
from rlpfn.zero_shot import load_transitions


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A folder with the inputs the table refers to, as the working directory."""
    monkeypatch.chdir(tmp_path)
    P = np.full((2, 2, 2), 0.5)
    TabularMDP(P, np.zeros((2, 2)), np.array([1.0, 0.0]), 4).save("ok.npz")
    np.savez("huge_reward.npz", P=P, R=np.full((2, 2), 1e308), mu0=[1.0, 0.0], horizon=4)
    np.savez("nan.npz", P=P, R=np.array([[np.nan, 0], [0, 0]]), mu0=[1.0, 0.0], horizon=4)
    np.savez("rows.npz", P=np.full((2, 2, 2), 0.4), R=np.zeros((2, 2)), mu0=[1.0, 0.0], horizon=4)
    np.savez("log.npz", obs=[0, 1], action=[0, 1], reward=[0.0, 1.0], next_obs=[1, 0], n_states=2, n_actions=2,
             horizon=3)
    np.savez("log_str.npz", obs=[0], action=[0], reward=np.array(["a"]), next_obs=[1], n_states=2, n_actions=2,
             horizon=3)
    np.savez("log_states.npz", obs=[0, 5], action=[0, 0], reward=[0.0, 1.0], next_obs=[1, 0], n_states=2,
             n_actions=2, horizon=3)
    np.savez("log_h.npz", obs=[0], action=[0], reward=[0.0], next_obs=[1], n_states=2, n_actions=2,
             horizon=10**12)
    (tmp_path / "text.npz").write_text("not an archive")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "spec.yaml").write_text("name: x\nstates: [5, 2]\nactions: 2\nhorizon: 3\nfamilies: {garnet: 1}\n")
    (tmp_path / "bad.yaml").write_text("trainer: {max_steps: -1}\n")
    (tmp_path / "weird.yaml").write_text("!!python/object:os.system {}\n")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "badfam.yaml").write_text("name: b\nstates: 4\nactions: 2\nhorizon: 5\n"
                                          "families: {dirichlet: {weight: 1, params: {concentration: -1}}}\n")
    np.savez("log_term.npz", obs=[0, 1], action=[0, 1], reward=[0.0, 1.0], next_obs=[1, 0],
             terminated=np.array(["False", "True"]), n_states=2, n_actions=2, horizon=3)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.ckpt").write_bytes(b"")
    (tmp_path / "run" / "progress.json").write_text('{"global_st')
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    save(model, tmp_path / "nan_model", {}, {})  # its SHA-256 matches: only the values are wrong
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), tmp_path / "abc_model", {}, {})
    meta = json.loads((tmp_path / "abc_model.json").read_text())
    meta["model"]["d_model"] = "abc"
    (tmp_path / "abc_model.json").write_text(json.dumps(meta))
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), tmp_path / "cut_model", {}, {})
    weights = (tmp_path / "cut_model.safetensors").read_bytes()
    (tmp_path / "cut_model.safetensors").write_bytes(weights[:len(weights) // 2])  # truncated
    return tmp_path


SOLVE = ["solve", "riverswim", "--agent", "ucbvi", "--episodes", "2", "--seeds", "1", "--quiet"]
BAD = [
    # MDPs
    (["solve", "nosuch", "--agent", "ucbvi"], "nosuch"),
    (["solve", "text.npz", "--agent", "ucbvi"], "text.npz"),
    (["solve", "missing.npz", "--agent", "ucbvi"], "missing.npz"),
    (["solve", "nan.npz", "--agent", "ucbvi"], "must be finite"),
    (["solve", "rows.npz", "--agent", "ucbvi"], "sums to"),
    (["solve", "huge_reward.npz", "--agent", "ucbvi"], "overflow"),
    (["solve", "CartPole-v1", "--agent", "ucbvi"], "not Discrete"),
    (["solve", "ok.npz", "--agent", "ucbvi", "--horizon", "0"], "--horizon"),
    (["solve", "ok.npz", "--agent", "ucbvi", "--horizon", "1000000000000"], "RLPFN_MAX_MEMORY"),
    # agents and their hyperparameters
    (["solve", "riverswim", "--agent", "nosuch"], "--agent"),
    (["solve", "riverswim", "--agent", "vilcb"], "offline agent"),
    (["offline", "riverswim", "--agent", "ucbvi", "--behavior-epsilon", "0", "--dataset-episodes", "2"], "online agent"),
    ([*SOLVE[:4], "--set", "bogus=1"], "bogus"),
    ([*SOLVE[:4], "--set", "scale=abc"], "scale"),
    ([*SOLVE[:4], "--set", "noequals=", "x=1"], "noequals"),
    (["solve", "--agent", "qlearning", "--set", "epsilon=0.2"], "required: MDP"),
    (["solve", "riverswim", "--agent", "qlearning", "--set", "epsilon=abc"], "epsilon"),
    (["solve", "riverswim", "--agent", "qlearning", "--set", "epsilon=2"], "epsilon"),
    (["solve", "riverswim", "--agent", "psrl", "--set", "alpha0=-1"], "alpha0"),
    (["solve", "riverswim", "--agent", "rlpfn", "--set", "refresh=never"], "refresh"),
    # sizes and counts
    ([*SOLVE, "--seeds", "0"], "--seeds"),
    ([*SOLVE, "--seeds", "100000000"], "RLPFN_MAX_MEMORY"),
    ([*SOLVE, "--seed", "1e23"], "--seed"),
    ([*SOLVE, "--episodes", "abc"], "--episodes"),
    (["latency", "riverswim", "--sizes", "1000000000000"], "RLPFN_MAX_MEMORY"),
    (["latency", "riverswim", "--repeats", "0"], "--repeats"),
    (["offline", "riverswim", "--agent", "vilcb", "--behavior-epsilon", "2", "--dataset-episodes", "2"],
     "--behavior-epsilon"),
    (["benchmark", "--benchmarks", "nosuch"], "nosuch"),
    (["benchmark", "--skip", "psrl-taxi"], "psrl-taxi"),
    (["benchmark", "--workers", "0"], "--workers"),
    (["tune", "--agents", "random"], "random"),
    (["tune", "--prior", "nosuch.yaml"], "nosuch.yaml"),
    (["validate", "--batches", "0"], "--batches"),
    (["validate", "--agents", "ucbvi[scale=abc]"], "scale"),
    (["validate", "--agents", "ucbvi[nosuch=1]"], "nosuch"),
    (["validate", "--agents", "ucbvi[scale]"], "'scale' is not of the form KEY=VALUE"),
    (["validate", "--agents", "psrl[alpha0=1,alpha0=2]"], "'alpha0' given twice"),
    (["solve", "riverswim", "--agent", "qlearning", "--set", "epsilon=0.1", "epsilon=0.2"], "'epsilon' given twice"),
    (["validate", "--agents", "vilcb[scale=0.1]"], "'vilcb[scale=0.1]' is not an online agent"),
    (["validate", "--agents", "rlpfn[checkpoint=nosuch]"], "nosuch.json: no such checkpoint config"),
    (["benchmark", "--agents", "nosuch"], "unknown agent 'nosuch'"),
    (["benchmark", "--agents", "rlpfn[checkpoint=nosuch]"], "nosuch.json: no such checkpoint config"),
    (["benchmark", "--agents", "ucbvi[scale=abc]"], "scale"),
    (["benchmark", "--agents", "rlpfn[checkpoint=cut_model]"], "SHA-256 does not match"),
    (["benchmark", "--agents", "ucbvi[scale=1e999]"], "scale must be a finite number >= 0, got inf"),
    (["validate", "--agents", "ucbvi[h_term=-1e999]"], "h_term must be a finite number >= 0, got -inf"),
    (["offline", "riverswim", "--agent", "vilcb", "--behavior-epsilon", "1", "--dataset-episodes", "2", "--set", "scale=1e999"], "scale must be a finite number >= 0"),
    (["solve", "riverswim", "--agent", "optql", "--set", "scale=1e400"], "scale must be a finite number >= 0"),
    (["benchmark", "--agents", "ucbvi", "ucbvi"], "ucbvi given twice"),
    (["benchmark", "--skip", "ucbvi[scale=1]:taxi"], "not AGENT:BENCHMARK"),
    (["prior", "sample", "spec.yaml", "--n", "2", "--out", "o"], "states: empty range"),
    (["prior", "sample", "tiny", "--n", "-2", "--out", "o"], "--n"),
    (["prior", "bench", "nosuch"], "nosuch"),
    # output paths
    ([*SOLVE, "--json", "."], "is a directory"),
    ([*SOLVE, "--json", "nodir/out.json"], "does not exist"),
    ([*SOLVE, "--json", "a_file/out.json"], "does not exist"),
    (["benchmark", "--out", "a_file"], "not a directory"),
    (["tune", "--out", "nodir/t.json"], "does not exist"),
    (["solve-offline", "log.npz", "--out", "."], "--out must end in .npz"),
    (["solve-offline", "log.npz", "--out", "nodir/p.npz"], "does not exist"),
    # transition logs
    (["solve-offline", "log_str.npz"], "log_str.npz"),
    (["solve-offline", "log_states.npz"], "obs[1] = 5"),
    (["solve-offline", "log_h.npz"], "RLPFN_MAX_MEMORY"),
    (["solve-offline", "log.npz", "--reward-bounds", "0", "0.5"], "reward[1] = 1"),
    (["solve-offline", "log.npz", "--reward-bounds", "1", "0"], "--reward-bounds"),
    (["solve-offline", "log.npz", "--agent", "ucbvi"], "--agent"),
    (["solve-offline", "text.npz"], "text.npz"),
    # configs and checkpoints
    (["pretrain", "--config", "bad.yaml"], "trainer.max_steps"),
    (["pretrain", "--config", "weird.yaml"], "weird.yaml"),
    (["pretrain", "--config", "nosuch"], "nosuch"),
    (["pretrain", "--model.n_heads", "5"], "n_heads"),
    (["pretrain", "--trainer.accelerator", "tpu"], "tpu"),
    (["pretrain", "--config", "ad", "--data.source", "nosuch"], "data.source: 'nosuch' is not a source algorithm"),
    (["pretrain", "--config", "ad", "--model.d_model", "33", "--model.n_heads", "1"], "d_model = 33 must be even"),
    (["solve", "riverswim", "--agent", "ad", "--set", "sample=maybe"], "sample"),
    (["latency", "riverswim", "--ad-checkpoint", "nosuch"], "nosuch"),
    (["latency", "riverswim", "--checkpoint", "nosuch"], "nosuch"),
    (["latency", "riverswim", "--checkpoint", "nan_model"], "non-finite"),
    (["latency", "riverswim", "--checkpoint", "abc_model"], "model.d_model"),
    (["pretrain", "--config", "tiny", "--trainer.out", "run", "--resume"], "progress.json: unreadable"),
    (["solve", "ALE/Pong-v5", "--agent", "ucbvi"], "Namespace ALE not found"),
    (["solve", "Taxi-v3", "--agent", "ucbvi"], "Please use `Taxi-v4`"),
    (["solve", "CliffWalking-v1", "--agent", "ucbvi"], "--horizon"),
    (["solve", "FrozenLake-v1", "--agent", "ucbvi", "--env-kwargs", "bogus=1"], "bogus"),
    (["solve", "FrozenLake-v1", "--agent", "ucbvi", "--env-kwargs", "map_name=9x9"], "9x9"),
    (["benchmark", "--benchmarks", "riverswim", "riverswim"], "riverswim given twice"),
    (["benchmark", "--epsilons", "0.5", "0.5"], "--epsilons: 0.5 given twice"),
    (["solve-offline", "log_term.npz"], "terminated must be booleans"),
    (["prior", "sample", "badfam.yaml", "--n", "2", "--out", "o"], "families.dirichlet.params"),
    (["prior", "sample", "latin1.yaml", "--n", "2", "--out", "o"], "latin1.yaml"),
    (["pretrain", "--config", "latin1.yaml"], "latin1.yaml"),
    (["pretrain", "--config", "tiny", "--trainer.out", "a_file"], "trainer.out"),
    (["solve", "riverswim", "--agent", "ucbvi", "--env-kwargs", "map_name=8x8"], "gymnasium ids only"),
    (["offline", "FrozenLake-v1", "--agent", "vilcb", "--behavior-epsilon", "0", "--dataset-episodes", "2",
      "--env-kwargs", "noequals"], "--env-kwargs 'noequals'"),
    (["nosuch-command"], "nosuch-command"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(inputs, capsys, argv, needle):
    before = sorted(os.listdir(inputs))
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("rlpfn: error:") and needle in lines[0], err
    assert sorted(os.listdir(inputs)) == before  # nothing written


def test_the_table_covers_every_command():
    assert len(BAD) >= 40
    assert {a[0] for a, _ in BAD} >= {"solve", "offline", "benchmark", "tune", "validate", "latency", "prior",
                                      "solve-offline", "pretrain"}


@pytest.mark.parametrize("call,needle", [
    (lambda: rlpfn.solve("nosuch"), "nosuch"),
    (lambda: rlpfn.solve("riverswim", episodes=0), "episodes"),
    (lambda: rlpfn.solve("riverswim", agent="vilcb"), "offline-only"),
    (lambda: rlpfn.solve("riverswim", agent="qlearning", epsilon="abc"), "epsilon"),
    (lambda: rlpfn.solve_offline("missing.npz"), "missing.npz"),
    (lambda: rlpfn.solve_offline("log.npz", agent="ucbvi"), "cannot learn from a fixed dataset"),
    (lambda: rlpfn.load("nosuch"), "nosuch"),
    (lambda: load_transitions("log.npz", (0.0, float("inf"))), "finite"),
])
def test_the_python_api_refuses_with_user_errors(inputs, call, needle):
    with pytest.raises(UserError, match=needle):
        call()


# ---- fuzzing the loaders: any file gives an MDP / a log, or a one-line UserError, never another exception ----
arrays = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 10**6),
    st.lists(st.floats(-2, 2), min_size=0, max_size=8),
    st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(st.lists(st.lists(st.floats(0, 1), min_size=2, max_size=2), min_size=2, max_size=2), min_size=2,
             max_size=2),
    st.text(max_size=3),
)


def save_or_skip(path, doc: dict) -> None:
    try:
        arrays = {k: np.asarray(v) for k, v in doc.items()}
    except ValueError:  # a ragged nested list is no array at all
        assume(False)
    np.savez(path, **arrays)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["P", "R", "mu0", "horizon", "R_std", "r_min", "r_max", "name", "extra"]),
                       arrays, min_size=1))
def test_mdp_loader_never_fails_otherwise(tmp_path, doc):
    path = tmp_path / "fuzz.npz"
    save_or_skip(path, doc)
    try:
        mdp = TabularMDP.load(path)
    except MDPError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert np.isfinite(mdp.P).all() and mdp.horizon >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["obs", "action", "reward", "next_obs", "terminated", "n_states", "n_actions",
                                        "horizon"]), arrays, min_size=1),
       st.booleans())
def test_log_loader_never_fails_otherwise(tmp_path, doc, complete):
    base = {"obs": [0], "action": [0], "reward": [0.0], "next_obs": [0], "n_states": 1, "n_actions": 1, "horizon": 2}
    path = tmp_path / "fuzz.npz"
    save_or_skip(path, {**base, **doc} if complete else doc)
    try:
        log = load_transitions(path)
    except UserError as e:
        assert "\n" not in str(e)
    else:
        assert log.n_transitions >= 1 and np.isfinite(log.stats.counts.numpy()).all()
