"""Built as a wheel and installed outside the checkout, rlpfn finds its data (prior specs, configs, the
shipped checkpoint, tuned.json) and gives exactly what the editable install gives."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("rlpfn-*.whl")
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    return site


def run(args, cwd, site=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)  # ahead of the editable install on sys.path
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_wheel_holds_the_data_and_imports_from_outside_the_checkout(wheel_site, tmp_path):
    res = run(["-c", "import rlpfn, rlpfn.resources as r; print(rlpfn.__file__); print(rlpfn.__version__); "
                     "print(r.builtin_names('priors'), r.builtin_names('configs'))"], tmp_path, wheel_site)
    assert res.returncode == 0, res.stderr
    where, version, names = res.stdout.splitlines()
    assert Path(where).is_relative_to(wheel_site) and version == "0.2.0"
    assert names == "['default', 'heldout', 'heldout-wide', 'heldout-wide-large', 'tiny', 'wide'] ['ad', 'ad-tiny', 'pretrain', 'reward-head', 'tiny', 'transitions', 'transitions-tried']"
    for f in ("tuned.json", "checkpoints/rlpfn-v2.json", "checkpoints/rlpfn-v2.safetensors", "checkpoints/rlpfn-v1.json",
              "checkpoints/rlpfn-v1.safetensors", "checkpoints/ad-v1.json", "checkpoints/ad-v1.safetensors"):
        assert (wheel_site / "rlpfn" / "data" / f).is_file()


@pytest.mark.parametrize("agent", ["ucbvi", "rlpfn"])
def test_solve_from_the_wheel_matches_the_editable_install(wheel_site, tmp_path, agent):
    argv = ["-m", "rlpfn.cli", "solve", "riverswim", "--agent", agent, "--episodes", "3", "--seeds", "2", "--quiet"]
    out = {}
    for name, site in (("wheel", wheel_site), ("editable", None)):
        res = run([*argv, "--json", f"{name}.json"], tmp_path, site)
        assert res.returncode == 0, res.stderr
        out[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert out["wheel"]["hparams"] == out["editable"]["hparams"]
    assert out["wheel"]["returns"] == out["editable"]["returns"]
    if agent == "ucbvi":  # the tuned defaults, not the dataclass's own
        tuned = json.loads((ROOT / "rlpfn" / "data" / "tuned.json").read_text())["agents"]["ucbvi"]["hparams"]
        assert out["wheel"]["hparams"] == tuned
