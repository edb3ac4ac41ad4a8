"""The Admin page's "Create and edit" and "Links, resets and sessions" tabs through Dash's real endpoint,
on PostgreSQL: each resource created and edited with the API's own rules (a refused save names every
problem and writes nothing), users linked to houses and communities, reset links issued once (and
e-mailed to a local SMTP sink); every other role refused by every callback, with nothing written."""

from __future__ import annotations

import socket
from dataclasses import replace
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

from dashboard.schema import PV, Community, Device, House, PVPark, User
from dashboard.schema_features import PasswordReset
from tests.factories import login_form_fields
from tests.ui.helpers import cookie_login

TABLES = (House, Device, PV, PVPark, Community)


def _outputs(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
    }


def _prop(component_id, prop, value):
    return {"id": component_id, "property": prop, "value": value}


def save(resource, record, fields: dict):
    """The Save button with the form's fields (pattern-matching inputs, in the form's order)."""
    outputs = [("admin-res-message", p) for p in ("children", "color", "is_open")] + [
        ("admin-res-changed", "data")
    ]
    inputs = [_prop({"type": "admin-res-field", "name": n}, "value", v) for n, v in fields.items()]
    return _outputs(outputs) | {
        "inputs": [_prop("admin-res-save", "n_clicks", 1)],
        "changedPropIds": ["admin-res-save.n_clicks"],
        "state": [
            _prop("admin-res-resource", "value", resource),
            _prop("admin-res-record", "value", record),
            inputs,
            _prop("admin-res-changed", "data", {"count": 0}),
        ],
    }


def form(resource, record):
    return {
        "output": "admin-res-form.children",
        "outputs": {"id": "admin-res-form", "property": "children"},
        "inputs": [
            _prop("admin-tab-records", "data", "records"),
            _prop("admin-res-resource", "value", resource),
            _prop("admin-res-record", "value", record),
        ],
        "changedPropIds": ["admin-res-record.value"],
        "state": [],
    }


def choices(resource):
    return _outputs([("admin-res-record", "options"), ("admin-res-record", "value")]) | {
        "inputs": [
            _prop("admin-tab-records", "data", "records"),
            _prop("admin-res-resource", "value", resource),
            _prop("admin-res-changed", "data", {"count": 0}),
        ],
        "changedPropIds": ["admin-res-resource.value"],
        "state": [_prop("admin-res-record", "value", "new")],
    }


def account(button, user, houses=None, communities=None):
    outputs = [("admin-acc-message", p) for p in ("children", "color", "is_open")] + [
        ("admin-acc-changed", "data")
    ]
    return _outputs(outputs) | {
        "inputs": [
            _prop("admin-acc-link", "n_clicks", 1 if button == "link" else None),
            _prop("admin-acc-reset", "n_clicks", 1 if button == "reset" else None),
        ],
        "changedPropIds": [f"admin-acc-{button}.n_clicks"],
        "state": [
            _prop("admin-acc-user", "value", user),
            _prop("admin-acc-houses", "value", houses),
            _prop("admin-acc-communities", "value", communities),
            _prop("admin-acc-changed", "data", 0),
        ],
    }


def links(user):
    outputs = [("admin-acc-houses", "options"), ("admin-acc-houses", "value"),
               ("admin-acc-communities", "options"), ("admin-acc-communities", "value")]  # fmt: skip
    return _outputs(outputs) | {
        "inputs": [
            _prop("admin-tab-accounts", "data", "accounts"),
            _prop("admin-acc-user", "value", user),
            _prop("admin-acc-changed", "data", 0),
        ],
        "changedPropIds": ["admin-acc-user.value"],
        "state": [],
    }


def users_list():
    return {
        "output": "admin-acc-user.options",
        "outputs": {"id": "admin-acc-user", "property": "options"},
        "inputs": [_prop("admin-tab-accounts", "data", "accounts"), _prop("admin-acc-changed", "data", 0)],
        "changedPropIds": ["admin-tab-accounts.data"],
        "state": [],
    }


def call(client, payload, headers):
    r = client.post("/_dash-update-component", json=payload, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.json["response"]


def texts(node) -> str:
    if isinstance(node, list):
        return " ".join(texts(n) for n in node)
    if isinstance(node, dict):
        return texts(node.get("props", {}).get("children"))
    return "" if node is None or isinstance(node, bool) else str(node)


def counts(factory) -> dict:
    with factory() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.fixture
def admin(client, world):
    return cookie_login(client, "admin")


# ---- create and edit -------------------------------------------------------------------------------------


def test_a_house_is_created_encrypted_and_edited_through_the_forms(client, world, admin, factory):
    out = call(client, save("houses", "new", {"name": "House C", "address": "1 Sun Road", "timezone": "",
                                              "country": None, "latitude": None, "longitude": None,
                                              "share_with_third_parties": False,
                                              "community_ids": [world.community]}), admin)  # fmt: skip
    message = out["admin-res-message"]
    assert message["color"] == "success", message["children"]
    new_id = out["admin-res-changed"]["data"]["select"]
    with factory() as s:
        house = s.get(House, new_id)
        assert (house.name, house.address) == ("House C", "1 Sun Road")
        assert [c.id for c in house.communities] == [world.community]
        raw = s.execute(text("SELECT name FROM houses WHERE id = :id"), {"id": new_id}).scalar()
        assert "House C" not in str(raw)  # encrypted at rest, as through the API
    # the record list offers it and the form shows its values
    options, _value = call(client, choices("houses"), admin)["admin-res-record"].values()
    assert any(o["value"] == new_id and "House C" in o["label"] for o in options)
    shown = call(client, form("houses", new_id), admin)["admin-res-form"]["children"]
    assert "1 Sun Road" in str(shown)
    # edit: a new name, the address cleared
    out = call(client, save("houses", new_id, {"name": "House C2", "address": "", "latitude": 38.0,
                                               "longitude": 23.7}), admin)  # fmt: skip
    assert out["admin-res-message"]["color"] == "success", out["admin-res-message"]["children"]
    with factory() as s:
        house = s.get(House, new_id)
        assert (house.name, house.address, house.latitude) == ("House C2", None, 38.0)


def test_devices_pvs_parks_and_communities_are_created_and_edited(client, world, admin, factory):
    created = {}
    bodies = {
        "communities": {"name": "Wind Lane", "house_ids": [world.house2]},
        "pv-parks": {"name": "Park 2", "capacity_kw": 120, "community_id": world.community},
        "pvs": {"house_id": world.house2, "name": "Garage roof", "capacity_kwp": 3.5},
        "devices": {"serial": "H2-EV", "name": "Heat pump", "kind": "appliance", "house_id": world.house2,
                    "max_power_w": 9000},
    }  # fmt: skip
    for resource, body in bodies.items():
        out = call(client, save(resource, "new", body), admin)
        assert out["admin-res-message"]["color"] == "success", (
            resource,
            out["admin-res-message"]["children"],
        )
        created[resource] = out["admin-res-changed"]["data"]["select"]
    with factory() as s:
        assert [h.id for h in s.get(Community, created["communities"]).houses] == [world.house2]
        assert s.get(PVPark, created["pv-parks"]).capacity_kw == 120
        assert s.get(PV, created["pvs"]).capacity_kwp == 3.5
        device = s.get(Device, created["devices"])
        assert (device.serial, device.direction, device.max_power_w) == ("H2-EV", "consumption", 9000)
    edits = {
        "communities": ({"name": "Wind Lane East"}, Community, "name", "Wind Lane East"),
        "pv-parks": ({"capacity_kw": 150}, PVPark, "capacity_kw", 150),
        "pvs": ({"capacity_kwp": 4.0}, PV, "capacity_kwp", 4.0),
        "devices": ({"name": "Heat pump 2"}, Device, "name", "Heat pump 2"),
    }
    for resource, (body, model, attribute, expected) in edits.items():
        out = call(client, save(resource, created[resource], body), admin)
        assert out["admin-res-message"]["color"] == "success", (
            resource,
            out["admin-res-message"]["children"],
        )
        with factory() as s:
            assert getattr(s.get(model, created[resource]), attribute) == expected


@pytest.mark.parametrize(
    ("resource", "body", "expected"),
    [
        ("houses", {"name": None, "latitude": 91}, ["name: is required", "latitude"]),
        ("houses", {"name": "X", "latitude": 38.0}, ["give latitude and longitude together"]),
        ("houses", {"name": "X", "timezone": "Mars/Olympus"}, ["timezone"]),
        ("devices", {"name": "D", "kind": "appliance", "direction": "production", "house_id": 1},
         ["appliances consume"]),
        ("devices", {"name": "D", "kind": "meter"}, ["give exactly one of house_id or pv_park_id"]),
        ("devices", {"name": "D", "kind": "toaster", "house_id": 1}, ["kind: one of"]),
        ("devices", {"serial": "H1-MAIN", "name": "dup", "kind": "meter", "house_id": 1}, ["conflicts"]),
        ("pvs", {"name": "P", "capacity_kwp": -1, "house_id": 1}, ["capacity_kwp: must be > 0"]),
        ("pv-parks", {"name": "P", "capacity_kw": "lots"}, ["capacity_kw: must be a number"]),
        ("communities", {"name": "C", "house_ids": [999999]}, ["unknown ids [999999]"]),
    ],
)  # fmt: skip
def test_refused_saves_show_every_problem_and_write_nothing(
    client, world, admin, factory, resource, body, expected
):
    if "house_id" in body:
        body = body | {"house_id": world.house1}
    before = counts(factory)
    out = call(client, save(resource, "new", body), admin)
    message = out["admin-res-message"]
    assert message["color"] == "danger"
    for problem in expected:
        assert problem in message["children"], message["children"]
    assert "admin-res-changed" not in out
    assert counts(factory) == before


def test_a_refused_edit_changes_nothing(client, world, admin, factory):
    out = call(client, save("houses", world.house1, {"name": "", "latitude": 200}), admin)
    assert out["admin-res-message"]["color"] == "danger"
    assert "name: may not be null" in out["admin-res-message"]["children"]
    with factory() as s:
        house = s.get(House, world.house1)
        assert (house.name, house.latitude) == ("House A", None)
    out = call(client, save("houses", 999999, {"name": "Ghost"}), admin)
    assert "not found" in out["admin-res-message"]["children"]
    out = call(client, save("users", world.users["consumer"], {"role": "admin"}), admin)  # not this tab's
    assert out["admin-res-message"]["color"] == "danger"
    with factory() as s:
        assert s.get(User, world.users["consumer"]).role == "consumer"


# ---- links and reset links ---------------------------------------------------------------------------------


def test_a_user_is_linked_to_houses_and_communities(client, world, admin, factory):
    consumer = world.users["consumer"]
    options = call(client, users_list(), admin)["admin-acc-user"]["options"]
    assert {"label": "consumer (consumer)", "value": consumer} in options
    shown = call(client, links(consumer), admin)
    assert shown["admin-acc-houses"]["value"] == [world.house1]
    out = call(client, account("link", consumer, [world.house1, world.house2], [world.community]), admin)
    assert out["admin-acc-message"]["color"] == "success", out["admin-acc-message"]["children"]
    with factory() as s:
        user = s.get(User, consumer)
        assert sorted(h.id for h in user.houses) == sorted([world.house1, world.house2])
        assert [c.id for c in user.communities] == [world.community]
    r = client.get("/api/v1/houses", headers=world.headers["consumer"])  # the consumer now sees both
    assert sorted(h["id"] for h in r.json["houses"]) == sorted([world.house1, world.house2])
    out = call(client, account("link", consumer, [world.house1, 999999], []), admin)
    assert (
        out["admin-acc-message"]["color"] == "danger"
        and "unknown ids" in out["admin-acc-message"]["children"]
    )
    with factory() as s:
        assert len(s.get(User, consumer).houses) == 2  # unchanged by the refused save


def test_a_reset_link_is_shown_once_and_works(app, client, world, admin, factory):
    out = call(client, account("reset", world.users["consumer"]), admin)
    message = out["admin-acc-message"]
    assert message["color"] == "warning"
    link = next(w for w in texts(message["children"]).split() if "/reset?token=" in w)
    token = link.split("token=", 1)[1]
    with factory() as s:
        row = s.scalar(select(PasswordReset))
        assert row.user_id == world.users["consumer"] and row.created_by == world.users["admin"]
        assert token not in row.token_hash  # only a hash is stored
    browser = app.server.test_client()
    data = {"token": token, "password": "from-the-admin-link", "repeat": "from-the-admin-link"}
    r = browser.post("/auth/reset", data=data | login_form_fields(browser))
    assert r.headers["Location"] == "/reset?done=1"


@pytest.fixture
def smtp_sink(app, monkeypatch):
    messages = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            messages.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    svc = app.server.extensions["aggregator"]
    monkeypatch.setattr(svc, "settings", replace(svc.settings, smtp_host="127.0.0.1", smtp_port=port,
                                                 smtp_starttls=False, smtp_from="ops@example.org"))  # fmt: skip
    yield messages
    controller.stop()


def test_a_reset_link_is_emailed_when_smtp_is_set(client, world, admin, factory, smtp_sink):
    with factory() as s:
        s.get(User, world.users["consumer"]).email = "consumer@example.org"
        s.commit()
    out = call(client, account("reset", world.users["consumer"]), admin)
    text = texts(out["admin-acc-message"]["children"])
    assert "E-mailed to consumer@example.org" in text
    link = next(w for w in text.split() if "/reset?token=" in w)
    assert len(smtp_sink) == 1 and smtp_sink[0].rcpt_tos == ["consumer@example.org"]
    assert link in message_from_bytes(smtp_sink[0].content, policy=default).get_content()
    # a user without an address: the admin is told, and still has the link
    text = texts(
        call(client, account("reset", world.users["analyst"]), admin)["admin-acc-message"]["children"]
    )
    assert "Not e-mailed: analyst has no e-mail address" in text and "/reset?token=" in text


# ---- every other role is refused by every callback ----------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "consumer", "partner"])
def test_every_new_admin_callback_refuses_other_roles(app, world, factory, role):
    client = app.server.test_client()
    headers = cookie_login(client, role)
    before = counts(factory)
    payloads = [
        save("houses", "new", {"name": "Sneaky"}),
        save("houses", world.house1, {"name": "Renamed"}),
        form("houses", world.house1),
        choices("houses"),
        account(
            "link", world.users[role] if role != "partner" else world.users["consumer"], [world.house2], []
        ),
        account("reset", world.users["admin"]),
        links(world.users["consumer"]),
        users_list(),
    ]
    for payload in payloads:
        r = client.post("/_dash-update-component", json=payload, headers=headers)
        if role == "partner":  # an API-only account has no UI session at all
            assert r.status_code == 401
            continue
        body = r.get_data(as_text=True)
        assert r.status_code == 200
        assert "House A" not in body and "Sneaky" not in body and "consumer (consumer)" not in body
        assert "token=" not in body
    assert counts(factory) == before
    with factory() as s:
        assert s.get(House, world.house1).name == "House A"
        assert s.scalar(select(func.count()).select_from(PasswordReset)) == 0
        assert sorted(h.id for h in s.get(User, world.users["consumer"]).houses) == [world.house1]
