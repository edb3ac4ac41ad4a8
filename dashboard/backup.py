"""Encrypted backups of the database and the object store: `python -m dashboard backup` / `restore`.

The file is a stream of AES-256-GCM sealed chunks (bounded memory, any size; dashboard/sealed.py). The
backup key is dashboard/crypto.py's `backup_key` (HKDF-SHA256 of SECRET_KEY, label "aggregator backup")
or 32 random bytes from `--key-file` (base64).

Inside, the plaintext is JSON lines: a `meta` line (format, alembic revision, tables), then per table (foreign
key order) a `table` line, lines of up to 10,000 rows (a JSON array of row arrays; timestamps ISO 8601) and an
`end` line with the count, then per object an
`object` line (key, size, metadata) followed by exactly `size` raw bytes and a newline, then a `done` line.

Restore reads the whole file once to authenticate it before it writes anything, then loads every table in
one transaction (COPY on PostgreSQL, executemany on SQLite), writes the objects and commits.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Engine,
    Float,
    LargeBinary,
    Numeric,
    Table,
    Text,
    Time,
    func,
    select,
    text,
    type_coerce,
)

from dashboard.config import Settings
from dashboard.db import make_engine, migrate
from dashboard.fieldcrypt import EncryptedText
from dashboard.schema import Base
from dashboard.sealed import (
    FORMAT,
    KEY_FROM_SECRET,
    BackupError,
    PlainReader,
    SealedWriter,
    open_sealed,
)
from dashboard.storage import ObjectStore, object_store_from_settings

BATCH = 10_000


# ---- values ----------------------------------------------------------------------------------------------


def _encoders(table: Table) -> list[tuple[int, Callable]]:
    """Column index -> its value as JSON: timestamps, dates and times ISO 8601, bytes base64, decimals text."""
    out = []
    for i, column in enumerate(table.columns):
        kind = column.type
        if isinstance(kind, DateTime | Date | Time):
            out.append((i, lambda v: v.isoformat()))
        elif isinstance(kind, LargeBinary):
            out.append((i, lambda v: base64.b64encode(v).decode()))
        elif isinstance(kind, Numeric) and not isinstance(kind, Float):
            out.append((i, str))
    return out


def _decoders(table: Table, columns: list[str], dialect) -> list[tuple[int, Callable]]:
    """Column index -> the JSON value as the driver takes it. PostgreSQL's COPY reads ISO 8601 and decimal
    text as they are; SQLite gets the Python value through SQLAlchemy's own bind processor, so it stores the
    text SQLAlchemy writes (timestamps compared as strings must have one format)."""
    out = []
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, EncryptedText):  # stored ciphertext, restored as it was (never encrypted again)
            continue
        if dialect.name == "postgresql":
            if isinstance(kind, LargeBinary):
                out.append((i, lambda v: "\\x" + base64.b64decode(v).hex()))
            elif isinstance(kind, JSON):
                out.append((i, json.dumps))
            continue
        parse = None
        if isinstance(kind, DateTime):
            parse = datetime.fromisoformat
        elif isinstance(kind, Date):
            parse = date.fromisoformat
        elif isinstance(kind, Time):
            parse = time.fromisoformat
        elif isinstance(kind, LargeBinary):
            parse = base64.b64decode
        elif isinstance(kind, Numeric) and not isinstance(kind, Float):
            parse = Decimal
        bind = kind.dialect_impl(dialect).bind_processor(dialect)
        if parse and bind:
            out.append((i, lambda v, parse=parse, bind=bind: bind(parse(v))))
        elif parse or bind:
            out.append((i, parse or bind))
    return out


def _progress(total: int | None, desc: str, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, disable=not enabled, file=sys.stderr,
                leave=True, mininterval=1.0)  # fmt: skip


def _stored(column):
    """A column as stored: personal data stays AES-256-GCM ciphertext in the archive (dashboard/fieldcrypt.py),
    so restoring needs the same DATA_ENCRYPTION_KEY (or it in DATA_ENCRYPTION_KEY_OLD), and the archive
    holds no plaintext even before its own encryption."""
    if isinstance(column.type, EncryptedText):
        return type_coerce(column, Text()).label(column.name)
    return column


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _alembic_version(conn) -> str | None:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - no table: not migrated
        return None


# ---- backup ----------------------------------------------------------------------------------------------


def _private_temp(out: Path) -> tuple[BinaryIO, Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb"), Path(tmp)


def backup(settings: Settings, out: Path, key: bytes, key_source: int = KEY_FROM_SECRET,
           progress: bool = True, engine: Engine | None = None, store: ObjectStore | None = None) -> dict:  # fmt: skip
    """Writes the encrypted archive to `out` (0600, atomically: a failed backup leaves no file)."""
    out = Path(out)
    if out.is_dir():
        raise BackupError(f"--out {out} is a directory: name the archive file to write")
    own_engine = engine is None
    engine = engine or make_engine(settings)
    store = store if store is not None else object_store_from_settings(settings)
    fh, tmp = _private_temp(out)
    stats = {"rows": 0, "objects": 0, "object_bytes": 0, "tables": {}}
    try:
        with fh:
            w = SealedWriter(fh, key, key_source)

            def line(obj) -> None:
                w.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

            # one read transaction for every table (on PostgreSQL REPEATABLE READ: one consistent snapshot)
            conn = engine.connect()
            if engine.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn, conn.begin():
                if engine.dialect.name == "sqlite":  # pysqlite begins only before writes: one snapshot
                    conn.exec_driver_sql("BEGIN")
                revision = _alembic_version(conn)
                if revision is None:
                    raise BackupError(
                        "The database has no schema (alembic_version missing): nothing to back up"
                    )
                tables = _tables()
                line({"type": "meta", "format": FORMAT, "revision": revision, "dialect": engine.dialect.name,
                      "tables": [t.name for t in tables]})  # fmt: skip
                for table in tables:
                    total = conn.scalar(select(func.count()).select_from(table))
                    columns = [c.name for c in table.columns]
                    line({"type": "table", "name": table.name, "columns": columns, "rows": total})
                    bar = _progress(total, f"backup {table.name}", "row", progress)
                    query = select(*map(_stored, table.columns)).order_by(*table.primary_key.columns)
                    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
                    n = 0
                    encoders = _encoders(table)
                    for part in result.partitions(BATCH):
                        rows = [list(row) for row in part]
                        for row in rows:
                            for i, encode in encoders:
                                if row[i] is not None:
                                    row[i] = encode(row[i])
                        w.write(json.dumps(rows, separators=(",", ":")).encode() + b"\n")
                        n += len(part)
                        bar.update(len(part))
                    bar.close()
                    line({"type": "end", "name": table.name, "rows": n})
                    stats["tables"][table.name] = n
                    stats["rows"] += n
            keys = store.list_keys()
            bar = _progress(len(keys), "backup objects", "obj", progress)
            for key_name in keys:
                data = store.get_bytes(key_name)
                line(
                    {
                        "type": "object",
                        "key": key_name,
                        "size": len(data),
                        "metadata": store.get_metadata(key_name),
                    }
                )
                w.write(data)
                w.write(b"\n")
                stats["objects"] += 1
                stats["object_bytes"] += len(data)
                bar.update(1)
            bar.close()
            line({"type": "done", "rows": stats["rows"], "objects": stats["objects"]})
            w.close()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        os.chmod(out, 0o600)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if own_engine:
            engine.dispose()
    stats["size"] = out.stat().st_size
    return stats


# ---- restore ---------------------------------------------------------------------------------------------


def _records(reader: PlainReader, parse: bool = True) -> Iterator[tuple[str, dict, object]]:
    """Parses the plaintext: ('meta', meta, None), ('table', head, rows iterator), ('object', head, bytes),
    ('done', tail, None). A rows iterator must be consumed before the next record."""

    def header() -> dict:
        raw = reader.readline()
        if not raw.endswith(b"\n"):
            raise BackupError("The backup's content is incomplete (it was made by a failed or other program)")
        return json.loads(raw)

    meta = header()
    if meta.get("type") != "meta" or meta.get("format") != FORMAT:
        raise BackupError(
            f"Unknown backup content format {meta.get('format')!r} (this version reads {FORMAT})"
        )
    yield "meta", meta, None
    while True:
        head = header()
        kind = head.get("type")
        if kind == "table":
            counted = {"n": 0}

            def rows(head=head, counted=counted) -> Iterator[list[list]]:
                while True:
                    raw = reader.readline()
                    if raw.startswith(b"{"):
                        end = json.loads(raw)
                        if (
                            end.get("type") != "end"
                            or end.get("name") != head["name"]
                            or (parse and end["rows"] != counted["n"])
                        ):
                            raise BackupError(f"The backup's table {head['name']} is inconsistent")
                        return
                    if not raw.endswith(b"\n"):
                        raise BackupError(f"The backup's table {head['name']} is incomplete")
                    if not parse:
                        continue
                    batch = json.loads(raw)
                    counted["n"] += len(batch)
                    yield batch

            yield "table", head, rows()
        elif kind == "object":
            data = reader.read(head["size"])
            if len(data) != head["size"] or reader.read(1) != b"\n":
                raise BackupError(f"The backup's object {head['key']} is incomplete")
            yield "object", head, data
        elif kind == "done":
            if not reader.at_end():
                raise BackupError("The backup has content after its end")
            yield "done", head, None
            return
        else:
            raise BackupError(f"Unknown record {kind!r} in the backup")


def verify(path: Path, key: bytes) -> dict:
    """Reads the whole archive once (authenticating every chunk); returns its meta with the row counts."""
    with open(path, "rb") as src:
        meta, counts, objects = None, {}, 0
        for kind, head, body in _records(PlainReader(open_sealed(src, key)), parse=False):
            if kind == "meta":
                meta = head
            elif kind == "table":
                for _ in body:  # authenticates and skips the rows
                    pass
                counts[head["name"]] = head["rows"]
            elif kind == "object":
                objects += 1
    return meta | {"counts": counts, "objects": objects}


def _is_empty(conn) -> bool:
    return all(conn.execute(select(t).limit(1)).first() is None for t in _tables())


def _insert_sqlite(conn, table: Table, columns: list[str], rows: list[list]) -> None:
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', [tuple(r) for r in rows])


def _pg_text(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(value, float):
        return repr(value)  # exact; inf / nan are read by float8in
    return str(value)


def _insert_pg(conn, table: Table, columns: list[str], rows: list[list]) -> None:
    import io

    buf = io.StringIO()
    buf.writelines("\t".join(_pg_text(v) for v in row) + "\n" for row in rows)
    buf.seek(0)
    cur = conn.connection.dbapi_connection.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    cur.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN', buf)


def _reset_sequences(conn) -> None:
    for table in _tables():
        for column in table.primary_key.columns:
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": f'"{table.name}"', "c": column.name}
            ).scalar()
            if seq:
                conn.execute(
                    text(
                        f'SELECT setval(:s, COALESCE((SELECT max("{column.name}") FROM "{table.name}"), 1), '
                        f'(SELECT max("{column.name}") FROM "{table.name}") IS NOT NULL)'
                    ),  # fmt: skip
                    {"s": seq},
                )


def restore(settings: Settings, src: Path, key: bytes, replace: bool = False, progress: bool = True,
            engine: Engine | None = None, store: ObjectStore | None = None) -> dict:  # fmt: skip
    """Restores the archive into the migrated database and the object store; all or nothing for the database.
    Refuses a database or object store that has content unless `replace`."""
    src = Path(src)
    if not src.is_file():
        raise BackupError(f"No backup file at {src}")
    info = verify(src, key)  # nothing is written before every byte is authenticated
    own_engine = engine is None
    engine = engine or make_engine(settings)
    try:
        migrate(engine)  # as the app does at start
        store = store if store is not None else object_store_from_settings(settings)
        return _restore(engine, store, src, key, info, replace, progress)
    finally:
        if own_engine:
            engine.dispose()


def _restore(engine: Engine, store: ObjectStore, src: Path, key: bytes, info: dict, replace: bool,
             progress: bool) -> dict:  # fmt: skip
    by_name = {t.name: t for t in _tables()}
    stats = {"rows": 0, "objects": 0, "tables": {}}
    existing_keys = set(store.list_keys())
    with engine.connect() as conn, conn.begin():
        revision = _alembic_version(conn)
        if info["revision"] != revision:
            raise BackupError(
                f"The backup is of schema revision {info['revision']}, this database is at {revision}: restore "
                "it with the version of the app that made it (then start the new version to migrate)"
            )
        missing = [name for name in info["tables"] if name not in by_name]
        if missing:
            raise BackupError(f"The backup has tables this version does not know: {', '.join(missing)}")
        if not _is_empty(conn) or existing_keys:
            if not replace:
                raise BackupError(
                    "The database or object store is not empty: restore into an empty one, or pass --yes to "
                    "replace all of its rows and objects with the backup's"
                )
            if engine.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in _tables())
                conn.execute(text(f"TRUNCATE {names} CASCADE"))
            else:
                for table in reversed(_tables()):
                    conn.execute(table.delete())
        insert = _insert_pg if engine.dialect.name == "postgresql" else _insert_sqlite
        restored_keys = set()
        with open(src, "rb") as fh:
            for kind, head, body in _records(PlainReader(open_sealed(fh, key))):
                if kind == "table":
                    table = by_name[head["name"]]
                    columns = head["columns"]
                    unknown = [c for c in columns if c not in table.c]
                    if unknown:
                        raise BackupError(f"Table {table.name}: unknown columns {', '.join(unknown)}")
                    decoders = _decoders(table, columns, engine.dialect)
                    bar = _progress(info["counts"][table.name], f"restore {table.name}", "row", progress)
                    n = 0
                    for batch in body:
                        for row in batch:
                            for i, decode in decoders:
                                if row[i] is not None:
                                    row[i] = decode(row[i])
                        if batch:
                            insert(conn, table, columns, batch)
                        n += len(batch)
                        bar.update(len(batch))
                    bar.close()
                    stats["tables"][table.name] = n
                    stats["rows"] += n
                elif kind == "object":
                    store.put_bytes(head["key"], body, head.get("metadata") or {})
                    restored_keys.add(head["key"])
                    stats["objects"] += 1
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn)
    # after the commit, so a restore that fails leaves the old rows with their objects
    for stale in existing_keys - restored_keys:
        store.delete(stale)
    if progress:
        print(f"Restored {stats['rows']:,} rows and {stats['objects']} objects", file=sys.stderr)
    return stats
