"""The job queue contract under both runners: threads (embedded) and RQ with a real worker process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.jobqueue import InProcessJobQueue, JobNotFound, RQJobQueue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rq_worker(redis_url):
    """A real `rq worker --with-scheduler` subprocess (the scheduler runs retries with back-off)."""
    rq = Path(sys.executable).parent / "rq"
    proc = subprocess.Popen(
        [str(rq), "worker", "--url", redis_url, "--with-scheduler", "--path", str(ROOT), "training", "forecast",
         "default"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield proc
    proc.terminate()  # warm shutdown; on a loaded machine it may outlast the wait: then cold
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(params=["in-process", pytest.param("rq", marks=pytest.mark.redis)])
def queue(request):
    if request.param == "in-process":
        return InProcessJobQueue()
    request.getfixturevalue("rq_worker")
    return RQJobQueue(request.getfixturevalue("redis_url"))


def test_result_comes_back(queue):
    job_id = queue.enqueue("tests.jobs_for_tests.add", 2, 3, queue="default")
    status = queue.wait(job_id, 30)
    assert (status.status, status.result, status.error) == ("finished", 5, None)
    assert status.ended_at is not None
    assert status.func == "tests.jobs_for_tests.add"  # the UI tells training jobs from others by it


def test_failure_carries_the_error_text(queue):
    status = queue.wait(queue.enqueue("tests.jobs_for_tests.always_fails"), 30)
    assert status.status == "failed"
    assert "the data is not there yet" in status.error


def test_retries_with_back_off_then_succeed(queue, tmp_path):
    counter = tmp_path / "attempts"
    started = time.monotonic()
    job_id = queue.enqueue("tests.jobs_for_tests.fails_until_third_attempt", str(counter), retries=2,
                           retry_intervals_s=[2, 2])  # fmt: skip
    status = queue.wait(job_id, 60)
    assert (status.status, status.result) == ("finished", 3)
    assert counter.read_text() == "3"
    # RQ's scheduler works in whole seconds, so each 2 s back-off waits at least about 1 s
    assert time.monotonic() - started >= 2


def test_progress_is_visible_while_running(queue):
    job_id = queue.enqueue("tests.jobs_for_tests.slow_with_progress", 4, 0.5, queue="training")
    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = queue.status(job_id)
        if status.progress is not None and status.status == "started":
            seen.add(status.progress)
        if status.status == "finished":
            break
        time.sleep(0.1)
    assert status.status == "finished" and status.result == "done"
    assert seen and min(seen) < 1.0  # progress was observed before the end


def test_unknown_job_is_job_not_found(queue):
    with pytest.raises(JobNotFound):
        queue.status("no-such-job")


def test_wait_returns_latest_status_on_timeout(queue):
    job_id = queue.enqueue("tests.jobs_for_tests.slow_with_progress", 3, 0.5)
    status = queue.wait(job_id, 0.2)
    assert status.status in ("queued", "started")
    assert queue.wait(job_id, 30).status == "finished"
