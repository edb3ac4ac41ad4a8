"""Validation of posted weather: the contract of `POST /api/v1/weather` and `import-csv --kind weather`.

Pure, like dashboard/readings.py: every problem is collected with its index and field, and any problem
rejects the whole batch before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.config import check_latitude, check_longitude
from dashboard.errors import BatchTooLarge, ValidationFailed
from dashboard.readings import check_fields, check_timestamp, finite_number

REQUIRED_FIELDS = ("timestamp", "temperature_c")
OPTIONAL_NUMBERS = ("irradiance_wm2", "cloud_cover")
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_NUMBERS)
RANGES = {"temperature_c": (-90.0, 60.0), "irradiance_wm2": (0.0, 1500.0), "cloud_cover": (0.0, 100.0)}
UNITS = {"temperature_c": "C", "irradiance_wm2": "W/m2", "cloud_cover": "%"}


@dataclass(frozen=True, slots=True)
class WeatherRow:
    """One hour of weather at a location. `time` is naive UTC, the start of the hour the values describe
    (irradiance: the mean over that hour)."""

    time: datetime
    temperature_c: float | None
    irradiance_wm2: float | None = None
    cloud_cover: float | None = None  # percent of the sky
    is_forecast: bool = False


def check_number(name: str, value: Any) -> float:
    number = finite_number(value)
    low, high = RANGES[name]
    if not low <= number <= high:
        raise ValueError(f"must be within [{low:g}, {high:g}] {UNITS[name]}")
    return number


def validate_coordinates(latitude: Any, longitude: Any) -> tuple[float, float]:
    problems = []
    values = []
    for name, value, check in (
        ("latitude", latitude, check_latitude),
        ("longitude", longitude, check_longitude),
    ):
        try:
            if value is None:
                raise ValueError("is required")
            values.append(check(finite_number(value)))
        except ValueError as exc:
            problems.append({"field": name, "message": str(exc)})
    if problems:
        raise ValidationFailed(details=problems)
    return values[0], values[1]


def _validate_one(index: int, item: Any, now_utc: datetime, problems: list[dict]) -> WeatherRow | None:
    def fail(field: str, message: str) -> None:
        problems.append({"index": index, "field": field, "message": message})

    start = len(problems)
    if not check_fields(item, KNOWN_FIELDS, REQUIRED_FIELDS, "observation", fail):
        return None
    ts = check_timestamp(item, now_utc, fail, "is in the future; observations only")
    numbers: dict[str, float | None] = {}
    for name in ("temperature_c",) + OPTIONAL_NUMBERS:
        if item.get(name) is None:
            numbers[name] = None
            continue
        try:
            numbers[name] = check_number(name, item[name])
        except ValueError as exc:
            fail(name, str(exc))
    if len(problems) > start:
        return None
    return WeatherRow(ts, numbers["temperature_c"], numbers["irradiance_wm2"], numbers["cloud_cover"])


def validate_observations(
    items: Any, max_batch: int, now_utc: datetime | None = None, first_index: int = 0
) -> list[WeatherRow]:
    """Validate a whole batch or raise ValidationFailed / BatchTooLarge listing every problem. A timestamp
    given twice is a problem too: which of the two values is the observation would be a guess."""
    if not isinstance(items, list) or not items:
        raise ValidationFailed(
            details=[{"field": "observations", "message": "must be a non-empty list of observations"}]
        )
    if len(items) > max_batch:
        raise BatchTooLarge(f"{len(items)} observations in one batch; the limit is {max_batch}. Split it.")
    now_utc = now_utc or datetime.now(UTC).replace(tzinfo=None)
    problems: list[dict] = []
    rows, seen = [], {}
    for i, item in enumerate(items, start=first_index):
        row = _validate_one(i, item, now_utc, problems)
        if row is None:
            continue
        if row.time in seen:
            problems.append({"index": i, "field": "timestamp",
                             "message": f"the same time as observation {seen[row.time]}"})  # fmt: skip
        seen.setdefault(row.time, i)
        rows.append(row)
        if len(problems) >= 200:
            break
    if problems:
        raise ValidationFailed(details=problems[:200])
    return rows
