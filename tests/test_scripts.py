"""The measuring scripts' own arithmetic (scripts/*.py), on hand-made inputs."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass in it looks its module up there
    spec.loader.exec_module(module)
    return module


def test_repeat_rate_counts_repeats_at_revisited_states_only():
    rate = script("ad_persistence").repeat_rate(np.array([[0, 1, 0, 1, 0]]), np.array([[2, 1, 2, 0, 1]]))
    # state 0: a=2, then 2 (repeat), then 1 (not); state 1: a=1, then 0 (not); first visits are NaN
    np.testing.assert_array_equal(rate, [[np.nan, np.nan, 1.0, 0.0, 0.0]])


def test_distinct_arms_counts_only_the_first_pulls():
    distinct = script("ad_bandit_behaviour").distinct_first
    assert distinct(np.array([[0, 0, 1, 2], [3, 3, 3, 0]]), k=3) == 1.5  # {0, 1} and {3}: the 4th pull not counted


def test_a_rule_per_group_is_chosen_on_the_other_rollouts():
    cross_fitted = script("ceiling_by_size").cross_fitted
    # 2 rollouts x 2 rules x 4 MDPs: MDPs 0-1 want rule 0, MDPs 2-3 rule 1, in both rollouts
    R = np.array([[[0.1, 0.1, 0.9, 0.9], [0.9, 0.9, 0.1, 0.1]]] * 2)
    np.testing.assert_allclose(cross_fitted(R, np.array([0, 0, 1, 1])), 0.1)
    assert cross_fitted(R, np.zeros(4)).mean() == 0.5  # one rule for all: right for half of the MDPs
    # MDP 0: rule 0 looks best on rollout 0 (0.1) and worst on rollout 1 (0.9). Each rollout is scored with the
    # choice of the other: rollout 0 with rule 1 (0.5), rollout 1 with rule 0 (0.9), never the lucky 0.1
    lucky = np.array([[[0.1, 0.5], [0.5, 0.5]], [[0.9, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(cross_fitted(lucky, np.arange(2)), [(0.5 + 0.9) / 2, 0.5])


def test_ucbvi_told_nothing_is_ucbvi_and_told_the_transitions_explores_less():
    import torch

    from rlpfn.agents import make_agent
    from rlpfn.benchmarks import make_benchmark
    from rlpfn.traces import run_trace

    Informed = script("regret_sources").Informed
    mdp = make_benchmark("riverswim")
    base = run_trace(mdp, make_agent("ucbvi", scale=0.1, h_term=0.003), 5, seed=0, n_runs=3)
    same = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="neither"), 5, seed=0, n_runs=3)
    assert torch.equal(base.a, same.a)
    # told where every action leads, it need not try the left action at every state to find the far reward
    told = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="transitions"), 5, seed=0, n_runs=3)
    assert told.r.sum() > base.r.sum()
    # a guess blended all the way back to H - h is no guess: UCB-VI again; half way it is not
    blended = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="untried-transitions", blend=1.0), 5, seed=0,
                        n_runs=3)
    assert torch.equal(base.a, blended.a)
    half = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="untried-transitions", blend=0.5), 5, seed=0, n_runs=3)
    assert not torch.equal(base.a, half.a)
    # tried pairs shrunk toward the pooled guess: another plan
    pooled = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="pooled"), 5, seed=0, n_runs=3)
    shrunk = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="pooled", shrink=2.0), 5, seed=0, n_runs=3)
    assert not torch.equal(pooled.a, shrunk.a)


def test_ucbvi_told_a_models_predicted_transitions_plays_a_seeded_run(tmp_path):
    import torch

    from rlpfn.benchmarks import make_benchmark
    from rlpfn.checkpoint import save
    from rlpfn.model import RLPFN, ModelConfig
    from rlpfn.traces import run_trace

    torch.manual_seed(0)
    path = str(save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True)), tmp_path / "m",
                    {"name": "tiny"}, {"steps": 0}))
    Informed = script("regret_sources").Informed
    mdp = make_benchmark("sixarms")
    runs = [run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="predicted", predictor=path), 5, seed=0, n_runs=3)
            for _ in range(2)]
    assert torch.equal(runs[0].a, runs[1].a)
    base = run_trace(mdp, Informed(scale=0.1, h_term=0.003, known="neither"), 5, seed=0, n_runs=3)
    assert not torch.equal(base.a, runs[0].a)  # untried pairs of tried states are no longer worth H - h


def test_the_coverage_probe_tells_expert_data_from_uniform_data(tmp_path):
    """scripts/offline_coverage.py: its feature (rlpfn.stats.behaviour_entropy) is 0 for data that always take one
    action per state, 1 for data spread evenly over the actions; its rules are scored on folds they were not chosen
    on."""
    import torch

    from rlpfn.stats import behaviour_entropy

    probe = script("offline_coverage")
    visits = torch.zeros(3, 3, 4, dtype=torch.float64)
    visits[0, :, 1] = 5.0  # expert-like: one action per state
    visits[1] = 2.0  # uniform
    visits[2, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # one state, two of four actions once each: 0.5 ...
    visits[2, 1, 3] = 2.0  # ... and a state with one action twice: 0, weighted alike
    torch.testing.assert_close(behaviour_entropy(visits), torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64))
    torch.testing.assert_close(behaviour_entropy(torch.ones(2, 3, 1)), torch.zeros(2))  # one action: narrow, not NaN
    # two groups wanting different multipliers: per-group choice scores the better one, out of fold
    Y = np.tile([[1.0, 0.0], [0.0, 1.0]], (20, 1))
    group = np.tile([0, 1], 20)
    assert probe.cross_validated(Y, group).mean() == 1.0
    assert probe.cross_validated(Y, np.zeros(40)).mean() < 0.6  # one choice for both groups: about half wrong


def test_the_coverage_probe_reads_its_multipliers_back_and_refuses_a_set_without_1(tmp_path):
    """--from reports files of either form (rows alone: the default multipliers; or with the multipliers), naming the
    best multiplier per cell from the saved ones; --multipliers without 1 (the model's own penalty) is refused."""
    import json
    import subprocess

    import torch

    from rlpfn.checkpoint import save
    from rlpfn.model import RLPFN, ModelConfig

    torch.manual_seed(0)
    head = save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, offline_head=True)), tmp_path / "h", {}, {})

    run = lambda *a: subprocess.run([sys.executable, str(SCRIPTS / "offline_coverage.py"), *a],  # noqa: E731
                                    capture_output=True, text=True)
    rows = [{"eps": e, "episodes": n, "coverage": e, "scores": [0.2, 0.9]} for e in (0.0, 0.5, 1.0) for n in (10, 100)]
    (tmp_path / "new.json").write_text(json.dumps({"multipliers": [1.0, 10.0], "rows": rows * 5}))
    (tmp_path / "old.json").write_text(json.dumps([dict(r, scores=r["scores"] + [0.0] * 5) for r in rows * 5]))
    new, old = run("--from", str(tmp_path / "new.json")), run("--from", str(tmp_path / "old.json"))
    assert new.returncode == 0 and "ε=1, 100: 10," not in new.stdout and "ε=1, 100: 10" in new.stdout, new.stderr
    assert "| the model's penalty (× 1) | 0.200 |" in new.stdout
    assert old.returncode == 0 and "ε=0, 10: 0.3" in old.stdout, old.stderr
    bad = run("--multipliers", "0.5", "2", "--steps", "1")
    assert bad.returncode == 2 and "include 1" in bad.stderr and "[0.5, 2.0]" in bad.stderr
    assert "Traceback" not in bad.stderr
    for args, culprit in ((["--checkpoint", str(tmp_path / "nope")], "nope.json: no such checkpoint"),
                          (["--json", str(tmp_path / "no" / "x.json")], "does not exist"),
                          (["--checkpoint", str(head)], "has an offline head already")):
        res = run("--steps", "1", *args)  # refused before any scoring, in one line
        assert res.returncode == 2 and culprit in res.stderr.strip().splitlines()[-1], res.stderr
        assert "Traceback" not in res.stderr and "step 1/1" not in res.stdout
    assert not (tmp_path / "no").exists()


def test_a_bonus_variant_multiplies_the_bonus_and_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    import types

    import torch

    from rlpfn.checkpoint import load, save
    from rlpfn.model import RLPFN, ModelConfig

    torch.manual_seed(0)
    base = save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), tmp_path / "m", {"name": "tiny"}, {"steps": 0})
    main = script("bonus_variant").main

    def run(*args):  # the script's main in this process (25 interpreters importing torch took 90 s): exit code, stderr
        monkeypatch.setattr(sys, "argv", ["bonus_variant.py", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        return types.SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)
    assert run(str(base), "0.3", str(tmp_path / "v")).returncode == 0
    bias = load(tmp_path / "v").head.bias.detach()
    assert torch.isclose(bias[0], torch.log(torch.tensor(0.3))) and (bias[1:] == 0).all()
    assert load(tmp_path / "v").cfg.planner_h_term_scale == 1.0
    assert run(str(base), "1", str(tmp_path / "h"), "--h-term-scale", "10").returncode == 0
    h = load(tmp_path / "h")
    assert h.cfg.planner_h_term_scale == 10.0 and (h.head.bias == 0).all()
    assert h.meta["training"]["bonus_variant"]["h_term_scale"] == 10.0
    assert run(str(base), "1", str(tmp_path / "n"), "--novelty", "0.1").returncode == 0
    assert load(tmp_path / "n").cfg.planner_novelty == 0.1 and load(tmp_path / "n").cfg.planner_h_term_scale == 1.0
    assert not load(tmp_path / "n").cfg.planner_novelty_pooled
    assert run(str(base), "1", str(tmp_path / "p"), "--novelty", "0.3", "--pooled").returncode == 0
    p = load(tmp_path / "p")
    assert p.cfg.planner_novelty_pooled and p.cfg.planner_novelty == 0.3 and p.meta["training"]["bonus_variant"]["pooled"]
    assert run(str(tmp_path / "n"), "1", str(tmp_path / "p2"), "--pooled").returncode == 0  # the base's ν is pooled
    assert load(tmp_path / "p2").cfg.planner_novelty_pooled and load(tmp_path / "p2").cfg.planner_novelty == 0.1
    assert not load(tmp_path / "p2").cfg.planner_state_log
    assert run(str(base), "0.5", str(tmp_path / "l"), "--state-log").returncode == 0
    logged = load(tmp_path / "l")
    assert logged.cfg.planner_state_log and logged.meta["training"]["bonus_variant"]["state_log"]
    assert run(str(base), "1", str(tmp_path / "l2"), "--state-log-from", "100").returncode == 0
    late = load(tmp_path / "l2")
    assert late.cfg.planner_state_log and late.cfg.planner_state_log_from == 100.0
    assert late.meta["training"]["bonus_variant"]["state_log"]
    assert run(str(base), "1", str(tmp_path / "r"), "--noise-h-term", "5").returncode == 0
    gated = load(tmp_path / "r")
    assert gated.cfg.planner_noise_h_term == 5.0 and gated.meta["training"]["bonus_variant"]["noise_h_term"] == 5.0
    assert run(str(base), "1", str(tmp_path / "s"), "--variance", "0.03").returncode == 0
    spread = load(tmp_path / "s")
    assert spread.cfg.planner_variance == 0.03 and spread.meta["training"]["bonus_variant"]["variance"] == 0.03
    tried = save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True, tried_below=4)),
                 tmp_path / "t", {"name": "tiny"}, {"steps": 0})
    assert run(str(tried), "1", str(tmp_path / "k"), "--tried-strength", "0.5").returncode == 0
    assert load(tmp_path / "k").cfg.planner_tried_strength == 0.5
    assert run(str(tried), "1", str(tmp_path / "g"), "--guess-temperature", "0.1", "--uniform-rows").returncode == 0
    g = load(tmp_path / "g")
    assert g.cfg.planner_guess_temperature == 0.1 and (g.transition.query.weight == 0).all()
    assert (g.transition.query.bias == 0).all()
    assert run(str(tried), "1", str(tmp_path / "o"), "--offline-tried-strength", "2").returncode == 0
    assert load(tmp_path / "o").cfg.offline_tried_strength == 2.0
    assert load(tmp_path / "o").meta["training"]["bonus_variant"]["offline_tried_strength"] == 2.0
    assert run(str(tried), "1", str(tmp_path / "z"), "--novelty", "0").returncode == 0
    assert load(tmp_path / "z").meta["training"]["bonus_variant"]["novelty"] == 0.0  # a 0 is recorded too
    assert (g.transition.key.weight == load(tried).transition.key.weight).all()
    assert g.meta["training"]["bonus_variant"]["uniform_rows"] is True
    graph = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True, transition_edges=True))
    torch.nn.init.normal_(graph.transition.edge.weight)
    graph = save(graph, tmp_path / "e", {"name": "tiny"}, {"steps": 0})
    assert run(str(graph), "1", str(tmp_path / "u"), "--uniform-rows").returncode == 0
    u = load(tmp_path / "u")  # the graph's terms are zeroed too: the rows are uniform
    assert u.cfg.transition_edges and (u.transition.edge.weight == 0).all() and (u.transition.edge.bias == 0).all()
    assert (load(graph).transition.edge.weight != 0).any()
    assert run(str(tmp_path / "v"), "1", str(tmp_path / "o"), "--offline-narrow", "0.8", "10").returncode == 0
    o = load(tmp_path / "o")
    assert (o.cfg.offline_narrow_below, o.cfg.offline_narrow_multiplier) == (0.8, 10.0)
    assert torch.isclose(o.head.bias[0], torch.log(torch.tensor(0.3)))  # the base variant's bonus kept
    variant = o.meta["training"]["bonus_variant"]
    assert variant["offline_narrow"] == [0.8, 10.0] and variant["base_variant"]["scale"] == 0.3
    rewards = save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, transition_head=True, reward_head=True)),
                   tmp_path / "r", {"name": "tiny"}, {"steps": 0})
    assert run(str(rewards), "1", str(tmp_path / "q"), "--reward-quantile", "0.9").returncode == 0
    assert load(tmp_path / "q").cfg.planner_reward_quantile == 0.9
    assert load(tmp_path / "q").meta["training"]["bonus_variant"]["reward_quantile"] == 0.9
    for args, culprit in (([str(base), "inf", str(tmp_path / "w")], "must be finite, got inf"),
                          ([str(base), "1", str(tmp_path / "w"), "--h-term-scale", "inf"], "must be finite, got inf"),
                          ([str(base), "1", str(tmp_path / "w"), "--h-term-scale", "0"], "invalid PositiveFloat"),
                          ([str(base), "1", str(tmp_path / "w"), "--novelty", "-0.1"], "invalid NonNegativeFloat"),
                          ([str(base), "1", str(tmp_path / "w"), "--tried-strength", "1"], "tried_below is 0"),
                          ([str(base), "1", str(tmp_path / "w"), "--novelty", "inf"], "must be finite, got inf"),
                          ([str(base), "1", str(tmp_path / "w"), "--pooled"], "planner_novelty is 0"),
                          ([str(base), "1", str(tmp_path / "w"), "--novelty", "0", "--pooled"], "planner_novelty is 0"),
                          ([str(base), "1", str(tmp_path / "w"), "--guess-temperature", "0.1"], "0.1: "),
                          ([str(base), "1", str(tmp_path / "w"), "--uniform-rows"], "no transition head"),
                          ([str(tried), "1", str(tmp_path / "w"), "--guess-temperature", "inf"], "must be finite"),
                          ([str(base), "1", str(tmp_path / "w"), "--offline-narrow", "1.5", "10"], "got 1.5 10"),
                          ([str(base), "1", str(tmp_path / "w"), "--offline-narrow", "0.8", "0"], "got 0.8 0"),
                          ([str(tried), "1", str(tmp_path / "w"), "--reward-quantile", "0.9"], "reward_head is false"),
                          ([str(rewards), "1", str(tmp_path / "w"), "--reward-quantile", "0.8"], "got 0.8"),
                          ([str(rewards), "1", str(tmp_path / "w"), "--reward-quantile", "nan"], "must be finite"),
                          ([str(base), "1", str(tmp_path / "w"), "--noise-h-term", "inf"],
                           "argument --noise-h-term: must be finite"),
                          ([str(tried), "1", str(tmp_path / "w"), "--offline-tried-strength", "inf"],
                           "argument --offline-tried-strength: must be finite, got inf"),
                          ([str(tried), "1", str(tmp_path / "w"), "--offline-tried-strength", "-1"],
                           "invalid NonNegativeFloat value: '-1'"),
                          ([str(base), "1", str(tmp_path / "w"), "--offline-tried-strength", "1"],
                           "transition_head is false"),
                          ([str(base), "-1", str(tmp_path / "w")], "invalid PositiveFloat value: '-1'"),
                          ([str(tmp_path / "nope"), "0.3", str(tmp_path / "w")], "nope.json: no such checkpoint"),
                          ([str(base), "0.3", str(tmp_path / "no" / "w")], "does not exist")):
        res = run(*args)
        assert res.returncode == 2 and culprit in res.stderr.strip().splitlines()[-1]
    assert not list(tmp_path.glob("w*")) and not (tmp_path / "no").exists()


def test_scripts_refuse_a_bad_predictor_prior_or_output_before_any_work(tmp_path, monkeypatch, capsys):
    """Each refusal in the script's own process (one torch import for all), the first also as a command."""
    import signal
    import subprocess

    import torch

    from rlpfn.checkpoint import save
    from rlpfn.model import RLPFN, ModelConfig

    def timeout(signum, frame):
        raise TimeoutError("the script did not refuse within 120 s")

    previous = signal.signal(signal.SIGALRM, timeout)

    torch.manual_seed(0)
    no_head = save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), tmp_path / "m", {"name": "tiny"}, {})
    for script_name, args, culprit in (
            ("regret_sources", ["--variants", "neither", "predicted", "--predictor", str(tmp_path / "nope")],
             "--predictor: " + str(tmp_path / "nope.json") + ": no such checkpoint"),
            ("regret_sources", ["--variants", "neither", "predicted", "--predictor", str(no_head)], "no transition head"),
            ("regret_sources", ["--variants", "neither", "pooled", "--shrink", "-1"], "--shrink must be a finite"),
            ("transition_probe", ["--prior", "nope"], "nope: no such prior spec"),
            ("transition_probe", ["--save", str(tmp_path / "no" / "m")], "does not exist"),
            ("oracle_rows", ["--prior", "nope", "--json", str(tmp_path / "o.json")], "nope: no such prior spec"),
            ("oracle_rows", ["--checkpoint", str(no_head), "--json", str(tmp_path / "o.json")], "no transition head"),
            ("oracle_rows", ["--variants", "oracle-new", "--mix", "0.5", "--json", str(tmp_path / "o.json")],
             "do not use: oracle-new"),
            ("oracle_rows", ["--variants", "pooled-support", "--know", "state", "--json", str(tmp_path / "o.json")],
             "do not use: pooled-support"),
            ("oracle_rows", ["--know", "state+data", "--support", "--json", str(tmp_path / "o.json")],
             "--support and --know"),
            ("oracle_rows", ["--json", str(tmp_path / "no" / "o.json")], "does not exist"),
            ("failure_census", ["--prior", "nope", "--json", str(tmp_path / "o.json")], "nope: no such prior spec"),
            ("failure_census", ["--agents", "rlpfn", "vilcb", "--json", str(tmp_path / "o.json")],
             "not an online agent"),
            ("failure_census", ["--json", str(tmp_path / "no" / "o.json")], "does not exist"),
            ("retry_probe", ["--batches", "3", "--json", str(tmp_path / "o.json")], "--batches 3: needs at least 4"),
            ("retry_probe", ["--checkpoint", str(tmp_path / "nope"), "--json", str(tmp_path / "o.json")],
             "no such checkpoint"),
            ("retry_probe", ["--variants", "1", "--out", str(tmp_path / "no" / "p"), "--json", str(tmp_path / "o.json")],
             "does not exist"),
            ("retry_probe", ["--variants", "1", "--json", str(tmp_path / "o.json")], "--variants needs --out")):
        monkeypatch.setattr(sys, "argv", [f"{script_name}.py", *args])
        signal.alarm(120)  # a script that does not refuse would start its work: fail instead of waiting for it
        try:
            with pytest.raises(SystemExit) as exit_:
                script(script_name).main()
        finally:
            signal.alarm(0)
        stderr = capsys.readouterr().err
        assert exit_.value.code == 2 and culprit in stderr.strip().splitlines()[-1], (script_name, stderr)
    signal.signal(signal.SIGALRM, previous)
    assert not (tmp_path / "no").exists() and not (tmp_path / "o.json").exists()
    res = subprocess.run([sys.executable, str(SCRIPTS / "transition_probe.py"), "--prior", "nope"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "nope: no such prior spec" in res.stderr.strip().splitlines()[-1], res.stderr


def test_the_tried_pair_prior_scores_the_true_p_below_uniform():
    """Given the true P as its prediction, the head is a better prior mean than uniform at every visit count and κ,
    and with κ → 0 both are P̂ (by L1; the cross-entropy still reads the smoothing)."""
    import torch

    mod = script("tried_pair_prior")
    g = torch.Generator().manual_seed(0)
    P = torch.rand(20, 5, 3, 5, generator=g, dtype=torch.float64) ** 4
    P = P / P.sum(-1, keepdim=True)
    seen = torch.multinomial(P.view(-1, 5), 1, generator=g).view(20, 5, 3)
    counts = torch.nn.functional.one_hot(seen, 5).double()  # one visit per pair
    counts[:5] *= 4  # and a quarter of them with 4
    counts[15:, :, 2] = 0  # action 2 untried in the last 5 runs: pairs the planner guesses
    acc = {}
    mod.add(acc, P, P, counts)
    assert acc[("1", "head", 1.0)][2] == acc[("1", "uniform", 1.0)][2] > 0 and acc[("3-5", "head", 1.0)][2] > 0
    entropy = -(P * P.clamp_min(1e-300).log()).sum(-1)[15:, :, 2].sum().item()  # the true P's own cross-entropy
    assert acc[("guessed", "head", None)][2] == 25 and abs(acc[("guessed", "head", None)][0] - entropy) < 1e-9
    for (bucket, name, k), (ce, l1, m) in acc.items():
        if name == "head" and m > 0:
            uni = acc[(bucket, "uniform", k)]
            assert ce < uni[0]
            if k is not None and k < 1e-3:  # both P̂, up to the smoothing
                assert abs(l1 - uni[1]) < 1e-4 * m


def test_the_oracle_plans_with_the_true_rows_of_the_pairs_it_asks_for():
    """scripts/oracle_rows.py: the model's transition head replaced by the MDP's own rows, run by run; `oracle-untried`
    asks for untried pairs only, `oracle-tried` for tried ones too."""
    import torch

    from rlpfn.experiments.evaluate import validation_mdps
    from rlpfn.traces import run_trace

    mod = script("oracle_rows")
    batch = validation_mdps("tiny", 1, seed=3)[0]
    P = torch.as_tensor(batch.P, dtype=torch.float64)
    for variant, tried in (("oracle-untried", False), ("oracle-tried", True)):
        agent = mod.oracle_agent(variant, None)
        seen = {}
        refresh = agent._refresh
        agent._refresh = lambda *args: (seen.update(counts=agent.stats.counts.clone()), refresh(*args))
        run_trace(batch, agent, 2, seed=0, n_runs=len(batch))
        (b, s, a), log_rows = agent.out.successor_rows  # the rows of the last pass (episode 2's start)
        assert len(b) > 0
        torch.testing.assert_close(log_rows.exp(), P[b, s, a], rtol=0, atol=1e-12)
        counts = seen["counts"][b, s, a]  # [K,S] what run b had seen of (s, a) when the pass asked
        assert bool((counts.sum(-1) > 0).any()) == tried
        assert bool((log_rows.exp()[counts > 0] > 0).all())  # run b's row is its own MDP's: it allows what b saw
    agent = mod.oracle_agent("oracle-untried", None, know="state")  # each row: the mean over the state's actions
    run_trace(batch, agent, 2, seed=0, n_runs=len(batch))
    (b, s, a), log_rows = agent.out.successor_rows
    assert len(b) > 0
    torch.testing.assert_close(log_rows.exp(), P.mean(2)[b, s], rtol=0, atol=1e-12)
    assert not torch.allclose(P.mean(2)[b, s], P[b, s, a])  # not the pairs' own rows
    agent = mod.oracle_agent("oracle-few", None, 1.0, know="state+data")  # the state's rows, by the posterior
    seen = {}
    refresh = agent._refresh
    agent._refresh = lambda *args: (seen.update(counts=agent.stats.counts.clone()), refresh(*args))
    run_trace(batch, agent, 3, seed=0, n_runs=len(batch))
    (b, s, a), log_rows = agent.out.successor_rows
    w = mod.label_posterior(seen["counts"][b, s], P[b, s])[torch.arange(len(a)), a]  # [K,A']
    torch.testing.assert_close(log_rows.exp(), (w[:, None] @ P[b, s])[:, 0], rtol=0, atol=1e-12)
    assert bool((seen["counts"][b, s, a].sum(-1) > 0).any())  # tried pairs among them: their data weigh in
    assert not torch.allclose(log_rows.exp(), P.mean(2)[b, s])  # not `state`'s rows


def test_the_reward_oracle_and_rule_set_a_guessed_pair_s_reward_and_nothing_else():
    """scripts/oracle_rows.py `oracle-reward`: the reward head's place taken by the MDP's true mean rewards (scaled to
    [0, 1]); `state-reward`: by the best mean reward seen at the pair's state plus the margin. At the last step a
    guessed pair is worth exactly that reward; the checkpoint's rows are its own."""
    import torch

    from rlpfn.experiments.evaluate import validation_mdps
    from rlpfn.model import guessed_pairs
    from rlpfn.traces import run_trace

    mod = script("oracle_rows")
    batch = validation_mdps("tiny", 1, seed=3)[0]
    R = (torch.as_tensor(batch.R) - batch.r_min) / (batch.r_max - batch.r_min)
    for variant in ("oracle-reward", "state-reward"):
        agent = mod.oracle_agent(variant, None, margin=0.25)
        seen = {}
        refresh = agent._refresh
        agent._refresh = lambda *args: (seen.update(stats=agent.stats.rows(torch.arange(agent.stats.n_runs))), refresh(*args))
        run_trace(batch, agent, 2, seed=0, n_runs=len(batch))
        _, r_hat, n = seen["stats"].empirical(sparse=False)
        guessed = guessed_pairs(n)
        assert guessed.any()
        if variant == "oracle-reward":
            expected = R.to(torch.float64)
        else:
            expected = (torch.where(n > 0, r_hat, 0.0).amax(-1, keepdim=True) + 0.25).clamp(max=1).expand_as(r_hat)
        last = agent.out.q_plan[:, -1]  # [B,S,A] at h = H-1: one step of reward
        torch.testing.assert_close(last[guessed], expected[guessed].to(last.dtype), rtol=0, atol=1e-6)


def test_the_label_posterior_gives_a_state_s_rows_to_the_actions_whose_data_fit_them():
    """scripts/oracle_rows.py --know state+data: a state's three actions lead to states 0, 1 and 2 for sure; action 0
    was tried and led to 1, so it is the action of row 1, and the two untried actions share rows 0 and 2."""
    import torch

    mod = script("oracle_rows")
    P = torch.eye(3, dtype=torch.float64)[None]  # [K=1, A'=3, S=3]: row a' leads to state a'
    counts = torch.zeros(1, 3, 3)
    counts[0, 0, 1] = 2
    w = mod.label_posterior(counts, P)[0]
    torch.testing.assert_close(w[0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(w[1:], torch.tensor([[0.5, 0.0, 0.5]] * 2, dtype=torch.float64), atol=1e-12, rtol=0)
    flat = mod.label_posterior(torch.zeros(1, 3, 3), P)[0]  # nothing tried: every labelling alike
    torch.testing.assert_close(flat, torch.full((3, 3), 1 / 3, dtype=torch.float64))
    # two tried actions competing for two rows: 5 and 3 visits to state 3, rows giving it 0.5 and 0.25. Labellings:
    # (0.5^5·0.25^3) against (0.25^5·0.5^3), odds 4 : 1 (a doubly stochastic scaling would give 2 : 1)
    counts = torch.zeros(1, 2, 4)
    counts[0, 0, 3], counts[0, 1, 3] = 5, 3
    rows = torch.tensor([[[0, 0, 0.5, 0.5], [0, 0, 0.75, 0.25]]], dtype=torch.float64)
    torch.testing.assert_close(mod.label_posterior(counts, rows)[0], torch.tensor([[0.8, 0.2], [0.2, 0.8]],
                               dtype=torch.float64), atol=1e-12, rtol=0)


def test_the_label_posterior_is_the_posterior_over_labellings():
    """Against brute force over every permutation, on random states of 4 actions, two of them untried."""
    import itertools

    import torch

    mod = script("oracle_rows")
    g = torch.Generator().manual_seed(0)
    P = torch.rand(6, 4, 5, generator=g, dtype=torch.float64) ** 3
    P = P / P.sum(-1, keepdim=True)
    counts = torch.poisson(torch.full((6, 4, 5), 0.6), generator=g).double()
    counts[:, 2:] = 0
    exact = torch.zeros(6, 4, 4, dtype=torch.float64)
    for k in range(6):
        for perm in itertools.permutations(range(4)):
            lik = torch.stack([(P[k, perm[a]] ** counts[k, a]).prod() for a in range(4)]).prod()
            exact[k, range(4), list(perm)] += lik
        exact[k] /= exact[k].sum(-1, keepdim=True)
    torch.testing.assert_close(mod.label_posterior(counts, P), exact, atol=1e-12, rtol=0)
    # ten actions and rows with zeros: Ryser's signed sums leave round-off, which must not make a weight negative
    # (a negative weight gives a row a negative entry, and its log a NaN in the planner)
    P = torch.rand(50, 10, 12, generator=g, dtype=torch.float64) ** 8
    P = P * (P > 0.01)
    P = P / P.sum(-1, keepdim=True)
    seen = torch.multinomial(P.view(-1, 12), 4, replacement=True, generator=g).view(50, 10, 4)
    ones = torch.ones(50, 10, 4, dtype=torch.float64)
    counts = torch.zeros(50, 10, 12, dtype=torch.float64).scatter_add_(2, seen, ones)
    counts[:, 6:] = 0
    w = mod.label_posterior(counts, P)
    assert bool((w >= 0).all()) and torch.allclose(w.sum(-1), torch.ones(50, 10, dtype=torch.float64))
    assert bool(((w @ P) >= 0).all())


def test_the_oracles_own_rows_from_the_counts_by_hand():
    """`oracle-new`: P̂ on states where some action was tried, the true mass to the others spread evenly; an
    untried pair keeps its true row. `pooled-support`: uniform over where the state's actions led; untried pairs
    get the head's row."""
    import torch

    mod = script("oracle_rows")
    S = 4
    P = torch.zeros(1, S, 2, S, dtype=torch.float64)
    P[0, 0, 0] = torch.tensor([0.5, 0.1, 0.3, 0.1])
    P[0, 0, 1] = torch.tensor([0.0, 0.2, 0.0, 0.8])
    counts = torch.zeros(1, S, 2, S)
    counts[0, 0, 0, 0] = 2  # (0, 0) led to 0 twice and to 2 once; state 2 was never acted from
    counts[0, 0, 0, 2] = 1
    counts[0, 1, 0, 0] = 1  # something was tried at state 1: states 2, 3 are new
    pairs = (torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([0, 1]))  # (0, 0) tried, (0, 1) not
    rows = mod.TrueRows(P, new_mass=True)
    got = rows(None, pairs, counts).exp()
    # old states {0, 1}: P̂ there is (1, 0); the true mass to {2, 3} is 0.3 + 0.1 = 0.4, spread evenly
    torch.testing.assert_close(got[0], torch.tensor([0.6, 0.0, 0.2, 0.2], dtype=torch.float64))
    torch.testing.assert_close(got[1], P[0, 0, 1])

    head = lambda h, pairs, counts: torch.full((len(pairs[0]), S), -3.0)  # noqa: E731 (any log row, to tell apart)
    pooled = mod.TrueRows(P, head, pooled=True)
    got = pooled(None, pairs, counts)
    torch.testing.assert_close(got[0].exp(), torch.tensor([0.5, 0.0, 0.5, 0.0], dtype=torch.float64))
    assert bool((got[1] == -3.0).all())


def test_the_tried_pair_prior_scores_the_state_and_true_rows_as_bounds():
    """--rows state / true: P̃ from the MDP itself (no model). At the guessed pairs the true rows' cross-entropy is the
    least of any prediction (Gibbs), so below the state's mean row and uniform."""
    mod = script("tried_pair_prior")
    true = mod.score(None, "tiny", 2, 0, batch_size=4, rows="true")
    state = mod.score(None, "tiny", 2, 0, batch_size=4, rows="state")
    g_true, g_state, g_uniform = true[("guessed", "head", None)], state[("guessed", "head", None)], \
        state[("guessed", "uniform", None)]
    assert g_true[2] == g_state[2] > 0
    assert g_true[0] < g_state[0] < g_uniform[0]
    assert g_true[1] < 1e-12 < g_state[1]  # L1: the true rows are exact, the state's mean is not


def test_paired_curves_pair_by_step_and_window_the_shared_steps(tmp_path):
    curves = script("paired_curves")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("step,loss,other\n0,1.0,\n10,2.0,\n20,3.0,\n30,9.0,\n")
    b.write_text("step,loss\n0,0.5\n10,1.0\n20,2.0\n40,1.0\n")
    first, second = curves.read_metric(a, "loss"), curves.read_metric(b, "loss")
    assert curves.read_metric(a, "other") == {}  # rows without the metric are skipped
    rows = curves.windows(first, second, width=20)  # steps 0, 10 in the first window, 20 in the second; 30, 40 unshared
    assert [(r["steps"], r["n"]) for r in rows] == [("0-19", 2), ("20-39", 1)]
    assert rows[0]["diff"] == -0.75 and rows[0]["first"] == 1.5 and rows[0]["second"] == 0.75
    assert rows[0]["ci"] > 0 and rows[1]["diff"] == -1.0 and rows[1]["ci"] == 0.0
    with pytest.raises(KeyError, match="no column 'nope'"):
        curves.read_metric(a, "nope")
    (tmp_path / "c.csv").write_text("no,header here\n1,2\n")
    with pytest.raises(KeyError, match="no column 'step'"):
        curves.read_metric(tmp_path / "c.csv", "loss")


def test_informed_psrl_draws_near_its_prior_rows_when_they_weigh_much_and_near_the_data_when_they_weigh_little():
    """scripts/psrl_prior.py: P ~ Dirichlet(α0 + κ·P_prior + N). With κ = 10⁶ true rows the draw is the MDP's own P,
    run by run; with κ = 10⁻⁶ a pair seen 10⁴ times is drawn at its empirical row. The `head` source's prior rows
    are the shipped model's prediction at the episode's start: one distribution per pair, read again each episode."""
    import torch

    from rlpfn.agents import AgentSpec
    from rlpfn.experiments.evaluate import validation_mdps
    from rlpfn.traces import run_trace

    mod = script("psrl_prior")
    batch = validation_mdps("tiny", 1, seed=3)[0]
    P = torch.as_tensor(batch.P, dtype=torch.float64)
    spec, N = AgentSpec.of(batch), len(batch)
    agent = mod.informed_psrl("true", 1e6)
    agent.reset(spec, N, seed=0, mdp=batch)
    torch.testing.assert_close(torch.cat(list(agent.draw_rows(N))).double(), P, rtol=0, atol=0.01)
    agent = mod.informed_psrl("true", 1e-6)
    agent.reset(spec, N, seed=0, mdp=batch)
    g = torch.Generator().manual_seed(0)
    empirical = torch.rand(P.shape, dtype=torch.float64, generator=g)
    empirical /= empirical.sum(-1, keepdim=True)
    agent.stats.counts = (empirical * 1e4).round()
    drawn = torch.cat(list(agent.draw_rows(N))).double()
    torch.testing.assert_close(drawn, agent.stats.counts / agent.stats.counts.sum(-1, keepdim=True), rtol=0, atol=0.05)
    assert (drawn - P).abs().max() > 0.2  # the data, not the true rows
    agent = mod.informed_psrl("head", 1.0)
    seen = []
    prior_rows = agent.prior_rows
    agent.prior_rows = lambda: seen.append(prior_rows()) or seen[-1]
    run_trace(batch, agent, 2, seed=0, n_runs=N)
    assert agent.episode == 2 and len(seen) == 2
    assert seen[0].shape == P.shape
    torch.testing.assert_close(seen[1].sum(-1), torch.ones(P.shape[:-1], dtype=torch.float64))
    assert not torch.allclose(seen[0], seen[1])  # the second episode's rows read the first one's data


def test_informed_psrl_names_its_agents_and_writes_validate_s_format(tmp_path):
    """scripts/psrl_prior.py: each (source, κ, σ, adaptive) gets a name; the JSON holds one regret per MDP under each
    name; two values that name the same agent, or an infinite κ, are refused before any work, the culprit named."""
    import json
    import subprocess

    mod = script("psrl_prior")
    assert mod.agent_label("true", 1.0, 1.0, False) == "true-k1"
    assert mod.agent_label("head", 1e-6, 0.1, True) == "head-k1e-06-s0.1-adaptive"
    out = tmp_path / "p.json"
    cmd = [sys.executable, str(SCRIPTS / "psrl_prior.py"), "--prior", "tiny", "--batches", "1", "--episodes", "2",
           "--workers", "1", "--references", "psrl", "--sources", "true", "--kappas", "1e-6", "1",
           "--sigmas", "0.1", "--adaptive", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    regret = json.loads(out.read_text())["regret"]
    assert list(regret) == ["psrl", "true-k1e-06-s0.1-adaptive", "true-k1-s0.1-adaptive"]
    assert all(len(r) == 8 for r in regret.values())
    res = subprocess.run(cmd[:-2] + ["--kappas", "1", "1.0", "--json", str(tmp_path / "q.json")], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and "named twice" in res.stderr and "true-k1-s0.1-adaptive" in res.stderr
    res = subprocess.run(cmd[:-2] + ["--kappas", "1", "inf", "--json", str(tmp_path / "q.json")], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and "--kappas: must be finite, got 1.0 inf" in res.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "q.json").exists()


def test_the_failure_census_reproduces_validate_and_finds_the_pair_a_run_is_stuck_on():
    """The census's regrets are validate's, MDP by MDP; and in a run that took action 0 at a state all along and the
    better action 1 once, the stuck pair is (state, 0), taken T - 1 times against the optimal action's 1."""
    import types

    import numpy as np
    import torch

    from rlpfn.agents import make_agent
    from rlpfn.experiments.evaluate import prior_regret
    from rlpfn.experiments.validate import held_out_batch

    mod = script("failure_census")
    records = mod.census("tiny", 1, 3, 0, ["rlpfn", "ucbvi"])
    mdps, seed = held_out_batch("tiny", 1, 0, 0)
    for label in ("rlpfn", "ucbvi"):
        assert np.allclose([r[label]["regret"] for r in records], prior_regret(mdps, make_agent(label), 3, seed),
                           atol=1e-12, rtol=0)
    H, episodes = 4, 5
    T = H * episodes
    a = torch.zeros(1, T, dtype=torch.long)
    a[0, 2] = 1
    trace = types.SimpleNamespace(s=torch.zeros(1, T, dtype=torch.long), a=a)
    Q = torch.zeros(H, 2, 2, dtype=torch.float64)
    Q[:, 0, 1] = 1.0  # action 1 is the better one at state 0
    gap = (1.0 - Q[0, 0][a]).double()  # [1, T]: 1 per step on action 0
    worst = mod._worst_pair(trace, gap, Q, 0, episodes, H)
    assert worst == {"cost": float(H), "of": float(H), "taken": T - 1, "optimal": 1, "states_visited": 1}
    Q[1:, 0] = torch.tensor([1.0, 0.0])  # action 0 optimal from stage 1 (the median of 0..3) on: read there
    assert mod._worst_pair(trace, gap, Q, 0, episodes, H)["optimal"] == T - 1
    assert mod._worst_pair(trace, torch.zeros(1, T, dtype=torch.float64), Q, 0, episodes, H) is None

    # two states: the optimal policy moves 0 -> 1 and stays (occupancy H-1 of H steps at state 1)
    P = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    P[0, :, 0, 1] = 1.0
    occupancy = mod.optimal_occupancy(torch.ones(1, H, 2, 1, dtype=torch.float64), P,
                                      torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    assert torch.equal(occupancy, torch.tensor([[1.0, H - 1.0]], dtype=torch.float64))
    # run 0 pays 1 a step in the last episode only and never leaves state 0; run 1 pays 1 a step throughout
    gap = torch.zeros(2, T, dtype=torch.float64)
    gap[0, -H:] = 1.0
    gap[1] = 1.0
    states = torch.zeros(2, T, dtype=torch.long)
    states[1, 1:] = 1
    regret, late, missed = mod.run_figures(states, gap, torch.full((2,), float(T)), occupancy.expand(2, 2), episodes,
                                           H)
    assert np.allclose(regret, [H / T, 1.0]) and np.allclose(late, [1.0, 1.0])  # per episode, as the whole run's
    assert missed.tolist() == [True, False]


def test_the_retry_probe_scores_and_writes_its_row():
    """AUC is the share of (positive, negative) pairs ranked right; the logistic fit separates separable data; the α
    row it writes multiplies a pair's bonus by exp(β·(logit - centre)), × 1 at the centre."""
    import torch

    from rlpfn.model import RLPFN, ModelConfig

    mod = script("retry_probe")
    y = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    assert mod.auc(torch.tensor([0.1, 0.4, 0.5, 0.8], dtype=torch.float64), y) == 0.75
    Z = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    labels = (Z[:, 0] - Z[:, 2] > 0).double()
    score, (w, b) = mod.standardized_fit(Z, labels)
    assert mod.auc(score(Z), labels) > 0.99 and torch.allclose(score(Z), Z @ w + b)
    model = RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2))
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    before = model.head(x)[:, 0].detach()
    w16 = torch.randn(16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mod.with_retry_row(model, w16, 0.5, 0.2, 2.0)
    torch.testing.assert_close(model.head(x)[:, 0].detach().double(), before.double() + 2.0 * (x.double() @ w16 + 0.3),
                               atol=1e-5, rtol=0)
