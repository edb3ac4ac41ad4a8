"""GET /api/v1/analytics/... on the real PostgreSQL: the service's results, scoped to the caller.

One demo data set (seed 28 injects every anomaly kind and voltage events) is seeded for the module;
the tests only read it, so they use the session app directly instead of the truncating `app` fixture.
"""

from __future__ import annotations

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
