"""Cost and CO2 settle grid import and export per 15-minute interval, the household view's rule, on real
PostgreSQL with readings sent through the API (so the rollups and their settlement are the app's own):
- an hour that exports in its first quarter and imports in its last pays for the import and earns for the
  export (settled per hour, as the cost did before, it would be a small import and no export);
- the household view's flow and the cost agree on a period's import and export, hourly and daily, with
  ragged ends, flat and time-of-use tariffs;
- the fast path (daily rows for whole local days when prices are constant over a day) gives the same
  figures as hour by hour."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, inspect, text

from dashboard import costs
from dashboard.costs import compute
from dashboard.household import energy_flow, window_bounds
from dashboard.schema_features import DAY_SLOTS, HOUSE_DAY_HOURS
from tests.api.test_energy import load
from tests.factories import build_world
from tests.integration.test_cost import TOU as COST_TOU
from tests.integration.test_migration_0004 import engine, migrate_to, two_houses  # noqa: F401  (fixture)

ZONE = "Europe/Athens"  # the tests' Settings.timezone
ZONE_INFO = ZoneInfo(ZONE)
T0 = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # local midnight starting Saturday 28 March (DST on the 29th)
DAYS = 3
FLAT = {"kind": "flat", "valid_from": "2026-03-01", "import_price": 0.30, "export_price": 0.10}
TOU = {k: v for k, v in COST_TOU.items() if k != "valid_to"}  # weekday and weekend periods, open-ended
SLOT_COLUMNS = [c.name for c in HOUSE_DAY_HOURS.c][3:]  # i0..i24, e0..e24


def quarter(serial: str, at: datetime, wh: float) -> dict:
    return {"device_id": serial, "timestamp": at.isoformat(), "power_w": wh * 4, "energy_wh": wh}


def assert_same(got, want, key) -> None:
    """Two buckets' figures equal; None (no tariff part, e.g. no standing charge) only where expected."""
    for name in ("import_kwh", "export_kwh", "energy_cost", "feed_in_credit", "standing_charge", "co2_kg"):
        expected = getattr(want, name)
        assert getattr(got, name) == (None if expected is None else pytest.approx(expected, rel=1e-12)), (
            key,
            name,
        )


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def add_tariff(client, world, body, house=None) -> None:
    house = house or world.house1
    r = client.post(f"/api/v1/houses/{house}/tariffs", json=body, headers=world.headers["admin"])
    assert r.status_code == 201, r.json


def cost(client, world, start, end, **params):
    query = {"start": start.isoformat(), "end": end.isoformat(), "house_id": world.house1} | params
    r = client.get("/api/v1/cost", query_string=query, headers=world.headers["consumer"])
    assert r.status_code == 200, r.json
    return r.json


def test_an_hour_that_exports_then_imports_pays_and_earns_per_quarter(client, world):
    """12:00-12:15 the PV makes 500 Wh and the house uses 100 (400 exported); 12:45-13:00 it uses 600 with
    no PV (600 imported); the two quarters between balance. Per quarter: 0.6 kWh in, 0.4 kWh out. The hour's
    totals (900 used, 700 made) would say 0.2 kWh in and nothing out: that was the old per-hour rule."""
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    used, made = [100.0, 100.0, 100.0, 600.0], [500.0, 100.0, 100.0, 0.0]
    items = [quarter("H1-MAIN", noon + timedelta(minutes=15 * i), wh) for i, wh in enumerate(used)]
    items += [quarter("H1-PV", noon + timedelta(minutes=15 * i), wh) for i, wh in enumerate(made) if wh]
    load(client, world, items)
    add_tariff(client, world, FLAT)
    body = cost(client, world, noon, noon + timedelta(hours=1))
    (hour,) = body["series"]
    assert hour["import_kwh"] == pytest.approx(0.6) and hour["export_kwh"] == pytest.approx(0.4)
    assert hour["cost"] == pytest.approx(0.6 * 0.30 - 0.4 * 0.10)  # per hour it would be 0.2 * 0.30
    day = cost(client, world, noon, noon + timedelta(hours=1), resolution="day")["total"]
    assert day["import_kwh"] == pytest.approx(0.6) and day["cost"] == pytest.approx(0.14)
    r = client.get(f"/api/v1/houses/{world.house1}/energy-flow", headers=world.headers["consumer"],
                   query_string={"from": noon.isoformat(), "to": (noon + timedelta(hours=1)).isoformat()})  # fmt: skip
    assert r.json["grid_import_kwh"] == pytest.approx(0.6) and r.json["grid_export_kwh"] == pytest.approx(0.4)


@pytest.fixture
def days_of_readings(client, world):
    """Three local days of 15-minute readings: house 1 with PV that often flips a quarter between import
    and export within the hour, house 2 without PV."""
    rng = random.Random(15)
    items = []
    for i in range(DAYS * 24 * 4 - 4):  # the 29th has 23 hours
        at = T0 + timedelta(minutes=15 * i)
        items.append(quarter("H1-MAIN", at, rng.uniform(50, 400)))
        items.append(quarter("H2-MAIN", at, rng.uniform(100, 300)))
        if 5 <= at.hour < 16:
            items.append(quarter("H1-PV", at, rng.uniform(0, 500)))
    for i in range(0, len(items), 1000):
        load(client, world, items[i : i + 1000])
    return world


@pytest.mark.parametrize("tariff", [FLAT, TOU], ids=["flat", "tou"])
def test_the_household_flow_and_the_cost_agree_on_import_and_export(
    client, days_of_readings, factory, tariff
):
    world = days_of_readings
    add_tariff(client, world, tariff)
    # ragged (hours into the first and last local day) and whole local days
    for start, end in (
        (T0 + timedelta(hours=5), T0 + timedelta(days=2, hours=7)),
        (T0, T0 + timedelta(hours=71)),
    ):
        with factory() as s:
            flow, _methods = energy_flow(s, [world.house1], window_bounds(naive(start), naive(end), "test"))
            results = [compute(s, [world.house1], naive(start), naive(end), ZONE, "EUR", 400.0, naive(end),
                               group=group) for group in ("hour", "day")]  # fmt: skip
        assert flow.grid_import > 1000 and flow.grid_export > 1000  # the fixture is not trivial
        for result in results:
            total = result.total()
            assert total.import_kwh * 1000 == pytest.approx(flow.grid_import, rel=1e-12)
            assert total.export_kwh * 1000 == pytest.approx(flow.grid_export, rel=1e-12)
            assert total.co2_kg == pytest.approx(flow.grid_import * 400 / 1e6, rel=1e-12)
        body = cost(client, world, start, end)
        r = client.get(f"/api/v1/houses/{world.house1}/energy-flow", headers=world.headers["consumer"],
                       query_string={"from": start.isoformat(), "to": end.isoformat()})  # fmt: skip
        assert body["total"]["import_kwh"] == pytest.approx(r.json["grid_import_kwh"], abs=1e-6)
        assert body["total"]["export_kwh"] == pytest.approx(r.json["grid_export_kwh"], abs=1e-6)


@pytest.mark.parametrize("per_house", [False, True])
def test_daily_rows_give_what_the_hours_give(client, days_of_readings, factory, per_house):
    """Flat prices and a constant intensity: the day buckets come from daily rows (and hourly ones for the
    ragged ends), and equal the sums of the hour buckets of each local day."""
    world = days_of_readings
    add_tariff(client, world, FLAT)
    add_tariff(client, world, FLAT | {"import_price": 0.25, "standing_charge_per_day": 0.3}, world.house2)
    start, end = naive(T0 + timedelta(hours=3)), naive(T0 + timedelta(hours=70))
    with factory() as s:
        args = (s, None, start, end, ZONE, "EUR", 350.0, end)
        hourly = compute(*args, group="hour", per_house=per_house)
        resolutions = []
        watch = lambda *a: resolutions.extend(str(v) for v in (a[3] or {}).values())  # noqa: E731
        event.listen(s.get_bind(), "before_cursor_execute", watch)
        daily = compute(*args, group="day", per_house=per_house)
        event.remove(s.get_bind(), "before_cursor_execute", watch)
    assert "day" in resolutions  # the whole local day in the middle was read from its daily rows
    assert len(daily.buckets) == 3 * (2 if per_house else 1)
    summed = {}
    for key, bucket in hourly.buckets.items():
        owner, hour = key if per_house else (None, key)
        day = hour.replace(tzinfo=UTC).astimezone(ZONE_INFO).date()
        summed.setdefault((owner, day), type(bucket)()).add(bucket)
    for key, bucket in daily.buckets.items():
        owner, midnight = key if per_house else (None, key)
        assert_same(bucket, summed[owner, midnight.replace(tzinfo=UTC).astimezone(ZONE_INFO).date()], key)
    assert daily.total().cost == pytest.approx(hourly.total().cost, rel=1e-12)


@pytest.mark.parametrize("group", ["hour", "day"])
def test_per_house_buckets_add_up_to_the_fleets(client, days_of_readings, factory, group):
    """Per house (priced in SQL on PostgreSQL) and for the fleet (priced with numpy) give the same figures:
    time-of-use and flat tariffs, hourly intensity for part of the range and the constant for the rest."""
    world = days_of_readings
    add_tariff(client, world, TOU)
    add_tariff(client, world, FLAT | {"standing_charge_per_day": 0.3}, world.house2)
    values = [{"hour": (T0 + timedelta(hours=h)).isoformat(), "g_per_kwh": 200.0 + 5 * h} for h in range(30)]
    r = client.post("/api/v1/grid-intensity", json={"values": values}, headers=world.headers["admin"])
    assert r.status_code == 200, r.json
    start, end = naive(T0 + timedelta(hours=2)), naive(T0 + timedelta(hours=69))
    with factory() as s:
        fleet = compute(s, None, start, end, ZONE, "EUR", 350.0, end, group=group)
        houses = compute(s, None, start, end, ZONE, "EUR", 350.0, end, group=group, per_house=True)
    assert {h for h, _ in houses.buckets} == {world.house1, world.house2}
    summed = {}
    for (_house, when), bucket in houses.buckets.items():
        summed.setdefault(when, type(bucket)()).add(bucket)
    assert set(summed) == set(fleet.buckets)
    for when, bucket in fleet.buckets.items():
        assert_same(summed[when], bucket, when)
    assert fleet.total().energy_cost > 0 and fleet.total().feed_in_credit > 0  # the fixture is not trivial


# ---- house_day_hours: whole local days priced from one row per house and day -------------------------


def day_hours_stored(session) -> dict[tuple[int, datetime], tuple[int, list[float], list[float]]]:
    rows = session.execute(
        text(f"SELECT house_id, day_start, hours, {', '.join(SLOT_COLUMNS)} FROM house_day_hours")
    )
    return {(h, as_datetime(d)): (bits, list(v[:DAY_SLOTS]), list(v[DAY_SLOTS:])) for h, d, bits, *v in rows}


def day_hours_from_the_hours(session) -> dict[tuple[int, datetime], tuple[int, list[float], list[float]]]:
    """What house_day_hours should hold: each hourly house row at its slot (whole hours since the midnight of
    the house's latest daily row at or before it), its bit set."""
    days: dict[int, list[datetime]] = {}
    for house, day in session.execute(text(
        "SELECT entity_id, bucket_start FROM energy_rollups WHERE resolution = 'day' AND entity_kind = 'house'"
    )):  # fmt: skip
        days.setdefault(house, []).append(as_datetime(day))
    out: dict = {}
    for house, hour, imp, exp in session.execute(text(
        "SELECT entity_id, bucket_start, import_wh, export_wh FROM energy_rollups "
        "WHERE resolution = 'hour' AND entity_kind = 'house'"
    )):  # fmt: skip
        hour = as_datetime(hour)
        day = max(d for d in days[house] if d <= hour)
        slot = int((hour - day).total_seconds() // 3600)
        bits, imports, exports = out.setdefault((house, day), (0, [0.0] * DAY_SLOTS, [0.0] * DAY_SLOTS))
        imports[slot] += imp
        exports[slot] += exp
        out[house, day] = (bits | 1 << slot, imports, exports)
    return out


def assert_day_hours_follow_the_hours(session, rel: float = 0.0) -> None:
    """house_day_hours as stored equals what the hourly rows say (to 1e-6 Wh, or `rel`)."""
    want, have = day_hours_from_the_hours(session), day_hours_stored(session)
    assert set(have) == set(want)
    close = lambda v: pytest.approx(v, rel=rel, abs=0 if rel else 1e-6)  # noqa: E731
    for key, (bits, imports, exports) in want.items():
        assert have[key] == (bits, close(imports), close(exports)), key


def as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)  # SQLite: text


@dataclass
class Backend:
    client: object
    world: object
    factory: object


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request) -> Backend:
    """Three local days around the spring DST change on PostgreSQL or the embedded SQLite: house 1 with PV
    flipping between import and export within hours, house 2 with none from 10:00 to 13:00 UTC on the 23-hour
    Sunday (a gap: no hourly rows there)."""
    app = request.getfixturevalue("app" if request.param == "postgresql" else "sqlite_app")
    client, world = app.server.test_client(), build_world(app)
    rng = random.Random(16)
    items = []
    gap = (T0 + timedelta(days=1, hours=12), T0 + timedelta(days=1, hours=15))
    for i in range(DAYS * 24 * 4 - 4):
        at = T0 + timedelta(minutes=15 * i)
        items.append(quarter("H1-MAIN", at, rng.uniform(50, 400)))
        if not gap[0] <= at < gap[1]:
            items.append(quarter("H2-MAIN", at, rng.uniform(100, 300)))
        if 5 <= at.hour < 16:
            items.append(quarter("H1-PV", at, rng.uniform(0, 500)))
    for i in range(0, len(items), 1000):
        load(client, world, items[i : i + 1000])
    return Backend(client, world, app.server.extensions["aggregator"].session_factory)


def test_the_day_hours_follow_ingestion_corrections_and_device_moves(backend):
    b = backend
    with b.factory() as s:
        assert_day_hours_follow_the_hours(s)
        first = day_hours_stored(s)
    assert len(first) == 2 * DAYS and any(sum(e) > 0 for _bits, _i, e in first.values())
    assert {bits for (house, _d), (bits, _i, _e) in first.items() if house == b.world.house2} == {
        (1 << 24) - 1,
        (1 << 23) - 1 - (7 << 12),
        (1 << 24) - 1,
    }  # fmt: skip  (the 23-hour day, its gap)
    # corrections (?replace=true): quarters turned from import to export and back
    fixes = [quarter("H1-MAIN", T0 + timedelta(minutes=15 * i), 900.0) for i in range(0, 280, 9)]
    fixes += [quarter("H1-PV", T0 + timedelta(minutes=15 * i), 950.0) for i in range(24, 64, 5)]
    r = b.client.post("/api/v1/measurements?replace=true", json={"measurements": fixes},
                      headers=b.world.headers["admin"])  # fmt: skip
    assert r.status_code == 200, r.json
    with b.factory() as s:
        assert_day_hours_follow_the_hours(s)
        assert day_hours_stored(s) != first
    # a metering-layout change: house 2's meter becomes house 1's export meter (house 1 now has an export
    # meter and an inverter: folded again; house 2 is left without readings: its rows go, gaps)
    admin = b.world.headers["admin"]
    devices = b.client.get("/api/v1/devices", headers=admin).json["devices"]
    meter = next(d["id"] for d in devices if d["device_id"] == "H2-MAIN")
    r = b.client.patch(f"/api/v1/devices/{meter}", json={"house_id": b.world.house1, "direction": "production"},
                       headers=admin)  # fmt: skip
    assert r.status_code == 200, r.json
    with b.factory() as s:
        assert_day_hours_follow_the_hours(s)
        assert {house for house, _day in day_hours_stored(s)} == {b.world.house1}


@pytest.mark.parametrize("group", ["hour", "day"])
def test_whole_days_from_the_day_hours_equal_the_hourly_rows(backend, group, monkeypatch):
    """The fleet and one house (whole local days from house_day_hours) against the per-house figures read
    from the hourly rows, summed: a time-of-use tariff that changes to a flat one on the 23-hour Sunday, a
    flat one with a standing charge, hourly intensity for part of the range, ragged and whole-day ranges."""
    b = backend
    monkeypatch.setattr(costs, "MANY_HOUSE_DAYS", 1)  # two houses, three days: served from the day rows too
    tou = TOU | {"valid_to": "2026-03-28"}
    add_tariff(b.client, b.world, tou)
    add_tariff(b.client, b.world, FLAT | {"valid_from": "2026-03-29", "import_price": 0.22})
    add_tariff(b.client, b.world, FLAT | {"standing_charge_per_day": 0.3}, b.world.house2)
    values = [{"hour": (T0 + timedelta(hours=h)).isoformat(), "g_per_kwh": 200.0 + 5 * h} for h in range(40)]
    r = b.client.post("/api/v1/grid-intensity", json={"values": values}, headers=b.world.headers["admin"])
    assert r.status_code == 200, r.json
    ranges = [
        (T0 + timedelta(hours=3), T0 + timedelta(hours=70)),  # ragged at both ends
        (T0, T0 + timedelta(hours=71)),  # whole local days only
        (T0 + timedelta(days=1, hours=9), T0 + timedelta(hours=71)),
    ]  # fmt: skip  (from mid-Sunday)
    statements = []
    watch = lambda *a: statements.append(a[2])  # noqa: E731
    for start, end in ranges:
        start, end = naive(start), naive(end)
        for houses in (None, [b.world.house1], [b.world.house2]):
            with b.factory() as s:
                args = (s, houses, start, end, ZONE, "EUR", 350.0, end)
                event.listen(s.get_bind(), "before_cursor_execute", watch)
                fast = compute(*args, group=group)
                event.remove(s.get_bind(), "before_cursor_execute", watch)
                hourly = compute(*args, group=group, per_house=True)
            summed = {}
            for (_house, when), bucket in hourly.buckets.items():
                summed.setdefault(when, type(bucket)()).add(bucket)
            assert set(fast.buckets) == set(summed), (start, end, houses)
            for when, bucket in fast.buckets.items():
                assert_same(bucket, summed[when], (start, end, houses, when))
            assert fast.total().energy_cost > 0 and fast.total().co2_kg > 0
    assert any("house_day_hours" in statement for statement in statements)


def test_0016_fills_the_day_hours_from_the_hourly_rows_and_goes_back(engine):  # noqa: F811
    migrate_to(engine, "0015_grid_metering")
    rng = random.Random(16)
    with engine.begin() as c:
        houses = two_houses(c)
        for house in houses:
            for h in range(DAYS * 24 - 1):  # three local days, the middle one of 23 hours
                if rng.random() < 0.1:
                    continue  # a gap: an hour without readings has no row
                hour = naive(T0) + timedelta(hours=h)
                imp, exp = rng.uniform(0, 900), rng.uniform(0, 500) if house == houses[0] else 0.0
                day = naive(datetime.combine(hour.replace(tzinfo=UTC).astimezone(ZONE_INFO).date(),
                                             datetime.min.time(), ZONE_INFO))  # fmt: skip
                for res, bucket in (("hour", hour), ("day", day)):
                    c.execute(
                        text("INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, "
                             "consumption_wh, production_wh, voltage_sum, voltage_count, pf_sum, pf_count, "
                             "readings_count, import_wh, export_wh) VALUES (:r, 'house', :h, :b, 0, 0, 0, 0, 0, 0, "
                             "4, :i, :e) ON CONFLICT (resolution, entity_kind, entity_id, bucket_start) DO UPDATE "
                             "SET import_wh = energy_rollups.import_wh + :i, export_wh = energy_rollups.export_wh + :e"),
                        {"r": res, "h": house, "b": bucket, "i": imp, "e": exp},
                    )  # fmt: skip
    migrate_to(engine, "0016_house_day_hours")
    with engine.connect() as c:
        stored = day_hours_stored(c)
        assert len(stored) == 2 * DAYS and any(
            bits.bit_count() < 23 for bits, _i, _e in stored.values()
        )  # gaps
        assert_day_hours_follow_the_hours(c, rel=1e-12)
    migrate_to(engine, "0015_grid_metering", down=True)
    with engine.connect() as c:
        assert "house_day_hours" not in inspect(c).get_table_names()
