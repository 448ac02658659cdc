"""The suite runner: job bookkeeping, the tuned-in-hindsight upper bound, saved cells and quiet stops."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import torch
import pytest

from rlpfn.agents import make_agent
from rlpfn.experiments.suite import SuiteConfig, run_suite
from rlpfn.experiments.tune import GRIDS


def test_hindsight_keeps_the_best_grid_entry_per_benchmark():
    cfg = SuiteConfig(benchmarks=["riverswim", "chain"], agents=["psrl", "vilcb"],
                      episodes=8, seeds=2, epsilons=[0.5], dataset_sizes=[10], hindsight=True, workers=1)
    res = run_suite(cfg, progress=False)
    grid = {a: [{**make_agent(a).hparams(), **g} for g in GRIDS[a]] for a in ("psrl", "vilcb")}
    # tuning picks defaults from the grid, so the default is one of the hindsight candidates
    assert make_agent("psrl").hparams() in grid["psrl"] and make_agent("vilcb").hparams() in grid["vilcb"]
    for b in cfg.benchmarks:
        online = {e["agent"]: e for e in res["online"] if e["benchmark"] == b}
        assert set(online) == {"psrl", "psrl@hindsight"}  # one best entry, not the whole grid
        assert online["psrl@hindsight"]["hparams"] in grid["psrl"]  # which one: the next test
        offline = {e["agent"]: e for e in res["offline"] if e["benchmark"] == b}
        assert set(offline) == {"vilcb", "vilcb@hindsight"}
        assert np.mean(offline["vilcb@hindsight"]["scores"]) >= np.mean(offline["vilcb"]["scores"]) - 1e-12


def test_hindsight_runs_a_stackable_grid_as_one_batch_per_seed_group(monkeypatch):
    """Q-learning's grid runs as one stacked batch per seed group (chunked to fit STACK_BYTES); the hindsight entry is
    the grid entry with the least mean regret over those batches' blocks, seed groups joined."""
    from rlpfn.agents import stacked
    from rlpfn.benchmarks import make_benchmark
    from rlpfn.experiments import suite
    from rlpfn.experiments.evaluate import run_online

    cfg = SuiteConfig(benchmarks=["riverswim"], agents=["qlearning"], parts=["online"], episodes=6, seeds=7, seed=2,
                      hindsight=True, workers=1)
    grid = GRIDS["qlearning"]
    jobs = suite._jobs(cfg, {"riverswim": (6, 2, 20)})
    assert [(j.label, j.n_seeds, len(j.grid)) for j in jobs] == [
        ("qlearning", 5, 0), ("qlearning", 2, 0),
        ("qlearning@hindsight", 5, len(grid)), ("qlearning@hindsight", 2, len(grid))]
    mdp = make_benchmark("riverswim")
    blocks = [run_online(mdp, stacked("qlearning", grid), 6, n * len(grid), 2 + suite.SEED_STRIDE * g).regret.reshape(
        len(grid), n, 6) for g, n in ((0, 5), (1, 2))]
    regret = np.concatenate(blocks, 1)  # [grid entry, seed, episode]
    best = int(regret.sum(2).mean(1).argmin())
    entry = next(e for e in run_suite(cfg, progress=False)["online"] if e["agent"] == "qlearning@hindsight")
    assert entry["hparams"] == make_agent("qlearning", **grid[best]).hparams()
    assert np.array_equal(entry["regret"], regret[best])
    per_entry = suite.rollout_bytes(5, cfg.episodes, 20, 6, 2)
    monkeypatch.setattr(suite, "STACK_BYTES", 7 * per_entry)  # chunks of 7 entries
    chunks = [j.grid for j in suite._jobs(cfg, {"riverswim": (6, 2, 20)}) if j.grid and j.group == 0]
    assert [len(c) for c in chunks] == [7] * (len(grid) // 7) + ([len(grid) % 7] if len(grid) % 7 else [])
    assert [hp for c in chunks for hp in c] == [tuple(sorted(hp.items())) for hp in grid]
    # UCB-VI's grid splits by bonus (the one hyperparameter a stack cannot vary), in grid order
    monkeypatch.undo()
    cfg.agents = ["ucbvi"]
    chunks = [j.grid for j in suite._jobs(cfg, {"riverswim": (6, 2, 20)}) if j.grid and j.group == 0]
    assert [{dict(hp)["bonus"] for hp in c} for c in chunks] == [{"hoeffding"}, {"bernstein"}]
    assert [hp for c in chunks for hp in c] == [tuple(sorted(hp.items())) for hp in GRIDS["ucbvi"]]


def test_same_seed_same_results():
    cfg = SuiteConfig(benchmarks=["riverswim"], agents=["ucbvi", "bc"], episodes=5,
                      seeds=2, epsilons=[1.0], dataset_sizes=[10], workers=1)
    a, b = run_suite(cfg, progress=False), run_suite(cfg, progress=False)
    assert a["online"][0]["regret"] == b["online"][0]["regret"]
    assert a["offline"][0]["scores"] == b["offline"][0]["scores"]


def test_seed_groups_are_merged_and_match_direct_runs():
    """12 seeds run as groups of 5, 5 and 2; group g is exactly run_online with base seed
    seed + SEED_STRIDE·g, whatever the number of workers."""
    from rlpfn.benchmarks import make_benchmark
    from rlpfn.experiments.evaluate import run_online
    from rlpfn.experiments.suite import SEED_GROUP, SEED_STRIDE

    cfg = SuiteConfig(benchmarks=["riverswim"], agents=["qlearning"], episodes=4,
                      seeds=12, seed=3, workers=1)
    res = run_suite(cfg, progress=False)
    (entry,) = res["online"]
    regret = np.array(entry["regret"])
    assert regret.shape == (12, 4)
    mdp = make_benchmark("riverswim")
    for g, (lo, hi) in enumerate([(0, 5), (5, 10), (10, 12)]):
        direct = run_online(mdp, make_agent("qlearning"), 4, hi - lo, 3 + SEED_STRIDE * g)
        assert np.array_equal(regret[lo:hi], direct.regret)
    assert SEED_GROUP == 5
    cfg.workers = 2
    assert run_suite(cfg, progress=False)["online"][0]["regret"] == entry["regret"]


def test_benchmark_killed_then_rerun_resumes_from_its_saved_cells(tmp_path):
    """SIGKILL mid-run, rerun into the same --out: finished cells are reused, the rest run, and the results equal
    an uninterrupted run's."""
    argv = [sys.executable, "-m", "rlpfn.cli", "benchmark", "--benchmarks", "riverswim", "chain", "--agents", "ucbvi",
            "qlearning", "vilcb", "--episodes", "300", "--seeds", "2", "--workers", "1", "--quiet", "--out"]
    proc = subprocess.Popen([*argv, str(tmp_path / "a")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    whole = subprocess.Popen([*argv, str(tmp_path / "b")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _killed_then_rerun(argv, tmp_path, proc, whole)
    finally:
        whole.kill()


def _killed_then_rerun(argv, tmp_path, proc, whole):
    cells = tmp_path / "a" / "cells"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cells.glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = {p.name: p.read_text() for p in cells.glob("*.json")}
    assert 3 <= len(saved) < 16 and not (tmp_path / "a" / "results.json").exists()
    res = subprocess.run([*argv, str(tmp_path / "a")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"resuming: {len(saved)} of 16 cells" in res.stderr
    assert all((cells / name).read_text() == text for name, text in saved.items())  # reused, not rerun
    err = whole.communicate(timeout=300)[1]  # the uninterrupted run, beside the others
    assert whole.returncode == 0, err
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b"))
    for kind, field in (("online", "regret"), ("offline", "scores")):
        assert [(e["benchmark"], e["agent"], e[field]) for e in a[kind]] == \
               [(e["benchmark"], e["agent"], e[field]) for e in b[kind]]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_benchmark_stopped_by_a_signal_says_one_line_and_keeps_its_cells(tmp_path, sig, code):
    argv = [sys.executable, "-m", "rlpfn.cli", "benchmark", "--benchmarks", "riverswim", "chain", "--agents", "ucbvi",
            "qlearning", "--episodes", "400", "--seeds", "2", "--workers", "2", "--out", str(tmp_path), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "cells").glob("*.json")):
        time.sleep(0.05)
    proc.send_signal(sig)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == code
    assert err.strip().splitlines() == [f"rlpfn: stopped by {sig.name}; finished cells are saved in OUT/cells; "
                                        "the same command resumes"]
    assert list((tmp_path / "cells").glob("*.json")) and not (tmp_path / "results.json").exists()


def test_agents_with_hyperparameters_run_under_their_own_labels(tmp_path):
    """'ucbvi[scale=0.3]' runs beside 'ucbvi' as its own agent, exactly as make_agent('ucbvi', scale=0.3) would; an
    offline agent likewise."""
    from rlpfn.benchmarks import make_benchmark
    from rlpfn.experiments.evaluate import run_offline, run_online

    cfg = SuiteConfig(benchmarks=["riverswim"], agents=["ucbvi", "ucbvi[scale=0.3]", "vilcb[scale=0.5]"], episodes=4,
                      seeds=2, epsilons=[1.0], dataset_sizes=[10], workers=1)
    assert cfg.online_agents == ["ucbvi", "ucbvi[scale=0.3]"] and cfg.offline_agents == ["vilcb[scale=0.5]"]
    res = run_suite(cfg, progress=False)
    online = {e["agent"]: e for e in res["online"]}
    mdp = make_benchmark("riverswim")
    assert online["ucbvi[scale=0.3]"]["hparams"] == make_agent("ucbvi", scale=0.3).hparams() != online["ucbvi"]["hparams"]
    assert online["ucbvi[scale=0.3]"]["regret"] == run_online(mdp, make_agent("ucbvi", scale=0.3), 4, 2, 0).regret.tolist()
    (offline,) = res["offline"]
    assert offline["agent"] == "vilcb[scale=0.5]" and offline["hparams"]["scale"] == 0.5
    assert offline["scores"] == run_offline(mdp, make_agent("vilcb", scale=0.5), 1.0, 10, 2, 0).scores.tolist()


def test_a_saved_cell_of_a_checkpoint_agent_is_not_reused_once_its_weights_change(tmp_path):
    from rlpfn.checkpoint import save
    from rlpfn.experiments import suite
    from rlpfn.model import RLPFN, ModelConfig

    path = tmp_path / "mine"
    torch.manual_seed(0)
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), path, {}, {})
    cfg = SuiteConfig(benchmarks=["riverswim"], agents=[f"rlpfn[checkpoint={path}]"], parts=["online"], episodes=4,
                      seeds=2, workers=1)
    (job,) = suite._jobs(cfg, {"riverswim": (6, 2, 20)})
    assert job.agent == "rlpfn" and dict(job.hparams) == {"checkpoint": str(path)}
    before = suite.cell_key(job, cfg)
    assert suite.cell_key(job, cfg) == before
    torch.manual_seed(1)
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), path, {}, {})  # same path, other weights
    assert suite.cell_key(job, cfg) != before


def test_a_saved_cell_of_the_shipped_model_is_not_reused_once_the_shipped_checkpoint_changes(tmp_path, monkeypatch):
    """The shipped model's cells are keyed on its checkpoint too, its model config as well as its weights (the same
    weights with another setting act differently); a classical agent's cells are not."""
    from rlpfn import checkpoint
    from rlpfn.checkpoint import save
    from rlpfn.experiments import suite
    from rlpfn.model import RLPFN, ModelConfig

    shipped = tmp_path / "shipped"
    monkeypatch.setattr(checkpoint, "shipped_path", lambda architecture="rlpfn": shipped)
    torch.manual_seed(0)
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2)), shipped, {}, {})
    cfg = SuiteConfig(benchmarks=["riverswim"], agents=["rlpfn", "ucbvi"], parts=["online"], episodes=4, seeds=2,
                      workers=1)
    jobs = {j.agent: j for j in suite._jobs(cfg, {"riverswim": (6, 2, 20)})}
    before = {a: suite.cell_key(j, cfg) for a, j in jobs.items()}
    before_sha = checkpoint.read_config(shipped)["sha256"]
    torch.manual_seed(0)
    save(RLPFN(ModelConfig(d_model=16, n_layers=1, n_heads=2, ucb_scale=0.3)), shipped, {}, {})  # same weights
    assert checkpoint.read_config(shipped)["sha256"] == before_sha
    assert suite.cell_key(jobs["rlpfn"], cfg) != before["rlpfn"]
    assert suite.cell_key(jobs["ucbvi"], cfg) == before["ucbvi"]
