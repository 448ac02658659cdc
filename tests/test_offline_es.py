"""The offline head β (rlpfn/offline_es.py): it starts as the base model, its row reaches the pessimistic planner
alone, less pessimism scores higher where the data cover everything, and a stopped training run resumes exactly."""
import numpy as np
import torch

from rlpfn.agents import AgentSpec, RlpfnAgent
from rlpfn.benchmarks import make_benchmark
from rlpfn.checkpoint import load
from rlpfn.experiments.offline_head import main
from rlpfn.model import Context
from rlpfn.offline_es import OFFLINE, datasets, perturbed_scores, with_offline_head
from rlpfn.prior import load_spec, sample_sized_batch
from test_zero_shot import _perturbed_model


def _model():
    return _perturbed_model(seed=0)


def test_a_new_offline_head_acts_as_its_base_offline_and_online():
    base = _model()
    model = with_offline_head(base)
    mdps = sample_sized_batch(load_spec("tiny"), 3, np.random.default_rng(0))
    (_, stats), = datasets(mdps, 0, settings=[(0.5, 5)])
    spec = AgentSpec.of(mdps)
    assert torch.equal(RlpfnAgent.with_model(base).fit(spec, stats), RlpfnAgent.with_model(model).fit(spec, stats))
    ctx = Context.at(stats, torch.zeros(3, dtype=torch.long), 0, mdps.horizon, 5)
    with torch.no_grad():
        assert torch.equal(base(ctx).q_plan, model(ctx).q_plan)
        model.head.bias[OFFLINE] -= 3.0  # β moves the offline penalty only
        assert torch.equal(base(ctx).q_plan, model(ctx).q_plan)
        assert not torch.equal(base(ctx, pessimistic=True).q_plan, model(ctx, pessimistic=True).q_plan)


def test_less_pessimism_scores_higher_on_uniform_data():
    """SixArms from uniform-random data (10 episodes): the arms that pay were tried rarely, so a penalty that
    scales with 1/sqrt(N) talks the planner out of them. Lowering β's bias must raise the score."""
    model = with_offline_head(_model())
    mdps = make_benchmark("sixarms").take([0, 0, 0, 0])
    data = datasets(mdps, 0, settings=[(1.0, 10)])
    eps = torch.zeros(1, model.head.in_features + 1)
    eps[0, -1] = 1.0  # β's bias alone
    J = perturbed_scores(model, mdps, data, eps, sigma=3.0)
    assert J[0, 1] > J[0, 0] + 0.05  # −3 (penalty × 0.05) beats +3 (× 20)


def test_training_resumes_where_it_stopped(tmp_path, monkeypatch):
    import rlpfn.checkpoint

    monkeypatch.setattr(rlpfn.checkpoint, "shipped_path", lambda architecture="rlpfn": tmp_path / "base")
    from rlpfn.checkpoint import save

    save(_model(), tmp_path / "base", prior={"spec": "tiny"}, training={})
    opts = ["--prior", "tiny", "--pairs", "2", "--mdps", "2", "--save-every", "1", "--quiet"]
    assert main(["--out", str(tmp_path / "a"), "--steps", "3", *opts]) == 0
    assert main(["--out", str(tmp_path / "b"), "--steps", "2", *opts]) == 0
    assert main(["--out", str(tmp_path / "b"), "--steps", "3", "--resume", *opts]) == 0
    a, b = load(tmp_path / "a" / "model"), load(tmp_path / "b" / "model")
    assert torch.equal(a.head.weight, b.head.weight) and not torch.equal(a.head.weight[OFFLINE], a.head.weight[0])
    assert (tmp_path / "b" / "log.csv").read_text().count("\n") == 4  # header and steps 0, 1, 2
    assert main(["--out", str(tmp_path / "a"), "--steps", "3", *opts]) == 2  # a finished run is not overwritten


def test_supervised_fit_lowers_the_penalty_where_less_pessimism_pays(tmp_path):
    """On SixArms from uniform data every dataset scores best with a smaller penalty, so the regression's shift is
    negative; `--supervised` writes a loadable model and its cross-validation table."""
    from rlpfn.offline_es import SHIFTS, fit_shift, shift_scores

    model = with_offline_head(_model())
    mdps = make_benchmark("sixarms").take([0, 0, 0, 0])
    X, Y = shift_scores(model, mdps, datasets(mdps, 0, settings=[(1.0, 10)]))
    assert X.shape == (4, 16) and Y.shape == (4, len(SHIFTS))
    assert (Y[:, -1] > Y[:, 0]).all()
    w = fit_shift(X, Y, ridge=1.0)
    assert (torch.cat([X, torch.ones(4, 1, dtype=X.dtype)], 1) @ w < 0).all()

    import json

    from rlpfn.checkpoint import save

    save(_model(), tmp_path / "base", prior={"spec": "tiny"}, training={})
    out = tmp_path / "sup"
    assert main(["--supervised", "--out", str(out), "--base", str(tmp_path / "base"), "--prior", "tiny", "--steps",
                 "5", "--mdps", "2", "--quiet"]) == 0
    summary = json.loads((out / "supervised.json").read_text())
    assert summary["datasets"] == 5 * 2 * 6 and summary["ridge"] in (0.1, 1.0, 10.0, 100.0, 1000.0)
    assert load(out / "model").cfg.offline_head


def test_bad_options_are_named_before_any_work(tmp_path, capsys):
    for argv, culprit in ((["--steps", "1"], "--out is required"),
                          (["--out", str(tmp_path / "a"), "--sigma", "inf"], "--sigma must be finite"),
                          (["--out", str(tmp_path / "b"), "--prior", "nope"], "nope"),
                          (["--out", str(tmp_path / "f" / "x")], "--out"),
                          (["--score", "missing-model", "--json", str(tmp_path / "f" / "s.json")], "--json")):
        (tmp_path / "f").write_text("a file, not a folder")
        assert main([*argv, "--quiet"]) == 2
        assert culprit in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing written
