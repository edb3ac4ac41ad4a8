"""The OpenAPI document is built from the routes and must list exactly the registered API routes."""

import re

from dashboard.policy import ROLE_MATRIX


def registered(app):
    pairs = set()
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1/", "/aggregator/")):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            pairs |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return pairs


def test_openapi_lists_exactly_the_registered_routes(client, pg_app):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.") and doc["info"]["title"]
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == registered(pg_app)


def test_secured_operations_list_the_roles_of_their_permission(client):
    doc = client.get("/api/openapi.json").json
    for ops in doc["paths"].values():
        for op in ops.values():
            if "x-permission" in op:
                assert op["x-roles"] == sorted(ROLE_MATRIX[op["x-permission"]])
                assert op["security"]
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert (
        login["security"] == [] and login["requestBody"]["content"]["application/json"]["schema"]["required"]
    )


def test_swagger_ui_is_served_locally(client):
    html = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    assert "http" not in html.replace("/api/openapi.json", "")  # no CDN
    js = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.data) > 100_000
