"""The one place domain errors and HTTP errors become JSON (API paths) or plain text (pages)."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from dashboard.api.common import API_PREFIXES
from dashboard.errors import DomainError, RateLimited

log = logging.getLogger(__name__)


def is_api() -> bool:
    return request.path.startswith(API_PREFIXES)


def _rollback() -> None:
    if "db" in g:
        g.db.rollback()  # nothing is half-written


def domain_error(exc: DomainError):
    _rollback()
    response = jsonify(exc.body())
    response.status_code = exc.status
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


HTTP_DETAILS = {
    404: "No such resource: see /api/openapi.json for the API's paths",
    405: "This path takes other methods: see the Allow header",
    413: "The request body is too large; split the batch",
}


def wants_json() -> bool:
    """API paths, and Dash's callback endpoint (its client reads JSON errors)."""
    return is_api() or request.path.endswith("/_dash-update-component")


def http_error(exc: HTTPException):
    if not wants_json():
        return exc
    body = {"error": exc.name}
    if exc.code in HTTP_DETAILS:
        body["detail"] = HTTP_DETAILS[exc.code]
    response = jsonify(body)
    response.status_code = exc.code or 500
    for name, value in exc.get_headers():  # e.g. 405's Allow
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _hostile_input(exc: Exception) -> tuple[int, str] | None:
    """(status, detail) when `exc` is what hostile input (not a bug of ours) raises past the validation:
    a last line behind dashboard/untrusted.py and the route checks, answered without a traceback."""
    from dash.exceptions import DependencyException

    if isinstance(exc, DependencyException):  # an unknown /_dash-component-suites/ file
        return 404, "No such file"
    if isinstance(exc, RecursionError):
        return 400, "The input is nested too deeply"
    if isinstance(exc, OverflowError):
        return 422, "A number or time in the request is out of range"
    if isinstance(exc, DataError):  # PostgreSQL: an id past its INTEGER column, a value its type refuses
        return 422, "A value in the request is out of range for what it refers to (e.g. an id past 2^31)"
    if isinstance(exc, UnicodeError):
        return 422, "The request holds text that is not valid Unicode (a lone surrogate); send UTF-8"
    if isinstance(exc, ValueError) and "NUL" in str(exc):  # psycopg2: a string with a NUL character
        return 422, "The request holds a NUL character (\\u0000); remove it"
    return None


def unexpected(exc: Exception):
    _rollback()
    if isinstance(exc, HTTPException):
        return http_error(exc)
    hostile = _hostile_input(exc)
    if hostile is not None:
        status, detail = hostile
        log.warning(
            "%s %s answered %d: %s", request.method, request.path[:200], status, exc.__class__.__name__
        )
        error = "Not found" if status == 404 else "Invalid or missing input"
        if wants_json() or status != 404:
            return jsonify({"error": error, "detail": detail}), status
        return detail, status
    log.exception("Unhandled error on %s %s", request.method, request.path)
    if is_api():
        return jsonify({"error": "Internal server error"}), 500
    return "Internal server error", 500


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
