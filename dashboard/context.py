"""The process's long-lived objects in one place: `AppServices`, built once by `build_services(settings)`.

The web app hangs it on the Flask app (`services()` and the request session `db()` read it there); an RQ
worker builds its own once from its environment and binds it around each job (`worker_services()`). The in-process job queue binds the
services of the app that owns it around each job it runs, so embedded jobs see that app's database and
store without any process-wide setting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dashboard.config import Settings
from dashboard.db import make_engine, make_session_factory, migrate
from dashboard.jobqueue import InProcessJobQueue, JobQueue, RQJobQueue
from dashboard.model_store import ModelStore
from dashboard.storage import ObjectStore, object_store_from_settings
from dashboard.ttl_cache import TTLCache, make_ttl_cache

log = logging.getLogger(__name__)

EXTENSION = "aggregator"  # the key on `app.extensions`


@dataclass(eq=False)
class AppServices:
    """Settings, database, job queue and a TTL cache; the object store and model store are opened on
    first use (an S3 store checks its bucket when built, and the app must start while S3 is away)."""

    settings: Settings
    engine: Any
    session_factory: Any
    job_queue: JobQueue
    cache: TTLCache  # issued forecasts, the scans' reuse map
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _object_store: ObjectStore | None = field(default=None, init=False, repr=False)
    _model_store: ModelStore | None = field(default=None, init=False, repr=False)

    @property
    def object_store(self) -> ObjectStore:
        with self._lock:  # once per process: two first requests must not build two clients
            if self._object_store is None:
                self._object_store = object_store_from_settings(self.settings)
            return self._object_store

    @property
    def model_store(self) -> ModelStore:
        with self._lock:  # once: its cache of loaded models is the process's only one
            if self._model_store is None:
                self._model_store = ModelStore(self.settings, self.object_store)
            return self._model_store


def build_services(settings: Settings, migrate_database: bool = False) -> AppServices:
    engine = make_engine(settings)
    if migrate_database:
        migrate(engine)
    queue: JobQueue = RQJobQueue(settings.redis_url) if settings.redis_url else InProcessJobQueue()
    services = AppServices(settings, engine, make_session_factory(engine), queue,
                           make_ttl_cache(settings.redis_url))  # fmt: skip
    if isinstance(queue, InProcessJobQueue):
        queue.bind(lambda: bound(services))  # its jobs run with these services
    return services


# ---- in a request ----------------------------------------------------------------------------------


def services() -> AppServices:
    """The services of the app serving this request."""
    return current_app.extensions[EXTENSION]


def db() -> Session:
    """The request's session, opened on first use and closed at teardown (`close_request_session`)."""
    if "db" not in g:
        g.db = services().session_factory()
    return g.db


def close_request_session(_exc=None) -> None:
    """Close the request's session. A connection the database dropped meanwhile (an outage or a restart
    between the request's last query and here) cannot be rolled back: it is discarded instead of turning
    an answered request into a 500 at teardown."""
    session = g.pop("db", None)
    if session is None:
        return
    try:
        session.close()
    except DBAPIError as exc:
        log.warning(
            "the request's database connection was lost before it closed (%s): discarded", type(exc).__name__
        )
        try:
            session.invalidate()
        except DBAPIError:
            pass  # the pool drops the connection on its next checkout (pre-ping)


# ---- in a job ----------------------------------------------------------------------------------------

_bound: ContextVar[AppServices | None] = ContextVar("aggregator_services", default=None)


@contextmanager
def bound(services: AppServices) -> Iterator[AppServices]:
    """Run jobs with these services: the in-process queue binds its app's around each job, and an RQ
    worker binds its own (jobs/worker.py) around each job it performs."""
    token = _bound.set(services)
    try:
        yield services
    finally:
        _bound.reset(token)


def worker_services() -> AppServices:
    """The services of the job being run."""
    services = _bound.get()
    if services is None:
        raise RuntimeError(
            "No services are bound: run jobs through a job queue (jobs/worker.py or the in-process queue), "
            "or inside `with bound(build_services(settings)):`"
        )
    return services
