"""run_jobs: results in order, and a progress bar fed by the jobs themselves (rlpfn.experiments.parallel.tick)."""
import pytest

from rlpfn.experiments import parallel


def _ticking(k):
    for _ in range(k):
        parallel.tick()
    return k, parallel._slots[parallel._job]  # what this job reported, as the main process sees it


@pytest.mark.parametrize("workers", [1, 2])
def test_jobs_report_their_own_progress(workers, capsys):
    out = parallel.run_jobs(_ticking, [3, 1, 4], workers, "t", progress=True, sizes=[3, 1, 4], unit="ep")
    assert out == [(3, 3.0), (1, 1.0), (4, 4.0)]
    assert "8/8" in capsys.readouterr().err
    assert parallel._slots is None and parallel._on_tick is None  # nothing left behind in this process


@pytest.mark.parametrize("workers", [1, 2])
def test_jobs_that_do_not_tick_count_when_they_finish(workers, capsys):
    assert parallel.run_jobs(abs, [-1, -2], workers, "t", progress=True, sizes=[5, 5]) == [1, 2]
    assert "10/10" in capsys.readouterr().err
    parallel.tick()  # outside run_jobs: a no-op
