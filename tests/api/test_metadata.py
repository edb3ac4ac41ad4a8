"""Metadata CRUD over /api/v1 (houses, devices, communities, PV parks, PVs, users): contract, validation,
scope (a consumer sees their own house only, and 404 for the rest) and deletion cascades."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select, text

from dashboard.clock import utcnow
from dashboard.schema import PV, Base, Device, EnergyRollup, House, Measurement, PVPark, User
from tests.conftest import truncate_all
from tests.factories import build_world

ADMIN = "admin"
NO_PLACE = {"timezone": None, "country": None, "latitude": None, "longitude": None}  # the defaults apply


# ---- one world per module, restored before every test -------------------------------------------------
# Building the world hashes five passwords (~0.5 s); these tests need it ~70 times. It is built once,
# its rows are snapshotted, and before each test the `app` fixture empties every table and the snapshot is
# copied back with the id sequences moved past it, so each test starts from exactly the built world.


@pytest.fixture(scope="module")
def world_snapshot(pg_app):
    engine = pg_app.server.extensions["aggregator"].engine
    truncate_all(engine)
    built = build_world(pg_app)
    with engine.connect() as conn:
        rows = {
            t.name: [dict(r._mapping) for r in conn.execute(t.select())] for t in Base.metadata.sorted_tables
        }
    return built, rows


@pytest.fixture
def world(app, world_snapshot):
    built, rows = world_snapshot
    engine = app.server.extensions["aggregator"].engine
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])
            if "id" in table.c and table.c.id.autoincrement in (True, "auto") and rows[table.name]:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"),
                    {"t": table.name, "v": max(r["id"] for r in rows[table.name])},
                )
    return built


def ids_of(factory, *serials):
    with factory() as s:
        rows = s.execute(select(Device.serial, Device.id).where(Device.serial.in_(serials))).all()
    return dict(rows)


def count(factory, model, *where):
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def listed(client, headers, resource):
    r = client.get(f"/api/v1/{resource}", headers=headers)
    assert r.status_code == 200, r.json
    return r.json[resource.replace("-", "_")]


# ---- CRUD as admin ----------------------------------------------------------------------------------

# resource -> (create body, expected fields after create, PATCH body), as functions of the world
CRUD = {
    "houses": lambda w: (
        {
            "name": "House C",
            "address": " 1 Main St, Melbourne VIC 3000 ",
            "community_ids": [w.community],
            "timezone": "Australia/Melbourne",
            "country": "au-vic",
            "latitude": -37.81,
            "longitude": 144.96,
        },
        {
            "name": "House C",
            "address": "1 Main St, Melbourne VIC 3000",  # trimmed
            "community_ids": [w.community],
            "timezone": "Australia/Melbourne",
            "country": "AU-VIC",
            "latitude": -37.81,
            "longitude": 144.96,
            "share_with_third_parties": False,  # consent is never assumed
        },
        {"name": "House C renamed", "address": None, "share_with_third_parties": True},
    ),
    "devices": lambda w: (
        {"serial": "NEW-FRIDGE", "name": "Fridge", "kind": "appliance", "house_id": w.house2},
        {
            "device_id": "NEW-FRIDGE",
            "name": "Fridge",
            "kind": "appliance",
            "direction": "consumption",
            "house_id": w.house2,
            "pv_park_id": None,
            "pv_id": None,
            "max_power_w": None,
        },
        {"name": "Freezer"},
    ),  # fmt: skip
    "communities": lambda w: (
        {"name": "Wind Row", "house_ids": [w.house2]},
        {"name": "Wind Row", "house_count": 1, "house_ids": [w.house2]} | NO_PLACE,
        {"name": "Wind Lane"},
    ),
    "pv-parks": lambda w: (
        {"name": "Park 2", "capacity_kw": 99.5, "community_id": w.community},
        {"name": "Park 2", "capacity_kw": 99.5, "community_id": w.community},
        {"capacity_kw": 120},
    ),
    "pvs": lambda w: (
        {"house_id": w.house2, "name": "Garage roof", "capacity_kwp": 3.2},
        {"house_id": w.house2, "name": "Garage roof", "capacity_kwp": 3.2},
        {"capacity_kwp": 4.5},
    ),
    "users": lambda w: (
        {
            "username": "newbie",
            "password": "long-enough-pw",
            "role": "consumer",
            "house_ids": [w.house2],
            "full_name": "Nia Newbie",
            "email": "nia@example.org",
        },
        {
            "username": "newbie",
            "role": "consumer",
            "is_active": True,
            "full_name": "Nia Newbie",
            "email": "nia@example.org",
            "house_ids": [w.house2],
            "community_ids": [],
        },
        {"is_active": False, "email": "nia.newbie@mail.example.com", "full_name": None},
    ),  # fmt: skip
}


@pytest.mark.parametrize("resource", list(CRUD))
def test_admin_creates_reads_lists_updates_and_deletes(client, world, resource):
    h = world.headers[ADMIN]
    create, expected, patch = CRUD[resource](world)

    r = client.post(f"/api/v1/{resource}", json=create, headers=h)
    assert r.status_code == 201, r.json
    created = r.json
    assert isinstance(created["id"], int)
    assert created == expected | {"id": created["id"]}
    url = f"/api/v1/{resource}/{created['id']}"

    assert client.get(url, headers=h).json == created
    assert created in listed(client, h, resource)

    r = client.patch(url, json=patch, headers=h)
    assert r.status_code == 200, r.json
    assert r.json == created | patch
    assert client.get(url, headers=h).json == created | patch

    r = client.delete(url, headers=h)
    assert r.status_code == 204 and r.data == b""
    r = client.get(url, headers=h)
    assert r.status_code == 404 and r.json["error"] == "Not found"
    assert created["id"] not in {o["id"] for o in listed(client, h, resource)}
    assert client.delete(url, headers=h).status_code == 404


@pytest.mark.parametrize("resource", ["houses", "devices", "communities", "pv-parks", "pvs", "users"])
def test_unknown_id_is_404_json_for_get_patch_and_delete(client, world, resource):
    h = world.headers[ADMIN]
    url = f"/api/v1/{resource}/999999"
    for method, body in (("GET", None), ("PATCH", {}), ("DELETE", None)):
        r = client.open(url, method=method, json=body, headers=h)
        assert r.status_code == 404 and r.json["error"] == "Not found", method


# ---- devices ------------------------------------------------------------------------------------------


def test_device_serial_is_generated_when_absent(client, world):
    h = world.headers[ADMIN]
    body = {"name": "Heat pump", "kind": "appliance", "house_id": world.house1}
    first = client.post("/api/v1/devices", json=body, headers=h)
    second = client.post("/api/v1/devices", json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert re.fullmatch(r"dev-[0-9a-f]{12}", first.json["device_id"])
    assert first.json["device_id"] != second.json["device_id"]


def test_client_chosen_serial_is_kept_and_readings_can_use_it(client, world, factory):
    h = world.headers[ADMIN]
    r = client.post(
        "/api/v1/devices", json={"serial": "GW-42", "name": "Meter", "kind": "meter", "house_id": world.house2},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201 and r.json["device_id"] == "GW-42"
    reading = {"device_id": "GW-42", "timestamp": "2026-03-01T10:00:00+00:00", "power_w": 100.0}
    r = client.post("/api/v1/measurements", json={"measurements": [reading]}, headers=h)
    assert r.status_code == 200 and r.json["accepted"] == 1


def test_device_id_is_accepted_on_create_and_patch_as_the_answers_name_it(client, world, factory):
    h = world.headers[ADMIN]
    body = {"device_id": "GW-7", "name": "Meter", "kind": "meter", "house_id": world.house2}
    r = client.post("/api/v1/devices", json=body, headers=h)
    assert r.status_code == 201, r.json
    assert r.json["device_id"] == "GW-7" and ids_of(factory, "GW-7")["GW-7"] == r.json["id"]
    both = body | {"device_id": "GW-8", "serial": "GW-8"}  # both, agreeing: fine
    assert client.post("/api/v1/devices", json=both, headers=h).json["device_id"] == "GW-8"
    before = count(factory, Device)
    r = client.post("/api/v1/devices", json=body | {"device_id": "GW-9", "serial": "GW-10"}, headers=h)
    assert r.status_code == 422 and r.json["error"] == "Invalid or missing input"
    (problem,) = r.json["details"]
    assert problem["field"] == "device_id" and "serial" in problem["message"]
    for bad in (42, ""):
        r = client.post("/api/v1/devices", json=body | {"device_id": bad}, headers=h)
        assert r.status_code == 422 and r.json["details"][0]["field"] == "device_id"
    assert count(factory, Device) == before  # nothing half-written
    r = client.post("/api/v1/devices", json=body | {"device_id": None}, headers=h)
    assert r.status_code == 201 and r.json["device_id"].startswith("dev-")  # null: generated, as serial
    device = ids_of(factory, "GW-7")["GW-7"]
    r = client.patch(f"/api/v1/devices/{device}", json={"device_id": "GW-7b"}, headers=h)
    assert r.status_code == 200 and r.json["device_id"] == "GW-7b"
    assert client.patch(f"/api/v1/devices/{device}", json={"device_id": None}, headers=h).status_code == 422
    schema = client.get("/api/openapi.json").json["paths"]["/api/v1/devices"]["post"]["requestBody"]
    properties = schema["content"]["application/json"]["schema"]["properties"]
    assert properties["device_id"]["type"] == "string" and "serial" in properties["device_id"]["description"]


def test_pv_device_defaults_to_production(client, world):
    r = client.post(
        "/api/v1/devices", json={"name": "Inverter 2", "kind": "pv", "pv_park_id": world.park},
        headers=world.headers[ADMIN],
    )  # fmt: skip
    assert r.status_code == 201
    assert (r.json["direction"], r.json["pv_park_id"], r.json["house_id"]) == ("production", world.park, None)


def test_duplicate_serial_is_409_on_create_and_update(client, world, factory):
    h = world.headers[ADMIN]
    before = count(factory, Device)
    r = client.post(
        "/api/v1/devices", json={"serial": "H1-MAIN", "name": "Copy", "kind": "meter", "house_id": world.house2},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 409 and r.json["error"] == "Conflict"
    assert count(factory, Device) == before
    h2 = ids_of(factory, "H2-MAIN")["H2-MAIN"]
    r = client.patch(f"/api/v1/devices/{h2}", json={"serial": "H1-MAIN"}, headers=h)
    assert r.status_code == 409
    assert client.get(f"/api/v1/devices/{h2}", headers=h).json["device_id"] == "H2-MAIN"


@pytest.mark.parametrize(
    "location",
    [
        pytest.param(lambda w: {}, id="neither"),
        pytest.param(lambda w: {"house_id": w.house1, "pv_park_id": w.park}, id="both"),
    ],
)
def test_device_needs_exactly_one_of_house_or_pv_park(client, world, factory, location):
    before = count(factory, Device)
    r = client.post(
        "/api/v1/devices",
        json={"name": "Inverter", "kind": "pv"} | location(world),
        headers=world.headers[ADMIN],
    )
    assert r.status_code == 422
    assert r.json["details"][0]["field"] == "house_id"
    assert count(factory, Device) == before


def test_moving_a_house_device_into_a_park_as_well_is_422_and_changes_nothing(client, world, factory):
    pv = ids_of(factory, "H1-PV")["H1-PV"]
    r = client.patch(f"/api/v1/devices/{pv}", json={"pv_park_id": world.park}, headers=world.headers[ADMIN])
    assert r.status_code == 422 and r.json["details"][0]["field"] == "house_id"
    with factory() as s:
        device = s.get(Device, pv)
        assert (device.house_id, device.pv_park_id) == (world.house1, None)


def test_pv_park_holds_pv_inverters_only(client, world):
    r = client.post(
        "/api/v1/devices", json={"name": "Meter", "kind": "meter", "pv_park_id": world.park},
        headers=world.headers[ADMIN],
    )  # fmt: skip
    assert r.status_code == 422 and r.json["details"][0]["field"] == "kind"


def test_appliance_producing_energy_is_422(client, world, factory):
    h = world.headers[ADMIN]
    before = count(factory, Device)
    r = client.post(
        "/api/v1/devices",
        json={"name": "Toaster", "kind": "appliance", "direction": "production", "house_id": world.house1},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json["details"] == [{"field": "direction", "message": "appliances consume"}]
    assert count(factory, Device) == before
    ids = ids_of(factory, "H1-EV", "H1-PV")
    ev, pv = ids["H1-EV"], ids["H1-PV"]
    assert (
        client.patch(f"/api/v1/devices/{ev}", json={"direction": "production"}, headers=h).status_code == 422
    )
    assert client.patch(f"/api/v1/devices/{pv}", json={"kind": "appliance"}, headers=h).status_code == 422
    assert client.get(f"/api/v1/devices/{ev}", headers=h).json["direction"] == "consumption"
    assert client.get(f"/api/v1/devices/{pv}", headers=h).json["kind"] == "pv"


# ---- validation ---------------------------------------------------------------------------------------

VALID = {
    "houses": lambda w: {"name": "House X"},
    "devices": lambda w: {"name": "Meter X", "kind": "meter", "house_id": w.house2},
    "communities": lambda w: {"name": "Community X"},
    "pv-parks": lambda w: {"name": "Park X", "capacity_kw": 10.0},
    "pvs": lambda w: {"house_id": w.house2, "name": "PV X", "capacity_kwp": 1.0},
    "users": lambda w: {"username": "xavier", "password": "long-enough-pw", "role": "analyst"},
}
MODELS = {"houses": House, "devices": Device, "pv-parks": PVPark, "pvs": PV, "users": User}


@pytest.mark.parametrize("resource", list(VALID))
def test_valid_minimal_body_is_created(client, world, resource):
    r = client.post(f"/api/v1/{resource}", json=VALID[resource](world), headers=world.headers[ADMIN])
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("resource", list(VALID))
def test_unknown_fields_are_422_with_details_and_nothing_is_created(client, world, resource):
    h = world.headers[ADMIN]
    before = len(listed(client, h, resource))
    body = VALID[resource](world) | {"colour": "red", "zz_extra": 1}
    r = client.post(f"/api/v1/{resource}", json=body, headers=h)
    assert r.status_code == 422
    assert r.json["error"] == "Invalid or missing input"
    assert [d["field"] for d in r.json["details"]] == ["colour", "zz_extra"]
    assert all("unknown field" in d["message"] for d in r.json["details"])
    assert len(listed(client, h, resource)) == before


def test_unknown_field_in_a_patch_is_422_and_changes_nothing(client, world):
    h = world.headers[ADMIN]
    r = client.patch(f"/api/v1/houses/{world.house1}", json={"name": "New", "owner": "me"}, headers=h)
    assert r.status_code == 422 and r.json["details"][0]["field"] == "owner"
    assert client.get(f"/api/v1/houses/{world.house1}", headers=h).json["name"] == "House A"


WRONG = [
    ("houses", {"name": 5}, "name"),
    ("houses", {"name": "   "}, "name"),
    ("houses", {"name": "x" * 121}, "name"),
    ("houses", {"community_ids": "1"}, "community_ids"),
    ("houses", {"community_ids": [True]}, "community_ids"),
    ("devices", {"kind": "toaster"}, "kind"),
    ("devices", {"house_id": "1"}, "house_id"),
    ("devices", {"house_id": True}, "house_id"),
    ("devices", {"direction": "sideways"}, "direction"),
    ("pv-parks", {"capacity_kw": "big"}, "capacity_kw"),
    ("pv-parks", {"capacity_kw": -1}, "capacity_kw"),
    ("pv-parks", {"capacity_kw": 0}, "capacity_kw"),
    ("pvs", {"capacity_kwp": [3]}, "capacity_kwp"),
    ("pvs", {"house_id": 1.5}, "house_id"),
    ("users", {"role": "root"}, "role"),
    ("users", {"is_active": "yes"}, "is_active"),
    ("users", {"password": 12345678}, "password"),
    ("users", {"house_ids": [1, "2"]}, "house_ids"),
]


@pytest.mark.parametrize(
    ("resource", "change", "field"), WRONG, ids=[f"{r}-{f}-{i}" for i, (r, _c, f) in enumerate(WRONG)]
)
def test_wrong_types_and_values_are_422_naming_the_field(client, world, factory, resource, change, field):
    h = world.headers[ADMIN]
    before = len(listed(client, h, resource))
    r = client.post(f"/api/v1/{resource}", json=VALID[resource](world) | change, headers=h)
    assert r.status_code == 422, r.json
    assert field in [d["field"] for d in r.json["details"]]
    assert len(listed(client, h, resource)) == before


@pytest.mark.parametrize("resource", list(VALID))
def test_missing_required_fields_are_422(client, world, resource):
    r = client.post(f"/api/v1/{resource}", json={}, headers=world.headers[ADMIN])
    assert r.status_code == 422
    assert r.json["details"]


@pytest.mark.parametrize("body", ['"a string"', "[1, 2]", "{not json"])
def test_body_that_is_not_a_json_object_is_422(client, world, body):
    r = client.post(
        "/api/v1/houses", data=body, headers=world.headers[ADMIN] | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json["details"][0]["field"] == "body"


def test_unknown_referenced_house_changes_nothing(client, world, factory):
    before = count(factory, Device)
    r = client.post(
        "/api/v1/devices", json={"name": "Ghost", "kind": "meter", "house_id": 999_999},
        headers=world.headers[ADMIN],
    )  # fmt: skip
    assert r.status_code in (404, 409, 422) and r.json["error"]
    assert count(factory, Device) == before


@pytest.mark.parametrize(
    ("resource", "field"), [("houses", "name"), ("devices", "kind"), ("pv-parks", "capacity_kw")]
)
def test_patch_with_null_for_a_required_field_is_422(client, world, factory, resource, field):
    object_id = {"houses": world.house1, "pv-parks": world.park}.get(resource) or ids_of(factory, "H1-MAIN")[
        "H1-MAIN"
    ]
    r = client.patch(f"/api/v1/{resource}/{object_id}", json={field: None}, headers=world.headers[ADMIN])
    assert r.status_code == 422
    assert r.json["details"][0]["field"] == field


@pytest.mark.parametrize("raw", ["Infinity", "1e999"])
def test_infinite_capacity_is_422(client, world, factory, raw):
    before = count(factory, PVPark)
    r = client.post(
        "/api/v1/pv-parks",
        data=f'{{"name": "Sun", "capacity_kw": {raw}}}',
        headers=world.headers[ADMIN] | {"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert count(factory, PVPark) == before
    listing = client.get("/api/v1/pv-parks", headers=world.headers[ADMIN]).get_data(as_text=True)
    json.loads(listing, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


# ---- users ------------------------------------------------------------------------------------------


def test_password_and_its_hash_never_appear_in_any_user_response(client, world):
    h = world.headers[ADMIN]
    secret = "very-secret-pass"
    created = client.post(
        "/api/v1/users", json={"username": "carol", "password": secret, "role": "analyst"}, headers=h
    )
    assert created.status_code == 201
    url = f"/api/v1/users/{created.json['id']}"
    responses = [
        created,
        client.get(url, headers=h),
        client.get("/api/v1/users", headers=h),
        client.patch(url, json={"password": "another-secret-pass"}, headers=h),
        client.patch(url, json={"is_active": True}, headers=h),
    ]
    for r in responses:
        assert r.status_code in (200, 201)
        text = r.get_data(as_text=True)
        assert "password" not in text and "argon2" not in text and secret not in text
        assert "another-secret-pass" not in text


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_password_shorter_than_8_characters_is_422(client, world, factory, password):
    h = world.headers[ADMIN]
    before = count(factory, User)
    r = client.post(
        "/api/v1/users", json={"username": "dave", "password": password, "role": "analyst"}, headers=h
    )
    assert r.status_code == 422 and "password" in [d["field"] for d in r.json["details"]]
    r = client.patch(f"/api/v1/users/{world.users['consumer2']}", json={"password": password}, headers=h)
    assert r.status_code == 422 and r.json["details"][0]["field"] == "password"
    assert count(factory, User) == before


def test_user_without_password_is_422(client, world):
    r = client.post(
        "/api/v1/users", json={"username": "erin", "role": "analyst"}, headers=world.headers[ADMIN]
    )
    assert r.status_code == 422 and "password" in [d["field"] for d in r.json["details"]]


def test_duplicate_username_is_refused(client, world, factory):
    before = count(factory, User)
    r = client.post(
        "/api/v1/users", json={"username": "analyst", "password": "long-enough-pw", "role": "analyst"},
        headers=world.headers[ADMIN],
    )  # fmt: skip
    assert r.status_code in (409, 422) and r.json["error"]
    assert count(factory, User) == before


def login(client, username, password):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_created_user_can_log_in_and_sees_their_scope(client, world):
    h = world.headers[ADMIN]
    body = {
        "username": "frank",
        "password": "frank-password",
        "role": "consumer",
        "house_ids": [world.house2],
    }
    assert client.post("/api/v1/users", json=body, headers=h).status_code == 201
    r = login(client, "frank", "frank-password")
    assert r.status_code == 200, r.json
    bearer = {"Authorization": f"Bearer {r.json['access_token']}"}
    me = client.get("/api/v1/auth/me", headers=bearer).json
    assert me == {"username": "frank", "role": "consumer", "house_ids": [world.house2]}
    assert [o["id"] for o in listed(client, bearer, "houses")] == [world.house2]


def test_changed_password_replaces_the_old_one(client, world):
    h = world.headers[ADMIN]
    r = client.post("/api/v1/users", json={"username": "gina", "password": "first-password", "role": "analyst"},
                    headers=h)  # fmt: skip
    url = f"/api/v1/users/{r.json['id']}"
    assert client.patch(url, json={"password": "second-password"}, headers=h).status_code == 200
    assert login(client, "gina", "first-password").status_code == 401
    assert login(client, "gina", "second-password").status_code == 200


def test_deactivated_user_cannot_log_in(client, world):
    h = world.headers[ADMIN]
    r = client.post("/api/v1/users", json={"username": "hank", "password": "hank-password", "role": "analyst"},
                    headers=h)  # fmt: skip
    client.patch(f"/api/v1/users/{r.json['id']}", json={"is_active": False}, headers=h)
    assert login(client, "hank", "hank-password").status_code == 401


# ---- scope ------------------------------------------------------------------------------------------


@pytest.fixture
def house2_pv(world, factory):
    with factory() as s:
        pv = PV(house_id=world.house2, name="Shed", capacity_kwp=2.0, created_at=utcnow())
        s.add(pv)
        s.commit()
        return pv.id


def test_consumer_lists_only_their_house_its_devices_and_its_pvs(client, world, factory, house2_pv):
    h = world.headers["consumer"]
    assert [o["id"] for o in listed(client, h, "houses")] == [world.house1]
    devices = listed(client, h, "devices")
    assert sorted(d["device_id"] for d in devices) == ["H1-EV", "H1-MAIN", "H1-PV"]
    assert {d["house_id"] for d in devices} == {world.house1}
    pvs = listed(client, h, "pvs")
    assert [p["house_id"] for p in pvs] == [world.house1]
    assert listed(client, h, "pv-parks") == []


def test_consumer_gets_404_not_403_for_the_other_house_and_its_things(client, world, factory, house2_pv):
    h = world.headers["consumer"]
    ids = ids_of(factory, "H2-MAIN", "PARK-INV", "H1-MAIN")
    for url in (
        f"/api/v1/houses/{world.house2}",
        f"/api/v1/devices/{ids['H2-MAIN']}",
        f"/api/v1/devices/{ids['PARK-INV']}",
        f"/api/v1/pvs/{house2_pv}",
        f"/api/v1/pv-parks/{world.park}",
    ):
        r = client.get(url, headers=h)
        assert r.status_code == 404 and r.json["error"] == "Not found", url
    assert client.get(f"/api/v1/houses/{world.house1}", headers=h).status_code == 200
    assert client.get(f"/api/v1/devices/{ids['H1-MAIN']}", headers=h).status_code == 200
    # and the other consumer the mirror image
    h2 = world.headers["consumer2"]
    assert client.get(f"/api/v1/houses/{world.house1}", headers=h2).status_code == 404
    assert [o["id"] for o in listed(client, h2, "houses")] == [world.house2]


def test_consumer_cannot_write_metadata(client, world):
    h = world.headers["consumer"]
    r = client.patch(f"/api/v1/houses/{world.house1}", json={"name": "Mine"}, headers=h)
    assert r.status_code == 403
    assert client.post("/api/v1/houses", json={"name": "New"}, headers=h).status_code == 403
    assert client.delete(f"/api/v1/houses/{world.house1}", headers=h).status_code == 403


def test_analyst_lists_everything(client, world, factory, house2_pv):
    h = world.headers["analyst"]
    assert [o["id"] for o in listed(client, h, "houses")] == [world.house1, world.house2]
    assert sorted(d["device_id"] for d in listed(client, h, "devices")) == sorted(
        ["H1-MAIN", "H1-PV", "H1-EV", "H2-MAIN", "PARK-INV"]
    )
    assert sorted(p["house_id"] for p in listed(client, h, "pvs")) == sorted([world.house1, world.house2])
    assert [p["id"] for p in listed(client, h, "pv-parks")] == [world.park]
    assert listed(client, h, "communities") == [
        {"id": world.community, "name": "Solar Street", "house_count": 1, "house_ids": [world.house1]}
        | NO_PLACE
    ]
    assert client.get(f"/api/v1/houses/{world.house2}", headers=h).status_code == 200
    assert client.get("/api/v1/users", headers=h).status_code == 403


@pytest.mark.parametrize("caller", ["api_key", "partner"])
def test_third_party_is_refused_houses_and_devices_but_lists_communities(client, world, factory, caller):
    h = world.headers[caller]
    device = ids_of(factory, "H1-MAIN")["H1-MAIN"]
    for url in ("/api/v1/houses", f"/api/v1/houses/{world.house1}", "/api/v1/devices",
                f"/api/v1/devices/{device}", "/api/v1/pvs", "/api/v1/pv-parks"):  # fmt: skip
        r = client.get(url, headers=h)
        assert r.status_code == 403 and r.json["error"] == "Forbidden", url
    r = client.get("/api/v1/communities", headers=h)
    assert r.status_code == 200
    # the size and calendar of a community, never which houses are in it nor where
    assert r.json["communities"] == [
        {"id": world.community, "name": "Solar Street", "house_count": 1, "timezone": None, "country": None}
    ]
    r = client.get(f"/api/v1/communities/{world.community}", headers=h)
    assert r.status_code == 200 and "house_ids" not in r.json


# ---- deletion cascades --------------------------------------------------------------------------------

T0 = "2026-03-01T10:00:00+00:00"


def post_readings(client, world, serials):
    items = [{"device_id": s, "timestamp": T0, "power_w": 1000.0, "energy_wh": 250.0} for s in serials]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers[ADMIN])
    assert r.status_code == 200 and r.json["accepted"] == len(serials)


def rollups_of(factory, kind, ids):
    return count(factory, EnergyRollup, EnergyRollup.entity_kind == kind, EnergyRollup.entity_id.in_(ids))


def test_deleting_a_house_deletes_its_devices_readings_pvs_and_rollups(client, world, factory):
    post_readings(client, world, ["H1-MAIN", "H1-PV", "H1-EV", "H2-MAIN"])
    with factory() as s:
        h1_devices = s.scalars(select(Device.id).where(Device.house_id == world.house1)).all()
    assert len(h1_devices) == 3
    assert rollups_of(factory, "house", [world.house1]) > 0
    assert rollups_of(factory, "device", h1_devices) > 0  # the appliance's own series
    h2_rollups = rollups_of(factory, "house", [world.house2])
    assert h2_rollups > 0

    r = client.delete(f"/api/v1/houses/{world.house1}", headers=world.headers[ADMIN])
    assert r.status_code == 204

    assert count(factory, Device, Device.house_id == world.house1) == 0
    assert count(factory, Device, Device.id.in_(h1_devices)) == 0
    assert count(factory, Measurement, Measurement.device_id.in_(h1_devices)) == 0
    assert count(factory, PV, PV.house_id == world.house1) == 0
    assert rollups_of(factory, "house", [world.house1]) == 0
    assert rollups_of(factory, "device", h1_devices) == 0
    # the other house is untouched
    assert rollups_of(factory, "house", [world.house2]) == h2_rollups
    assert count(factory, Device, Device.house_id == world.house2) == 1
    r = client.get(
        "/api/v1/energy",
        query_string={"resolution": "hour", "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"},
        headers=world.headers["analyst"],
    )
    assert [row["consumption_kwh"] for row in r.json["series"]] == [0.25]  # house B only


def test_deleting_a_pv_park_deletes_its_inverters_and_rollups(client, world, factory):
    post_readings(client, world, ["PARK-INV", "H1-MAIN"])
    inverter = ids_of(factory, "PARK-INV")["PARK-INV"]
    assert rollups_of(factory, "pv_park", [world.park]) > 0
    assert client.delete(f"/api/v1/pv-parks/{world.park}", headers=world.headers[ADMIN]).status_code == 204
    assert count(factory, Device, Device.id == inverter) == 0
    assert rollups_of(factory, "pv_park", [world.park]) == 0
    assert rollups_of(factory, "house", [world.house1]) > 0


def test_deleting_a_community_keeps_its_houses_and_unlinks_its_park(client, world, factory):
    h = world.headers[ADMIN]
    assert client.delete(f"/api/v1/communities/{world.community}", headers=h).status_code == 204
    assert client.get(f"/api/v1/houses/{world.house1}", headers=h).json["community_ids"] == []
    assert client.get(f"/api/v1/pv-parks/{world.park}", headers=h).json["community_id"] is None


def test_deleting_a_user_keeps_their_house(client, world, factory):
    h = world.headers[ADMIN]
    assert client.delete(f"/api/v1/users/{world.users['consumer2']}", headers=h).status_code == 204
    assert count(factory, House, House.id == world.house2) == 1
    assert client.get("/api/v1/houses", headers=world.headers["consumer2"]).status_code == 401
    assert count(factory, User, User.username == "consumer2") == 0
