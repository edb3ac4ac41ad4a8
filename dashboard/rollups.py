"""Rollups: fold newly stored readings into 15-minute, hourly and daily energy per entity, plus the
pre-summed fleet. The aggregation rule lives here (`DeviceInfo.house_share`, by the house's metering
layout); sums and counts are upserted, never means, so a re-sent, late or out-of-order reading lands right.
Details: docs/data-rules.md, "Rollups".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from dashboard.pgcopy import stage_rows
from dashboard.schema import EnergyRollup
from dashboard.settlement import settle_intervals

FLEET = ("all", 0)  # (entity_kind, entity_id) of the pre-summed fleet: every house and PV park


# A house's metering layout (docs/data-rules.md, "Rollups"), from its devices' kinds and directions:
PLAIN = "plain"  # no export meter: its consumption meters measure the load, its inverters the PV
GRID_PV = "grid+pv"  # an export meter and inverters: the consumption meter measures the import
GRID_ONLY = "grid"  # an export meter, no inverter: the PV is unseen, only its export


def layout_of(devices: Iterable[tuple[str, str]]) -> str:
    """The metering layout of a house with these devices, given as (kind, direction)."""
    devices = list(devices)
    if ("meter", "production") not in devices:
        return PLAIN
    return GRID_PV if ("pv", "production") in devices else GRID_ONLY


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: int
    serial: str
    house_id: int | None
    pv_park_id: int | None
    kind: str
    direction: str
    layout: str = PLAIN  # its house's metering layout (dashboard/metering.py finds it)

    def house_role(self) -> str | None:
        """What this device measures for its house or park: consumption, production or nothing."""
        if self.kind == "appliance":
            return None
        if self.direction == "production":
            return "production"
        return "consumption" if self.kind == "meter" else None

    def house_share(self) -> tuple[int, int]:
        """(to consumption, to production) per Wh of its readings in its house's (or park's) rollups, so
        that they hold the load and the PV whatever the layout: with an export meter and inverters, load =
        import + PV - export (an inverter counts +1 to both, the export meter -1 to consumption); with an
        export meter alone, production = the export and consumption = the import."""
        role = self.house_role()
        if role is None or (self.house_id is None and role != "production"):
            return 0, 0
        if role == "consumption":
            return 1, 0
        if self.house_id is None or self.layout == PLAIN:
            return 0, 1
        export_meter = self.kind == "meter"
        if self.layout == GRID_PV:
            return (-1, 0) if export_meter else (1, 1)
        return 0, 1  # GRID_ONLY: its only production device is the export meter


def floor_15min(ts: datetime) -> datetime:
    return ts.replace(minute=ts.minute - ts.minute % 15, second=0, microsecond=0)


class LocalDayBuckets:
    """Maps a naive-UTC time to the UTC start of its local day (DST-aware), cached per 15 minutes."""

    def __init__(self, timezone: str):
        self.tz = ZoneInfo(timezone)
        self._cache: dict[datetime, datetime] = {}

    def __call__(self, ts: datetime) -> datetime:
        key = floor_15min(ts)
        hit = self._cache.get(key)
        if hit is None:
            local = key.replace(tzinfo=UTC).astimezone(self.tz)
            midnight = datetime(local.year, local.month, local.day, tzinfo=self.tz)
            hit = midnight.astimezone(UTC).replace(tzinfo=None)
            self._cache[key] = hit
        return hit


class RollupAccumulator:
    """Sums readings into rollup rows in memory, ready for one upsert. `fleet=False`: no fleet rows (a
    caller that sums the fleet itself afterwards, as seed_demo does with rebuild_fleet)."""

    def __init__(self, timezone: str, fleet: bool = True):
        self.day_bucket = LocalDayBuckets(timezone)
        self.rows: dict[tuple, list] = {}
        self.fleet = fleet

    def _row(self, key: tuple) -> list:
        row = self.rows.get(key)
        if row is None:
            # consumption, production, v_min, v_max, v_sum, v_count, pf_sum, pf_count, readings
            row = self.rows[key] = [0.0, 0.0, None, None, 0.0, 0, 0.0, 0, 0]
        return row

    def add(
        self,
        device: DeviceInfo,
        ts: datetime,
        energy_wh: float,
        voltage_v: float | None,
        power_factor: float | None,
        sign: int = 1,
    ) -> None:
        """Fold one reading in (`sign=-1`: take a stored reading's sums and counts back out, for a
        correction; extremes cannot be taken out, dashboard/metering.py `refresh_voltage_extremes` recomputes
        them)."""
        q = floor_15min(ts)
        buckets = (("15min", q), ("hour", q.replace(minute=0)), ("day", self.day_bucket(ts)))
        targets: list[tuple[str, int, tuple[str, datetime]]] = []
        role = device.house_role()
        if device.house_id is not None and role is not None:
            targets += [("house", device.house_id, b) for b in buckets]
            if self.fleet:
                targets += [(*FLEET, b) for b in buckets]
        elif device.pv_park_id is not None and role == "production":
            targets += [("pv_park", device.pv_park_id, b) for b in buckets]
            if self.fleet:
                targets += [(*FLEET, b) for b in buckets]
        # Per-device breakdowns are for appliance sub-meters (a meter's or inverter's own rollup would
        # repeat its house's), at hour and day only: half the write cost of full device rollups.
        if device.kind == "appliance":
            targets += [("device", device.id, b) for b in buckets[1:]]
        elif device.kind == "meter" and role == "production" and device.house_id is not None:
            # an export (grid) meter: its own rollups, 15-minute too, tell its export apart from the PV
            # inverters' production in the house's sum (dashboard/household.py)
            targets += [("device", device.id, b) for b in buckets]
        quality = device.kind == "meter" or device.house_id is None
        to_c, to_p = device.house_share()
        own = (0, 1) if role == "production" else (1, 0)  # a device's own rollups: what it measured
        for entity_kind, entity_id, (resolution, bucket) in targets:
            row = self._row((resolution, entity_kind, entity_id, bucket))
            c, p = own if entity_kind == "device" else (to_c, to_p)
            row[0] += sign * c * energy_wh
            row[1] += sign * p * energy_wh
            if voltage_v is not None and (quality or entity_kind == "device"):
                if entity_kind != FLEET[0] and sign > 0:
                    row[2] = voltage_v if row[2] is None else min(row[2], voltage_v)
                    row[3] = voltage_v if row[3] is None else max(row[3], voltage_v)
                row[4] += sign * voltage_v
                row[5] += sign
            if power_factor is not None and (quality or entity_kind == "device"):
                row[6] += sign * power_factor
                row[7] += sign
            row[8] += sign

    def records(self) -> list[dict]:
        """Rows in lock order (see upsert_rollups): by primary key, the fleet's rows last."""
        out = []
        for key in sorted(self.rows, key=lambda k: (k[1] == FLEET[0], k)):
            resolution, entity_kind, entity_id, bucket = key
            c, p, vmin, vmax, vsum, vn, pfsum, pfn, n = self.rows[key]
            out.append(
                {
                    "resolution": resolution,
                    "entity_kind": entity_kind,
                    "entity_id": entity_id,
                    "bucket_start": bucket,
                    "consumption_wh": c,
                    "production_wh": p,
                    "voltage_min": vmin,
                    "voltage_max": vmax,
                    "voltage_sum": vsum,
                    "voltage_count": vn,
                    "pf_sum": pfsum,
                    "pf_count": pfn,
                    "readings_count": n,
                }
            )
        return out


def _least(current, new):
    return case(
        (current.is_(None), new),
        (new.is_(None), current),
        (new < current, new),
        else_=current,
    )


def _greatest(current, new):
    return case(
        (current.is_(None), new),
        (new.is_(None), current),
        (new > current, new),
        else_=current,
    )


ROLLUP_COLUMNS = (
    "resolution",
    "entity_kind",
    "entity_id",
    "bucket_start",
    "consumption_wh",
    "production_wh",
    "voltage_min",
    "voltage_max",
    "voltage_sum",
    "voltage_count",
    "pf_sum",
    "pf_count",
    "readings_count",
)
_ADDITIVE = (
    "consumption_wh",
    "production_wh",
    "voltage_sum",
    "voltage_count",
    "pf_sum",
    "pf_count",
    "readings_count",
)


def _copy_upsert(session: Session, records: list[dict]) -> None:
    """PostgreSQL fast path: stage with COPY, then one INSERT .. ON CONFLICT DO UPDATE.

    Records are unique per key (they come from one accumulator), which ON CONFLICT requires; LEAST and
    GREATEST ignore NULLs in PostgreSQL, which is exactly the min/max rule wanted here.
    """
    cols = ", ".join(ROLLUP_COLUMNS)
    updates = [f"{c} = energy_rollups.{c} + EXCLUDED.{c}" for c in _ADDITIVE] + [
        "voltage_min = LEAST(energy_rollups.voltage_min, EXCLUDED.voltage_min)",
        "voltage_max = GREATEST(energy_rollups.voltage_max, EXCLUDED.voltage_max)",
    ]
    with stage_rows(session, "energy_rollups", ROLLUP_COLUMNS, records) as cur:
        cur.execute(
            f"INSERT INTO energy_rollups ({cols}) SELECT {cols} FROM energy_rollups_stage "
            f"ORDER BY entity_kind = '{FLEET[0]}', resolution, entity_kind, entity_id, bucket_start "
            "ON CONFLICT (resolution, entity_kind, entity_id, bucket_start) DO UPDATE SET "
            + ", ".join(updates)
        )


def upsert_rollups(session: Session, records: Iterable[dict], chunk: int = 2000) -> None:
    """Add records into energy_rollups (insert, or add sums/counts and widen min/max), then settle the house
    intervals they touched again (dashboard/settlement.py: import and export per 15 minutes, summed up).

    Every transaction locks rows in one global order, so concurrent upserts cannot deadlock: by primary
    key, except that the fleet's rows (one per bucket, which every ingest touches) come last, to be held
    for as short a time as possible before the commit.
    """
    records = list(records)
    if not records:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        _copy_upsert(session, records)
        settle_intervals(session, records)
        return
    insert = sqlite.insert
    table = EnergyRollup.__table__
    stmt = insert(table)
    ex = stmt.excluded
    set_ = {name: table.c[name] + ex[name] for name in _ADDITIVE}
    set_["voltage_min"] = _least(table.c.voltage_min, ex.voltage_min)
    set_["voltage_max"] = _greatest(table.c.voltage_max, ex.voltage_max)
    stmt = stmt.on_conflict_do_update(
        index_elements=["resolution", "entity_kind", "entity_id", "bucket_start"], set_=set_
    )
    for i in range(0, len(records), chunk):
        session.execute(stmt, records[i : i + chunk])
    settle_intervals(session, records)


def delete_rollups_of(session: Session, obj) -> list[dict]:
    """Drop the rollups of a house, device or PV park that is being deleted (and of its devices).

    Returns the fleet's share of what was dropped (negative sums), for `subtract_from_fleet` once the rest
    of the deletion is flushed: the fleet's rows are every ingest's hot rows, so they are locked last."""
    from dashboard.schema import Device, House, PVPark

    table = EnergyRollup.__table__
    kinds = {House: "house", Device: "device", PVPark: "pv_park"}
    kind = kinds.get(type(obj))
    if kind is None:
        return []
    parent = Device.house_id if kind == "house" else Device.pv_park_id if kind == "pv_park" else None
    if parent is not None:
        # Wait for the ingests in flight for its devices and keep new ones out until the commit (their raw
        # insert takes a key-share lock on the device row), so the sums deleted below are final.
        session.execute(select(Device.id).where(parent == obj.id).order_by(Device.id).with_for_update())
    own = table.delete().where(table.c.entity_kind == kind, table.c.entity_id == obj.id)
    gone = session.execute(own.returning(table.c.resolution, table.c.bucket_start,
                                         *(table.c[c] for c in _ADDITIVE))).all()  # fmt: skip
    if parent is not None:
        devices = select(Device.id).where(parent == obj.id)
        session.execute(table.delete().where(table.c.entity_kind == "device", table.c.entity_id.in_(devices)))
    if kind == "device":
        return []  # a device's own rollups (appliances) were never part of its house's or the fleet's
    share = [
        {"resolution": resolution, "entity_kind": FLEET[0], "entity_id": FLEET[1], "bucket_start": bucket,
         "voltage_min": None, "voltage_max": None} | {c: -(value or 0) for c, value in zip(_ADDITIVE, sums, strict=True)}
        for resolution, bucket, *sums in gone
    ]  # fmt: skip
    share.sort(key=lambda r: (r["resolution"], r["bucket_start"]))
    return share


def merge_fleet_shares(shares: list[list[dict]]) -> list[dict]:
    """Several deleted entities' fleet shares (from `delete_rollups_of`) as one record per (resolution, bucket),
    in key order, for one `subtract_from_fleet` (one upsert may not touch a row twice)."""
    rows: dict[tuple, dict] = {}
    for share in shares:
        for record in share:
            key = (record["resolution"], record["bucket_start"])
            held = rows.get(key)
            if held is None:
                rows[key] = dict(record)
            else:
                for column in _ADDITIVE:
                    held[column] += record[column]
    return [rows[key] for key in sorted(rows)]


def subtract_from_fleet(session: Session, share: list[dict]) -> None:
    """Take a deleted house's or park's sums (from `delete_rollups_of`) out of the fleet's rollups, then drop
    the buckets left without readings (a gap is absent, not zero). Call it last before the commit."""
    if not share:
        return
    upsert_rollups(session, share)  # adds the negative sums, in key order
    table = EnergyRollup.__table__
    session.execute(
        table.delete().where(
            table.c.entity_kind == FLEET[0], table.c.entity_id == FLEET[1], table.c.readings_count <= 0
        )
    )


def rebuild_fleet(session: Session) -> int:
    """Recompute the fleet's rollups from every house's and park's (after readings were stored by a version
    without them, say). Writers wait meanwhile (PostgreSQL: a table lock that still lets readers read).
    Returns the number of fleet rows. The caller commits."""
    from sqlalchemy import func, insert, literal, null

    table = EnergyRollup.__table__
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE energy_rollups IN SHARE ROW EXCLUSIVE MODE"))
    session.execute(table.delete().where(table.c.entity_kind == FLEET[0]))
    summed = (
        select(table.c.resolution, literal(FLEET[0]), literal(FLEET[1]), table.c.bucket_start,
               *(func.sum(table.c[c]) for c in _ADDITIVE[:2]), null(), null(),
               *(func.sum(table.c[c]) for c in _ADDITIVE[2:]))
        .where(table.c.entity_kind.in_(("house", "pv_park")))
        .group_by(table.c.resolution, table.c.bucket_start)
    )  # fmt: skip
    columns = ["resolution", "entity_kind", "entity_id", "bucket_start", *_ADDITIVE[:2], "voltage_min",
               "voltage_max", *_ADDITIVE[2:]]  # fmt: skip
    session.execute(insert(table).from_select(columns, summed))
    return session.scalar(select(func.count()).select_from(table).where(table.c.entity_kind == FLEET[0]))


class FleetHeldBack:
    """The fleet's rollup rows of several ingests in one transaction (a CSV import's chunks), summed here and
    upserted once at the end, so the hot rows are still locked last and only briefly."""

    def __init__(self):
        self.rows: dict[tuple, dict] = {}

    def add(self, records: list[dict]) -> None:
        for record in records:
            key = (record["resolution"], record["bucket_start"])
            held = self.rows.get(key)
            if held is None:
                self.rows[key] = dict(record)
            else:
                for column in _ADDITIVE:
                    held[column] += record[column]

    def upsert(self, session: Session) -> None:
        upsert_rollups(session, [self.rows[key] for key in sorted(self.rows)])
        self.rows.clear()


def bucket_end(resolution: str, bucket: datetime, day_bucket: LocalDayBuckets) -> datetime:
    """The end of a rollup bucket: 15 minutes, an hour, or the next local midnight (a local day lasts 23 to
    25 hours, so 26 hours after its midnight lies inside the next day)."""
    from datetime import timedelta

    if resolution == "15min":
        return bucket + timedelta(minutes=15)
    if resolution == "hour":
        return bucket + timedelta(hours=1)
    return day_bucket(bucket + timedelta(hours=26))
