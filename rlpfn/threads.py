"""One intra-op thread: rlpfn's tensors are small, and on 2 cores torch's thread pool costs far more
than it saves on them. Parallelism comes from running independent jobs in separate processes instead."""
import torch


def use_one_thread() -> None:
    torch.set_num_threads(1)
