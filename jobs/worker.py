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

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from rq import Queue
from rq.worker import SimpleWorker, Worker

from dashboard.config import load_settings
from dashboard.context import AppServices, bound, build_services
from jobs.alerts import schedule_alerts
from jobs.forecasting import PUBLISH_QUEUE, due_origin
from jobs.retrain import schedule_retraining
from jobs.weather import FETCH_EVERY_S

DEFAULT_HEARTBEAT_GRACE_S = 15
log = logging.getLogger(__name__)


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
        schedule_alerts(self)  # every ALERT_INTERVAL_S (jobs/alerts.py)
        if "default" in self.queue_names():  # RETRAIN_CRON: the first worker per firing queues the run
            schedule_retraining(self.connection, self.app_services().settings)

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


def worker_command(kind: str, redis_url: str, rq: str = "rq", name: str | None = None) -> list[str]:
    return [rq, "worker", "--url", redis_url, *(["--name", name] if name else []), *WORKER_ARGS[kind]]


# ---- the supervisor: `python -m jobs.worker` ----------------------------------------------------------

RESTART_MIN_S = 1.0  # the first restart after a crash; doubled per crash in a row
RESTART_MAX_S = 60.0  # the cap
STABLE_AFTER_S = 60.0  # a child that ran this long resets the back-off


def restart_delay(crashes_in_a_row: int) -> float:
    """Exponential back-off, capped: 1, 2, 4, ... 60 s."""
    return min(RESTART_MAX_S, RESTART_MIN_S * 2 ** max(0, crashes_in_a_row - 1))


def requeue_abandoned(redis_url: str, worker_name: str) -> str | None:
    """The dead worker's job, handled as RQ handles an abandoned one (retried if it has retries left,
    else failed), now instead of after its heartbeat expires; the worker is marked dead. The job's id,
    or None when the worker held none (or Redis is away: RQ's own cleanup then does it later)."""
    from redis import Redis
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    connection = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=connection)
        if worker is None:
            return None
        job_id = worker.get_current_job_id
        job_id = job_id() if callable(job_id) else job_id
        worker.register_death()
        if not job_id:
            return None
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            return None
        registry = StartedJobRegistry(job.origin, connection=connection)
        for member in connection.zrange(registry.key, 0, -1):
            if member.decode().split(":", 1)[0] == job_id:
                connection.zadd(registry.key, {member: 0}, xx=True)  # expired: abandoned now
        registry.cleanup(timestamp=0)
        return job_id
    except Exception as exc:  # noqa: BLE001 - Redis away: the worker's heartbeat expiry covers it later
        log.warning("Could not requeue the job of dead worker %s: %s", worker_name, exc.__class__.__name__)
        return None
    finally:
        connection.close()


class Child:
    """One rq worker process of a kind, restarted with back-off whenever it exits."""

    def __init__(self, kind: str, index: int):
        self.kind, self.index = kind, index
        self.proc: subprocess.Popen | None = None
        self.name: str | None = None
        self.incarnation = 0
        self.crashes = 0
        self.started_at = 0.0
        self.next_start = 0.0

    def start(self, redis_url: str, rq: str) -> None:
        self.incarnation += 1
        self.name = f"{socket.gethostname()}.{os.getpid()}.{self.kind}-{self.index}.{self.incarnation}"
        # its own process group: on its death the supervisor also ends a work horse it leaves behind
        self.proc = subprocess.Popen(
            worker_command(self.kind, redis_url, rq, self.name), start_new_session=True
        )
        self.started_at = time.monotonic()

    def reap(self, redis_url: str) -> None:
        """It exited: end its process group, requeue its job, schedule the restart."""
        assert self.proc is not None
        code = self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # an orphaned work horse must not run the job twice
        except (ProcessLookupError, PermissionError):
            pass
        job_id = requeue_abandoned(redis_url, self.name or "")
        ran = time.monotonic() - self.started_at
        self.crashes = 1 if ran >= STABLE_AFTER_S else self.crashes + 1
        delay = restart_delay(self.crashes)
        self.next_start = time.monotonic() + delay
        log.warning("worker %s exited (code %s) after %.0f s%s; restarting in %.0f s", self.name, code, ran,
                    f", its job {job_id} requeued or failed" if job_id else "", delay)  # fmt: skip
        self.proc = None


# ---- the healthcheck: `python -m jobs.worker --check KIND` ------------------------------------------

CHECK_MAX_AGE_S = 60  # an idle worker beats every maintenance interval (10 s), a forking one every 5 s


def worker_kind(name: str) -> str | None:
    """The kind in a supervisor's child name (`host.pid.training-0.1` -> `training`), else None."""
    parts = name.rsplit(".", 2)
    return parts[1].rsplit("-", 1)[0] if len(parts) == 3 and "-" in parts[1] else None


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process whose parent died too waits as a zombie until its new parent reaps it (a container's
    PID 1, a CI runner that never does): signal 0 still reaches it, /proc says it is dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux) or gone meanwhile: signal 0 already answered
    return state in (b"Z", b"X")


def check_workers(redis_url: str, kind: str, hostname: str | None = None,
                  max_age_s: float = CHECK_MAX_AGE_S) -> tuple[bool, str]:  # fmt: skip
    """Whether a `kind` worker of this host (this container) is registered in Redis, its process is alive
    here, and its heartbeat is fresh (at most max_age_s old, or it is busy with a job: a non-forking worker
    beats only between jobs, and its registration expires with the job's timeout). With a message."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq.utils import now

    hostname = hostname or socket.gethostname()
    connection = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        mine = [w for w in Worker.all(connection=connection)
                if w.hostname == hostname and worker_kind(w.name) == kind]  # fmt: skip
        states = {w.name: w.get_state() for w in mine}
    except RedisError as exc:
        return False, f"Redis unreachable ({exc.__class__.__name__}): check REDIS_URL and that Redis runs"
    finally:
        connection.close()
    if not mine:
        return False, (f"no {kind} worker of {hostname} is registered in Redis: is `python -m jobs.worker "
                       f"{kind}` running with this REDIS_URL?")  # fmt: skip
    stale = []
    for worker in mine:
        age = (now() - worker.last_heartbeat).total_seconds() if worker.last_heartbeat else float("inf")
        if _pid_alive(worker.pid) and (age <= max_age_s or states[worker.name] == "busy"):
            return (
                True,
                f"{kind} worker {worker.name} is alive ({states[worker.name]}, heartbeat {age:.0f} s ago)",
            )
        stale.append(f"{worker.name} (pid {worker.pid}, heartbeat {age:.0f} s ago)")
    return False, f"no live {kind} worker of {hostname}: stale {', '.join(stale)}; see the worker's log"


def check_main(kinds: list[str]) -> int:
    """`python -m jobs.worker --check [KIND ...]`: exit 0 when every named kind (default all) has a live
    worker here, else 1 with what is wrong on stderr (docker-compose.yml's worker healthchecks)."""
    kinds = kinds or list(WORKER_ARGS)
    unknown = [k for k in kinds if k not in WORKER_ARGS]
    redis_url = os.environ.get("REDIS_URL")
    if unknown or not redis_url:
        print(f"unknown worker kind {unknown}; choose from {', '.join(WORKER_ARGS)}" if unknown
              else "set REDIS_URL: the check reads the workers' registrations in Redis", file=sys.stderr)  # fmt: skip
        return 2
    code = 0
    for kind in kinds:
        ok, message = check_workers(redis_url, kind)
        print(message, file=sys.stdout if ok else sys.stderr)
        code = code or (0 if ok else 1)
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m jobs.worker [training|forecast ...]`: run the named workers (default one of each; a kind
    named twice runs two) and keep them running: a worker that exits (crash, kill, lost Redis) is restarted
    with exponential back-off (1 s doubling to 60 s), and the job it held is requeued at once. Exits only
    on SIGTERM or SIGINT, after stopping the workers (each finishes its job: RQ's warm shutdown). Scale out
    by running this on more machines against the same Redis."""
    kinds = (argv if argv is not None else sys.argv[1:]) or list(WORKER_ARGS)
    if kinds[0] == "--check":
        return check_main(kinds[1:])
    unknown = [k for k in kinds if k not in WORKER_ARGS]
    if unknown:
        print(f"unknown worker kind {unknown}; choose from {', '.join(WORKER_ARGS)}", file=sys.stderr)
        return 2
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        print("set REDIS_URL (e.g. redis://127.0.0.1:6379/0): workers take jobs from Redis", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rq = str(Path(sys.executable).parent / "rq")
    children = [Child(kind, i) for i, kind in enumerate(kinds)]
    stopping = threading.Event()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping.is_set():
            now = time.monotonic()
            for child in children:
                if child.proc is None:
                    if now >= child.next_start:
                        child.start(redis_url, rq)
                elif child.proc.poll() is not None:
                    child.reap(redis_url)
            stopping.wait(0.2)
    finally:
        running = [c.proc for c in children if c.proc is not None]
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
