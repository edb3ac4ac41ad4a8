"""What every API route shares: the caller's scope and permission check, the request's database
session, parameter parsing, and the route metadata the OpenAPI document is built from."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from dashboard.auth import resolve_scope
from dashboard.config import Settings
from dashboard.errors import Forbidden, Unauthorized, ValidationFailed
from dashboard.policy import allowed
from dashboard.readings import parse_timestamp
from dashboard.scope import Scope


@dataclass
class Services:
    """The process's long-lived objects, hung on `app.extensions["aggregator"]`."""

    settings: Settings
    engine: Any
    session_factory: Any


def services() -> Services:
    return current_app.extensions["aggregator"]


def db() -> Session:
    """The request's session, opened on first use and closed at teardown (see api/__init__.py)."""
    if "db" not in g:
        g.db = services().session_factory()
    return g.db


def current_scope() -> Scope:
    scope = resolve_scope(db())
    if scope is None:
        raise Unauthorized("Log in (POST /api/v1/auth/login) and send 'Authorization: Bearer <token>'")
    return scope


def requires(permission: str, query: dict[str, str] | None = None, body: dict | None = None):
    """Authenticate, check the role matrix, and record the route's contract for OpenAPI.

    `query` maps query parameter names to a short description; `body` is a JSON-schema fragment.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            scope = current_scope()
            if not allowed(permission, scope.role):
                raise Forbidden(f"Role {scope.role!r} may not use {permission}")
            return view(*args, **kwargs)

        wrapper.permission = permission
        wrapper.query_params = query or {}
        wrapper.body_schema = body
        return wrapper

    return decorate


def public(query: dict[str, str] | None = None, body: dict | None = None):
    """Mark a route that needs no login (login itself, the OpenAPI document)."""

    def decorate(view: Callable) -> Callable:
        view.permission = None
        view.query_params = query or {}
        view.body_schema = body
        return view

    return decorate


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed(
            details=[{"field": "body", "message": "send a JSON object with Content-Type: application/json"}]
        )
    return data


def param(name: str, source: dict | None = None) -> Any:
    """A parameter from the JSON body when given, else the query string."""
    if source is not None and name in source:
        return source[name]
    return request.args.get(name)


def time_param(name: str, required: bool = True) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise ValidationFailed(details=[{"field": name, "message": "is required (ISO 8601 with offset)"}])
        return None
    try:
        return parse_timestamp(raw.replace(" ", "+"))  # a '+' in a query string arrives as a space
    except ValueError as exc:
        raise ValidationFailed(details=[{"field": name, "message": str(exc)}]) from None


def int_param(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed(details=[{"field": name, "message": "must be an integer"}])
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(details=[{"field": name, "message": "must be an integer"}]) from None
