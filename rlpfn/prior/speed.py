"""How fast the prior engine makes data: what `rlpfn prior bench` measures and prints."""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import torch

from .batch import PriorDataset, get_batch
from .sampler import sample_sized_batch
from .spec import PriorSpec


def time_mdp_sampling(spec: PriorSpec, n_mdps: int, batch_size: int, seed: int) -> dict:
    """MDPs per second, with their exact Q* targets, sampled `batch_size` at a time (as get_batch does)."""
    rng = np.random.default_rng(seed)
    done, start = 0, time.perf_counter()
    while done < n_mdps:
        sample_sized_batch(spec, batch_size, rng).solution  # the exact solution is computed on first use
        done += batch_size
    seconds = time.perf_counter() - start
    return {"mdps": done, "seconds": seconds, "mdps_per_s": done / seconds}


def time_batches(spec: PriorSpec, n_batches: int, batch_size: int, seed: int, progress=None) -> dict:
    """Whole batches (MDPs, traces, snapshots, targets) in this process: overall and per behaviour."""
    per = defaultdict(list)
    sizes = []
    start = time.perf_counter()
    for i in range(n_batches):
        t = time.perf_counter()
        b = get_batch(spec, batch_size, seed + i)
        per[b.behaviour].append(time.perf_counter() - t)
        sizes.append((b.context.stats.counts.shape[1], b.context.stats.counts.shape[2], b.context.horizon))
        if progress is not None:
            progress(1)
    seconds = time.perf_counter() - start
    all_t = np.concatenate([np.asarray(v) for v in per.values()])
    return {
        "batches": n_batches, "batch_size": batch_size, "seconds": seconds,
        "batches_per_s": n_batches / seconds, "contexts_per_s": n_batches * batch_size / seconds,
        "median_s": float(np.median(all_t)), "p90_s": float(np.quantile(all_t, 0.9)),
        "per_behaviour": {k: {"batches": len(v), "mean_s": float(np.mean(v))} for k, v in sorted(per.items())},
        "largest": {"S": max(s[0] for s in sizes), "A": max(s[1] for s in sizes), "H": max(s[2] for s in sizes)},
    }


def time_loader(spec: PriorSpec, n_batches: int, batch_size: int, seed: int, workers: int,
                train_step_s: float = 0.3) -> dict:
    """Do background workers keep up with training? The main process consumes batches from a DataLoader
    over PriorDataset, spending `train_step_s` of single-threaded matrix products on each (a stand-in for
    one training step), and we measure how long it waits for data per step."""
    loader = torch.utils.data.DataLoader(PriorDataset(spec, batch_size, seed, length=n_batches + 1),
                                         batch_size=None, num_workers=workers, prefetch_factor=4)
    it = iter(loader)
    next(it)  # worker start-up is paid once per training run, not per batch
    x = torch.randn(256, 256)
    waits = []
    start = time.perf_counter()
    for _ in range(n_batches):
        t = time.perf_counter()
        next(it)
        waits.append(time.perf_counter() - t)
        busy = time.perf_counter() + train_step_s
        while time.perf_counter() < busy:
            x = torch.tanh(x @ x / 16)
    seconds = time.perf_counter() - start
    return {"workers": workers, "batches": n_batches, "seconds": seconds, "train_step_s": train_step_s,
            "steps_per_s": n_batches / seconds, "mean_wait_s": float(np.mean(waits)),
            "wait_fraction": float(np.sum(waits) / seconds)}
