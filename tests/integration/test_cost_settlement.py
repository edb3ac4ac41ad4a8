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
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from dashboard.costs import compute
from dashboard.household import energy_flow, window_bounds
from tests.api.test_energy import load
from tests.integration.test_cost import TOU as COST_TOU

ZONE = "Europe/Athens"  # the tests' Settings.timezone
ZONE_INFO = ZoneInfo(ZONE)
T0 = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # local midnight starting Saturday 28 March (DST on the 29th)
DAYS = 3
FLAT = {"kind": "flat", "valid_from": "2026-03-01", "import_price": 0.30, "export_price": 0.10}
TOU = {k: v for k, v in COST_TOU.items() if k != "valid_to"}  # weekday and weekend periods, open-ended


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
