"""Grafana (deploy/grafana/): every dashboard panel's SQL, run as the `grafana-role` login against a seeded
PostgreSQL, returns plausible rows that agree with the API; the login reads the aggregate views of schema
grafana and nothing else; small communities and thin buckets (MIN_AGGREGATE_HOUSES) are left out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.conftest import TEST_SECRET, fresh_pg_database, make_settings

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DS_TYPE = "grafana-postgresql-datasource"
# a column naming one house, device or person (counts such as houses_reporting are aggregates)
PERSONAL = re.compile(
    r"^(house|house_id|house_name|name|device|device_id)$|address|mail|user|serial|full_name|password"
)
AGGREGATE_COLUMNS = {"time", "community_id", "community", "demand_kwh", "production_kwh", "net_kwh",
                     "houses_reporting", "houses", "pv_parks", "scope", "last_reading", "devices",
                     "devices_reported_last_hour"}  # fmt: skip


def provisioned_datasource() -> dict:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "aggregator.yaml").read_text())
    (datasource,) = config["datasources"]
    return datasource


def targets():
    """(dashboard file, panel title, SQL) of every panel query and template-variable query."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield path.name, panel["title"], target["rawSql"]
        for var in board["templating"]["list"]:
            yield path.name, f"variable {var['name']}", var["query"]


# ---- a small expander of the Grafana macros and variables the panels use ---------------------------------
# Grafana interpolates the dashboard's variables ($community, ${community}, [[community]], $__interval) first,
# then the PostgreSQL data source expands its macros exactly as pkg/tsdb/grafana-postgresql-datasource/
# macros.go does: $__timeFilter(c) -> c BETWEEN 'from' AND 'to' (RFC 3339, UTC); $__timeFrom() / $__timeTo()
# -> 'from' / 'to'; $__timeGroup(c, '1h') -> floor(extract(epoch from c)/3600)*3600; $__timeGroupAlias
# adds AS "time". Any other macro fails the test (the expander would not know what Grafana sends).

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(interval: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", interval.strip().strip("'"))
    assert match, f"interval {interval!r}"
    return int(match[1]) * UNITS[match[2]]


def expand(sql: str, start: datetime, end: datetime, interval: str, variables: dict[str, object]) -> str:
    sql = sql.replace("$__interval_ms", str(seconds(interval) * 1000)).replace("$__interval", interval)
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}}}", str(value)).replace(f"[[{name}]]", str(value))
        sql = re.sub(rf"\${name}\b", str(value), sql)
    t0, t1 = (t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in (start, end))

    def macro(match: re.Match) -> str:
        name, args = match[1], [a.strip() for a in match[2].split(",")]
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{t0}' AND '{t1}'"
        if name in ("__timeFrom", "__timeTo"):
            return f"'{t0 if name == '__timeFrom' else t1}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            s = seconds(args[1])
            group = f"floor(extract(epoch from {args[0]})/{s})*{s}"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise AssertionError(f"macro ${name} is not expanded by this test")

    sql = re.sub(r"\$(__\w+)\(([^)]*)\)", macro, sql)
    assert "$" not in sql and "[[" not in sql, f"unexpanded variable in {sql}"
    return sql


def test_the_expander_matches_grafanas_macros():
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 6, tzinfo=UTC)
    sql = 'SELECT $__timeGroupAlias("time", $__interval), x FROM v WHERE $__timeFilter("time") AND c = $community'
    assert expand(sql, t0, t1, "1h", {"community": 7}) == (
        'SELECT floor(extract(epoch from "time")/3600)*3600 AS "time", x FROM v '
        "WHERE \"time\" BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T06:00:00Z' AND c = 7"
    )
    with pytest.raises(AssertionError):
        expand("SELECT $__unixEpochFilter(t)", t0, t1, "1h", {})


# ---- the files, without services ------------------------------------------------------------------------


def test_dashboards_are_valid_name_the_provisioned_datasource_and_read_only_schema_grafana():
    datasource = provisioned_datasource()
    assert datasource["type"] == DS_TYPE and datasource["uid"]
    assert "${GRAFANA_DB_PASSWORD}" == datasource["secureJsonData"]["password"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "aggregator.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    expected = {"type": DS_TYPE, "uid": datasource["uid"]}
    assert {p.stem for p in DASHBOARDS} == {"fleet", "community", "freshness"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids and board["title"] and board["panels"]
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"] == expected, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target.get("datasource", expected) == expected and target["rawQuery"] is True
        for var in board["templating"]["list"]:
            assert var["datasource"] == expected
    for name, title, sql in targets():
        tables = re.findall(r'\b(?:from|join)\s+([A-Za-z_"][\w."]*)', sql, flags=re.IGNORECASE)
        assert tables, (name, title)
        assert all(t.startswith("grafana.") for t in tables), (name, title, tables)
        assert "public." not in sql and "pg_" not in sql, (name, title)


# ---- a seeded PostgreSQL and the role ---------------------------------------------------------------------

HOUSES, DAYS = 12, 3
END = datetime.now(UTC).replace(second=0, microsecond=0)
END = END.replace(minute=END.minute - END.minute % 15)


def cli(db_url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "GRAFANA_DB_PASSWORD"}
    environment = inherited | {"DATABASE_URL": db_url, "DATA_DIR": str(tmp_path), "DEMO_DATA": "0",
                               "SECRET_KEY": TEST_SECRET} | env  # fmt: skip
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def grafana_db(tmp_path_factory):
    """A fresh database seeded with demo data, the Grafana role made by the CLI (k = the largest community's
    size, so the smaller ones must vanish), and an engine connected as that role; the role is dropped after."""
    from app import create_app
    from dashboard.seed import seed_demo

    tmp = tmp_path_factory.mktemp("grafana")
    with fresh_pg_database("aggtest_grafana") as url:
        app = create_app(make_settings(tmp, DATABASE_URL=url))
        services = app.server.extensions["aggregator"]
        seed_demo(
            services.session_factory, "Europe/Athens", houses=HOUSES, days=DAYS, end=END, progress=False
        )
        with services.engine.connect() as conn:
            sizes = dict(conn.execute(text(
                "SELECT community_id, count(*) FROM community_houses GROUP BY community_id")).all())  # fmt: skip
        k = max(sizes.values())
        assert min(sizes.values()) < k, sizes  # the demo must hold a community too small to be shown
        role, password = f"grafana_test_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex + "Aa1"
        (tmp / "password").write_text(password + "\n")
        result = cli(url, tmp, "grafana-role", "--name", role, "--password-file", str(tmp / "password"),
                     MIN_AGGREGATE_HOUSES=str(k))  # fmt: skip
        # a new session per connect (NullPool): a test's SET never leaks into the next
        as_role = create_engine(make_url(url).set(username=role, password=password), poolclass=NullPool)
        try:
            assert result.returncode == 0, result.stderr
            assert f"Created role '{role}'" in result.stdout and f"fewer than {k} houses" in result.stdout
            yield {"app": app, "url": url, "role": role, "password": password, "k": k, "sizes": sizes,
                   "as_role": as_role, "admin": services.engine, "tmp": tmp, "cli": result}  # fmt: skip
        finally:
            as_role.dispose()
            services.engine.dispose()
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
            admin.dispose()


def visible(db) -> list[int]:
    return sorted(c for c, n in db["sizes"].items() if n >= db["k"])


def run_as_role(db, sql: str, **params) -> list[dict]:
    with db["as_role"].connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql), params)]


def test_every_panel_query_returns_plausible_rows_as_the_grafana_role(grafana_db):
    db = grafana_db
    start = END - timedelta(days=DAYS)
    ran = 0
    for community in visible(db):
        for name, title, sql in targets():
            rows = run_as_role(db, expand(sql, start, END, "1h", {"community": community}))
            assert rows, (name, title)
            ran += 1
            for row in rows:
                values = {k.lower(): v for k, v in row.items()}
                for column in ("demand", "production"):
                    if values.get(column) is not None:
                        assert 0 <= values[column] < 1e6, (title, row)
                if {"demand", "production", "net"} <= values.keys():
                    assert values["net"] == pytest.approx(values["demand"] - values["production"], abs=1e-6)
                if "houses" in values:
                    assert db["k"] <= values["houses"] <= HOUSES, (title, row)
                if "time" in values:
                    assert values["time"] is not None
            if title == "variable community":
                assert sorted(r["__value"] for r in rows) == visible(db)
    assert ran == len(list(targets())) * len(visible(db))
    fresh = run_as_role(db, "SELECT * FROM grafana.data_freshness")
    fleet = next(r for r in fresh if r["scope"] == "fleet")
    assert fleet["devices"] > HOUSES and fleet["devices_reported_last_hour"] == fleet["devices"]
    assert END - timedelta(minutes=30) <= fleet["last_reading"].replace(tzinfo=UTC) < END
    assert sorted(r["community_id"] for r in fresh if r["scope"] == "community") == visible(db)


def test_daily_energy_equals_the_apis_figures_for_the_fleet_and_a_community(grafana_db):
    from flask_jwt_extended import create_access_token

    from dashboard.schema import User

    db = grafana_db
    app = db["app"]
    with app.server.extensions["aggregator"].session_factory() as s:
        analyst = s.query(User).filter(User.role == "analyst").first()
    with app.server.app_context():
        headers = {"Authorization": f"Bearer {create_access_token(identity=str(analyst.id))}"}
    day = run_as_role(db, 'SELECT "time" FROM grafana.fleet_energy_daily ORDER BY "time"')[1]["time"]
    params = {
        "resolution": "day",
        "start": day.isoformat() + "Z",
        "end": (day + timedelta(hours=1)).isoformat() + "Z",
    }
    client = app.server.test_client()
    for view, extra, community in [("fleet_energy_daily", {}, None),
                                   ("community_energy_daily", {"community_id": visible(db)[0]}, visible(db)[0])]:  # fmt: skip
        answer = client.get("/api/v1/energy", query_string=params | extra, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        (bucket,) = answer.get_json()["series"]
        where = " AND community_id = :c" if community else ""
        (row,) = run_as_role(db, f'SELECT * FROM grafana.{view} WHERE "time" = :d{where}', d=day, c=community)
        assert row["demand_kwh"] == pytest.approx(bucket["consumption_kwh"], abs=1e-3)
        assert row["production_kwh"] == pytest.approx(bucket["production_kwh"], abs=1e-3)
        assert row["net_kwh"] == pytest.approx(bucket["net_kwh"], abs=1e-3)
        assert row["demand_kwh"] > 0


def test_small_communities_and_thin_buckets_are_left_out(grafana_db):
    db = grafana_db
    hidden = sorted(c for c, n in db["sizes"].items() if n < db["k"])
    for view in (
        "communities",
        "community_energy_15min",
        "community_energy_hourly",
        "community_energy_daily",
    ):
        seen = {
            r["community_id"] for r in run_as_role(db, f"SELECT DISTINCT community_id FROM grafana.{view}")
        }
        assert seen == set(visible(db)), view
    assert not hidden or all(
        not run_as_role(db, "SELECT 1 FROM grafana.data_freshness WHERE community_id = :c", c=c)
        for c in hidden
    )
    community = visible(db)[0]
    hour = run_as_role(db, 'SELECT "time" FROM grafana.community_energy_hourly WHERE community_id = :c '
                       'ORDER BY "time" LIMIT 1 OFFSET 5', c=community)[0]["time"]  # fmt: skip
    query = text(
        'SELECT count(*) FROM grafana.community_energy_hourly WHERE community_id = :c AND "time" = :t'
    )
    fleet = text('SELECT count(*) FROM grafana.fleet_energy_hourly WHERE "time" = :t')
    with db["admin"].connect() as conn:  # one house of that community silent for that hour, then undone
        assert conn.scalar(query, {"c": community, "t": hour}) == 1
        conn.execute(text(
            "DELETE FROM energy_rollups WHERE resolution = 'hour' AND entity_kind = 'house' AND bucket_start = :t "
            "AND entity_id = (SELECT min(house_id) FROM community_houses WHERE community_id = :c)"
        ), {"c": community, "t": hour})  # fmt: skip
        assert conn.scalar(query, {"c": community, "t": hour}) == 0  # k - 1 houses: the bucket is a gap
        assert conn.scalar(fleet, {"t": hour}) == (1 if HOUSES - 1 >= db["k"] else 0)
        conn.execute(text("DELETE FROM energy_rollups WHERE resolution = 'hour' AND entity_kind = 'house' "
                          "AND bucket_start = :t"), {"t": hour})  # fmt: skip
        assert conn.scalar(fleet, {"t": hour}) == 0  # no house at all: the fleet's bucket is a gap too
        conn.rollback()


@pytest.mark.parametrize("table", ["measurements", "users", "houses", "devices", "api_keys", "energy_rollups",
                                   "communities", "community_houses", "api_access_log"])  # fmt: skip
def test_the_role_cannot_read_the_tables(grafana_db, table):
    with pytest.raises(DBAPIError, match="permission denied"):
        run_as_role(grafana_db, f"SELECT * FROM public.{table} LIMIT 1")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO grafana.communities (community_id, community, houses, pv_parks) VALUES (99, 'x', 9, 0)",
        "DELETE FROM public.measurements",
        "UPDATE public.houses SET share_with_third_parties = true",
        "CREATE TABLE public.grafana_was_here (i integer)",
        "CREATE TABLE grafana.grafana_was_here (i integer)",
        "CREATE TEMP TABLE grafana_was_here (i integer)",
        "CREATE OR REPLACE FUNCTION grafana.min_aggregate_houses() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE FUNCTION pg_temp.leak(x float) RETURNS bool LANGUAGE sql AS 'SELECT true'",
    ],
)
def test_the_role_cannot_write_even_after_leaving_read_only_mode(grafana_db, statement):
    with grafana_db["as_role"].connect() as conn:
        assert conn.scalar(text("SHOW transaction_read_only")) == "on"  # the role's default
        conn.commit()
        conn.execute(text("SET default_transaction_read_only = off"))  # a Grafana user can do this
        conn.commit()
        assert conn.scalar(text("SHOW transaction_read_only")) == "off"
        with pytest.raises(DBAPIError, match="permission denied|must be owner|cannot insert into view"):
            conn.execute(text(statement))


def test_the_views_hold_aggregates_only(grafana_db):
    rows = run_as_role(grafana_db, "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")  # fmt: skip
    assert {r["table_schema"] for r in rows} == {"grafana"}  # the role sees no other table
    tables = {r["table_name"] for r in rows}
    assert tables == {f"{kind}_energy_{res}" for kind in ("fleet", "community") for res in ("15min", "hourly", "daily")} | {
        "communities", "data_freshness"}  # fmt: skip
    columns = {r["column_name"] for r in rows}
    assert not [c for c in columns if PERSONAL.search(c)], columns
    assert columns == AGGREGATE_COLUMNS
    assert "houses_reporting" in columns and "community" in columns


def test_time_and_community_filters_still_reach_the_index(grafana_db):
    plan = "\n".join(r["QUERY PLAN"] for r in run_as_role(grafana_db,
        "EXPLAIN SELECT * FROM grafana.community_energy_15min WHERE community_id = :c "
        "AND \"time\" BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T00:00:00Z'", c=visible(grafana_db)[0]))  # fmt: skip
    assert "ix_rollups_bucket" in plan and "2026-01-01 00:00:00" in plan


def test_grafana_role_is_idempotent_and_refuses_clearly(grafana_db, tmp_path):
    from dashboard.db import make_engine
    from dashboard.grafana import GrafanaRoleRefused, ensure_role

    db = grafana_db
    admin = create_engine(db["url"], isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:  # PostgreSQL 14's default: every role may create tables in public
        conn.execute(text("GRANT CREATE ON SCHEMA public TO PUBLIC"))
    again = cli(db["url"], tmp_path, "grafana-role", "--name", db["role"], GRAFANA_DB_PASSWORD=db["password"],
                MIN_AGGREGATE_HOUSES=str(db["k"]))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert (
        f"Updated role '{db['role']}'" in again.stdout and "Revoked CREATE on schema public" in again.stdout
    )
    assert run_as_role(db, "SELECT count(*) AS n FROM grafana.communities")[0]["n"] == len(visible(db))
    assert not run_as_role(db, "SELECT has_schema_privilege('public', 'CREATE') AS c")[0]["c"]
    foreign = f"grafana_foreign_{uuid.uuid4().hex[:8]}"  # a role someone else made: never taken over
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{foreign}" CREATEDB'))
    engine = make_engine(make_settings(tmp_path, DATABASE_URL=db["url"]))
    try:
        for name, password, message in [
            (foreign, db["password"], "did not make"),
            (db["role"], "", "No password"),
            (db["role"], "short", "at least 16"),
            ("Robert'); DROP", db["password"], "lower-case letters"),
        ]:
            with pytest.raises(GrafanaRoleRefused, match=re.escape(message)):
                ensure_role(engine, name, password, db["k"])
        with admin.connect() as conn:  # untouched
            assert conn.scalar(text("SELECT rolcreatedb FROM pg_roles WHERE rolname = :n"), {"n": foreign})
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE "{foreign}"'))
        admin.dispose()
    sqlite = cli(
        f"sqlite:///{tmp_path / 'x.db'}", tmp_path, "grafana-role", GRAFANA_DB_PASSWORD=db["password"]
    )
    assert sqlite.returncode == 2 and "needs PostgreSQL" in sqlite.stderr, sqlite.stderr


def test_migration_down_and_up_and_later_table_changes(tmp_path):
    from dashboard.db import make_engine, migrate, migrate_to

    with fresh_pg_database("aggtest_grafana_mig") as url:
        engine = make_engine(make_settings(tmp_path, DATABASE_URL=url))
        try:
            migrate(engine)
            views = text("SELECT count(*) FROM pg_views WHERE schemaname = 'grafana'")
            with engine.connect() as conn:
                assert conn.scalar(views) == 8
            migrate_to(engine, "0008_personal_fields", down=True)
            with engine.connect() as conn:
                assert conn.scalar(views) == 0
                assert conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = 'grafana'")) == 0
            migrate(engine)
            with engine.begin() as conn:  # what later migrations typically do is not blocked by the views
                assert conn.scalar(views) == 8
                conn.execute(text("ALTER TABLE energy_rollups ADD COLUMN later_column integer"))
                conn.execute(text("ALTER TABLE communities RENAME COLUMN created_at TO created"))
                conn.execute(text("ALTER TABLE houses ALTER COLUMN timezone TYPE varchar(80)"))
                conn.execute(text("TRUNCATE energy_rollups"))
        finally:
            engine.dispose()
    sqlite = make_engine(make_settings(tmp_path / "sqlite"))
    try:
        migrate(sqlite)  # a no-op there: no views for a later batch migration's table rebuild to trip on
        with sqlite.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'view'")) == 0
    finally:
        sqlite.dispose()
