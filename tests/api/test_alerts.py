"""Alert rules on real PostgreSQL: who may watch what (the scope decides on the server, never the body),
each rule kind fires on crafted data and resolves, once per episode, and notifications stay private."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text

from dashboard.alerts import run_alerts
from dashboard.clock import floor_to, utcnow
from dashboard.schema import Device, EnergyRollup, Measurement, user_houses
from dashboard.schema_features import AlertEvent, AlertRule, Notification

MINUTE = timedelta(minutes=1)


def create(client, headers, **body):
    return client.post("/api/v1/alert-rules", json=body, headers=headers)


def house_rule(world, kind, params, house=None, **extra) -> dict:
    return {"name": f"{kind} rule", "kind": kind, "scope_kind": "house", "scope_id": house or world.house2,
            "params": params} | extra  # fmt: skip


def count(factory, model, *where) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def readings(factory, serial, start, end, step, power_w, voltage_v=230.0):
    with factory() as s:
        device_id = s.scalar(select(Device.id).where(Device.serial == serial))
        ts, rows = start, []
        while ts < end:
            rows.append(Measurement(device_id=device_id, ts=ts, power_w=power_w, energy_wh=power_w * step.total_seconds() / 3600,
                                    voltage_v=voltage_v, power_factor=0.95))  # fmt: skip
            ts += step
        s.add_all(rows)
        s.commit()


@pytest.fixture
def run(app):
    services = app.server.extensions["aggregator"]
    return lambda now: run_alerts(services.session_factory, services.settings, now)


@pytest.fixture
def t0():
    return floor_to(utcnow(), MINUTE) + timedelta(hours=1)  # after every device's creation


# ---- who may watch what --------------------------------------------------------------------------------


def test_consumer_creates_a_rule_on_their_house_and_lists_only_their_own(client, world, factory):
    mine = create(
        client, world.headers["consumer"], **house_rule(world, "silent_device", {"minutes": 10}, world.house1)
    )
    assert mine.status_code == 201 and mine.json["scope_id"] == world.house1 and mine.json["webhook"] is None
    create(client, world.headers["analyst"], **house_rule(world, "anomaly", {}))
    listed = client.get("/api/v1/alert-rules", headers=world.headers["consumer"]).json["rules"]
    assert [r["id"] for r in listed] == [mine.json["id"]]
    for method in ("GET", "PATCH", "DELETE"):  # another user's rule reads as missing
        r = client.open(f"/api/v1/alert-rules/{mine.json['id']}", method=method, json={} if method == "PATCH" else None,
                        headers=world.headers["consumer2"])  # fmt: skip
        assert r.status_code == 404, method
    assert count(factory, AlertRule) == 2


def test_consumer_cannot_target_a_house_outside_their_scope(client, world, factory):
    r = create(
        client, world.headers["consumer"], **house_rule(world, "silent_device", {"minutes": 10}, world.house2)
    )
    assert r.status_code == 404 and r.json["error"] == "Not found"
    for body in ({"scope_kind": "fleet"}, {"scope_kind": "community", "scope_id": world.community}):
        r = create(
            client, world.headers["consumer"], **(house_rule(world, "silent_device", {"minutes": 5}) | body)
        )
        assert r.status_code == 403 and "own houses" in r.json["detail"]
    # a change cannot move an existing rule out of the scope either
    rule = create(client, world.headers["consumer"], **house_rule(world, "anomaly", {}, world.house1)).json
    r = client.patch(f"/api/v1/alert-rules/{rule['id']}", json={"scope_id": world.house2},
                     headers=world.headers["consumer"])  # fmt: skip
    assert r.status_code == 404
    with factory() as s:
        assert s.scalars(select(AlertRule.scope_id)).all() == [world.house1]


def test_webhooks_are_refused_for_consumers_and_nothing_is_written(client, world, factory):
    body = house_rule(
        world, "silent_device", {"minutes": 10}, world.house1, webhook_url="http://127.0.0.1:9/hook"
    )
    r = create(client, world.headers["consumer"], **body)
    assert r.status_code == 403 and "webhooks" in r.json["detail"]
    assert count(factory, AlertRule) == 0


def test_staff_webhook_secret_is_shown_once_and_encrypted_at_rest(client, world, factory):
    url = "https://hooks.example.org/T000/B000/token-in-url"
    r = create(client, world.headers["analyst"], name="fleet net", kind="threshold", scope_kind="fleet",
               params={"metric": "net", "direction": "above", "threshold_kw": 50, "minutes": 15}, webhook_url=url)  # fmt: skip
    assert r.status_code == 201
    secret = r.json["webhook"]["secret"]
    assert len(secret) >= 32 and r.json["webhook"]["url"] == url
    again = client.get(f"/api/v1/alert-rules/{r.json['id']}", headers=world.headers["analyst"]).json
    assert again["webhook"] == {"url": url, "signature_header": "X-Aggregator-Signature"}
    with factory() as s:
        stored_url, stored_secret = s.execute(
            text("SELECT webhook_url, webhook_secret FROM alert_rules")
        ).one()
    assert stored_url.startswith("v1:") and "token-in-url" not in stored_url
    assert stored_secret.startswith("v1:") and secret not in stored_secret


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "nope"}, "kind"),
        ({"params": {"minutes": 0}}, "params.minutes"),
        ({"params": {"minutes": 10, "extra": 1}}, "params.extra"),
        ({"webhook_url": "ftp://example.org/x"}, "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest/meta-data"}, "webhook_url"),
        ({"webhook_url": "http://[::ffff:169.254.169.254]/"}, "webhook_url"),
        ({"webhook_url": "http://[fe80::1]/"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1/", "webhook_secret": "short"}, "webhook_secret"),
        ({"email": True}, "email"),  # the analyst's account has no e-mail address
        ({"scope_id": "1"}, "scope_id"),
    ],
)
def test_bad_rules_are_a_422_naming_the_field_and_write_nothing(client, world, factory, body, field):
    r = create(
        client, world.headers["analyst"], **(house_rule(world, "silent_device", {"minutes": 10}) | body)
    )
    assert r.status_code == 422, r.json
    assert field in [d["field"] for d in r.json["details"]]
    assert count(factory, AlertRule) == 0


def test_third_party_apps_have_no_alerts(client, world):
    for caller in ("api_key", "partner"):
        assert client.get("/api/v1/alert-rules", headers=world.headers[caller]).status_code == 403
        assert client.get("/api/v1/notifications", headers=world.headers[caller]).status_code == 403


# ---- each kind fires once per episode and resolves ----------------------------------------------------------


def events(factory, rule_id) -> list[AlertEvent]:
    with factory() as s:
        return list(
            s.scalars(select(AlertEvent).where(AlertEvent.rule_id == rule_id).order_by(AlertEvent.id))
        )


def test_silent_device_fires_once_per_episode_and_resolves(client, world, factory, run, t0):
    rule = create(
        client, world.headers["analyst"], **house_rule(world, "silent_device", {"minutes": 10})
    ).json
    readings(factory, "H2-MAIN", t0, t0 + MINUTE, MINUTE, 500.0)
    assert run(t0 + 5 * MINUTE).get("ok") == 1 and events(factory, rule["id"]) == []
    assert run(t0 + 11 * MINUTE)["fired"] == 1
    assert run(t0 + 12 * MINUTE)["firing"] == 1  # still the same episode: no second event or notification
    (event,) = events(factory, rule["id"])
    assert "H2-MAIN" in event.message and event.resolved_at is None
    readings(factory, "H2-MAIN", t0 + 12 * MINUTE, t0 + 13 * MINUTE, MINUTE, 500.0)
    assert run(t0 + 13 * MINUTE)["resolved"] == 1
    assert events(factory, rule["id"])[0].resolved_at == t0 + 13 * MINUTE
    assert run(t0 + 30 * MINUTE)["fired"] == 1  # a new episode
    assert len(events(factory, rule["id"])) == 2
    notes = client.get("/api/v1/notifications", headers=world.headers["analyst"]).json
    assert [n["title"].split(":")[0] for n in notes["notifications"]] == ["Alert", "Resolved", "Alert"]
    assert notes["unread"] == 3


def test_threshold_fires_after_m_minutes_beyond_and_resolves(client, world, factory, run, t0):
    params = {"metric": "consumption", "direction": "above", "threshold_kw": 2.0, "minutes": 5}
    rule = create(client, world.headers["analyst"], **house_rule(world, "threshold", params)).json
    half = timedelta(seconds=30)
    readings(factory, "H2-MAIN", t0 - 20 * MINUTE, t0, half, 1000.0)
    readings(factory, "H2-MAIN", t0, t0 + 10 * MINUTE, half, 3000.0)
    assert run(t0 + 3 * MINUTE).get("ok") == 1  # only 3 of the 5 minutes are above
    assert run(t0 + 6 * MINUTE)["fired"] == 1
    assert run(t0 + 8 * MINUTE)["firing"] == 1
    (event,) = events(factory, rule["id"])
    assert "consumption" in event.message and "above 2 kW" in event.message
    readings(factory, "H2-MAIN", t0 + 10 * MINUTE, t0 + 12 * MINUTE, half, 500.0)
    assert run(t0 + 11 * MINUTE)["resolved"] == 1
    assert len(events(factory, rule["id"])) == 1


def test_threshold_below_needs_readings_covering_the_window(client, world, factory, run, t0):
    params = {"metric": "net", "direction": "below", "threshold_kw": 0.1, "minutes": 5}
    create(client, world.headers["analyst"], **house_rule(world, "threshold", params))
    assert run(t0).get("ok") == 1  # no readings at all: no verdict, silence is another rule's job
    readings(factory, "H2-MAIN", t0 - 10 * MINUTE, t0, MINUTE, 0.0)
    assert run(t0 + MINUTE)["fired"] == 1


def test_voltage_event_fires_on_a_sag_and_resolves_when_voltage_is_back(client, world, factory, run, t0):
    rule = create(client, world.headers["analyst"], **house_rule(world, "voltage_event", {})).json
    readings(factory, "H2-MAIN", t0 - 20 * MINUTE, t0, MINUTE, 800.0, voltage_v=230.0)
    assert run(t0).get("ok") == 1
    readings(factory, "H2-MAIN", t0, t0 + 3 * MINUTE, MINUTE, 800.0, voltage_v=190.0)
    assert run(t0 + 3 * MINUTE)["fired"] == 1
    readings(factory, "H2-MAIN", t0 + 3 * MINUTE, t0 + 15 * MINUTE, MINUTE, 800.0, voltage_v=231.0)
    assert run(t0 + 5 * MINUTE)["firing"] == 1  # the sag ended less than 5 minutes ago
    assert run(t0 + 15 * MINUTE)["resolved"] == 1
    (event,) = events(factory, rule["id"])
    assert "1 sag" in event.message and event.resolved_at == t0 + 15 * MINUTE


def test_anomaly_fires_on_a_consumption_spike_and_resolves(client, world, factory, run, t0):
    rule = create(client, world.headers["analyst"], **house_rule(world, "anomaly", {})).json
    quarter, start = timedelta(minutes=15), floor_to(t0, timedelta(minutes=15)) - timedelta(days=29)
    end = floor_to(t0, timedelta(minutes=15))
    rows, ts, i = [], start, 0
    while ts < end:
        kw = 3.0 if ts >= end - 6 * quarter else 0.4 + 0.05 * ((i * 7) % 5)  # usual 0.4-0.6 kW, then 3 kW
        rows.append(EnergyRollup(resolution="15min", entity_kind="house", entity_id=world.house2, bucket_start=ts,
                                 consumption_wh=kw * 250, production_wh=0.0, readings_count=1))  # fmt: skip
        ts, i = ts + quarter, i + 1
    with factory() as s:
        s.add_all(rows)
        s.commit()
    assert run(end + MINUTE)["fired"] == 1
    assert run(end + 5 * MINUTE).get("skipped") == 1  # anomalies: at most every 15 minutes
    assert run(end + 16 * MINUTE)["firing"] == 1
    assert run(end + 61 * MINUTE)["resolved"] == 1
    (event,) = events(factory, rule["id"])
    assert "anomal" in event.message and event.resolved_at == end + 61 * MINUTE


def test_a_rule_outside_the_owners_scope_now_records_why_and_never_fires(client, world, factory, run, t0):
    rule = create(
        client, world.headers["consumer"], **house_rule(world, "silent_device", {"minutes": 1}, world.house1)
    ).json
    with factory() as s:
        s.execute(delete(user_houses).where(user_houses.c.house_id == world.house1))
        s.commit()
    assert run(t0)["error"] == 1
    with factory() as s:
        assert "House" in s.get(AlertRule, rule["id"]).last_error
    assert events(factory, rule["id"]) == []


# ---- notifications are their user's own ---------------------------------------------------------------------


def test_a_notification_is_visible_only_to_its_user(client, world, factory, run, t0):
    create(
        client, world.headers["consumer"], **house_rule(world, "silent_device", {"minutes": 10}, world.house1)
    )
    assert run(t0)["fired"] == 1  # house A's devices never reported since they were added
    mine = client.get("/api/v1/notifications", headers=world.headers["consumer"]).json
    assert mine["unread"] == 1 and len(mine["notifications"]) == 1
    note = mine["notifications"][0]
    for other in ("consumer2", "analyst", "admin"):
        theirs = client.get("/api/v1/notifications", headers=world.headers[other]).json
        assert theirs == {"notifications": [], "unread": 0}
        assert (
            client.post(f"/api/v1/notifications/{note['id']}/read", headers=world.headers[other]).status_code
            == 404
        )
    assert count(factory, Notification, Notification.read_at.is_(None)) == 1
    r = client.post(f"/api/v1/notifications/{note['id']}/read", headers=world.headers["consumer"])
    assert r.status_code == 200 and r.json["unread"] == 0
    assert (
        client.get("/api/v1/notifications?unread=true", headers=world.headers["consumer"]).json[
            "notifications"
        ]
        == []
    )
