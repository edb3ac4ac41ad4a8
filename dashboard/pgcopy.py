"""PostgreSQL bulk path shared by raw readings and rollups: COPY rows into a per-session temp stage
table, then one set-based INSERT ... SELECT. One round trip per batch instead of one per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session


def stage_rows(session: Session, target: str, columns: Sequence[str], rows: Iterable[dict]):
    """COPY rows into temp table `<target>_stage` (same columns as `target`); returns a cursor on the
    session's own connection (same transaction) for the caller's INSERT ... SELECT FROM <target>_stage."""
    buf = io.StringIO()
    # csv (C) writes None as an empty field (NULL in COPY csv), str(datetime) as ISO with a space and
    # str(bool) as True/False, all of which PostgreSQL reads back exactly; floats use repr precision.
    csv.writer(buf, lineterminator="\n").writerows([[row[c] for c in columns] for row in rows])
    buf.seek(0)
    cur = session.connection().connection.dbapi_connection.cursor()
    stage = f"{target}_stage"
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cur.execute(f"TRUNCATE {stage}")
    cur.copy_expert(f"COPY {stage} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf)
    return cur
