"""The paired comparison of validate files, and the random-head control (rlpfn.experiments.compare)."""
import json

import numpy as np
import pytest
import torch

from rlpfn.errors import UserError
from rlpfn.es import acting_rows
from rlpfn.experiments.compare import against, main, paired_table, random_head
from rlpfn.model import RLPFN, ModelConfig


def _doc(rlpfn, ucbvi):
    return {"regret": {"rlpfn": list(rlpfn), "ucbvi": list(ucbvi)}}


def test_paired_table_differences_are_per_mdp():
    u = [0.5, 0.4, 0.3, 0.2]
    rows = paired_table({"a": _doc([0.4, 0.4, 0.3, 0.1], u), "b": _doc([0.3, 0.5, 0.2, 0.1], u)})
    assert rows[0]["minus_ucbvi"][0] == pytest.approx(-0.05) and rows[0]["below_ucbvi"] == 0.5
    assert rows[1]["minus_first"][0] == pytest.approx(np.mean([-0.1, 0.1, -0.1, 0.0]))
    assert rows[1]["below_first"] == 0.5 and rows[0]["minus_first"] == (0.0, 0.0)


def test_files_of_other_mdps_are_refused(tmp_path, capsys):
    with pytest.raises(UserError, match="not the same MDPs"):
        paired_table({"a": _doc([0.1, 0.2], [0.3, 0.3]), "b": _doc([0.1, 0.2], [0.3, 0.4])})
    with pytest.raises(UserError, match="'ucbvi'"):
        paired_table({"a": {"regret": {"rlpfn": [0.1]}}})
    for doc, culprit in (([], "holds no"), (_doc([0.1, float("nan")], [0.3, 0.3]), "'rlpfn' regrets are not"),
                         (_doc(["x"], [0.3]), "'rlpfn' regrets are not"), (_doc([0.1], [0.3, 0.3]), "1 'rlpfn'")):
        with pytest.raises(UserError, match=culprit):
            paired_table({"a": doc})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc([0.1, 0.2], [0.3, 0.3])))
    b.write_text(json.dumps(_doc([0.1, 0.2], [0.3, 0.4])))
    assert main([str(a), str(b)]) == 2 and "not the same MDPs" in capsys.readouterr().err
    assert main([str(a), str(a)]) == 0 and "minus UCB-VI -0.150" in capsys.readouterr().out


def test_agents_of_one_file_against_a_named_one(tmp_path, capsys):
    doc = {"regret": {"ucbvi[scale=0.1]": [0.5, 0.4, 0.3], "rlpfn[checkpoint=m]": [0.4, 0.5, 0.1]}}
    rows = {r["name"]: r for r in against(doc, "f", "ucbvi[scale=0.1]")}
    assert rows["rlpfn[checkpoint=m]"]["minus_base"][0] == pytest.approx(-0.2 / 3)
    assert rows["rlpfn[checkpoint=m]"]["below_base"] == pytest.approx(2 / 3)
    assert rows["ucbvi[scale=0.1]"]["minus_base"] == (0.0, 0.0)
    with pytest.raises(UserError, match="holds no 'ucbvi' regrets \\(it holds: ucbvi\\[scale=0.1\\], rlpfn"):
        against(doc, "f", "ucbvi")
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    assert main([str(path), "--base", "ucbvi[scale=0.1]"]) == 0
    assert "rlpfn[checkpoint=m]" in capsys.readouterr().out
    assert main([str(path), "--base", "ucbvi"]) == 2 and "holds no 'ucbvi'" in capsys.readouterr().err


def test_by_family_splits_the_paired_difference_by_the_mdps_drawn_again(tmp_path, capsys):
    """--by-family draws the file's MDPs again from its config and reports the paired difference per family."""
    from rlpfn.experiments.compare import families
    from rlpfn.experiments.validate import held_out_batch

    config = {"prior": "tiny", "batches": 2, "seed": 0}
    fam = families({"config": config}, "f")
    drawn = [held_out_batch("tiny", 2, 0, i)[0] for i in range(2)]
    assert len(fam) == sum(len(m) for m in drawn) and set(fam) <= {f for m in drawn for f in m.meta["family"]}
    base = np.linspace(0.2, 0.6, len(fam))
    other = base + np.where(fam == fam[0], 0.1, 0.0)  # worse by 0.1 on the first MDP's family only
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"config": config, "regret": {"a": base.tolist(), "b": other.tolist()}}))
    assert main([str(path), "--base", "a", "--by-family"]) == 0
    out = capsys.readouterr().out
    assert f"{fam[0]} ({(fam == fam[0]).sum()} MDPs), minus a:" in out
    assert "+0.100 ± 0.000" in out and out.count("+0.000 ± 0.000") >= len(set(fam)) + len(set(fam)) - 1
    path.write_text(json.dumps({"regret": {"a": [0.1], "b": [0.2]}}))
    assert main([str(path), "--base", "a", "--by-family"]) == 2
    assert "no config with prior, batches and seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(path), "--by-family"])
    assert "--by-family goes with --base" in capsys.readouterr().err


def test_random_head_keeps_norms_and_biases_and_nothing_else():
    torch.manual_seed(0)
    trained, base = RLPFN(ModelConfig(unvisited_linear=True)), RLPFN(ModelConfig(unvisited_linear=True))
    with torch.no_grad():
        trained.head.weight.normal_()
        trained.head.bias.normal_()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    out = random_head(trained, base, seed=1).requires_grad_(False)
    trained.requires_grad_(False)
    rows = acting_rows(trained)
    for r in rows:
        assert out.head.weight[r].norm().item() == pytest.approx(trained.head.weight[r].norm().item(), rel=1e-5)
        assert out.head.bias[r] == trained.head.bias[r]
        cos = torch.nn.functional.cosine_similarity(out.head.weight[r], trained.head.weight[r], dim=0)
        assert abs(cos) < 0.5  # a random direction, not the trained one
    others = [r for r in range(out.head.weight.shape[0]) if r not in rows]
    assert torch.equal(out.head.weight[others], before["head.weight"][others])
    assert all(torch.equal(v, before[k]) for k, v in out.state_dict().items() if not k.startswith("head."))


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    for argv, culprit in (([str(tmp_path / "nosuch.json")], "nosuch.json: cannot read"),
                          ([str(bad)], "bad.json: not a JSON file"),
                          (["--random-head", "a", "b", str(tmp_path / "no" / "out")], "does not exist")):
        assert main(argv) == 2
        out = capsys.readouterr().err
        assert out.count("\n") == 1 and culprit in out
    assert not (tmp_path / "no").exists()
    with pytest.raises(SystemExit) as e:
        main(["--random-head", "a", "b", str(tmp_path / "out"), "--seed", "-1"])
    assert e.value.code == 2 and "--seed: invalid NonNegativeInt value: '-1'" in capsys.readouterr().err
    assert not list(tmp_path.glob("out*"))


def test_files_of_one_setting_are_compared_as_one(tmp_path, capsys):
    """--base over several validate files of the same MDPs and seeds: their agents side by side; a file of another
    setting, or an agent whose regrets differ between files, is refused with the file named."""
    from rlpfn.experiments.compare import merged

    config = {"prior": "tiny", "batches": 2, "seed": 0, "episodes": 100, "rollouts": 1, "checkpoint": None}
    a = {"config": config, "regret": {"rlpfn": [0.4, 0.2], "x": [0.3, 0.3]}}
    b = {"config": {**config, "checkpoint": "other"}, "regret": {"y": [0.2, 0.1], "rlpfn": [0.4, 0.2]}}
    assert merged({"a": a, "b": b})["regret"] == {"rlpfn": [0.4, 0.2], "x": [0.3, 0.3], "y": [0.2, 0.1]}
    with pytest.raises(UserError, match="^b: validated .*'episodes': 50.* not the same MDPs"):
        merged({"a": a, "b": {**b, "config": {**config, "episodes": 50}}})
    with pytest.raises(UserError, match="^b: its 'rlpfn' regrets differ from those in a "):
        merged({"a": a, "b": {**b, "regret": {"rlpfn": [0.4, 0.3]}}})
    # the last bits that summation order moves are not a difference; 1e-8, or a missing MDP, is
    assert merged({"a": a, "b": {**b, "regret": {"rlpfn": [0.4 + 3e-15, 0.2]}}})["regret"]["rlpfn"] == [0.4, 0.2]
    for other in ([0.4 + 1e-8, 0.2], [0.4]):
        with pytest.raises(UserError, match="regrets differ"):
            merged({"a": a, "b": {**b, "regret": {"rlpfn": other}}})
    for bad in (["x", 0.2], [None, 0.2], [[0.4], [0.2]], 0.4, [float("nan"), 0.2]):  # named, not a traceback
        with pytest.raises(UserError, match="^b: the 'rlpfn' regrets are not a list of finite numbers"):
            merged({"a": a, "b": {**b, "regret": {"rlpfn": bad}}})
    older = {k: v for k, v in config.items() if k != "rollouts"}  # written before validate had --rollouts
    assert "y" in merged({"a": a, "b": {**b, "config": older}})["regret"]
    with pytest.raises(UserError, match="not the same MDPs"):
        merged({"a": {**a, "config": {**config, "rollouts": 4}}, "b": {**b, "config": older}})
    with pytest.raises(UserError, match="^b: holds no regrets"):
        merged({"a": a, "b": []})
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, doc in zip(paths, (a, b)):
        path.write_text(json.dumps(doc))
    assert main([*map(str, paths), "--base", "rlpfn"]) == 0
    out = capsys.readouterr().out
    assert "  y     0.150 ± " in out and "minus rlpfn -0.150 ± " in out and "(lower on 100%)" in out
    with pytest.raises(SystemExit):
        main(["--base", "rlpfn"])
    assert "give at least one" in capsys.readouterr().err


def test_lower_on_ignores_round_off():
    """Two agents whose runs went the same way differ only in the last bits: neither is 'lower' there."""
    doc = {"regret": {"base": [0.3, 0.2, 0.1], "x": [0.3 - 1e-15, 0.1, 0.1 + 1e-15]}}
    rows = {r["name"]: r for r in against(doc, "f", "base")}
    assert rows["x"]["below_base"] == pytest.approx(1 / 3)
