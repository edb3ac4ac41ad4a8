"""Ingestion: validated readings -> raw rows + rollups, in the caller's single transaction.

Energy derivation rule (when a reading has no `energy_wh`): `power_w` is the mean power over the
reading's interval, which starts at its timestamp; the interval's length is taken to be the device's
cadence, measured as the gap to the device's previous reading (stored, or earlier in the same batch),
capped at DERIVE_ENERGY_MAX_GAP_S (default 900 s) because a longer gap is an outage, not consumption.
A device's very first reading uses the gap to its next reading in the same batch, or 0 Wh when it has
none. Derived values are flagged (`energy_derived`) and are not revised when later readings arrive.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.errors import ValidationFailed
from dashboard.metering import house_layouts, refresh_voltage_extremes
from dashboard.pgcopy import stage_rows
from dashboard.readings import Bounds, Reading
from dashboard.rollups import (
    FLEET,
    PLAIN,
    DeviceInfo,
    FleetHeldBack,
    RollupAccumulator,
    upsert_rollups,
)
from dashboard.schema import Device, Measurement
from dashboard.scope import Scope

COPY_THRESHOLD = 200  # below this, a multi-row INSERT is as fast as COPY


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def _load_devices(
    session: Session, serials: set[str], exclusive: bool = False
) -> dict[str, tuple[DeviceInfo, float | None]]:
    """Each device, with its house's metering layout, and its own power bound (None: MAX_POWER_W applies).

    The devices are locked first, in id order (`exclusive`: for update, as a correction needs; else key-share,
    the lock the readings' insert takes anyway), and their houses' layouts read after: a device write that
    changes a layout (dashboard/metering.py) holds its house's devices until its commit, so a batch either
    lands before it (and is folded again by it) or sees the new layout."""
    d = Device
    rows = session.execute(
        select(d.id, d.serial, d.house_id, d.pv_park_id, d.kind, d.direction, d.max_power_w)
        .where(d.serial.in_(serials))
        .order_by(d.id)
        .with_for_update(read=not exclusive, key_share=not exclusive)
    ).all()
    layouts = house_layouts(session, (r.house_id for r in rows))
    return {
        r.serial: (DeviceInfo(*r[:6], layout=layouts.get(r.house_id, PLAIN)), r.max_power_w) for r in rows
    }


def _device_bound_problems(readings: list[Reading], bounds: dict[str, float], max_gap_s: int) -> list[dict]:
    """Readings above their device's own max_power_w (MAX_POWER_W was checked at validation)."""
    problems = []
    for index, reading in enumerate(readings):
        limit = bounds.get(reading.device_serial)
        if limit is None:
            continue
        own = Bounds(
            limit,
            max_gap_s,
            source=f"device {reading.device_serial!r}'s max_power_w",
            remedy="check the reading, or raise the device's max_power_w (PATCH /api/v1/devices/{id})",
        )
        values = {"power_w": reading.power_w, "energy_wh": reading.energy_wh, "current_a": reading.current_a}
        problems.extend({"index": index, "field": f, "message": m} for f, m in own.problems(values))
    return problems


def _device_in_scope(scope: Scope, device: DeviceInfo) -> bool:
    if scope.all_houses and scope.per_house_allowed:
        return True
    # Consumers and gateway keys write only to their own houses' devices; PV-park inverters are operator devices.
    return device.house_id is not None and scope.can_see_house(device.house_id)


def _previous_timestamps(session: Session, firsts: dict[int, datetime]) -> dict[int, datetime]:
    """Latest stored reading before each device's first reading of the batch, in one query."""
    if not firsts:
        return {}
    conditions = [
        and_(Measurement.device_id == device_id, Measurement.ts < ts) for device_id, ts in firsts.items()
    ]
    rows = session.execute(
        select(Measurement.device_id, func.max(Measurement.ts))
        .where(or_(*conditions))
        .group_by(Measurement.device_id)
    ).all()
    return {device_id: ts for device_id, ts in rows if ts is not None}


def derive_energy(session: Session, rows: list[dict], max_gap_s: int) -> None:
    """Fill `energy_wh` for rows that lack it (see the module docstring for the rule)."""
    by_device: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_device[row["device_id"]].append(row)
    needs_db = {}
    for device_id, device_rows in by_device.items():
        device_rows.sort(key=lambda r: r["ts"])
        if device_rows[0]["energy_wh"] is None:
            needs_db[device_id] = device_rows[0]["ts"]
    previous = _previous_timestamps(session, needs_db)
    for device_id, device_rows in by_device.items():
        prev_ts = previous.get(device_id)
        for i, row in enumerate(device_rows):
            if row["energy_wh"] is None:
                if prev_ts is not None:
                    gap = (row["ts"] - prev_ts).total_seconds()
                elif i + 1 < len(device_rows):
                    gap = (device_rows[i + 1]["ts"] - row["ts"]).total_seconds()
                else:
                    gap = 0.0
                row["energy_wh"] = row["power_w"] * min(gap, max_gap_s) / 3600.0
                row["energy_derived"] = True
            prev_ts = row["ts"]


MEASUREMENT_COLUMNS = (
    "device_id",
    "ts",
    "power_w",
    "energy_wh",
    "energy_derived",
    "voltage_v",
    "current_a",
    "power_factor",
)


def _copy_insert_new(session: Session, rows: list[dict]) -> set[tuple[int, datetime]]:
    """PostgreSQL fast path: COPY into a stage table, then one INSERT .. ON CONFLICT DO NOTHING."""
    cols = ", ".join(MEASUREMENT_COLUMNS)
    with stage_rows(session, "measurements", MEASUREMENT_COLUMNS, rows) as cur:
        cur.execute(
            f"INSERT INTO measurements ({cols}) SELECT {cols} FROM measurements_stage "
            "ORDER BY device_id, ts ON CONFLICT (device_id, ts) DO NOTHING RETURNING device_id, ts"
        )
        return {(device_id, ts) for device_id, ts in cur.fetchall()}


def insert_new_readings(session: Session, rows: list[dict]) -> set[tuple[int, datetime]]:
    """Insert raw rows, ignoring ones already stored; return the keys that were new."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) >= COPY_THRESHOLD:
        return _copy_insert_new(session, rows)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Measurement.__table__)
        .on_conflict_do_nothing(index_elements=["device_id", "ts"])
        .returning(Measurement.device_id, Measurement.ts)
    )
    inserted: set[tuple[int, datetime]] = set()
    for i in range(0, len(rows), 2000):
        result = session.execute(stmt, rows[i : i + 2000])
        inserted.update((r[0], r[1]) for r in result)
    return inserted


def ingest_readings(
    session: Session,
    scope: Scope,
    readings: list[Reading],
    timezone: str,
    max_gap_s: int = 900,
    fleet: FleetHeldBack | None = None,
) -> IngestResult:
    """Store readings and fold them into rollups. The caller commits (one transaction).

    A caller that ingests several batches in one transaction passes `fleet` and upserts it last
    (FleetHeldBack.upsert), so the fleet's hot rows are locked only just before its commit.
    A device's own `max_power_w` bounds its readings here (MAX_POWER_W bounds them all at validation)."""
    loaded = _load_devices(session, {r.device_serial for r in readings})
    devices = {serial: info for serial, (info, _bound) in loaded.items()}
    own_bounds = {serial: bound for serial, (_info, bound) in loaded.items() if bound is not None}
    problems = []
    for index, reading in enumerate(readings):
        device = devices.get(reading.device_serial)
        if device is None or not _device_in_scope(scope, device):
            # Same message for unknown and out-of-scope, so scope does not leak device existence.
            problems.append(
                {
                    "index": index,
                    "field": "device_id",
                    "message": f"unknown device {reading.device_serial!r}; register it first",
                }
            )
    if not problems and own_bounds:
        problems = _device_bound_problems(readings, own_bounds, max_gap_s)
    if problems:
        raise ValidationFailed(details=problems[:200])

    rows: list[dict] = []
    seen: set[tuple[int, datetime]] = set()
    for reading in readings:
        device = devices[reading.device_serial]
        key = (device.id, reading.ts)
        if key in seen:  # the same reading twice in one batch counts as a duplicate
            continue
        seen.add(key)
        rows.append(
            {
                "device_id": device.id,
                "ts": reading.ts,
                "power_w": reading.power_w,
                "energy_wh": reading.energy_wh,
                "energy_derived": False,
                "voltage_v": reading.voltage_v,
                "current_a": reading.current_a,
                "power_factor": reading.power_factor,
            }
        )
    derive_energy(session, rows, max_gap_s)
    rows.sort(key=lambda r: (r["device_id"], r["ts"]))  # stable lock order across concurrent batches
    inserted = insert_new_readings(session, rows)

    by_id = {d.id: d for d in devices.values()}
    acc = RollupAccumulator(timezone)
    for row in rows:
        if (row["device_id"], row["ts"]) in inserted:
            acc.add(
                by_id[row["device_id"]], row["ts"], row["energy_wh"], row["voltage_v"], row["power_factor"]
            )
    records = acc.records()
    if fleet is not None:
        fleet.add([r for r in records if r["entity_kind"] == FLEET[0]])
        records = [r for r in records if r["entity_kind"] != FLEET[0]]
    upsert_rollups(session, records)
    return IngestResult(accepted=len(inserted), duplicates=len(readings) - len(inserted))


# ---- corrections (POST /api/v1/measurements?replace=true) -----------------------------------------------

VALUE_COLUMNS = MEASUREMENT_COLUMNS[2:]


@dataclass(frozen=True)
class ReplaceResult:
    inserted: int  # readings that were not stored yet
    replaced: int  # stored readings overwritten with other values
    unchanged: int  # stored readings sent again with the same values


def replace_readings(
    session: Session, scope: Scope, readings: list[Reading], timezone: str, max_gap_s: int = 900
) -> ReplaceResult:
    """Store readings, overwriting the stored ones at the same (device, timestamp), and adjust every rollup
    they touched (house, device, park and the fleet; communities read the houses') by the difference: the
    old reading's sums and counts out, the new one's in; voltage extremes recomputed from the raw readings.
    The caller commits (one transaction). Within a batch the last reading of a (device, timestamp) wins."""
    # Keep concurrent ingests of these devices out until the commit (their load takes a key-share lock on
    # the device row), so the stored readings read below are the ones being replaced.
    loaded = _load_devices(session, {r.device_serial for r in readings}, exclusive=True)
    devices = {serial: info for serial, (info, _bound) in loaded.items()}
    problems = [
        {
            "index": i,
            "field": "device_id",
            "message": f"unknown device {r.device_serial!r}; register it first",
        }
        for i, r in enumerate(readings)
        if r.device_serial not in devices or not _device_in_scope(scope, devices[r.device_serial])
    ]
    own_bounds = {serial: bound for serial, (_info, bound) in loaded.items() if bound is not None}
    if not problems and own_bounds:  # a correction is held to the device's own bound too
        problems = _device_bound_problems(readings, own_bounds, max_gap_s)
    if problems:
        raise ValidationFailed(details=problems[:200])
    latest: dict[tuple[int, datetime], dict] = {}
    for reading in readings:
        device = devices[reading.device_serial]
        latest[(device.id, reading.ts)] = {
            "device_id": device.id, "ts": reading.ts, "power_w": reading.power_w,
            "energy_wh": reading.energy_wh, "energy_derived": False, "voltage_v": reading.voltage_v,
            "current_a": reading.current_a, "power_factor": reading.power_factor,
        }  # fmt: skip
    rows = sorted(latest.values(), key=lambda r: (r["device_id"], r["ts"]))
    by_id = {d.id: d for d in devices.values()}
    derive_energy(session, rows, max_gap_s)
    m = Measurement
    stored = {}
    for device_id in sorted({r["device_id"] for r in rows}):
        stamps = [r["ts"] for r in rows if r["device_id"] == device_id]
        for i in range(0, len(stamps), 2000):
            for old in session.execute(
                select(m.device_id, m.ts, *(m.__table__.c[c] for c in VALUE_COLUMNS))
                .where(m.device_id == device_id, m.ts.in_(stamps[i : i + 2000]))
                .with_for_update()
            ):
                stored[(old.device_id, old.ts)] = old
    acc = RollupAccumulator(timezone)
    changed, inserted, replaced = [], 0, 0
    for row in rows:
        old = stored.get((row["device_id"], row["ts"]))
        device = by_id[row["device_id"]]
        if old is not None:
            if all(getattr(old, c) == row[c] for c in VALUE_COLUMNS):
                continue
            acc.add(device, old.ts, old.energy_wh, old.voltage_v, old.power_factor, sign=-1)
            replaced += 1
        else:
            inserted += 1
        acc.add(device, row["ts"], row["energy_wh"], row["voltage_v"], row["power_factor"])
        changed.append(row)
    if changed:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = insert(m.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["device_id", "ts"], set_={c: stmt.excluded[c] for c in VALUE_COLUMNS}
        )
        for i in range(0, len(changed), 2000):
            session.execute(stmt, changed[i : i + 2000])
    records = acc.records()
    upsert_rollups(session, [r for r in records if r["entity_kind"] != FLEET[0]])
    if replaced:
        refresh_voltage_extremes(
            session,
            [(r["resolution"], r["entity_kind"], r["entity_id"], r["bucket_start"]) for r in records],
            timezone,
        )
    upsert_rollups(session, [r for r in records if r["entity_kind"] == FLEET[0]])  # the hot rows last
    return ReplaceResult(inserted, replaced, len(rows) - inserted - replaced)
