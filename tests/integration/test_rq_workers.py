"""Training and forecasting through real RQ worker processes on real Redis, PostgreSQL and the S3 server.

- a training worker SIGKILLed mid-training: another worker picks the job up and finishes it within the
  bound jobs/worker.py promises;
- the spec's forecast endpoint answered by a forecast worker (the web process never loads the model);
- no forecast worker at all: the spec's 500 with a hint, after FORECAST_WAIT_S, and the server stays up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from dashboard.jobqueue import RQJobQueue
from dashboard.schema import ModelVersion
from dashboard.scope import system_scope
from dashboard.seed import seed_demo
from jobs.training import enqueue_training
from jobs.worker import DEFAULT_HEARTBEAT_GRACE_S, worker_command
from tests.conftest import TEST_SECRET, make_settings

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 6, 20, 0, 0, tzinfo=UTC)
AS_OF = "2026-06-19T00:00:00Z"
# monitoring interval + heartbeat grace + maintenance interval (make worker's flags, jobs/worker.py)
FAILOVER_BOUND_S = 5 + DEFAULT_HEARTBEAT_GRACE_S + 10


@pytest.fixture
def redis(redis_url):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()  # no jobs or workers left over from other tests
    yield client
    client.flushdb()


@pytest.fixture
def env(pg_url, s3_settings, redis_url, tmp_path) -> dict:
    """The environment a worker process and the app share: same database, store, key and Redis."""
    return {
        **os.environ,
        "DATABASE_URL": pg_url,
        "REDIS_URL": redis_url,
        "S3_ENDPOINT": s3_settings.s3_endpoint,
        "S3_ACCESS_KEY": s3_settings.s3_access_key,
        "S3_SECRET_KEY": s3_settings.s3_secret_key,
        "S3_BUCKET": s3_settings.s3_bucket,
        "SECRET_KEY": TEST_SECRET,
        "DATA_DIR": str(tmp_path / "worker-data"),
        "DEMO_DATA": "0",
    }


class Workers:
    def __init__(self, env: dict, redis_url: str, logs: Path):
        self.env, self.redis_url, self.logs = env, redis_url, logs
        self.procs: list[subprocess.Popen] = []

    def start(self, kind: str) -> subprocess.Popen:
        rq = str(Path(sys.executable).parent / "rq")
        log = open(self.logs / f"{kind}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*worker_command(kind, self.redis_url, rq), "--path", str(ROOT)], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # own group: kill it whole
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def wait_registered(self, redis, count: int, timeout_s: float = 30) -> None:
        from rq import Worker

        deadline = time.monotonic() + timeout_s
        while len(Worker.all(connection=redis)) < count:
            assert time.monotonic() < deadline, f"{count} workers did not register: see {self.logs}"
            time.sleep(0.2)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def workers(env, redis_url, redis, tmp_path):
    w = Workers(env, redis_url, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture
def seeded(app, factory, pg_snapshots):
    pg_snapshots.demo(factory, "Europe/Athens", houses=4, days=40, end=END)
    return factory


def test_killed_training_worker_job_is_finished_by_another_worker(seeded, workers, redis, redis_url):
    from rq import Worker
    from rq.job import Job

    procs = [workers.start("training"), workers.start("training")]
    workers.wait_registered(redis, 2)
    queue = RQJobQueue(redis_url)
    job_id = enqueue_training(queue, "consumption", "next-24-hours", {"as_of": AS_OF}, system_scope())

    deadline = time.monotonic() + 60
    while queue.status(job_id).message != "fitting":  # the model is being fitted right now
        assert time.monotonic() < deadline, "the job never started fitting"
        time.sleep(0.02)
    victim = Job.fetch(job_id, connection=redis).worker_name
    pid = next(w.pid for w in Worker.all(connection=redis) if w.name == victim)
    # the worker and its work horse (RQ puts the horse in a session of its own), mid-training
    horses = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in horses:
        os.kill(int(child), signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    next(p for p in procs if p.pid == pid).wait(timeout=10)
    assert queue.status(job_id).status == "started"  # nobody has noticed yet

    status = queue.wait(job_id, FAILOVER_BOUND_S + 120)
    elapsed = time.monotonic() - killed_at
    assert status.status == "finished", status
    assert status.result["message"] == "Model trained and saved to MinIO successfully"
    job = Job.fetch(job_id, connection=redis)
    assert job.worker_name != victim  # another worker finished it
    # requeued within the bound, then trained again from scratch (a few seconds on 40 days)
    assert elapsed <= FAILOVER_BOUND_S + 3 * status.result["training_seconds"] + 10, elapsed
    with seeded() as s:
        active = s.scalars(select(ModelVersion).where(ModelVersion.is_active)).all()
    assert [m.version for m in active] == [status.result["model_version"]]


@pytest.fixture
def rq_app(pg_url, env, tmp_path):
    from app import create_app

    keys = ("DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET")
    app = create_app(make_settings(tmp_path / "app", FORECAST_WAIT_S="3", **{k: env[k] for k in keys}))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


def _headers(app, factory, username):
    from flask_jwt_extended import create_access_token

    from dashboard.schema import User

    with factory() as s:
        user_id = s.scalar(select(User.id).where(User.username == username))
    with app.server.app_context():
        return {"Authorization": f"Bearer {create_access_token(identity=str(user_id))}"}


def forecast_jobs(redis) -> list[str]:
    from rq.registry import FinishedJobRegistry

    return FinishedJobRegistry("forecast", connection=redis).get_job_ids()


def test_forecast_is_served_by_a_forecast_worker(seeded, workers, redis, rq_app):
    from rq import Worker
    from rq.job import Job

    from dashboard.forecast_cache import PREFIX

    workers.start("training")
    forecaster = workers.start("forecast")
    workers.wait_registered(redis, 2)
    client = rq_app.server.test_client()
    admin = _headers(rq_app, seeded, "admin")
    path = "/aggregator/consumption/forecast/next-24-hours"

    trained = client.post("/aggregator/consumption/train/next-24-hours", json={"as_of": AS_OF}, headers=admin)
    assert trained.status_code == 200, trained.json
    # the training job issued the new model's forecast from its origin into Redis: no forecast job
    issued = client.post(path, json={"as_of": AS_OF}, headers=admin)
    assert issued.status_code == 200, issued.json
    rows = issued.json["forecast"]
    assert len(rows) == 24 and rows[0]["timestamp"] == "2026-06-19 00:00:00"
    assert all(x["lower"] <= x["forecasted_energy_usage"] <= x["upper"] for x in rows)
    assert forecast_jobs(redis) == []

    # another origin: a forecast worker computes it (cold: the model from S3), then it is answered cached
    for _ in range(2):
        r = client.post(path, json={"as_of": "2026-06-18T00:00:00Z"}, headers=admin)
        assert r.status_code == 200, r.json
        assert len(r.json["forecast"]) == 24 and r.json["forecast"][0]["timestamp"] == "2026-06-18 00:00:00"
    names = {w.name for w in Worker.all(connection=redis) if w.queue_names() == ["forecast", "publish"]}
    served = forecast_jobs(redis)
    assert len(served) == 1 and {Job.fetch(j, connection=redis).worker_name for j in served} <= names

    # the cached answer is the forecast worker's answer: without the cache, computed again, the same
    assert redis.delete(*redis.keys(f"{PREFIX}*")) == 2
    again = client.post(path, json={"as_of": AS_OF}, headers=admin)
    assert again.status_code == 200 and again.json == issued.json and len(forecast_jobs(redis)) == 2

    # a consumer naming another house is refused before anything is queued
    consumer = _headers(rq_app, seeded, "consumer")
    r = client.post(path, json={"house_id": 10**6}, headers=consumer)
    assert r.status_code == 422 and r.json["error"] == "Invalid or missing input"

    # without any forecast worker an uncached forecast gives up after FORECAST_WAIT_S with the spec's 500
    os.killpg(forecaster.pid, signal.SIGTERM)
    forecaster.wait(timeout=20)
    started = time.monotonic()
    r = client.post(path, json={"as_of": "2026-06-17T00:00:00Z"}, headers=admin)
    assert r.status_code == 500 and r.json["error"] == "Model missing or forecast failed"
    assert "make worker" in r.json["detail"]
    assert 3 <= time.monotonic() - started < 10
    assert client.post(path, json={"as_of": AS_OF}, headers=admin).status_code == 200  # issued: still served
    assert client.get("/healthz").status_code == 200


def test_forecast_workers_publish_every_active_model_once_per_origin(
    app, factory, workers, redis, redis_url, rq_app
):
    """After each 15-minute origin (and its settle time) one worker queues the publication; a forecast
    worker issues every active model's forecast into the cache, so the request after it runs no job."""
    import pandas as pd
    from rq import Queue
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from dashboard import forecasting
    from dashboard.forecast_cache import PREFIX
    from jobs.worker import PUBLISH_KEY, schedule_publication

    end = pd.Timestamp.now(tz="UTC").floor("15min").to_pydatetime()
    seed_demo(factory, "Europe/Athens", houses=3, days=30, end=end, progress=False)  # up to now
    workers.start("training")
    workers.wait_registered(redis, 1)
    client = rq_app.server.test_client()
    admin = _headers(rq_app, factory, "admin")
    r = client.post("/aggregator/consumption/train/next-24-hours", json={"async": True}, headers=admin)
    assert r.status_code == 202, r.json
    status = RQJobQueue(redis_url).wait(r.json["job_id"], 600)
    assert status.status == "finished" and not status.result.get("failed"), status
    version = status.result["model_version"]

    # forget what the training and the training worker's first maintenance did: no cached forecast, no
    # queued or taken publication
    Queue("publish", connection=redis).empty()
    for key in redis.keys(f"{PREFIX}*") + redis.keys(f"{PUBLISH_KEY}*"):
        redis.delete(key)

    workers.start("forecast")  # its first maintenance pass takes the due origin and queues the publication
    registry = FinishedJobRegistry("publish", connection=redis)
    deadline = time.monotonic() + 120
    while not registry.get_job_ids():
        assert time.monotonic() < deadline, "no publication ran"
        time.sleep(0.2)
    time.sleep(1)
    jobs = [Job.fetch(j, connection=redis) for j in registry.get_job_ids()]
    # (a second one only if a 15-minute origin passed meanwhile: then it finds the forecast cached)
    assert {j.func_name for j in jobs} == {"jobs.forecasting.publish_due"}
    assert jobs[0].return_value() == {"issued": 1, "cached": 0, "skipped": 0, "failed": 0}
    # once per origin, whichever worker asks: the origin a worker queued (not the one due by now, which a
    # settle boundary, xx:01:30/16:30/31:30/46:30, may have made new since the workers' last pass)
    assert not schedule_publication(redis, now=jobs[0].enqueued_at)

    from dashboard.scope import system_scope

    scope = system_scope()
    task = forecasting.resolve_task(scope, "consumption", "next-24-hours", {})
    cache = rq_app.server.extensions["aggregator"].cache
    with factory() as s:
        answer = forecasting.cached_forecast(s, cache, scope, task)
    assert answer is not None and answer["version"] == version and len(answer["forecast"]) == 24
    origin = task.origin()
    r = client.post("/aggregator/consumption/forecast/next-24-hours", headers=admin)
    assert r.status_code == 200 and len(r.json["forecast"]) == 24
    if task.origin() == origin:  # (an hour boundary between the two would make it another forecast)
        assert r.json["forecast"] == answer["forecast"] and forecast_jobs(redis) == []


def test_training_workers_prune_logs_once_a_day(app, factory, workers, redis, redis_url):
    from datetime import timedelta

    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    from dashboard.clock import utcnow
    from dashboard.schema import ModelRun
    from jobs.worker import PRUNE_LOCK_KEY

    with factory() as s:
        for age_days in (100, 1):
            s.add(ModelRun(kind="forecast", at=utcnow() - timedelta(days=age_days), parameters_json="{}",
                           duration_ms=1.0, outcome="ok"))  # fmt: skip
        s.commit()
    workers.start("training")
    workers.start("training")
    deadline = time.monotonic() + 60
    registry = FinishedJobRegistry("default", connection=redis)
    while not registry.get_job_ids():
        assert time.monotonic() < deadline, "no worker ran the daily prune"
        time.sleep(0.2)
    time.sleep(3)  # both workers have run maintenance by now; only one may have enqueued the prune
    jobs = [Job.fetch(j, connection=redis) for j in registry.get_job_ids()]
    # besides the prune, the maintenance pass may have queued alert evaluations (ALERT_INTERVAL_S) only
    prunes = [j for j in jobs if j.func_name == "jobs.maintenance.prune_logs"]
    assert len(prunes) == 1, [j.func_name for j in jobs]
    assert {j.func_name for j in jobs} - {"jobs.maintenance.prune_logs"} <= {"jobs.alerts.evaluate_alerts"}
    assert prunes[0].return_value()["model_runs"] == 1
    assert redis.ttl(PRUNE_LOCK_KEY) > 23 * 3600  # the next one in a day
    with factory() as s:
        assert [r.at > utcnow() - timedelta(days=2) for r in s.scalars(select(ModelRun))] == [True]
