"""The household view on PostgreSQL: energy flow per 15-minute interval (PV above consumption and below
it), with and without a grid meter, appliances and "other", comparison windows across a DST change, the
house scope (another's house, third parties), community totals (k-anonymous) and the Overview's user
distribution counting users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from dashboard.household import community_totals, comparison, energy_flow
from dashboard.household_periods import Window, comparison_windows, period_window
from dashboard.schema import PV, Community, Device, House, user_communities
from tests.api.test_energy import load

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FROM, TO = "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"


def quarter(serial, i, energy_wh, start=T0):
    return {"device_id": serial, "timestamp": (start + timedelta(minutes=15 * i)).isoformat(),
            "power_w": energy_wh * 4, "energy_wh": energy_wh}  # fmt: skip


def flow(client, headers, house_id, **params):
    params = params or {"from": FROM, "to": TO}
    return client.get(f"/api/v1/houses/{house_id}/energy-flow", query_string=params, headers=headers)


@pytest.fixture
def house1(client, world):
    """House A, four quarters: PV below, above, equal to consumption, then none; an EV sub-meter."""
    cons, pv = [400.0, 200.0, 300.0, 100.0], [100.0, 500.0, 300.0]
    items = [quarter("H1-MAIN", i, e) for i, e in enumerate(cons)]
    items += [quarter("H1-PV", i, e) for i, e in enumerate(pv)]
    items += [quarter("H1-EV", 0, 150.0), quarter("H1-EV", 1, 50.0)]
    load(client, world, items)
    return world


def test_flow_is_computed_per_interval_never_netted(client, house1):
    r = flow(client, house1.headers["consumer"], house1.house1)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["grid"] == "computed per 15-minute interval"
    assert body["consumption_kwh"] == pytest.approx(1.0) and body["production_kwh"] == pytest.approx(0.9)
    # used on site: min per quarter = 100 + 200 + 300 + 0
    assert body["self_consumed_kwh"] == pytest.approx(0.6)
    assert body["grid_import_kwh"] == pytest.approx(0.4)  # 300 + 0 + 0 + 100; netted it would be 0.1
    assert body["grid_export_kwh"] == pytest.approx(0.3)  # netted it would be 0
    assert body["self_consumption_pct"] == pytest.approx(66.67)
    assert body["self_sufficiency_pct"] == pytest.approx(60.0)
    assert body["appliances"] == [
        {"device_id": body["appliances"][0]["device_id"], "name": "EV charger", "house_id": house1.house1,
         "energy_kwh": pytest.approx(0.2)}
    ]  # fmt: skip
    assert body["other_kwh"] == pytest.approx(0.8) and body["excess_kwh"] == 0


def test_flow_with_a_grid_meter_reads_import_and_export_from_the_meters(client, world, factory):
    with factory() as s:
        house = House(name="House G", created_at=datetime(2026, 1, 1))
        s.add(house)
        s.flush()
        pv = PV(house_id=house.id, name="Roof", capacity_kwp=4.0, created_at=datetime(2026, 1, 1))
        s.add(pv)
        s.flush()
        for serial, kind, direction in (("G-IMP", "meter", "consumption"), ("G-EXP", "meter", "production"),
                                        ("G-PV", "pv", "production")):  # fmt: skip
            s.add(Device(serial=serial, name=serial, kind=kind, direction=direction, house_id=house.id,
                         pv_id=pv.id if kind == "pv" else None, created_at=datetime(2026, 1, 1)))  # fmt: skip
        s.commit()
        house_id = house.id
    # quarter 0: load 400, PV 100 -> import 300; quarter 1: load 200, PV 500 -> export 300
    load(client, world, [quarter("G-IMP", 0, 300.0), quarter("G-IMP", 1, 0.0), quarter("G-EXP", 0, 0.0),
                         quarter("G-EXP", 1, 300.0), quarter("G-PV", 0, 100.0), quarter("G-PV", 1, 500.0)])  # fmt: skip
    body = flow(client, world.headers["admin"], house_id).json
    assert body["grid"] == "measured"
    assert body["grid_import_kwh"] == pytest.approx(0.3) and body["grid_export_kwh"] == pytest.approx(0.3)
    assert body["production_kwh"] == pytest.approx(0.6)  # the inverter, not inverter + export meter
    assert body["self_consumed_kwh"] == pytest.approx(0.3)
    assert body["consumption_kwh"] == pytest.approx(0.6)  # import + PV used on site
    assert body["self_consumption_pct"] == pytest.approx(50.0)
    assert body["self_sufficiency_pct"] == pytest.approx(50.0)


def test_submeters_above_the_main_meter_leave_other_at_zero_and_say_by_how_much(client, world, factory):
    with factory() as s:
        s.add(Device(serial="H2-HP", name="Heat pump", kind="appliance", direction="consumption",
                     house_id=world.house2, created_at=datetime(2026, 1, 1)))  # fmt: skip
        s.commit()
    load(client, world, [quarter("H2-MAIN", 0, 200.0), quarter("H2-HP", 0, 500.0)])
    body = flow(client, world.headers["consumer2"], world.house2).json
    assert body["other_kwh"] == 0 and body["excess_kwh"] == pytest.approx(0.3)
    assert body["submetered_kwh"] == pytest.approx(0.5)


def test_house_scope_on_the_api(client, house1):
    assert flow(client, house1.headers["consumer"], house1.house2).status_code == 404  # not theirs
    assert flow(client, house1.headers["consumer"], 10**9).status_code == 404
    assert flow(client, house1.headers["analyst"], house1.house2).status_code == 200
    for who in ("api_key", "partner"):  # third parties: never a household
        r = flow(client, house1.headers[who], house1.house1)
        assert r.status_code == 403 and r.json["error"] == "Forbidden"
    assert flow(client, house1.headers["anonymous"], house1.house1).status_code == 401
    r = client.get(f"/api/v1/houses/{house1.house2}/comparison", headers=house1.headers["consumer"])
    assert r.status_code == 404
    r = client.get(f"/api/v1/houses/{house1.house1}/comparison", headers=house1.headers["api_key"])
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "decade"}, "period"),
        ({"from": FROM}, "to"),
        ({"from": TO, "to": FROM}, "to"),
        ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"period": "today", "from": FROM, "to": TO}, "period"),
        ({"from": "yesterday", "to": TO}, "from"),
    ],
)
def test_bad_windows_are_a_422_naming_the_field(client, world, params, field):
    r = flow(client, world.headers["consumer"], world.house1, **params)
    assert r.status_code == 422 and r.json["details"][0]["field"] == field


def test_period_windows_follow_local_wall_clock_across_the_spring_dst_change():
    # 2026-03-29: Athens goes from UTC+2 to UTC+3 at 04:00 local; now = 13:07 local (EEST)
    now = datetime(2026, 3, 29, 10, 7)
    today = period_window("today", now, "Europe/Athens", whole_quarters=True)
    assert (today.start, today.end) == (datetime(2026, 3, 28, 22, 0), datetime(2026, 3, 29, 10, 0))
    windows = comparison_windows("today", now, "Europe/Athens")
    # yesterday 00:00-13:00 local (EET): 13 hours, while today so far is 12
    assert (windows["previous"].start, windows["previous"].end) == (
        datetime(2026, 3, 27, 22),
        datetime(2026, 3, 28, 11),
    )
    assert (windows["last_year"].start, windows["last_year"].end) == (
        datetime(2025, 3, 28, 22),
        datetime(2025, 3, 29, 11),
    )
    month = comparison_windows("month", datetime(2026, 3, 31, 8, 0), "Europe/Athens")["previous"]
    assert (month.start, month.end) == (
        datetime(2026, 1, 31, 22),
        datetime(2026, 2, 28, 9),
    )  # the 31st at 11:00 local: the 28th of February at 11:00 (EET)
    year = comparison_windows("year", now, "Europe/Athens")
    assert set(year) == {"previous"}  # last year is the previous year
    yesterday = comparison_windows("yesterday", now, "Europe/Athens")["previous"]
    assert (yesterday.start, yesterday.end) == (datetime(2026, 3, 26, 22), datetime(2026, 3, 27, 22))  # fmt: skip


def test_comparison_over_the_dst_day_compares_the_same_local_time(client, world, factory):
    start = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)  # local midnight of the 28th (EET)
    load(client, world, [quarter("H1-MAIN", i, 100.0, start) for i in range(4 * 36)])
    now = datetime(2026, 3, 29, 10, 7)
    current = period_window("today", now, "Europe/Athens", whole_quarters=True)
    with factory() as s:
        result = comparison(s, [world.house1], current, comparison_windows("today", now, "Europe/Athens"))
    assert result["current"]["consumption_kwh"] == pytest.approx(4.8)  # 12 h x 0.4 kWh
    assert result["previous"]["consumption_kwh"] == pytest.approx(5.2)  # 00:00-13:00 local: 13 h
    assert result["previous"]["consumption_change_pct"] == pytest.approx(-7.7)
    assert (
        result["last_year"]["consumption_kwh"] == 0 and result["last_year"]["consumption_change_pct"] is None
    )


def test_comparison_api_today_against_yesterday_up_to_the_same_time(client, house1):
    from dashboard.clock import utcnow

    now = utcnow()
    first = period_window("yesterday", now, "Europe/Athens").start
    count = int((now - first) / timedelta(minutes=15)) + 1
    base = first.replace(tzinfo=UTC)
    load(client, house1, [quarter("H2-MAIN", i, 100.0, base) for i in range(count)
                          if base + timedelta(minutes=15 * i) <= datetime.now(UTC)])  # fmt: skip
    r = client.get(
        f"/api/v1/houses/{house1.house2}/comparison?period=today", headers=house1.headers["consumer2"]
    )
    assert r.status_code == 200, r.json
    body = r.json
    spans = {}
    for key in ("current", "previous"):
        start, end = (datetime.fromisoformat(body[key][k].replace("Z", "")) for k in ("start", "end"))
        spans[key] = (end - start) / timedelta(minutes=15) * 0.1
        assert body[key]["consumption_kwh"] == pytest.approx(spans[key])
    assert body["current"]["end"][11:16] != ""  # whole quarters
    assert body["previous"]["label"].startswith("Previous day")


def _community_of(factory, houses: int, name: str) -> tuple[int, list[int]]:
    with factory() as s:
        community = Community(name=name, created_at=datetime(2026, 1, 1))
        members = [House(name=f"{name} {i}", created_at=datetime(2026, 1, 1)) for i in range(houses)]
        community.houses.extend(members)
        s.add(community)
        s.flush()
        for h in members:
            s.add(Device(serial=f"{name}-{h.id}", name="Main", kind="meter", direction="consumption",
                         house_id=h.id, created_at=datetime(2026, 1, 1)))  # fmt: skip
        s.commit()
        return community.id, [h.id for h in members]


def test_community_totals_are_totals_only_and_refused_below_k(client, world, factory):
    big, houses = _community_of(factory, 5, "Big")
    load(client, world, [quarter(f"Big-{h}", 0, 100.0 * (n + 1)) for n, h in enumerate(houses)])
    window = Window(T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(hours=1), "x", True)
    with factory() as s:
        totals = community_totals(s, big, "Big", window, k=5)
        assert totals["available"] and totals["consumption_kwh"] == pytest.approx(1.5)
        assert totals["net_kwh"] == pytest.approx(1.5) and totals["production_kwh"] == 0
        assert not {"house_id", "house_ids", "houses_detail"} & set(totals) and "Big 0" not in str(totals)
        small = community_totals(s, world.community, "Solar Street", window, k=5)
        assert small["available"] is False and "fewer than 5 houses" in small["reason"]
        assert "consumption_kwh" not in small
        # five houses, but only some reported in the window: refused as well
        later = Window(window.end, window.end + timedelta(hours=1), "x", True)
        load(client, world, [quarter(f"Big-{houses[0]}", 4, 100.0)])
        thin = community_totals(s, big, "Big", later, k=5)
        assert thin["available"] is False and "reported" in thin["reason"]


def test_user_distribution_counts_users(client, world, factory):
    from callbacks.overview import distribution
    from dashboard.auth import user_scope
    from dashboard.schema import User

    with factory() as s:
        s.execute(
            insert(user_communities).values(user_id=world.users["consumer2"], community_id=world.community)
        )
        s.commit()
    with client.application.app_context():
        from dashboard.context import db

        analyst = user_scope(db(), db().get(User, world.users["analyst"]))
        consumer = user_scope(db(), db().get(User, world.users["consumer"]))
        # consumer: house A has a PV (a prosumer); consumer2: house B has none, linked to the community
        assert distribution(analyst) == {"houses": 2, "consumers": 1, "prosumers": 1, "members": 1}
        assert distribution(consumer) == {"houses": 1, "consumers": 0, "prosumers": 1, "members": 0}


def test_energy_flow_sums_a_consumers_houses_per_house(client, world, factory):
    """Two houses of one owner: one's PV surplus does not cover the other's load (two grid connections)."""
    load(
        client, world, [quarter("H1-MAIN", 0, 0.0), quarter("H1-PV", 0, 400.0), quarter("H2-MAIN", 0, 400.0)]
    )
    window = Window(T0.replace(tzinfo=None), T0.replace(tzinfo=None) + timedelta(minutes=15), "x", True)
    with factory() as s:
        total, methods = energy_flow(s, [world.house1, world.house2], window)
    assert total.grid_import == pytest.approx(400.0) and total.grid_export == pytest.approx(400.0)
    assert total.self_consumed == 0 and set(methods) == {world.house1, world.house2}
