"""Grid metering on PostgreSQL (dashboard/rollups.py `DeviceInfo.house_share`, dashboard/metering.py): a house
with an export meter and inverters, with an export meter alone, or with neither, fed through
POST /api/v1/measurements, keeps its true load and PV in its house and fleet rollups (and import - export
per interval in its settlement); devices created, moved and deleted through the API fold the house's readings
again; a correction of the export meter adjusts by difference; the household view reads the same numbers.
Every expectation is a from-scratch computation from the raw readings and the devices as they are."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from dashboard.choices import Choice
from dashboard.household import energy_flow
from dashboard.household_periods import Window
from dashboard.live import mean_power, power_buckets, scope_devices
from dashboard.scope import system_scope
from tests.api.test_energy import load
from tests.integration.test_cost_settlement import assert_day_hours_follow_the_hours
from tests.integration.test_interval_settlement import T0, ZONE, item, local_midnight
from tests.integration.test_migration_0004 import engine, migrate_to, rows  # noqa: F401  (fixture)

QUARTERS = 4 * 30  # 30 hours across a local midnight
LAYOUTS = {
    "export meter and inverter": [("IMP", "meter", "consumption"), ("EXP", "meter", "production"),
                                  ("INV", "pv", "production")],
    "export meter alone": [("IMP", "meter", "consumption"), ("EXP", "meter", "production")],
    "no export meter": [("IMP", "meter", "consumption"), ("INV", "pv", "production")],
}  # fmt: skip


def new_house(client, world, name: str, devices) -> int:
    admin = world.headers["admin"]
    r = client.post("/api/v1/houses", json={"name": name}, headers=admin)
    assert r.status_code == 201, r.json
    house = r.json["id"]
    for serial, kind, direction in devices:
        add_device(client, world, house, f"{name}-{serial}", kind, direction)
    return house


def add_device(client, world, house: int, serial: str, kind: str, direction: str) -> int:
    body = {"serial": serial, "name": serial, "kind": kind, "direction": direction, "house_id": house}
    r = client.post("/api/v1/devices", json=body, headers=world.headers["admin"])
    assert r.status_code == 201, r.json
    return r.json["id"]


def true_flows(rng: random.Random) -> dict[str, list[float]]:
    """Per quarter: the load, the PV, and what the import and export meters then read."""
    load_wh = [rng.uniform(50, 400) for _ in range(QUARTERS)]
    pv = [max(0.0, rng.uniform(-300, 600)) for _ in range(QUARTERS)]
    imp = [max(c - p, 0.0) for c, p in zip(load_wh, pv, strict=True)]
    exp = [max(p - c, 0.0) for c, p in zip(load_wh, pv, strict=True)]
    return {"load": load_wh, "pv": pv, "IMP": imp, "EXP": exp, "INV": pv}


def readings(name: str, devices, flows, quarters=range(QUARTERS)) -> list[dict]:
    return [item(f"{name}-{serial}", i, flows[serial][i]) for serial, *_ in devices for i in quarters]


def expected(session) -> dict[tuple, list[float]]:
    """(resolution, entity kind, id, bucket) -> [consumption, production, import, export] of every house and of
    the fleet, from the raw readings: load = import + PV - export where a house has both an export meter and
    an inverter; production = the export where it has an export meter alone; else meters and inverters."""
    devices = session.execute(text("SELECT id, house_id, pv_park_id, kind, direction FROM devices")).all()
    kinds = defaultdict(set)
    for _id, house, _park, kind, direction in devices:
        kinds[house].add((kind, direction))
    share = {}
    for device, house, park, kind, direction in devices:
        export_meter, inverter = (
            (kind, direction) == ("meter", "production"),
            (kind, direction) == ("pv", "production"),
        )
        grid, pv = ("meter", "production") in kinds[house], ("pv", "production") in kinds[house]
        if park is not None:
            share[device] = ("pv_park", park, (0, 1))
        elif (kind, direction) == ("meter", "consumption"):
            share[device] = ("house", house, (1, 0))
        elif export_meter:
            share[device] = ("house", house, (-1, 0) if pv else (0, 1))
        elif inverter:
            share[device] = ("house", house, (1, 1) if grid else (0, 1))
    quarters: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for device, ts, wh in session.execute(text("SELECT device_id, ts, energy_wh FROM measurements")):
        if device in share:
            kind, entity, (c, p) = share[device]
            q = ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)
            quarters[kind, entity, q][0] += c * wh
            quarters[kind, entity, q][1] += p * wh
    return {k: v for k, v in buckets(quarters).items() if k[1] in ("house", "all")}


def buckets(quarters: dict[tuple, list[float]]) -> dict[tuple, list[float]]:
    """(kind, id, quarter) -> [consumption, production] as rollup rows (15-minute, hourly, local daily) with
    the fleet's: (resolution, kind, id, bucket) -> [consumption, production, import, export] (house rows
    settle per interval; the others keep 0)."""
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for (kind, entity, q), (c, p) in quarters.items():
        settled = (max(c - p, 0.0), max(p - c, 0.0)) if kind == "house" else (0.0, 0.0)
        for bucket in (("15min", q), ("hour", q.replace(minute=0)), ("day", local_midnight(q))):
            keys = [(bucket[0], kind, entity, bucket[1])] + (
                [(bucket[0], "all", 0, bucket[1])] if kind != "device" else []
            )
            for key in keys:
                values = out[key]
                values[0] += c
                values[1] += p
                if key[1] == "house":
                    values[2] += settled[0]
                    values[3] += settled[1]
    return out


def stored(session) -> dict[tuple, tuple]:
    rows = session.execute(
        text("SELECT resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, import_wh, "
             "export_wh FROM energy_rollups WHERE entity_kind IN ('house', 'all')")
    ).all()  # fmt: skip
    return {(res, kind, entity, b): (c, p, i, e) for res, kind, entity, b, c, p, i, e in rows}


def assert_rollups_true(factory) -> dict[tuple, tuple]:
    with factory() as s:
        want, have = expected(s), stored(s)
        assert_day_hours_follow_the_hours(s)  # the cost's house_day_hours follows the hourly rows
    assert set(want) == set(have)
    for key, values in want.items():
        assert have[key] == tuple(pytest.approx(v, abs=1e-6) for v in values), key
    return have


def window() -> Window:
    start = T0.replace(tzinfo=None)
    return Window(start, start + timedelta(minutes=15 * QUARTERS), "test", True, ZONE)


def house_sums(have: dict, house: int) -> list[float]:
    rows = [
        v for (res, kind, entity, _b), v in have.items() if (res, kind, entity) == ("15min", "house", house)
    ]
    return [sum(v[i] for v in rows) for i in range(4)]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_keeps_the_true_load_and_pv(client, world, factory, layout):
    devices = LAYOUTS[layout]
    flows = true_flows(random.Random(layout))
    imported_true, exported_true = sum(flows["IMP"]), sum(flows["EXP"])
    if layout == "no export meter":  # its meter reads the whole load
        flows["IMP"] = flows["load"]
    house = new_house(client, world, "G", devices)
    # the meters first, the inverter late and out of order: every reading adds linearly, in any order
    load(client, world, readings("G", [d for d in devices if d[0] != "INV"], flows))
    if ("INV", "pv", "production") in devices:
        load(client, world, readings("G", [devices[-1]], flows, range(QUARTERS - 1, -1, -1)))
    have = assert_rollups_true(factory)
    c, p, imported, exported = house_sums(have, house)
    if layout == "export meter alone":  # the PV is unseen: its export is all that is known of it
        assert (c, p) == (pytest.approx(imported_true), pytest.approx(exported_true))
    else:
        assert (c, p) == (pytest.approx(sum(flows["load"])), pytest.approx(sum(flows["pv"])))
    # settled per interval: consumption - production = import - export, whatever the layout
    assert (imported, exported) == (pytest.approx(imported_true), pytest.approx(exported_true))
    fleet = [
        sum(v[i] for (res, kind, *_), v in have.items() if (res, kind) == ("day", "all")) for i in (0, 1)
    ]
    assert fleet == [pytest.approx(c), pytest.approx(p)]  # the only house with readings
    with factory() as s:  # the household view reads the same numbers
        flow, methods = energy_flow(s, [house], window())
    assert methods[house] == (
        "computed per 15-minute interval" if layout == "no export meter" else "measured"
    )
    assert (flow.consumption, flow.production) == (pytest.approx(c), pytest.approx(p))
    assert (flow.grid_import, flow.grid_export) == (pytest.approx(imported), pytest.approx(exported))
    assert flow.self_consumed == pytest.approx(c - imported)


def test_device_writes_fold_the_house_again(client, world, factory):
    """An inverter added to a house that had only its two meters, moved to another house, then deleted."""
    flows = true_flows(random.Random(7))
    meters = LAYOUTS["export meter alone"]
    house = new_house(client, world, "M", meters)
    load(client, world, readings("M", meters, flows))
    before = house_sums(assert_rollups_true(factory), house)
    assert before[:2] == [pytest.approx(sum(flows["IMP"])), pytest.approx(sum(flows["EXP"]))]
    inverter = add_device(client, world, house, "M-INV", "pv", "production")
    # no PV reading yet: the export meter now counts against the load, no longer as production
    now = house_sums(assert_rollups_true(factory), house)
    assert now[:2] == [pytest.approx(sum(flows["IMP"]) - sum(flows["EXP"])), pytest.approx(0.0)]
    assert now[2:] == pytest.approx(before[2:])  # import and export per interval are the same either way
    load(client, world, readings("M", [("INV", "pv", "production")], flows))
    now = house_sums(assert_rollups_true(factory), house)
    assert now[:2] == [pytest.approx(sum(flows["load"])), pytest.approx(sum(flows["pv"]))]
    # moved to house B (it has a meter, no export meter): both houses are folded again
    r = client.patch(
        f"/api/v1/devices/{inverter}", json={"house_id": world.house2}, headers=world.headers["admin"]
    )
    assert r.status_code == 200, r.json
    have = assert_rollups_true(factory)
    assert house_sums(have, house) == pytest.approx(before)
    assert house_sums(have, world.house2)[1] == pytest.approx(sum(flows["pv"]))
    # the export meter turned into an import meter by mistake, then back: folded both ways
    exp = next(d["id"] for d in client.get("/api/v1/devices", headers=world.headers["admin"]).json["devices"]
               if d["device_id"] == "M-EXP")  # fmt: skip
    for direction in ("consumption", "production"):
        r = client.patch(
            f"/api/v1/devices/{exp}", json={"direction": direction}, headers=world.headers["admin"]
        )
        assert r.status_code == 200, r.json
        assert_rollups_true(factory)
    r = client.delete(f"/api/v1/devices/{inverter}", headers=world.headers["admin"])
    assert r.status_code == 204
    have = assert_rollups_true(factory)  # house B's PV rows are gone with its readings
    assert house_sums(have, world.house2) == [0.0, 0.0, 0.0, 0.0]
    r = client.delete(f"/api/v1/devices/{exp}", headers=world.headers["admin"])
    assert r.status_code == 204
    assert house_sums(assert_rollups_true(factory), house)[:2] == [pytest.approx(sum(flows["IMP"])), 0.0]


def test_a_correction_of_the_export_meter_adjusts_by_difference(client, world, factory):
    devices = LAYOUTS["export meter and inverter"]
    flows = true_flows(random.Random(3))
    house = new_house(client, world, "C", devices)
    load(client, world, readings("C", devices, flows))
    first = assert_rollups_true(factory)
    fixes = [item("C-EXP", i, flows["EXP"][i] + 250.0) for i in range(0, QUARTERS, 5)]
    fixes += [item("C-INV", i, flows["pv"][i] + 100.0) for i in range(2, QUARTERS, 9)]
    r = client.post(
        "/api/v1/measurements?replace=true", json={"measurements": fixes}, headers=world.headers["admin"]
    )
    assert r.status_code == 200, r.json
    after = house_sums(assert_rollups_true(factory), house)
    extra_exp, extra_pv = 250.0 * len(range(0, QUARTERS, 5)), 100.0 * len(range(2, QUARTERS, 9))
    c, p, _i, _e = house_sums(first, house)
    assert after[:2] == [pytest.approx(c - extra_exp + extra_pv), pytest.approx(p + extra_pv)]
    with factory() as s:
        flow, _m = energy_flow(s, [house], window())
    assert flow.grid_export == pytest.approx(sum(flows["EXP"]) + extra_exp)
    assert flow.grid_import == pytest.approx(sum(flows["IMP"]))


def test_a_late_reading_lands_under_the_layout(client, world, factory):
    devices = LAYOUTS["export meter and inverter"]
    flows = true_flows(random.Random(11))
    house = new_house(client, world, "L", devices)
    load(client, world, readings("L", devices, flows, range(4, QUARTERS)))
    load(client, world, readings("L", devices, flows, range(4)))  # the first hour arrives last
    c, p, *_ = house_sums(assert_rollups_true(factory), house)
    assert (c, p) == (pytest.approx(sum(flows["load"])), pytest.approx(sum(flows["pv"])))


def rollup_rows(bind) -> dict[tuple, tuple]:
    got = rows(bind, "SELECT resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, "
                       "import_wh, export_wh FROM energy_rollups")  # fmt: skip
    as_dt = lambda b: b if isinstance(b, datetime) else datetime.fromisoformat(b)  # noqa: E731  (SQLite: text)
    return {(r, k, i, as_dt(b)): values for r, k, i, b, *values in got}


def assert_rows(want: dict, have: dict) -> None:
    assert set(want) == set(have)
    for key, values in want.items():
        assert tuple(have[key]) == tuple(pytest.approx(v, abs=1e-6) for v in values), key


def test_0015_turns_the_old_rollups_of_grid_metered_houses_into_load_and_pv(engine):  # noqa: F811
    """Rollups stored under the old rule (production = PV + export, consumption = import) become the load and
    the PV for a house with an export meter and an inverter, fleet included; the other layouts keep theirs;
    the downgrade gives the old rows back."""
    migrate_to(engine, "0014_interval_settlement")
    flows = true_flows(random.Random(15))
    houses = {"g": LAYOUTS["export meter and inverter"], "o": LAYOUTS["export meter alone"],
              "p": LAYOUTS["no export meter"]}  # fmt: skip
    ids: dict[str, int] = {}
    with engine.begin() as c:
        for name, devices in houses.items():
            c.execute(
                text("INSERT INTO houses (name, created_at) VALUES (:n, '2026-01-01 00:00:00')"), {"n": name}
            )
            ids[name] = c.execute(text("SELECT max(id) FROM houses")).scalar()
            for serial, kind, direction in devices:
                c.execute(text("INSERT INTO devices (serial, name, kind, direction, house_id, created_at) VALUES "
                               "(:s, :s, :k, :d, :h, '2026-01-01 00:00:00')"),
                          {"s": f"{name}-{serial}", "k": kind, "d": direction, "h": ids[name]})  # fmt: skip
        exp_meter = c.execute(text("SELECT id FROM devices WHERE serial = 'g-EXP'")).scalar()
        other_exp = c.execute(text("SELECT id FROM devices WHERE serial = 'o-EXP'")).scalar()
    old, new = {}, {}
    for i in range(QUARTERS):
        q = T0.replace(tzinfo=None) + timedelta(minutes=15 * i)
        imp, exp, pv, load_wh = flows["IMP"][i], flows["EXP"][i], flows["pv"][i], flows["load"][i]
        old["house", ids["g"], q], new["house", ids["g"], q] = [imp, pv + exp], [imp + pv - exp, pv]
        old["house", ids["o"], q] = new["house", ids["o"], q] = [imp, exp]
        old["house", ids["p"], q] = new["house", ids["p"], q] = [load_wh, pv]
        for device in (exp_meter, other_exp):
            old["device", device, q] = new["device", device, q] = [0.0, exp]
    before = buckets(old)
    with engine.begin() as c:
        for (res, kind, entity, bucket), (cons, prod, imported, exported) in before.items():
            c.execute(
                text("INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh, "
                     "production_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count, import_wh, "
                     "export_wh) VALUES (:r, :k, :i, :b, :c, :p, 0, 0, 0, 0, 1, :im, :ex)"),
                {"r": res, "k": kind, "i": entity, "b": bucket, "c": cons, "p": prod, "im": imported, "ex": exported},
            )  # fmt: skip
    migrate_to(engine, "0015_grid_metering")
    after = rollup_rows(engine)
    assert_rows(buckets(new), after)
    day = [
        v for (res, kind, entity, _b), v in after.items() if (res, kind, entity) == ("day", "house", ids["g"])
    ]
    assert sum(v[0] for v in day) == pytest.approx(sum(flows["load"]))
    assert sum(v[2] for v in day) == pytest.approx(sum(flows["IMP"]))  # settled: import - export per interval
    migrate_to(engine, "0014_interval_settlement", down=True)
    assert_rows(before, rollup_rows(engine))


def test_a_deleted_meter_leaves_its_house_voltage_extremes(client, world, factory):
    house = new_house(client, world, "V", LAYOUTS["export meter alone"])
    volts = {"V-IMP": 229.0, "V-EXP": 251.0}
    load(
        client,
        world,
        [item(serial, i, 10.0) | {"voltage_v": v} for serial, v in volts.items() for i in range(4)],
    )
    exp = next(d["id"] for d in client.get("/api/v1/devices", headers=world.headers["admin"]).json["devices"]
               if d["device_id"] == "V-EXP")  # fmt: skip
    query = text("SELECT voltage_min, voltage_max, voltage_count FROM energy_rollups "
                 "WHERE entity_kind = 'house' AND entity_id = :h AND resolution = 'hour'")  # fmt: skip
    with factory() as s:
        assert s.execute(query, {"h": house}).one() == (229.0, 251.0, 8)
    assert client.delete(f"/api/v1/devices/{exp}", headers=world.headers["admin"]).status_code == 204
    with factory() as s:
        assert s.execute(query, {"h": house}).one() == (229.0, 229.0, 4)
    assert_rollups_true(factory)


def test_live_power_follows_the_layout(client, world, factory):
    """The Real-Time and Overview pages sum raw readings with the rollups' shares: load and PV."""
    devices = LAYOUTS["export meter and inverter"]
    flows = true_flows(random.Random(5))
    house = new_house(client, world, "R", devices)
    load(client, world, readings("R", devices, flows, range(4)))
    start = T0.replace(tzinfo=None)
    with factory() as s:
        chosen = scope_devices(s, system_scope(), Choice(house_id=house))
        buckets_ = power_buckets(s, chosen, start, start + timedelta(hours=1), timedelta(minutes=15))
        consumption, production, reporting = mean_power(s, chosen, start, start + timedelta(minutes=15))
    assert [(c, p) for _b, c, p in buckets_] == [
        (pytest.approx(4 * flows["load"][i]), pytest.approx(4 * flows["pv"][i])) for i in range(4)
    ]  # power_w = 4 x the quarter's Wh
    assert (consumption, production, reporting) == (
        pytest.approx(4 * flows["load"][0]),
        pytest.approx(4 * flows["pv"][0]),
        3,
    )
