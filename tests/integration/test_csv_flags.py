"""`import-csv` with a meter's own columns, units, clock and interval (issue 14, part 3), on the real
PostgreSQL (and SQLite for the year): Victoria's 2014 demand imported for one device with flags alone
adds up to the Wh, the time zones' DST changes are handled, and every flag's mistake is named."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.csv_import import import_csv
from dashboard.csv_layout import Layout
from dashboard.errors import ValidationFailed
from dashboard.queries import energy_series
from dashboard.schema import Device, EnergyRollup, Measurement
from dashboard.scope import system_scope
from models.realdata import vic_path
from tests.factories import build_world
from tests.integration.test_cli import cli

VIC_FLAGS = ("--device", "H1-MAIN", "--value-column", "demand_gw", "--unit", "kW", "--interval", "30min",
             "--timezone", "Australia/Melbourne", "--quiet")  # fmt: skip
YEAR_ROWS = 17_520
HALF_HOUR = Decimal("0.5")


@pytest.fixture(scope="module")
def vic() -> Path:
    if not vic_path().exists():
        pytest.fail(f"{vic_path()} is missing: set ACCURACY_DATA_DIR to the folder holding it")
    return vic_path()


def vic_values(path: Path) -> list[Decimal]:
    with path.open(newline="") as fh:
        return [Decimal(row["demand_gw"]) for row in csv.DictReader(fh)]


def vic_slice(vic: Path, out: Path, lines: slice, strip_offset: bool = False) -> Path:
    """The header and the given data lines of the Victoria file (optionally without their +10:00)."""
    text = vic.read_text().splitlines()
    body = text[1:][lines]
    if strip_offset:
        body = [line.replace("+10:00", "", 1) for line in body]
    out.write_text("\n".join([text[0], *body]) + "\n")
    return out


@dataclass
class Backend:
    url: str
    data_dir: Path
    factory: object
    house: int


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request) -> Backend:
    app = request.getfixturevalue("app" if request.param == "postgresql" else "sqlite_app")
    world = build_world(app)
    services = app.server.extensions["aggregator"]
    return Backend(services.settings.database_url, services.settings.data_dir, services.session_factory,
                   world.house1)  # fmt: skip


def day_rollup_wh(session, entity_kind: str) -> Decimal:
    r = EnergyRollup
    values = session.scalars(
        select(r.consumption_wh).where(r.resolution == "day", r.entity_kind == entity_kind)
    ).all()
    return sum((Decimal(v) for v in values), Decimal(0))


def series_wh(series: list[dict]) -> Decimal:
    return sum((Decimal(str(day["consumption_kwh"])) for day in series), Decimal(0)) * 1000


def test_a_year_of_victoria_imports_with_flags_alone_and_its_energy_adds_up_to_the_wh(backend, vic):
    exact_wh = sum(vic_values(vic), Decimal(0)) * 1000 * HALF_HOUR  # kW x 0.5 h, in exact decimals
    out = cli(backend.url, backend.data_dir, "import-csv", str(vic), *VIC_FLAGS)
    assert f"Imported {YEAR_ROWS} readings (0 already stored)" in out.stdout
    assert f"total energy: {exact_wh:,.3f} Wh" in out.stdout
    # Its speed is measured by scripts/bench_import_csv.py (docs/benchmarks.md), not asserted here.

    def stored():
        with backend.factory() as s:
            rows = s.execute(
                select(Measurement.ts, Measurement.power_w, Measurement.energy_wh, Measurement.energy_derived)
                .order_by(Measurement.ts)
            ).all()  # fmt: skip
            raw_sum = s.scalar(select(func.sum(Measurement.energy_wh)))
            start, end = datetime(2013, 12, 30), datetime(2015, 1, 2)
            house = energy_series(s, system_scope(), "day", start, end, house_id=backend.house)
            fleet = energy_series(s, system_scope(), "day", start, end)
            rollups = day_rollup_wh(s, "house"), day_rollup_wh(s, "all")
        return rows, raw_sum, house, fleet, rollups

    rows, raw_sum, house, fleet, rollups = stored()
    assert len(rows) == YEAR_ROWS
    # The file's +10:00 is kept (AEST all year, the market's clock): Melbourne's midnight of 1 January 2014
    # in standard time is 14:00 UTC, and the last half hour starts 23:30 AEST on 31 December.
    assert rows[0].ts == datetime(2013, 12, 31, 14, 0) and rows[-1].ts == datetime(2014, 12, 31, 13, 30)
    assert {b.ts - a.ts for a, b in zip(rows, rows[1:], strict=False)} == {timedelta(minutes=30)}
    assert rows[0].power_w == 3914.647 and rows[0].energy_wh == 1957.3235
    assert all(r.energy_wh == r.power_w * 0.5 and not r.energy_derived for r in rows)
    # Each stored float is the nearest to its exact decimal: the sums agree far below a Wh.
    assert abs(sum((Decimal(r.energy_wh) for r in rows), Decimal(0)) - exact_wh) < Decimal("0.000001")
    assert abs(Decimal(raw_sum) - exact_wh) < Decimal("0.001")
    assert all(abs(total - exact_wh) < Decimal("0.001") for total in rollups)
    # The daily energy queries answer kWh to 6 decimals per day: 366 days add up to the Wh.
    assert len(house) == len(fleet) == 366
    assert abs(series_wh(house) - exact_wh) < Decimal("0.5")
    assert abs(series_wh(fleet) - exact_wh) < Decimal("0.5")

    again = cli(backend.url, backend.data_dir, "import-csv", str(vic), *VIC_FLAGS)
    assert f"Imported 0 readings ({YEAR_ROWS} already stored)" in again.stdout
    after = stored()
    assert after[0] == rows and after[1:] == (raw_sum, house, fleet, rollups)


def test_dry_run_reports_the_import_s_totals_and_stores_nothing(app, world, pg_url, tmp_path, factory, vic):
    dry = cli(pg_url, tmp_path, "import-csv", str(vic), *VIC_FLAGS, "--dry-run")
    assert (
        f"Dry run, nothing stored: importing would add {YEAR_ROWS:,} readings (0 already stored)"
        in dry.stdout
    )
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Measurement)) == 0
        assert s.scalar(select(func.count()).select_from(EnergyRollup)) == 0
    real = cli(pg_url, tmp_path, "import-csv", str(vic), *VIC_FLAGS)
    assert real.stdout.splitlines()[:-1] == dry.stdout.splitlines()[:-1]  # rows, range, energy, offsets
    assert "2013-12-31T14:00:00Z .. 2014-12-31T13:30:00Z" in dry.stdout
    assert "ignored columns: workday, temperature_c" in dry.stdout
    # the file's offsets are +10:00 all year: Melbourne's summer (+11:00) half hours are flagged, not moved
    assert "UTC offsets written in the file: +10:00 x17,520" in dry.stdout
    assert "8,784 timestamps carry an offset that is not Australia/Melbourne's" in dry.stdout
    again = cli(pg_url, tmp_path, "import-csv", str(vic), *VIC_FLAGS, "--dry-run")
    assert f"importing would add 0 readings ({YEAR_ROWS:,} already stored)" in again.stdout


def run(factory, path: Path, max_power_w: float = 1e8, dry_run: bool = False, **flags):
    return import_csv(factory, system_scope(), path, "Europe/Athens", 900, progress=False,
                      max_power_w=max_power_w, layout=Layout(**flags), dry_run=dry_run)  # fmt: skip


def stored_ts(factory) -> list[datetime]:
    with factory() as s:
        return list(s.scalars(select(Measurement.ts).order_by(Measurement.ts)))


def test_naive_standard_time_read_as_melbourne_names_the_dst_lines_and_as_a_fixed_zone_matches(
    world, factory, vic, tmp_path
):
    """Victoria's timestamps without their offset: on Melbourne's wall clock 02:00 and 02:30 of 5 October
    do not exist (clocks jump to 03:00) and those of 6 April happen twice but occur once: four lines named.
    Read as the fixed zone the file keeps (UTC+10), the readings are those of the file with offsets."""
    naive = vic_slice(vic, tmp_path / "naive.csv", slice(None), strip_offset=True)
    flags = {"device": "H1-MAIN", "value_column": "demand_gw", "unit": "kW", "interval": "30min"}
    report = run(factory, naive, dry_run=True, timezone="Australia/Melbourne", **flags)
    assert report.problem_count == 4
    assert [p["line"] for p in report.problems] == [13302, 13303, 4566, 4567]
    assert "'2014-10-05T02:00:00' does not exist in Australia/Melbourne" in report.problems[0]["message"]
    assert "--timezone Etc/GMT-10" in report.problems[0]["message"]
    assert (
        "2014-04-06T02:00:00 happens twice in Australia/Melbourne (at +11:00, then at +10:00"
        in (report.problems[2]["message"])
    )
    fixed = run(factory, naive, dry_run=True, timezone="Etc/GMT-10", **flags)
    aware = run(factory, vic, dry_run=True, timezone="Australia/Melbourne", **flags)
    assert not fixed.problems and not aware.problems
    assert (fixed.rows, fixed.first, fixed.last, fixed.energy_wh) == (aware.rows, aware.first, aware.last,
                                                                      aware.energy_wh)  # fmt: skip
    assert stored_ts(factory) == []


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_wall_time_repeated_when_dst_ends_is_read_in_file_order(world, factory, tmp_path):
    """Athens, 26 October 2025: clocks go back from 04:00 EEST to 03:00 EET. A meter on local time logs
    03:00-03:45 twice: the first run is EEST, the second EET; 16 quarter-hours, none lost or doubled."""
    local = [f"2025-10-26 {h:02d}:{m:02d}" for h in (2, 3) for m in (0, 15, 30, 45)]
    local += [f"2025-10-26 03:{m:02d}" for m in (0, 15, 30, 45)] + [
        f"2025-10-26 04:{m:02d}" for m in (0, 15, 30, 45)
    ]
    path = write(tmp_path / "meter.csv", "time,kwh", [f"{t},0.25" for t in local])
    flags = {"device": "H1-MAIN", "timestamp_column": "time", "value_column": "kwh", "unit": "kWh",
             "interval": "15min", "timezone": "Europe/Athens"}  # fmt: skip
    report = run(factory, path, **flags)
    assert report.accepted == 16
    start = datetime(2025, 10, 25, 23, 0)  # 02:00 EEST
    assert stored_ts(factory) == [start + timedelta(minutes=15 * i) for i in range(16)]
    with factory() as s:
        assert set(s.execute(select(Measurement.power_w, Measurement.energy_wh))) == {(1000.0, 250.0)}

    once = write(tmp_path / "once.csv", "time,kwh", ["2025-10-26 02:45,0.1", "2025-10-26 03:15,0.1"])
    with pytest.raises(ValidationFailed) as exc:
        run(factory, once, **flags)
    assert (
        exc.value.details[0]["line"] == 3
        and "happens twice in Europe/Athens" in exc.value.details[0]["message"]
    )
    gap = write(tmp_path / "gap.csv", "time,kwh", ["2025-03-30 02:45,0.1", "2025-03-30 03:15,0.1"])
    with pytest.raises(ValidationFailed) as exc:
        run(factory, gap, **flags)
    assert exc.value.details == [
        {"line": 3, "field": "timestamp", "message": exc.value.details[0]["message"]}
    ]
    assert "does not exist in Europe/Athens" in exc.value.details[0]["message"]
    assert len(stored_ts(factory)) == 16


def test_end_marked_timestamps_are_stored_as_interval_starts(world, factory, tmp_path):
    path = write(
        tmp_path / "end.csv", "timestamp,kw", ["2014-01-01T00:30:00+10:00,2", "2014-01-01T01:00:00+10:00,4"]
    )
    report = run(factory, path, device="H1-MAIN", value_column="kw", unit="kW", interval="30min",
                 timestamp_marks="end")  # fmt: skip
    assert report.accepted == 2 and report.energy_wh == 3000.0
    assert stored_ts(factory) == [datetime(2013, 12, 31, 14, 0), datetime(2013, 12, 31, 14, 30)]


def test_the_native_layout_takes_device_timezone_and_interval_flags(world, factory, tmp_path):
    path = write(
        tmp_path / "native.csv", "timestamp,power_w", ["2025-01-15 10:00,1000", "2025-01-15 11:00,3000"]
    )
    report = run(factory, path, device="H1-MAIN", timezone="Europe/Athens", interval="1h")
    assert report.accepted == 2 and report.derived == 0
    with factory() as s:
        rows = s.execute(select(Measurement.ts, Measurement.energy_wh).order_by(Measurement.ts)).all()
    assert rows == [(datetime(2025, 1, 15, 8, 0), 1000.0), (datetime(2025, 1, 15, 9, 0), 3000.0)]
    unknown = run(factory, path, dry_run=True, device="NOPE", timezone="Europe/Athens", interval="1h")
    assert [(p["line"], p["message"]) for p in unknown.problems] == [
        (2, "unknown device 'NOPE'; register it first"),
        (3, "unknown device 'NOPE'; register it first"),
    ]
    both = write(tmp_path / "both.csv", "device_id,timestamp,power_w", ["H1-MAIN,2025-01-15T12:00:00Z,1"])
    with pytest.raises(ValidationFailed) as exc:
        run(factory, both, device="H1-MAIN")
    assert "has a device_id column and --device" in exc.value.details[0]["message"]


def test_gw_read_honestly_needs_max_power_w_raised_and_the_device_bound_names_the_line(world, factory, vic,
                                                                                      tmp_path):  # fmt: skip
    day = vic_slice(vic, tmp_path / "day1.csv", slice(0, 48))
    flags = {"device": "H1-MAIN", "value_column": "demand_gw", "unit": "GW", "interval": "30min"}
    with pytest.raises(ValidationFailed) as exc:
        run(factory, day, **flags)
    first = exc.value.details[0]
    assert first["line"] == 2 and first["field"] == "demand_gw (GW) as power_w"
    assert "MAX_POWER_W" in first["message"] and "--unit" in first["message"]
    assert "max_power_w" in first["message"]
    assert len(exc.value.details) == 48  # one problem a row: its energy is the same value's

    report = run(factory, day, max_power_w=1e10, **flags)
    exact = sum(vic_values(day), Decimal(0)) * 10**9 * HALF_HOUR
    assert report.accepted == 48 and abs(Decimal(report.energy_wh) - exact) < 1
    with factory() as s:
        device = s.scalar(select(Device).where(Device.serial == "H1-MAIN"))
        device.max_power_w = 3.5e9
        s.commit()
    second = vic_slice(vic, tmp_path / "day2.csv", slice(48, 96))
    above = [i + 2 for i, v in enumerate(vic_values(second)) if v > Decimal("3.5")]
    with pytest.raises(ValidationFailed) as exc:
        run(factory, second, max_power_w=1e10, **flags)
    power = [p for p in exc.value.details if p["field"] == "power_w"]
    assert [p["line"] for p in power] == above and above
    assert "device 'H1-MAIN''s max_power_w" in power[0]["message"]
    assert len(stored_ts(factory)) == 48


def main_cli(monkeypatch, capsys, app, *argv: str) -> tuple[int, str]:
    """`python -m dashboard ...` in this process: (exit code, stdout and stderr)."""
    from dashboard.__main__ import main

    settings = app.server.extensions["aggregator"].settings
    for name, value in {"DATABASE_URL": settings.database_url, "DATA_DIR": str(settings.data_dir),
                        "SECRET_KEY": settings.secret_key, "DEMO_DATA": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    code, message = 0, ""
    try:
        main(list(argv))
    except SystemExit as exc:
        code, message = (exc.code, "") if isinstance(exc.code, int) else (1, str(exc.code))
    captured = capsys.readouterr()
    return code, captured.out + captured.err + message


BASE = ("--device", "H1-MAIN", "--value-column", "demand_gw", "--unit", "kW", "--interval", "30min")


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        (("--value-column", "demand_kw"),
         "no column 'demand_kw' (--value-column); the file's columns are timestamp, demand_gw, workday, "
         "temperature_c"),
        (("--timestamp-column", "time"), "no column 'time' (--timestamp-column)"),
        (("--unit", "kw"), "'kw' is not a unit: give W, kW, MW or GW"),
        (("--interval", "5min"), "'5min' is not an interval: give 15min, 30min or 1h"),
        (("--timezone", "Australia/Melbourn"), "'Australia/Melbourn' is not an IANA time zone"),
        (("--unit", "kWh", "--interval", None), "--unit kWh (energy per interval) needs --interval"),
        (("--unit", None), "--value-column needs --unit"),
        (("--timestamp-marks", "middle"), "'middle': give start or end"),
    ],
    ids=["unknown-column", "unknown-timestamp-column", "unit", "interval", "timezone", "energy-needs-interval",
         "value-needs-unit", "marks"],
)  # fmt: skip
def test_each_flag_s_mistake_is_named_and_nothing_is_stored(app, world, factory, vic, monkeypatch, capsys,
                                                             change, mentions):  # fmt: skip
    argv = dict(zip(BASE[::2], BASE[1::2], strict=True))
    argv.update(dict(zip(change[::2], change[1::2], strict=True)))
    flags = [part for name, value in argv.items() if value is not None for part in (name, value)]
    code, output = main_cli(monkeypatch, capsys, app, "import-csv", str(vic), "--quiet", *flags)
    assert code == 2, output
    assert mentions in output, output
    assert "Traceback" not in output
    assert stored_ts(factory) == []


def test_a_value_that_does_not_parse_is_named_by_its_line(app, world, factory, monkeypatch, capsys, tmp_path):
    path = write(tmp_path / "meter.csv", "timestamp,demand_kw",
                 ["2025-01-15T10:00:00Z,1.5", "2025-01-15T10:30:00Z,1.6", "2025-01-15T11:00:00Z,1,7",
                  "2025-01-15T11:30:00Z,"])  # fmt: skip
    flags = ("--device", "H1-MAIN", "--value-column", "demand_kw", "--unit", "kW", "--interval", "30min")
    code, output = main_cli(monkeypatch, capsys, app, "import-csv", str(path), "--quiet", *flags)
    assert code == 2 and "'line': 4" in output and "'line': 5" in output, output
    code, output = main_cli(monkeypatch, capsys, app, "import-csv", str(path), "--quiet", "--dry-run", *flags)
    assert code == 2
    assert "line 4, row: 1 more field(s) than the header's columns" in output
    assert "line 5, demand_kw: an empty cell is not a number" in output
    assert "problems: 2; nothing was imported" in output
    path.write_text(path.read_text().replace("1,7", "1.7x").replace("30:00Z,\n", "30:00Z,1.8\n"))
    code, output = main_cli(monkeypatch, capsys, app, "import-csv", str(path), "--quiet", "--dry-run", *flags)
    assert code == 2 and "line 4, demand_kw: '1.7x' is not a number" in output, output
    assert stored_ts(factory) == []


def test_weather_refuses_the_readings_flags(app, monkeypatch, capsys, tmp_path):
    path = write(tmp_path / "weather.csv", "timestamp,temperature_c", ["2026-03-01T00:00:00Z,8.5"])
    code, output = main_cli(monkeypatch, capsys, app, "import-csv", str(path), "--kind", "weather", "--latitude",
                            "37.98", "--longitude", "23.73", "--unit", "kW")  # fmt: skip
    assert code != 0 and "are for readings" in output


def test_help_documents_the_layouts_and_an_example(monkeypatch, capsys):
    from dashboard.__main__ import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["import-csv", "--help"])
    text = capsys.readouterr().out
    for needle in ("--value-column NAME", "--unit W|kW|MW|GW|Wh|kWh|MWh", "--interval 15min|30min|1h",
                   "device_id,timestamp,power_w[,energy_wh", "the START of the reading's interval",
                   "--timestamp-marks end", "--dry-run", "example", "--value-column demand_gw"):  # fmt: skip
        assert needle in text, needle
