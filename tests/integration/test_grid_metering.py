"""Grid metering on PostgreSQL (dashboard/rollups.py `DeviceInfo.house_share`, dashboard/metering.py): a house
with an export meter and inverters, with an export meter alone, or with neither, fed through
POST /api/v1/measurements, keeps its true load and PV in its house and fleet rollups (and import - export
per interval in its settlement); devices created, moved and deleted through the API fold the house's readings
again; a correction of the export meter adjusts by difference; the household view reads the same numbers.
Every expectation is a from-scratch computation from the raw readings and the devices as they are."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import text

from dashboard.household import energy_flow
from dashboard.household_periods import Window
from tests.api.test_energy import load
from tests.integration.test_interval_settlement import T0, ZONE, item, local_midnight

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
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for (kind, entity, q), (c, p) in quarters.items():
        settled = (max(c - p, 0.0), max(p - c, 0.0)) if kind == "house" else (0.0, 0.0)
        for bucket in (("15min", q), ("hour", q.replace(minute=0)), ("day", local_midnight(q))):
            for key in ((bucket[0], kind, entity, bucket[1]), (bucket[0], "all", 0, bucket[1])):
                values = out[key]
                values[0] += c
                values[1] += p
                if key[1] == "house":
                    values[2] += settled[0]
                    values[3] += settled[1]
    return {k: v for k, v in out.items() if k[1] in ("house", "all")}


def stored(session) -> dict[tuple, tuple]:
    rows = session.execute(
        text("SELECT resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, import_wh, "
             "export_wh FROM energy_rollups WHERE entity_kind IN ('house', 'all')")
    ).all()  # fmt: skip
    return {(res, kind, entity, b): (c, p, i, e) for res, kind, entity, b, c, p, i, e in rows}


def assert_rollups_true(factory) -> dict[tuple, tuple]:
    with factory() as s:
        want, have = expected(s), stored(s)
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
    assert now[2:] == before[2:]  # import and export per interval are the same either way
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
