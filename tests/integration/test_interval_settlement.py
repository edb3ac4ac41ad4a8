"""Import and export settled per 15-minute interval in the house rollups (dashboard/settlement.py) equal a
from-scratch computation from the raw readings, on PostgreSQL: after ingestion across local midnights, late
and re-sent readings, and corrections that turn an interval from import to export and back. The household
flow read through daily and hourly rows equals the per-interval sums. Migration 0014's backfill gives the
same figures as the from-scratch computation on PostgreSQL and SQLite."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect, text

from dashboard.household import _spans, appliances, energy_flow
from dashboard.household_periods import Window
from tests.api.test_energy import load
from tests.integration.test_cost_settlement import assert_day_hours_follow_the_hours
from tests.integration.test_migration_0004 import engine, migrate_to, rows, two_houses  # noqa: F401  (fixture)

ZONE = "Europe/Athens"  # the tests' Settings.timezone
T0 = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)  # three local days around the spring DST change (29 March)
QUARTERS = 4 * 24 * 3
# tests/factories.py: house 1's meter, inverter and EV sub-meter, house 2's meter
MAIN, PV, OTHER, EV = "H1-MAIN", "H1-PV", "H2-MAIN", "H1-EV"


def item(serial: str, i: int, wh: float) -> dict:
    ts = T0 + timedelta(minutes=15 * i)
    return {"device_id": serial, "timestamp": ts.isoformat(), "power_w": wh * 4, "energy_wh": wh}


def local_midnight(ts: datetime) -> datetime:
    local = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(ZONE))
    day = datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(ZONE))
    return day.astimezone(UTC).replace(tzinfo=None)


def from_scratch(session) -> dict[tuple[str, int, datetime], tuple[float, float]]:
    """(resolution, house, bucket) -> (import, export) from the raw readings: the rollups' rule per interval
    (house meters of direction consumption; non-appliance production), max() per interval, then summed."""
    raw = session.execute(
        text(
            "SELECT d.house_id, d.kind, d.direction, m.ts, m.energy_wh FROM measurements m "
            "JOIN devices d ON d.id = m.device_id WHERE d.house_id IS NOT NULL AND d.kind <> 'appliance'"
        )
    ).all()
    sums: dict[tuple[int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for house, kind, direction, ts, wh in raw:
        q = ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)
        if direction == "production":
            sums[house, q][1] += wh
        elif kind == "meter":
            sums[house, q][0] += wh
    return {k: tuple(v) for k, v in settled(sums).items()}


def bucket_keys(house: int, q: datetime) -> tuple[tuple[str, int, datetime], ...]:
    """The house's 15-minute, hourly and local-day rollup rows holding the quarter `q`."""
    return ("15min", house, q), ("hour", house, q.replace(minute=0)), ("day", house, local_midnight(q))


def settled(quarters: dict) -> dict[tuple[str, int, datetime], list[float]]:
    """(house, quarter) -> (consumption, production) settled per quarter: max() each, summed per row."""
    out: dict[tuple[str, int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (house, q), (c, p) in quarters.items():
        for key in bucket_keys(house, q):
            out[key][0] += max(c - p, 0.0)
            out[key][1] += max(p - c, 0.0)
    return out


def stored(session) -> dict[tuple[str, int, datetime], tuple[float, float]]:
    result = session.execute(
        text("SELECT resolution, entity_id, bucket_start, import_wh, export_wh FROM energy_rollups "
             "WHERE entity_kind = 'house'")
    ).all()  # fmt: skip
    return {(res, h, b): (i, e) for res, h, b, i, e in result}


def assert_same(expected: dict, actual: dict) -> None:
    assert set(expected) == set(actual)
    for key, (imp, exp) in expected.items():
        assert actual[key] == (pytest.approx(imp, abs=1e-6), pytest.approx(exp, abs=1e-6)), key


def test_settled_intervals_follow_ingestion_late_readings_and_corrections(client, world, factory):
    rng = random.Random(15)
    cons = [rng.uniform(50, 400) for _ in range(QUARTERS)]
    pv = [max(0.0, rng.uniform(-200, 500)) for _ in range(QUARTERS)]
    # the inverter first (every interval exports), then the meters in two batches, one of them late
    load(client, world, [item(PV, i, pv[i]) for i in range(QUARTERS)])
    load(client, world, [item(MAIN, i, cons[i]) for i in range(0, QUARTERS, 2)])
    load(client, world, [item(OTHER, i, cons[i] / 2) for i in range(QUARTERS)])
    load(client, world, [item(MAIN, i, cons[i]) for i in range(1, QUARTERS, 2)])  # late, out of order
    load(client, world, [item(MAIN, i, 9999.0) for i in range(10)])  # re-sent: duplicates change nothing
    load(client, world, [item(EV, i, 30.0 + i % 5) for i in range(QUARTERS)])  # an appliance sub-meter
    with factory() as s:
        first = stored(s)
        assert_same(from_scratch(s), first)
        assert_day_hours_follow_the_hours(s)  # the cost's house_day_hours too
    assert any(i > 0 for i, _ in first.values()) and any(e > 0 for _, e in first.values())
    # corrections: an exporting interval becomes importing and back, in both directions of both devices
    fixes = [item(MAIN, i, cons[i] + 600.0) for i in range(0, QUARTERS, 7)]
    fixes += [item(PV, i, pv[i] + 800.0) for i in range(3, QUARTERS, 11)]
    r = client.post("/api/v1/measurements?replace=true", json={"measurements": fixes},
                    headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 200, r.json
    with factory() as s:
        after = stored(s)
        assert_same(from_scratch(s), after)
        assert_day_hours_follow_the_hours(s)
        assert after != first
        # the flow read through daily, hourly and 15-minute rows equals the per-interval sums
        start = local_midnight(T0.replace(tzinfo=None) + timedelta(hours=5))
        window = Window(start, start + timedelta(hours=50, minutes=30), "test", True, ZONE)
        assert {res for res, *_ in _spans(window)} == {"day", "hour", "15min"}
        flow, _methods = energy_flow(s, [world.house1], window)
        no_days, _m = energy_flow(s, [world.house1], Window(window.start, window.end, "test", True))
        quarters = {k: v for k, v in from_scratch(s).items()
                    if k[0] == "15min" and k[1] == world.house1 and window.start <= k[2] < window.end}  # fmt: skip
        assert flow.grid_import == pytest.approx(sum(v[0] for v in quarters.values()))
        assert flow.grid_export == pytest.approx(sum(v[1] for v in quarters.values()))
        assert flow.intervals == len(quarters) == no_days.intervals
        for name in ("consumption", "production", "self_consumed", "grid_import", "grid_export"):
            assert getattr(flow, name) == pytest.approx(getattr(no_days, name))
        # appliances (hourly and daily rows only) read through daily rows: the hours starting in the window
        ev = sum(30.0 + i % 5 for i in range(QUARTERS)
                 if window.start <= (T0.replace(tzinfo=None) + timedelta(minutes=15 * i)).replace(minute=0) < window.end)  # fmt: skip
        for w in (window, Window(window.start, window.end, "test", True)):
            (one,) = appliances(s, [world.house1], w, flow.consumption)["appliances"]
            assert one["energy_kwh"] == pytest.approx(ev / 1000.0, abs=1e-3)


def test_0014_backfills_import_and_export_from_the_intervals(engine):  # noqa: F811
    migrate_to(engine, "0012_alerts")
    rng = random.Random(14)
    quarters: dict[tuple[int, datetime], tuple[float, float]] = {}
    with engine.begin() as c:
        houses = two_houses(c)
        for house in houses:
            for i in range(QUARTERS):
                if rng.random() < 0.1:
                    continue  # gaps: an interval without readings has no row
                quarters[house, T0.replace(tzinfo=None) + timedelta(minutes=15 * i)] = (
                    rng.uniform(0, 400), rng.uniform(0, 400) if house == houses[0] else 0.0)  # fmt: skip
        buckets: dict[tuple[str, int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for (house, q), (cons, prod) in quarters.items():
            for key in bucket_keys(house, q):
                buckets[key][0] += cons
                buckets[key][1] += prod
        for (res, house, bucket), (cons, prod) in buckets.items():
            for kind in ("house", "all"):  # the fleet rows keep 0
                c.execute(
                    text("INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, "
                         "consumption_wh, production_wh, voltage_sum, voltage_count, pf_sum, pf_count, "
                         "readings_count) VALUES (:r, :k, :h, :b, :c, :p, 0, 0, 0, 0, 1) "
                         "ON CONFLICT DO NOTHING"),
                    {"r": res, "k": kind, "h": house if kind == "house" else 0, "b": bucket, "c": cons, "p": prod},
                )  # fmt: skip
    migrate_to(engine, "0014_interval_settlement")
    expected = settled(quarters)
    got = rows(engine, "SELECT resolution, entity_id, bucket_start, import_wh, export_wh FROM energy_rollups "
                       "WHERE entity_kind = 'house'")  # fmt: skip
    as_dt = lambda b: b if isinstance(b, datetime) else datetime.fromisoformat(b)  # noqa: E731  (SQLite: text)
    assert_same(
        {k: tuple(v) for k, v in expected.items()}, {(r, h, as_dt(b)): (i, e) for r, h, b, i, e in got}
    )
    assert rows(engine, "SELECT count(*) FROM energy_rollups WHERE entity_kind = 'all' AND "
                        "(import_wh <> 0 OR export_wh <> 0)") == [(0,)]  # fmt: skip
    migrate_to(engine, "0012_alerts", down=True)
    with engine.connect() as c:
        names = [col["name"] for col in inspect(c).get_columns("energy_rollups")]
    assert "import_wh" not in names and "export_wh" not in names
