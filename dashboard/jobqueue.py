"""One enqueue/status interface, two runners: RQ on Redis (production) and threads (embedded default).

Jobs are named by dotted path ("jobs.maintenance.prune_logs") so the web process never imports job code
it does not run, and both runners resolve the same names. A job reports progress with
`report_progress()`, which works under either runner.
"""

from __future__ import annotations

import contextvars
import importlib
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

# Per-queue default timeouts (seconds): training may take minutes, a forecast must not hang a request.
QUEUES = {"training": 1800, "forecast": 60, "publish": 600, "default": 600}
FINAL = ("finished", "failed")


class JobNotFound(KeyError):
    pass


@dataclass
class JobStatus:
    id: str
    status: str  # queued | started | finished | failed
    progress: float | None = None
    message: str | None = None
    result: Any = None
    error: str | None = None
    enqueued_at: datetime | None = None
    ended_at: datetime | None = None
    meta: dict = field(default_factory=dict)
    func: str | None = None  # the job's function ("jobs.training.train_model"), to tell job kinds apart
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "enqueued_at": self.enqueued_at.isoformat() if self.enqueued_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


class JobQueue(Protocol):
    def enqueue(self, func_path: str, *args, queue: str = "default", timeout_s: int | None = None,
                retries: int = 0, retry_intervals_s: list[int] | None = None, job_id: str | None = None,
                result_ttl_s: int | None = None, **kwargs) -> str: ...  # fmt: skip
    def enqueue_once(self, key: str, func_path: str, *args, **kwargs) -> tuple[str, bool]: ...
    def last_under(self, key: str) -> JobStatus | None: ...
    def status(self, job_id: str) -> JobStatus: ...
    def wait(self, job_id: str, timeout_s: float) -> JobStatus: ...


def resolve(func_path: str):
    module, _, name = func_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# ---- progress, from inside a job ---------------------------------------------------------------------

_current: contextvars.ContextVar[JobStatus | None] = contextvars.ContextVar("current_job", default=None)


def report_progress(fraction: float, message: str | None = None) -> None:
    """Publish a running job's progress (0..1); a no-op outside a job."""
    fraction = max(0.0, min(1.0, float(fraction)))
    local = _current.get()
    if local is not None:
        local.progress, local.message = fraction, message
        return
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover
        return
    job = get_current_job()
    if job is not None:
        job.meta["progress"], job.meta["message"] = fraction, message
        job.save_meta()


class InProcessJobQueue:
    """Threads in the app process, with the same semantics as RQ (retries with back-off included)."""

    def __init__(self, max_workers: int = 2):
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="job")
        # trainings take a thread of their own, one at a time, as the RQ training worker does: a night's
        # queue of them never holds up a forecast
        self.training_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="training")
        self.jobs: dict[str, JobStatus] = {}
        self.unique: dict[str, str] = {}  # enqueue_once's key -> the job id holding it
        self.lock = threading.Lock()
        self.job_context: Callable[[], AbstractContextManager] = nullcontext

    def bind(self, job_context: Callable[[], AbstractContextManager]) -> None:
        """What every job runs inside: the owning app's services (dashboard/context.py)."""
        self.job_context = job_context

    def enqueue(self, func_path, *args, queue="default", timeout_s=None, retries=0, retry_intervals_s=None,
                job_id=None, result_ttl_s=None, **kwargs) -> str:  # fmt: skip
        resolve(func_path)  # fail now, in the caller, on a wrong name
        job_id = job_id or uuid.uuid4().hex
        status = JobStatus(job_id, "queued", enqueued_at=datetime.now(UTC), func=func_path)
        with self.lock:
            self.jobs[job_id] = status
        intervals = retry_intervals_s or [0]

        def run() -> None:
            _current.set(status)
            with self.job_context():
                attempts()
            status.ended_at = datetime.now(UTC)
            status.done.set()

        def attempts() -> None:
            for attempt in range(retries + 1):
                status.status = "started"
                try:
                    status.result = resolve(func_path)(*args, **kwargs)
                    status.status, status.error = "finished", None
                    break
                except Exception:  # noqa: BLE001 - a job's failure is data for its status
                    status.error = traceback.format_exc(limit=5)
                    status.status = "failed"
                    if attempt < retries:
                        status.status = "queued"
                        time.sleep(intervals[min(attempt, len(intervals) - 1)])

        pool = self.training_pool if queue == "training" else self.pool
        pool.submit(contextvars.copy_context().run, run)
        return job_id

    def enqueue_once(self, key: str, func_path: str, *args, **kwargs) -> tuple[str, bool]:
        """`enqueue` unless a job enqueued under `key` is still queued or running: (its id, False) then,
        else (the new job's id, True)."""
        with self.lock:
            held = self.unique.get(key)
            if held is not None and self.jobs[held].status not in FINAL:
                return held, False
            job_id = uuid.uuid4().hex
            self.unique[key] = job_id
        try:
            return self.enqueue(func_path, *args, job_id=job_id, **kwargs), True
        except Exception:
            with self.lock:
                self.unique.pop(key, None)
            raise

    def last_under(self, key: str) -> JobStatus | None:
        """The latest job enqueue_once queued under `key` (finished or not), else None."""
        held = self.unique.get(key)
        return self.jobs.get(held) if held else None

    def status(self, job_id: str) -> JobStatus:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        status = self.status(job_id)
        status.done.wait(timeout_s)  # wakes the moment the job ends: no polling delay on the answer
        return status


class RQJobQueue:
    """RQ on Redis. Workers: `rq worker --with-scheduler training forecast default` (make worker)."""

    STATUS = {"finished": "finished", "failed": "failed", "started": "started", "stopped": "failed",
              "canceled": "failed"}  # fmt: skip

    def __init__(self, redis_url: str):
        from redis import Redis

        # Bounded: a Redis that is away fails a request in seconds instead of hanging it (the blocking
        # read in `wait` blocks at most 1 s per call, well inside the socket timeout).
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)

    def enqueue(self, func_path, *args, queue="default", timeout_s=None, retries=0, retry_intervals_s=None,
                job_id=None, result_ttl_s=None, **kwargs) -> str:  # fmt: skip
        from rq import Queue, Retry

        retry = Retry(max=retries, interval=retry_intervals_s or 0) if retries else None
        ttl = result_ttl_s or 7 * 24 * 3600
        job = Queue(queue, connection=self.redis).enqueue(
            func_path, args=args, kwargs=kwargs, job_timeout=timeout_s or QUEUES.get(queue, 600),
            retry=retry, job_id=job_id, result_ttl=ttl, failure_ttl=ttl,
        )  # fmt: skip
        return job.id

    UNIQUE_PREFIX = "aggregator:unique-job:"
    UNIQUE_TTL_S = 24 * 3600  # a lost holder (Redis flushed) frees its key after a day at the latest

    def enqueue_once(self, key: str, func_path: str, *args, queue: str = "default", timeout_s=None,
                     retries: int = 0, retry_intervals_s=None, result_ttl_s=None, **kwargs) -> tuple[str, bool]:  # fmt: skip
        """`enqueue` unless a job enqueued under `key` is still queued or running: (its id, False) then,
        else (the new job's id, True). The key and the job are written in one transaction (WATCH/MULTI),
        so two web processes asking at once queue one job."""
        from redis.exceptions import WatchError
        from rq import Queue, Retry

        redis_key = self.UNIQUE_PREFIX + key
        retry = Retry(max=retries, interval=retry_intervals_s or 0) if retries else None
        ttl = result_ttl_s or 7 * 24 * 3600
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(redis_key)
                    held = pipe.get(redis_key)
                    if held is not None and self._unfinished(held.decode()):
                        return held.decode(), False
                    job_id = uuid.uuid4().hex
                    pipe.multi()
                    pipe.set(redis_key, job_id, ex=self.UNIQUE_TTL_S)
                    Queue(queue, connection=self.redis).enqueue(
                        func_path, args=args, kwargs=kwargs, job_timeout=timeout_s or QUEUES.get(queue, 600),
                        retry=retry, job_id=job_id, result_ttl=ttl, failure_ttl=ttl, pipeline=pipe,
                    )  # fmt: skip
                    pipe.execute()
                    return job_id, True
                except WatchError:  # another process took the key meanwhile: look again
                    continue

    def _unfinished(self, job_id: str) -> bool:
        try:
            return self.status(job_id).status not in FINAL
        except JobNotFound:
            return False

    def last_under(self, key: str) -> JobStatus | None:
        """The latest job enqueue_once queued under `key` (finished or not) while its key lives, else None."""
        held = self.redis.get(self.UNIQUE_PREFIX + key)
        if held is None:
            return None
        try:
            return self.status(held.decode())
        except JobNotFound:
            return None

    def status(self, job_id: str) -> JobStatus:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            raise JobNotFound(job_id) from None
        raw = job.get_status(refresh=True)
        state = self.STATUS.get(str(getattr(raw, "value", raw)), "queued")
        result = job.latest_result()
        error = None
        if state == "failed" and result is not None:
            error = result.exc_string
        return JobStatus(
            id=job.id,
            status=state,
            progress=job.meta.get("progress"),
            message=job.meta.get("message"),
            result=job.return_value() if state == "finished" else None,
            error=error,
            enqueued_at=job.enqueued_at,
            ended_at=job.ended_at,
            func=job.func_name,
        )

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Block on the job's result stream (XREAD) instead of polling, so a fast job answers at once.

        A result is written per attempt; a failed attempt with retries left is followed by another, so
        the loop reads on until the status is final or the time is up."""
        from rq.results import Result

        deadline = time.monotonic() + timeout_s
        status = self.status(job_id)
        last_id = "0-0"
        while status.status not in FINAL:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            # block at most 1 s at a time: a job that ends without a result (killed) shows in its status
            got = self.redis.xread({Result.get_key(job_id): last_id}, block=min(remaining_ms, 1000))
            if got:
                last_id = got[0][1][-1][0]
            status = self.status(job_id)
        return status
