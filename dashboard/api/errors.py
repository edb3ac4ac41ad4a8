"""The one place domain errors and HTTP errors become JSON (API paths) or plain text (pages)."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.errors import DomainError, RateLimited

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/", "/aggregator/")


def is_api() -> bool:
    return request.path.startswith(API_PREFIXES)


def error_body(exc: DomainError) -> dict:
    body: dict = {"error": exc.error}
    if exc.details:
        body["details"] = exc.details
    elif exc.message != exc.error:
        body["detail"] = exc.message
    return body


def _rollback() -> None:
    if "db" in g:
        g.db.rollback()  # nothing is half-written


def domain_error(exc: DomainError):
    _rollback()
    response = jsonify(error_body(exc))
    response.status_code = exc.status
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def http_error(exc: HTTPException):
    if not is_api():
        return exc
    body = {"error": exc.name}
    if exc.code == 413:
        body["detail"] = "The request body is too large; split the batch"
    return jsonify(body), exc.code


def unexpected(exc: Exception):
    _rollback()
    log.exception("Unhandled error on %s %s", request.method, request.path)
    if isinstance(exc, HTTPException):
        return exc
    if is_api():
        return jsonify({"error": "Internal server error"}), 500
    return "Internal server error", 500


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
