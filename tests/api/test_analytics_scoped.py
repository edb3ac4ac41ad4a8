"""dashboard.analytics against the real PostgreSQL: scoped reads, and the demo's ground truth found
through the database path (rollups and raw readings), not only by the pure maths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dashboard import analytics
from dashboard.errors import Forbidden, NotFound
from dashboard.ingest import ingest_readings
from dashboard.readings import Reading
from dashboard.schema import House, InjectedAnomaly
from dashboard.scope import Scope, system_scope

TZ = "Europe/Athens"
END = datetime(2026, 1, 31)
START = END - timedelta(days=35)
ADMIN = Scope(role="admin")
CONSUMPTION_KINDS = ("consumption_spike", "stuck_meter", "night_load")
ALL = (analytics.anomalies, analytics.voltage_events, analytics.power_factor_trend, analytics.load_profile)


@pytest.fixture
def demo_db(app, factory, pg_snapshots):
    """Four demo houses over 35 days (seed 28 injects every anomaly kind and voltage events)."""
    pg_snapshots.demo(factory, TZ, houses=4, days=35, end=END.replace(tzinfo=UTC), seed=28)
    with factory() as s:
        houses = s.scalars(select(House.id).order_by(House.id)).all()
        truth = s.execute(
            select(InjectedAnomaly.house_id, InjectedAnomaly.kind, InjectedAnomaly.start, InjectedAnomaly.end)
        ).all()
    return houses, truth


def consumer(house_id: int) -> Scope:
    return Scope(role="consumer", user_id=99, house_ids=frozenset({house_id}), community_ids=frozenset())


def overlaps(event: dict, house_id: int, start: datetime, end: datetime) -> bool:
    return (
        event["house_id"] == house_id
        and datetime.fromisoformat(event["start"][:-1]) < end
        and start < datetime.fromisoformat(event["end"][:-1])
    )


def test_anomalies_read_from_the_database_match_the_injected_ground_truth(factory, demo_db):
    _houses, truth = demo_db
    wanted = [t for t in truth if t.kind in CONSUMPTION_KINDS]
    with factory() as s:
        events = analytics.anomalies(s, ADMIN, START, END, timezone=TZ)
    assert wanted and events
    found = [e for e in events if any(overlaps(e, t.house_id, t.start, t.end) for t in wanted)]
    caught = [t for t in wanted if any(overlaps(e, t.house_id, t.start, t.end) for e in events)]
    precision, recall = len(found) / len(events), len(caught) / len(wanted)
    print(
        f"\nthrough PostgreSQL: {len(wanted)} injected, {len(events)} detected; P {precision:.2f} R {recall:.2f}"
    )
    assert precision >= 0.8 and recall >= 0.8
    assert set(events[0]) == {"house_id", "kind", "start", "end", "score", "detail"}
    with factory() as s:
        frame = analytics.consumption_frame(s, ADMIN, START, END)
    assert (frame["explained_kw"] > 0).mean() > 0.3  # appliance sub-meters explain part of the load
    assert (frame["power_kw"] + 1e-6 >= frame["explained_kw"]).mean() > 0.9  # hourly means vs quarters


def test_voltage_events_read_from_the_database_are_the_injected_ones(factory, demo_db):
    houses, truth = demo_db
    with factory() as s:
        result = analytics.voltage_events(s, ADMIN, START, END)
    got = {(e["house_id"], "voltage_" + e["kind"], e["start"], e["end"]) for e in result["events"]}
    want = {
        (t.house_id, t.kind, t.start.strftime("%Y-%m-%dT%H:%M:%SZ"), t.end.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for t in truth
        if t.kind.startswith("voltage_")
    }
    assert want and got == want
    assert {s["house_id"] for s in result["summary"]} == set(houses)
    sags = sum(s["count"] for s in result["summary"] if s["kind"] == "sag")
    assert sags == sum(1 for t in truth if t.kind == "voltage_sag")


def test_consumer_gets_only_their_own_house(factory, demo_db):
    houses, truth = demo_db
    mine = next(t.house_id for t in truth if t.kind in CONSUMPTION_KINDS)
    scope = consumer(mine)
    with factory() as s:
        everyone = analytics.anomalies(s, ADMIN, START, END, timezone=TZ)
        own = analytics.anomalies(s, scope, START, END, timezone=TZ)
        assert own and own == [e for e in everyone if e["house_id"] == mine]
        assert any(e["house_id"] != mine for e in everyone)
        volts = analytics.voltage_events(s, scope, START, END)
        assert {x["house_id"] for x in volts["events"] + volts["summary"]} <= {mine}
        trend = analytics.power_factor_trend(s, scope, START, END, timezone=TZ)
        assert trend and {d["house_id"] for d in trend} == {mine}
        assert len(trend) == 35 + 1  # 35 days of UTC data touch 36 local days
        profile = analytics.load_profile(s, scope, START, END, timezone=TZ)
        named = analytics.load_profile(s, ADMIN, START, END, house_id=mine, timezone=TZ)
        assert profile | {"house_id": mine} == named  # the scope's only house, summed
        assert profile["peak_kw"] < analytics.load_profile(s, ADMIN, START, END, timezone=TZ)["peak_kw"]


@pytest.mark.parametrize("function", ALL, ids=lambda f: f.__name__)
def test_consumer_naming_another_house_is_refused(factory, demo_db, function):
    houses, _truth = demo_db
    with factory() as s, pytest.raises(NotFound):
        function(s, consumer(houses[0]), START, END, house_id=houses[1])


@pytest.mark.parametrize("function", ALL, ids=lambda f: f.__name__)
def test_third_party_gets_no_single_house(factory, demo_db, function):
    houses, _truth = demo_db
    partner = Scope(role="third_party", api_key_id=1)
    with factory() as s, pytest.raises(Forbidden):
        function(s, partner, START, END, house_id=houses[0])


def test_third_party_gets_the_aggregate_load_profile_only(factory, demo_db):
    partner = Scope(role="third_party", api_key_id=1)
    with factory() as s:
        assert analytics.load_profile(s, partner, START, END, timezone=TZ)["peak_kw"] > 0
        for function in ALL[:3]:
            with pytest.raises(Forbidden):
                function(s, partner, START, END)


def test_hand_built_voltage_readings_through_ingest(factory, world):
    t0 = datetime(2026, 3, 1, 10, 0)
    volts = [230.0, 207.0, 206.9, 206.0, 230.0, 11.5, 230.0, 253.0, 253.1, 230.0]
    readings = [
        Reading(serial, t0 + timedelta(minutes=i), 500.0, None, v, 2.2, 0.95)
        for serial in ("H1-MAIN", "H2-MAIN")
        for i, v in enumerate(volts)
    ]
    with factory() as s:
        ingest_readings(s, system_scope(), readings, TZ)
        s.commit()
        result = analytics.voltage_events(s, consumer(world.house1), t0, t0 + timedelta(hours=1))
    assert [(e["kind"], e["start"], e["duration_s"]) for e in result["events"]] == [
        ("sag", "2026-03-01T10:02:00Z", 120.0),
        ("interruption", "2026-03-01T10:05:00Z", 60.0),
        ("swell", "2026-03-01T10:08:00Z", 60.0),
    ]
    assert {e["house_id"] for e in result["events"]} == {world.house1}
    assert result["events"][0]["min_voltage_v"] == 206.0
