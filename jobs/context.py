"""What a job needs (settings, database sessions, the model store), built once per process.

An RQ worker builds it from its environment (the same variables as the web app). The in-process runner
shares the app's settings: `configure()` is called by the app factory, so a job sees the same database
and store as the request that enqueued it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dashboard.config import Settings, load_settings

_lock = threading.Lock()
_configured: Settings | None = None
_cached: dict[str, JobServices] = {}


@dataclass
class JobServices:
    settings: Settings
    session_factory: object
    store: object


def configure(settings: Settings) -> None:
    global _configured
    _configured = settings


def scope_from_fields(fields: dict):
    """The caller's Scope from the plain fields a job carries (frozensets travel as lists)."""
    from dashboard.scope import Scope

    return Scope(**{k: frozenset(v) if isinstance(v, list) else v for k, v in fields.items()})


def scope_fields(scope) -> dict:
    """The inverse of `scope_from_fields`: plain data RQ can carry."""
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in scope.__dict__.items()}


def services() -> JobServices:
    from dashboard.db import make_engine, make_session_factory
    from dashboard.model_store import ModelStore
    from dashboard.storage import object_store_from_settings

    settings = _configured or load_settings()
    key = f"{settings.database_url}|{settings.s3_endpoint}|{settings.s3_bucket}|{settings.data_dir}"
    with _lock:
        if key not in _cached:
            factory = make_session_factory(make_engine(settings))
            _cached[key] = JobServices(
                settings, factory, ModelStore(settings, object_store_from_settings(settings))
            )
        return _cached[key]
