"""Report tables, score matrices and figures on a synthetic results dict with known numbers."""
import numpy as np
import pytest
from scipy import stats as sps

from rlpfn.experiments import report

K, N = 20, 3
BENCH = {"chain": {"S": 5, "A": 2, "H": 10, "v_star": 10.0, "v_random": 2.0},
         "grid": {"S": 9, "A": 4, "H": 8, "v_star": 4.0, "v_random": 0.0}}
# constant per-episode regret per (benchmark, agent), scaled by (1 + 0.1·seed)
RATE = {("chain", "optimal"): 0.0, ("chain", "ucbvi"): 1.0, ("chain", "psrl"): 0.5, ("chain", "ucbvi@hindsight"): 0.2,
        ("grid", "optimal"): 0.0, ("grid", "ucbvi"): 0.4, ("grid", "psrl"): 0.8, ("grid", "ucbvi@hindsight"): 0.1}
# returns: v_random for the first m episodes, then v_star; solved at episode m + 9 when m <= 11
SWITCH = {"optimal": [0, 0, 0], "ucbvi": [2, 4, K], "psrl": [K, K, K], "ucbvi@hindsight": [1, 1, 1]}
OFFLINE = {("chain", 0.0, "vi"): [0.9, 0.8, 0.7], ("chain", 0.0, "pevi"): [0.95, 0.9, 0.85],
           ("chain", 1.0, "vi"): [0.5, 0.6, 0.7], ("chain", 1.0, "pevi"): [0.4, 0.5, 0.6],
           ("grid", 0.0, "vi"): [0.2, 0.3, 0.4], ("grid", 0.0, "pevi"): [0.6, 0.6, 0.6],
           ("grid", 1.0, "vi"): [1.0, 1.0, 1.0], ("grid", 1.0, "pevi"): [0.1, 0.2, 0.3]}
SEED_SCALE = 1 + 0.1 * np.arange(N)


def _regret(b, a):
    return RATE[b, a] * SEED_SCALE[:, None] * np.ones((N, K))


def _returns(b, a):
    k = np.arange(K)
    return np.array([np.where(k < m, BENCH[b]["v_random"], BENCH[b]["v_star"]) for m in SWITCH[a]])


@pytest.fixture
def results():
    online = [{"benchmark": b, "agent": a, "hparams": {}, "regret": _regret(b, a).tolist(),
               "returns": _returns(b, a).tolist()} for (b, a) in RATE]
    offline = [{"benchmark": b, "agent": a, "hparams": {}, "epsilon": e, "dataset_episodes": 10,
                "scores": s, "values": s} for (b, e, a), s in OFFLINE.items()]
    return {"config": {"episodes": K, "seeds": N, "seed": 0, "online_agents": ["optimal", "ucbvi", "psrl"],
                       "offline_agents": ["vi", "pevi"], "epsilons": [0, 1], "dataset_sizes": [10],
                       "wall_time_s": 1.5, "command": "rlpfn bench --episodes 20"},
            "benchmarks": BENCH, "online": online, "offline": offline}


def _expected_pm(x, decimals=None):
    x = np.asarray(x, float)
    hw = sps.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return report.format_pm(x.mean(), hw, decimals)


def _row(md: str, section: str, first: str) -> list[str]:
    """Cells of the first table row starting with `first` after the heading `section`."""
    text = md[md.index(section):]
    line = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def _header(md: str, section: str) -> list[str]:
    text = md[md.index(section):]
    line = next(line for line in text.splitlines() if line.startswith("| benchmark"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_online_table_means_bold_and_solve(results):
    md = report.online_table(results)
    head = _header(md, "final cumulative regret")
    assert head[:6] == ["benchmark", "S", "A", "H", "V*", "V_rand"]
    assert head[6:] == ["optimal", "ucbvi", "psrl", "ucbvi@hindsight†"]
    assert report.HINDSIGHT_NOTE in md
    for b, best in [("chain", "psrl"), ("grid", "ucbvi")]:
        row = dict(zip(head, _row(md, "final cumulative regret", b)))
        for a in ["ucbvi", "psrl"]:
            expected = _expected_pm(RATE[b, a] * K * SEED_SCALE)
            assert row[a] == (f"**{expected}**" if a == best else expected), (b, a, row[a])
        # zero regret for optimal and less for the hindsight variant, but neither is a contender
        assert row["optimal"] == "0.000 ± 0.000"
        assert not row["ucbvi@hindsight†"].startswith("**")
    assert _row(md, "final cumulative regret", "chain")[1:6] == ["5", "2", "10", "10", "2"]
    # sanity on one literal: chain/ucbvi final regret = 20·(1, 1.1, 1.2) -> 22 ± t_{0.975,2}·2/√3
    assert _row(md, "final cumulative regret", "chain")[7] == f"22.0 ± {sps.t.ppf(0.975, 2) * 2 / np.sqrt(3):.1f}"

    solve = dict(zip(_header(md, "episodes to solve"), _row(md, "episodes to solve", "chain")))
    assert solve["optimal"] == "10 (3/3)"
    assert solve["ucbvi"] == "12 (2/3)"  # hits at 11 and 13; third run censored
    assert solve["psrl"] == "— (0/3)"
    assert solve["ucbvi@hindsight†"] == "10 (3/3)"


def test_offline_table_means_and_bold(results):
    md = report.offline_table(results)
    lines = [line for line in md.splitlines() if line.startswith("| chain |") or line.startswith("| grid |")]
    assert len(lines) == 4  # 2 benchmarks × 2 ε × 1 size
    head = _header(md, "Offline")
    assert head == ["benchmark", "ε", "dataset episodes", "vi", "pevi"]
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        b, eps = cells[0], float(cells[1])
        assert cells[2] == "10"
        means = {a: np.mean(OFFLINE[b, eps, a]) for a in ("vi", "pevi")}
        best = max(means, key=means.get)
        for a, cell in zip(("vi", "pevi"), cells[3:]):
            expected = _expected_pm(OFFLINE[b, eps, a], decimals=3)
            assert cell == (f"**{expected}**" if a == best else expected)


def test_online_scores(results):
    scores = report.online_scores(results)
    assert list(scores) == ["optimal", "ucbvi", "psrl", "ucbvi@hindsight"]
    for a, s in scores.items():
        assert s.shape == (N, 2)
        for t, b in enumerate(["chain", "grid"]):
            gap = BENCH[b]["v_star"] - BENCH[b]["v_random"]
            np.testing.assert_allclose(s[:, t], 1 - RATE[b, a] * SEED_SCALE / gap)
    # an agent missing a benchmark drops out of the aggregate
    results["online"] = [e for e in results["online"] if not (e["agent"] == "psrl" and e["benchmark"] == "grid")]
    assert "psrl" not in report.online_scores(results)


def test_offline_scores(results):
    scores = report.offline_scores(results)
    assert set(scores) == {"vi", "pevi"}
    assert set(scores["vi"]) == {(0.0, 10), (1.0, 10)}
    np.testing.assert_allclose(scores["pevi"][0.0, 10], np.array([OFFLINE["chain", 0.0, "pevi"],
                                                                   OFFLINE["grid", 0.0, "pevi"]]).T)


def test_write_report(results, tmp_path):
    paths = report.write_report(results, tmp_path / "out", reps=200)
    assert [p.name for p in paths] == ["results.md", "regret_curves.png", "aggregate_iqm.png"]
    md = paths[0].read_text(encoding="utf-8")
    assert "rlpfn bench --episodes 20" in md and "wall time: 1.5 s" in md
    assert "final cumulative regret" in md and "normalized score" in md
    for p in paths[1:]:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_empty_sections(tmp_path):
    empty = {"config": {}, "benchmarks": BENCH, "online": [], "offline": []}
    assert "No online" in report.online_table(empty)
    assert "No offline" in report.offline_table(empty)
    for p in report.write_report(empty, tmp_path, reps=50):
        assert p.stat().st_size > 0


def test_iqm_estimates_reproducible_and_leave_global_rng_alone(results):
    scores = report.online_scores(results)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = report._iqm_estimates(scores, reps=100, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)
    b = report._iqm_estimates(scores, reps=100, seed=0)
    assert a == b
    lo_hi = a["ucbvi"]
    expected_iqm = sps.trim_mean(scores["ucbvi"], 0.25, axis=None)
    assert lo_hi[0] == pytest.approx(expected_iqm) and lo_hi[1] <= lo_hi[0] <= lo_hi[2]


def test_training_plot_of_an_es_run_draws_its_regret(tmp_path):
    """An ES-only run logs train/es_regret and no supervised loss: the left panel draws it (no empty legend)."""
    import warnings

    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/es_regret,train/loss,val/regret,val/regret_ucbvi\n"
                   + "".join(f"0,{s},{0.5 - s / 100},0.0,,\n" for s in range(4, 40, 5)) + "0,39,,,0.4,0.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = report.plot_training(csv, tmp_path / "training.png")
    assert png.stat().st_size > 0


def test_early_regret_table_sums_the_first_episodes_only(results, monkeypatch):
    monkeypatch.setattr(report, "EARLY_EPISODES", 5)
    # chain: psrl's rate is lower over the whole run, but over the first 5 episodes ucbvi's regret is cut to 0
    for e in results["online"]:
        if (e["benchmark"], e["agent"]) == ("chain", "ucbvi"):
            r = np.asarray(e["regret"])
            r[:, :5] = 0.0
            e["regret"] = r.tolist()
    md = report.online_table(results)
    head = _header(md, "regret over the first 5 episodes")
    row = dict(zip(head, _row(md, "regret over the first 5 episodes", "chain")))
    assert row["ucbvi"] == "**0.000 ± 0.000**" and row["psrl"] == _expected_pm(0.5 * 5 * SEED_SCALE)
    final = dict(zip(_header(md, "final cumulative regret"), _row(md, "final cumulative regret", "chain")))
    assert final["psrl"].startswith("**") and not final["ucbvi"].startswith("**")
    assert md.index("first 5 episodes") < md.index("episodes to solve")
    # a run shorter than the window is summed whole, and the heading says how many episodes it covers
    monkeypatch.setattr(report, "EARLY_EPISODES", 500)
    assert f"regret over the first {K} episodes" in report.online_table(results)


def test_ratio_table_divides_rlpfn_by_ucbvi_and_psrl_and_summarizes(results):
    assert report.ratio_table(results) == ""  # no rlpfn agent: no table
    rate = {"chain": 0.3, "grid": 0.72}  # chain: 0.3 of UCB-VI's, 0.6 of PSRL's; grid: 1.8 of UCB-VI's, 0.9 of PSRL's
    results["online"] += [{"benchmark": b, "agent": "rlpfn[checkpoint=m]", "hparams": {},
                           "regret": (r * SEED_SCALE[:, None] * np.ones((N, K))).tolist(),
                           "returns": _returns(b, "ucbvi").tolist()} for b, r in rate.items()]
    md = report.ratio_table(results)
    assert "#### rlpfn[checkpoint=m]" in md and "ucbvi@hindsight" not in md  # tuned in hindsight: not a reference
    assert _header(md, "####") == ["benchmark", "÷ ucbvi", "÷ ucbvi, first 20", "÷ psrl", "÷ psrl, first 20"]
    assert _row(md, "####", "chain")[1:] == ["0.30", "0.30", "0.60", "0.60"]
    assert _row(md, "####", "grid")[1:] == ["1.80", "1.80", "0.90", "0.90"]
    assert _row(md, "####", "_lower on_")[1:] == ["1 of 2", "1 of 2", "2 of 2", "2 of 2"]
    assert _row(md, "####", "_median ratio_")[1:] == ["1.05", "1.05", "0.75", "0.75"]
    assert _row(md, "####", "_worst_")[1:] == ["1.80 (grid)", "1.80 (grid)", "0.90 (grid)", "0.90 (grid)"]


def test_a_variant_with_its_own_hyperparameters_gets_its_own_colour_and_an_online_run_no_dataset_lines(results):
    colours = report._colours(["ucbvi", "ucbvi@hindsight", "ucbvi[scale=0.1]", "rlpfn", "rlpfn[checkpoint=m]"])
    assert colours["ucbvi"] == colours["ucbvi@hindsight"]  # a hindsight variant is told apart by its dashes
    assert len({colours[a] for a in ("ucbvi", "ucbvi[scale=0.1]", "rlpfn", "rlpfn[checkpoint=m]")}) == 4
    assert "- behaviour ε: 0, 1" in report._header(results)
    results["config"]["offline_agents"] = []
    assert "behaviour ε" not in report._header(results) and "dataset episodes" not in report._header(results)
