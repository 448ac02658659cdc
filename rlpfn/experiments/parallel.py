"""Independent jobs across worker processes, each with one torch thread, with a progress bar that moves
while a job runs: a job reports its own progress with `tick` (the suite: one tick per episode)."""
from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Iterable

from tqdm import tqdm

from ..threads import use_one_thread

# Work done by each job, one slot per job: shared with the worker processes (forked), each of which writes only
# the slot of the job it runs, so the main process can read every job's progress without messages or locks.
_slots = None
_job: int | None = None  # the job this process is running
_on_tick: Callable[[], None] | None = None  # in-process (workers=1): refresh the bar


def tick(units: float = 1.0) -> None:
    """Report `units` of the running job's work as done (a no-op outside run_jobs)."""
    if _slots is not None and _job is not None:
        _slots[_job] += units
        if _on_tick is not None:
            _on_tick()


def _call(payload):
    fn, arg = payload
    use_one_thread()
    return fn(arg)


def _worker_init(slots) -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which stops the pool (no worker tracebacks)."""
    import signal

    global _slots
    _slots = slots
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _indexed(payload):
    global _job
    i, fn, a = payload
    _job = i
    try:
        return i, _call((fn, a))
    finally:
        _job = None


def run_jobs(fn: Callable, args: Iterable, workers: int = 2, desc: str = "jobs", progress: bool = True,
             on_result: Callable[[int, object], None] | None = None, sizes: list[float] | None = None,
             unit: str = "job") -> list:
    """[fn(a) for a in args], in order, over `workers` processes (1 = in this process).
    `fn` must be a module-level function (it is pickled by reference). `on_result(i, result)` runs in this
    process as each job finishes (to save it at once). `sizes`: each job's work in `unit`s, which it reports
    as it goes with `tick` (default: one unit per job, counted when it finishes)."""
    global _slots, _on_tick
    args = list(args)
    n = len(args)
    sizes = [1] * n if sizes is None else [int(x) for x in sizes]
    out, finished = [None] * n, [False] * n
    ctx = mp.get_context("fork")
    slots = ctx.RawArray("d", n)
    done_units = 0  # the sizes of the finished jobs
    with tqdm(total=sum(sizes), desc=desc, unit=unit, disable=not progress) as bar:
        def show(running) -> None:
            bar.update(done_units + int(sum(min(slots[i], sizes[i]) for i in running)) - bar.n)

        def finish(i: int, res) -> None:
            nonlocal done_units
            out[i], finished[i] = res, True
            done_units += sizes[i]
            if on_result is not None:
                on_result(i, res)
            show([j for j in range(n) if not finished[j]])  # the running jobs' progress stays counted

        if workers <= 1:
            _slots, _on_tick = slots, lambda: show((_job,))
            try:
                for i, a in enumerate(args):
                    finish(*_indexed((i, fn, a)))
            finally:
                _slots = _on_tick = None
        else:
            with ctx.Pool(workers, initializer=_worker_init, initargs=(slots,)) as pool:
                it = pool.imap_unordered(_indexed, [(i, fn, a) for i, a in enumerate(args)])
                for _ in range(n):
                    while True:
                        try:
                            finish(*it.next(timeout=0.5))
                            break
                        except mp.TimeoutError:  # a job still running: show how far the running ones are
                            show([i for i in range(n) if not finished[i]])
    return out
