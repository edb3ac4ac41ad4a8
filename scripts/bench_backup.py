"""Backup and restore benchmark: the embedded demo's database (SQLite, 20 houses x 365 days by default) backed
up with `dashboard.backup` and restored into a fresh SQLite file and, with --pg, into a fresh PostgreSQL
database (created and dropped here). Prints the rows, rows/s, seconds and the archive's size.

    python scripts/bench_backup.py [--houses 20] [--days 365] [--data-dir DIR] [--pg] [--keep]

--data-dir reuses (or seeds once, then keeps) an embedded demo in DIR; without it a temp dir is seeded and
removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard import backup  # noqa: E402
from dashboard.config import load_settings  # noqa: E402
from dashboard.crypto import backup_key  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from dashboard.seed import database_is_empty, seed_demo  # noqa: E402

SECRET = "bench-backup-secret-" + "x" * 40
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def settings_for(data_dir: Path, **env: str):
    return load_settings({"DATA_DIR": str(data_dir), "DEMO_DATA": "0", "SECRET_KEY": SECRET} | env)


def ensure_demo(settings, houses: int, days: int) -> float | None:
    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        empty = database_is_empty(session)
    seconds = None
    if empty:
        t0 = time.perf_counter()
        seed_demo(factory, settings.timezone, houses=houses, days=days, progress=True)
        seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds


def timed_restore(settings, archive: Path, key: bytes) -> tuple[float, dict]:
    t0 = time.perf_counter()
    stats = backup.restore(settings, archive, key, progress=False)
    return time.perf_counter() - t0, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--houses", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--data-dir", help="the embedded demo to back up (seeded here when empty; kept)")
    parser.add_argument("--pg", action="store_true", help="also restore into a fresh PostgreSQL database")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    source_dir = Path(args.data_dir) if args.data_dir else work / "source"
    try:
        source = settings_for(source_dir)
        seeded = ensure_demo(source, args.houses, args.days)
        db_size = Path(source.database_url.split(":///", 1)[1]).stat().st_size
        key = backup_key(SECRET)
        archive = work / "demo.agb"
        t0 = time.perf_counter()
        stats = backup.backup(source, archive, key, progress=False)
        backup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backup.verify(archive, key)
        verify_s = time.perf_counter() - t0
        rows = stats["rows"]
        results = [
            ("backup (SQLite -> archive)", backup_s),
            ("verify only (authenticate every chunk)", verify_s),
        ]
        sqlite_s, _ = timed_restore(settings_for(work / "restored"), archive, key)
        results.append(("restore into fresh SQLite (incl. verify)", sqlite_s))
        if args.pg:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            name = f"benchbk_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
                pg_s, _ = timed_restore(settings_for(work / "pg", DATABASE_URL=url), archive, key)
                results.append(("restore into fresh PostgreSQL (incl. verify)", pg_s))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()

        print(f"\n### Backup and restore ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
        print(f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), shared; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"data: embedded demo {args.houses} houses x {args.days} days"
              + (f" (seeded in {seeded:.0f} s)" if seeded else " (reused)")
              + f", SQLite file {db_size / 1e6:.0f} MB, {rows:,} rows, {stats['objects']} objects")  # fmt: skip
        for table in ("measurements", "energy_rollups", "weather_observations"):
            print(f"  {table}: {stats['tables'][table]:,} rows")
        print(
            f"archive: {archive.stat().st_size / 1e6:.1f} MB (AES-256-GCM, 1 MiB chunks, uncompressed JSON lines)\n"
        )
        print("| step | seconds | rows/s |")
        print("|---|---:|---:|")
        for label, seconds in results:
            print(f"| {label} | {seconds:.1f} | {rows / seconds:,.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
