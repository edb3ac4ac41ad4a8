"""All-houses reads with and without the fleet's pre-summed rollups, on the kept `make bench-ui` database.

Times, in-process on PostgreSQL (`aggbench_ui`: 200 demo houses x 365 days, seeded by `make bench-ui`),
the reads that every all-houses view makes: `queries.energy_series` at the resolutions the pages pick
(24 h hourly, 7 d hourly, 30 d of 15 minutes, 365 d daily) and `exports.summary` (30 local days,
daily), once through the fleet's rows ('all', 0) as the app reads them, and once summing every house's
and park's rows as before migration 0003 (the same SQL with `scope_filter`). Checks that both give the
same numbers, then prints p50/p95 per read (`--repeats` runs after one warm-up each).

    .venv/bin/python scripts/bench_fleet.py [--database aggbench_ui] [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from dashboard import exports, queries  # noqa: E402
from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from dashboard.schema import EnergyRollup  # noqa: E402
from dashboard.scope import Scope  # noqa: E402

ANALYST = Scope(role="analyst", user_id=0)
TZ = "Europe/Athens"


def summed(scope, house_id, community_id) -> bool:
    """Never the whole fleet: every house's and park's rows, summed per bucket, as before the fleet's rows."""
    return False


def timed(read, session, repeats: int) -> tuple[list[float], object]:
    result = read(session)  # warm-up (and the value compared)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        read(session)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database", default="aggbench_ui")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    settings = load_settings(
        {
            "DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{args.database}",
            "DEMO_DATA": "0",
            "DATA_DIR": str(ROOT / "var" / "bench-fleet"),
            "TIMEZONE": TZ,
        }  # fmt: skip
    )
    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        end = s.execute(select(func.max(EnergyRollup.bucket_start))).scalar()
    end = end.replace(minute=0) + timedelta(hours=1)
    reads = {
        "energy_series 24 h hourly": lambda s: queries.energy_series(s, ANALYST, "hour", end - timedelta(hours=24), end),
        "energy_series 7 d hourly": lambda s: queries.energy_series(s, ANALYST, "hour", end - timedelta(days=7), end),
        "energy_series 30 d 15 min": lambda s: queries.energy_series(s, ANALYST, "15min", end - timedelta(days=30), end),
        "energy_series 365 d daily": lambda s: queries.energy_series(s, ANALYST, "day", end - timedelta(days=365), end),
        "exports.summary 30 d daily": lambda s: exports.summary(
            s, ANALYST, "daily", datetime(end.year, end.month, end.day) - timedelta(days=30),
            datetime(end.year, end.month, end.day), TZ, "k").rows,
    }  # fmt: skip
    print(
        f"database {args.database}, data up to {end:%Y-%m-%d %H:%M} UTC, {args.repeats} runs after a warm-up"
    )
    print(
        "| read (all 200 houses) | fleet rows p50 / p95 (ms) | houses summed p50 / p95 (ms) | same result |"
    )
    print("|---|---|---|---|")
    for name, read in reads.items():
        with factory() as s:
            fleet, fleet_result = timed(read, s, args.repeats)
        with factory() as s, mock.patch.object(queries, "whole_fleet", summed), \
                mock.patch.object(exports, "whole_fleet", summed):  # fmt: skip
            old, old_result = timed(read, s, args.repeats)
        same = _close(fleet_result, old_result)
        print(f"| {name} | {pct(fleet, .5):.1f} / {pct(fleet, .95):.1f} | {pct(old, .5):.1f} / {pct(old, .95):.1f} "
              f"| {'yes' if same else 'NO'} |")  # fmt: skip
    engine.dispose()
    return 0


def _close(a, b) -> bool:
    """Equal up to float summation order (six decimals, as the API rounds)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-5 * max(1.0, abs(a))
    return a == b


if __name__ == "__main__":
    sys.exit(main())
