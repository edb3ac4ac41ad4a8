"""What every API route shares: the caller's scope and permission check, parameter parsing, and the route
metadata the OpenAPI document is built from. (The request's services and session: dashboard/context.py.)"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import request

from dashboard.auth import resolve_scope
from dashboard.context import db
from dashboard.errors import Forbidden, Unauthorized, ValidationFailed
from dashboard.policy import allowed
from dashboard.readings import parse_timestamp
from dashboard.scope import Scope


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
