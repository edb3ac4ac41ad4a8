"""The RQ worker classes `make worker` starts. Each builds the app's services once from its environment
and binds them around every job (dashboard/context.py).

- `FailoverWorker` (training, scans, maintenance; forking): a killed worker's job is requeued within
  job_monitoring_interval + WORKER_HEARTBEAT_GRACE_S + maintenance_interval (5 + 15 + 10 = 30 s), not
  RQ's ~11 minutes (tests/integration/test_rq_workers.py kills a real worker and measures it).
- `ForecastWorker` (forecasts, publishing; no fork per job): loaded models stay cached between jobs.
- Every maintenance pass (10 s), the first worker to take a Redis key (SET NX) queues the due work:
  the forecast publication per 15-minute origin, the weather fetch per hour, log pruning per day.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rq import Queue
from rq.worker import SimpleWorker, Worker

from dashboard.config import load_settings
from dashboard.context import AppServices, bound, build_services
from jobs.forecasting import PUBLISH_QUEUE, due_origin
from jobs.weather import FETCH_EVERY_S

DEFAULT_HEARTBEAT_GRACE_S = 15


def heartbeat_grace_s() -> int:
    """Seconds a job's heartbeat outlives the monitoring interval: long enough to ride out a busy
    Redis or a paused process, short enough that a dead worker's job is picked up quickly."""
    return max(5, int(os.environ.get("WORKER_HEARTBEAT_GRACE_S", DEFAULT_HEARTBEAT_GRACE_S)))


class BindsServices:
    """Builds this process's services on first use (a forked work horse builds its own: connections are
    never shared across a fork) and binds them around each job it performs."""

    _services: AppServices | None = None
    _services_pid: int | None = None

    def app_services(self) -> AppServices:
        if self._services is None or self._services_pid != os.getpid():
            self._services, self._services_pid = build_services(load_settings()), os.getpid()
        return self._services

    def perform_job(self, job, queue, *args, **kwargs):
        with bound(self.app_services()):
            return super().perform_job(job, queue, *args, **kwargs)


class FailoverWorker(BindsServices, Worker):
    """Forking worker (training, analytics scans, maintenance) whose abandoned jobs are noticed in
    seconds, not minutes. It imports the job modules once at start, so every forked work horse inherits
    them instead of importing pandas, XGBoost and statsmodels again (about a second per job)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        preload_imports()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + heartbeat_grace_s()

    def run_maintenance_tasks(self) -> None:
        """RQ's own maintenance, then the app's scheduled jobs: once a day, across all workers (a Redis
        key taken with NX and a day's expiry decides which), prune the run and access logs (spec 1.7);
        once an hour, fetch missing weather (WEATHER_PROVIDER); once per forecast origin, publish the
        active models' forecasts."""
        super().run_maintenance_tasks()
        if "default" in self.queue_names() and self.connection.set(
            PRUNE_LOCK_KEY, self.name, nx=True, ex=PRUNE_EVERY_S
        ):
            Queue("default", connection=self.connection).enqueue(
                "jobs.maintenance.prune_logs", job_timeout=600
            )
        schedule_weather(self)
        schedule_publication(self.connection)

    @property
    def dequeue_timeout(self) -> int:
        """An idle worker waits for jobs at most one maintenance interval, so it still cleans up on time."""
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))


PRUNE_LOCK_KEY = "aggregator:maintenance:prune-logs"
PRUNE_EVERY_S = 24 * 3600
PUBLISH_KEY = "aggregator:forecast:published:"  # + the origin: taken (NX) by the worker that queues it


WEATHER_LOCK_KEY = "aggregator:maintenance:fetch-weather"


def schedule_weather(worker) -> bool:
    """Queue the hourly weather fetch unless the provider is `none` or a worker queued it this hour."""

    try:
        if "default" not in worker.queue_names() or worker.app_services().settings.weather_provider == "none":
            return False
        if not worker.connection.set(WEATHER_LOCK_KEY, worker.name, nx=True, ex=FETCH_EVERY_S):
            return False
        Queue("default", connection=worker.connection).enqueue("jobs.weather.fetch_weather", job_timeout=1800)
    except Exception:  # noqa: BLE001 - settings or Redis away: the next maintenance pass tries again
        return False
    return True


def schedule_publication(connection, now=None) -> bool:
    """Queue the due origin's publication unless a worker already did; True when this call queued it."""

    origin = due_origin(now)
    try:
        if not connection.set(f"{PUBLISH_KEY}{origin:%Y-%m-%dT%H:%MZ}", "1", nx=True, ex=PRUNE_EVERY_S):
            return False
        Queue(PUBLISH_QUEUE, connection=connection).enqueue("jobs.forecasting.publish_due", job_timeout=600)
    except Exception:  # noqa: BLE001 - Redis away: RQ's own loop reports it; the next pass tries again
        return False
    return True


class ForecastWorker(BindsServices, SimpleWorker):
    """Non-forking worker for the forecast and publish queues: the model cache survives from one job to
    the next.

    It imports the forecasting stack and opens its database and store connections when it starts, so
    the first forecast after a (re)start pays only for its model (read, decrypt, unpickle), not for
    importing XGBoost and statsmodels (about half a second)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        preload_imports()
        try:
            self.app_services().object_store  # noqa: B018 - engine, session factory, object store client
        except Exception:  # noqa: BLE001 - a missing setting shows in the first job's answer instead
            pass

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        schedule_publication(self.connection)

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))


def preload_imports() -> None:
    """The job modules and their heavy libraries, imported once by the worker so every job (and forked work
    horse) has them; modules only: connections are opened after a fork, never shared across one."""
    import models.sarima  # noqa: F401 - statsmodels' state space code
    import models.xgb  # noqa: F401 - xgboost and scikit-learn
    from dashboard import analytics, analytics_scan, forecasting  # noqa: F401
    from jobs import analytics as _analytics_jobs  # noqa: F401
    from jobs import training  # noqa: F401


# How `make worker` starts each kind (and the tests start the same): one place for the flags.
WORKER_ARGS = {
    "training": ["--worker-class", "jobs.worker.FailoverWorker", "--with-scheduler",
                 "--job-monitoring-interval", "5", "--maintenance-interval", "10", "training", "default"],
    "forecast": ["--worker-class", "jobs.worker.ForecastWorker", "--maintenance-interval", "10",
                 "forecast", "publish"],
}  # fmt: skip


def worker_command(kind: str, redis_url: str, rq: str = "rq") -> list[str]:
    return [rq, "worker", "--url", redis_url, *WORKER_ARGS[kind]]


def main(argv: list[str] | None = None) -> int:
    """`python -m jobs.worker [training|forecast ...]`: run the named workers (default both) until one
    exits or a signal arrives; scale out by running this on more machines against the same Redis."""
    kinds = (argv if argv is not None else sys.argv[1:]) or list(WORKER_ARGS)
    unknown = [k for k in kinds if k not in WORKER_ARGS]
    if unknown:
        print(f"unknown worker kind {unknown}; choose from {', '.join(WORKER_ARGS)}", file=sys.stderr)
        return 2
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("set REDIS_URL (e.g. redis://127.0.0.1:6379/0): workers take jobs from Redis", file=sys.stderr)
        return 2
    rq = str(Path(sys.executable).parent / "rq")
    procs = [subprocess.Popen(worker_command(k, redis_url, rq)) for k in kinds]

    def stop(*_):
        for p in procs:
            p.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        stop()
        for p in procs:
            p.wait()
    return max(p.returncode or 0 for p in procs)


if __name__ == "__main__":
    raise SystemExit(main())
