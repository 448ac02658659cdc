"""The prepared device runs of issue 9 (scripts/device_es.sh, scripts/device_transitions.sh) run end to end on CPU at
a smoke size (on a machine without a GPU the ES one times the CPU path only, then trains until its time is up), and a
run they brought back is continued by the next call."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rlpfn.checkpoint import load

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, resume: Path, seconds: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "ES_EPISODES": "2", "ES_PAIRS": "1",
           "TOTAL_SECONDS": str(seconds), "CHECKPOINT_EVERY": "1", "RESUME_DIR": str(resume), "ES_PRIOR": "tiny",
           "STOP_GRACE": "10"}
    res = subprocess.run(["bash", "scripts/device_es.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert len([f for f in out.rglob("*") if f.is_file()]) <= 8  # what the device tool brings back
    return res


def _step(run: Path) -> int:
    return json.loads((run / "progress.json").read_text())["global_step"]


def test_device_script_times_trains_and_a_later_call_resumes_the_run(tmp_path):
    resume = tmp_path / "resume"
    res = _run(tmp_path / "first", resume, 50)  # the timing takes about 20 s, the run the rest
    assert "CPU, " in res.stdout and "best: cpu 1" in res.stdout and "failed" not in res.stderr
    assert json.loads((tmp_path / "first" / "timing.json").read_text())["cpu"]["pairs"] == 1
    run = tmp_path / "first" / "run"
    assert (run / "last.ckpt").exists() and "--es.pairs 1 " in (run / "options").read_text()
    assert "--data.prior tiny" in (run / "options").read_text()
    assert load(run / "model").cfg.unvisited_linear
    first = _step(run)
    assert first > 0

    shutil.copytree(run, resume)  # what a session commits into resume/es-gpu
    res = _run(tmp_path / "second", resume, 40)  # no timing: all of it trains
    assert "resuming" in res.stdout and "best:" not in res.stdout
    assert _step(tmp_path / "second" / "run") > first


def test_device_transitions_script_trains_a_small_head_and_a_later_call_resumes_it(tmp_path):
    """scripts/device_transitions.sh (the prepared GPU run for the transition head) at a smoke size on CPU: a model
    comes back with the options it was asked for, and a second call continues that run instead of starting anew."""
    def run(out: Path, seconds: int) -> subprocess.CompletedProcess:
        env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "TOTAL_SECONDS": str(seconds),
               "D_MODEL": "16", "N_LAYERS": "1", "BATCH": "2", "PRIOR": "tiny", "MAX_STEPS": "1000", "CHECKPOINT_EVERY": "1",
               "RESUME_DIR": str(tmp_path / "resume"), "STOP_GRACE": "10"}
        res = subprocess.run(["bash", "scripts/device_transitions.sh"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr  # 0: a model that trained in this call came back
        assert len([f for f in out.rglob("*") if f.is_file()]) <= 8  # what the device tool brings back
        return res

    run(tmp_path / "first", 45)  # setup about 12 s, pretrain's start about 10 s: the rest trains (tiny prior: ~5 steps/s)
    first = tmp_path / "first" / "run"
    options = (first / "options").read_text()
    assert "--config transitions-tried --model.d_model 16 --model.n_layers 1" in options
    assert "--data.prior tiny" in options and "--trainer.max_steps 1000" in options and "--trainer.accelerator cpu" in options
    assert load(first / "model").cfg.d_model == 16
    before = _step(first)
    assert before > 0
    shutil.copytree(first, tmp_path / "resume")  # what a session copies into resume/transitions-gpu
    res = run(tmp_path / "second", 40)
    assert "resuming" in res.stdout
    assert (tmp_path / "second" / "run" / "options").read_text() == options
    assert _step(tmp_path / "second" / "run") > before


def test_device_scripts_refuse_a_stop_grace_that_would_never_kill(tmp_path):
    """STOP_GRACE=0 would turn timeout's SIGKILL off, and a word would silently skip training: both refused."""
    for script in ("scripts/device_transitions.sh", "scripts/device_es.sh"):
        for bad in ("0", "ten", "-5"):
            env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "STOP_GRACE": bad,
                   "RESUME_DIR": str(tmp_path / "none")}
            res = subprocess.run(["bash", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert res.returncode == 1
            assert f"STOP_GRACE must be a positive whole number of seconds, got '{bad}'" in res.stderr
