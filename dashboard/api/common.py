"""What every API route shares: the caller's scope and permission check, parameter parsing, and the route
metadata the OpenAPI document is built from. (The request's services and session: dashboard/context.py.)

Hostile input is refused here once for every route (install_input_guards): JSON bodies parse through
dashboard.untrusted (json_provider) and are type-checked against the route's declared body schema,
integer ids in paths and query parameters are bounded to 64 bits, query strings, paths and forms may not
carry a NUL, and an `/api/...` or `/aggregator/...` path no API route takes answers 404 or 405 in JSON
instead of falling through to the Dash page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Map, RequestRedirect

from dashboard.auth import resolve_scope
from dashboard.context import db
from dashboard.errors import Forbidden, Unauthorized, ValidationFailed
from dashboard.policy import LOGINS_ONLY, allowed
from dashboard.readings import parse_timestamp
from dashboard.scope import Scope
from dashboard.untrusted import ID_MAX, json_failure, text_problem

API_PREFIXES = ("/api/", "/aggregator/")
JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


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
            if permission in LOGINS_ONLY and scope.api_key_id is not None:
                raise Forbidden(f"API keys may not use {permission}: it is for logins (a session each)")
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
    """The request's JSON object, its declared properties type-checked (see `check_body_types`)."""
    data = None
    if request.is_json:
        try:
            data = request.get_json()
        except BadRequest as exc:  # undecodable, too deep, out-of-range integer, NUL or lone surrogate
            raise ValidationFailed(details=[{"field": "body", "message": json_failure(exc)}]) from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            details=[{"field": "body", "message": "send a JSON object with Content-Type: application/json"}]
        )
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    check_body_types(data, getattr(view, "body_schema", None))
    return data


def _type_ok(value: Any, schema_type: str | None) -> bool:
    expected = JSON_TYPES.get(schema_type or "")
    if expected is None:
        return True
    if isinstance(value, bool) and schema_type != "boolean":
        return False
    return isinstance(value, expected)


def check_body_types(data: dict, schema: dict | None) -> None:
    """422 for a declared property of the wrong JSON type (`{"name": [1, 2]}` where a string is due), and
    for a wrong item of an array of scalars. null is left to the route (some fields may be cleared); deeper
    structures (a batch of readings) are validated by their route."""
    problems = []
    for name, prop in ((schema or {}).get("properties") or {}).items():
        value = data.get(name)
        if value is None:
            continue
        if not _type_ok(value, prop.get("type")):
            problems.append({"field": name, "message": f"must be a{'n' if prop['type'][0] in 'aeiou' else ''} "
                                                       f"{prop['type']}"})  # fmt: skip
            continue
        item_type = (prop.get("items") or {}).get("type")
        if isinstance(value, list) and item_type in ("string", "integer", "number", "boolean"):
            if not all(_type_ok(v, item_type) for v in value):
                problems.append({"field": name, "message": f"must be a list of {item_type}s"})
    if problems:
        raise ValidationFailed(details=problems)


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
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(details=[{"field": name, "message": "must be an integer"}]) from None
    if not -ID_MAX - 1 <= number <= ID_MAX:
        raise ValidationFailed(details=[{"field": name, "message": f"out of range (at most {ID_MAX})"}])
    return number


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: a non-negative integer within 64 bits. A larger one names nothing (it
    does not match, so the API answers 404), instead of overflowing the database driver."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_MAX,
                 signed: bool = False) -> None:  # fmt: skip
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _api_only_map(app: Flask) -> Map:
    """The API's own URL rules, without Dash's catch-all page route (built once, on the first request)."""
    cached = app.extensions.get("api_only_map")
    if cached is None:
        rules = [r.empty() for r in app.url_map.iter_rules() if r.rule.startswith(API_PREFIXES)]
        cached = Map(
            rules, converters=dict(app.url_map.converters), strict_slashes=app.url_map.strict_slashes
        )
        app.extensions["api_only_map"] = cached
    return cached


def _unsafe_request_text() -> tuple[str, str] | None:
    """(where, problem) for a NUL in the path, a query parameter or a form field (werkzeug already turns
    undecodable bytes into U+FFFD, so no lone surrogate reaches these)."""
    if "\x00" in request.path:
        return "path", "contains a NUL character (%00); remove it"
    for key, value in request.args.items(multi=True):
        problem = text_problem(key) or text_problem(value)
        if problem:
            return key[:60], problem
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        for key, value in request.form.items(multi=True):
            problem = text_problem(key) or text_problem(value)
            if problem:
                return key[:60], problem
    return None


def _refuse_chunked_over_limit() -> None:
    """413 for a chunked body over MAX_CONTENT_LENGTH. Werkzeug refuses a declared Content-Length over it,
    but cuts a chunked body off at the limit silently (the truncated JSON would then answer 400/422)."""
    limit = request.max_content_length
    if limit is None or request.content_length is not None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    data = request.get_data(cache=True)  # at most `limit` bytes: werkzeug's stream stops there
    if len(data) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def install_input_guards(app: Flask) -> None:
    """Bounded integer ids in every path (set before the routes are added) and the request checks."""
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _refuse_hostile_input():
        _refuse_chunked_over_limit()
        unsafe = _unsafe_request_text()
        if unsafe is not None:
            raise ValidationFailed(details=[{"field": unsafe[0], "message": unsafe[1]}])
        if not request.path.startswith(API_PREFIXES):
            return None
        rule = request.url_rule
        if rule is not None and rule.rule.startswith(API_PREFIXES):
            return None
        # Nothing matched, or Dash's page route did: the API answers, in JSON, what it would have
        adapter = _api_only_map(app).bind("localhost", script_name=request.script_root or "/")
        try:
            adapter.match(request.path, method=request.method)
        except RequestRedirect:
            return None
        except MethodNotAllowed as exc:
            # werkzeug offers a rule's methods before its converters check the path (an id past 64 bits):
            # a 405 only when one of the offered methods really takes this path
            for method in sorted(set(exc.valid_methods or ()) - {"HEAD", "OPTIONS"}):
                try:
                    adapter.match(request.path, method=method)
                except (NotFound, MethodNotAllowed):
                    continue
                raise
            raise NotFound() from None
        return None
