"""Import a gymnasium toy-text environment (FrozenLake, CliffWalking, Taxi, ...) as a TabularMDP.

Such environments expose their whole model: `env.unwrapped.P[s][a]` is a list of outcomes
(prob, next_state, reward, terminated) and `env.unwrapped.initial_state_distrib` is μ0
(docs/reference.md, "Benchmark MDPs"). Conversion:

- Every terminated outcome goes to ONE added absorbing state (index S: self-loop, reward 0; terminal.py),
  so episodes last exactly H steps; the reward of the terminating transition itself is kept. If no
  outcome terminates, no state is added.
- The outcome list itself is kept as the MDP's exact outcome table (`Outcomes`): in these
  environments the reward is a function of the outcome (FrozenLake pays 1 only when the slip
  lands on G), and the simulator samples outcomes, so agents see exactly gymnasium's rewards.
  R[s, a] = Σ prob·reward over the outcomes (the mean reward of acting a in s), R_std = 0.
- H = the env spec's max_episode_steps unless `horizon` is given.
- r_min / r_max = the min / max of the outcome rewards (0 included when the absorbing state
  exists): the range a single reward can take, so rewards rescaled with them land in [0, 1]
  (FrozenLake's mean rewards top out at 1/3, but reaching G pays 1).
"""
from __future__ import annotations

import warnings

import numpy as np

from .mdp import MDPError, Outcomes, TabularMDP
from .terminal import TERMINAL_REWARD, bounds_with_terminal


def from_gymnasium(env_or_id, horizon: int | None = None, name: str | None = None, **make_kwargs) -> TabularMDP:
    """A gymnasium env instance, or an id for `gymnasium.make(id, **make_kwargs)`, as a TabularMDP."""
    if isinstance(env_or_id, str):
        env = _make(env_or_id, make_kwargs)
        try:
            return _tabulate(env, env_or_id, horizon, name, make_kwargs)
        finally:
            env.close()
    if make_kwargs:
        raise MDPError(f"make kwargs {sorted(make_kwargs)} only apply when an env id is given")
    spec = getattr(env_or_id, "spec", None)
    env_id = spec.id if spec is not None else type(getattr(env_or_id, "unwrapped", env_or_id)).__name__
    return _tabulate(env_or_id, env_id, horizon, name, {})


def _make(env_id: str, kwargs: dict):
    import gymnasium
    from gymnasium import error

    try:
        with warnings.catch_warnings():  # gymnasium's own deprecation notes: the error below carries its advice
            warnings.simplefilter("ignore")
            return gymnasium.make(env_id, **kwargs)
    except (error.UnregisteredEnv, error.DeprecatedEnv) as e:
        raise MDPError(f"unknown gymnasium environment {env_id!r}: {e}") from None
    except error.Error as e:  # malformed id, missing dependency, ...
        raise MDPError(f"cannot make gymnasium environment {env_id!r}: {e}") from None
    except Exception as e:  # an option the environment does not take, or a value it cannot use
        if not kwargs:
            raise
        raise MDPError(f"gymnasium environment {env_id!r} refused the options {kwargs}: "
                       f"{type(e).__name__}: {e}".replace("\n", " ")) from None


def _tabulate(env, env_id: str, horizon, name, make_kwargs: dict) -> TabularMDP:
    from gymnasium.spaces import Discrete

    for what, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, Discrete):
            raise MDPError(f"{env_id}: {what} space {space} is not Discrete")
        if int(space.start) != 0:
            raise MDPError(f"{env_id}: {what} space {space} does not start at 0")
    S, A = int(env.observation_space.n), int(env.action_space.n)
    base = env.unwrapped
    table = getattr(base, "P", None)
    if not isinstance(table, dict):
        raise MDPError(f"{env_id}: env.unwrapped has no transition table P (dict s -> a -> [(prob, s', r, terminated)])")
    mu0 = getattr(base, "initial_state_distrib", None)
    if mu0 is None:
        raise MDPError(f"{env_id}: env.unwrapped has no initial_state_distrib (μ0)")
    mu0 = np.asarray(mu0, dtype=np.float64).reshape(-1)
    if mu0.shape != (S,):
        raise MDPError(f"{env_id}: initial_state_distrib has shape {list(mu0.shape)}, expected [{S}]")
    if horizon is None:
        spec = getattr(env, "spec", None)
        horizon = getattr(spec, "max_episode_steps", None)
        if horizon is None:
            raise MDPError(f"{env_id}: its episodes need not end (no time limit, max_episode_steps): give a horizon "
                           "(--horizon H, or horizon=H in Python)")

    # One row per outcome: (s, a, prob, s', reward, terminated).
    try:
        rows = [(s, a, p, s2, r, t) for s in range(S) for a in range(A) for p, s2, r, t in table[s][a]]
    except KeyError as e:
        raise MDPError(f"{env_id}: transition table P has no entry for {e}") from None
    except (TypeError, ValueError):
        raise MDPError(f"{env_id}: P[s][a] entries must be (prob, next_state, reward, terminated) tuples") from None
    s, a, p, s2, r, term = (np.array(col) for col in zip(*rows))
    s, a, s2 = s.astype(np.int64), a.astype(np.int64), s2.astype(np.int64)
    p, r, term = p.astype(np.float64), r.astype(np.float64), term.astype(bool)
    if ((s2 < 0) | (s2 >= S)).any():
        raise MDPError(f"{env_id}: transition table P has a next state outside [0, {S})")

    absorbing = bool(term.any())
    n = S + absorbing
    nxt = np.where(term, S, s2)  # terminated outcomes all lead to the absorbing state S
    P = np.zeros((n, A, n))
    np.add.at(P, (s, a, nxt), p)  # add: an outcome may be listed twice (FrozenLake at a wall)
    R = np.zeros((n, A))
    np.add.at(R, (s, a), p * r)
    if absorbing:
        P[S, :, S] = 1.0
        mu0 = np.append(mu0, 0.0)
        # the absorbing state's own outcome: stay, pay 0
        s, a = np.append(s, np.full(A, S)), np.append(a, np.arange(A))
        p, nxt, r = np.append(p, np.ones(A)), np.append(nxt, np.full(A, S)), np.append(r, np.full(A, TERMINAL_REWARD))
    outcomes = Outcomes.from_lists(n, A, s, a, p, nxt, r)
    meta = {
        "source": "gymnasium", "env_id": env_id, "make_kwargs": dict(make_kwargs),
        "absorbing_state": S if absorbing else None,
    }
    r_lo, r_hi = float(r.min()), float(r.max())
    if absorbing:
        r_lo, r_hi = bounds_with_terminal(r_lo, r_hi)
    return TabularMDP(P, R, mu0, horizon, r_min=r_lo, r_max=r_hi, name=name or env_id, meta=meta,
                      outcomes=outcomes)
