"""Validation of incoming readings: the contract of `POST /api/v1/measurements` and `import-csv`.

Pure functions (no database) so the API and the CSV importer reject exactly the same things. A batch
is all or nothing: every problem is collected with its index and field, and any problem rejects the
whole batch before anything is written.

Plausibility (a reading wrong by orders of magnitude would poison every rollup it touches, fleet totals
included): times from 1990 on, power up to MAX_POWER_W (`Bounds`), energy up to that power over the
reading's interval (at most DERIVE_ENERGY_MAX_GAP_S, as dashboard/ingest.py derives it), current up to that
power at 100 V. A device's own, lower `max_power_w` is checked at ingestion, where the device is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard.errors import BatchTooLarge, ValidationFailed
from dashboard.untrusted import text_problem

FUTURE_TOLERANCE = timedelta(minutes=5)
# Any time the API takes (readings, query ranges, as_of) lies in [TIME_MIN, TIME_MAX): wider ranges cannot
# be meant, and pandas (datetime64[ns], 1677-2262) and date arithmetic overflow near years 1 and 9999.
TIME_MIN, TIME_MAX = datetime(1900, 1, 1), datetime(2200, 1, 1)
# A smart-meter reading from before 1990 is a device clock reset (epoch 0, 1980 GPS epoch), not data.
EARLIEST_READING = datetime(1990, 1, 1)
DEFAULT_MAX_POWER_W = 1e8  # MAX_POWER_W's default: 100 MW, far above any house or PV park connection
DEFAULT_INTERVAL_S = 900  # a reading's interval when nothing says otherwise (DERIVE_ENERGY_MAX_GAP_S)
# current_a is bounded by the power bound at this voltage: a generous floor for a low-voltage meter
# (230 V nominal), so a real reading at a sag or a low power factor still passes.
CURRENT_BOUND_VOLTAGE = 100.0
REQUIRED_FIELDS = ("device_id", "timestamp", "power_w")
OPTIONAL_NUMBERS = ("energy_wh", "voltage_v", "current_a", "power_factor")
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_NUMBERS)


@dataclass(slots=True)
class Reading:
    """One validated reading. `ts` is naive UTC and labels the start of the reading's interval."""

    device_serial: str
    ts: datetime
    power_w: float
    energy_wh: float | None
    voltage_v: float | None
    current_a: float | None
    power_factor: float | None


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 with an explicit offset -> naive UTC within [TIME_MIN, TIME_MAX). Raises ValueError with a
    readable message."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string with a UTC offset")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not ISO 8601 (e.g. 2025-07-17T01:00:00+00:00)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a UTC offset such as +00:00 or Z; naive times are ambiguous")
    try:
        utc = parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # 9999-12-31T23:45-14:00 or 0001-01-01T00:00+05:00 leave datetime's range in UTC
        utc = None
    if utc is None or not TIME_MIN <= utc < TIME_MAX:
        raise ValueError(
            f"{value.strip()[:40]!r} is out of range: give a time from {TIME_MIN:%Y-%m-%d} to before {TIME_MAX:%Y-%m-%d} (UTC)"
        )
    return utc


def finite_number(value: Any) -> float:
    # bool is an int in Python; `true` is not a power reading.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer literal too large for a float (e.g. 400 digits)
        raise ValueError("must be a finite number (this one is too large for a float)") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number (no NaN or infinity)")
    return number


def _check_range(name: str, value: float) -> None:
    if name in ("power_w", "energy_wh", "current_a") and value < 0:
        hint = " (production devices report produced power as positive)" if name == "power_w" else ""
        raise ValueError(f"must be >= 0{hint}")
    if name == "voltage_v" and not 0 <= value <= 1000:
        raise ValueError("must be within [0, 1000] V")
    if name == "power_factor" and not -1 <= value <= 1:
        raise ValueError("must be within [-1, 1]")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Plausibility bounds of one reading: power, energy over the reading's interval, current."""

    max_power_w: float = DEFAULT_MAX_POWER_W
    interval_s: float = DEFAULT_INTERVAL_S
    source: str = "MAX_POWER_W"  # where max_power_w comes from, named in the error
    remedy: str = "check the device's units (W and Wh, not mW) or, for a larger plant, raise MAX_POWER_W"

    def problems(self, values: dict[str, float | None]) -> list[tuple[str, str]]:
        """(field, message) for each of power_w, energy_wh, current_a above its bound."""
        limits = {
            "power_w": (self.max_power_w, "W", self.source),
            "energy_wh": (
                self.max_power_w * self.interval_s / 3600.0,
                "Wh",
                f"{self.source} over the reading's interval of at most {self.interval_s:g} s",
            ),
            "current_a": (
                self.max_power_w / CURRENT_BOUND_VOLTAGE,
                "A",
                f"{self.source} at {CURRENT_BOUND_VOLTAGE:g} V",
            ),
        }
        found = []
        for name, (limit, unit, basis) in limits.items():
            value = values.get(name)
            if value is not None and value > limit:
                found.append(
                    (name, f"{value:g} {unit} is above the plausibility bound of {limit:g} {unit} "
                           f"({basis}); {self.remedy}")
                )  # fmt: skip
        return found


def check_fields(item: Any, known: set[str], required: tuple[str, ...], noun: str, fail) -> bool:
    """Report (through `fail(field, message)`) an item that is not an object, unknown fields and missing
    required ones; False when the item is not an object at all."""
    if not isinstance(item, dict):
        fail("", f"each {noun} must be a JSON object")
        return False
    for name in sorted(set(item) - known):
        fail(name, f"unknown field; expected {', '.join(sorted(known))}")
    for name in required:
        if item.get(name) is None:
            fail(name, "is required")
    return True


def check_timestamp(item: dict, now_utc: datetime, fail, future_message: str) -> datetime | None:
    """The item's timestamp as naive UTC, or None after reporting (through `fail`) why it is unusable."""
    if item.get("timestamp") is None:
        return None
    try:
        ts = parse_timestamp(item["timestamp"])
    except ValueError as exc:
        fail("timestamp", str(exc))
        return None
    if ts > now_utc + FUTURE_TOLERANCE:
        fail("timestamp", future_message)
    return ts


def validate_reading(
    index: int, item: Any, now_utc: datetime, problems: list[dict], bounds: Bounds = Bounds(),
    not_before: datetime | None = None,
) -> Reading | None:  # fmt: skip
    """One reading checked against the contract and the global plausibility `bounds` (a device's own
    bound is checked at ingestion, dashboard/ingest.py, where the device is known)."""

    def fail(field: str, message: str) -> None:
        problems.append({"index": index, "field": field, "message": message})

    start = len(problems)
    if not check_fields(item, KNOWN_FIELDS, REQUIRED_FIELDS, "measurement", fail):
        return None

    serial = item.get("device_id")
    if serial is not None and (not isinstance(serial, str) or not serial.strip() or len(serial) > 120):
        fail("device_id", "must be a non-empty string of at most 120 characters")
    elif isinstance(serial, str) and text_problem(serial):
        fail("device_id", text_problem(serial))

    ts = check_timestamp(item, now_utc, fail, "is more than 5 minutes in the future; check the device clock")
    if ts is not None and ts < EARLIEST_READING:
        fail("timestamp", f"is before {EARLIEST_READING:%Y-%m-%d}, which is implausible for a reading; "
                          "check the device clock")  # fmt: skip
    elif ts is not None and not_before is not None and ts < not_before:
        fail("timestamp", f"is before {not_before:%Y-%m-%d %H:%M} UTC, past RAW_RETENTION_DAYS: raw readings "
                          "that old were dropped and only their rollups kept, so storing it again would "
                          "count it twice")  # fmt: skip

    numbers: dict[str, float | None] = {}
    for name in ("power_w",) + OPTIONAL_NUMBERS:
        value = item.get(name)
        if value is None:
            numbers[name] = None
            continue
        try:
            numbers[name] = finite_number(value)
            _check_range(name, numbers[name])
        except ValueError as exc:
            fail(name, str(exc))
    for name, message in bounds.problems(numbers):
        fail(name, message)

    if len(problems) > start:
        return None
    return Reading(
        device_serial=serial,
        ts=ts,
        power_w=numbers["power_w"],
        energy_wh=numbers["energy_wh"],
        voltage_v=numbers["voltage_v"],
        current_a=numbers["current_a"],
        power_factor=numbers["power_factor"],
    )


def validate_batch(
    items: Any, max_batch: int, now_utc: datetime | None = None, bounds: Bounds = Bounds(),
    retention_days: int | None = None,
) -> list[Reading]:  # fmt: skip
    """Validate a whole batch or raise ValidationFailed / BatchTooLarge listing every problem. With
    `retention_days` (RAW_RETENTION_DAYS), readings older than that are refused: their raw rows are gone
    and their rollups kept, so idempotency can no longer see them as duplicates."""
    if not isinstance(items, list) or not items:
        raise ValidationFailed(
            details=[{"field": "measurements", "message": "must be a non-empty list of readings"}]
        )
    if len(items) > max_batch:
        raise BatchTooLarge(f"{len(items)} readings in one batch; the limit is {max_batch}. Split the batch.")
    now_utc = now_utc or datetime.now(UTC).replace(tzinfo=None)
    problems: list[dict] = []
    not_before = None if retention_days is None else now_utc - timedelta(days=retention_days)
    readings = [
        validate_reading(i, item, now_utc, problems, bounds, not_before) for i, item in enumerate(items)
    ]
    if problems:
        raise ValidationFailed(details=problems[:200])
    return readings
