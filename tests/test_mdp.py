import gc
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlpfn.mdp import ROW_SUM_TOL, MDPError, Outcomes, TabularMDP

ENTRY = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\[[^\]]*\]")  # a named entry such as P[0, 1, :] or mu0[2]


def _valid(S=3, A=2, H=4, seed=0):
    rng = np.random.default_rng(seed)
    return dict(P=rng.dirichlet(np.ones(S), size=(S, A)), R=rng.random((S, A)), mu0=rng.dirichlet(np.ones(S)),
                horizon=H, R_std=rng.random((S, A)), r_min=0.0, r_max=1.0)


@st.composite
def valid_mdps(draw):
    S, A = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kw = _valid(S, A, draw(st.integers(1, 50)), draw(st.integers(0, 2**32 - 1)))
    TabularMDP(**kw)  # it is valid
    return kw


def _only_entry(msg: str, entry: str):
    assert ENTRY.findall(msg) == [entry], msg


BAD_VALUES = st.sampled_from([np.nan, np.inf, -np.inf, -0.5, -1e-3])


@settings(max_examples=80, deadline=None)
@given(kw=valid_mdps(), value=BAD_VALUES, key=st.sampled_from(["P", "R_std", "mu0", "R"]), data=st.data())
def test_corrupt_entry_is_named(kw, value, key, data):
    arr = kw[key].copy()
    idx = tuple(data.draw(st.integers(0, n - 1)) for n in arr.shape)
    arr[idx] = value
    kw[key] = arr
    with pytest.raises(MDPError) as e:
        TabularMDP(**kw)
    _only_entry(str(e.value), f"{key}[{', '.join(map(str, idx))}]")
    if np.isfinite(value):
        assert ("negative" if key != "R" else "outside the reward bounds") in str(e.value)
    else:
        assert "finite" in str(e.value)


@settings(max_examples=60, deadline=None)
@given(kw=valid_mdps(), delta=st.one_of(st.floats(1e-5, 10), st.floats(-1, -1e-5)), data=st.data())
def test_row_not_summing_to_one_names_the_row(kw, delta, data):
    S, A, _ = kw["P"].shape
    s, a, x = data.draw(st.integers(0, S - 1)), data.draw(st.integers(0, A - 1)), data.draw(st.integers(0, S - 1))
    P = kw["P"].copy()
    if delta < 0:  # lower one row by scaling (stays non-negative)
        P[s, a] *= 1 + delta / 2
    else:
        P[s, a, x] += delta
    kw["P"] = P
    with pytest.raises(MDPError, match="sums to") as e:
        TabularMDP(**kw)
    _only_entry(str(e.value), f"P[{s}, {a}, :]")


@settings(max_examples=40, deadline=None)
@given(kw=valid_mdps(), above=st.booleans(), by=st.floats(1e-6, 100), data=st.data())
def test_reward_outside_bounds_names_the_entry(kw, above, by, data):
    S, A = kw["R"].shape
    s, a = data.draw(st.integers(0, S - 1)), data.draw(st.integers(0, A - 1))
    R = kw["R"].copy()
    R[s, a] = 1.0 + by if above else -by
    kw["R"] = R
    with pytest.raises(MDPError, match="outside the reward bounds") as e:
        TabularMDP(**kw)
    _only_entry(str(e.value), f"R[{s}, {a}]")
    kw.pop("r_min"), kw.pop("r_max")
    m = TabularMDP(**kw)  # without explicit bounds they default to min/max of R
    assert (m.r_min, m.r_max) == (R.min(), R.max())


def test_mu0_not_a_distribution():
    kw = _valid()
    kw["mu0"] = kw["mu0"] * 1.5
    with pytest.raises(MDPError, match="mu0 sums to"):
        TabularMDP(**kw)
    kw["mu0"] = np.zeros(3)
    with pytest.raises(MDPError, match="mu0 sums to 0"):
        TabularMDP(**kw)


def test_tolerances():
    kw = _valid()
    kw["P"] = kw["P"].copy()
    kw["P"][1, 1, 0] += ROW_SUM_TOL / 2
    kw["mu0"] = kw["mu0"] + ROW_SUM_TOL / 10
    kw["R"] = np.clip(kw["R"], 0, 1)
    kw["R"][0, 0] = 1.0 + 1e-12  # round-off above r_max is tolerated
    TabularMDP(**kw)


@pytest.mark.parametrize("change,pattern", [
    (dict(P=np.ones((3, 3)) / 3), r"P must have shape \[S, A, S\], got \[3, 3\]"),
    (dict(P=np.ones((3, 2, 4)) / 4), r"P must have shape \[S, A, S\], got \[3, 2, 4\]"),
    (dict(P=np.ones((0, 2, 0))), r"at least one state and one action"),
    (dict(R=np.zeros((3, 3))), r"R must have shape \[3, 2\] to match P \[3, 2, 3\], got \[3, 3\]"),
    (dict(R=np.zeros(3)), r"R must have shape \[3, 2\]"),
    (dict(R_std=np.zeros((2, 3))), r"R_std must have shape \[3, 2\]"),
    (dict(mu0=np.ones(4) / 4), r"mu0 must have shape \[3\] to match P \[3, 2, 3\], got \[4\]"),
    (dict(horizon=0), r"horizon must be >= 1, got 0"),
    (dict(horizon=-3), r"horizon must be >= 1, got -3"),
    (dict(horizon=2.5), r"horizon = 2.5 is not a whole number"),
    (dict(horizon=float("inf")), r"horizon = inf is not a whole number"),
    (dict(horizon="ten"), r"horizon = 'ten' is not a number"),
    (dict(r_min=0.7, r_max=0.2), r"r_min = 0.7 is greater than r_max = 0.2"),
    (dict(r_min=float("nan")), r"reward bounds must be finite"),
    (dict(r_max=float("inf")), r"reward bounds must be finite"),
    (dict(P="not numbers"), r"P is not a numeric array"),
    (dict(R=[[0, 1], [0]]), r"R is not a numeric array"),
])
def test_malformed_mdp(change, pattern):
    kw = _valid()
    kw.update(change)
    with pytest.raises(MDPError, match=pattern):
        TabularMDP(**kw)


def test_mdperror_is_valueerror_and_horizon_is_int():
    assert issubclass(MDPError, ValueError)
    kw = _valid()
    kw["horizon"] = 7.0
    m = TabularMDP(**kw)
    assert m.horizon == 7 and type(m.horizon) is int
    assert (m.n_states, m.n_actions) == (3, 2)
    m2 = m.with_horizon(3)
    assert m2.horizon == 3 and m.horizon == 7 and m2.name == m.name
    with pytest.raises(MDPError, match="horizon must be >= 1"):
        m.with_horizon(0)


# ---- files ---------------------------------------------------------------------------------------------
def _same(a: TabularMDP, b: TabularMDP):
    for key in ("P", "R", "R_std", "mu0"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert (a.horizon, a.r_min, a.r_max, a.name) == (b.horizon, b.r_min, b.r_max, b.name)


@settings(max_examples=20, deadline=None)
@given(kw=valid_mdps(), name=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_save_load_round_trip(tmp_path_factory, kw, name):
    path = tmp_path_factory.mktemp("rt") / "m.npz"
    m = TabularMDP(**kw, name=name)
    m.save(path)
    back = TabularMDP.load(path)
    _same(m, back)
    assert isinstance(back.horizon, int)
    assert [p.name for p in path.parent.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_save_without_npz_suffix(tmp_path):
    m = TabularMDP(**_valid(), name="x")
    m.save(tmp_path / "model")
    _same(m, TabularMDP.load(tmp_path / "model"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_load_defaults(tmp_path):
    kw = _valid()
    path = tmp_path / "my-chain.npz"
    np.savez(path, P=kw["P"], R=kw["R"] * 3 - 1, mu0=kw["mu0"], horizon=5)
    m = TabularMDP.load(path)
    np.testing.assert_array_equal(m.R_std, np.zeros((1, 3, 2)))  # a batch of one MDP
    assert m.r_min == (kw["R"] * 3 - 1).min() and m.r_max == (kw["R"] * 3 - 1).max()
    assert m.name == "my-chain" and m.horizon == 5
    np.savez(path, P=kw["P"], R=kw["R"], mu0=kw["mu0"], horizon=5.0, name="")  # empty name -> file name
    assert TabularMDP.load(path).name == "my-chain"


@pytest.mark.parametrize("key", ["P", "R", "mu0", "horizon"])
def test_load_missing_key(tmp_path, key):
    kw = _valid()
    arrays = dict(P=kw["P"], R=kw["R"], mu0=kw["mu0"], horizon=4)
    del arrays[key]
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    with pytest.raises(MDPError) as e:
        TabularMDP.load(path)
    assert str(path) in str(e.value) and f"missing required key(s) {key}" in str(e.value)


def test_load_bad_contents(tmp_path):
    kw = _valid()
    path = tmp_path / "m.npz"
    cases = [
        (dict(extra=np.zeros(1)), "unknown key(s) extra"),
        (dict(horizon=np.array([3, 4])), "horizon must be a scalar, got shape [2]"),
        (dict(horizon="abc"), "horizon = 'abc' is not a valid float"),
        (dict(r_min="low"), "r_min = 'low' is not a valid float"),
        (dict(horizon=0), "horizon must be >= 1"),
        (dict(P=kw["P"] * 2), "P[0, 0, :] sums to"),
        (dict(name=np.array([{"a": 1}], dtype=object)), "not a readable .npz file"),  # pickles are refused
    ]
    for change, text in cases:
        arrays = dict(P=kw["P"], R=kw["R"], mu0=kw["mu0"], horizon=4)
        arrays.update(change)
        np.savez(path, **arrays)
        with pytest.raises(MDPError) as e:
            TabularMDP.load(path)
        assert str(path) in str(e.value) and text in str(e.value), str(e.value)


def test_load_truncated_file(tmp_path):
    good = tmp_path / "good.npz"
    TabularMDP(**_valid(S=4, A=3)).save(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.npz"
    for cut in sorted({0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 23, len(data) - 1}):
        bad.write_bytes(data[:cut])
        with pytest.raises(MDPError) as e:
            TabularMDP.load(bad)
        assert str(bad) in str(e.value), (cut, str(e.value))


def test_load_not_an_npz(tmp_path):
    for name, content in [("text.npz", b"P = [[1]]\n"), ("random.npz", bytes(range(256)) * 4),
                          ("fake_zip.npz", b"PK\x03\x04" + b"\x00" * 40)]:
        path = tmp_path / name
        path.write_bytes(content)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(MDPError) as e:
                TabularMDP.load(path)
            message = str(e.value)
            del e  # its traceback would keep a leaked file object alive
            gc.collect()
        assert str(path) in message and "not a readable .npz file" in message
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]  # the file was closed
    with pytest.raises(MDPError, match="no such file"):
        TabularMDP.load(tmp_path / "absent.npz")
    with pytest.raises(MDPError, match="no such file"):
        TabularMDP.load(tmp_path)  # a directory


def test_load_npy_file(tmp_path):
    path = tmp_path / "P.npy"
    np.save(path, _valid()["P"])
    with pytest.raises(MDPError) as e:
        TabularMDP.load(path)
    assert str(path) in str(e.value)


def test_load_corrupted_bytes_never_escape_as_other_errors(tmp_path):
    """Flip each byte of a saved file in turn: loading either succeeds with a valid MDP (the
    byte did not matter) or raises MDPError naming the file; never another exception."""
    good = tmp_path / "good.npz"
    TabularMDP(**_valid()).save(good)
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    failures = 0
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0xFF
        bad.write_bytes(bytes(corrupt))
        try:
            TabularMDP.load(bad).validate()
        except MDPError as e:
            failures += 1
            assert str(bad) in str(e)
    assert failures > 0


def test_load_error_names_path_once(tmp_path):
    kw = _valid()
    path = tmp_path / "m.npz"
    np.savez(path, P=kw["P"], R=kw["R"], mu0=kw["mu0"], horizon="abc")
    with pytest.raises(MDPError) as e:
        TabularMDP.load(path)
    assert str(e.value).count(str(path)) == 1, str(e.value)


# ---- outcome tables ------------------------------------------------------------------------------
def _with_outcomes():
    """2 states, 1 action: from s0 reach s1 paying 1 w.p. 0.25, else stay paying 0; s1 absorbing."""
    o = Outcomes.from_lists(2, 1, s=[0, 0, 1], a=[0, 0, 0], prob=[0.25, 0.75, 1.0], next_state=[1, 0, 1],
                            reward=[1.0, 0.0, 0.0])
    return dict(P=o.transition_matrix(), R=o.mean_reward(), mu0=np.array([1.0, 0.0]), horizon=3, outcomes=o)


def test_outcomes_summaries_and_default_bounds():
    mdp = TabularMDP(**_with_outcomes())
    assert mdp.P[0, 0, 0].tolist() == [0.75, 0.25] and mdp.R[0, 0, 0] == pytest.approx(0.25)
    assert (mdp.r_min, mdp.r_max) == (0.0, 1.0)  # single rewards' range, not the means'


@pytest.mark.parametrize("corrupt,needle", [
    (lambda kw: kw["outcomes"].prob.__setitem__((0, 0, 0), -0.25), "outcome_prob[0, 0, 0]"),
    (lambda kw: kw["outcomes"].next_state.__setitem__((0, 0, 1), 7), "outcome_next[0, 0, 1]"),
    (lambda kw: kw.__setitem__("R", kw["R"] + 0.1), "R[0, 0]"),
    (lambda kw: kw.__setitem__("r_max", 0.5), "outcome_reward[0, 0, 0]"),
])
def test_outcome_table_errors_name_the_entry(corrupt, needle):
    kw = _with_outcomes()
    corrupt(kw)
    with pytest.raises(MDPError) as e:
        TabularMDP(**kw)
    assert needle in str(e.value)


def test_outcome_table_disagreeing_with_P_is_refused():
    kw = _with_outcomes()
    kw["P"] = np.array([[[0.5, 0.5]], [[0.0, 1.0]]])
    with pytest.raises(MDPError, match=r"P\[0, 0, 0\].*outcome table"):
        TabularMDP(**kw)


def test_outcomes_round_trip_and_incomplete_table(tmp_path):
    mdp = TabularMDP(**_with_outcomes())
    mdp.save(tmp_path / "o.npz")
    back = TabularMDP.load(tmp_path / "o.npz")
    for key in ("prob", "next_state", "reward"):
        assert np.array_equal(getattr(back.outcomes, key), getattr(mdp.outcomes, key))
    with np.load(tmp_path / "o.npz") as d:
        arrays = {k: d[k] for k in d.files if k != "outcome_reward"}
    np.savez(tmp_path / "half.npz", **arrays)
    with pytest.raises(MDPError, match="outcome table incomplete.*outcome_reward"):
        TabularMDP.load(tmp_path / "half.npz")
