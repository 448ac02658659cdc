"""Independent jobs across worker processes, each with one torch thread, with a progress bar."""
from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Iterable

from tqdm import tqdm

from ..threads import use_one_thread


def _call(payload):
    fn, arg = payload
    use_one_thread()
    return fn(arg)


def _worker_init() -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which stops the pool (no worker tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_jobs(fn: Callable, args: Iterable, workers: int = 2, desc: str = "jobs", progress: bool = True,
             on_result: Callable[[int, object], None] | None = None) -> list:
    """[fn(a) for a in args], in order, over `workers` processes (1 = in this process).
    `fn` must be a module-level function (it is pickled by reference). `on_result(i, result)` runs in this
    process as each job finishes (to save it at once)."""
    args = list(args)
    out = [None] * len(args)
    with tqdm(total=len(args), desc=desc, unit="job", disable=not progress) as bar:
        if workers <= 1:
            for i, a in enumerate(args):
                out[i] = _call((fn, a))
                if on_result is not None:
                    on_result(i, out[i])
                bar.update(1)
        else:
            with mp.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
                it = pool.imap_unordered(_indexed, [(i, fn, a) for i, a in enumerate(args)])
                for i, res in it:
                    out[i] = res
                    if on_result is not None:
                        on_result(i, res)
                    bar.update(1)
    return out


def _indexed(payload):
    i, fn, a = payload
    return i, _call((fn, a))
