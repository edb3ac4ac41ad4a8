"""A readings CSV file's layout (`import-csv`'s flags): which columns, which unit, which clock, which interval.

Each data row becomes a reading item of `POST /api/v1/measurements`, which dashboard/readings.py validates
as it validates the API's. Numbers are converted exactly (decimal arithmetic, one rounding to a float at
the end), so a power value over its interval becomes that interval's energy to the last digit the file
gives: energy_wh = power_w * interval_h, and power_w = energy_wh / interval_h for an energy unit.

Naive timestamps (no UTC offset) are read on the wall clock of `--timezone`. A wall-clock time that does
not exist (skipped when daylight saving time starts) is an error naming the line: a meter on that clock
cannot have written it, so the file keeps another clock (often standard time all year). A time that
happens twice (when clocks go back) is read in file order, as a meter logs it: its first occurrence is
the earlier instant (still daylight saving time), its second the later; one occurrence alone cannot be
told apart and is an error naming the line. Timestamps with an offset keep it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from dashboard.config import check_timezone
from dashboard.errors import ValidationFailed

# unit -> (what the value is, factor to W or Wh)
UNITS: dict[str, tuple[str, int]] = {
    "W": ("power", 1),
    "kW": ("power", 1_000),
    "MW": ("power", 1_000_000),
    "GW": ("power", 1_000_000_000),
    "Wh": ("energy", 1),
    "kWh": ("energy", 1_000),
    "MWh": ("energy", 1_000_000),
}
INTERVALS: dict[str, int] = {"15min": 900, "30min": 1800, "1h": 3600}
MARKS = ("start", "end")
NATIVE_HEADER = "device_id,timestamp,power_w[,energy_wh,voltage_v,current_a,power_factor]"
SECONDS_PER_HOUR = Decimal(3600)

HELP_EPILOG = f"""\
readings, the native layout (no --value-column):
  {NATIVE_HEADER}
  timestamp: ISO 8601 with a UTC offset (or naive with --timezone), the START of the reading's interval;
  power_w: mean power over the interval (W); energy_wh: energy of the interval (Wh). Without energy_wh
  and --interval, the energy is derived from the gap to the device's previous reading (at most
  DERIVE_ENERGY_MAX_GAP_S). With --device the file has no device_id column. Other columns are refused.

readings, any meter export (--value-column NAME --unit UNIT):
  one timestamp column (--timestamp-column, default timestamp), one value column, and a device_id
  column unless --device names the one device of the file; other columns are ignored.
  --unit W|kW|MW|GW: the value is the mean power over the interval; with --interval its energy is
  power x interval exactly. --unit Wh|kWh|MWh: the value is the energy of the interval (needs
  --interval); its mean power is energy / interval. Both power_w and energy_wh are stored.

time:
  --timezone TZ (IANA, e.g. Europe/Athens) reads naive timestamps on that wall clock; timestamps with an
  offset keep it. A naive time skipped when DST starts is an error naming the line (the file keeps
  another clock: a meter on standard time all year is a fixed zone such as Etc/GMT-10 for UTC+10). A
  naive time that happens twice when DST ends is read in file order: the first occurrence is the
  earlier instant (DST), the second the later (standard time); alone it is an error naming the line.
  --timestamp-marks end: the timestamps label the END of each interval (some meters and markets do);
  they are moved back by --interval, since the app stores interval starts.

checks:
  The whole file is validated first (every problem with its line number); any problem imports nothing.
  Importing again is idempotent (readings already stored are counted, not changed). --dry-run does all
  the work, including the database's checks (devices, their bounds), in a transaction it rolls back,
  and prints the report: rows, time range, total energy, problems by line.

examples:
  Victoria's half-hourly demand (timestamp,demand_gw,workday,temperature_c; offsets +10:00, the start
  of each half hour), read as one household-scale device in kW:
  python -m dashboard import-csv vic-elecdemand-2014.csv --device H1-MAIN --value-column demand_gw \\
      --unit kW --interval 30min --timezone Australia/Melbourne
  A meter's half-hourly kW export on local time with DST, for one device:
  timestamp,demand_kw
  2024-03-31 01:30:00,0.412
  python -m dashboard import-csv meter.csv --device H1-MAIN --value-column demand_kw --unit kW \\
      --interval 30min --timezone Europe/Athens --dry-run
"""


FLAGS = ("device", "timestamp_column", "value_column", "unit", "interval", "timezone", "timestamp_marks")


def add_readings_flags(parser) -> None:
    """import-csv's flags for readings (HELP_EPILOG explains them)."""
    add = parser.add_argument
    add("--device", metavar="SERIAL", help="the one device of the file (then it has no device_id column)")
    add("--timestamp-column", metavar="NAME", help="the timestamp column (default: timestamp)")
    add("--value-column", metavar="NAME", help="the value column (needs --unit)")
    add("--unit", metavar="W|kW|MW|GW|Wh|kWh|MWh", help="the value column's unit: mean power or energy")
    add("--interval", metavar="15min|30min|1h", help="each reading's interval, from its timestamp")
    add("--timezone", metavar="TZ", help="IANA zone of naive timestamps (e.g. Europe/Athens)")
    add("--timestamp-marks", metavar="start|end", help="what a timestamp labels (default: start)")
    add("--dry-run", action="store_true", help="validate everything, print the report, store nothing")
    add("--quiet", action="store_true", help="no progress bars on stderr")


def given_flags(args) -> dict:
    """The readings flags given on the command line, as Layout's keyword arguments."""
    return {name: getattr(args, name) for name in FLAGS if getattr(args, name, None) is not None}


@dataclass(frozen=True)
class Layout:
    """The flags of a readings import; the defaults are the native layout."""

    device: str | None = None
    timestamp_column: str = "timestamp"
    value_column: str | None = None  # None: the native layout (power_w in W, optional energy_wh ...)
    unit: str | None = None
    interval: str | None = None
    timezone: str | None = None
    timestamp_marks: str = "start"

    @property
    def interval_s(self) -> int | None:
        return INTERVALS[self.interval] if self.interval else None

    def check(self) -> None:
        """ValidationFailed naming each bad or inconsistent flag and what to give instead."""
        problems: list[dict] = []

        def fail(flag: str, message: str) -> None:
            problems.append({"field": flag, "message": message})

        if self.unit is not None and self.unit not in UNITS:
            fail("--unit", f"{self.unit!r} is not a unit: give W, kW, MW or GW (mean power over the interval) "
                           "or Wh, kWh or MWh (energy per interval); case matters (MW is megawatt)")  # fmt: skip
        if self.interval is not None and self.interval not in INTERVALS:
            fail("--interval", f"{self.interval!r} is not an interval: give 15min, 30min or 1h")
        if self.timezone is not None:
            try:
                check_timezone(self.timezone)
            except ValueError as exc:
                fail("--timezone", f"{exc}; for a clock without DST give a fixed zone such as Etc/GMT-10")
        if self.timestamp_marks not in MARKS:
            fail("--timestamp-marks", f"{self.timestamp_marks!r}: give start or end")
        if not self.timestamp_column.strip():
            fail("--timestamp-column", "give the name of the file's timestamp column")
        if self.value_column is not None and self.unit is None:
            fail("--unit", "--value-column needs --unit (W, kW, MW, GW, Wh, kWh or MWh): a column's unit "
                           "cannot be guessed")  # fmt: skip
        if self.value_column is None and self.unit is not None:
            fail("--value-column", "--unit goes with --value-column: the native layout's power_w is in W "
                                   "and energy_wh in Wh")  # fmt: skip
        if self.unit in UNITS and UNITS[self.unit][0] == "energy" and self.interval is None:
            fail("--interval", f"--unit {self.unit} (energy per interval) needs --interval, the interval "
                               "each value covers (15min, 30min or 1h)")  # fmt: skip
        if self.timestamp_marks == "end" and self.interval is None:
            fail("--timestamp-marks", "end needs --interval: each timestamp is moved back by it")
        if self.device is not None and not self.device.strip():
            fail("--device", "give the device's serial (its device_id)")
        if problems:
            raise ValidationFailed("Bad import-csv options; nothing was imported", details=problems)

    def check_header(self, header: list[str]) -> list[str]:
        """The header's columns this layout ignores; ValidationFailed naming missing or unknown ones."""
        from dashboard.readings import KNOWN_FIELDS, REQUIRED_FIELDS  # here: `--help` stays without numpy

        names = set(header)
        ts = self.timestamp_column
        if self.device is not None and "device_id" in names:
            raise _header_error("the file has a device_id column and --device names the device: drop "
                                "--device to read the column, or the column to import for --device")  # fmt: skip
        if self.value_column is None:  # the native layout, strict: an unknown column is a mistake
            required = [ts if c == "timestamp" else c for c in REQUIRED_FIELDS]
            if self.device is not None:
                required.remove("device_id")
            known = (KNOWN_FIELDS - {"timestamp"}) | {ts}
            missing = [c for c in required if c not in names]
            unknown = sorted(names - known)
            if missing or unknown:
                expected = NATIVE_HEADER.replace("timestamp", ts)
                if self.device is not None:
                    expected = expected.replace("device_id,", "")
                raise _header_error(f"missing {missing}, unknown {unknown}; expected {expected} (or name your "
                                    "columns with --timestamp-column, --value-column and --unit)")  # fmt: skip
            return []
        wanted = {"--timestamp-column": ts, "--value-column": self.value_column}
        if self.device is None:
            wanted["device_id column (or --device SERIAL)"] = "device_id"
        missing = [f"{name!r} ({flag})" for flag, name in wanted.items() if name not in names]
        if missing:
            raise _header_error(f"no column {', '.join(missing)}; the file's columns are "
                                f"{', '.join(header)}")  # fmt: skip
        return [c for c in header if c not in wanted.values()]


def _header_error(message: str) -> ValidationFailed:
    return ValidationFailed("Bad CSV header", details=[{"field": "header", "message": message}])


def _fixed_zone_hint(offset: timedelta) -> str:
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    if rest:
        return "a zone with that fixed offset"
    return f"Etc/GMT{-hours:+d}" if hours else "UTC"


@dataclass
class Clock:
    """Timestamps of one file -> ISO 8601 with an offset, per the layout's time zone and marks."""

    layout: Layout
    zone: ZoneInfo | None = None
    offsets: Counter = field(default_factory=Counter)  # offsets written in the file (None: naive)
    off_zone: int = 0  # timestamps with an offset that is not --timezone's at that instant
    _twice: dict = field(default_factory=dict)  # (device, wall time) -> [line, occurrences]

    def __post_init__(self):
        if self.layout.timezone:
            self.zone = ZoneInfo(self.layout.timezone)

    def convert(self, raw: str, device: str | None, line: int, fail) -> str | None:
        """The timestamp as validate_reading takes it, or None after `fail(field, message)`."""
        layout = self.layout
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return raw  # validate_reading reports it as not ISO 8601
        if parsed.tzinfo is not None:
            offset = parsed.utcoffset()
            self.offsets[offset] += 1
            try:
                if self.zone is not None and parsed.astimezone(self.zone).utcoffset() != offset:
                    self.off_zone += 1
            except OverflowError:
                pass  # out of datetime's range: validate_reading reports it
            if layout.timestamp_marks == "start":
                return raw  # unchanged: validate_reading checks its range as the API does
        elif self.zone is None:
            fail("timestamp", "needs a UTC offset such as +00:00 or Z, or --timezone naming the zone of the "
                              "file's clock (e.g. --timezone Europe/Athens)")  # fmt: skip
            return None
        else:
            self.offsets[None] += 1
            parsed = self._localize(parsed, raw, device, line, fail)
            if parsed is None:
                return None
        if layout.timestamp_marks == "end":
            try:
                parsed = parsed.astimezone(UTC) - timedelta(seconds=layout.interval_s)
            except OverflowError:
                return raw  # out of datetime's range: validate_reading reports it
        return parsed.isoformat()

    def _localize(self, wall: datetime, raw: str, device, line: int, fail) -> datetime | None:
        zone = self.zone
        first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return first
        back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if back != wall:  # skipped: clocks jumped over it
            fixed = _fixed_zone_hint(first.utcoffset())
            fail("timestamp", f"{raw!r} does not exist in {zone.key}: clocks skip it when daylight saving time "
                              f"starts, so the file does not keep {zone.key}'s wall clock; if it keeps "
                              f"standard time all year, give --timezone {fixed}")  # fmt: skip
            return None
        seen = self._twice.setdefault((device, wall), [line, 0])
        seen[1] += 1
        if seen[1] == 1:
            return first  # the earlier instant (still DST); a second occurrence is the later one
        if seen[1] == 2:
            return second
        fail("timestamp", f"{raw!r} occurs a third time for this device (it happens twice in {zone.key} "
                          "when clocks go back); remove the duplicate")  # fmt: skip
        return None

    def finish(self, fail_at) -> None:
        """Report each wall time that happens twice in the zone but occurs once in the file."""
        for (_device, wall), (line, count) in self._twice.items():
            if count == 1:
                zone = self.zone
                a, b = (offset_text(wall.replace(tzinfo=zone, fold=f).utcoffset()) for f in (0, 1))
                fail_at(line, "timestamp", f"{wall.isoformat()} happens twice in {zone.key} (at {a}, then at "
                                           f"{b}, when clocks go back) and the file has it once, so which is "
                                           "meant cannot be told: write its offset")  # fmt: skip


def offset_text(offset: timedelta | None) -> str:
    if offset is None:
        return "naive"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_value(raw: str, column: str, fail) -> Decimal | None:
    """The exact decimal of a value cell, or None after `fail(field, message)`."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        shown = repr(raw[:40]) if raw else "an empty cell"
        fail(column, f"{shown} is not a number; give a decimal such as 3.914 (a dot, no thousands "
                     "separator)")  # fmt: skip
        return None
    return value


def power_and_energy(value: Decimal, unit: str, interval_s: int | None) -> tuple[float, float | None]:
    """(power_w, energy_wh) of one value in `unit` over `interval_s`, computed exactly then rounded once."""
    kind, factor = UNITS[unit]
    if kind == "power":
        power = value * factor
        energy = None if interval_s is None else power * interval_s / SECONDS_PER_HOUR
    else:
        energy = value * factor
        power = energy * SECONDS_PER_HOUR / interval_s
    return float(power), None if energy is None else float(energy)


def energy_over(power_w: float, interval_s: int) -> float:
    """The energy (Wh) of a native row's power_w over `interval_s`, exactly from its decimal form."""
    if not math.isfinite(power_w):
        return power_w
    return float(Decimal(repr(power_w)) * interval_s / SECONDS_PER_HOUR)
