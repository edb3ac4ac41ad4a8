"""The aggregation rule and DST-aware local-day buckets, without a database."""

from datetime import datetime

import pytest

from dashboard.rollups import (
    GRID_ONLY,
    GRID_PV,
    PLAIN,
    DeviceInfo,
    LocalDayBuckets,
    RollupAccumulator,
    layout_of,
)

METER = DeviceInfo(1, "M", house_id=10, pv_park_id=None, kind="meter", direction="consumption")
PV = DeviceInfo(2, "P", house_id=10, pv_park_id=None, kind="pv", direction="production")
APPLIANCE = DeviceInfo(3, "A", house_id=10, pv_park_id=None, kind="appliance", direction="consumption")
PARK = DeviceInfo(4, "K", house_id=None, pv_park_id=7, kind="pv", direction="production")


def rows_by_key(acc):
    return {(r["resolution"], r["entity_kind"], r["entity_id"]): r for r in acc.records()}


def test_house_consumption_is_meters_only_and_appliances_get_their_own_rollup():
    acc = RollupAccumulator("UTC")
    ts = datetime(2026, 6, 1, 12, 5)
    acc.add(METER, ts, 100.0, 231.0, 0.95)
    acc.add(APPLIANCE, ts, 40.0, 229.0, 0.8)
    acc.add(PV, ts, 70.0, 232.0, 1.0)
    rows = rows_by_key(acc)
    house = rows[("hour", "house", 10)]
    assert (house["consumption_wh"], house["production_wh"]) == (100.0, 70.0)
    # house voltage/PF statistics come from the meter only
    assert (house["voltage_min"], house["voltage_max"], house["voltage_count"]) == (231.0, 231.0, 1)
    assert rows[("hour", "device", 3)]["consumption_wh"] == 40.0
    assert ("hour", "device", 1) not in rows  # meters are their house's rollup already
    assert ("15min", "device", 3) not in rows  # device breakdowns: hour and day only


def test_park_production_goes_to_the_park():
    acc = RollupAccumulator("UTC")
    acc.add(PARK, datetime(2026, 6, 1, 12), 500.0, None, None)
    park = rows_by_key(acc)[("day", "pv_park", 7)]
    assert park["production_wh"] == 500.0 and park["consumption_wh"] == 0.0
    assert park["voltage_min"] is None and park["voltage_count"] == 0


def test_records_are_in_lock_order_primary_key_with_the_fleet_last():
    acc = RollupAccumulator("UTC")
    for minute in (50, 5, 30):
        acc.add(METER, datetime(2026, 6, 1, 12, minute), 1.0, None, None)
        acc.add(PARK, datetime(2026, 6, 1, 12, minute), 1.0, None, None)
    keys = [(r["resolution"], r["entity_kind"], r["entity_id"], r["bucket_start"]) for r in acc.records()]
    fleet = [k for k in keys if k[1] == "all"]
    others = [k for k in keys if k[1] != "all"]
    assert fleet and others
    assert keys == others + fleet  # the hot fleet rows are locked last, just before the commit
    assert others == sorted(others) and fleet == sorted(fleet)


def test_the_fleet_row_sums_every_house_and_park_but_not_appliances():
    acc = RollupAccumulator("UTC")
    ts = datetime(2026, 6, 1, 12, 5)
    acc.add(METER, ts, 100.0, 231.0, 0.95)
    acc.add(APPLIANCE, ts, 40.0, 229.0, 0.8)  # a sub-meter: already inside the house meter's 100 Wh
    acc.add(PV, ts, 70.0, 232.0, 1.0)
    acc.add(PARK, ts, 500.0, None, None)
    other_house = DeviceInfo(5, "M2", house_id=11, pv_park_id=None, kind="meter", direction="consumption")
    acc.add(other_house, ts, 30.0, 200.0, 0.7)
    rows = rows_by_key(acc)
    for resolution in ("15min", "hour", "day"):
        fleet = rows[(resolution, "all", 0)]
        assert (fleet["consumption_wh"], fleet["production_wh"]) == (130.0, 570.0)
        assert (fleet["pf_sum"], fleet["pf_count"]) == (0.95 + 0.7, 2)  # meters' quality, as the houses'
        assert (fleet["voltage_sum"], fleet["voltage_count"]) == (431.0, 2)
        # extremes are never kept for the fleet: they could not be taken back out of it
        assert fleet["voltage_min"] is None and fleet["voltage_max"] is None


@pytest.mark.parametrize(
    ("utc", "expected_midnight_utc"),
    [
        (datetime(2026, 3, 28, 21, 59), datetime(2026, 3, 27, 22, 0)),  # 23:59 local, +02:00
        (datetime(2026, 3, 28, 22, 0), datetime(2026, 3, 28, 22, 0)),  # 00:00 local on the 23-hour day
        (datetime(2026, 3, 29, 20, 59), datetime(2026, 3, 28, 22, 0)),  # 23:59 local, now +03:00
        (datetime(2026, 3, 29, 21, 0), datetime(2026, 3, 29, 21, 0)),
        (datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 24, 21, 0)),  # the 25-hour day
        (datetime(2026, 10, 25, 21, 59), datetime(2026, 10, 24, 21, 0)),
        (datetime(2026, 10, 25, 22, 0), datetime(2026, 10, 25, 22, 0)),
    ],
)
def test_local_day_buckets_are_dst_aware(utc, expected_midnight_utc):
    assert LocalDayBuckets("Europe/Athens")(utc) == expected_midnight_utc


def test_grid_metering_layouts_keep_the_load_and_the_pv():
    """Export meter and inverter: load = import + PV - export, production = PV (the export meter's own rollups
    keep its export); export meter alone: consumption = import, production = export; else as the meters read."""
    devices = [("meter", "consumption"), ("meter", "production"), ("pv", "production")]
    assert layout_of(devices) == GRID_PV and layout_of(devices[:2]) == GRID_ONLY
    assert layout_of([devices[0], devices[2]]) == PLAIN
    ts = datetime(2026, 6, 1, 12, 5)
    for layout, expected in ((GRID_PV, (300.0 + 500.0 - 200.0, 500.0)), (GRID_ONLY, (300.0, 200.0))):
        imp, exp, inv = (DeviceInfo(i, f"D{i}", 10, None, kind, direction, layout)
                         for i, (kind, direction) in enumerate(devices, start=1))  # fmt: skip
        acc = RollupAccumulator("UTC")
        acc.add(imp, ts, 300.0, 230.0, None)
        acc.add(exp, ts, 200.0, 231.0, None)
        if layout == GRID_PV:
            acc.add(inv, ts, 500.0, None, None)
        rows = rows_by_key(acc)
        for entity in (("house", 10), ("all", 0)):
            row = rows[("15min", *entity)]
            assert (row["consumption_wh"], row["production_wh"]) == expected, layout
        assert rows[("15min", "device", 2)]["production_wh"] == 200.0  # its own export, in every layout
        # a correction takes a reading out with the same shares
        acc.add(exp, ts, 200.0, 231.0, None, sign=-1)
        acc.add(imp, ts, 300.0, 230.0, None, sign=-1)
        row = rows_by_key(acc)[("15min", "house", 10)]
        assert (row["consumption_wh"], row["production_wh"]) == (
            (500.0, 500.0) if layout == GRID_PV else (0, 0)
        )
