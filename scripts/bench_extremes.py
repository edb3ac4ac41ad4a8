"""Voltage extremes read again for a house's rollup rows: the batched `refresh_voltage_extremes`
(dashboard/metering.py, which a correction and a device write share) against asking per row, as
dashboard/rollups.py did before (one min/max query and one update per row).

Seeds `--houses` demo houses x `--days` days into a new PostgreSQL database (dropped afterwards), then
times both on every rollup row of the first house (15-minute, hourly and daily), the extremes wiped
before each run, and checks that both give the stored (ingested) extremes back.

    .venv/bin/python scripts/bench_extremes.py [--days 30] [--houses 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text, update  # noqa: E402

from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from dashboard.metering import refresh_voltage_extremes  # noqa: E402
from dashboard.rollups import LocalDayBuckets, bucket_end  # noqa: E402
from dashboard.schema import Device, EnergyRollup, Measurement  # noqa: E402
from dashboard.seed import seed_demo  # noqa: E402

ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
ROWS = (
    "SELECT resolution, entity_kind, entity_id, bucket_start, voltage_min, voltage_max FROM energy_rollups "
)


def per_row(session, keys, timezone: str) -> None:
    """The former way: a min/max query and an update for each row (a house's meters count)."""
    day, table, m = LocalDayBuckets(timezone), EnergyRollup.__table__, Measurement
    for resolution, kind, entity_id, bucket in sorted(keys):
        meters = select(Device.id).where(Device.house_id == entity_id, Device.kind == "meter")
        low, high = session.execute(
            select(func.min(m.voltage_v), func.max(m.voltage_v)).where(
                m.device_id.in_(meters), m.ts >= bucket, m.ts < bucket_end(resolution, bucket, day)
            )
        ).one()
        session.execute(
            update(table)
            .where(table.c.resolution == resolution, table.c.entity_kind == kind,
                   table.c.entity_id == entity_id, table.c.bucket_start == bucket)
            .values(voltage_min=low, voltage_max=high)
        )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--houses", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"aggbench_extremes_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as data:
            url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            settings = load_settings({"DATA_DIR": data, "DEMO_DATA": "0", "DATABASE_URL": url,
                                      "SECRET_KEY": "bench-" + "x" * 40})  # fmt: skip
            engine = make_engine(settings)
            migrate(engine)
            factory = make_session_factory(engine)
            seed_demo(factory, settings.timezone, houses=args.houses, days=args.days, progress=False)
            house = "WHERE entity_kind = 'house' AND entity_id = (SELECT min(id) FROM houses)"
            with factory() as s:
                stored = {tuple(r[:4]): tuple(r[4:]) for r in s.execute(text(ROWS + house))}
            keys = list(stored)
            print(f"{args.houses} houses x {args.days} days; {len(keys):,} rows of one house; "
                  f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")  # fmt: skip
            for label, refresh in (
                ("per row (before)", per_row),
                ("batched (now)", refresh_voltage_extremes),
            ):
                for _ in range(args.repeats):
                    with factory() as s:
                        s.execute(
                            text("UPDATE energy_rollups SET voltage_min = 1, voltage_max = 999 " + house)
                        )
                        started = time.perf_counter()
                        refresh(s, keys, settings.timezone)
                        elapsed = time.perf_counter() - started
                        s.commit()
                        got = {tuple(r[:4]): tuple(r[4:]) for r in s.execute(text(ROWS + house))}
                    assert got == stored, f"{label}: extremes differ from the ingested ones"
                    print(
                        f"{label:18} {elapsed:7.2f} s   load average {open('/proc/loadavg').read().split()[0]}"
                    )
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
