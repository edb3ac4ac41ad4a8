"""POST /api/v1/measurements?replace=true: corrections overwrite stored readings and adjust every rollup they
touched (house, appliance, PV park, the fleet; communities read the houses') by the difference, so the
rollups stay equal to a recomputation from scratch. Real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from dashboard.rollups import DeviceInfo, RollupAccumulator
from dashboard.schema import ApiAccessLog, Device, Measurement

T0 = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # the autumn DST change in Athens: a 25-hour local day


def item(serial, minutes, power, energy=None, voltage=None, pf=None):
    out = {"device_id": serial, "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "power_w": power}
    for name, value in (("energy_wh", energy), ("voltage_v", voltage), ("power_factor", pf)):
        if value is not None:
            out[name] = value
    return out


def post(client, headers, items, query=""):
    return client.post(f"/api/v1/measurements{query}", json={"measurements": items}, headers=headers)


def batch():
    out = []
    for i in range(24):  # six hours of quarter hours
        out.append(item("H1-MAIN", 15 * i, 1000 + 10 * i, 250.5 + i, 228.0 + i % 5, 0.93))
        out.append(item("H1-PV", 15 * i, 400.0, 100.25, 231.0))
        out.append(item("H1-EV", 15 * i, 200.0 + i, 50.0 + i, 229.5, 0.9))
        out.append(item("H2-MAIN", 15 * i, 700.0, 175.0 + i / 4, 226.0, 0.97))
        out.append(item("PARK-INV", 15 * i, 9000.0, 2250.0, 235.0, 1.0))
    return out


def stored_rollups(factory) -> dict:
    with factory() as s:
        rows = s.execute(text(
            "SELECT resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, voltage_min, "
            "voltage_max, voltage_sum, voltage_count, pf_sum, pf_count, readings_count FROM energy_rollups")).all()  # fmt: skip
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def recomputed(factory, timezone) -> dict:
    """The rollups a from-scratch recomputation of every stored reading gives."""
    acc = RollupAccumulator(timezone)
    with factory() as s:
        devices = {d.id: DeviceInfo(d.id, d.serial, d.house_id, d.pv_park_id, d.kind, d.direction)
                   for d in s.scalars(select(Device))}  # fmt: skip
        for m in s.scalars(select(Measurement).order_by(Measurement.device_id, Measurement.ts)):
            acc.add(devices[m.device_id], m.ts, m.energy_wh, m.voltage_v, m.power_factor)
    columns = ("consumption_wh", "production_wh", "voltage_min", "voltage_max", "voltage_sum", "voltage_count",
               "pf_sum", "pf_count", "readings_count")  # fmt: skip
    return {
        (r["resolution"], r["entity_kind"], r["entity_id"], r["bucket_start"]): tuple(r[c] for c in columns)
        for r in acc.records()
    }


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, values in want.items():
        g = got[key]
        assert (g[5], g[7], g[8]) == (values[5], values[7], values[8]), key  # counts exactly
        assert g[2:4] == values[2:4], key  # voltage extremes exactly (recomputed, never subtracted)
        assert g == pytest.approx(values, abs=1e-9), key


def timezone_of(client):
    return client.application.extensions["aggregator"].settings.timezone


def test_replace_adjusts_every_rollup_exactly(client, world, factory):
    admin = world.headers["admin"]
    assert post(client, admin, batch()).json == {"accepted": 120, "duplicates": 0}
    before = stored_rollups(factory)
    corrections = [
        item("H1-MAIN", 30, 5000.0, 1250.0, 200.0, 0.5),  # a new minimum voltage
        item("H1-MAIN", 45, 1000.0, 10.0, 228.0),  # the old maximum (232 V) taken out, pf dropped
        item("H1-PV", 60, 0.0, 0.0),  # production zeroed, its voltage dropped
        item("H1-EV", 75, 3000.0, 750.0, 229.5, 0.9),  # an appliance: its own rollups, not the house's
        item("PARK-INV", 90, 8000.0, 2000.0, 250.0, 1.0),
        item("H2-MAIN", 15 * 30, 600.0, 150.0, 226.0, 0.97),  # not stored yet: inserted
    ]
    r = post(client, admin, corrections, "?replace=true")
    assert r.status_code == 200, r.json
    assert r.json == {"accepted": 6, "inserted": 1, "replaced": 5, "unchanged": 0}
    after = stored_rollups(factory)
    assert after != before
    assert_same(after, recomputed(factory, timezone_of(client)))
    with factory() as s:
        main = s.scalar(select(Device.id).where(Device.serial == "H1-MAIN"))
        row = s.get(Measurement, (main, (T0 + timedelta(minutes=45)).replace(tzinfo=None)))
    assert (row.power_w, row.energy_wh, row.voltage_v, row.power_factor) == (1000.0, 10.0, 228.0, None)
    # the API's series read the corrected sums: house 1's first hour had 250.5+251.5+1250+10 Wh
    hour = client.get("/api/v1/energy", headers=admin, query_string={
        "resolution": "hour", "start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(),
        "house_id": world.house1}).json["series"][0]  # fmt: skip
    assert hour["consumption_kwh"] == pytest.approx((250.5 + 251.5 + 1250.0 + 10.0) / 1000)


def test_resending_the_same_values_changes_nothing(client, world, factory):
    admin = world.headers["admin"]
    post(client, admin, batch())
    before = stored_rollups(factory)
    r = post(client, admin, batch()[:10], "?replace=true")
    assert r.json == {"accepted": 0, "inserted": 0, "replaced": 0, "unchanged": 10}
    assert stored_rollups(factory) == before


def test_within_one_batch_the_last_reading_wins(client, world, factory):
    admin = world.headers["admin"]
    post(client, admin, batch())
    twice = [item("H2-MAIN", 0, 1.0, 1.0), item("H2-MAIN", 0, 2.0, 2.0)]
    assert post(client, admin, twice, "?replace=true").json["replaced"] == 1
    with factory() as s:
        device = s.scalar(select(Device.id).where(Device.serial == "H2-MAIN"))
        assert s.get(Measurement, (device, T0.replace(tzinfo=None))).energy_wh == 2.0
    assert_same(stored_rollups(factory), recomputed(factory, timezone_of(client)))


def test_without_replace_ingestion_is_unchanged(client, world, factory):
    admin = world.headers["admin"]
    post(client, admin, batch())
    before = stored_rollups(factory)
    r = post(client, admin, [item("H1-MAIN", 0, 9999.0, 9999.0)])
    assert r.json == {"accepted": 0, "duplicates": 1}
    r = post(client, admin, [item("H1-MAIN", 0, 9999.0, 9999.0)], "?replace=false")
    assert r.json == {"accepted": 0, "duplicates": 1}
    assert stored_rollups(factory) == before


def test_only_admins_may_replace_and_bad_input_changes_nothing(client, world, factory):
    admin = world.headers["admin"]
    post(client, admin, batch())
    before = stored_rollups(factory)
    fix = [item("H1-MAIN", 0, 1.0, 1.0)]
    r = post(client, world.headers["consumer"], fix, "?replace=true")  # the house's own consumer
    assert r.status_code == 403 and "admins" in r.json["detail"]
    assert post(client, world.headers["analyst"], fix, "?replace=true").status_code == 403
    assert post(client, world.headers["api_key"], fix, "?replace=true").status_code == 403
    assert post(client, {}, fix, "?replace=true").status_code == 401
    r = post(client, admin, fix, "?replace=perhaps")
    assert r.status_code == 422 and r.json["details"][0]["field"] == "replace"
    r = post(client, admin, fix + [item("NO-SUCH", 0, 1.0)], "?replace=true")  # all or nothing
    assert r.status_code == 422 and r.json["details"][0]["index"] == 1
    r = post(client, admin, [item("H1-MAIN", 0, -5.0)], "?replace=true")
    assert r.status_code == 422
    assert stored_rollups(factory) == before


def test_the_access_log_records_a_correction(client, world, factory):
    admin = world.headers["admin"]
    post(client, admin, batch())
    post(client, admin, [item("H1-MAIN", 0, 1.0, 1.0), item("H1-MAIN", 6000, 1.0, 1.0)], "?replace=true")
    with factory() as s:
        entry = s.scalars(select(ApiAccessLog).order_by(ApiAccessLog.id.desc()).limit(1)).one()
        total = s.scalar(select(func.count()).select_from(ApiAccessLog))
    assert total == 2
    assert (entry.method, entry.route, entry.status) == ("POST", "/api/v1/measurements", 200)
    assert entry.user_id == world.users["admin"]
    assert entry.target == "replace=true replace: 1 replaced, 1 inserted"


def test_a_correction_is_held_to_the_devices_own_bound(client, world, factory):
    """A correction goes through the same plausibility as a new reading, the device's max_power_w included:
    refused (422 naming the bound) and nothing changed."""
    admin = world.headers["admin"]
    assert post(client, admin, batch()).status_code == 200
    with factory() as s:
        s.execute(text("UPDATE devices SET max_power_w = 3000 WHERE serial = 'H1-MAIN'"))
        s.commit()
    before = stored_rollups(factory)
    r = post(client, admin, [item("H1-MAIN", 30, 5000.0, 1250.0)], "?replace=true")
    assert r.status_code == 422, r.json
    assert r.json["details"][0]["field"] == "power_w" and "max_power_w" in r.json["details"][0]["message"]
    assert stored_rollups(factory) == before


def test_readings_past_the_raw_retention_are_refused(client, world, factory, app):
    """With RAW_RETENTION_DAYS their raw rows are gone and their rollups kept: storing one again (new or as a
    correction) would count it twice, so it is refused."""
    from dataclasses import replace as with_fields

    services = app.server.extensions["aggregator"]
    old = services.settings
    services.settings = with_fields(old, raw_retention_days=30)
    try:
        for query in ("", "?replace=true"):
            r = post(
                client, world.headers["admin"], [item("H1-MAIN", 0, 1000.0, 250.0)], query
            )  # T0: 2026-10-25
            assert r.status_code == 422 and "RAW_RETENTION_DAYS" in r.json["details"][0]["message"], r.json
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Measurement)) == 0
    finally:
        services.settings = old


def test_one_batched_refresh_reads_every_kind_of_rows_extremes_again(client, world, factory):
    """dashboard/metering.py `refresh_voltage_extremes`, which serves a correction and a device write: rows of
    houses, an appliance and a park, at every resolution, in spans days apart (the 25-hour DST day and a
    day later in the week), read again from the readings; the rows not asked for are left as they are."""
    from dashboard.metering import refresh_voltage_extremes

    later = [item(i["device_id"], int(i["timestamp"][11:13]) * 60 + 4 * 24 * 60, 500.0, 1.0, 240.0 - n % 7)
             for n, i in enumerate(batch()) if i["timestamp"][14:16] == "00"]  # fmt: skip
    assert post(client, world.headers["admin"], batch() + later).status_code == 200
    want = recomputed(factory, timezone_of(client))
    keys = sorted(k for k in want if k[1] != "all")
    asked, untouched = keys[::2], keys[1::2]
    with factory() as s:
        s.execute(
            text("UPDATE energy_rollups SET voltage_min = 1, voltage_max = 999 WHERE entity_kind <> 'all'")
        )
        refresh_voltage_extremes(
            s, [*asked, *[(*k[:3], k[3]) for k in asked[:3]]], timezone_of(client)
        )  # repeats
        s.commit()
    got = stored_rollups(factory)
    assert {k[1] for k in asked} == {"house", "device", "pv_park"} and {k[0] for k in asked} == {
        "15min",
        "hour",
        "day",
    }
    for key in asked:
        assert got[key][2:4] == want[key][2:4], key
    assert all(got[key][2:4] == (1, 999) for key in untouched)
    with factory() as s:
        refresh_voltage_extremes(s, untouched + [("day", "all", 0, keys[0][3])], timezone_of(client))
        s.commit()
    assert_same(stored_rollups(factory), want)
