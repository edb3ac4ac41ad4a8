"""Outages of the backing services, each real: a private PostgreSQL stopped and started, a private
redis-server killed mid-request, an S3 endpoint that refuses or never answers.

503 with Retry-After (JSON on the API, a banner in the UI), one log line per outage, recovery without a
restart, /healthz alive throughout and /readyz saying which service is away."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from tests.conftest import make_settings
from tests.factories import PASSWORD, build_world
from tests.private_services import free_port, start_private_postgres, start_private_redis


@pytest.fixture
def private_pg():
    pg = start_private_postgres()
    yield pg
    pg.remove()


def build(tmp_path, **env):
    from app import create_app

    app = create_app(make_settings(tmp_path, **env))
    return app, app.server.test_client()


def token(client, username="admin") -> dict:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def signed_in_browser(app, user_id: int):
    """A test client with the browser's cookies (access token and its CSRF double-submit value)."""
    from flask_jwt_extended import create_access_token, get_csrf_token

    with app.server.app_context():
        access = create_access_token(identity=str(user_id), additional_claims={"role": "admin"})
        csrf = get_csrf_token(access)
    browser = app.server.test_client()
    browser.set_cookie("access_token_cookie", access)
    browser.set_cookie("csrf_access_token", csrf)
    browser.csrf = csrf
    return browser


def outage_lines(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "dashboard.api.outages")


def test_database_outage_answers_503_with_retry_after_and_recovers_without_restart(
    private_pg, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    app, client = build(tmp_path, DATABASE_URL=private_pg.url)
    try:
        world = build_world(app)
        admin = token(client)
        reading = {
            "device_id": "H1-MAIN",
            "timestamp": "2026-01-05T10:00:00Z",
            "power_w": 2000,
            "energy_wh": 500,
        }
        assert (
            client.post("/api/v1/measurements", json={"measurements": [reading]}, headers=admin).status_code
            == 200
        )

        private_pg.stop()
        calls = [
            client.get("/api/v1/houses", headers=admin),
            client.post(
                "/api/v1/measurements",
                json={"measurements": [reading | {"timestamp": "2026-01-05T10:15:00Z"}]},
                headers=admin,
            ),  # fmt: skip
            client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}),
            client.post("/aggregator/consumption/forecast/next-24-hours?house_id=1", headers=admin),
        ]
        for r in calls:
            assert r.status_code == 503, (r.request.path, r.status_code, r.get_data(as_text=True)[:300])
            assert r.headers["Retry-After"] == "5"
            assert r.get_json() == {"error": "Service unavailable",
                                    "detail": "The database is unreachable; try again in a few seconds"}  # fmt: skip
        assert client.get("/healthz").status_code == 200  # liveness: the process answers
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
        assert ready.get_json()["checks"]["database"] == {"status": "down", "error": "OperationalError",
                                                          "required": True}  # fmt: skip
        page = client.get("/login")  # the page shell still comes
        assert page.status_code == 200
        browser = signed_in_browser(app, world.users["admin"])
        layout = browser.get("/_dash-layout")
        assert layout.status_code == 200 and "The database is unreachable" in layout.get_data(as_text=True)
        callback = browser.post("/_dash-update-component", json={
            "output": "overview-kpis.children", "outputs": {"id": "overview-kpis", "property": "children"},
            "inputs": [], "changedPropIds": []}, headers={"X-CSRF-TOKEN": browser.csrf})  # fmt: skip
        assert callback.status_code == 200
        banner = callback.get_json()["sideUpdate"]["outage-banner"]
        assert banner["is_open"] is True and "database is unreachable" in banner["children"]
        # one line for the whole outage, not one (with a traceback) per request
        assert outage_lines(caplog, "The database is unreachable") == 1
        assert not [r for r in caplog.records if r.exc_info]

        private_pg.start()
        started, status = time.monotonic(), None
        while time.monotonic() - started < 5:
            status = client.get("/api/v1/houses", headers=admin).status_code
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, "no recovery within 5 s of the restart"
        assert client.get("/readyz").status_code == 200
        assert outage_lines(caplog, "The database is reachable again") == 1
        series = client.get("/api/v1/measurements?device_id=H1-MAIN&start=2026-01-05T00:00:00Z&end=2026-01-06T00:00:00Z",
                            headers=admin).get_json()  # fmt: skip
        assert len(series["measurements"]) == 1  # the acknowledged reading is there; the refused one is not
    finally:
        app.server.extensions["aggregator"].engine.dispose()


def test_redis_lost_during_a_synchronous_train_answers_the_spec_body(app, world, tmp_path, pg_url):
    """No worker runs, so the train request waits on Redis; Redis dies under it."""
    redis = start_private_redis(tmp_path)
    try:
        from app import create_app

        web = create_app(
            make_settings(tmp_path / "web", DATABASE_URL=pg_url, REDIS_URL=redis.url, TRAIN_WAIT_S="30")
        )
        client = web.server.test_client()
        admin = token(client)
        answer: dict = {}

        def train():
            started = time.monotonic()
            r = client.post(
                f"/aggregator/consumption/train/next-24-hours?house_id={world.house1}", headers=admin
            )
            answer.update(status=r.status_code, body=r.get_json(), took=time.monotonic() - started)

        thread = threading.Thread(target=train)
        thread.start()
        import redis as redis_client

        queue = redis_client.Redis.from_url(redis.url)
        deadline = time.monotonic() + 20
        while not queue.keys("rq:job:*"):  # the job is queued: the request now waits on it
            assert time.monotonic() < deadline and thread.is_alive(), answer
            time.sleep(0.05)
        queue.close()
        redis.stop()
        thread.join(timeout=30)
        assert answer["status"] == 500
        assert answer["body"]["error"] == "Training failed"
        assert "job queue became unreachable" in answer["body"]["detail"]
        assert answer["took"] < 20
        forecast = client.post(
            f"/aggregator/consumption/forecast/next-24-hours?house_id={world.house1}", headers=admin
        )
        assert forecast.status_code == 500
        assert forecast.get_json()["error"] == "Model missing or forecast failed"
        assert "job queue is unavailable" in forecast.get_json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["redis"]["status"] == "down"
        assert ready.get_json()["checks"]["database"]["status"] == "up"
        assert client.get("/api/v1/houses", headers=admin).status_code == 200  # reads do not need Redis
    finally:
        redis.stop()


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_object_store_fails_within_10_s_without_its_address(kind, silent_port):
    from dashboard.storage import S3ObjectStore, StoreUnavailable

    port = free_port() if kind == "refused" else silent_port
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        S3ObjectStore(f"http://127.0.0.1:{port}", "key", "secret", "bucket", secure=False)
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert str(port) not in message and "127.0.0.1" not in message
    assert "S3_ENDPOINT" in message  # what to check


def test_readyz_reports_the_object_store_without_failing_on_it(app, tmp_path, pg_url):
    from app import create_app

    port = free_port()
    web = create_app(make_settings(tmp_path, DATABASE_URL=pg_url, S3_ENDPOINT=f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    ready = web.server.test_client().get("/readyz")
    assert time.monotonic() - started < 10
    assert ready.status_code == 200  # reads, ingestion and cached forecasts work without the store
    assert ready.get_json()["checks"]["object_store"] == {"status": "down", "error": "StoreUnavailable",
                                                          "required": False}  # fmt: skip
    assert str(port) not in ready.get_data(as_text=True)


def test_readyz_when_everything_is_up(app, s3_settings, redis_url, pg_url, tmp_path):
    from app import create_app
    from tests.conftest import load_settings

    env = {"DATA_DIR": str(tmp_path), "DEMO_DATA": "0", "SECRET_KEY": s3_settings.secret_key, "DATABASE_URL": pg_url,
           "REDIS_URL": redis_url, "S3_ENDPOINT": f"http://{s3_settings.s3_endpoint.split('//')[-1]}",
           "S3_ACCESS_KEY": s3_settings.s3_access_key, "S3_SECRET_KEY": s3_settings.s3_secret_key,
           "S3_BUCKET": s3_settings.s3_bucket}  # fmt: skip
    web = create_app(load_settings(env))
    body = web.server.test_client().get("/readyz").get_json()
    assert body["status"] == "ready"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "object_store": "up",
    }


def test_starting_without_the_database_says_so_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import TEST_SECRET

    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x", "DATA_DIR": str(tmp_path),
                        "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Cannot start: The database is unreachable (OperationalError")
    assert "check DATABASE_URL" in last


def test_a_connection_the_database_drops_after_the_last_query_is_not_a_500(app, client, world, pg_url):
    """The request's session is closed at teardown; when the database dropped its connection after the
    request's last query on it (an outage or restart in between: tests/integration/test_faults.py hit it
    under load), the answer stands instead of becoming a 500, and the next request is served."""
    from sqlalchemy import create_engine, event, text

    from dashboard.context import EXTENSION

    headers = token(client, "analyst")
    engine = app.server.extensions[EXTENSION].engine
    other = create_engine(pg_url)
    dropped: list[int] = []

    def drop_after_the_token_check(conn, cursor, statement, *_args):
        if not dropped and "revoked_tokens" in statement:  # the request session's (only) query here
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with other.begin() as admin:
                assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            dropped.append(pid)

    event.listen(engine, "after_cursor_execute", drop_after_the_token_check)
    try:
        r = client.get("/api/v1/auth/me", headers=headers)
    finally:
        event.remove(engine, "after_cursor_execute", drop_after_the_token_check)
        other.dispose()
    assert dropped, "the connection was not dropped"
    assert r.status_code in (200, 503), r.get_data(as_text=True)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # served again at once
