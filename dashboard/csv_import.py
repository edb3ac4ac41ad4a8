"""`import-csv`: the same validation and idempotency as the API, for files of any size (readings, or with
`--kind weather` one location's weather observations).

Readings come in the native layout or any meter export's columns, units and clock (dashboard/csv_layout.py,
the `Layout` of the command's flags). The file is validated completely first (every problem reported with
its line number), then stored in one transaction in chunks (PostgreSQL takes the COPY fast path), so a bad
file changes nothing; a dry run does the same work and rolls the transaction back.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from dashboard.csv_layout import Clock, Layout, energy_over, offset_text, parse_value, power_and_energy
from dashboard.errors import ValidationFailed
from dashboard.ingest import ingest_readings
from dashboard.readings import DEFAULT_MAX_POWER_W, Bounds, Reading, validate_reading
from dashboard.rollups import FleetHeldBack
from dashboard.scope import Scope

CHUNK = 10_000
MAX_PROBLEMS = 100  # problems listed (all are counted)
NUMERIC = ("power_w", "energy_wh", "voltage_v", "current_a", "power_factor")


def _coerce(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if key is None:
            continue  # extra unnamed columns are reported by the header check
        value = (value or "").strip()
        if key in NUMERIC:
            if value == "":
                out[key] = None
                continue
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value  # validate_reading reports "must be a number"
        else:
            out[key] = value or None
    return out


@contextmanager
def open_csv(path: Path) -> Iterator[TextIO]:
    """The file as UTF-8 text; a missing, unreadable or non-UTF-8 file (or a broken CSV) is a
    ValidationFailed naming it, so the CLI prints one line instead of a traceback."""

    def failed(message: str) -> ValidationFailed:
        return ValidationFailed(
            f"Cannot import {path}: {message}", details=[{"field": "file", "message": message}]
        )

    try:
        fh = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise failed("no such file; check the path") from None
    except IsADirectoryError:
        raise failed("is a directory; give a CSV file") from None
    except PermissionError:
        raise failed("not readable by this user; check its permissions") from None
    try:
        with fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise failed(f"not UTF-8 text ({exc.reason}); save the file as UTF-8") from None
    except csv.Error as exc:
        raise failed(f"not a readable CSV file ({exc})") from None


def check_header(reader: csv.DictReader, required, known, expected: str) -> None:
    """ValidationFailed naming the missing and unknown columns of a CSV file's header."""
    header = set(reader.fieldnames or [])
    missing = [c for c in required if c not in header]
    unknown = sorted(header - known)
    if missing or unknown:
        raise ValidationFailed("Bad CSV header", details=[{"field": "header", "message":
                               f"missing {missing}, unknown {unknown}; expected {expected}"}])  # fmt: skip


@dataclass
class ImportReport:
    """What a readings import read and stored (or, on a dry run, would store)."""

    path: Path
    dry_run: bool = False
    lines: int = 0  # data lines read
    rows: int = 0  # valid readings
    devices: set[str] = field(default_factory=set)
    first: datetime | None = None  # naive UTC, the start of the first reading's interval
    last: datetime | None = None
    energy_wh: float = 0.0  # the readings' energy (correctly rounded sum), derived energy not included
    derived: int = 0  # readings whose energy the import derives from the gap to the previous one
    ignored_columns: list[str] = field(default_factory=list)
    offsets: Counter = field(default_factory=Counter)
    off_zone: int = 0  # timestamps whose offset is not --timezone's at that instant (kept as written)
    timezone: str | None = None
    problems: list[dict] = field(default_factory=list)  # the first MAX_PROBLEMS, each with its line
    problem_count: int = 0
    accepted: int = 0
    duplicates: int = 0

    def text(self) -> str:
        out = [f"{self.path}: {self.lines:,} data lines, {self.rows:,} valid readings of "
               f"{len(self.devices)} device(s)"]  # fmt: skip
        if self.first is not None:
            out.append(f"  time range (UTC, interval starts): {self.first:%Y-%m-%dT%H:%M:%S}Z .. "
                       f"{self.last:%Y-%m-%dT%H:%M:%S}Z")  # fmt: skip
        energy = f"  total energy: {self.energy_wh:,.3f} Wh ({self.energy_wh / 1000:,.6f} kWh)"
        if self.derived:
            energy += f", besides {self.derived:,} readings whose energy is derived at import (no --interval)"
        out.append(energy)
        if self.offsets:
            written = ", ".join(f"{offset_text(o)} x{n:,}" for o, n in self.offsets.most_common())
            out.append(f"  UTC offsets written in the file: {written}")
        if self.off_zone:
            out.append(f"  {self.off_zone:,} timestamps carry an offset that is not {self.timezone}'s at that "
                       "instant (kept as written: the file's clock is not that zone's wall clock)")  # fmt: skip
        if self.ignored_columns:
            out.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        if self.problem_count:
            listed = (
                "" if self.problem_count == len(self.problems) else f", the first {len(self.problems)} listed"
            )
            out.append(f"  problems: {self.problem_count:,}{listed}; nothing was imported")
            out.extend(f"    line {p['line']}, {p['field'] or 'row'}: {p['message']}" for p in self.problems)
        elif self.dry_run:
            out.append(f"Dry run, nothing stored: importing would add {self.accepted:,} readings "
                       f"({self.duplicates:,} already stored)")  # fmt: skip
        else:
            out.append(f"Imported {self.accepted} readings ({self.duplicates} already stored)")
        return "\n".join(out)


def _unit_remedy(layout: Layout) -> str:
    return (f"the {layout.value_column} values were read as {layout.unit} (--unit): give the unit they are in "
            "(a household's meter: W or kW), or, if the device really is this large, raise MAX_POWER_W (and "
            "the device's max_power_w, if it has one)")  # fmt: skip


def read_readings(
    path: Path, layout: Layout = Layout(), bounds: Bounds = Bounds(), not_before=None, now_utc=None,
    progress: bool = True,
) -> tuple[list[Reading], list[int], ImportReport]:  # fmt: skip
    """The file's valid readings, the line of each, and the report (its `problems` name their lines)."""
    now_utc = now_utc or datetime.now(UTC).replace(tzinfo=None)
    report = ImportReport(path, timezone=layout.timezone)
    readings: list[Reading] = []
    lines: list[int] = []
    problems = report.problems
    clock = Clock(layout)
    interval_s = layout.interval_s
    value_column = layout.value_column

    def fail_at(line: int, name: str, message: str) -> None:
        report.problem_count += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append({"line": line, "field": name, "message": message})

    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        report.ignored_columns = layout.check_header(list(reader.fieldnames or []))
        for line, row in enumerate(tqdm(reader, desc="Validating", unit=" rows", disable=not progress), 2):
            report.lines += 1

            def fail(name: str, message: str, line: int = line) -> None:
                fail_at(line, name, message)

            if row.get(None):  # more fields than the header names: a shifted or mis-split row
                fail("", f"{len(row[None])} more field(s) than the header's columns; fix the row or name "
                         "the column in the header")  # fmt: skip
                continue
            value = 0  # the native layout's numbers are checked by validate_reading
            if value_column is None:
                item = _coerce(row)
                if layout.device is not None:
                    item["device_id"] = layout.device
                item["timestamp"] = item.pop(layout.timestamp_column, None)
                if interval_s and item.get("energy_wh") is None and isinstance(item.get("power_w"), float):
                    item["energy_wh"] = energy_over(item["power_w"], interval_s)
            else:
                device = layout.device or (row.get("device_id") or "").strip() or None
                value = parse_value((row.get(value_column) or "").strip(), value_column, fail)
                power_w, energy_wh = (None, None) if value is None else power_and_energy(value, layout.unit,
                                                                                         interval_s)  # fmt: skip
                item = {"device_id": device, "timestamp": (row.get(layout.timestamp_column) or "").strip() or None,
                        "power_w": power_w, "energy_wh": energy_wh}  # fmt: skip
            if item["timestamp"] is not None:
                item["timestamp"] = clock.convert(item["timestamp"], item.get("device_id"), line, fail)
                if item["timestamp"] is None:
                    continue
            if value is None:
                continue
            found: list[dict] = []
            reading = validate_reading(line, item, now_utc, found, bounds, not_before)
            if value_column is not None and any(p["field"] == "power_w" for p in found):
                found = [p for p in found if p["field"] != "energy_wh"]  # one value: its power says it
            for p in found:
                name = p["field"]
                if value_column is not None and name in ("power_w", "energy_wh"):
                    name = f"{value_column} ({layout.unit}) as {name}"
                fail(name, p["message"])
            if reading is not None:
                readings.append(reading)
                lines.append(line)
    clock.finish(fail_at)
    report.offsets, report.off_zone = clock.offsets, clock.off_zone
    report.rows = len(readings)
    if readings:
        report.devices = {r.device_serial for r in readings}
        report.first = min(r.ts for r in readings)
        report.last = max(r.ts for r in readings)
        report.energy_wh = math.fsum(r.energy_wh for r in readings if r.energy_wh is not None)
        report.derived = sum(r.energy_wh is None for r in readings)
    return readings, lines, report


def import_csv(
    factory: sessionmaker[Session],
    scope: Scope,
    path: Path,
    timezone: str,
    max_gap_s: int,
    progress: bool = True,
    max_power_w: float = DEFAULT_MAX_POWER_W,
    retention_days: int | None = None,
    layout: Layout = Layout(),
    dry_run: bool = False,
) -> ImportReport:
    """Validate the whole file, then ingest it in chunks in one transaction (rolled back on a dry run, or
    at any problem). With `retention_days` (RAW_RETENTION_DAYS) rows older than that are refused, as the
    API refuses them. A file with problems raises ValidationFailed; on a dry run the report lists them."""
    layout.check()
    not_before = None
    if retention_days is not None:
        not_before = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
    # With --interval every reading carries its energy: the interval, not the gap, bounds it.
    interval_s = layout.interval_s or max_gap_s
    bounds = Bounds(max_power_w, interval_s)
    if layout.value_column is not None:
        bounds = Bounds(max_power_w, interval_s, remedy=_unit_remedy(layout))
    readings, lines, report = read_readings(path, layout, bounds, not_before, progress=progress)
    report.dry_run = dry_run
    if report.problems:
        if dry_run:
            return report
        raise ValidationFailed(f"The CSV file has invalid rows ({report.problem_count} problems); nothing was "
                               "imported", details=report.problems)  # fmt: skip
    fleet = FleetHeldBack()  # the fleet's hot rows: upserted once, last, not held across the chunks
    with factory() as session:
        try:
            bar = tqdm(total=len(readings), desc="Importing", unit=" rows", disable=not progress)
            for i in range(0, len(readings), CHUNK):
                chunk = readings[i : i + CHUNK]
                try:
                    result = ingest_readings(session, scope, chunk, timezone, interval_s, fleet=fleet)
                except ValidationFailed as exc:  # unknown device, above its own max_power_w: name the lines
                    session.rollback()
                    report.problems[:] = [
                        {"line": lines[i + p.get("index", 0)], "field": p.get("field", ""), "message": p["message"]}
                        for p in exc.details[:MAX_PROBLEMS]
                    ]  # fmt: skip
                    report.problem_count = len(exc.details)
                    if dry_run:
                        return report
                    raise ValidationFailed("The database refuses rows of the CSV file; nothing was imported",
                                           details=report.problems) from None  # fmt: skip
                report.accepted += result.accepted
                report.duplicates += result.duplicates
                bar.update(len(chunk))
            bar.close()
            fleet.upsert(session)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
    return report


WEATHER_HEADER = "timestamp,temperature_c[,irradiance_wm2,cloud_cover]"


def read_weather(path: Path, now_utc=None) -> list:
    """Weather rows of a CSV file, validated as `POST /api/v1/weather` validates (problems by line)."""
    from dashboard.weather.observations import KNOWN_FIELDS, REQUIRED_FIELDS, validate_observations

    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        check_header(reader, REQUIRED_FIELDS, KNOWN_FIELDS, WEATHER_HEADER)
        items = []
        for row in reader:
            item = {}
            for key, value in row.items():
                value = (value or "").strip() if isinstance(value, str) else value
                if key is None or value in ("", None):
                    continue
                try:
                    item[key] = value if key == "timestamp" else float(value)
                except ValueError:
                    item[key] = value  # reported as "must be a number"
            items.append(item)
    if not items:
        raise ValidationFailed("The CSV file has no rows", details=[{"field": "file", "message": "no rows"}])
    try:
        return validate_observations(items, max_batch=len(items), now_utc=now_utc, first_index=2)
    except ValidationFailed as exc:
        for p in exc.details:
            p["line"] = p.pop("index", None)
        raise ValidationFailed(
            "The CSV file has invalid rows; nothing was imported", details=exc.details
        ) from None


def import_weather_csv(factory: sessionmaker[Session], path: Path, latitude: float, longitude: float):
    """Validate the whole file, then store it in one transaction: (location name, inserted, updated)."""
    from dashboard.weather.observations import validate_coordinates
    from dashboard.weather.store import store_observations

    latitude, longitude = validate_coordinates(latitude, longitude)
    rows = read_weather(path)
    with factory() as session:
        try:
            location, inserted, updated = store_observations(session, latitude, longitude, rows)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return location.name, inserted, updated
