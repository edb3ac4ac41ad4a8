"""`import-csv` speed: Victoria's 2014 demand (17,520 half hours) imported for one meter with flags alone,
as `tests/integration/test_csv_flags.py` does, timed through the real CLI process (process start included)
into a fresh PostgreSQL database (created and dropped here) and a fresh embedded SQLite file. Then the same
file again (everything already stored). Prints seconds per run and readings/s with the load average.

    python scripts/bench_import_csv.py [--runs 3] [--backend postgresql|sqlite|both]

The figure is recorded in docs/benchmarks.md ("import-csv"); the test checks only what is stored.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.clock import utcnow  # noqa: E402
from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from dashboard.schema import Device, House  # noqa: E402
from models.realdata import vic_path  # noqa: E402

SECRET = "bench-import-secret-" + "x" * 40
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
FLAGS = ("--device", "H1-MAIN", "--value-column", "demand_gw", "--unit", "kW", "--interval", "30min",
         "--timezone", "Australia/Melbourne", "--quiet")  # fmt: skip
ROWS = 17_520


def prepare(data_dir: Path, database_url: str | None) -> dict:
    """A migrated database with one house and its main meter H1-MAIN; the CLI's environment."""
    env = {"DATA_DIR": str(data_dir), "DEMO_DATA": "0", "SECRET_KEY": SECRET}
    if database_url:
        env["DATABASE_URL"] = database_url
    engine = make_engine(load_settings(env))
    migrate(engine)
    with make_session_factory(engine)() as s:
        house = House(name="House A", created_at=utcnow())
        s.add(house)
        s.flush()
        s.add(Device(serial="H1-MAIN", name="Main meter", kind="meter", direction="consumption",
                     house_id=house.id, created_at=utcnow()))  # fmt: skip
        s.commit()
    engine.dispose()
    return os.environ | env


def timed_import(env: dict, csv_path: Path, expect: str) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dashboard", "import-csv", str(csv_path), *FLAGS], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    if expect not in out.stdout:
        raise SystemExit(f"unexpected output: {out.stdout[-500:]}")
    return seconds


def run_backend(backend: str, csv_path: Path, work: Path) -> tuple[float, float]:
    """(first import s, repeat import s) on a fresh database of the given backend."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT") if backend == "postgresql" else None
    name = f"benchcsv_{uuid.uuid4().hex[:10]}"
    data_dir = work / name
    data_dir.mkdir()
    url = None
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        env = prepare(data_dir, url)
        first = timed_import(env, csv_path, f"Imported {ROWS} readings (0 already stored)")
        again = timed_import(env, csv_path, f"Imported 0 readings ({ROWS} already stored)")
        return first, again
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    csv_path = vic_path()
    if not csv_path.exists():
        raise SystemExit(f"{csv_path} is missing: set ACCURACY_DATA_DIR to the folder holding it")
    backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
    print(f"load average at start: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="bench-import-csv-"))
    try:
        for backend in backends:
            firsts, agains = [], []
            for _ in range(args.runs):
                first, again = run_backend(backend, csv_path, work)
                firsts.append(first)
                agains.append(again)
                print(f"{backend}: first import {first:.2f} s ({ROWS / first:,.0f} readings/s), "
                      f"again (all stored) {again:.2f} s")  # fmt: skip
            print(f"{backend}: median of {args.runs}: first {statistics.median(firsts):.2f} s, "
                  f"again {statistics.median(agains):.2f} s")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
