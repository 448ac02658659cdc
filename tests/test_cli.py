"""The command line: outputs, JSON contents, and one-line errors with exit code 2."""
import json

import numpy as np
import pytest

from rlpfn.cli import main
from rlpfn.mdp import TabularMDP
from rlpfn.planning import solve


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_benchmarks_lists_the_suite(capsys):
    code, out, _ = run_cli(capsys, "benchmarks")
    assert code == 0
    for name in ("riverswim", "taxi", "darkroom10", "frozenlake8x8"):
        assert name in out
    riverswim = next(line for line in out.splitlines() if line.startswith("riverswim"))
    assert riverswim.split()[1:4] == ["6", "2", "20"] and "3.3973" in riverswim


def test_solve_writes_json_with_per_seed_returns(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, "solve", "riverswim", "--agent", "ucbvi", "--episodes", "30", "--seeds", "3",
                           "--json", str(out_json), "--quiet")
    assert code == 0
    assert "cumulative regret" in out and "episodes to solve" in out
    doc = json.loads(out_json.read_text())
    assert doc["mdp"] == "riverswim" and doc["agent"] == "ucbvi"
    assert doc["v_star"] == pytest.approx(3.3973, abs=1e-4)
    assert np.array(doc["returns"]).shape == (3, 30) and np.array(doc["regret"]).shape == (3, 30)
    assert set(doc["hparams"]) == {"bonus", "scale", "h_term"}


def test_solve_accepts_npz_and_hparam_overrides(capsys, tmp_path):
    P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    mdp = TabularMDP(P, np.array([[0.0, 0.0], [0.0, 1.0]]), np.array([1.0, 0.0]), 5, name="two")
    mdp.save(tmp_path / "two.npz")
    out_json = tmp_path / "two.json"
    # the MDP may follow a KEY=VALUE list: the list ends at the first word without '='
    code, out, _ = run_cli(capsys, "solve", "--agent", "qlearning", "--set", "epsilon=0.2", str(tmp_path / "two.npz"),
                           "--episodes", "5", "--seeds", "2", "--json", str(out_json), "--quiet")
    assert code == 0 and "MDP two" in out
    assert json.loads(out_json.read_text())["hparams"]["epsilon"] == 0.2


def test_gymnasium_options_from_the_command_line_and_python(capsys, tmp_path):
    out_json = tmp_path / "fl.json"
    code, out, _ = run_cli(capsys, "solve", "FrozenLake-v1", "--env-kwargs", "map_name=8x8", "is_slippery=false",
                           "--agent", "ucbvi", "--episodes", "3", "--seeds", "1", "--quiet", "--json", str(out_json))
    assert code == 0 and "S=65" in out  # 8x8 + the absorbing state
    assert json.loads(out_json.read_text())["v_star"] == 1.0  # not slippery: the goal is certain
    import rlpfn

    res = rlpfn.solve("FrozenLake-v1", episodes=2, agent="ucbvi", env_kwargs={"map_name": "8x8"}, scale=0.3)
    assert res.hparams["scale"] == 0.3 and res.v_star == pytest.approx(0.6407, abs=1e-3)


def test_offline_reports_normalized_score(capsys, tmp_path):
    out_json = tmp_path / "o.json"
    code, out, _ = run_cli(capsys, "offline", "riverswim", "--agent", "certainty-equivalence", "--behavior-epsilon",
                           "0", "--dataset-episodes", "20", "--seeds", "3", "--json", str(out_json))
    assert code == 0 and "normalized score" in out
    scores = json.loads(out_json.read_text())["scores"]
    assert len(scores) == 3 and min(scores) > 0.9


@pytest.mark.parametrize("argv,needle", [
    (["solve", "nosuch-mdp", "--agent", "ucbvi"], "nosuch-mdp"),
    (["solve", "riverswim", "--agent", "nosuch-agent"], "nosuch-agent"),
    (["solve", "riverswim", "--agent", "ucbvi", "--set", "bogus=1"], "bogus"),
    (["solve", "riverswim", "--agent", "ucbvi", "--set", "bonus=foo"], "foo"),
    (["solve", "riverswim", "--agent", "vilcb"], "offline"),
    (["offline", "riverswim", "--agent", "ucbvi", "--behavior-epsilon", "0", "--dataset-episodes", "3"], "online"),
    (["solve", "CartPole-v1", "--agent", "ucbvi"], "not Discrete"),
    (["benchmark", "--benchmarks", "nosuch"], "nosuch"),
    (["benchmark", "--agents", "nosuch"], "nosuch"),
    (["benchmark", "--skip", "psrl-taxi"], "psrl-taxi"),
    (["solve", "riverswim", "--agent", "ucbvi", "--episodes", "2", "--seeds", "1", "--quiet",
      "--json", "/nonexistent-dir/out.json"], "/nonexistent-dir does not exist"),
    (["tune", "--agents", "random"], "random"),
])
def test_user_errors_are_one_line_exit_2(capsys, argv, needle):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlpfn: error:") and needle in lines[0]


@pytest.mark.parametrize("argv,needle", [
    (["solve", "riverswim", "--agent", "ucbvi", "--episodes", "-3"], "--episodes: Not of type PositiveInt: -3"),
    (["solve", "riverswim", "--agent", "ucbvi", "--seeds", "0"], "--seeds: Not of type PositiveInt: 0"),
    (["solve", "riverswim", "--agent", "ucbvi", "--seed", "1e23"], "--seed: "),
    (["offline", "riverswim", "--agent", "vilcb", "--behavior-epsilon", "1.5", "--dataset-episodes", "3"],
     "--behavior-epsilon: Not of type ClosedUnitInterval: 1.5"),
    (["offline", "riverswim", "--agent", "vilcb", "--behavior-epsilon", "0", "--dataset-episodes", "-1"],
     "--dataset-episodes: Not of type PositiveInt: -1"),
    (["offline", "riverswim", "--agent", "vilcb", "--dataset-episodes", "1"], "--behavior-epsilon"),
    (["solve", "riverswim", "--agent", "nosuch-agent"], "--agent: Expected a typing.Literal"),
    (["benchmark", "--epsilons", "0", "2"], "--epsilons element 2"),
    (["latency", "--sizes", "abc"], "--sizes element 1"),
    (["solve-offline", "log.npz", "--reward-bounds", "1", "0"], "--reward-bounds must be LOW HIGH"),
    (["solve-offline", "log.npz", "--out", "policy.txt"], "--out must end in .npz"),
    (["tune", "--prior", "nosuch", "--dry-run"], "no such prior spec"),
    (["solve", "riverswim", "--agent", "ucbvi", "--bogus"], "--bogus"),
    (["nosuch-command"], "nosuch-command"),
])
def test_bad_options_are_refused_in_one_line_before_any_work(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("rlpfn: error:") and needle in lines[0]


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04truncated"])
def test_bad_npz_gives_one_line_and_no_partial_json(capsys, tmp_path, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    out_json = tmp_path / "out.json"
    code, _, err = run_cli(capsys, "solve", str(bad), "--agent", "ucbvi", "--json", str(out_json))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and str(bad) in err
    assert not out_json.exists() and not list(tmp_path.glob("out.json*"))


def test_truncated_npz_of_a_real_mdp(capsys, tmp_path):
    P = np.full((3, 2, 3), 1 / 3)
    TabularMDP(P, np.zeros((3, 2)), np.array([1.0, 0, 0]), 4).save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, "solve", str(tmp_path / "cut.npz"), "--agent", "ucbvi")
    assert code == 2 and "cut.npz" in err and len(err.strip().splitlines()) == 1


def test_benchmark_end_to_end_small(capsys, tmp_path):
    out = tmp_path / "bench"
    code, stdout, _ = run_cli(capsys, "benchmark", "--benchmarks", "riverswim", "chain", "--agents", "random",
                              "ucbvi", "vilcb", "--episodes", "12", "--seeds", "2", "--out", str(out), "--workers",
                              "1", "--quiet", "--skip", "random:chain")
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert {e["agent"] for e in doc["online"]} == {"random", "ucbvi"}
    assert {(e["agent"], e["benchmark"]) for e in doc["online"]} == {
        ("random", "riverswim"), ("ucbvi", "riverswim"), ("ucbvi", "chain")}
    assert "random:chain" in (out / "results.md").read_text()
    assert {(e["epsilon"], e["dataset_episodes"]) for e in doc["offline"]} == {
        (e, n) for e in (0.0, 0.5, 1.0) for n in (10, 100)}
    assert np.array(doc["online"][0]["regret"]).shape == (2, 12)
    assert doc["config"]["command"].startswith("rlpfn benchmark --benchmarks riverswim chain")  # main's argv
    for name in ("results.md", "regret_curves.png", "aggregate_iqm.png"):
        assert (out / name).stat().st_size > 0
    assert "riverswim" in (out / "results.md").read_text()


def _help(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", ["rlpfn", "ad"])
def test_every_pretrain_option_says_what_it_does(kind):
    """`rlpfn pretrain --help`: each config field's docstring is its option's help, for both kinds of model."""
    from rlpfn.train import pretrain_parser

    options = [a for a in pretrain_parser(kind)._actions if any(o.startswith("--") and "." in o for o in a.option_strings)]
    assert len(options) > 30
    missing = [a.dest for a in options if not (a.help or "").strip() or a.help.startswith("(type")]
    assert not missing, missing


def test_help_explains_every_command(capsys):
    text = _help(capsys)
    for cmd in ("benchmarks", "solve", "offline", "benchmark", "tune", "check-baselines", "solve-offline",
                "validate", "latency", "prior", "pretrain"):
        assert f"\n    {cmd} " in text
    text = _help(capsys, "solve")
    assert "episodes to solve" in text and "--json" in text and "{random,optimal,ucbvi," in text
    assert "--benchmarks NAME" in _help(capsys, "benchmark") and "--trainer.max_steps" in _help(capsys, "pretrain")
    assert "--n-mdps" in _help(capsys, "tune") and "--batch-size" in _help(capsys, "prior", "bench")


# ---- rlpfn prior -----------------------------------------------------------------------------
def test_prior_sample_writes_solvable_npz_files(capsys, tmp_path):
    out = tmp_path / "mdps"
    code, text, _ = run_cli(capsys, "prior", "sample", "tiny", "--n", "5", "--seed", "3", "--out", str(out))
    assert code == 0 and "wrote 5 MDPs" in text
    index = json.loads((out / "index.json").read_text())
    assert len(index["mdps"]) == 5 and index["seed"] == 3
    files = sorted(out.glob("*.npz"))
    assert [f.name for f in files] == sorted(e["file"] for e in index["mdps"])
    for entry in index["mdps"]:
        mdp = TabularMDP.load(out / entry["file"])
        assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (entry["S"], entry["A"], entry["H"])
        assert (mdp.r_min, mdp.r_max) == (-1.0, 1.0)  # tiny.yaml's declared bounds
        sol = solve(mdp)
        assert (entry["v_star"], entry["v_random"]) == (pytest.approx(sol.v_star), pytest.approx(sol.v_random))
    # the same seed writes the same MDPs
    again = tmp_path / "again"
    run_cli(capsys, "prior", "sample", "tiny", "--n", "5", "--seed", "3", "--out", str(again))
    for f in files:
        np.testing.assert_array_equal(TabularMDP.load(f).P, TabularMDP.load(again / f.name).P)
    code, text, _ = run_cli(capsys, "solve", str(files[0]), "--agent", "ucbvi", "--episodes", "3", "--seeds", "2",
                            "--quiet")
    assert code == 0 and "cumulative regret" in text


def test_prior_errors_are_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstates: [5, 2]\nactions: 2\nhorizon: 3\nfamilies: {garnet: 1}\n")
    for argv, needle in ((["prior", "sample", str(bad), "--n", "2", "--out", str(tmp_path / "o")], "states: empty range"),
                         (["prior", "sample", "nosuch", "--n", "2", "--out", str(tmp_path / "o")], "no such prior spec"),
                         (["prior", "bench", str(bad)], "states: empty range")):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_prior_bench_prints_rates(capsys, tmp_path):
    code, text, _ = run_cli(capsys, "prior", "bench", "tiny", "--batches", "3", "--mdps", "8", "--batch-size", "8",
                            "--quiet", "--json", str(tmp_path / "b.json"))
    assert code == 0 and "MDPs/s" in text and "batches/s" in text
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["batches"]["batches"] == 3 and doc["batches"]["batches_per_s"] > 0
