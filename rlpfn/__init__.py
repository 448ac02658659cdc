"""rlpfn: a prior-fitted network for tabular reinforcement learning."""
__version__ = "0.1.0"
