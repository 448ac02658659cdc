"""The cross-fitted ceiling of per-MDP rules (rlpfn.experiments.ceiling)."""
import json

import numpy as np
import pytest
import torch

from rlpfn.errors import UserError
from rlpfn.experiments.ceiling import cross_fitted, main, rule_model, run, summary
from rlpfn.experiments.validate import ValidationConfig, validate
from rlpfn.model import Context, planner_terms
from rlpfn.stats import Stats


# two rules, 8 MDPs of the tiny prior, 2 rollouts of 3 episodes: seconds
TINY_RUN = ["--prior", "tiny", "--batches", "1", "--episodes", "3", "--rollouts", "2", "--scales", "0.1", "1",
            "--fractions", "1", "--workers", "1", "--quiet"]


def test_cross_fitting_does_not_credit_the_oracle_with_luck():
    # eight rules that are equally good on every MDP, with rollout noise: picking and scoring on the same rollouts
    # (in-sample) looks better than either rule; picking on the other rollouts does not
    rng = np.random.default_rng(0)
    regret = 0.5 + 0.1 * rng.standard_normal((4, 8, 200))
    fit = cross_fitted(regret)
    assert fit["in_sample"].mean() < regret.mean() - 0.04
    assert abs(fit["oracle"].mean() - regret.mean()) < 0.02
    # a rule that is better on half of the MDPs and worse on the rest: the oracle finds it, a single rule cannot
    regret = np.full((3, 2, 10), 0.5)
    regret[:, 1, :5], regret[:, 1, 5:] = 0.2, 0.8
    fit = cross_fitted(regret)
    assert np.allclose(fit["oracle"], [0.2] * 5 + [0.5] * 5) and np.allclose(fit["single"], 0.5)
    assert np.allclose(fit["picks"], [0.5, 0.5])  # rule 1 on the MDPs where it is better, rule 0 elsewhere
    with pytest.raises(UserError, match="at least 2 rollouts"):
        cross_fitted(regret[:1])


def test_rule_model_is_the_planner_at_those_biases():
    model = rule_model(0.3, 0.6)
    stats = Stats.zeros(1, 3, 2)
    stats.add(torch.tensor([0]), torch.tensor([1]), torch.tensor([0.5]), torch.tensor([2]))
    ctx = Context.at(stats, torch.tensor([0]), 0, 4, 1)
    with torch.no_grad():
        out = model(ctx)
    P_hat, r_hat, n = stats.empirical()
    _, per_step = planner_terms(r_hat, n, model.cfg, out.corrections)
    assert per_step[0, 0, 0].item() == pytest.approx(0.6)  # untried: 0.6 of H - h
    _, unscaled = planner_terms(r_hat, n, model.cfg)
    assert per_step[0, 0, 1].item() == pytest.approx(0.3 * unscaled[0, 0, 1].item())  # tried: bonus × 0.3
    assert torch.allclose(out.corrections[..., 0], torch.tensor(np.log(0.3), dtype=out.corrections.dtype))


def test_the_command_runs_and_writes_what_it_prints(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(TINY_RUN + ["--json", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert np.asarray(doc["regret"]).shape == (2, 2, 8) and np.asarray(doc["ucbvi"]).shape == (2, 8)
    assert "per-MDP oracle (cross-fitted)" in printed and "c=0.1, f=1" in printed
    # the same seed gives the same regrets, and rollout 0 is rlpfn validate's own run on its MDPs
    again = run("tiny", 1, 3, 2, 0, (0.1, 1.0, 0.1), (1.0,), workers=1, progress=False)
    assert again["rules"] == [(0.1, 1.0), (1.0, 1.0)]  # a repeated rule runs once
    assert np.allclose(again["regret"], doc["regret"]) and np.allclose(again["ucbvi"], doc["ucbvi"])
    validated = validate({"ucbvi": ("ucbvi", {})}, ValidationConfig(prior="tiny", batches=1, episodes=3), workers=1,
                         progress=False)["ucbvi"]
    assert np.array_equal(validated, again["ucbvi"][0]) and not np.array_equal(validated, again["ucbvi"][1])
    s = summary(again)
    assert s["rows"]["c=1, f=1"]["regret"][0] == pytest.approx(np.asarray(doc["regret"])[:, 1].mean())


@pytest.mark.parametrize("bad, culprit", [(["--scales", "0"], "--scales: invalid PositiveFloat value: '0'"),
                                          (["--fractions", "1.5"], "--fractions: invalid ClosedUnitInterval"),
                                          (["--seed", "-1"], "--seed: invalid NonNegativeInt")])
def test_bad_options_are_refused_before_any_work(bad, culprit, capsys):
    with pytest.raises(SystemExit) as e:
        main(bad)
    assert e.value.code == 2 and culprit in capsys.readouterr().err


def test_a_missing_prior_or_output_folder_or_too_few_rollouts_is_one_line(tmp_path, capsys):
    for args, culprit in ((["--prior", "no-such-prior"], "no-such-prior"),
                          (["--prior", "tiny", "--json", str(tmp_path / "missing" / "c.json")], "does not exist"),
                          (["--rollouts", "1"], "--rollouts must be at least 2"),
                          (["--scales", "inf"], "--scales must be finite")):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert culprit in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()


def test_from_a_saved_file_prints_the_same_summary(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(TINY_RUN + ["--json", str(out)]) == 0
    first = capsys.readouterr().out
    assert main(["--from", str(out)]) == 0 and capsys.readouterr().out == first
    doc = json.loads(out.read_text())
    doc["ucbvi"] = doc["ucbvi"][:1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["--from", str(bad)]) == 2 and "do not match" in capsys.readouterr().err
    for key, value, culprit in (("rules", [[0.1], [1.0]], "not a file written by"),
                                ("rules", ["ab", "cd"], "not a file written by"),
                                ("ucbvi", [[float("nan")] * 8] * 2, "not finite"),
                                ("regret", [[[], []], [[], []]], "do not match")):
        doc = json.loads(out.read_text())
        doc[key] = value
        bad.write_text(json.dumps(doc))
        assert main(["--from", str(bad)]) == 2 and culprit in capsys.readouterr().err, (key, value)
    bad.write_text(json.dumps({"regret": []}))
    assert main(["--from", str(bad)]) == 2 and "not a file written by" in capsys.readouterr().err
