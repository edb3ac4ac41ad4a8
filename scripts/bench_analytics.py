"""Anomaly detection speed (`dashboard.analytics.anomalies`) on a demo-seeded PostgreSQL database.

Seeds the demo generator (`--houses` x `--days` of 15-minute readings, rollups included) into a fresh
database of its own, `aggbench_analytics_<houses>x<days>`, then times `anomalies()` for one house and
for all houses over the last 7 and 30 local days (`--repeats` runs each, after one warm-up run), plus
the two stages inside it: reading the frame (`consumption_frame`) and the pure detection.
The database is dropped at the end unless `--keep` (then a later run with the same size reuses it;
`--drop` just drops it). `--profile` prints a cProfile of one all-houses 7-day run; `--callbacks` also
times the page's callbacks through Dash's endpoint: anomalies, voltage events and power factor for one
house (answered at once) and for all houses (one background scan computes the three; the voltage and
power-factor cards read its result once it is done), and the scan's wall time until it is on the page.
`--scan` also times the scan itself (`analytics_scan.scan_in_batches`, what the job runs) outside the app.

    .venv/bin/python scripts/bench_analytics.py --houses 50 --days 60
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard import analytics, analytics_scan  # noqa: E402
from dashboard.analytics_anomalies import detect_anomalies_frame  # noqa: E402
from dashboard.config import load_settings  # noqa: E402
from dashboard.db import make_engine, make_session_factory, migrate  # noqa: E402
from dashboard.schema import EnergyRollup, House  # noqa: E402
from dashboard.scope import Scope  # noqa: E402
from dashboard.seed import seed_demo  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TZ = "Europe/Athens"
ADMIN = Scope(role="admin")


def admin_engine():
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def exists(name: str) -> bool:
    with admin_engine().connect() as c:
        return bool(c.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}))


def drop(name: str) -> None:
    with admin_engine().connect() as c:
        c.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def timed(fn, repeats: int) -> tuple[list[float], object]:
    result = fn()  # warm-up: connection pool, imports, PostgreSQL's buffer cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  min {ordered[0]:7.1f} ms"


ANOMALY_OUTPUTS = [
    ("analytics-anomaly-message", "children"),
    ("analytics-anomaly-message", "color"),
    ("analytics-anomaly-message", "is_open"),
    ("analytics-anomaly-graph", "figure"),
    ("analytics-anomaly-counts", "children"),
    ("analytics-anomaly-table", "children"),
    ("analytics-anomaly-shown", "data"),
    ("analytics-anomaly-job", "data"),
    ("analytics-anomaly-poll", "disabled"),
    ("analytics-anomaly-progress", "value"),
    ("analytics-anomaly-progress", "label"),
    ("analytics-anomaly-progress-text", "children"),
    ("analytics-anomaly-progress-box", "style"),
]


def anomaly_payload(choice: str, first: str, last: str, job=None, tick: int | None = None) -> dict:
    """The anomaly card's callback request as the browser sends it with its tab shown (a poll when
    `tick` is given)."""
    values = [
        ("analytics-scope", "value", choice),
        ("analytics-range", "start_date", first),
        ("analytics-range", "end_date", last),
        ("analytics-anomaly-poll", "n_intervals", tick or 0),
        ("analytics-tabs", "value", "anomaly"),
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in ANOMALY_OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in ANOMALY_OUTPUTS],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in values],
        "changedPropIds": ["analytics-anomaly-poll.n_intervals" if tick else "analytics-scope.value"],
        "state": [
            {"id": "analytics-anomaly-job", "property": "data", "value": job},
            {"id": "analytics-anomaly-shown", "property": "data", "value": None},  # shows nothing yet
        ],
    }


def section_payload(name: str, choice: str, first: str, last: str, job=None) -> dict:
    """The voltage (`voltage`) or power-factor (`pf`) card's request with its tab shown; `job` is the
    anomaly card's store."""
    outputs = [(f"analytics-{name}-message", p) for p in ("children", "color", "is_open")] + [
        (f"analytics-{name}-graph", "figure"),
        (f"analytics-{name}-table", "children"),
        (f"analytics-{name}-shown", "data"),
    ]
    values = [
        ("analytics-scope", "value", choice),
        ("analytics-range", "start_date", first),
        ("analytics-range", "end_date", last),
        ("analytics-tabs", "value", name),
        ("analytics-anomaly-job", "data", job),
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in values],
        "changedPropIds": ["analytics-anomaly-job.data" if job else "analytics-scope.value"],
        "state": [{"id": f"analytics-{name}-shown", "property": "data", "value": None}],
    }


def bench_callbacks(settings, factory, house_id: int, repeats: int) -> None:
    """The page's anomaly callback through Dash's endpoint (Flask test client, embedded job threads):
    one house answered at once; all houses: the callback that queues the scan, each poll, and the time
    until the scan's result is on the page (polled every 100 ms here; the page polls every POLL_MS)."""
    from app import create_app
    from dashboard.auth import hash_password
    from dashboard.schema import User
    from pages import analytics as page

    password = "bench-analytics-password"
    with factory() as s:
        s.scalar(select(User).where(User.username == "analyst")).password_hash = hash_password(password)
        s.commit()
    app = create_app(settings)
    client = app.server.test_client()
    r = client.post("/auth/login", data={"username": "analyst", "password": password, "next": "/"})
    assert r.status_code == 303, r.status_code
    csrf = {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}

    def call(body: dict) -> tuple[float, dict]:
        t0 = time.perf_counter()
        r = client.post("/_dash-update-component", json=body, headers=csrf)
        elapsed = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        return elapsed, r.json["response"]

    for days in (7, 30):
        first, last = (d.isoformat() for d in page.last_days(days, TZ))
        call(anomaly_payload(str(house_id), first, last))  # warm-up
        one = [call(anomaly_payload(str(house_id), first, last))[0] for _ in range(repeats)]
        print(f"{days:2d} days, callback, one house: {summary(one)}")
        for name in ("voltage", "pf"):
            call(section_payload(name, str(house_id), first, last))
            one = [call(section_payload(name, str(house_id), first, last))[0] for _ in range(repeats)]
            print(f"{days:2d} days, {name} callback, one house: {summary(one)}")
        starts, polls, results, fills = [], [], [], {"voltage": [], "pf": []}
        waits = []
        for _ in range(repeats):
            app.server.extensions["aggregator"].cache.clear()  # a new scan each time, as for a new range
            t0 = time.perf_counter()
            elapsed, body = call(anomaly_payload("all", first, last))
            starts.append(elapsed)
            job, tick = body["analytics-anomaly-job"]["data"], 0
            for name in ("voltage", "pf"):  # the cards' answer while the scan runs
                waits.append(call(section_payload(name, "all", first, last, job))[0])
            while body["analytics-anomaly-poll"]["disabled"] is False:
                time.sleep(0.1)
                tick += 1
                elapsed, body = call(anomaly_payload("all", first, last, job, tick))
                polls.append(elapsed)
            job = body["analytics-anomaly-job"]["data"]
            assert job.get("done"), body["analytics-anomaly-message"]
            for name in ("voltage", "pf"):  # the store changed: both cards read the finished result
                elapsed, card = call(section_payload(name, "all", first, last, job))
                assert card[f"analytics-{name}-message"]["color"] != "danger", card[
                    f"analytics-{name}-message"
                ]
                fills[name].append(elapsed)
            results.append((time.perf_counter() - t0) * 1000)
        print(f"{days:2d} days, callback, all houses, queue the scan: {summary(starts)}")
        print(f"{days:2d} days, voltage/pf callbacks while the scan runs: {summary(waits)}")
        for name, times in fills.items():
            print(f"{days:2d} days, {name} callback, all houses, scan done: {summary(times)}")
        print(f"{days:2d} days, callback, all houses, each poll ({len(polls)}): {summary(polls)}")
        print(f"{days:2d} days, all houses, scan result on the page after: {summary(results)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--houses", type=int, default=50)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the database for a later run")
    ap.add_argument("--drop", action="store_true", help="only drop the database of this size")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--callbacks", action="store_true", help="also time the page's callbacks (in-process jobs)"
    )
    ap.add_argument("--scan", action="store_true", help="also time the page's all-houses scan (the job)")
    args = ap.parse_args()

    name = f"aggbench_analytics_{args.houses}x{args.days}"
    if args.drop:
        drop(name)
        print(f"dropped {name}")
        return
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    settings = load_settings(
        {"DATABASE_URL": url, "DATA_DIR": f"/tmp/{name}", "DEMO_DATA": "0", "SECRET_KEY": "b" * 48}
    )
    fresh = not exists(name)
    if fresh:
        with admin_engine().connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    try:
        if fresh:
            migrate(engine)
            t0 = time.perf_counter()
            seed_demo(factory, TZ, houses=args.houses, days=args.days, progress=False)
            print(f"seeded {args.houses} houses x {args.days} days in {time.perf_counter() - t0:.0f} s")
        with factory() as s:
            houses = s.scalars(select(House.id).order_by(House.id)).all()
            last = s.scalar(select(func.max(EnergyRollup.bucket_start)))
            rows = s.scalar(select(func.count()).select_from(EnergyRollup))
        end = (last + timedelta(minutes=15)).replace(tzinfo=UTC)
        print(f"{name}: {len(houses)} houses, {rows} rollup rows, data up to {end:%Y-%m-%d %H:%M} UTC")
        one = houses[0]
        for days in (7, 30):
            start = end - timedelta(days=days)
            for label, house_id in ((f"one house (#{one})", one), (f"all {len(houses)} houses", None)):
                with factory() as s:
                    times, events = timed(
                        lambda s=s, h=house_id, a=start: analytics.anomalies(s, ADMIN, a, end, h, TZ),
                        args.repeats,
                    )
                    frame_times, frame = timed(
                        lambda s=s, h=house_id, a=start: analytics.consumption_frame(
                            s, ADMIN, a - analytics.ANOMALY_HISTORY, end, h
                        ),
                        args.repeats,
                    )
                detect_times, _ = timed(lambda f=frame, a=start: detect_anomalies_frame(f, TZ, a, end), 3)
                print(
                    f"{days:2d} days, {label:22s} anomalies(): {summary(times)}  [{len(events)} events; "
                    f"frame {statistics.median(frame_times):.1f} ms ({len(frame)} rows), "
                    f"detection {statistics.median(detect_times):.1f} ms]"
                )
                if house_id is None and hasattr(analytics_scan, "anomalies_in_batches"):
                    with factory() as s:
                        batch_times, batched = timed(
                            lambda s=s, a=start: analytics_scan.anomalies_in_batches(s, ADMIN, a, end, TZ),
                            args.repeats,
                        )
                    assert batched == events, "the batched scan must equal one anomalies() call"
                    print(
                        f"{days:2d} days, {label:22s} the page's job (batches of "
                        f"{analytics_scan.BATCH_HOUSES}): {summary(batch_times)}  "
                        f"= {statistics.median(batch_times) / len(houses):.1f} ms per house"
                    )
        if args.scan:
            for days in (7, 30):
                start = end - timedelta(days=days)
                with factory() as s:
                    scan_times, found = timed(
                        lambda s=s, a=start: analytics_scan.scan_in_batches(s, ADMIN, a, end, TZ),
                        args.repeats,
                    )
                print(
                    f"{days:2d} days, all {len(houses)} houses, the page's scan (anomalies + voltage + power "
                    f"factor, batches of {analytics_scan.BATCH_HOUSES}): {summary(scan_times)}  "
                    f"[{len(found['anomalies'])} anomalies, {len(found['voltage']['events'])} voltage events, "
                    f"{len(found['power_factor'])} house-days; errors {found['errors']}]"
                )
        if args.callbacks:
            bench_callbacks(settings, factory, houses[0], args.repeats)
        if args.profile:
            start = end - timedelta(days=7)
            with factory() as s:
                prof = cProfile.Profile()
                prof.enable()
                analytics.anomalies(s, ADMIN, start, end, None, TZ)
                prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    finally:
        engine.dispose()
        if not args.keep:
            drop(name)
            print(f"dropped {name}")


if __name__ == "__main__":
    main()
