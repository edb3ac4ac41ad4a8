"""Cost and CO2 on real PostgreSQL, against a hand computation on a small fixture: a time-of-use tariff
across the spring DST change in Europe/Athens (Sunday 2026-03-29, a 23-hour day), a change to a flat
tariff mid-period (Monday 2026-03-30), a standing charge per local day, feed-in, and CO2 from a constant
and from hourly values. Readings go in through the API, so the rollups are the app's own."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard.costs import compute
from dashboard.scope import Scope

ATHENS = ZoneInfo("Europe/Athens")
T0 = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # local midnight starting Saturday 2026-03-28 (EET, +2)
T1 = datetime(2026, 3, 30, 21, 0, tzinfo=UTC)  # local midnight ending Monday 2026-03-30 (EEST, +3)
PV_HOURS_UTC = range(8, 12)  # the PV makes 2 kWh an hour, the house uses 1 kWh: 1 kWh exported
TOU = {
    "kind": "tou",
    "name": "Weekend saver",
    "valid_from": "2026-03-01",
    "valid_to": "2026-03-29",
    "export_price": 0.05,
    "standing_charge_per_day": 0.48,
    "periods": [
        {"days": "weekday", "start": "07:00", "end": "23:00", "import_price": 0.30},
        {"days": "weekday", "start": "23:00", "end": "07:00", "import_price": 0.10},
        {"days": "weekend", "start": "00:00", "end": "08:00", "import_price": 0.08},
        {"days": "weekend", "start": "08:00", "end": "20:00", "import_price": 0.18},
        {"days": "weekend", "start": "20:00", "end": "24:00", "import_price": 0.12},
    ],
}
FLAT = {"kind": "flat", "valid_from": "2026-03-30", "import_price": 0.20, "standing_charge_per_day": 0.24}


def hours():
    t = T0
    while t < T1:
        yield t
        t += timedelta(hours=1)


def post_readings(client, world) -> None:
    items = []
    for hour in hours():
        for q in range(4):
            ts = (hour + timedelta(minutes=15 * q)).isoformat()
            items.append({"device_id": "H1-MAIN", "timestamp": ts, "power_w": 1000.0, "energy_wh": 250.0})
            items.append({"device_id": "H2-MAIN", "timestamp": ts, "power_w": 2000.0, "energy_wh": 500.0})
            if hour.hour in PV_HOURS_UTC:
                items.append({"device_id": "H1-PV", "timestamp": ts, "power_w": 2000.0, "energy_wh": 500.0})
    r = client.post("/api/v1/measurements", json={"measurements": items}, headers=world.headers["admin"])
    assert r.status_code == 200, r.json


def price_by_hand(hour: datetime) -> tuple[float, float, float]:
    """(import price, feed-in price, standing charge per day) at this UTC hour, read off the tariffs above."""
    local = hour.astimezone(ATHENS)
    if local.date() >= date(2026, 3, 30):
        return 0.20, 0.0, 0.24
    kind = "weekend" if local.weekday() >= 5 else "weekday"
    for p in TOU["periods"]:
        start, end = int(p["start"][:2]), int(p["end"][:2])
        inside = start <= local.hour < end if start < end else (local.hour >= start or local.hour < end)
        if p["days"] == kind and inside:
            return p["import_price"], 0.05, 0.48
    raise AssertionError("no period")


def cost_by_hand() -> dict[date, float]:
    """House 1's cost per local day, hour by hour: import 1 kWh outside the PV hours, export 1 kWh in them;
    the standing charge once per local day (23 hours long on the 29th)."""
    out: dict[date, float] = {}
    for hour in hours():
        day = hour.astimezone(ATHENS).date()
        importing = hour.hour not in PV_HOURS_UTC
        price, feed_in, standing = price_by_hand(hour)
        day_hours = 23 if day == date(2026, 3, 29) else 24
        cost = (price if importing else -feed_in) + standing / day_hours
        out[day] = out.get(day, 0.0) + cost
    return out


@pytest.fixture
def priced(client, world):
    post_readings(client, world)
    for body in (TOU, FLAT):
        r = client.post(f"/api/v1/houses/{world.house1}/tariffs", json=body, headers=world.headers["admin"])
        assert r.status_code == 201, r.json
    return world


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def test_the_hand_computation_is_not_trivial():
    """The fixture exercises what it claims: DST shifts the priced hours, and both tariffs apply."""
    by_hand = cost_by_hand()
    assert sorted(by_hand) == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    # On the 28th (+2) 06:00 UTC is 08:00 local (0.18); on the 29th (+3) 05:00 UTC is already 08:00.
    assert price_by_hand(datetime(2026, 3, 28, 5, tzinfo=UTC))[0] == 0.08
    assert price_by_hand(datetime(2026, 3, 29, 5, tzinfo=UTC))[0] == 0.18
    assert len({round(v, 6) for v in by_hand.values()}) == 3


def test_daily_cost_equals_the_hand_computation_across_dst_and_a_tariff_change(client, priced):
    r = client.get(
        "/api/v1/cost",
        query_string={"start": T0.isoformat(), "end": T1.isoformat(), "resolution": "day",
                      "house_id": priced.house1},
        headers=priced.headers["consumer"],
    )  # fmt: skip
    assert r.status_code == 200, r.json
    body = r.json
    assert body["currency"] == "EUR" and body["has_tariff"] and body["houses_without_tariff"] == 0
    by_hand = cost_by_hand()
    got = {datetime.fromisoformat(p["timestamp"]).astimezone(ATHENS).date(): p for p in body["series"]}
    assert set(got) == set(by_hand)
    for day, expected in by_hand.items():
        assert got[day]["cost"] == pytest.approx(expected, abs=1e-9), day
    sunday = got[date(2026, 3, 29)]
    assert sunday["standing_charge"] == pytest.approx(0.48)  # one day's charge, though 23 hours long
    assert sunday["import_kwh"] == pytest.approx(23 - 4) and sunday["export_kwh"] == pytest.approx(4)
    assert sunday["feed_in_credit"] == pytest.approx(4 * 0.05)
    assert got[date(2026, 3, 30)]["feed_in_credit"] is None  # the flat tariff has no feed-in price
    assert body["total"]["cost"] == pytest.approx(sum(by_hand.values()), abs=1e-9)


def test_hourly_cost_adds_up_to_the_daily_and_prices_each_local_hour(client, priced):
    params = {"start": T0.isoformat(), "end": T1.isoformat(), "house_id": priced.house1}
    hourly = client.get("/api/v1/cost", query_string=params, headers=priced.headers["admin"]).json
    daily = client.get("/api/v1/cost", query_string=params | {"resolution": "day"},
                       headers=priced.headers["admin"]).json  # fmt: skip
    assert len(hourly["series"]) == 24 + 23 + 24
    assert hourly["total"]["cost"] == pytest.approx(daily["total"]["cost"], abs=1e-9)
    at = {p["timestamp"]: p for p in hourly["series"]}
    # Sunday 05:00 UTC = 08:00 EEST: 1 kWh at 0.18 plus 0.48 / 23 of the standing charge
    assert at["2026-03-29T05:00:00Z"]["cost"] == pytest.approx(0.18 + 0.48 / 23)
    assert at["2026-03-28T05:00:00Z"]["cost"] == pytest.approx(0.08 + 0.48 / 24)
    assert at["2026-03-29T09:00:00Z"]["cost"] == pytest.approx(-0.05 + 0.48 / 23)  # export hour


def test_the_fleet_sums_houses_with_a_tariff_and_counts_those_without(client, priced):
    params = {"start": T0.isoformat(), "end": T1.isoformat(), "resolution": "day"}
    body = client.get("/api/v1/cost", query_string=params, headers=priced.headers["analyst"]).json
    assert body["houses"] == 2 and body["houses_with_tariff"] == 1 and body["houses_without_tariff"] == 1
    assert body["total"]["cost"] == pytest.approx(sum(cost_by_hand().values()), abs=1e-9)
    assert body["total"]["co2_kg"] is None and not body["has_co2"]  # no intensity stored, none set


def test_co2_with_hourly_values_and_the_constant_as_fallback(client, priced, app, factory):
    values = [{"hour": h.isoformat(), "g_per_kwh": 100.0 + h.hour} for h in hours() if h.day == 28]
    r = client.post("/api/v1/grid-intensity", json={"values": values}, headers=priced.headers["admin"])
    assert r.status_code == 200 and r.json == {"inserted": len(values), "updated": 0}
    # the 28th UTC: house 1 imports 1 kWh in 20 hours, house 2 2 kWh in 24 (exports earn no CO2 credit)
    expected_28 = sum(
        (1.0 * (h.hour not in PV_HOURS_UTC) + 2.0) * (100.0 + h.hour) for h in hours() if h.day == 28
    )
    start, end = naive(T0), naive(T1)
    with factory() as s:
        hourly_only = compute(s, None, start, end, "Europe/Athens", "EUR", None, naive(T1))
        with_constant = compute(s, None, start, end, "Europe/Athens", "EUR", 400.0, naive(T1))
    assert hourly_only.has_co2
    assert hourly_only.total().co2_kg == pytest.approx(expected_28 / 1000.0)
    other_hours_kwh = sum(1.0 * (h.hour not in PV_HOURS_UTC) + 2.0 for h in hours() if h.day != 28)
    assert with_constant.total().co2_kg == pytest.approx((expected_28 + other_hours_kwh * 400.0) / 1000.0)
    # a value sent again replaces the stored one
    r = client.post("/api/v1/grid-intensity", json={"values": values[:1]}, headers=priced.headers["admin"])
    assert r.json == {"inserted": 0, "updated": 1}


def test_nothing_is_computed_without_a_tariff_or_an_intensity(client, world, factory):
    post_readings(client, world)
    with factory() as s:
        assert compute(s, None, naive(T0), naive(T1), "Europe/Athens", "EUR", None, naive(T1)) is None
    r = client.get("/api/v1/cost", query_string={"start": T0.isoformat(), "end": T1.isoformat()},
                   headers=world.headers["admin"])  # fmt: skip
    assert r.status_code == 200 and r.json["total"] is None and r.json["series"] == []


def test_export_rows_carry_the_cost_column_in_full_precision(client, priced):
    params = {"period": "daily", "start": T0.isoformat(), "end": T1.isoformat(), "format": "json",
              "house_id": priced.house1}  # fmt: skip
    body = client.get("/api/v1/exports/summary", query_string=params, headers=priced.headers["consumer"]).json
    assert "cost_eur" in body["columns"] and "co2_kg" not in body["columns"]
    by_hand = cost_by_hand()
    assert {row["period"]: row["cost_eur"] for row in body["rows"]} == pytest.approx(
        {day.isoformat(): cost for day, cost in by_hand.items()}, abs=1e-12
    )
    weekly = client.get("/api/v1/exports/summary", query_string=params | {"period": "weekly", "format": "csv"},
                        headers=priced.headers["consumer"]).get_data(as_text=True).splitlines()  # fmt: skip
    header = weekly[0].split(",")
    cost_at = header.index("cost_eur")
    # 28-29 March are ISO week 13, the 30th week 14
    week13 = float(weekly[1].split(",")[cost_at])
    assert week13 == pytest.approx(by_hand[date(2026, 3, 28)] + by_hand[date(2026, 3, 29)], abs=1e-12)


def test_third_parties_get_no_cost_column_and_no_cost(client, priced):
    params = {"period": "daily", "start": T0.isoformat(), "end": T1.isoformat(), "format": "json"}
    body = client.get("/api/v1/exports/summary", query_string=params, headers=priced.headers["api_key"]).json
    assert "cost_eur" not in body["columns"] and "import_kwh" not in body["columns"]
    r = client.get("/api/v1/cost", query_string=params, headers=priced.headers["api_key"])
    assert r.status_code == 403


def test_compute_refuses_third_party_scopes(factory):
    from dashboard.costs import scope_houses
    from dashboard.errors import Forbidden

    with factory() as s, pytest.raises(Forbidden):
        scope_houses(s, Scope(role="third_party"))


def test_the_embedded_sqlite_computes_the_same_cost(sqlite_app):
    """`make run`'s SQLite has no time zones: the offset CASE and day numbers must give the same answer."""
    from tests.factories import build_world

    world = build_world(sqlite_app)
    client = sqlite_app.server.test_client()
    post_readings(client, world)
    for body in (TOU, FLAT):
        assert (
            client.post(
                f"/api/v1/houses/{world.house1}/tariffs", json=body, headers=world.headers["admin"]
            ).status_code
            == 201
        )
    r = client.get("/api/v1/cost", query_string={"start": T0.isoformat(), "end": T1.isoformat(), "resolution": "day"},
                   headers=world.headers["admin"])  # fmt: skip
    got = {
        datetime.fromisoformat(p["timestamp"]).astimezone(ATHENS).date(): p["cost"] for p in r.json["series"]
    }
    assert got == pytest.approx(cost_by_hand(), abs=1e-9)
