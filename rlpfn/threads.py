"""One intra-op thread: rlpfn's tensors are small, and on 2 cores torch's thread pool costs
10-50x more than it saves on them (measured: 500 RiverSwim episodes x 10 seeds of Q-learning,
0.8 s with one thread against ~30 s with two on a busy machine). Parallelism comes from
running independent jobs in separate processes instead."""
import torch


def use_one_thread() -> None:
    torch.set_num_threads(1)
