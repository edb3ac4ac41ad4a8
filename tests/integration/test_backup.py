"""`python -m dashboard backup` / `restore` against the real PostgreSQL, SQLite and the real S3 server: a seeded
database with readings, users and stored objects survives the round trip byte for byte; damaged files, wrong
keys and non-empty targets are refused with nothing written; the files at rest are private."""

from __future__ import annotations

import base64
import os
import stat
import struct
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from dashboard import backup, sealed
from dashboard.auth import create_user
from dashboard.crypto import backup_key
from dashboard.db import make_engine, make_session_factory, migrate
from dashboard.schema import ApiAccessLog, Base, House, ModelVersion, User
from dashboard.seed import seed_demo
from dashboard.storage import object_store_from_settings
from tests.conftest import TEST_SECRET, fresh_pg_database, make_settings

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 3, 2)
ODD = "tab\there, new\nline, back\\slash, quote \" ' comma, \\N, Ωμέγα ☀"


def s3_env(s3_server, bucket=None) -> dict[str, str]:
    return {
        "S3_ENDPOINT": f"http://{s3_server.endpoint}",
        "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key,
        "S3_BUCKET": bucket or f"bk-{uuid.uuid4().hex[:12]}",
    }


def seed(settings, big_object: bool = False) -> None:
    """A small demo (readings, rollups, weather, users) plus rows with awkward values and stored objects."""
    engine = make_engine(settings)
    migrate(engine)
    factory = make_session_factory(engine)
    seed_demo(factory, settings.timezone, houses=2, days=2, end=END, progress=False)
    with factory() as s:
        s.add(House(name=ODD, created_at=datetime(2026, 1, 1, 12, 30, 15, 123456), latitude=None))
        s.add(House(name="", created_at=datetime(2026, 1, 2), latitude=1e-300, longitude=-0.0))
        create_user(s, "Ωmega\\user", "correct-horse-battery", "analyst", [])
        s.add(
            ApiAccessLog(
                at=END, user_id=None, method="GET", route="/api/v1/x?a=\t", status=200, latency_ms=0.1
            )
        )
        s.add(ModelVersion(version="v-1", target="consumption", product="next-24-hours", horizon=96,
                           scope_kind="all", scope_id=None, model="xgboost", strategy="direct",
                           object_key="models/all/v-1.bin", trained_at=END, metrics_json='{"mape": 0.1}',
                           is_active=True))  # fmt: skip
        s.commit()
    engine.dispose()
    store = object_store_from_settings(settings)
    store.put_bytes("models/all/v-1.bin", os.urandom(70_000), {"version": "v-1"})
    store.put_bytes("models/house/1/v-2.bin", b"\x00\n" * 10, {})
    store.put_bytes("exports/a b.csv", b"x,y\n1,2\n", {"kind": "export"})
    if big_object:  # the archive spans several 1 MiB chunks
        store.put_bytes("big/random.bin", os.urandom(3 * 1024 * 1024 + 17), {})


def snapshot(settings) -> dict:
    """Every table's rows in primary-key order, alembic_version, and every object with its metadata."""
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            tables = {
                t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables
            }
            tables["alembic_version"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    store = object_store_from_settings(settings)
    objects = {k: (store.get_bytes(k), store.get_metadata(k)) for k in store.list_keys()}
    return {"tables": tables, "objects": objects}


def assert_untouched(settings) -> None:
    """Nothing written: not even the schema, and no object."""
    engine = make_engine(settings)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert object_store_from_settings(settings).list_keys() == []


@pytest.fixture
def pg_source(s3_server, tmp_path):
    with fresh_pg_database("aggbk_src") as url:
        settings = make_settings(tmp_path / "src", DATABASE_URL=url, **s3_env(s3_server))
        seed(settings, big_object=True)
        yield settings


@pytest.fixture
def pg_target(s3_server, tmp_path):
    with fresh_pg_database("aggbk_dst") as url:
        yield make_settings(tmp_path / "dst", DATABASE_URL=url, **s3_env(s3_server))


KEY = backup_key(TEST_SECRET)


def test_postgres_and_s3_round_trip_is_identical(pg_source, pg_target, tmp_path):
    archive = tmp_path / "out" / "aggregator.agb"
    stats = backup.backup(pg_source, archive, KEY, progress=False)
    assert stats["tables"]["measurements"] > 1000 and stats["objects"] == 4
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert list(archive.parent.iterdir()) == [archive]  # no temp file left behind
    raw = archive.read_bytes()
    assert b"correct-horse" not in raw and ODD.encode() not in raw and b"measurements" not in raw

    restored = backup.restore(pg_target, archive, KEY, progress=False)
    assert restored["rows"] == stats["rows"]
    before, after = snapshot(pg_source), snapshot(pg_target)
    assert after["tables"] == before["tables"]
    assert after["objects"] == before["objects"]
    assert any(ODD in row for row in after["tables"]["houses"])

    # sequences continue after the restored ids: new rows do not collide
    engine = make_engine(pg_target)
    with make_session_factory(engine)() as s:
        top = max(r[0] for r in before["tables"]["users"])
        user = create_user(s, "after-restore", "correct-horse-battery", "analyst", [])
        s.commit()
        assert user.id == top + 1
        s.add(House(name="new", created_at=END))
        s.commit()
    engine.dispose()


def test_sqlite_backup_restores_into_postgres(tmp_path, pg_target):
    source = make_settings(tmp_path / "embedded")  # SQLite and the local object folder
    seed(source)
    archive = tmp_path / "embedded.agb"
    backup.backup(source, archive, KEY, progress=False)
    backup.restore(pg_target, archive, KEY, progress=False)
    before, after = snapshot(source), snapshot(pg_target)
    assert after["tables"] == before["tables"]
    assert after["objects"] == before["objects"]


def test_postgres_backup_restores_into_sqlite(pg_source, tmp_path):
    archive = tmp_path / "pg.agb"
    backup.backup(pg_source, archive, KEY, progress=False)
    target = make_settings(tmp_path / "embedded")
    backup.restore(target, archive, KEY, progress=False)
    before, after = snapshot(pg_source), snapshot(target)
    assert after["tables"] == before["tables"]
    assert after["objects"] == before["objects"]


def raw_rows(settings) -> dict:
    """Every table's rows as the driver returns them (SQLite: the stored text of timestamps)."""
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.exec_driver_sql(f'SELECT * FROM "{t.name}" ORDER BY 1, 2').all()
                if len(t.columns) > 1
                else conn.exec_driver_sql(f'SELECT * FROM "{t.name}" ORDER BY 1').all()
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_sqlite_round_trip_stores_the_same_text(tmp_path):
    """Timestamps restored into SQLite are stored in SQLAlchemy's own text format, so the string comparisons
    of SQLite range queries see the same rows."""
    source = make_settings(tmp_path / "a")
    seed(source)
    archive = tmp_path / "a.agb"
    backup.backup(source, archive, KEY, progress=False)
    target = make_settings(tmp_path / "b")
    backup.restore(target, archive, KEY, progress=False)
    before, after = raw_rows(source), raw_rows(target)
    assert after == before
    assert before["measurements"] and isinstance(before["measurements"][0][1], str)


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every sealed chunk frame."""
    out, pos = [], sealed.HEADER_LEN
    while pos < len(data):
        length = struct.unpack(">I", data[pos + 1 : pos + 5])[0]
        out.append((pos, 5 + length))
        pos += 5 + length
    return out


def _damaged(data: bytes, how: str) -> bytes:
    frames = _frames(data)
    assert len(frames) >= 4
    if how == "flipped byte":
        i = len(data) // 2
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    if how == "flipped header byte":
        return data[:10] + bytes([data[10] ^ 0x80]) + data[11:]
    if how == "truncated":
        return data[:-1000]
    if how == "final chunk dropped":
        return data[: frames[-1][0]]
    if how == "chunks swapped":
        (a, la), (b, lb) = frames[1], frames[2]
        return data[:a] + data[b : b + lb] + data[a : a + la] + data[b + lb :]
    if how == "final flag set early":  # a clean cut after chunk 1, its flag forged
        a, la = frames[1]
        return data[:a] + b"\x01" + data[a + 1 : a + la]
    if how == "appended":
        return data + data[frames[-1][0] :]
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    ["flipped byte", "flipped header byte", "truncated", "final chunk dropped", "chunks swapped",
     "final flag set early", "appended", "wrong key"],
)  # fmt: skip
def test_damaged_file_or_wrong_key_is_refused_and_nothing_is_written(pg_source, pg_target, tmp_path, how):
    archive = tmp_path / "good.agb"
    backup.backup(pg_source, archive, KEY, progress=False)
    key = KEY
    if how == "wrong key":
        key = backup_key("another-secret-" + "y" * 40)
    else:
        archive.write_bytes(_damaged(archive.read_bytes(), how))
    with pytest.raises(backup.BackupError, match="failed authentication|Not an aggregator backup"):
        backup.restore(pg_target, archive, key, progress=False)
    assert_untouched(pg_target)


def test_non_empty_target_is_refused_without_yes_and_replaced_with_it(pg_source, pg_target, tmp_path):
    archive = tmp_path / "a.agb"
    backup.backup(pg_source, archive, KEY, progress=False)
    backup.restore(pg_target, archive, KEY, progress=False)
    engine = make_engine(pg_target)
    with make_session_factory(engine)() as s:
        s.add(House(name="added later", created_at=END))
        s.execute(User.__table__.delete().where(User.username == "Ωmega\\user"))
        s.commit()
    engine.dispose()
    store = object_store_from_settings(pg_target)
    store.put_bytes("models/extra.bin", b"not in the backup")
    changed = snapshot(pg_target)

    with pytest.raises(backup.BackupError, match="not empty.*--yes"):
        backup.restore(pg_target, archive, KEY, progress=False)
    assert snapshot(pg_target) == changed

    backup.restore(pg_target, archive, KEY, replace=True, progress=False)
    assert snapshot(pg_target) == snapshot(pg_source)


def cli(settings_env: dict, *args):
    env = os.environ | {"DEMO_DATA": "0", "SECRET_KEY": TEST_SECRET} | settings_env
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_cli_backup_and_restore_with_a_key_file(tmp_path, s3_server):
    key_file = tmp_path / "backup.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    src = {"DATA_DIR": str(tmp_path / "src")}
    seed(make_settings(tmp_path / "src"))
    out = tmp_path / "cli.agb"
    done = cli(src, "backup", "--out", str(out), "--key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    assert "Backup written" in done.stdout and "measurements" in done.stderr  # progress per table
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    with fresh_pg_database("aggbk_cli") as url:
        s3 = s3_env(s3_server)
        dst = {"DATA_DIR": str(tmp_path / "dst"), "DATABASE_URL": url, **s3}
        wrong = cli(dst, "restore", "--in", str(out))  # SECRET_KEY's backup key, not the key file's
        assert wrong.returncode != 0
        last = wrong.stderr.strip().splitlines()
        assert len(last) == 1 and last[0].startswith("Error: The backup failed authentication"), wrong.stderr
        assert "made with a key from --key-file" in last[0]
        bad_key = tmp_path / "short.key"
        bad_key.write_text(base64.b64encode(b"x" * 16).decode())
        short = cli(dst, "restore", "--in", str(out), "--key-file", str(bad_key))
        assert short.returncode != 0 and "32 random bytes" in short.stderr
        ok = cli(dst, "restore", "--in", str(out), "--key-file", str(key_file), "--quiet")
        assert ok.returncode == 0, ok.stderr
        assert "Restored" in ok.stdout
        again = cli(dst, "restore", "--in", str(out), "--key-file", str(key_file), "--quiet")
        assert again.returncode != 0 and "--yes" in again.stderr
        target = make_settings(tmp_path / "dst", DATABASE_URL=url, **s3)
        assert snapshot(target) == snapshot(make_settings(tmp_path / "src"))


def test_embedded_files_are_private(tmp_path):
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir)
    engine = make_engine(settings)
    migrate(engine)
    with engine.connect() as conn:  # WAL mode: -wal and -shm exist while a connection is open
        conn.execute(select(User)).all()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        db = data_dir / "aggregator.db"
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    engine.dispose()
    store = object_store_from_settings(settings)
    store.put_bytes("models/house/1/v.bin", b"secret model", {"a": "b"})
    for path in settings.objects_dir.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(settings.objects_dir.stat().st_mode) == 0o700


def test_an_existing_loose_data_dir_is_tightened(tmp_path):
    data_dir = tmp_path / "loose"
    data_dir.mkdir(mode=0o755)
    (data_dir / "aggregator.db").touch(mode=0o644)
    make_engine(make_settings(data_dir)).dispose()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "aggregator.db").stat().st_mode) == 0o600


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_column_type_survives_the_json_lines_and_the_bulk_load(dialect, tmp_path):
    """Types the schema may grow (bytes for encrypted fields, decimals, dates, JSON) through the same encode
    -> JSON -> decode -> COPY / executemany path as the tables."""
    import json
    from datetime import date, time
    from decimal import Decimal

    from sqlalchemy import (
        JSON,
        Column,
        Date,
        DateTime,
        Float,
        Integer,
        LargeBinary,
        MetaData,
        Numeric,
        String,
        Table,
        Time,
    )

    table = Table(
        "bk_types",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("blob", LargeBinary),
        Column("amount", Numeric(12, 4)),
        Column("day", Date),
        Column("at", Time),
        Column("ts", DateTime),
        Column("doc", JSON),
        Column("ratio", Float),
        Column("label", String(120)),
    )
    rows = [
        (1, b"\x00\\\t\n\xff" + os.urandom(32), Decimal("12.3400"), date(2026, 2, 28), time(23, 59, 1),
         datetime(2026, 1, 1, 0, 0, 0, 5), {"a": [1, "x\ty"]}, float("inf"), ODD),
        (2, None, None, None, None, None, None, None, ""),
    ]  # fmt: skip
    encoded = []
    for row in rows:
        values = list(row)
        for i, encode in backup._encoders(table):
            if values[i] is not None:
                values[i] = encode(values[i])
        encoded.append(json.loads(json.dumps(values)))

    def load(engine):
        table.metadata.create_all(engine)
        columns = [c.name for c in table.columns]
        with engine.connect() as conn, conn.begin():
            batch = [list(r) for r in encoded]
            for row in batch:
                for i, decode in backup._decoders(table, columns, engine.dialect):
                    if row[i] is not None:
                        row[i] = decode(row[i])
            (backup._insert_pg if dialect == "postgresql" else backup._insert_sqlite)(
                conn, table, columns, batch
            )
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]

    if dialect == "sqlite":
        engine = make_engine(make_settings(tmp_path))
        assert load(engine) == rows
        engine.dispose()
    else:
        with fresh_pg_database("aggbk_types") as url:
            engine = make_engine(make_settings(tmp_path, DATABASE_URL=url))
            assert load(engine) == rows
            engine.dispose()
