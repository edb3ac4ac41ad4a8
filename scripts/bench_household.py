"""Household page callbacks' speed on 200 houses x 1 year: `python scripts/bench_household.py`.

Data: a PostgreSQL database of its own, `aggbench_household`, KEPT between runs (`--reseed` drops it):
200 houses (40 % with PV, two appliance sub-meters each, 20 in one community), and a year of rollups up to
now written directly in SQL (15-minute, hourly and daily per house; hourly and daily per appliance: about
11 million rows), the shapes the ingest path writes. The demo generator would take most of an hour for the
same rows; this page reads only rollups, so their number and layout is what its cost depends on.

Measures every callback of the page through Dash's real endpoint (`/_dash-update-component`, the cookie
login, the scope checks) with Flask's test client in this process: for a consumer (their one house) and
an analyst (a house picked from 200), each period, `--repeat` times. Prints p50 and p95 per callback.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_ingest import PG_ADMIN  # noqa: E402

_MIGRATION = importlib.import_module("dashboard.migrations.versions.0014_interval_settlement")
QUARTERS, PG_HOURS, PG_DAYS = _MIGRATION.QUARTERS, _MIGRATION.PG_HOURS, _MIGRATION.PG_DAYS
NAME = "aggbench_household"
HOUSES, DAYS = 200, 365

SEED_SQL = [
    # houses, meters, PV, appliances (names are encrypted by the app: seeded through the ORM below)
    """INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh,
         production_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count)
       SELECT '15min', 'house', h.id, t,
              80 + 60 * (1 + sin(extract(epoch FROM t) / 3600 * pi() / 12)) + 40 * random(),
              CASE WHEN h.id % 5 < 2 THEN greatest(0, 350 * sin((extract(hour FROM t) - 4) * pi() / 12))
                   ELSE 0 END,
              0, 0, 0, 0, 1
       FROM houses h, generate_series(date_trunc('hour', now() AT TIME ZONE 'UTC') - interval ':days days',
                                      now() AT TIME ZONE 'UTC', interval '15 minutes') t""",
    """INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh,
         production_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count)
       SELECT 'hour', entity_kind, entity_id, date_trunc('hour', bucket_start), sum(consumption_wh),
              sum(production_wh), 0, 0, 0, 0, count(*)
       FROM energy_rollups WHERE resolution = '15min' GROUP BY entity_kind, entity_id, date_trunc('hour', bucket_start)""",
    """INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh,
         production_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count)
       SELECT 'hour', 'device', d.id, r.bucket_start, r.consumption_wh * 0.2, 0, 0, 0, 0, 0, 4
       FROM devices d JOIN energy_rollups r ON r.resolution = 'hour' AND r.entity_kind = 'house'
            AND r.entity_id = d.house_id WHERE d.kind = 'appliance'""",
    """INSERT INTO energy_rollups (resolution, entity_kind, entity_id, bucket_start, consumption_wh,
         production_wh, voltage_sum, voltage_count, pf_sum, pf_count, readings_count)
       SELECT 'day', entity_kind, entity_id, (date_trunc('day', (bucket_start AT TIME ZONE 'UTC') AT TIME ZONE
              'Europe/Athens') AT TIME ZONE 'Europe/Athens') AT TIME ZONE 'UTC', sum(consumption_wh),
              sum(production_wh), 0, 0, 0, 0, sum(readings_count)
       FROM energy_rollups WHERE resolution = 'hour' GROUP BY 1, 2, 3, 4""",  # local days, as the app keeps them
    # grid import and export per interval, summed up, as ingestion keeps them (migration 0014's backfill)
    QUARTERS,
    PG_HOURS,
    PG_DAYS,
]


def seed(url: str, settings) -> None:
    from datetime import datetime

    from dashboard.auth import create_user
    from dashboard.db import make_engine, make_session_factory, migrate
    from dashboard.schema import PV, Community, Device, House

    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)
    now = datetime(2026, 1, 1)
    with factory() as s:
        community = Community(name="Bench community", created_at=now)
        houses = [House(name=f"House {i + 1}", created_at=now) for i in range(HOUSES)]
        community.houses.extend(houses[:20])
        s.add_all([community, *houses])
        s.flush()
        for h in houses:
            s.add(Device(serial=f"H{h.id}-MAIN", name="Main meter", kind="meter", direction="consumption",
                         house_id=h.id, created_at=now))  # fmt: skip
            for a in ("Heat pump", "Water heater"):
                s.add(Device(serial=f"H{h.id}-{a}", name=a, kind="appliance", direction="consumption",
                             house_id=h.id, created_at=now))  # fmt: skip
            if h.id % 5 < 2:
                pv = PV(house_id=h.id, name="Roof", capacity_kwp=5.0, created_at=now)
                s.add(pv)
                s.flush()
                s.add(Device(serial=f"H{h.id}-PV", name="Inverter", kind="pv", direction="production",
                             house_id=h.id, pv_id=pv.id, created_at=now))  # fmt: skip
        consumer = create_user(s, "consumer", "bench-password-1", "consumer", [houses[1].id])
        consumer.communities.append(community)
        create_user(s, "analyst", "bench-password-1", "analyst", [])
        s.commit()
    with engine.begin() as c:
        for i, sql in enumerate(SEED_SQL):
            t0 = time.perf_counter()
            c.execute(text(sql.replace(":days", str(DAYS))))
            print(f"seed step {i + 1}/{len(SEED_SQL)}: {time.perf_counter() - t0:.0f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE energy_rollups"))
        rows = c.execute(text("SELECT count(*) FROM energy_rollups")).scalar()
    print(f"seeded {rows:,} rollup rows", flush=True)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reseed", action="store_true")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": NAME}).scalar()
        if exists and args.reseed:
            c.execute(text(f"DROP DATABASE {NAME} WITH (FORCE)"))
            exists = False
        if not exists:
            c.execute(text(f"CREATE DATABASE {NAME}"))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{NAME}"
    from tests.conftest import make_settings
    from tests.factories import login_form_fields

    tmp = tempfile.mkdtemp(prefix="bench-household-")
    settings = make_settings(tmp, DATABASE_URL=url.replace("+psycopg2", ""))
    if not exists:
        seed(url, settings)

    from app import create_app

    app = create_app(settings)
    client = app.server.test_client()
    outputs = {
        "flow": ["home-consumption.children", "home-flow.figure"],
        "comparison": ["home-comparison.children"],
        "communities": ["home-communities.children"],
    }
    times: dict[tuple[str, str], list[float]] = {}
    for role, house in (("consumer", "2"), ("analyst", "117")):
        client.get("/login")
        data = {"username": role, "password": "bench-password-1", "next": "/"} | login_form_fields(client)
        assert client.post("/auth/login", data=data).status_code == 303
        csrf = {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}
        for period in ("today", "yesterday", "week", "month", "year"):
            for name in outputs:
                body = payload(name, house, period)
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    r = client.post("/_dash-update-component", json=body, headers=csrf)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert r.status_code == 200, r.get_data(as_text=True)[:300]
                    times.setdefault((role, name), []).append(elapsed)
                    times.setdefault((role, f"{name} ({period})"), []).append(elapsed)
    print("| role | callback | n | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for (role, name), values in sorted(times.items()):
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"| {role} | {name} | {len(values)} | {statistics.median(values):.0f} | {p95:.0f} |")


FLOW_OUTPUTS = ["home-consumption", "home-production", "home-self-consumption", "home-self-sufficiency",
                "home-import", "home-export"]  # fmt: skip


def payload(name: str, house: str, period: str) -> dict:
    if name == "flow":
        outs = [(i, "children") for i in FLOW_OUTPUTS] + [
            ("home-caption", "children"), ("home-flow", "figure"), ("home-appliances", "figure"),
            ("home-appliances-note", "children"), ("home-message", "children"), ("home-message", "color"),
            ("home-message", "is_open"),
        ]  # fmt: skip
        output = ".." + "...".join(f"{i}.{p}" for i, p in outs) + ".."
        outputs = [{"id": i, "property": p} for i, p in outs]
    else:
        target = {"comparison": "home-comparison", "communities": "home-communities"}[name]
        output, outputs = f"{target}.children", {"id": target, "property": "children"}
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [{"id": "home-house", "property": "value", "value": house},
                   {"id": "home-period", "property": "value", "value": period}],
        "changedPropIds": ["home-period.value"],
        "state": [],
    }  # fmt: skip


if __name__ == "__main__":
    main()
