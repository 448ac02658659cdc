"""scripts/device_es.sh, the prepared device check of issue 9, runs end to end on CPU at a smoke size (on a machine
without a GPU it times the CPU path only, then trains on it until its time is up)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from rlpfn.checkpoint import load

ROOT = Path(__file__).resolve().parents[1]


def test_device_script_smoke_run_times_the_cpu_and_leaves_a_resumable_run(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "ES_EPISODES": "2", "ES_PAIRS": "1",
           "TOTAL_SECONDS": "60", "CHECKPOINT_EVERY": "1"}
    res = subprocess.run(["bash", "scripts/device_es.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "CPU, " in res.stdout and "best: cpu 1" in res.stdout and "failed" not in res.stderr
    assert json.loads((tmp_path / "timing.json").read_text())["cpu"]["pairs"] == 1
    run = tmp_path / "run"
    assert (run / "last.ckpt").exists() and '"global_step"' in (run / "progress.json").read_text()
    assert load(run / "model").cfg.unvisited_linear
    assert len([f for f in tmp_path.rglob("*") if f.is_file()]) <= 8  # what the device tool brings back
