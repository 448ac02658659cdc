"""Prior specs: the shipped YAML files load, and invalid specs are refused naming the key."""
import copy
import re

import numpy as np
import pytest
import yaml

from rlpfn.resources import data_dir
from rlpfn.prior.spec import Dist, PriorSpecError, load_spec, parse_dist, parse_spec

SHIPPED = ["default", "tiny", "heldout", "wide", "heldout-wide", "heldout-wide-large"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_specs_load(name):
    spec = load_spec(name)
    assert spec.name == name
    assert spec.families and all(c.weight >= 0 for c in spec.families.values())
    assert load_spec(data_dir("priors") / f"{name}.yaml").families.keys() == spec.families.keys()


@pytest.mark.parametrize("train_name,held_name", [("default", "heldout"), ("wide", "heldout-wide")])
def test_heldout_split_is_disjoint_from_training(train_name, held_name):
    """The held-out split measures generalisation: its family is never in the training prior; everything
    but the families is the same."""
    train, held = load_spec(train_name), load_spec(held_name)
    assert not set(held.families) & {f for f, c in train.families.items() if c.weight > 0}
    for key in ("states", "actions", "horizon", "min_gap", "rewards", "relabel_states", "relabel_actions",
                "traces", "temperature"):
        assert getattr(train, key) == getattr(held, key), key


def test_wide_prior_covers_what_users_bring():
    """Issue 9: S up to 128, A up to 10, H up to 200; slippery grids with holes, pick-up and delivery,
    birth-death chains, noisy rewards."""
    wide = load_spec("wide")
    assert wide.states.bounds[1] >= 128 and wide.actions.bounds[1] >= 10 and wide.horizon.bounds[1] >= 200
    assert {"gridworld", "delivery", "queue", "inventory"} <= set(wide.families)
    grid = wide.families["gridworld"].params
    assert grid["slip"].bounds[1] >= 0.6 and grid["n_pits"].bounds[1] > 0
    assert wide.rewards.kinds["gaussian"] > 0 and wide.rewards.gaussian_std.bounds[1] >= 1.0


def _tiny_doc():
    return yaml.safe_load((data_dir("priors") / "tiny.yaml").read_text())


def _set(doc, path, value):
    d = doc
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value
    return doc


@pytest.mark.parametrize("path,value,message", [
    ("families.nope", {"weight": 1}, "families.nope: unknown family"),
    ("families.garnet.weight", -1, "families.garnet.weight: must be >= 0, got -1"),
    ("families.garnet.params.b", [5, 2], "families.garnet.params.b: empty range [5, 2]"),
    ("families.garnet.params.nope", 3, "families.garnet.params.nope: unknown parameter"),
    ("families.garnet.params.b", {"log_uniform": [0, 3]}, "families.garnet.params.b: log_uniform needs lo > 0"),
    ("states", [8, 3], "states: empty range [8, 3]"),
    ("states", [2.5, 8], "states: must be integers"),
    ("actions", [0, 3], "actions: must be >= 1, got 0"),
    ("horizon", "long", "horizon: must be a number or a distribution of numbers"),
    ("min_gap", 2, "min_gap: must be a number in [0, 1]"),
    ("rewards.bounds", [1, 0], "rewards.bounds: must be [r_min, r_max] with r_min < r_max"),
    ("rewards.kinds", {"cauchy": 1}, "rewards.kinds.cauchy: unknown reward kind"),
    ("rewards.kinds", {"bernoulli": 0}, "rewards.kinds: the weights sum to 0"),
    ("rewards.scale", [0.5, 2], "rewards.scale: a fraction of the bounds, must be <= 1"),
    ("relabel.actions", "sometimes", "relabel.actions: must be one of"),
    ("traces.behaviours", {"dqn": 1}, "traces.behaviours.dqn: unknown behaviour"),
    ("traces.behaviours", {"mixture": 1}, "traces.behaviours.mixture: switches among the other behaviours"),
    ("traces.behaviours.ucbvi", {"weight": 1, "params": {"c": 1}}, "traces.behaviours.ucbvi.params.c: unknown"),
    ("traces.episodes", [0, 5], "traces.episodes: must be >= 1, got 0"),
    ("traces.snapshots_per_mdp", 0, "traces.snapshots_per_mdp: must be an integer >= 1"),
    ("traces.colour", 1, "traces.colour: unknown key"),
    ("targets.temperature", 0, "targets.temperature: must be > 0"),
    ("extra", 1, "spec.extra: unknown key"),
])
def test_invalid_specs_name_the_key(path, value, message):
    doc = _set(copy.deepcopy(_tiny_doc()), path, value)
    with pytest.raises(PriorSpecError, match="^" + re.escape("x.yaml: " + message)):
        parse_spec(doc, "x.yaml")


def test_all_weights_zero_and_missing_keys():
    doc = _tiny_doc()
    for fam in doc["families"].values():
        fam["weight"] = 0
    with pytest.raises(PriorSpecError, match="families: the weights sum to 0"):
        parse_spec(doc, "x.yaml")
    doc = _tiny_doc()
    del doc["families"]
    with pytest.raises(PriorSpecError, match="families: required key is missing"):
        parse_spec(doc, "x.yaml")


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(PriorSpecError, match="no such prior spec file.*default"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("states: [3, 4\n")
    with pytest.raises(PriorSpecError, match="bad.yaml: not valid YAML"):
        load_spec(bad)


def test_distributions():
    rng = np.random.default_rng(0)
    d = parse_dist([2, 5], "k")
    x = d.draw(rng, 4000)
    assert x.dtype.kind == "i" and set(np.unique(x)) == {2, 3, 4, 5}
    d = parse_dist({"log_uniform": [1, 300]}, "k")
    x = d.draw(rng, 20000)
    assert x.min() == 1 and x.max() <= 300 and (x == 300).any() is not None
    assert 0.4 < np.mean(x <= 17) < 0.6  # log-uniform: half the mass below sqrt(300 + 1) ~ 17
    d = parse_dist([0.1, 0.2], "k")
    x = d.draw(rng, 1000)
    assert x.dtype.kind == "f" and 0.1 <= x.min() and x.max() <= 0.2
    assert parse_dist(3, "k").draw(rng) == 3 and isinstance(parse_dist(3, "k").draw(rng), int)
    assert parse_dist({"choice": ["a", "b"]}, "k").draw(rng) in ("a", "b")
    assert Dist("const", (0.5,)).draw(rng, 3).tolist() == [0.5, 0.5, 0.5]
