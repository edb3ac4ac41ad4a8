"""A house's metering layout as stored (the rule: `dashboard.rollups.DeviceInfo.house_share`), and the rollups
kept true when a device write changes what a device contributes: docs/data-rules.md, "Rollups".

A device write (create, edit of its house, park, kind or direction, delete) can change what its own readings
and, through its house's layout, its siblings' readings add to the house's (or park's) rollups and the
fleet's. `LayoutChange` notes every device of the houses and parks concerned before the write, with their
rows locked until the commit (ingests wait: dashboard/ingest.py locks the devices it writes to first), and
after it folds each device whose contribution changed back through the rollups by difference: its stored
readings out under the old rule and in under the new one, in the write's transaction. Readings already pruned
(RAW_RETENTION_DAYS) cannot be folded again: their buckets keep the rule they were stored under.

Voltage extremes cannot be taken out by difference: `refresh_voltage_extremes` reads them again for the rows
readings left, after a device write and after a correction (dashboard/ingest.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from dashboard.rollups import (
    FLEET,
    PLAIN,
    DeviceInfo,
    LocalDayBuckets,
    RollupAccumulator,
    bucket_end,
    floor_15min,
    layout_of,
    upsert_rollups,
)
from dashboard.schema import Device, EnergyRollup, Measurement
from dashboard.settlement import forget_buckets


def with_layouts(devices: Iterable[DeviceInfo]) -> list[DeviceInfo]:
    """These devices with their houses' layouts, found among them (so: give every device of each house)."""
    devices = list(devices)
    layouts = _layouts((d.house_id, d.kind, d.direction) for d in devices if d.house_id is not None)
    return [replace(d, layout=layouts.get(d.house_id, PLAIN)) for d in devices]


def _layouts(devices: Iterable[tuple[int, str, str]]) -> dict[int, str]:
    """The layout of each house among these (house, kind, direction) of its devices."""
    kinds: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for house, kind, direction in devices:
        kinds[house].append((kind, direction))
    return {house: layout_of(found) for house, found in kinds.items()}


def house_layouts(session: Session, house_ids: Iterable[int]) -> dict[int, str]:
    """The metering layout of each of these houses, from its devices as stored."""
    ids = sorted({h for h in house_ids if h is not None})
    if not ids:
        return {}
    found = _layouts(session.execute(
        select(Device.house_id, Device.kind, Device.direction).where(Device.house_id.in_(ids))
    ))  # fmt: skip
    return {house: found.get(house, PLAIN) for house in ids}


def _where(houses: list[int], parks: list[int]):
    return or_(Device.house_id.in_(houses), Device.pv_park_id.in_(parks))


def _contribution(info: DeviceInfo | None) -> tuple | None:
    """What decides a device's share of the rollups (its serial does not)."""
    return None if info is None else (info.house_id, info.pv_park_id, info.kind, info.direction, info.layout)


class LayoutChange:
    """Make one before a device write (it locks the devices of these houses and parks until the commit and
    notes what each contributes), then `fold` after the write is flushed (a deletion: before it, naming the
    device in `gone`, whose readings go with it)."""

    def __init__(self, session: Session, houses: Iterable[int | None], parks: Iterable[int | None]):
        self.houses = sorted({h for h in houses if h is not None})
        self.parks = sorted({p for p in parks if p is not None})
        locked = session.execute(
            select(Device.id).where(_where(self.houses, self.parks)).order_by(Device.id).with_for_update()
        )
        locked.all()
        self.before = self._infos(session)

    def _infos(self, session: Session) -> dict[int, DeviceInfo]:
        d = Device
        rows = session.execute(
            select(d.id, d.serial, d.house_id, d.pv_park_id, d.kind, d.direction).where(
                _where(self.houses, self.parks)
            )
        ).all()
        return {info.id: info for info in with_layouts(DeviceInfo(*r) for r in rows)}

    def fold(self, session: Session, timezone: str, gone: int | None = None) -> list[dict]:
        """Fold the readings of every device whose contribution changed out under the old rule and in under the
        new one. Returns the fleet's rows of the change, for `dashboard.rollups.subtract_from_fleet` as the
        last write before the commit (the fleet's rows are every ingest's hot rows)."""
        after = self._infos(session)
        if gone is not None:
            after = {d.id: d for d in with_layouts(d for i, d in after.items() if i != gone)}
        changed = [i for i in sorted(set(self.before) | set(after))
                   if _contribution(self.before.get(i)) != _contribution(after.get(i))]  # fmt: skip
        if not changed:  # a rename, say
            return []
        acc = RollupAccumulator(timezone)
        emptied: set[tuple] = set()  # entities a device's readings left: their voltage extremes are refreshed
        m = Measurement
        for device_id in changed:
            old, new = self.before.get(device_id), after.get(device_id)
            readings = session.execute(
                select(m.ts, m.energy_wh, m.voltage_v, m.power_factor).where(m.device_id == device_id)
            )
            voltages = False
            for ts, energy_wh, voltage_v, power_factor in readings:
                voltages = voltages or voltage_v is not None
                if old is not None:
                    acc.add(old, ts, energy_wh, voltage_v, power_factor, sign=-1)
                if new is not None:
                    acc.add(new, ts, energy_wh, voltage_v, power_factor)
            if voltages and old is not None and _contribution(old)[:4] != (_contribution(new) or ())[:4]:
                emptied |= {("house", old.house_id), ("pv_park", old.pv_park_id)}
        if gone is not None:  # its readings go with it, before the extremes are read again
            session.execute(delete(m).where(m.device_id == gone))
        records = acc.records()
        upsert_rollups(session, [r for r in records if r["entity_kind"] != FLEET[0]])
        keys = [(r["resolution"], r["entity_kind"], r["entity_id"], r["bucket_start"]) for r in records]
        refresh_voltage_extremes(session, [k for k in keys if k[1:3] in emptied], timezone)
        table = EnergyRollup.__table__
        for kind, ids in (("house", self.houses), ("pv_park", self.parks), ("device", sorted(self.before))):
            # a bucket left without readings is a gap: absent, not zero
            gone = session.execute(
                table.delete()
                .where(
                    table.c.resolution.in_(("15min", "hour", "day")),  # the primary key's order
                    table.c.entity_kind == kind,
                    table.c.entity_id.in_(ids),
                    table.c.readings_count <= 0,
                )
                .returning(table.c.resolution, table.c.entity_id, table.c.bucket_start)
            ).all()
            if kind == "house" and gone:
                forget_buckets(session, [tuple(row) for row in gone], LocalDayBuckets(timezone))
        return [r for r in records if r["entity_kind"] == FLEET[0]]


def refresh_voltage_extremes(session: Session, keys: Iterable[tuple], timezone: str) -> None:
    """Recompute voltage_min/max of these rollup rows (resolution, entity_kind, entity_id, bucket_start)
    from the raw readings, after readings left them (a correction took a reading out: dashboard/ingest.py;
    a device write moved a device's readings elsewhere: `LayoutChange.fold`): extremes cannot be
    subtracted. The fleet keeps no extremes. Which devices count follows `RollupAccumulator.add`: a
    house's meters, a park's inverters, an appliance's own readings.

    Batched: per entity, its readings over the rows' spans are read once (a query per SPANS_PER_QUERY
    merged spans) and the rows updated in one executemany in key order (the lock order of
    `upsert_rollups`); a year of one house is ~44,000 rows, which asked one by one took a query each."""
    wanted: dict[tuple[str, int], set[tuple[str, datetime]]] = defaultdict(set)
    for resolution, entity_kind, entity_id, bucket in keys:
        if entity_kind != FLEET[0]:
            wanted[(entity_kind, entity_id)].add((resolution, bucket))
    day = LocalDayBuckets(timezone)
    rows = []
    for (kind, entity_id), buckets in wanted.items():
        spans = _merged((bucket, bucket_end(res, bucket, day)) for res, bucket in buckets)
        extremes = _voltage_extremes(session, kind, entity_id, spans, day)
        for res, bucket in buckets:
            low, high = extremes.get((res, bucket), (None, None))
            rows.append(
                {"res": res, "kind": kind, "entity": entity_id, "bucket": bucket, "low": low, "high": high}
            )
    rows.sort(key=lambda r: (r["res"], r["kind"], r["entity"], r["bucket"]))
    table = EnergyRollup.__table__
    stmt = (
        update(table)
        .where(table.c.resolution == bindparam("res"), table.c.entity_kind == bindparam("kind"),
               table.c.entity_id == bindparam("entity"), table.c.bucket_start == bindparam("bucket"))
        .values(voltage_min=bindparam("low"), voltage_max=bindparam("high"))
    )  # fmt: skip
    for i in range(0, len(rows), 5000):
        session.execute(stmt, rows[i : i + 5000])


SPANS_PER_QUERY = 200


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """[start, end) spans, the overlapping and touching ones joined, in order."""
    merged: list[list[datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _voltage_extremes(session: Session, kind: str, entity_id: int, spans: list, day: LocalDayBuckets) -> dict:
    """{(resolution, bucket_start): [min, max]} of the voltages of the entity's readings that count, within
    these spans."""
    m, d = Measurement, Device
    if kind == "house":
        owner = (d.house_id == entity_id) & (d.kind == "meter")
    else:
        owner = d.pv_park_id == entity_id if kind == "pv_park" else d.id == entity_id
    extremes: dict[tuple, list[float]] = {}
    for i in range(0, len(spans), SPANS_PER_QUERY):
        within = or_(*(and_(m.ts >= lo, m.ts < hi) for lo, hi in spans[i : i + SPANS_PER_QUERY]))
        readings = session.execute(select(m.ts, m.voltage_v).where(
            m.device_id.in_(select(d.id).where(owner)), m.voltage_v.is_not(None), within
        ))  # fmt: skip
        for ts, volts in readings:
            q = floor_15min(ts)
            for key in (("15min", q), ("hour", q.replace(minute=0)), ("day", day(ts))):
                held = extremes.setdefault(key, [volts, volts])
                held[0], held[1] = min(held[0], volts), max(held[1], volts)
    return extremes
