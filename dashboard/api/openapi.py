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


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _spec_error(message: str, training: bool = False) -> dict:
    """The spec's 500 body (section 1.4.1): its exact `error`, and a `detail` saying why."""
    properties = {"error": {"type": "string", "enum": [message]}, "detail": {"type": "string"}}
    if training:  # jobs/autotrain.py: the scope's first training, queued by the request
        properties["training"] = {
            "type": "object",
            "properties": {
                "job_id": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "started"]},
                "progress": {"type": "number"},
                "message": {"type": "string", "nullable": True},
            },
        }
    return {"type": "object", "required": ["error"], "properties": properties}


NUMBER_OR_NULL = {"type": "number", "nullable": True}  # a metric that is not finite goes out as null
# The bodies of the spec's endpoints (section 1.4.1): its fields first; further fields may follow.
AGGREGATOR_RESPONSES = {
    "train": {
        "200": _json(
            "Trained: the spec's body (message, mse, mae, r2; horizon for short-term) and the model's facts",
            {
                "type": "object",
                "required": ["message", "mse", "mae", "r2"],
                "properties": {
                    "message": {"type": "string"},
                    "mse": NUMBER_OR_NULL,
                    "mae": NUMBER_OR_NULL,
                    "r2": NUMBER_OR_NULL,
                    "horizon": {"type": "integer"},
                    "model_version": {"type": "string"},
                    "model": {"type": "string"},
                },
            },
        ),
        "202": _json(
            "Still training (or ?async=true): poll status_url",
            {
                "type": "object",
                "required": ["job_id", "status", "status_url"],
                "properties": {
                    "job_id": {"type": "string"},
                    "status": {"type": "string"},
                    "status_url": {"type": "string"},
                },
            },
        ),
        "500": _json("The spec's training failure", _spec_error("Training failed")),
    },
    "forecast": {
        "200": _json(
            "The forecast: one row per step (kWh), with the 90 % band",
            {
                "type": "object",
                "required": ["forecast"],
                "properties": {
                    "forecast": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["timestamp", "forecasted_energy_usage"],
                            "properties": {
                                "timestamp": {"type": "string"},
                                "forecasted_energy_usage": NUMBER_OR_NULL,
                                "lower": NUMBER_OR_NULL,
                                "upper": NUMBER_OR_NULL,
                            },
                        },
                    }
                },
            },
        ),
        "500": _json(
            "The spec's forecast failure; with `training` while the scope's first model is being trained",
            _spec_error("Model missing or forecast failed", training=True),
        ),
    },
}
SCOPED_QUERY = {"house_id", "community_id", "device_id"}


def error_responses(rule, view, method: str) -> dict:
    """The error answers an operation can give besides 401/403/422: 404 where it names an object (a path
    id, or a house, community or device in the query; outside the caller's scope reads as missing), 413
    where it takes a body, 429 at login."""
    found = {}
    named = set(rule.arguments - set(rule.defaults or {})) or SCOPED_QUERY & set(
        getattr(view, "query_params", {})
    )
    if named:
        found["404"] = _json("Not found, or outside the caller's scope", ERROR_SCHEMA)
    if method in ("POST", "PATCH", "PUT"):
        found["413"] = _json("The body is larger than the server takes (MAX_CONTENT_LENGTH)", ERROR_SCHEMA)
    if rule.rule.endswith("/auth/login"):
        found["429"] = _json("Too many failed logins: wait Retry-After seconds", ERROR_SCHEMA)
    return found


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
            spec = next((r for verb, r in AGGREGATOR_RESPONSES.items() if rule.rule.startswith("/aggregator/")
                         and f"/{verb}/" in rule.rule), {})  # fmt: skip
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
                    **spec,
                    **error_responses(rule, view, method),
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
            "third-party apps and gateway keys send 'X-API-Key' (a gateway key writes its houses' readings "
            "and reads nothing). "
            'Errors are JSON: {"error": ..., "detail" or "details": '
            "[{field, message, index?}]}. A path under /api/ or /aggregator/ that no operation has answers 404, "
            "and a method a path does not take 405 with an Allow header (e.g. GET on a train or forecast path).",
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
