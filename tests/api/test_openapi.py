"""GET /api/openapi.json and /api/docs: the document lists exactly the served API routes with their roles,
and Swagger UI is served from the installed bundle, never from a CDN."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter

from dashboard.policy import ROLE_MATRIX

DOCUMENTED = ("/api/v1/", "/aggregator/")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def served(app) -> dict[tuple[str, str], tuple]:
    """(openapi path, method) -> (werkzeug rule, view function), from the app's URL map."""
    out = {}
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith(DOCUMENTED):
            view = app.server.view_functions[rule.endpoint]
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                out[(openapi_path(rule.rule), method.lower())] = (rule, view)
    return out


@pytest.fixture(scope="module")
def doc(pg_app):
    r = pg_app.server.test_client().get("/api/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.json


def operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_document_is_openapi_3_with_info_and_paths(doc):
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    assert all(path.startswith("/") for path in doc["paths"])
    assert all(set(ops) <= HTTP_METHODS for ops in doc["paths"].values())
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")


def test_document_is_served_without_login(pg_app):
    assert pg_app.server.test_client().get("/api/openapi.json").status_code == 200


def test_documented_operations_equal_the_served_routes(doc, pg_app):
    documented = {(path, method) for path, method, _op in operations(doc)}
    assert documented == set(served(pg_app))
    # the routes the spec names are among them
    assert ("/aggregator/consumption/train/next-24-hours", "post") in documented
    assert ("/api/v1/houses/{object_id}", "patch") in documented


def test_every_operation_has_a_unique_id_and_a_summary(doc):
    ids = [op["operationId"] for _p, _m, op in operations(doc)]
    assert len(ids) == len(set(ids))
    assert all(op["summary"] for _p, _m, op in operations(doc))


def test_secured_operations_list_the_roles_of_their_permission(doc, pg_app):
    routes = served(pg_app)
    secured = 0
    for path, method, op in operations(doc):
        permission = getattr(routes[(path, method)][1], "permission", None)
        if permission:
            secured += 1
            assert op["x-permission"] == permission, (path, method)
            assert op["x-roles"] == sorted(ROLE_MATRIX[permission]), (path, method)
            assert op["security"] == [{"bearer": []}, {"apiKey": []}], (path, method)
        else:
            assert op["security"] == [] and "x-roles" not in op, (path, method)
    assert secured == len(routes) - 2  # all but login and refresh


def test_public_operations_are_exactly_login_and_refresh(doc):
    public = {(p, m) for p, m, op in operations(doc) if op["security"] == []}
    assert public == {("/api/v1/auth/login", "post"), ("/api/v1/auth/refresh", "post")}
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    schema = login["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["username", "password"]


def test_every_path_parameter_is_declared(doc):
    for path, method, op in operations(doc):
        in_path = set(re.findall(r"{([a-z_]+)}", path))
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == in_path, (path, method)
        assert all(p["required"] for p in op["parameters"] if p["in"] == "path")


def test_write_operations_document_their_request_body(doc):
    for path in ("/api/v1/houses", "/api/v1/devices", "/api/v1/users", "/api/v1/measurements"):
        body = doc["paths"][path]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"]["type"] == "object"
    devices = doc["paths"]["/api/v1/devices/{object_id}"]["patch"]["requestBody"]
    assert set(devices["content"]["application/json"]["schema"]["properties"]) >= {"serial", "house_id"}


def test_query_parameters_of_the_energy_read_are_documented(doc):
    names = {p["name"] for p in doc["paths"]["/api/v1/energy"]["get"]["parameters"] if p["in"] == "query"}
    assert {"resolution", "start", "end", "house_id", "community_id"} <= names


def test_path_parameter_types_match_the_route_converters(doc, pg_app):
    for (path, method), (rule, _view) in served(pg_app).items():
        params = {p["name"]: p["schema"]["type"] for p in doc["paths"][path][method]["parameters"]}
        for name, converter in rule._converters.items():
            expected = "integer" if isinstance(converter, IntegerConverter) else "string"
            assert params[name] == expected, (path, method, name)


def test_documented_success_status_matches_creates_and_deletes(doc):
    assert "201" in doc["paths"]["/api/v1/houses"]["post"]["responses"]
    assert "204" in doc["paths"]["/api/v1/houses/{object_id}"]["delete"]["responses"]


# ---- Swagger UI ----------------------------------------------------------------------------------------


def test_swagger_ui_page_uses_the_local_bundle_and_no_cdn(pg_app):
    client = pg_app.server.test_client()
    r = client.get("/api/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert '<script src="/api/docs/static/swagger-ui-bundle.js">' in html
    assert "/api/openapi.json" in html
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I)  # no absolute or CDN URLs
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert src.startswith("/api/"), src


def test_swagger_ui_assets_are_served(pg_app):
    client = pg_app.server.test_client()
    js = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert js.mimetype in ("text/javascript", "application/javascript")
    assert len(js.data) > 100_000 and b"SwaggerUIBundle" in js.data
    css = client.get("/api/docs/static/swagger-ui.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_swagger_static_does_not_serve_files_outside_the_bundle(pg_app):
    client = pg_app.server.test_client()
    for path in ("/api/docs/static/../../../etc/passwd", "/api/docs/static/%2e%2e/%2e%2e/etc/passwd",
                 "/api/docs/static/no-such-file.js"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404 and b"root:" not in r.data, path
