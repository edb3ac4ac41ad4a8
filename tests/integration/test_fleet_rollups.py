"""The fleet's pre-summed rollups ('all', 0) always equal the sum of every house's and PV park's rollups:
after seeding, under concurrent ingestion on the real PostgreSQL (no deadlock on the one hot row per
bucket), after a house is deleted, and when migration 0003 fills them in for an existing database."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from dashboard.db import alembic_config
from dashboard.ingest import ingest_readings
from dashboard.readings import Reading
from dashboard.scope import system_scope
from dashboard.seed import seed_demo

TZ = "Europe/Athens"
ADDITIVE = ("consumption_wh", "production_wh", "voltage_sum", "voltage_count", "pf_sum", "pf_count",
            "readings_count")  # fmt: skip


def fleet_vs_summed(engine) -> tuple[dict, dict]:
    """{(resolution, bucket): additive sums} of the fleet's rows and of every house's and park's rows."""
    cols = ", ".join(f"SUM({c})" for c in ADDITIVE)
    sql = (
        f"SELECT resolution, bucket_start, {cols} FROM energy_rollups WHERE {{where}} "
        "GROUP BY resolution, bucket_start"
    )
    with engine.connect() as c:
        fleet = c.execute(text(sql.format(where="entity_kind = 'all' AND entity_id = 0"))).all()
        summed = c.execute(text(sql.format(where="entity_kind IN ('house', 'pv_park')"))).all()
    rounded = lambda rows: {(r[0], r[1]): tuple(round(float(v), 6) for v in r[2:]) for r in rows}  # noqa: E731
    return rounded(fleet), rounded(summed)


def assert_fleet_is_the_sum(engine) -> int:
    fleet, summed = fleet_vs_summed(engine)
    assert summed, "no house or park rollups to compare"
    assert fleet.keys() == summed.keys()
    assert fleet == summed
    return len(fleet)


@pytest.fixture
def pg_engine(app):
    return app.server.extensions["aggregator"].engine


def test_seeded_fleet_rows_equal_the_houses_and_parks_summed_per_bucket(app, factory, pg_engine):
    seed_demo(factory, TZ, houses=3, days=3, progress=False)
    buckets = assert_fleet_is_the_sum(pg_engine)
    assert buckets > 3 * 24 * 4  # every resolution: 15 min, hour and day
    with pg_engine.connect() as c:
        extremes = c.execute(
            text("SELECT COUNT(*) FROM energy_rollups WHERE entity_kind = 'all' AND voltage_min IS NOT NULL")
        ).scalar()
    assert extremes == 0


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_seed_sums_the_fleet_once_and_a_backfill_after_it_adds_to_it(request, database, tmp_path):
    """seed_demo writes the houses without fleet rows and sums the fleet once at the end; the readings a
    restart backfills go through the normal path, which adds them to the fleet's rows."""
    from datetime import UTC

    from app import create_app
    from dashboard.seed import backfill_demo
    from tests.conftest import make_settings

    the_app = (
        request.getfixturevalue("app") if database == "postgresql" else create_app(make_settings(tmp_path))
    )
    services = the_app.server.extensions["aggregator"]
    try:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        end = now.replace(minute=now.minute - now.minute % 15) - timedelta(hours=6)
        seed_demo(services.session_factory, TZ, houses=2, days=2, end=end, progress=False)
        seeded = assert_fleet_is_the_sum(services.engine)
        assert backfill_demo(services.session_factory, TZ, progress=False) > 0
        assert assert_fleet_is_the_sum(services.engine) > seeded  # new buckets, summed into the fleet too
    finally:
        if database == "sqlite":
            services.engine.dispose()


def test_concurrent_ingests_into_the_same_buckets_neither_deadlock_nor_lose_a_watt_hour(
    app, world, factory, pg_engine
):
    """Eight threads, each its own transaction per batch, all hitting the same fleet rows."""
    serials = ["H1-MAIN", "H1-PV", "H1-EV", "H2-MAIN", "PARK-INV"]
    start = datetime(2026, 3, 1, 0, 0)
    batches = []
    for thread in range(8):
        rng = random.Random(thread)
        for batch in range(5):
            readings = []
            for i in range(40):  # 40 distinct 10-second steps per batch, over three quarter hours
                ts = start + timedelta(seconds=10 * (thread * 200 + batch * 40 + i) % 2700)
                ts += timedelta(milliseconds=thread * 10 + batch)  # unique per thread and batch
                for serial in serials:
                    readings.append(Reading(serial, ts, 1000.0, rng.uniform(1, 50), 230.0, 4.3, 0.95))
            batches.append((thread, readings))
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            for owner, readings in batches:
                if owner != thread:
                    continue
                with factory() as session:
                    ingest_readings(session, system_scope(), readings, TZ)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    stored = sum(len(r) for _t, r in batches)
    with pg_engine.connect() as c:
        fleet_readings = c.execute(
            text(
                "SELECT SUM(readings_count) FROM energy_rollups WHERE entity_kind = 'all' AND resolution = 'day'"
            )
        ).scalar()
        expected_wh = c.execute(
            text(
                "SELECT SUM(m.energy_wh) FROM measurements m JOIN devices d ON d.id = m.device_id "
                "WHERE d.kind <> 'appliance'"
            )
        ).scalar()
        fleet_wh = c.execute(
            text(
                "SELECT SUM(consumption_wh + production_wh) FROM energy_rollups "
                "WHERE entity_kind = 'all' AND resolution = '15min'"
            )
        ).scalar()
    assert fleet_readings == stored * 4 // 5  # every reading but the appliance's (a sub-meter)
    assert fleet_wh == pytest.approx(expected_wh, rel=1e-9)
    assert_fleet_is_the_sum(pg_engine)


def test_deleting_a_house_takes_its_energy_out_of_the_fleet(client, world, factory, pg_engine):
    t0 = datetime(2026, 3, 1, 10, 0)
    readings = [Reading(s, t0, 1000.0, 250.0, 231.0, 4.3, 0.9) for s in ("H1-MAIN", "H1-PV", "H2-MAIN")]
    readings.append(Reading("H1-MAIN", t0 + timedelta(hours=3), 1000.0, 100.0, 231.0, 4.3, 0.9))
    with factory() as session:
        ingest_readings(session, system_scope(), readings, TZ)
        session.commit()
    admin = world.headers["admin"]
    assert client.delete(f"/api/v1/houses/{world.house1}", headers=admin).status_code == 204
    assert_fleet_is_the_sum(pg_engine)
    with pg_engine.connect() as c:
        hours = c.execute(
            text(
                "SELECT bucket_start FROM energy_rollups WHERE entity_kind = 'all' AND resolution = 'hour' "
                "ORDER BY bucket_start"
            )
        ).scalars().all()  # fmt: skip
    assert hours == [t0]  # the 13:00 bucket held only house A's reading: gone, not a zero row


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_migration_0003_fills_the_fleet_rows_of_an_existing_database(request, database, tmp_path):
    """Seed, take the database back to 0002 (no fleet rows), upgrade: the fleet rows are rebuilt."""
    from app import create_app
    from tests.conftest import make_settings

    if database == "postgresql":
        the_app = request.getfixturevalue("app")
    else:
        the_app = create_app(make_settings(tmp_path))
    services = the_app.server.extensions["aggregator"]
    engine = services.engine
    try:
        seed_demo(services.session_factory, TZ, houses=2, days=2, progress=False)
        before, _ = fleet_vs_summed(engine)
        with engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        with engine.connect() as c:
            assert (
                c.execute(text("SELECT COUNT(*) FROM energy_rollups WHERE entity_kind = 'all'")).scalar() == 0
            )
        with engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        after, summed = fleet_vs_summed(engine)
        assert after == summed == before and len(after) > 2 * 24 * 4
    finally:
        if database == "sqlite":
            engine.dispose()


def test_deleting_a_house_while_its_and_other_houses_readings_arrive_keeps_the_fleet_exact(
    client, world, factory, pg_engine
):
    """Ingests for both houses run in threads while house A is deleted: no deadlock, house B's readings
    all land, house A's either land before the delete (and leave with it) or are refused after it, and
    the fleet equals the houses and park that remain."""
    start = datetime(2026, 3, 1, 0, 0)
    errors: dict[str, list] = {"H1": [], "H2": []}
    accepted = {"H1": 0, "H2": 0}

    def run(house: str, serials: list[str]) -> None:
        for batch in range(30):
            ts0 = start + timedelta(minutes=batch)
            readings = [Reading(s, ts0 + timedelta(seconds=10 * i), 1000.0, 2.5, 231.0, 4.3, 0.9)
                        for s in serials for i in range(6)]  # fmt: skip
            try:
                with factory() as session:
                    accepted[house] += ingest_readings(session, system_scope(), readings, TZ).accepted
                    session.commit()
            except Exception as exc:  # noqa: BLE001 - house A's devices are gone after the delete
                errors[house].append(exc)

    threads = [
        threading.Thread(target=run, args=("H1", ["H1-MAIN", "H1-PV"])),
        threading.Thread(target=run, args=("H2", ["H2-MAIN", "PARK-INV"])),
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert client.delete(f"/api/v1/houses/{world.house1}", headers=world.headers["admin"]).status_code == 204
    for t in threads:
        t.join(120)
    assert errors["H2"] == [] and accepted["H2"] == 30 * 12
    assert all("deadlock" not in str(e).lower() for e in errors["H1"])
    assert_fleet_is_the_sum(pg_engine)
    with pg_engine.connect() as c:
        fleet_wh = c.execute(
            text("SELECT SUM(consumption_wh + production_wh) FROM energy_rollups "
                 "WHERE entity_kind = 'all' AND resolution = 'day'")
        ).scalar()  # fmt: skip
    assert fleet_wh == pytest.approx(30 * 12 * 2.5)  # house B's and the park's, nothing of house A


def test_a_csv_import_over_several_chunks_adds_each_reading_to_the_fleet_once(
    factory, world, pg_engine, tmp_path
):
    from dashboard.csv_import import CHUNK, import_csv

    path = tmp_path / "readings.csv"
    rows = ["device_id,timestamp,power_w,energy_wh"]
    count = CHUNK * 2 + 500  # three chunks, the same buckets in each
    for i in range(count):
        serial = ("H1-MAIN", "H2-MAIN", "PARK-INV", "H1-EV")[i % 4]
        ts = datetime(2026, 3, 1) + timedelta(seconds=i)
        rows.append(f"{serial},{ts:%Y-%m-%dT%H:%M:%S}Z,1000,0.5")
    path.write_text("\n".join(rows) + "\n")
    result = import_csv(factory, system_scope(), path, TZ, 900, progress=False)
    assert result.accepted == count
    assert_fleet_is_the_sum(pg_engine)
    with pg_engine.connect() as c:
        readings, wh = c.execute(
            text("SELECT SUM(readings_count), SUM(consumption_wh + production_wh) FROM energy_rollups "
                 "WHERE entity_kind = 'all' AND resolution = 'hour'")
        ).one()  # fmt: skip
    not_appliance = count - count // 4
    assert readings == not_appliance and wh == pytest.approx(0.5 * not_appliance)


def test_rebuild_fleet_command_repairs_fleet_rows_that_drifted(app, factory, pg_engine, pg_url, tmp_path):
    """Readings stored by a version without fleet rows (a rolling upgrade) leave the fleet short:
    `python -m dashboard rebuild-fleet` recomputes it from the houses and parks."""
    from tests.integration.test_cli import cli

    seed_demo(factory, TZ, houses=2, days=2, progress=False)
    with pg_engine.begin() as c:  # as if some buckets had been ingested by an older version
        c.execute(
            text(
                "DELETE FROM energy_rollups WHERE entity_kind = 'all' AND resolution = 'hour' "
                "AND bucket_start < (SELECT MIN(bucket_start) + INTERVAL '6 hours' FROM energy_rollups)"
            )
        )
        c.execute(text("UPDATE energy_rollups SET consumption_wh = consumption_wh + 1 "
                       "WHERE entity_kind = 'all' AND resolution = 'day'"))  # fmt: skip
    fleet, summed = fleet_vs_summed(pg_engine)
    assert fleet != summed
    result = cli(pg_url, tmp_path, "rebuild-fleet")
    assert "Fleet rollups rebuilt" in result.stdout
    assert_fleet_is_the_sum(pg_engine)
