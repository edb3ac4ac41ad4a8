"""`import-csv`: the same validation and idempotency as the API, for files of any size (readings, or with
`--kind weather` one location's weather observations).

The file is validated completely first (every problem reported with its line number), then stored in
one transaction in chunks (PostgreSQL takes the COPY fast path), so a bad file changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from dashboard.errors import ValidationFailed
from dashboard.ingest import IngestResult, ingest_readings
from dashboard.readings import (
    DEFAULT_MAX_POWER_W,
    KNOWN_FIELDS,
    REQUIRED_FIELDS,
    Bounds,
    Reading,
    validate_reading,
)
from dashboard.rollups import FleetHeldBack
from dashboard.scope import Scope

CHUNK = 10_000
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


def read_and_validate(
    path: Path, now_utc=None, progress: bool = True, bounds: Bounds = Bounds(), not_before=None
) -> list[Reading]:
    from datetime import UTC, datetime

    now_utc = now_utc or datetime.now(UTC).replace(tzinfo=None)
    readings: list[Reading] = []
    problems: list[dict] = []
    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        check_header(reader, REQUIRED_FIELDS, KNOWN_FIELDS,
                     "device_id,timestamp,power_w[,energy_wh,voltage_v,current_a,power_factor]")  # fmt: skip
        for line_no, row in enumerate(tqdm(reader, desc="Validating", unit=" rows", disable=not progress), 2):
            if row.get(None):  # more fields than the header names: a shifted or mis-split row
                problems.append({"index": line_no, "field": "",
                                 "message": f"{len(row[None])} more field(s) than the header's columns; "
                                            "fix the row or name the column in the header"})  # fmt: skip
                continue
            reading = validate_reading(line_no, _coerce(row), now_utc, problems, bounds, not_before)
            if reading is not None:
                readings.append(reading)
            if len(problems) >= 100:
                break
    if problems:
        for p in problems:
            p["line"] = p.pop("index")
        raise ValidationFailed("The CSV file has invalid rows; nothing was imported", details=problems)
    return readings


def import_csv(
    factory: sessionmaker[Session],
    scope: Scope,
    path: Path,
    timezone: str,
    max_gap_s: int,
    progress: bool = True,
    max_power_w: float = DEFAULT_MAX_POWER_W,
    retention_days: int | None = None,
) -> IngestResult:
    """Validate the whole file, then ingest it in chunks (one transaction each). With `retention_days`
    (RAW_RETENTION_DAYS) rows older than that are refused, as the API refuses them."""
    from datetime import UTC, datetime, timedelta

    not_before = None
    if retention_days is not None:
        not_before = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=retention_days)
    readings = read_and_validate(
        path, progress=progress, bounds=Bounds(max_power_w, max_gap_s), not_before=not_before
    )
    accepted = duplicates = 0
    fleet = FleetHeldBack()  # the fleet's hot rows: upserted once, last, not held across the chunks
    with factory() as session:
        try:
            bar = tqdm(total=len(readings), desc="Importing", unit=" rows", disable=not progress)
            for i in range(0, len(readings), CHUNK):
                chunk = readings[i : i + CHUNK]
                result = ingest_readings(session, scope, chunk, timezone, max_gap_s, fleet=fleet)
                accepted += result.accepted
                duplicates += result.duplicates
                bar.update(len(chunk))
            bar.close()
            fleet.upsert(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return IngestResult(accepted, duplicates)


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
