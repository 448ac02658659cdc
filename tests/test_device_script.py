"""scripts/device_es.sh, the prepared device check of issue 9, runs end to end on CPU at a smoke size (on a machine
without a GPU it times the CPU path only, then trains on it until its time is up), and a run it brought back is
continued by the next call."""
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
           "TOTAL_SECONDS": str(seconds), "CHECKPOINT_EVERY": "1", "RESUME_DIR": str(resume), "ES_PRIOR": "tiny"}
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
    res = _run(tmp_path / "second", resume, 35)  # no timing: all of it trains
    assert "resuming" in res.stdout and "best:" not in res.stdout
    assert _step(tmp_path / "second" / "run") > first
