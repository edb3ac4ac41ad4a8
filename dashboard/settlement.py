"""Grid import and export settled per 15-minute interval, kept in the house rollups so that long periods
sum exactly from hourly and daily rows (docs/data-rules.md, "Rollups").

A house's 15-minute row holds import_wh = max(consumption - production, 0) and export_wh = max(production -
consumption, 0) of that interval; its hourly and daily rows hold the sums of their intervals' values, never
max() of their own totals (a sunny noon does not pay for the evening). The value of an interval changes
whenever a reading of the house lands in it (late, re-sent, corrected), so after every rollup upsert the
touched intervals are settled again and the change (new - old) is added to their hour and day: the same
"adjust by difference" rule as the other sums. Only house rows carry these columns (devices, parks and the
fleet keep 0). PV used on site per interval = consumption - import (= min(consumption, production)).
Whatever a house's metering layout, its consumption - production per interval is import - export
(dashboard/rollups.py `DeviceInfo.house_share`: with an export meter, load = import + PV - export), so the
values here are the grid's flows netted within the interval, a lower bound, for every layout; a device write
that changes a layout re-folds the readings through `upsert_rollups`, which settles them again here.

The same changes go to the house's row of `house_day_hours` (dashboard/schema_features.py), by hour slot of
its local day, with a bit per slot whose hourly row exists: the cost prices whole local days from it.

Plain SQL on the caller's session, inside its transaction (from dashboard/ only the table's definition). The
15-minute, hourly and daily rows touched are already locked by the upsert that precedes the call, and a
house's day-hours row is written only by a transaction that holds its daily rollup row, so no new lock
order arises.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String, and_, bindparam, column, select, table, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dashboard.schema_features import DAY_SLOTS, HOUSE_DAY_HOURS

CHUNK = 1000
# the columns used here, typed (SQLite keeps timestamps as text: the type converts them both ways)
ROLLUPS = table(
    "energy_rollups",
    column("resolution", String), column("entity_kind", String), column("entity_id", Integer),
    column("bucket_start", DateTime), column("consumption_wh", Float), column("production_wh", Float),
    column("import_wh", Float), column("export_wh", Float),
)  # fmt: skip


def _day_of(days: list[datetime], quarter: datetime) -> datetime | None:
    """The day bucket (a local midnight) holding `quarter`: the latest of the house's day buckets of the same
    upsert that starts at or before it (each reading's day is upserted with its interval)."""
    best = None
    for day in days:
        if day <= quarter and (best is None or day > best):
            best = day
    return best


def settle_intervals(session: Session, records: list[dict]) -> None:
    """Settle the house 15-minute intervals among these just-upserted rollup records again, and add the
    change of their import and export to the house's hourly and daily rows of the same records."""
    quarters = sorted(
        {(r["entity_id"], r["bucket_start"]) for r in records
         if r["entity_kind"] == "house" and r["resolution"] == "15min"}
    )  # fmt: skip
    if not quarters:
        return
    days: dict[int, list[datetime]] = defaultdict(list)
    for r in records:
        if r["entity_kind"] == "house" and r["resolution"] == "day":
            days[r["entity_id"]].append(r["bucket_start"])
    postgres = session.get_bind().dialect.name == "postgresql"
    changed: list[dict] = []
    deltas: dict[tuple[str, int, datetime], list[float]] = defaultdict(lambda: [0.0, 0.0])
    day_hours = _DayHours()
    for house, bucket in quarters:
        day_hours.seen(house, _day_of(days.get(house, []), bucket), bucket)
    for i in range(0, len(quarters), CHUNK):
        chunk = quarters[i : i + CHUNK]
        r = ROLLUPS.c
        rows = session.execute(
            select(r.entity_id, r.bucket_start, r.consumption_wh, r.production_wh, r.import_wh, r.export_wh).where(
                r.resolution == "15min", r.entity_kind == "house", r.entity_id.in_(sorted({h for h, _ in chunk})),
                r.bucket_start.in_(sorted({b for _, b in chunk})))
        ).all()  # fmt: skip
        wanted = set(chunk)
        for house, bucket, c, p, old_i, old_e in rows:
            if (house, bucket) not in wanted:
                continue
            new_i, new_e = max(c - p, 0.0), max(p - c, 0.0)
            if new_i == old_i and new_e == old_e:
                continue
            changed.append({"id": house, "b": bucket, "i": new_i, "e": new_e})
            day = _day_of(days.get(house, []), bucket)
            day_hours.add(house, day, bucket, new_i - old_i, new_e - old_e)
            for key in (("hour", house, bucket.replace(minute=0)), ("day", house, day)):
                if key[2] is None:
                    continue
                delta = deltas[key]
                delta[0] += new_i - old_i
                delta[1] += new_e - old_e
    day_hours.write(session, postgres)
    if not changed:
        return
    _write(session, postgres, "15min", changed, add=False)
    for resolution in ("hour", "day"):
        rows = [
            {"id": h, "b": b, "i": d[0], "e": d[1]}
            for (res, h, b), d in sorted(deltas.items())
            if res == resolution
        ]
        _write(session, postgres, resolution, rows, add=True)


def _write(session: Session, postgres: bool, resolution: str, rows: list[dict], add: bool) -> None:
    """Set (or with `add`, add to) import_wh and export_wh of these house rows of one resolution."""
    if not rows:
        return
    value_i = "energy_rollups.import_wh + v.i" if add else "v.i"
    value_e = "energy_rollups.export_wh + v.e" if add else "v.e"
    if postgres:  # one statement per chunk: an UPDATE per row would be a round trip per row
        for i in range(0, len(rows), CHUNK * 10):
            part = rows[i : i + CHUNK * 10]
            session.execute(
                text(
                    f"UPDATE energy_rollups SET import_wh = {value_i}, export_wh = {value_e} "
                    "FROM unnest(CAST(:ids AS integer[]), CAST(:bs AS timestamp[]), "
                    "CAST(:is AS double precision[]), CAST(:es AS double precision[])) AS v(id, b, i, e) "
                    "WHERE energy_rollups.resolution = :res AND energy_rollups.entity_kind = 'house' "
                    "AND energy_rollups.entity_id = v.id AND energy_rollups.bucket_start = v.b"
                ),
                {"ids": [r["id"] for r in part], "bs": [r["b"] for r in part], "is": [r["i"] for r in part],
                 "es": [r["e"] for r in part], "res": resolution},
            )  # fmt: skip
        return
    r = ROLLUPS.c
    new_i, new_e = bindparam("i", type_=Float), bindparam("e", type_=Float)
    stmt = (
        update(ROLLUPS)
        .where(and_(r.resolution == resolution, r.entity_kind == "house", r.entity_id == bindparam("id"),
                    r.bucket_start == bindparam("b", type_=DateTime)))
        .values(import_wh=r.import_wh + new_i if add else new_i, export_wh=r.export_wh + new_e if add else new_e)
    )  # fmt: skip
    session.execute(stmt, rows)


def forget_buckets(session: Session, gone: list[tuple[str, int, datetime]], day_of) -> None:
    """House rollup rows (resolution, house, bucket) just deleted as gaps (no readings left: their import and
    export were settled to 0 before): their slots lose their bit in house_day_hours, their days the row.
    `day_of(hour)` is the local midnight of an hour (dashboard/rollups.py LocalDayBuckets)."""
    t = HOUSE_DAY_HOURS
    days = {(house, bucket) for res, house, bucket in gone if res == "day"}
    keep = _DayHours()
    for res, house, bucket in gone:
        if res == "hour" and (house, day_of(bucket)) not in days:
            keep.seen(house, day_of(bucket), bucket)
    key = and_(t.c.house_id == bindparam("h"), t.c.day_start == bindparam("d", type_=DateTime))
    if days:
        session.execute(t.delete().where(key), [{"h": h, "d": d} for h, d in sorted(days)])
    bits = [{"h": h, "d": d, "m": (1 << DAY_SLOTS) - 1 - row[0]} for (h, d), row in sorted(keep.rows.items())]
    if bits:
        session.execute(update(t).where(key).values(hours=t.c.hours.op("&")(bindparam("m"))), bits)


class _DayHours:
    """The changes to house_day_hours of one settlement: per (house, day) the bits of the slots seen and
    the import and export to add per slot; written as one upsert (insert, or OR the bits and add)."""

    def __init__(self):
        self.rows: dict[tuple[int, datetime], list] = {}

    def _row(self, house: int, day: datetime | None, quarter: datetime) -> tuple[list | None, int]:
        slot = -1 if day is None else int((quarter - day).total_seconds() // 3600)
        if not 0 <= slot < DAY_SLOTS:  # no day bucket among the records (never, see _day_of)
            return None, slot
        return self.rows.setdefault((house, day), [0] + [0.0] * (2 * DAY_SLOTS)), slot

    def seen(self, house: int, day: datetime | None, quarter: datetime) -> None:
        row, slot = self._row(house, day, quarter)
        if row is not None:
            row[0] |= 1 << slot

    def add(self, house: int, day: datetime | None, quarter: datetime, d_import: float, d_export: float):
        row, slot = self._row(house, day, quarter)
        if row is not None:
            row[1 + slot] += d_import
            row[1 + DAY_SLOTS + slot] += d_export

    def write(self, session: Session, postgres: bool) -> None:
        if not self.rows:
            return
        t = HOUSE_DAY_HOURS
        names = [c.name for c in t.c][3:]  # i0..i24, e0..e24
        stmt = (postgresql if postgres else sqlite).insert(t)
        set_ = {name: t.c[name] + stmt.excluded[name] for name in names}
        set_["hours"] = t.c.hours.op("|")(stmt.excluded.hours)
        stmt = stmt.on_conflict_do_update(index_elements=["house_id", "day_start"], set_=set_)
        rows = [
            {"house_id": house, "day_start": day, "hours": row[0]} | dict(zip(names, row[1:], strict=True))
            for (house, day), row in sorted(self.rows.items())
        ]
        for i in range(0, len(rows), CHUNK):
            session.execute(stmt, rows[i : i + CHUNK])
