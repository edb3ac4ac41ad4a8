"""The hourly weather fetch through a real RQ training worker on real Redis and PostgreSQL, against the
local Open-Meteo stand-in: one worker's maintenance pass queues it, once per hour, and it asks the
provider for the default place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.worker import WEATHER_LOCK_KEY, worker_command
from tests.conftest import TEST_SECRET
from tests.open_meteo_server import OpenMeteoServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis(redis_url):
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


def test_a_training_worker_fetches_the_weather_once_an_hour(app, pg_url, redis, redis_url, tmp_path):
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    with OpenMeteoServer() as server:
        env = os.environ | {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET,
                            "DATA_DIR": str(tmp_path), "DEMO_DATA": "0", "WEATHER_PROVIDER": "open-meteo",
                            "OPEN_METEO_FORECAST_URL": server.forecast_url,
                            "OPEN_METEO_ARCHIVE_URL": server.archive_url, "WEATHER_HISTORY_DAYS": "2"}  # fmt: skip
        rq = str(Path(sys.executable).parent / "rq")
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
        procs = [subprocess.Popen([*worker_command("training", redis_url, rq), "--path", str(ROOT)], cwd=ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                 for _ in range(2)]  # fmt: skip
        try:
            registry = FinishedJobRegistry("default", connection=redis)
            deadline = time.monotonic() + 90
            while not any(Job.fetch(j, connection=redis).func_name == "jobs.weather.fetch_weather"
                          for j in registry.get_job_ids()):  # fmt: skip
                assert time.monotonic() < deadline, f"no weather fetch ran: see {tmp_path / 'worker.log'}"
                time.sleep(0.3)
            time.sleep(3)  # both workers have had a maintenance pass; only one may have queued the fetch
            jobs = [Job.fetch(j, connection=redis) for j in registry.get_job_ids()]
            fetches = [j for j in jobs if j.func_name == "jobs.weather.fetch_weather"]
            assert len(fetches) == 1
            assert fetches[0].return_value() | {"inserted": 0} == {
                "provider": "open-meteo", "places": 1, "fetches": 1, "inserted": 0, "updated": 0, "failed": 0
            }  # fmt: skip
            assert [(p, q["latitude"], q["longitude"]) for p, q in server.requests] == [
                ("/v1/forecast", "37.9800", "23.7300")
            ]
            assert 3500 < redis.ttl(WEATHER_LOCK_KEY) <= 3600  # the next one in an hour
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            log.close()
