"""The Admin page's callbacks through Dash's real endpoint, on PostgreSQL: users (list, create through
create_user's validation, deactivate), houses and devices, API keys (created once, revoked), model
versions (activate = rollback within a slot) and jobs; and forged requests from every other role, which
get a refusal, no data and no change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callbacks.admin import JOB_LIMIT, KEY_REVOKE, MODEL_ACTIVATE, NOT_ALLOWED, USER_TOGGLE
from dashboard.clock import utcnow
from dashboard.schema import ApiKey, ModelRun, ModelVersion, User
from pages.admin import pager, tab_store
from tests.factories import PASSWORD
from tests.ui.helpers import cookie_login, router_payload

USER_ACTION = [
    ("admin-users-message", "children"),
    ("admin-users-message", "color"),
    ("admin-users-message", "is_open"),
    ("admin-users-changed", "data"),
    ("admin-user-username", "value"),
    ("admin-user-password", "value"),
]
KEY_ACTION = [
    ("admin-keys-message", "children"),
    ("admin-keys-message", "color"),
    ("admin-keys-message", "is_open"),
    ("admin-keys-changed", "data"),
    ("admin-key-name", "value"),
]
MODEL_ACTION = [
    ("admin-models-message", "children"),
    ("admin-models-message", "color"),
    ("admin-models-message", "is_open"),
    ("admin-models-changed", "data"),
]
DEVICES_PAGE = ("admin-devices-page", "active_page", 1)
READING_AT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


# ---- payloads ------------------------------------------------------------------------------------------


def _outputs(outputs):
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".."
        if len(outputs) > 1
        else f"{outputs[0][0]}.{outputs[0][1]}",
        "outputs": [{"id": i, "property": p} for i, p in outputs]
        if len(outputs) > 1
        else {"id": outputs[0][0], "property": outputs[0][1]},
    }


def _prop(component_id, prop, value):
    return {"id": component_id, "property": prop, "value": value}


def _stringify(component_id) -> str:
    if isinstance(component_id, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k)}:{json.dumps(component_id[k])}" for k in sorted(component_id))
            + "}"
        )
    return component_id


def user_action(create=None, toggle=None, username=None, password=None, role="consumer", houses=None):
    """The Create button (create=n_clicks) or one row's toggle (toggle=(user id, "deactivate"|...))."""
    toggles = (
        [_prop({"type": USER_TOGGLE, "index": toggle[0], "to": toggle[1]}, "n_clicks", 1)] if toggle else []
    )
    changed = toggles[0]["id"] if toggle else "admin-user-create"
    return _outputs(USER_ACTION) | {
        "inputs": [_prop("admin-user-create", "n_clicks", create), toggles],
        "changedPropIds": [f"{_stringify(changed)}.n_clicks"],
        "state": [
            _prop("admin-user-username", "value", username),
            _prop("admin-user-password", "value", password),
            _prop("admin-user-role", "value", role),
            _prop("admin-user-houses", "value", houses),
            _prop("admin-users-changed", "data", 0),
        ],
    }


def key_action(create=None, revoke=None, name=None, role="third_party", houses=None):
    revokes = [_prop({"type": KEY_REVOKE, "index": revoke}, "n_clicks", 1)] if revoke is not None else []
    changed = revokes[0]["id"] if revokes else "admin-key-create"
    return _outputs(KEY_ACTION) | {
        "inputs": [_prop("admin-key-create", "n_clicks", create), revokes],
        "changedPropIds": [f"{_stringify(changed)}.n_clicks"],
        "state": [
            _prop("admin-key-name", "value", name),
            _prop("admin-key-role", "value", role),
            _prop("admin-key-houses", "value", houses),
            _prop("admin-keys-changed", "data", 0),
        ],
    }


def model_action(version_id):
    button = _prop({"type": MODEL_ACTIVATE, "index": version_id}, "n_clicks", 1)
    return _outputs(MODEL_ACTION) | {
        "inputs": [[button]],
        "changedPropIds": [f"{_stringify(button['id'])}.n_clicks"],
        "state": [_prop("admin-models-changed", "data", 0)],
    }


PAGED = {"houses": ["max_value", "class_name"], "devices": ["max_value", "class_name", "active_page"]}


def table_payload(name: str, tab: str, extra=()):
    """A table callback: its tab's store (pages/admin.py tab_store) holding `tab`, plus its other inputs
    (id, prop, value); a paged table's pager (callbacks/admin_houses.py) among its outputs."""
    store = tab_store("houses" if name == "devices" else name)
    inputs = [_prop(store, "data", tab)] + [_prop(*e) for e in extra]
    outputs = [(f"admin-{name}-table", "children")] + [(pager(name), p) for p in PAGED.get(name, [])]
    return _outputs(outputs) | {
        "inputs": inputs,
        "changedPropIds": [f"{store}.data"],
        "state": [],
    }


TABLES = {
    "users": table_payload("users", "users", [("admin-users-changed", "data", 0)]),
    "houses": table_payload("houses", "houses", [("admin-houses-page", "active_page", 1)]),
    "devices": table_payload("devices", "houses", [("admin-devices-house", "value", "all"), DEVICES_PAGE]),
    "keys": table_payload("keys", "keys", [("admin-keys-changed", "data", 0)]),
    "models": table_payload(
        "models", "models", [("admin-models-changed", "data", 0), ("admin-models-refresh", "n_clicks", None)]
    ),
    "jobs": table_payload("jobs", "jobs", [("admin-jobs-refresh", "n_clicks", None)]),
}


# ---- reading the response --------------------------------------------------------------------------------


def texts(node) -> str:
    """All text inside a serialised component tree."""
    if node is None or isinstance(node, bool):
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list):
        return " ".join(texts(n) for n in node)
    if isinstance(node, dict):
        return texts(node.get("props", {}).get("children"))
    return ""


def find(node, predicate):
    if isinstance(node, list):
        for n in node:
            hit = find(n, predicate)
            if hit is not None:
                return hit
    elif isinstance(node, dict):
        if predicate(node):
            return node
        return find(node.get("props", {}).get("children"), predicate)
    return None


def by_id(node, component_id):
    return find(node, lambda n: n.get("props", {}).get("id") == component_id)


def table_rows(node, table_id: str) -> list[list[str]]:
    """The body rows of a dbc.Table as lists of cell texts (the action cell: its button's id too)."""
    table = by_id(node, table_id)
    assert table is not None, f"no {table_id} in {texts(node)[:300]}"
    body = find(table, lambda n: n.get("type") == "Tbody")
    rows = []
    for tr in body["props"]["children"]:
        rows.append([texts(td).strip() for td in tr["props"]["children"]])
    return rows


def buttons(node, button_type: str) -> list[dict]:
    found = []

    def walk(n):
        if isinstance(n, list):
            for x in n:
                walk(x)
        elif isinstance(n, dict):
            component_id = n.get("props", {}).get("id")
            if isinstance(component_id, dict) and component_id.get("type") == button_type:
                found.append(component_id)
            walk(n.get("props", {}).get("children"))

    walk(node)
    return found


def post(client, payload, headers=None):
    return client.post("/_dash-update-component", json=payload, headers=headers or {})


def response_of(r, component_id, prop="children"):
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return r.json["response"][component_id][prop]


# ---- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def admin_ui(client, world):
    """A reading for each house's main meter (so devices have a last reading) and Dash warmed up."""
    items = [
        {"device_id": serial, "timestamp": READING_AT.isoformat(), "power_w": 4000.0, "energy_wh": 1000.0}
        for serial in ("H1-MAIN", "H2-MAIN")
    ]
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get("/").status_code == 200
    return client


def add_versions(factory, admin_id) -> dict[str, int]:
    """Two versions in one slot (the newer active) and one active version in another slot."""
    base = dict(target="consumption", product="next-24-hours", horizon=96, scope_kind="all", scope_id=None,
                strategy="direct", object_key="models/test/none.bin", trained_by=admin_id)  # fmt: skip
    ids = {}
    with factory() as s:
        for name, model, hours_ago, active, mae in [
            ("old", "xgboost", 48, False, 0.21),
            ("new", "xgboost", 2, True, 0.34),
            ("other", "sarima", 5, True, 0.4),
        ]:
            row = ModelVersion(version=f"v-{name}", model=model, trained_at=utcnow() - timedelta(hours=hours_ago),
                               is_active=active, metrics_json=json.dumps({"mae": mae, "mape": 0.12}), **base)  # fmt: skip
            s.add(row)
            s.flush()
            ids[name] = row.id
        s.commit()
    return ids


def active_flags(factory) -> dict[str, bool]:
    with factory() as s:
        return dict(s.execute(select(ModelVersion.version, ModelVersion.is_active)).all())


def db_state(factory) -> dict:
    """Everything an admin callback could change, to compare before and after a forged request."""
    with factory() as s:
        return {
            "users": sorted(s.execute(select(User.username, User.is_active, User.password_hash)).all()),
            "keys": sorted(s.execute(select(ApiKey.id, ApiKey.revoked_at)).all()),
            "models": sorted(s.execute(select(ModelVersion.id, ModelVersion.is_active)).all()),
        }


# ---- the page ------------------------------------------------------------------------------------------


def test_admin_gets_the_tabs_other_roles_a_refusal(admin_ui, world):
    csrf = cookie_login(admin_ui, "admin")
    page = post(admin_ui, router_payload("/admin"), csrf).get_data(as_text=True)
    for tab in ("Users", "Houses and devices", "API keys", "Models", "Jobs"):
        assert f'"label":"{tab}"' in page.replace(": ", ":")
    assert "admin-user-create" in page and "House B (#" in page  # house options built on the server
    for username in ("analyst", "consumer"):
        csrf = cookie_login(admin_ui, username)
        page = post(admin_ui, router_payload("/admin"), csrf).get_data(as_text=True)
        assert "Not allowed" in page and "forbidden" in page
        assert "admin-tabs" not in page and "House B" not in page


# ---- users ---------------------------------------------------------------------------------------------


def test_admin_lists_users_with_roles_and_houses(admin_ui, world, factory):
    csrf = cookie_login(admin_ui, "admin")
    rows = table_rows(
        response_of(post(admin_ui, TABLES["users"], csrf), "admin-users-table"), "admin-users-rows"
    )
    with factory() as s:
        expected = sorted(s.scalars(select(User.username)).all())
    assert [r[0] for r in rows] == expected == ["admin", "analyst", "consumer", "consumer2", "partner"]
    by_name = {r[0]: r for r in rows}
    assert by_name["consumer"][1] == "consumer" and by_name["consumer"][3] == f"House A (#{world.house1})"
    assert by_name["consumer2"][3] == f"House B (#{world.house2})"
    assert by_name["partner"][1] == "third_party" and by_name["partner"][2] == "active"
    assert by_name["admin"][5] == "(you)" and by_name["analyst"][5] == "Deactivate"


def test_admin_creates_a_user_who_can_then_log_in(admin_ui, world, factory, app):
    csrf = cookie_login(admin_ui, "admin")
    payload = user_action(create=1, username="  newbie ", password=PASSWORD, houses=[str(world.house2)])
    body = post(admin_ui, payload, csrf).json["response"]
    assert body["admin-users-message"]["color"] == "success"
    assert body["admin-users-message"]["children"] == "User newbie (consumer) created."
    assert body["admin-users-changed"]["data"] == 1  # the table callback refreshes on it
    assert body["admin-user-password"]["value"] == ""  # the password does not stay in the form
    rows = table_rows(
        response_of(post(admin_ui, TABLES["users"], csrf), "admin-users-table"), "admin-users-rows"
    )
    assert ["newbie", "consumer", "active", f"House B (#{world.house2})"] == rows[[r[0] for r in rows].index(
        "newbie")][:4]  # fmt: skip

    other = app.server.test_client()
    r = other.post("/api/v1/auth/login", json={"username": "newbie", "password": PASSWORD})
    assert r.status_code == 200, r.get_data(as_text=True)
    me = other.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json['access_token']}"})
    assert me.json == {"username": "newbie", "role": "consumer", "house_ids": [world.house2]}


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"username": "consumer2", "password": PASSWORD}, "username: already taken"),
        ({"username": "shorty", "password": "short"}, "password: at least 8 characters"),
        (
            {"username": "boss", "password": "eleven-char", "role": "admin"},
            "password: at least 12 characters for an admin",
        ),
        ({"username": "rooty", "password": PASSWORD, "role": "root"}, "role: one of admin, analyst"),
        ({"username": "", "password": PASSWORD}, "username: 1 to 80 characters"),
        ({"username": "ghost", "password": PASSWORD, "houses": ["999999"]}, "house_ids: no house 999999"),
        ({"username": "ghost", "password": PASSWORD, "houses": ["x"]}, "house_ids: a list of house ids"),
    ],
)
def test_invalid_user_is_a_clear_error_and_nothing_is_written(admin_ui, world, factory, form, problem):
    csrf = cookie_login(admin_ui, "admin")
    before = db_state(factory)
    body = post(admin_ui, user_action(create=1, **form), csrf).json["response"]
    assert body["admin-users-message"]["color"] == "danger"
    assert problem in body["admin-users-message"]["children"]
    assert "admin-users-changed" not in body  # the table is not refreshed: nothing changed
    assert db_state(factory) == before


def test_deactivate_and_reactivate_a_user(admin_ui, world, factory, app):
    csrf = cookie_login(admin_ui, "admin")
    user_id = world.users["consumer2"]
    body = post(admin_ui, user_action(toggle=(user_id, "deactivate")), csrf).json["response"]
    assert body["admin-users-message"]["children"] == "User consumer2 deactivated."
    with factory() as s:
        assert s.get(User, user_id).is_active is False
    other = app.server.test_client()
    assert (
        other.post("/api/v1/auth/login", json={"username": "consumer2", "password": PASSWORD}).status_code
        == 401
    )
    assert (
        other.get("/api/v1/auth/me", headers=world.headers["consumer2"]).status_code == 401
    )  # token dead too
    rows = table_rows(
        response_of(post(admin_ui, TABLES["users"], csrf), "admin-users-table"), "admin-users-rows"
    )
    consumer2 = next(r for r in rows if r[0] == "consumer2")
    assert consumer2[2:4] == ["inactive", f"House B (#{world.house2})"] and consumer2[5] == "Reactivate"

    body = post(admin_ui, user_action(toggle=(user_id, "reactivate")), csrf).json["response"]
    assert body["admin-users-message"]["children"] == "User consumer2 reactivated."
    assert (
        other.post("/api/v1/auth/login", json={"username": "consumer2", "password": PASSWORD}).status_code
        == 200
    )


def test_admin_cannot_deactivate_themselves_nor_an_unknown_user(admin_ui, world, factory):
    csrf = cookie_login(admin_ui, "admin")
    before = db_state(factory)
    body = post(admin_ui, user_action(toggle=(world.users["admin"], "deactivate")), csrf).json["response"]
    assert body["admin-users-message"]["color"] == "danger"
    assert "cannot deactivate your own account" in body["admin-users-message"]["children"]
    for forged in [(999999, "deactivate"), ("x", "deactivate"), (world.users["analyst"], "delete")]:
        body = post(admin_ui, user_action(toggle=forged), csrf).json["response"]
        assert body["admin-users-message"]["color"] == "danger"
    assert db_state(factory) == before


def test_a_freshly_rendered_row_button_does_not_act(admin_ui, world, factory):
    """Dash reports newly rendered row buttons with n_clicks None: that must not toggle anything."""
    csrf = cookie_login(admin_ui, "admin")
    payload = user_action(toggle=(world.users["analyst"], "deactivate"))
    payload["inputs"][1][0]["value"] = None
    before = db_state(factory)
    assert post(admin_ui, payload, csrf).status_code == 204  # PreventUpdate: no change, no output
    assert db_state(factory) == before


# ---- houses and devices ----------------------------------------------------------------------------------


def test_houses_with_device_counts_and_communities(admin_ui, world):
    csrf = cookie_login(admin_ui, "admin")
    rows = table_rows(
        response_of(post(admin_ui, TABLES["houses"], csrf), "admin-houses-table"), "admin-houses-rows"
    )
    assert rows == [
        [str(world.house1), "House A", "3", "Solar Street"],
        [str(world.house2), "House B", "1", "-"],
    ]


def test_devices_with_their_last_reading_in_local_time(admin_ui, world, app):
    csrf = cookie_login(admin_ui, "admin")
    timezone = app.server.extensions["aggregator"].settings.timezone
    local = READING_AT.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    rows = table_rows(
        response_of(post(admin_ui, TABLES["devices"], csrf), "admin-devices-table"), "admin-devices-rows"
    )
    by_serial = {r[0]: r for r in rows}
    assert sorted(by_serial) == ["H1-EV", "H1-MAIN", "H1-PV", "H2-MAIN", "PARK-INV"]
    assert by_serial["H1-MAIN"] == ["H1-MAIN", "Main meter", "meter", "consumption", f"House A (#{world.house1})",
                                    local]  # fmt: skip
    assert by_serial["H2-MAIN"][5] == local and by_serial["H1-PV"][5] == "-"  # no reading yet
    assert by_serial["PARK-INV"][4] == "PV park: Park 1"

    one = table_payload(
        "devices", "houses", [("admin-devices-house", "value", str(world.house2)), DEVICES_PAGE]
    )
    rows = table_rows(response_of(post(admin_ui, one, csrf), "admin-devices-table"), "admin-devices-rows")
    assert [r[0] for r in rows] == ["H2-MAIN"]
    community = table_payload(
        "devices", "houses", [("admin-devices-house", "value", f"c{world.community}"), DEVICES_PAGE]
    )
    rows = table_rows(
        response_of(post(admin_ui, community, csrf), "admin-devices-table"), "admin-devices-rows"
    )
    assert [r[0] for r in rows] == ["H1-EV", "H1-MAIN", "H1-PV"]

    forged = table_payload("devices", "houses", [("admin-devices-house", "value", "999999"), DEVICES_PAGE])
    body = response_of(post(admin_ui, forged, csrf), "admin-devices-table")
    assert "not in your scope" in texts(body) and "H1-MAIN" not in json.dumps(body)


# ---- API keys ------------------------------------------------------------------------------------------


def test_create_an_api_key_shown_once_then_revoke_it(admin_ui, world, factory, app):
    csrf = cookie_login(admin_ui, "admin")
    body = post(admin_ui, key_action(create=1, name="Grafana"), csrf).json["response"]
    assert body["admin-keys-message"]["color"] == "warning"
    key = texts(by_id(body["admin-keys-message"]["children"], "admin-key-secret"))
    assert key.startswith("agk_") and len(key) > 40
    with factory() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.name == "Grafana"))
        assert row.prefix == key[:12] and key not in (row.key_hash, row.prefix)  # only a hash is stored

    other = app.server.test_client()
    me = other.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json["role"] == "third_party"

    table = response_of(post(admin_ui, TABLES["keys"], csrf), "admin-keys-table")
    assert key not in json.dumps(table)  # the list never shows a key again
    rows = table_rows(table, "admin-keys-rows")
    grafana = next(r for r in rows if r[0] == "Grafana")
    assert grafana[1:3] == ["third_party", "-"]  # role, houses
    assert grafana[3] == f"{key[:12]}..." and grafana[6] == "no" and grafana[7] == "Revoke"
    assert grafana[5] != "never"  # the call to /auth/me above is recorded as the key's last use
    assert {b["index"] for b in buttons(table, KEY_REVOKE)} == {
        row.id,
        row.id - 1,
    }  # this and the world's key

    body = post(admin_ui, key_action(revoke=row.id), csrf).json["response"]
    assert body["admin-keys-message"]["children"] == f"API key 'Grafana' ({key[:12]}...) revoked."
    assert other.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401
    assert (
        other.get("/api/v1/auth/me", headers=world.headers["api_key"]).status_code == 200
    )  # others unharmed
    rows = table_rows(
        response_of(post(admin_ui, TABLES["keys"], csrf), "admin-keys-table"), "admin-keys-rows"
    )
    grafana = next(r for r in rows if r[0] == "Grafana")
    assert grafana[6] != "no" and grafana[7] == "-"


def test_api_key_errors_are_clear(admin_ui, world, factory):
    csrf = cookie_login(admin_ui, "admin")
    before = db_state(factory)
    body = post(admin_ui, key_action(create=1, name="   "), csrf).json["response"]
    assert body["admin-keys-message"]["children"].endswith("(name: 1 to 120 characters)")
    body = post(admin_ui, key_action(revoke=999999), csrf).json["response"]
    assert body["admin-keys-message"]["children"] == "API key 999999 not found"
    assert db_state(factory) == before


def test_create_a_gateway_key_for_chosen_houses(admin_ui, world, factory, app):
    """The form's role and houses go through create_api_key's checks; the key writes its houses only."""
    csrf = cookie_login(admin_ui, "admin")
    before = db_state(factory)
    house1 = str(world.house1)  # the multi-select's values are strings
    for payload, expected in [
        (key_action(create=1, name="gw", role="gateway"), "(house_ids: a gateway key needs at least one house id)"),
        (key_action(create=1, name="gw", houses=[house1]), "a third_party key reads aggregates and takes no houses"),
        (key_action(create=1, name="gw", role="gateway", houses=["999999"]), "no house 999999"),
        (key_action(create=1, name="gw", role="admin", houses=[house1]), "(role: one of third_party, gateway)"),
        (key_action(create=1, name="gw", role="gateway", houses=["x"]), "(house_ids: a list of house ids)"),
    ]:  # fmt: skip
        body = post(admin_ui, payload, csrf).json["response"]["admin-keys-message"]
        assert body["color"] == "danger" and expected in body["children"], body
    assert db_state(factory) == before

    payload = key_action(create=1, name="Meter gateway", role="gateway", houses=[house1])
    body = post(admin_ui, payload, csrf).json["response"]
    key = texts(by_id(body["admin-keys-message"]["children"], "admin-key-secret"))
    other = app.server.test_client()
    me = other.get("/api/v1/auth/me", headers={"X-API-Key": key}).json
    assert (me["role"], me["house_ids"]) == ("gateway", [world.house1])
    rows = table_rows(
        response_of(post(admin_ui, TABLES["keys"], csrf), "admin-keys-table"), "admin-keys-rows"
    )
    assert next(r for r in rows if r[0] == "Meter gateway")[1:3] == ["gateway", f"House A (#{world.house1})"]
    assert next(r for r in rows if r[0] == "test app")[1:3] == ["third_party", "-"]
    reading = {"timestamp": READING_AT.isoformat(), "power_w": 100.0, "energy_wh": 25.0}
    for serial, status in (("H1-EV", 200), ("H2-MAIN", 422)):
        r = other.post("/api/v1/measurements", json={"measurements": [reading | {"device_id": serial}]},
                       headers={"X-API-Key": key})  # fmt: skip
        assert r.status_code == status, r.json


# ---- models and jobs -----------------------------------------------------------------------------------


def test_models_table_and_activate_rolls_back_within_the_slot(admin_ui, world, factory, app):
    csrf = cookie_login(admin_ui, "admin")
    ids = add_versions(factory, world.users["admin"])
    table = response_of(post(admin_ui, TABLES["models"], csrf), "admin-models-table")
    rows = table_rows(table, "admin-models-rows")
    assert [r[6] for r in rows] == ["v-other", "v-new", "v-old"]  # by slot, newest first within one
    new = rows[1]
    assert new[:6] == ["consumption", "next-24-hours", "96", "All houses", "xgboost", "direct"]
    assert new[8] == "MAE 0.340 · MAPE 12.0%" and new[9] == "active"
    timezone = app.server.extensions["aggregator"].settings.timezone
    with factory() as s:
        trained = s.get(ModelVersion, ids["new"]).trained_at
    assert new[7] == trained.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    assert [b["index"] for b in buttons(table, MODEL_ACTIVATE)] == [ids["old"]]  # only non-active versions

    body = post(admin_ui, model_action(ids["old"]), csrf).json["response"]
    assert (
        body["admin-models-message"]["color"] == "success"
        and "v-old" in body["admin-models-message"]["children"]
    )
    assert active_flags(factory) == {
        "v-old": True,
        "v-new": False,
        "v-other": True,
    }  # the other slot untouched
    table = response_of(post(admin_ui, TABLES["models"], csrf), "admin-models-table")
    assert [b["index"] for b in buttons(table, MODEL_ACTIVATE)] == [ids["new"]]

    body = post(admin_ui, model_action(999999), csrf).json["response"]
    assert body["admin-models-message"]["children"] == "Model version 999999 not found"
    assert active_flags(factory) == {"v-old": True, "v-new": False, "v-other": True}


def test_jobs_newest_first_and_limited(admin_ui, world, factory, app):
    csrf = cookie_login(admin_ui, "admin")
    now = utcnow()
    with factory() as s:
        for minutes in range(JOB_LIMIT + 5):
            s.add(ModelRun(kind="forecast", at=now - timedelta(minutes=minutes + 10), user_id=world.users["analyst"],
                           parameters_json=json.dumps({"target": "production", "product": "short-term"}),
                           duration_ms=120.0, outcome="ok", model_version="v-x"))  # fmt: skip
        s.add(ModelRun(kind="train", at=now, user_id=world.users["admin"], duration_ms=2500.0, outcome="failed",
                       parameters_json=json.dumps({"target": "consumption", "product": "next-24-hours",
                                                   "model": "sarima"}),
                       error="ValidationFailed: not enough history"))  # fmt: skip
        s.commit()
    table = response_of(post(admin_ui, TABLES["jobs"], csrf), "admin-jobs-table")
    rows = table_rows(table, "admin-jobs-rows")
    assert len(rows) == JOB_LIMIT
    timezone = app.server.extensions["aggregator"].settings.timezone
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    assert rows[0] == ["train", local, "admin", "consumption next-24-hours · model=sarima", "2.50 s", "failed",
                       "ValidationFailed: not enough history", "-"]  # fmt: skip
    assert rows[1][:6] == ["forecast", rows[1][1], "analyst", "production short-term", "0.12 s", "ok"]
    assert rows[1][7] == "v-x"
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)


def test_empty_tables_say_so(admin_ui, world):
    csrf = cookie_login(admin_ui, "admin")
    assert "No trained models yet" in texts(
        response_of(post(admin_ui, TABLES["models"], csrf), "admin-models-table")
    )
    assert "No training or forecast runs yet" in texts(
        response_of(post(admin_ui, TABLES["jobs"], csrf), "admin-jobs-table")
    )


def test_an_inactive_tab_is_not_computed(admin_ui, world):
    csrf = cookie_login(admin_ui, "admin")
    other_tab = table_payload("devices", "users", [("admin-devices-house", "value", "all"), DEVICES_PAGE])
    assert post(admin_ui, other_tab, csrf).status_code == 204


# ---- forged requests -------------------------------------------------------------------------------------


def every_callback(world, ids) -> dict[str, dict]:
    return {
        "create user": user_action(create=1, username="intruder", password=PASSWORD, role="admin"),
        "deactivate user": user_action(toggle=(world.users["admin"], "deactivate")),
        "create key": key_action(create=1, name="intruder"),
        "create gateway key": key_action(
            create=1, name="intruder", role="gateway", houses=[str(world.house2)]
        ),
        "revoke key": key_action(revoke=1),
        "activate model": model_action(ids["old"]),
    } | {f"{name} table": payload for name, payload in TABLES.items()}


SECRETS = ("consumer2", "partner", "House B", "Solar Street", "H2-MAIN", "agk_", "test app", "v-old", "v-new",
           "intruder")  # fmt: skip


def test_the_secrets_are_what_an_admin_sees(admin_ui, world, factory):
    """The control for the leak checks below: the same table callbacks show an admin every secret."""
    add_versions(factory, world.users["admin"])
    csrf = cookie_login(admin_ui, "admin")
    seen = " ".join(post(admin_ui, payload, csrf).get_data(as_text=True) for payload in TABLES.values())
    assert [s for s in SECRETS if s not in seen] == ["intruder"]  # "agk_": the key prefixes


@pytest.mark.parametrize("username", ["analyst", "consumer"])
def test_other_roles_are_refused_every_admin_callback(admin_ui, world, factory, username):
    ids = add_versions(factory, world.users["admin"])
    with factory() as s:
        s.add(
            ModelRun(
                kind="train", at=utcnow(), user_id=world.users["partner"], outcome="ok", parameters_json="{}"
            )
        )
        s.commit()
    csrf = cookie_login(admin_ui, username)
    before = db_state(factory)
    problems = {}
    for name, payload in every_callback(world, ids).items():
        r = post(admin_ui, payload, csrf)
        text = r.get_data(as_text=True)
        leaked = [s for s in SECRETS if s in text]
        if r.status_code != 200 or NOT_ALLOWED not in text or leaked:
            problems[name] = (r.status_code, leaked, text[:200])
    assert problems == {}
    assert db_state(factory) == before
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.username == "intruder")) == 0
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1


@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_no_cookie_and_third_party_get_401(admin_ui, world, factory, who):
    ids = add_versions(factory, world.users["admin"])
    csrf = cookie_login(admin_ui, "partner") if who == "partner" else {}
    before = db_state(factory)
    for name, payload in every_callback(world, ids).items():
        r = post(admin_ui, payload, csrf)
        assert r.status_code == 401, (name, r.status_code)
        assert not any(s in r.get_data(as_text=True) for s in SECRETS), name
    assert db_state(factory) == before


def test_a_bearer_token_of_another_role_is_refused_too(admin_ui, world, factory):
    """Callbacks also accept an Authorization header (API clients): the role check is the same."""
    before = db_state(factory)
    r = post(
        admin_ui, user_action(create=1, username="intruder", password=PASSWORD), world.headers["analyst"]
    )
    assert r.status_code == 200 and NOT_ALLOWED in r.get_data(as_text=True)
    assert db_state(factory) == before
