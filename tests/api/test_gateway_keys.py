"""Gateway API keys over HTTP on the real PostgreSQL: made by an admin for some houses, they write the
readings of those houses' devices (also `?replace=true` corrections) and nothing else; they read nothing,
have no UI, stop at once when revoked, and lose a house when it is deleted."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dashboard.policy import GATEWAY, ROLE_MATRIX
from dashboard.schema import ApiAccessLog, ApiKey, EnergyRollup, Measurement, api_key_houses
from tests.api.test_corrections import assert_same, recomputed, stored_rollups, timezone_of
from tests.api.test_role_matrix import routes_of
from tests.factories import login_form_fields
from tests.ui.helpers import component, router_payload

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a past Monday: any reading time before now works
HOUSE1 = "<house 1>"  # stands for the world's house 1 in parameters (its id is known only in the test)
OWN = ("H1-MAIN", "H1-PV", "H1-EV")  # house 1's devices (meter, PV inverter, appliance)
FOREIGN = ("H2-MAIN", "PARK-INV")  # house 2's meter, a PV park's inverter (operator device)


def reading(serial: str, minutes: int, power: float, energy: float | None = None, voltage: float = 230.0):
    out = {"device_id": serial, "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "power_w": power}
    if energy is not None:
        out["energy_wh"] = energy
    return out | {"voltage_v": voltage}


def post(client, headers, items, query=""):
    return client.post(f"/api/v1/measurements{query}", json={"measurements": items}, headers=headers)


def new_key(client, world, **body):
    r = client.post("/api/v1/api-keys", json={"name": "meter gateway"} | body, headers=world.headers["admin"])
    assert r.status_code == 201, r.json
    return r.json


@pytest.fixture
def gateway(client, world):
    """A gateway key for house 1, made through the API; its headers and its id."""
    created = new_key(client, world, role="gateway", house_ids=[world.house1])
    return {"headers": {"X-API-Key": created["key"]}, "id": created["id"]}


def counts(factory) -> tuple[int, int]:
    with factory() as s:
        return (
            s.scalar(select(func.count()).select_from(Measurement)),
            s.scalar(select(func.count()).select_from(EnergyRollup)),
        )


# ---- creating and listing --------------------------------------------------------------------------------


def test_admin_creates_a_gateway_key_and_the_list_shows_role_and_houses(client, world):
    created = new_key(client, world, role="gateway", house_ids=[world.house2, world.house1, world.house2])
    assert created["role"] == "gateway" and created["house_ids"] == sorted([world.house1, world.house2])
    assert created["key"].startswith("agk_") and created["header"] == "X-API-Key"
    default = new_key(client, world, name="grid app")  # no role: a third-party key, as before
    assert (default["role"], default["house_ids"]) == ("third_party", [])
    listed = client.get("/api/v1/api-keys", headers=world.headers["admin"]).json["api_keys"]
    assert [(k["name"], k["role"], k["house_ids"]) for k in listed] == [
        ("test app", "third_party", []),  # the world's key, made before roles existed in the call
        ("meter gateway", "gateway", sorted([world.house1, world.house2])),
        ("grid app", "third_party", []),
    ]
    assert all("key" not in k for k in listed)  # never the key itself again


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"role": "gateway"}, "house_ids", "needs at least one house"),
        ({"role": "gateway", "house_ids": []}, "house_ids", "needs at least one house"),
        ({"role": "third_party", "house_ids": [HOUSE1]}, "house_ids", "takes no houses"),
        ({"house_ids": [HOUSE1]}, "house_ids", "takes no houses"),  # the default role is third_party
        ({"role": "gateway", "house_ids": [999_999, 999_998]}, "house_ids", "no house 999998, 999999"),
        ({"role": "admin"}, "role", "one of third_party, gateway"),
        ({"role": "GATEWAY", "house_ids": [HOUSE1]}, "role", "one of third_party, gateway"),
        ({"role": 5}, "role", "must be a string"),
        ({"role": "gateway", "house_ids": "1"}, "house_ids", "must be an array"),
        ({"role": "gateway", "house_ids": [1, "2"]}, "house_ids", "list of integers"),
        ({"role": "gateway", "house_ids": [True]}, "house_ids", "list of integers"),
        ({"role": "gateway", "house_ids": [HOUSE1], "name": ""}, "name", "1 to 120 characters"),
    ],
)
def test_bad_key_requests_are_422_naming_the_field_and_create_nothing(
    client, world, factory, body, field, words
):
    body = {"name": "gw"} | body
    if body.get("house_ids") == [HOUSE1]:
        body["house_ids"] = [world.house1]
    with factory() as s:
        before = s.scalar(select(func.count()).select_from(ApiKey))
    r = client.post("/api/v1/api-keys", json=body, headers=world.headers["admin"])
    assert r.status_code == 422 and r.json["error"] == "Invalid or missing input", r.json
    assert any(d["field"] == field and words in d["message"] for d in r.json["details"]), r.json
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == before
        assert s.scalar(select(func.count()).select_from(api_key_houses)) == 0


def test_the_gateway_knows_who_it_is_and_nothing_more(client, world, gateway):
    me = client.get("/api/v1/auth/me", headers=gateway["headers"])
    assert me.status_code == 200
    assert me.json == {"username": "api-key:meter gateway", "role": "gateway", "house_ids": [world.house1]}
    export = client.get("/api/v1/auth/me/export", headers=gateway["headers"]).json
    assert export["api_key"]["id"] == gateway["id"] and export["readings"] == [] and export["devices"] == []
    assert client.post("/api/v1/auth/logout", headers=gateway["headers"]).status_code == 422  # not a session


# ---- writing ----------------------------------------------------------------------------------------------


def test_gateway_writes_its_houses_devices_and_the_rollups_follow(client, world, gateway, factory):
    items = [reading(serial, 15 * i, 1000.0 + i, 250.0 + i) for i in range(4) for serial in OWN]
    r = post(client, gateway["headers"], items)
    assert r.status_code == 200 and r.json == {"accepted": 12, "duplicates": 0}
    assert post(client, gateway["headers"], items[:3]).json == {"accepted": 0, "duplicates": 3}  # idempotent
    energy = client.get("/api/v1/energy", headers=world.headers["admin"], query_string={
        "resolution": "hour", "start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(),
        "house_id": world.house1}).json["series"]  # fmt: skip
    assert energy[0]["consumption_kwh"] == pytest.approx(sum(250.0 + i for i in range(4)) / 1000)  # the meter
    assert energy[0]["production_kwh"] == pytest.approx(sum(250.0 + i for i in range(4)) / 1000)  # the PV
    with factory() as s:
        logged = s.scalars(
            select(ApiAccessLog).where(ApiAccessLog.api_key_id == gateway["id"]).order_by(ApiAccessLog.id)
        ).all()
    assert [(e.method, e.route, e.status) for e in logged][:1] == [("POST", "/api/v1/measurements", 200)]


@pytest.mark.parametrize("serial", FOREIGN)
@pytest.mark.parametrize("query", ["", "?replace=true"])
def test_gateway_cannot_write_a_device_outside_its_houses(client, world, gateway, factory, serial, query):
    r = post(client, gateway["headers"], [reading(serial, 0, 500.0, 125.0)], query)
    assert r.status_code == 422, r.json
    assert r.json["details"] == [
        {"index": 0, "field": "device_id", "message": f"unknown device {serial!r}; register it first"}
    ]  # the same words as for a device that does not exist: scope does not reveal devices
    assert counts(factory) == (0, 0)


@pytest.mark.parametrize("query", ["", "?replace=true"])
def test_a_batch_mixing_own_and_foreign_devices_stores_nothing(client, world, gateway, factory, query):
    items = [reading("H1-MAIN", 0, 500.0, 125.0), reading("H2-MAIN", 0, 500.0, 125.0),
             reading("H1-EV", 15, 100.0, 25.0), reading("PARK-INV", 15, 9000.0, 2250.0)]  # fmt: skip
    r = post(client, gateway["headers"], items, query)
    assert r.status_code == 422
    assert [(d["index"], d["field"]) for d in r.json["details"]] == [(1, "device_id"), (3, "device_id")]
    assert counts(factory) == (0, 0)
    assert post(client, gateway["headers"], [items[0], items[2]], query).status_code == 200  # the control


def test_a_gateway_of_two_houses_writes_both(client, world, factory):
    created = new_key(client, world, role="gateway", house_ids=[world.house1, world.house2])
    r = post(client, {"X-API-Key": created["key"]}, [reading("H1-MAIN", 0, 1.0), reading("H2-MAIN", 0, 1.0)])
    assert r.json == {"accepted": 2, "duplicates": 0}
    assert post(client, {"X-API-Key": created["key"]}, [reading("PARK-INV", 0, 1.0)]).status_code == 422


# ---- corrections ---------------------------------------------------------------------------------------------


def test_gateway_corrects_its_own_readings_and_every_rollup_follows(client, world, gateway, factory):
    items = [reading(serial, 15 * i, 1000.0, 250.0, 228.0 + i % 3) for i in range(8) for serial in OWN]
    other_house = [reading("H2-MAIN", 15 * i, 700.0, 175.0) for i in range(8)]
    assert post(client, gateway["headers"], items).status_code == 200
    assert post(client, world.headers["admin"], other_house).status_code == 200
    before = stored_rollups(factory)
    corrections = [
        reading("H1-MAIN", 15, 4000.0, 1000.0, 200.0),  # a new minimum voltage
        reading("H1-PV", 30, 0.0, 0.0),  # production zeroed
        reading("H1-EV", 45, 3000.0, 750.0),  # an appliance: its own rollups
        reading("H1-MAIN", 15 * 20, 800.0, 200.0),  # not stored yet: inserted
        items[0],  # the same values again: unchanged
    ]
    r = post(client, gateway["headers"], corrections, "?replace=true")
    assert r.status_code == 200, r.json
    assert r.json == {"accepted": 4, "inserted": 1, "replaced": 3, "unchanged": 1}
    after = stored_rollups(factory)
    assert_same(after, recomputed(factory, timezone_of(client)))  # equal to a recomputation from scratch
    changed = {key[1:3] for key in set(after) | set(before) if after.get(key) != before.get(key)}
    assert (
        ("house", world.house2) not in changed
        and ("house", world.house1) in changed
        and ("all", 0) in changed
    )
    hour = client.get("/api/v1/energy", headers=world.headers["admin"], query_string={
        "resolution": "hour", "start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(),
        "house_id": world.house1}).json["series"][0]  # fmt: skip
    assert hour["consumption_kwh"] == pytest.approx((250.0 + 1000.0 + 250.0 + 250.0) / 1000)
    assert hour["production_kwh"] == pytest.approx((250.0 + 250.0 + 0.0 + 250.0) / 1000)
    with factory() as s:
        note = s.scalar(select(ApiAccessLog.target).where(ApiAccessLog.api_key_id == gateway["id"],
                        ApiAccessLog.target.like("%replace%")))  # fmt: skip
    assert "3 replaced, 1 inserted" in note


def test_gateway_cannot_correct_another_houses_reading(client, world, gateway, factory):
    assert post(client, world.headers["admin"], [reading("H2-MAIN", 0, 700.0, 175.0)]).status_code == 200
    before = (counts(factory), stored_rollups(factory))
    r = post(client, gateway["headers"], [reading("H2-MAIN", 0, 1.0, 0.25)], "?replace=true")
    assert r.status_code == 422 and r.json["details"][0]["field"] == "device_id"
    assert (counts(factory), stored_rollups(factory)) == before
    with factory() as s:
        assert s.scalar(select(Measurement.energy_wh)) == 175.0


@pytest.mark.parametrize(("caller", "status"), [("consumer", 403), ("api_key", 403), ("analyst", 403)])
def test_replace_is_still_refused_to_every_other_non_admin(client, world, factory, caller, status):
    r = post(client, world.headers[caller], [reading("H1-MAIN", 0, 1.0, 0.25)], "?replace=true")
    assert r.status_code == status and r.json["error"] == "Forbidden"
    assert counts(factory) == (0, 0)


# ---- reading nothing, no UI ------------------------------------------------------------------------------------


def test_the_gateway_holds_only_write_and_who_am_i():
    assert {p for p, roles in ROLE_MATRIX.items() if GATEWAY in roles} == {"auth:me", "measurements:write"}


def concrete(rule: str, world) -> str:
    """The gateway's own house id for every path parameter."""
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", str(world.house1), rule)


def test_every_route_outside_its_two_permissions_refuses_the_gateway(client, world, gateway, pg_app, factory):
    """Every guarded route of the app, even aimed at the gateway's own house and device: 403."""
    own = {"house_id": world.house1, "device_id": "H1-MAIN", "resolution": "hour", "start": T0.isoformat(),
           "end": (T0 + timedelta(days=1)).isoformat(), "period": "daily"}  # fmt: skip
    refused = 0
    for route in routes_of(pg_app.server):
        if route.permission is None or GATEWAY in ROLE_MATRIX[route.permission]:
            continue
        url = concrete(route.rule, world)
        body = {"house_id": world.house1} if route.method in ("POST", "PATCH", "PUT") else None
        r = client.open(url, method=route.method, query_string=own, json=body, headers=gateway["headers"])
        assert r.status_code == 403 and r.json["error"] == "Forbidden", (
            f"{route.method} {url}: {r.status_code}"
        )
        refused += 1
    assert refused > 40  # every read route and every other write
    assert counts(factory) == (0, 0)
    with factory() as s:  # the DELETEs among them removed nothing
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 2


def test_the_gateway_has_no_ui(client, world, gateway):
    for path in ("/", "/admin", "/real-time"):
        r = client.post("/_dash-update-component", json=router_payload(path), headers=gateway["headers"])
        layout = r.json["response"]["_pages_content"]["children"]
        assert component(layout, "login-link") is not None, path  # asked to log in, as anonymous
    callback = {"output": "admin-keys-table.children", "outputs": {"id": "admin-keys-table", "property": "children"},
                "inputs": [{"id": "admin-tab-keys", "property": "data", "value": "keys"},
                           {"id": "admin-keys-changed", "property": "data", "value": 0}],
                "changedPropIds": ["admin-tab-keys.data"], "state": []}  # fmt: skip
    r = client.post("/_dash-update-component", json=callback, headers=gateway["headers"])
    assert r.status_code == 401 and "meter gateway" not in r.get_data(as_text=True)
    # the key is no login: the browser's login form refuses it (as name or password) and sets no cookie
    key = gateway["headers"]["X-API-Key"]
    for username in ("meter gateway", key):
        form = {"username": username, "password": key, "next": "/"} | login_form_fields(client)
        r = client.post("/auth/login", data=form, headers=gateway["headers"])
        assert r.status_code == 303 and r.headers["Location"].startswith("/login?error=401"), r.headers
        assert client.get_cookie("access_token_cookie") is None


# ---- revocation and deleted houses ---------------------------------------------------------------------------


def test_revoking_a_gateway_key_stops_its_writes_at_once(client, world, gateway, factory):
    assert post(client, gateway["headers"], [reading("H1-MAIN", 0, 1.0, 0.25)]).status_code == 200
    assert (
        client.delete(f"/api/v1/api-keys/{gateway['id']}", headers=world.headers["admin"]).status_code == 204
    )
    for query in ("", "?replace=true"):
        r = post(client, gateway["headers"], [reading("H1-MAIN", 15, 1.0, 0.25)], query)
        assert r.status_code == 401, r.json
    assert client.get("/api/v1/auth/me", headers=gateway["headers"]).status_code == 401
    assert counts(factory)[0] == 1


def test_a_deleted_house_leaves_the_key_and_a_key_without_houses_writes_nothing(client, world, factory):
    created = new_key(client, world, role="gateway", house_ids=[world.house1, world.house2])
    headers = {"X-API-Key": created["key"]}
    admin = world.headers["admin"]
    assert client.delete(f"/api/v1/houses/{world.house2}", headers=admin).status_code == 204
    keys = {k["id"]: k for k in client.get("/api/v1/api-keys", headers=admin).json["api_keys"]}
    assert keys[created["id"]]["house_ids"] == [world.house1]
    assert client.get("/api/v1/auth/me", headers=headers).json["house_ids"] == [world.house1]
    assert post(client, headers, [reading("H1-MAIN", 0, 1.0, 0.25)]).status_code == 200
    assert client.delete(f"/api/v1/houses/{world.house1}", headers=admin).status_code == 204
    keys = {k["id"]: k for k in client.get("/api/v1/api-keys", headers=admin).json["api_keys"]}
    assert keys[created["id"]]["house_ids"] == [] and keys[created["id"]]["revoked_at"] is None
    assert client.get("/api/v1/auth/me", headers=headers).json["house_ids"] == []
    # nothing to write: a PV park's inverter (still there) is refused, and so is every other device
    r = post(client, headers, [reading("PARK-INV", 0, 1.0, 0.25)])
    assert r.status_code == 422
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Measurement)) == 0  # house 1's went with it
        assert s.scalar(select(func.count()).select_from(api_key_houses)) == 0


def test_the_openapi_document_describes_roles_and_houses(client):
    doc = client.get("/api/openapi.json").json
    body = doc["paths"]["/api/v1/api-keys"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["role"]["enum"] == ["third_party", "gateway"]
    assert body["properties"]["house_ids"] == body["properties"]["house_ids"] | {"type": "array"}
    post_measurements = doc["paths"]["/api/v1/measurements"]["post"]
    assert "gateway" in post_measurements["x-roles"]
    replace = next(p for p in post_measurements["parameters"] if p["name"] == "replace")
    assert "gateway keys" in replace["description"]
