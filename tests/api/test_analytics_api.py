"""GET /api/v1/analytics/... on the real PostgreSQL: the service's results, scoped to the caller.

One demo data set (seed 28 injects every anomaly kind and voltage events) is seeded for the module;
the tests only read it, so they use the session app directly instead of the truncating `app` fixture.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from flask_jwt_extended import create_access_token
from sqlalchemy import select

from dashboard.auth import create_api_key, create_user
from dashboard.schema import House, InjectedAnomaly, User
from dashboard.seed import seed_demo
from tests.conftest import truncate_all

TZ = "Europe/Athens"
END = datetime(2026, 1, 31, tzinfo=UTC)
START = END - timedelta(days=35)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
PATHS = ("anomalies", "voltage-events", "power-factor", "load-profile")
CONSUMPTION_KINDS = ("consumption_spike", "stuck_meter", "night_load")


@pytest.fixture(scope="module")
def env(pg_app):
    """Demo houses, a consumer owning a house with injected anomalies and voltage events, every caller."""
    services = pg_app.server.extensions["aggregator"]
    truncate_all(services.engine)
    seed_demo(services.session_factory, TZ, houses=4, days=35, end=END, seed=28, progress=False)
    with services.session_factory() as s:
        houses = s.scalars(select(House.id).order_by(House.id)).all()
        truth = s.execute(select(InjectedAnomaly.house_id, InjectedAnomaly.kind)).all()
        with_both = {t.house_id for t in truth if t.kind in CONSUMPTION_KINDS} & {
            t.house_id for t in truth if t.kind.startswith("voltage_")
        }
        mine = min(with_both or {t.house_id for t in truth if t.kind in CONSUMPTION_KINDS})
        create_user(s, "analytics-consumer", "correct-horse-battery", "consumer", [mine])
        _row, key = create_api_key(s, "analytics test app")
        s.commit()
        ids = {u.username: u.id for u in s.scalars(select(User))}
    with pg_app.server.app_context():
        headers = {
            name: {"Authorization": f"Bearer {create_access_token(identity=str(ids[user]))}"}
            for name, user in (
                ("admin", "admin"),
                ("analyst", "analyst"),
                ("consumer", "analytics-consumer"),
                ("partner", "partner"),
            )
        }
    headers["api_key"] = {"X-API-Key": key}
    yield {"client": pg_app.server.test_client(), "houses": houses, "mine": mine, "headers": headers}
    truncate_all(services.engine)


def get(env, path: str, caller: str, **params):
    return env["client"].get(
        f"/api/v1/analytics/{path}", query_string=RANGE | params, headers=env["headers"].get(caller, {})
    )


def ok(env, path: str, caller: str, **params) -> dict:
    r = get(env, path, caller, **params)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.json


def test_consumer_sees_only_their_own_house_anomalies(env):
    mine = env["mine"]
    everyone = ok(env, "anomalies", "admin")["anomalies"]
    own = ok(env, "anomalies", "consumer")["anomalies"]
    assert own and own == [e for e in everyone if e["house_id"] == mine]
    assert any(e["house_id"] != mine for e in everyone)  # there was something to leak
    assert ok(env, "anomalies", "analyst", house_id=mine)["anomalies"] == own
    assert set(own[0]) == {"house_id", "kind", "start", "end", "score", "detail"}


def test_consumer_sees_only_their_own_house_voltage_events(env):
    mine = env["mine"]
    everyone = ok(env, "voltage-events", "admin")
    own = ok(env, "voltage-events", "consumer")
    assert {e["house_id"] for e in everyone["events"]} - {mine}  # other houses have events too
    assert own["events"] == [e for e in everyone["events"] if e["house_id"] == mine]
    assert {s["house_id"] for s in own["summary"]} == {mine}
    assert own["thresholds_v"] == {"sag_below": 207.0, "swell_above": 253.0, "interruption_at_or_below": 11.5}
    custom = ok(env, "voltage-events", "consumer", nominal_v="240")
    assert custom["nominal_v"] == 240.0 and custom["thresholds_v"]["sag_below"] == 216.0


def test_consumer_power_factor_and_load_profile_are_their_house(env):
    mine = env["mine"]
    days = ok(env, "power-factor", "consumer")["days"]
    assert days and {d["house_id"] for d in days} == {mine}
    assert len(days) == 36  # 35 days of UTC data touch 36 local days
    assert all(0 < d["mean_power_factor"] <= 1 for d in days)
    everyone = ok(env, "power-factor", "admin")["days"]
    assert [d for d in everyone if d["house_id"] == mine] == days

    profile = ok(env, "load-profile", "consumer")
    named = ok(env, "load-profile", "admin", house_id=mine)
    assert profile | {"house_id": mine} == named
    assert len(profile["weekday"]) == 96 and profile["peak_kw"] > 0
    assert profile["peak_kw"] < ok(env, "load-profile", "admin")["peak_kw"]


@pytest.mark.parametrize("path", PATHS)
def test_consumer_naming_another_house_gets_404_and_no_data(env, path):
    other = next(h for h in env["houses"] if h != env["mine"])
    r = get(env, path, "consumer", house_id=other)
    assert r.status_code == 404
    assert set(r.json) <= {"error", "detail"}


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_callers_get_401(env, path):
    r = get(env, path, "anonymous")
    assert r.status_code == 401 and r.json["error"]


@pytest.mark.parametrize("caller", ["api_key", "partner"])
@pytest.mark.parametrize("path", PATHS)
def test_third_party_apps_have_no_analytics(env, path, caller):
    """analytics:read is not granted to third_party (see dashboard/policy.py for why)."""
    r = get(env, path, caller)
    assert r.status_code == 403 and r.json["error"] == "Forbidden"
    assert set(r.json) <= {"error", "detail"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": ""}, "start"),
        ({"end": "tomorrow"}, "end"),
        ({"end": START.isoformat()}, "end"),  # empty range
        ({"start": (END - timedelta(days=400)).isoformat()}, "end"),  # over 366 days
        ({"house_id": "x"}, "house_id"),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_bad_parameters_get_422(env, path, params, field):
    r = get(env, path, "analyst", **params)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.json["error"] == "Invalid or missing input"
    assert field in {d["field"] for d in r.json["details"]}


@pytest.mark.parametrize("nominal_v", ["abc", "0", "-5", "nan"])
def test_bad_nominal_voltage_gets_422(env, nominal_v):
    r = get(env, "voltage-events", "analyst", nominal_v=nominal_v)
    assert r.status_code == 422
    assert {d["field"] for d in r.json["details"]} == {"nominal_v"}


# ---- the all-houses scan in the background (POST /api/v1/analytics/scans) ---------------------------


def start_scan(env, caller: str, **params):
    return env["client"].post(
        "/api/v1/analytics/scans", query_string=RANGE | params, headers=env["headers"].get(caller, {})
    )


def finished_scan(env, caller: str, job_id: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        r = env["client"].get(f"/api/v1/analytics/scans/{job_id}", headers=env["headers"][caller])
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        if r.json["status"] == "finished":
            return r.json
        assert r.json["status"] != "failed", r.json
        assert time.monotonic() < deadline, r.json
        time.sleep(0.2)


def test_a_background_scan_finds_what_the_services_find_and_is_reused(env):
    r = start_scan(env, "analyst")
    assert r.status_code == 202, r.get_data(as_text=True)[:300]
    job_id = r.json["job_id"]
    assert r.json["status_url"] == f"/api/v1/analytics/scans/{job_id}"
    assert start_scan(env, "analyst").json["job_id"] == job_id  # the same user and range: the same scan
    found = finished_scan(env, "analyst", job_id)
    assert found["progress"] == 1.0 and found["errors"] == {}
    assert found["anomalies"] and found["anomalies"] == ok(env, "anomalies", "analyst")["anomalies"]
    voltage = ok(env, "voltage-events", "analyst")
    assert found["voltage_events"]["events"] == voltage["events"]
    assert found["power_factor"] == ok(env, "power-factor", "analyst")["days"]
    assert (found["start"], found["end"]) == (
        START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        END.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def test_a_scan_is_its_owners_and_holds_only_their_houses(env):
    job_id = start_scan(env, "consumer").json["job_id"]
    found = finished_scan(env, "consumer", job_id)
    assert {e["house_id"] for e in found["anomalies"]} == {env["mine"]}
    assert {d["house_id"] for d in found["power_factor"]} == {env["mine"]}
    for other in ("admin", "analyst"):  # another user's scan id: not found, nothing shown
        r = env["client"].get(f"/api/v1/analytics/scans/{job_id}", headers=env["headers"][other])
        assert r.status_code == 404 and "anomalies" not in r.json
    forged = job_id.rsplit("-", 1)[0] + "-" + "0" * 32
    assert (
        env["client"].get(f"/api/v1/analytics/scans/{forged}", headers=env["headers"]["consumer"]).status_code
        == 404
    )


@pytest.mark.parametrize(("caller", "status"), [("anonymous", 401), ("partner", 403), ("api_key", 403)])
def test_a_scan_needs_an_analytics_role(env, caller, status):
    assert start_scan(env, caller).status_code == status


def test_a_bad_range_gets_422_and_queues_nothing(env):
    queue = env["client"].application.extensions["aggregator"].job_queue
    before = len(queue.jobs)
    r = start_scan(env, "analyst", end=(START - timedelta(days=1)).isoformat())
    assert r.status_code == 422 and r.json["details"][0]["field"] == "end"
    assert env["client"].post("/api/v1/analytics/scans", headers=env["headers"]["analyst"]).status_code == 422
    assert len(queue.jobs) == before
