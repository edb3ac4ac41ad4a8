"""Outages of the backing services: 503 with Retry-After instead of a 500 and a traceback per request,
one log line when a service goes away and one when it is back, and `/readyz`.

- API paths (`/api/`, `/aggregator/`): `503 {"error": "Service unavailable", "detail": ...}`.
- Dash callbacks: a 200 whose side update opens the page's outage banner (`#outage-banner`, app.py), so
  the page says what is wrong instead of silently not updating.
- Other pages: a short plain-text 503.

Recovery needs no restart: the engine's pool pre-ping replaces dead connections on the next request.
`/healthz` stays the cheap liveness probe (the process answers); `/readyz` checks the database, Redis
(when REDIS_URL is set) and the object store. The database and Redis are required (503 when down); the
object store is reported but not required, since reads, ingestion and cached forecasts work without it.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app, g, jsonify, request

from dashboard.api.errors import is_api, unexpected
from dashboard.context import EXTENSION, services

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
DASH_UPDATE = "/_dash-update-component"
BANNER_ID = "outage-banner"
MESSAGES = {
    "database": "The database is unreachable",
    "redis": "The job queue (Redis) is unreachable",
    "object_store": "The object store is unreachable",
}


class OutageLog:
    """One warning when a service goes away, one info line when it answers again; never per request."""

    def __init__(self):
        self.down_since: dict[str, float] = {}
        self.lock = threading.Lock()

    def down(self, service: str, exc: BaseException) -> None:
        with self.lock:
            if service in self.down_since:
                return
            self.down_since[service] = time.monotonic()
        log.warning("%s (%s: %s); answering 503 until it is back", MESSAGES[service],
                    exc.__class__.__name__, (str(exc).strip().splitlines() or [""])[0][:200])  # fmt: skip

    def up(self, service: str) -> None:
        with self.lock:
            since = self.down_since.pop(service, None)
        if since is not None:
            log.warning("%s again after %.1f s", MESSAGES[service].replace("unreachable", "reachable"),
                        time.monotonic() - since)  # fmt: skip


def outage_service(exc: BaseException) -> str | None:
    """Which backing service an exception says is away, or None when it is not an outage."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from dashboard.storage import StoreUnavailable

    if isinstance(exc, (OperationalError, InterfaceError, *_raw_driver_errors())):
        return "database"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "database"
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "redis"
    if isinstance(exc, StoreUnavailable):
        return "object_store"
    return None


def _raw_driver_errors() -> tuple[type[Exception], ...]:
    """psycopg2's own connection errors, raised unwrapped where the raw DBAPI connection is used
    (COPY in dashboard/pgcopy.py)."""
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - SQLite-only installs
        return ()
    return (psycopg2.OperationalError, psycopg2.InterfaceError)


def _rollback() -> None:
    session = g.pop("db", None)
    if session is not None:
        try:
            session.close()  # the connection is gone; the pool drops it
        except Exception:  # noqa: BLE001 - closing a dead connection may itself fail
            pass


def unavailable(exc: Exception):
    service = outage_service(exc)
    if service is None:
        return unexpected(exc)
    outages().down(service, exc)
    _rollback()
    if service == "database":
        g.pop("started", None)  # no access-log row: it would go to the database that is away
    message = f"{MESSAGES[service]}; try again in a few seconds"
    if request.path.endswith(DASH_UPDATE):
        banner = {"children": message + " (this page updates again once it is back).", "is_open": True,
                  "duration": 20_000}  # fmt: skip
        return jsonify({"multi": True, "response": {}, "sideUpdate": {BANNER_ID: banner}})
    if is_api():
        response = jsonify({"error": "Service unavailable", "detail": message})
    else:
        response = app_text(f"Service unavailable: {message}.")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def app_text(text: str):
    from flask import make_response

    response = make_response(text)
    response.mimetype = "text/plain"
    return response


# ---- /readyz -------------------------------------------------------------------------------------------


def _check(name: str, probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the class says which
        outages().down(name, exc)
        return {"status": "down", "error": exc.__class__.__name__}
    outages().up(name)
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _redis_client(app: Flask, url: str):
    client = app.extensions.get("aggregator.readyz_redis")
    if client is None:
        from redis import Redis

        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        app.extensions["aggregator.readyz_redis"] = client
    return client


def readyz():
    svc = services()

    def database():
        with svc.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    checks = {"database": dict(_check("database", database), required=True)}
    if svc.settings.redis_url:
        redis = _redis_client(current_app, svc.settings.redis_url)
        checks["redis"] = dict(_check("redis", redis.ping), required=True)
    checks["object_store"] = dict(_check("object_store", lambda: svc.object_store.ping()), required=False)
    ready = all(c["status"] == "up" for c in checks.values() if c["required"])
    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response


OUTAGES_EXTENSION = "aggregator.outages"


def outages() -> OutageLog:
    return current_app.extensions[OUTAGES_EXTENSION]


def register_outage_handling(app: Flask) -> None:
    """503s for outages (more specific than the API's catch-all handler, so they win), and `/readyz`."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError

    from dashboard.storage import StoreUnavailable

    for exc_class in (
        DBAPIError,
        *_raw_driver_errors(),
        RedisConnectionError,
        RedisTimeoutError,
        StoreUnavailable,
    ):
        app.register_error_handler(exc_class, unavailable)
    from sqlalchemy import event

    log_ = app.extensions[OUTAGES_EXTENSION] = OutageLog()

    @event.listens_for(services_of(app).engine, "engine_connect")
    def _database_back(_connection):
        """A connection checked out (after the pool's pre-ping): the database answers again."""
        if "database" in log_.down_since:
            log_.up("database")

    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])


def services_of(app: Flask):
    return app.extensions[EXTENSION]
