"""The role matrix, cell by cell: every permission-guarded API route against every kind of caller.

One test per (route, method, caller): anonymous callers get 401, roles outside ROLE_MATRIX[permission]
get 403, allowed roles get past authorisation (any other status). The cells are enumerated from the
API blueprints at collection time; `test_the_cells_cover_every_guarded_route_of_the_app` proves that
this list equals what `app.server.url_map` really serves, so a new route cannot slip past.

One world is built for the whole module (building it hashes five passwords). Requests are generic
(`{}` bodies), so they change nothing except for DELETE, which always targets a throwaway object made
for that one test; every JWT caller gets a fresh access token per test, so logout revokes nothing that
another test uses. The tests are therefore independent of their order.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy import select

from dashboard.auth import create_api_key
from dashboard.clock import utcnow
from dashboard.policy import LOGINS_ONLY, ROLE_MATRIX
from dashboard.schema import PV, Community, Device, House, PVPark, User
from tests.conftest import truncate_all
from tests.factories import build_world

GUARDED_PREFIXES = ("/api/v1/", "/aggregator/")
PUBLIC_API_RULES = {"/api/v1/auth/login", "/api/v1/auth/refresh"}  # need no login by design
CALLERS = {  # caller in world.headers -> the role it acts as (None: not authenticated)
    "admin": "admin",
    "analyst": "analyst",
    "consumer": "consumer",
    "partner": "third_party",
    "api_key": "third_party",
    "gateway": "gateway",  # an API key of role gateway for house 1 (made in `env`)
    "anonymous": None,
}
KEY_CALLERS = ("api_key", "gateway", "anonymous")  # their headers never change
BODY_METHODS = {"POST", "PATCH", "PUT"}


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    permission: str | None


def routes_of(flask_app, prefixes=GUARDED_PREFIXES) -> list[Route]:
    out = []
    for rule in flask_app.url_map.iter_rules():
        if not rule.rule.startswith(prefixes):
            continue
        permission = getattr(flask_app.view_functions[rule.endpoint], "permission", None)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append(Route(method, rule.rule, permission))
    return sorted(out, key=lambda r: (r.rule, r.method))


def _blueprint_routes() -> list[Route]:
    """The API's routes without a database: the blueprints registered on a bare Flask app."""
    from dashboard.api import register_api

    bare = Flask("role-matrix-collection")
    register_api(bare)
    return [r for r in routes_of(bare) if r.permission]


GUARDED = _blueprint_routes()
CELLS = [(route, caller) for route in GUARDED for caller in CALLERS]


def _cell_id(cell) -> str:
    route, caller = cell
    return f"{route.method} {route.rule} as {caller}"


# ---- the module's world and throwaway objects -----------------------------------------------------


@dataclass
class Env:
    app: object
    client: object
    world: object
    ids: dict[str, int | str]  # first path segment after the prefix -> an existing id


@pytest.fixture(scope="module")
def env(pg_app):
    truncate_all(pg_app.server.extensions["aggregator"].engine)
    world = build_world(pg_app)
    with pg_app.server.extensions["aggregator"].session_factory() as s:
        _row, gateway_key = create_api_key(s, "role-matrix gateway", "gateway", [world.house1])
        s.commit()
        world.headers["gateway"] = {"X-API-Key": gateway_key}
        ids = {
            "houses": world.house1,
            "devices": s.scalar(select(Device.id).where(Device.serial == "H1-MAIN")),
            "communities": world.community,
            "pv-parks": world.park,
            "pvs": s.scalar(select(PV.id).where(PV.house_id == world.house1)),
            "users": world.users["consumer2"],  # never one of CALLERS
        }
    return Env(pg_app, pg_app.server.test_client(), world, ids)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _throwaway(env: Env, segment: str) -> int | None:
    """A fresh object of the resource a DELETE route removes, so deleting it harms no other test."""
    now = utcnow()
    with env.app.server.extensions["aggregator"].session_factory() as s:
        makers = {
            "houses": lambda: House(name=_unique("house"), created_at=now),
            "devices": lambda: Device(serial=_unique("dev"), name="x", kind="meter", direction="consumption",
                                      house_id=env.world.house2, created_at=now),
            "communities": lambda: Community(name=_unique("community"), created_at=now),
            "pv-parks": lambda: PVPark(name=_unique("park"), capacity_kw=1.0, created_at=now),
            "pvs": lambda: PV(house_id=env.world.house2, name=_unique("pv"), capacity_kwp=1.0, created_at=now),
            "users": lambda: User(username=_unique("user"), password_hash="!", role="consumer", created_at=now),
        }  # fmt: skip
        if segment == "api-keys":
            row, _key = create_api_key(s, _unique("key"))
        elif segment in makers:
            row = makers[segment]()
            s.add(row)
        else:
            return None
        s.flush()
        object_id = row.id
        s.commit()
    return object_id


def concrete_url(env: Env, route: Route) -> str:
    """The rule with real ids: the world's objects, a throwaway one for DELETE, else a missing id."""
    parts = route.rule.split("/")
    segment = parts[3] if route.rule.startswith("/api/v1/") else parts[1]
    if route.method == "DELETE":
        existing = _throwaway(env, segment)
    else:
        existing = env.ids.get(segment)

    def substitute(match: re.Match) -> str:
        converter = match.group(1)
        if converter == "int":
            return str(existing if existing is not None else 999_999)
        return "no-such-id"

    return re.sub(r"<(?:([a-z]+):)?[a-z_]+>", substitute, route.rule)


def headers_for(env: Env, caller: str) -> dict:
    """A fresh access token per request for user callers (logout revokes the token it is sent)."""
    if caller in KEY_CALLERS:
        return env.world.headers[caller]
    with env.app.server.app_context():
        token = create_access_token(identity=str(env.world.users[caller]))
    return {"Authorization": f"Bearer {token}"}


# ---- the matrix itself ------------------------------------------------------------------------------


def test_every_permission_in_the_matrix_is_used_by_a_route(pg_app):
    used = {r.permission for r in routes_of(pg_app.server) if r.permission}
    assert set(ROLE_MATRIX) - used == set(), "permissions no route uses"
    assert used - set(ROLE_MATRIX) == set(), "routes using a permission the matrix does not know"


def test_every_api_v1_route_except_login_and_refresh_declares_a_permission(pg_app):
    undeclared = [
        f"{r.method} {r.rule}"
        for r in routes_of(pg_app.server, ("/api/v1/",))
        if not r.permission and r.rule not in PUBLIC_API_RULES
    ]
    assert undeclared == []
    assert {r.rule for r in routes_of(pg_app.server, ("/api/v1/",)) if not r.permission} == PUBLIC_API_RULES


def test_spec_aggregator_routes_declare_a_permission_too(pg_app):
    aggregator = routes_of(pg_app.server, ("/aggregator/",))
    assert len(aggregator) == 8
    assert all(r.permission in ROLE_MATRIX for r in aggregator)


def test_the_cells_cover_every_guarded_route_of_the_app(pg_app):
    served = {r for r in routes_of(pg_app.server) if r.permission}
    assert set(GUARDED) == served
    assert len(CELLS) == len(served) * len(CALLERS)
    assert {r.rule for r in served if r.rule.startswith("/api/v1/")}  # the API is really there


def test_the_callers_act_as_the_roles_they_are_named_for(env):
    for caller, role in CALLERS.items():
        r = env.client.get("/api/v1/auth/me", headers=headers_for(env, caller))
        if role is None:
            assert r.status_code == 401
        else:
            assert r.status_code == 200 and r.json["role"] == role, caller


@pytest.mark.parametrize("cell", CELLS, ids=[_cell_id(c) for c in CELLS])
def test_role_matrix_cell(env, cell):
    route, caller = cell
    role = CALLERS[caller]
    url = concrete_url(env, route)
    body = {} if route.method in BODY_METHODS else None
    r = env.client.open(url, method=route.method, json=body, headers=headers_for(env, caller))
    label = f"{caller} {route.method} {url}: {r.status_code} {r.get_data(as_text=True)[:200]}"
    if role is None:
        assert r.status_code == 401, label
        assert r.is_json and isinstance(r.json.get("error"), str) and r.json["error"], label
    elif role not in ROLE_MATRIX[route.permission] or (
        route.permission in LOGINS_ONLY and caller in KEY_CALLERS
    ):
        assert r.status_code == 403, label
        assert r.is_json and r.json["error"] == "Forbidden", label
    else:
        assert r.status_code not in (401, 403), label
        assert r.status_code < 500 or route.rule.startswith("/aggregator/"), label
