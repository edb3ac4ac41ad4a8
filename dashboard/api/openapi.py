"""The OpenAPI 3 document, built from the registered routes themselves so it cannot drift from them,
and Swagger UI served from the locally installed swagger-ui-bundle (no CDN)."""

from __future__ import annotations

import re
from collections.abc import Callable

import swagger_ui_bundle
from flask import Blueprint, current_app, jsonify, send_from_directory
from werkzeug.routing import BaseConverter, FloatConverter, IntegerConverter, UUIDConverter

from dashboard.api.common import public
from dashboard.policy import ROLE_MATRIX

bp = Blueprint("openapi", __name__, url_prefix="/api")
DOCUMENTED_PREFIXES = ("/api/v1/", "/aggregator/")
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "details": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}


def responds(*statuses: int):
    """Declare the status(es) a route answers on success (default: 204 for DELETE, else 200)."""

    def decorate(view: Callable) -> Callable:
        view.success_statuses = statuses
        return view

    return decorate


def success_statuses(view: Callable, method: str) -> tuple[int, ...]:
    """The declared success statuses, else the app's convention: deletes answer 204, the rest 200."""
    declared = getattr(view, "success_statuses", None)
    if declared:
        return tuple(declared)
    return (204,) if method == "DELETE" else (200,)


def path_parameter_schema(converter: BaseConverter) -> dict:
    """The JSON schema of a path parameter, from the werkzeug converter that parses it."""
    if isinstance(converter, IntegerConverter):
        return {"type": "integer"}
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}  # default, string, path, any


def documented_rules(app) -> list:
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(DOCUMENTED_PREFIXES)]


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def build_openapi(app) -> dict:
    paths: dict[str, dict] = {}
    for rule in documented_rules(app):
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "permission", None)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            statuses = success_statuses(view, method)
            doc = (view.__doc__ or rule.endpoint).strip().splitlines()[0]
            op: dict = {
                "operationId": f"{rule.endpoint}_{method.lower()}",
                "summary": doc,
                "parameters": [
                    {
                        "name": arg,
                        "in": "path",
                        "required": True,
                        "schema": path_parameter_schema(rule._converters[arg]),
                    }
                    for arg in sorted(rule.arguments - set(rule.defaults or {}))
                ]
                + [
                    {"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
                    for name, text in getattr(view, "query_params", {}).items()
                ],
                "responses": {
                    **{str(s): {"description": SUCCESS_DESCRIPTIONS.get(s, "Success")} for s in statuses},
                    "401": {
                        "description": "Not authenticated",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                    "403": {
                        "description": "Role not allowed",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                    "422": {
                        "description": "Invalid or missing input",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                },
            }
            if permission:
                op["security"] = [{"bearer": []}, {"apiKey": []}]
                op["x-permission"] = permission
                op["x-roles"] = sorted(ROLE_MATRIX[permission])
            else:
                op["security"] = []
            body = getattr(view, "body_schema", None)
            if body and method in ("POST", "PATCH", "PUT"):
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Aggregator Web App API",
            "version": "1.0.0",
            "description": "Energy data ingestion, scoped reads and forecasting for an aggregator. "
            "Log in at /api/v1/auth/login and send 'Authorization: Bearer <access_token>'; "
            "third-party apps send 'X-API-Key'.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
@public()
def openapi_json():
    return jsonify(build_openapi(current_app))


SWAGGER_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Aggregator API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#ui"});</script></body></html>"""


@bp.get("/docs")
@public()
def swagger_ui():
    return SWAGGER_HTML


@bp.get("/docs/static/<path:filename>")
@public()
def swagger_static(filename: str):
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
