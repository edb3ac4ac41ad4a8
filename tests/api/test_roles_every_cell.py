"""Every cell of the role matrix, for every registered route: 401 anonymous, 403 outside the matrix,
and neither for a role the matrix allows."""

from __future__ import annotations

import re

import pytest

from dashboard.policy import LOGINS_ONLY, ROLE_MATRIX

CALLERS = {  # caller -> role it acts as
    "admin": "admin",
    "analyst": "analyst",
    "consumer": "consumer",
    "partner": "third_party",
    "api_key": "third_party",
    "gateway": "gateway",  # an API key of role gateway for house 1 (added by the test)
}
API_KEYS = ("api_key", "gateway")
PUBLIC = {
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/openapi.json",
    "/api/docs",
    "/api/docs/static/<path:filename>",
}


def routes(app):
    out = []
    for rule in app.server.url_map.iter_rules():
        if not rule.rule.startswith(("/api/", "/aggregator/")) or rule.rule in PUBLIC:
            continue
        view = app.server.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, rule.rule, getattr(view, "permission", None)))
    return out


def test_every_api_route_declares_a_known_permission(pg_app):
    for method, path, permission in routes(pg_app):
        assert permission in ROLE_MATRIX, f"{method} {path} has no permission in the role matrix"


def test_every_permission_in_the_matrix_is_used(pg_app):
    used = {p for _, _, p in routes(pg_app)}
    assert set(ROLE_MATRIX) == used


def concrete(path: str, world) -> str:
    """Real ids, chosen so destructive calls never remove a caller of this test."""
    if path.startswith("/api/v1/users/"):
        target = world.users["consumer2"]  # not one of CALLERS
    elif path.startswith("/api/v1/api-keys/"):
        target = 999_999  # revoking the test's own key would turn later api_key calls into 401s
    else:
        target = world.house1
    return re.sub(r"<(?:int:)?[a-z_]+>", str(target), path)


def headers_for(caller: str, path: str, world, app) -> dict:
    """Logout revokes the token it is sent, so it gets a token of its own."""
    if path.endswith("/auth/logout") and caller not in API_KEYS:
        from flask_jwt_extended import create_access_token

        with app.server.app_context():
            return {"Authorization": f"Bearer {create_access_token(identity=str(world.users[caller]))}"}
    return world.headers[caller]


def add_gateway(app, world) -> None:
    from dashboard.auth import create_api_key

    with app.server.extensions["aggregator"].session_factory() as s:
        _row, key = create_api_key(s, "every-cell gateway", "gateway", [world.house1])
        s.commit()
    world.headers["gateway"] = {"X-API-Key": key}


def test_role_matrix_cell_by_cell(client, world, pg_app):
    add_gateway(pg_app, world)
    checked = 0
    # DELETEs last, so the objects stay there for every other call
    for method, path, permission in sorted(routes(pg_app), key=lambda r: r[0] == "DELETE"):
        url = concrete(path, world)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401, f"anonymous {method} {url}"
        assert "error" in anonymous.json
        for caller, role in CALLERS.items():
            response = client.open(
                url, method=method, json=body, headers=headers_for(caller, path, world, pg_app)
            )
            if role in ROLE_MATRIX[permission] and not (permission in LOGINS_ONLY and caller in API_KEYS):
                assert response.status_code not in (401, 403), (
                    f"{caller} {method} {url}: {response.status_code}"
                )
            else:
                assert response.status_code == 403, f"{caller} {method} {url}: {response.status_code}"
                assert response.json["error"] == "Forbidden"
            checked += 1
    assert checked == len(routes(pg_app)) * len(CALLERS)


@pytest.mark.parametrize("caller", ["api_key", "partner"])
def test_third_party_never_gets_one_house(client, world, caller):
    r = client.get("/api/v1/energy", query_string={"resolution": "hour", "start": "2026-01-01T00:00:00Z",
                   "end": "2026-01-02T00:00:00Z", "house_id": world.house1}, headers=world.headers[caller])  # fmt: skip
    assert r.status_code == 403
