"""Issue 9's device check, part one (scripts/device_es.sh runs it): does the GPU rollout agree with the CPU one, and
what does an ES estimate cost at 64, 256, 1024 ... perturbation pairs on each?

ES's rollouts (rlpfn/es.py) run on the model's device. The check acts with the untrained model that ES starts from
in a few prior MDPs on the CPU and on the GPU with the same seeds: the runs draw the same random numbers, so they
differ only where the devices' arithmetic breaks a tie differently. Then it times one estimate at the judged horizon
(16 MDPs of the default prior with S = 16, A = 4, H = 25, `--episodes` per run) on the CPU, split over one process per core, and on the GPU at
growing numbers of pairs, while the next size's estimated time fits before `--deadline`. After every figure it
prints the choice so far, the device and pairs count with the most pairs per second among estimates of at most
`--max-step-seconds` (`best: DEVICE PAIRS`; device_es.sh trains with the last such line), and writes the figures to
`--json`.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from jsonargparse.typing import PositiveFloat, PositiveInt

from rlpfn.es import ESConfig, acting_rows, es_gradient, perturbed_regret
from rlpfn.model import RLPFN, ModelConfig
from rlpfn.prior import load_spec, sample_batch, sample_sized_batch


def seconds(fn, gpu: bool = False) -> float:
    start = time.perf_counter()
    fn()
    if gpu:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=PositiveInt, default=100, help="episodes per run (default 100: the judged horizon)")
    parser.add_argument("--pairs", type=PositiveInt, nargs="+", default=[64, 256, 1024, 4096], help="GPU pairs counts to time")
    parser.add_argument("--cpu-pairs", type=PositiveInt, default=64, help="pairs of the CPU timing")
    parser.add_argument("--max-step-seconds", type=PositiveFloat, default=10.0,
                        help="the training run's estimates must take at most this long (default 10 s): enough steps")
    parser.add_argument("--deadline", type=PositiveFloat, default=180.0,
                        help="skip a GPU size whose estimated time would end the script past this many seconds")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    started = time.perf_counter()

    torch.manual_seed(0)
    model = RLPFN(ModelConfig(unvisited_linear=True)).eval()  # what ES starts from (device_es.sh's options)
    spec = load_spec("default")
    cores = len(os.sched_getaffinity(0))
    report: dict = {"cores": cores, "episodes": args.episodes}

    small = sample_sized_batch(spec, 4, np.random.default_rng(1))
    eps = torch.randn(4, len(acting_rows(model)), model.head.in_features + 1, generator=torch.Generator().manual_seed(2))
    j_cpu = perturbed_regret(model, small, eps, 0.1, 10, seed=3)
    # the timing's MDPs: one middling bucket of the default prior (S 3-32, A 2-6, H 5-100 log-uniform)
    mdps = sample_batch(spec, 16, 16, 4, 25, np.random.default_rng(0))
    report["timing_mdps"] = {"S": mdps.n_states, "A": mdps.n_actions, "H": mdps.horizon}
    print(f"timing on 16 MDPs with S={mdps.n_states}, A={mdps.n_actions}, H={mdps.horizon}, {args.episodes} episodes")
    cpu = seconds(lambda: es_gradient(model, mdps, ESConfig(pairs=args.cpu_pairs, episodes=args.episodes,
                                                            workers=cores), seed=0))
    report["cpu"] = {"pairs": args.cpu_pairs, "workers": cores, "seconds": round(cpu, 2)}
    print(f"CPU, {cores} processes: {args.cpu_pairs} pairs in {cpu:.1f} s ({args.cpu_pairs / cpu:.1f} pairs/s)",
          flush=True)
    best = ("cpu", args.cpu_pairs)
    rate = args.cpu_pairs / cpu if cpu <= args.max_step_seconds else 0.0

    def conclude():  # after every figure: a timeout later loses none of them
        report["best"] = {"device": best[0], "pairs": best[1]}
        print(f"best: {best[0]} {best[1]}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)

    conclude()
    if torch.cuda.is_available():  # only now: the CPU timing forks its processes before CUDA starts
        report["gpu"] = torch.cuda.get_device_name(0)
        gpu_model = model.to("cuda")
        j_gpu = perturbed_regret(gpu_model, small, eps, 0.1, 10, seed=3)
        same = (j_cpu == j_gpu).float().mean().item()
        report["agreement"] = {"runs_equal": same, "mean_cpu": j_cpu.mean().item(), "mean_gpu": j_gpu.mean().item(),
                               "max_abs_diff": (j_cpu - j_gpu).abs().max().item()}
        print(f"GPU vs CPU rollouts: {same:.0%} of runs with equal regret; mean {j_gpu.mean():.4f} vs "
              f"{j_cpu.mean():.4f}, largest difference {(j_cpu - j_gpu).abs().max():.2e}", flush=True)
        report["gpu_timings"] = []
        last = None  # (pairs, seconds) of the last size timed
        for pairs in args.pairs:
            if last is not None and time.perf_counter() - started + last[1] * pairs / last[0] > args.deadline:
                print(f"GPU: {pairs} pairs skipped, it would end past the deadline ({args.deadline:.0f} s)")
                break
            torch.cuda.reset_peak_memory_stats()
            try:
                s = seconds(lambda: es_gradient(gpu_model, mdps, ESConfig(pairs=pairs, episodes=args.episodes), 0),
                            gpu=True)
            except RuntimeError as e:  # out of memory, or a launch too large for the device
                print(f"GPU: {pairs} pairs failed: {str(e).splitlines()[0]}")
                report["gpu_timings"].append({"pairs": pairs, "error": str(e).splitlines()[0]})
                break
            peak = torch.cuda.max_memory_allocated() / 2**30
            report["gpu_timings"].append({"pairs": pairs, "seconds": round(s, 2), "peak_gib": round(peak, 1)})
            print(f"GPU: {pairs} pairs in {s:.1f} s ({pairs / s:.1f} pairs/s), peak memory {peak:.1f} GiB", flush=True)
            if pairs / s > rate and s <= args.max_step_seconds:
                rate, best = pairs / s, ("gpu", pairs)
            conclude()
            last = (pairs, s)

if __name__ == "__main__":
    main()
