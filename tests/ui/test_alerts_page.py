"""The Alerts page's callbacks and the navbar's bell through Dash's real endpoint, on PostgreSQL: the
scope comes from the cookie, a house id, a rule id or a webhook the browser sends is checked on the
server, and each user sees only their own notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dashboard.alerts import run_alerts
from dashboard.clock import utcnow
from dashboard.schema_features import AlertRule
from tests.ui.helpers import component, cookie_login, router_payload

FORM = ("alerts-name", "alerts-kind", "alerts-target", "alerts-minutes", "alerts-metric", "alerts-direction",
        "alerts-threshold", "alerts-nominal", "alerts-email", "alerts-webhook-url", "alerts-webhook-secret")  # fmt: skip
ACT_OUTPUTS = [("alerts-message", "children"), ("alerts-message", "color"), ("alerts-message", "is_open"),
               ("alerts-version", "data")]  # fmt: skip


def outputs(pairs):
    return {"output": ".." + "...".join(f"{i}.{p}" for i, p in pairs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in pairs]}  # fmt: skip


def act_payload(trigger: str | dict, values: dict, delete_ids=()):
    defaults = {"alerts-name": "offline", "alerts-kind": "silent_device", "alerts-minutes": 10,
                "alerts-metric": "consumption", "alerts-direction": "above", "alerts-threshold": 5,
                "alerts-nominal": 230, "alerts-email": False, "alerts-webhook-url": "", "alerts-webhook-secret": ""}  # fmt: skip
    values = defaults | values
    deletes = [{"id": {"index": i, "type": "alerts-delete"}, "property": "n_clicks", "value": 1 if trigger == i else None}
               for i in delete_ids]  # fmt: skip
    changed = (
        f'{{"index":{trigger},"type":"alerts-delete"}}.n_clicks'
        if isinstance(trigger, int)
        else f"{trigger}.n_clicks"
    )
    return outputs(ACT_OUTPUTS) | {
        "inputs": [
            {
                "id": "alerts-create",
                "property": "n_clicks",
                "value": 1 if trigger == "alerts-create" else None,
            },
            deletes,
            {
                "id": "alerts-read-all",
                "property": "n_clicks",
                "value": 1 if trigger == "alerts-read-all" else None,
            },
        ],
        "changedPropIds": [changed],
        "state": [{"id": "alerts-version", "property": "data", "value": 0}]
        + [{"id": i, "property": "value", "value": values.get(i)} for i in FORM],
    }


def bell_payload():
    return {"output": "nav-bell-count.children", "outputs": {"id": "nav-bell-count", "property": "children"}} | {
        "inputs": [{"id": "nav-bell-tick", "property": "n_intervals", "value": 1},
                   {"id": "_pages_location", "property": "pathname", "value": "/"}],
        "changedPropIds": ["nav-bell-tick.n_intervals"],
        "state": [],
    }  # fmt: skip


@pytest.fixture
def ui(client, app):
    assert client.get("/").status_code == 200
    return client


def post(client, payload, headers):
    r = client.post("/_dash-update-component", json=payload, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.json["response"]


def rules(factory) -> list[AlertRule]:
    with factory() as s:
        return list(s.scalars(select(AlertRule).order_by(AlertRule.id)))


def test_consumer_creates_a_rule_on_their_house_and_a_forged_house_gets_nothing(ui, world, factory):
    csrf = cookie_login(ui, "consumer")
    body = post(ui, act_payload("alerts-create", {"alerts-target": str(world.house2)}), csrf)
    assert body["alerts-message"]["color"] == "danger" and "not found" in body["alerts-message"]["children"]
    assert rules(factory) == []
    body = post(ui, act_payload("alerts-create", {"alerts-target": "fleet"}), csrf)
    assert "own houses" in body["alerts-message"]["children"] and rules(factory) == []
    body = post(ui, act_payload("alerts-create", {"alerts-target": str(world.house1)}), csrf)
    assert body["alerts-message"]["color"] == "success" and body["alerts-version"]["data"] == 1
    (rule,) = rules(factory)
    assert (rule.owner_id, rule.scope_id, rule.webhook_url) == (world.users["consumer"], world.house1, None)


def test_a_consumer_forging_a_webhook_is_refused(ui, world, factory):
    csrf = cookie_login(ui, "consumer")
    forged = {"alerts-target": str(world.house1), "alerts-webhook-url": "http://127.0.0.1:9/steal"}
    body = post(ui, act_payload("alerts-create", forged), csrf)
    assert body["alerts-message"]["color"] == "danger" and "webhooks" in body["alerts-message"]["children"]
    assert rules(factory) == []


def test_deleting_another_users_rule_is_refused(ui, client, world, factory):
    theirs = client.post("/api/v1/alert-rules", headers=world.headers["consumer2"], json={
        "name": "x", "kind": "anomaly", "scope_kind": "house", "scope_id": world.house2}).json  # fmt: skip
    csrf = cookie_login(ui, "consumer")
    body = post(ui, act_payload(theirs["id"], {}, delete_ids=[theirs["id"]]), csrf)
    assert body["alerts-message"]["color"] == "danger"
    assert [r.id for r in rules(factory)] == [theirs["id"]]


def test_the_page_offers_consumers_only_their_houses_and_no_webhook(ui, world):
    csrf = cookie_login(ui, "consumer")
    layout = post(ui, router_payload("/alerts"), csrf)
    content = layout["_pages_content"]["children"]
    options = component(content, "alerts-target")["options"]
    assert [o["value"] for o in options] == [str(world.house1)]
    assert component(content, "alerts-webhook-url")["style"] == {"display": "none"}
    csrf = cookie_login(ui, "analyst")
    content = post(ui, router_payload("/alerts"), csrf)["_pages_content"]["children"]
    values = [o["value"] for o in component(content, "alerts-target")["options"]]
    assert values == ["fleet", f"c{world.community}", str(world.house1), str(world.house2)]
    assert component(content, "alerts-webhook-url")["type"] == "url"


def test_the_bell_counts_only_the_users_own_unread_notifications(ui, app, client, world, factory):
    client.post("/api/v1/alert-rules", headers=world.headers["consumer"], json={
        "name": "offline", "kind": "silent_device", "scope_kind": "house", "scope_id": world.house1,
        "params": {"minutes": 10}})  # fmt: skip
    services = app.server.extensions["aggregator"]
    assert (
        run_alerts(services.session_factory, services.settings, utcnow() + timedelta(hours=1))["fired"] == 1
    )
    counts = {}
    for user in ("consumer", "consumer2", "analyst"):
        ui.delete_cookie("access_token_cookie")
        csrf = cookie_login(ui, user)
        counts[user] = post(ui, bell_payload(), csrf)["nav-bell-count"]["children"]
    assert counts == {"consumer": "1", "consumer2": "", "analyst": ""}
    csrf = cookie_login(ui, "consumer")
    assert (
        "1 notification(s) marked read"
        in post(ui, act_payload("alerts-read-all", {}), csrf)["alerts-message"]["children"]
    )
    assert post(ui, bell_payload(), csrf)["nav-bell-count"]["children"] == ""
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(AlertRule)) == 1


def test_anonymous_callbacks_get_401(ui):
    r = ui.post("/_dash-update-component", json=bell_payload())
    assert r.status_code == 401


def test_every_logged_in_page_carries_the_bell_with_the_users_unread_count(ui, app, client, world):
    client.post("/api/v1/alert-rules", headers=world.headers["consumer"], json={
        "name": "offline", "kind": "silent_device", "scope_kind": "house", "scope_id": world.house1,
        "params": {"minutes": 10}})  # fmt: skip
    services = app.server.extensions["aggregator"]
    run_alerts(services.session_factory, services.settings, utcnow() + timedelta(hours=1))
    for user, shown in (("consumer", "1"), ("consumer2", "")):
        cookie_login(ui, user)
        r = ui.get("/_dash-layout")
        assert r.status_code == 200
        assert component(r.json, "nav-bell-count")["children"] == shown and component(r.json, "nav-logout")
