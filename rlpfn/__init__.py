"""rlpfn: a prior-fitted network for tabular reinforcement learning.

    import rlpfn
    model = rlpfn.load()                                  # the shipped pretrained model
    result = rlpfn.solve("FrozenLake-v1", episodes=200)   # zero-shot, online
    policy = rlpfn.solve_offline("transitions.npz")       # [H, S, A], from a fixed log
    agent = rlpfn.Agent("rlpfn", n_states=16, n_actions=4, horizon=100)  # for your own loop (rlpfn/loop.py)
"""
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("rlpfn")  # one version, pyproject.toml's, read from the installed metadata
except _metadata.PackageNotFoundError:  # a source tree imported without installing it
    __version__ = "0+unknown"


__all__ = ["Agent", "load", "solve", "solve_offline", "__version__"]


def __dir__():
    return sorted(set(globals()) | set(__all__))


def __getattr__(name):  # lazy: `import rlpfn` stays light; torch loads on first use
    if name == "load":
        from .checkpoint import load
        return load
    if name == "Agent":
        from .loop import Agent
        return Agent
    if name in ("solve", "solve_offline"):
        from . import zero_shot as module
        return getattr(module, name)
    raise AttributeError(f"module 'rlpfn' has no attribute {name!r}")
