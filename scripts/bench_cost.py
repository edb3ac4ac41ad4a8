"""Cost and CO2 computation speed (dashboard/costs.py, what the Overview, Historical and Exports callbacks
add): 200 houses x 1 year of hourly and daily house rollups in a PostgreSQL database of its own
(`aggbench_cost`, seeded with generate_series in about 30 s, kept between runs), with import_wh/export_wh
settled as dashboard/settlement.py keeps them (each synthetic hour taken as four equal 15-minute
intervals), every house with a tariff (half time-of-use, half flat, a change on 1 July), hourly grid
intensity for the year, and house_day_hours filled from the hourly rows as migration 0016 does. Two data
cases: as seeded ("ToU + hourly CO2": whole local days from house_day_hours, the ragged ends from hourly
rows), and, in a transaction rolled back afterwards, every tariff flat and no hourly intensity ("flat +
constant CO2": daily buckets from daily rows). Prints p50/p95 per case, window and scope.

    .venv/bin/python scripts/bench_cost.py [--houses 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.config import load_settings  # noqa: E402
from dashboard.costs import compute  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate_to  # noqa: E402

DAY_HOURS = importlib.import_module("dashboard.migrations.versions.0016_house_day_hours")

ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
TOU = [(0, 7, 0.10), (7, 23, 0.30), (23, 24, 0.10)]
END = datetime(2026, 12, 1)
ZONE = "Europe/Athens"
START = END - timedelta(days=365)


def seed(engine, houses: int) -> None:
    # to the latest schema without migrate's check (the plain-text house names kept from an earlier run would
    # fail it); on kept data, migration 0016 fills house_day_hours from the hourly rollups
    migrate_to(engine)
    with engine.connect() as conn:
        if conn.scalar(text("SELECT count(*) FROM tariffs")):
            return
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO houses (id, name, created_at) SELECT g, 'h' || g, now() FROM generate_series(1, :n) g"
            ),
            {"n": houses},
        )
        # hourly house rows, each hour taken as four equal 15-minute intervals: its settled import and export
        # (dashboard/settlement.py) are then max(c - p, 0) and max(p - c, 0) of the hour itself
        conn.execute(text(
            "INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, "
            "import_wh, export_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count) "
            "SELECT 'hour', 'house', h, t, c, p, greatest(c - p, 0), greatest(p - c, 0), 0, 0, 0, 0, 4 FROM "
            "(SELECT h, t, 500 + 400 * random() AS c, CASE WHEN h % 2 = 0 THEN 1500 * random() ELSE 0 END AS p "
            " FROM generate_series(1, :n) h, generate_series(:s, :e, interval '1 hour') t) s"),
            {"n": houses, "s": START, "e": END - timedelta(hours=1)})  # fmt: skip
        # daily rows per local day (ZONE), the sums of their hours, as the rollups and the settlement keep them
        conn.execute(text(
            "INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh, production_wh, "
            "import_wh, export_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count) "
            "SELECT 'day', 'house', entity_id, date_trunc('day', bucket_start AT TIME ZONE 'UTC' AT TIME ZONE :z) "
            "AT TIME ZONE :z AT TIME ZONE 'UTC', sum(consumption_wh), sum(production_wh), sum(import_wh), "
            "sum(export_wh), 0, 0, 0, 0, sum(readings_count) FROM energy_rollups "
            "WHERE resolution = 'hour' AND entity_kind = 'house' GROUP BY 1, 2, 3, 4"), {"z": ZONE})  # fmt: skip
        conn.execute(text(DAY_HOURS.backfill_sql("postgresql")))  # as migration 0016 fills it
        conn.execute(text("INSERT INTO grid_intensity (hour, g_per_kwh) SELECT t, 300 + 100 * random() "
                          "FROM generate_series(:s, :e, interval '1 hour') t"), {"s": START, "e": END})  # fmt: skip
        tid = 0
        for h in range(1, houses + 1):
            for valid_from, valid_to, flat in ((date(2025, 1, 1), date(2026, 6, 30), h % 2 == 0),
                                               (date(2026, 7, 1), None, h % 2 == 1)):  # fmt: skip
                tid += 1
                conn.execute(text("INSERT INTO tariffs (id, house_id, name, kind, import_price, export_price, "
                                  "standing_charge_per_day, valid_from, valid_to, created_at) VALUES "
                                  "(:i, :h, 't', :k, :p, 0.05, 0.4, :f, :t, now())"),
                             {"i": tid, "h": h, "k": "flat" if flat else "tou", "p": 0.2 if flat else None,
                              "f": valid_from, "t": valid_to})  # fmt: skip
                if not flat:
                    for days in ("all",):
                        for start, end, price in TOU:
                            conn.execute(text("INSERT INTO tariff_periods (tariff_id, days, start_hour, end_hour, "
                                              "import_price) VALUES (:t, :d, :s, :e, :p)"),
                                         {"t": tid, "d": days, "s": start, "e": end, "p": price})  # fmt: skip
        conn.execute(text("ANALYZE"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--houses", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    name = "aggbench_cost" if args.houses == 200 else f"aggbench_cost_{args.houses}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    data_dir = ROOT / "var" / "bench-cost"
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(load_settings({"DATABASE_URL": url, "DATA_DIR": str(data_dir), "DEMO_DATA": "0",
                                        "SECRET_KEY": "bench-cost-" + "x" * 40}))  # fmt: skip
    t0 = time.perf_counter()
    seed(engine, args.houses)
    print(f"seeded/checked in {time.perf_counter() - t0:.1f} s")
    factory = make_session_factory(engine)
    windows = [("24 h hourly (Overview's cost card, Historical 24 h)", timedelta(hours=24), "hour"),
               ("7 d hourly (Historical 7 d)", timedelta(days=7), "hour"),
               ("30 d hourly (Historical 30 d)", timedelta(days=30), "hour"),
               ("30 d daily (Historical custom default)", timedelta(days=30), "day"),
               ("365 d daily (Historical / Exports, a year)", timedelta(days=364), "day")]  # fmt: skip
    print("| data | window | scope | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for data, flat in (("ToU + hourly CO2", False), ("flat + constant CO2", True)):
        with factory() as s:
            if flat:  # in this session only, rolled back below: every tariff flat, no hourly intensity
                s.execute(text("UPDATE tariffs SET kind = 'flat', import_price = 0.2"))
                s.execute(text("DELETE FROM tariff_periods"))
                s.execute(text("DELETE FROM grid_intensity"))
            for label, span, group in windows:
                for scope_name, houses in (("all houses", None), ("one house", [1])):
                    times = []
                    for _ in range(args.repeat):
                        gc.collect()  # a full collection lands on whichever call crosses its threshold
                        t = time.perf_counter()
                        compute(s, houses, END - span, END, ZONE, "EUR", 350.0, END, group=group)
                        times.append((time.perf_counter() - t) * 1000)
                    times.sort()
                    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                    print(
                        f"| {data} | {label} | {scope_name} | {statistics.median(times):.0f} | {p95:.0f} |",
                        flush=True,
                    )
            s.rollback()
    return 0


if __name__ == "__main__":
    sys.exit(main())
