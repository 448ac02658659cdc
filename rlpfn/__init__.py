"""rlpfn: a prior-fitted network for tabular reinforcement learning.

    import rlpfn
    model = rlpfn.load()                                  # the shipped pretrained model
    result = rlpfn.solve("FrozenLake-v1", episodes=200)   # zero-shot, online
    policy = rlpfn.solve_offline("transitions.npz")       # [H, S, A], from a fixed log
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rlpfn")  # one version, pyproject.toml's, read from the installed metadata
except PackageNotFoundError:  # a source tree imported without installing it
    __version__ = "0+unknown"


def __getattr__(name):  # lazy: `import rlpfn` stays light; torch loads on first use
    if name == "load":
        from .checkpoint import load
        return load
    if name in ("solve", "solve_offline"):
        from . import zero_shot as module
        return getattr(module, name)
    raise AttributeError(f"module 'rlpfn' has no attribute {name!r}")
