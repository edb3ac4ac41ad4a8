"""The PostgreSQL login Grafana connects as (`python -m dashboard grafana-role`): it may read the aggregate
views of schema `grafana` (migration 0010_grafana_views) and nothing else.

Created or brought back to exactly that state on every run (idempotent), in one transaction: LOGIN, no
other attribute and no role membership; CONNECT on this database, USAGE on schema grafana, SELECT on its
views (and, through default privileges, on views a later migration creates there); no privilege on any
table or sequence of schema `public`, no CREATE there (PostgreSQL 14 and older grant it to PUBLIC: taken
back, the app's own user keeps it) and no temporary tables (TEMP is taken from PUBLIC on this database, the
app's own user keeps it). Its sessions default to read-only transactions, a 30 s statement timeout and
search_path grafana. The password reaches the server as a SCRAM-SHA-256 verifier made client-side, so the
plaintext never appears in a statement (nor in a server log of statements).

The command also writes MIN_AGGREGATE_HOUSES into `grafana.min_aggregate_houses()`, the k the views
enforce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Engine

from dashboard.errors import Conflict

DEFAULT_ROLE = "aggregator_grafana"
MARK = "aggregator grafana read-only role (python -m dashboard grafana-role)"
MIN_PASSWORD = 16
STATEMENT_TIMEOUT = "30s"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class GrafanaRoleRefused(Conflict):
    """The role cannot be made as asked: the message says what to do."""


@dataclass
class RoleReport:
    name: str
    created: bool
    views: list[str]
    k: int
    notes: list[str] = field(default_factory=list)


def _refuse(message: str) -> GrafanaRoleRefused:
    return GrafanaRoleRefused(message)


def check_inputs(name: str, password: str | None) -> None:
    if not NAME.match(name):
        raise _refuse(
            f"--name {name!r}: use lower-case letters, digits and underscores (at most 63, not starting with a digit)"
        )
    if not password:
        raise _refuse(
            "No password: give --password-file FILE or set GRAFANA_DB_PASSWORD (make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(24))"`), and give Grafana the same'
        )
    if len(password) < MIN_PASSWORD:
        raise _refuse(f"The password has {len(password)} characters; use at least {MIN_PASSWORD}")


def _verifier(raw_conn, name: str, password: str) -> str:
    """SCRAM-SHA-256 verifier of the password, made by libpq (PQencryptPasswordConn) on this side."""
    from psycopg2.extensions import encrypt_password

    return encrypt_password(password, name, raw_conn, "scram-sha-256")


def ensure_role(engine: Engine, name: str, password: str, k: int) -> RoleReport:
    """Create or update the Grafana role (see the module's docstring); raises GrafanaRoleRefused."""
    if engine.dialect.name != "postgresql":
        raise _refuse(
            "grafana-role needs PostgreSQL: Grafana reads the views of schema grafana, which exist only there "
            "(set DATABASE_URL=postgresql://... and run `python -m dashboard init-db`)"
        )
    check_inputs(name, password)
    with engine.begin() as conn:
        me, database = conn.execute(text("SELECT current_user, current_database()")).one()
        if name == me:
            raise _refuse(f"--name {name!r} is the app's own database user; choose another name")
        views = list(conn.scalars(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'grafana' AND c.relkind = 'v' ORDER BY c.relname"
        )))  # fmt: skip
        if not views:
            raise _refuse(
                "Schema grafana has no views: run `python -m dashboard init-db` (migration 0010) first"
            )
        existing = conn.execute(
            text("SELECT r.oid, shobj_description(r.oid, 'pg_authid') FROM pg_roles r WHERE r.rolname = :n"),
            {"n": name},
        ).first()
        if existing is not None and existing[1] != MARK:
            raise _refuse(
                f"A database role {name!r} exists that grafana-role did not make; choose another --name "
                "(or drop that role yourself)"
            )
        role = _ident(conn, name)
        verifier = _verifier(conn.connection.dbapi_connection, name, password)
        attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"
        verb = "ALTER" if existing is not None else "CREATE"
        conn.execute(
            text(f"{verb} ROLE {role} WITH {attributes} CONNECTION LIMIT 20 PASSWORD :v"), {"v": verifier}
        )
        conn.execute(text(f"COMMENT ON ROLE {role} IS '{MARK}'"))
        for (group,) in conn.execute(text(
            "SELECT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = :n"), {"n": name}):  # fmt: skip
            conn.execute(text(f"REVOKE {_ident(conn, group)} FROM {role}"))
        db = _ident(conn, database)
        for setting, value in (("default_transaction_read_only", "on"),
                               ("statement_timeout", STATEMENT_TIMEOUT), ("search_path", "grafana")):  # fmt: skip
            conn.execute(text(f"ALTER ROLE {role} IN DATABASE {db} SET {setting} = '{value}'"))
        conn.execute(text(f"REVOKE ALL ON SCHEMA public FROM {role}"))
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}, PUBLIC"))
        conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}, PUBLIC"))
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA grafana FROM {role}"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {role}"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA grafana TO {role}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA grafana TO {role}"))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA grafana GRANT SELECT ON TABLES TO {role}"))
        conn.execute(text(
            f"CREATE OR REPLACE FUNCTION grafana.min_aggregate_houses() RETURNS integer "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT {int(k)}'"
        ))  # fmt: skip
        report = RoleReport(name=name, created=existing is None, views=views, k=int(k))
        _close_public_schema(conn, name, me, report)
        _close_temp(conn, name, me, database, report)
    return report


def _ident(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _close_public_schema(conn, name: str, me: str, report: RoleReport) -> None:
    """PostgreSQL 14 and older grant CREATE on schema public to PUBLIC (every role): take it back, keeping
    it for the app's own user, so the Grafana role cannot create tables there."""
    if not conn.scalar(text("SELECT has_schema_privilege(:n, 'public', 'CREATE')"), {"n": name}):
        return
    owner, superuser = conn.execute(text(
        "SELECT pg_get_userbyid(n.nspowner) = current_user, r.rolsuper FROM pg_namespace n, pg_roles r "
        "WHERE n.nspname = 'public' AND r.rolname = current_user"
    )).one()  # fmt: skip
    if not (owner or superuser):
        raise _refuse(
            "Every role may create tables in schema public here (PostgreSQL 14 or older defaults), and this "
            f"database user cannot change that: have the owner of schema public run `REVOKE CREATE ON SCHEMA "
            f"public FROM PUBLIC; GRANT CREATE ON SCHEMA public TO {me};` and run grafana-role again"
        )
    conn.execute(text(f"GRANT CREATE ON SCHEMA public TO {_ident(conn, me)}"))
    conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    report.notes.append(
        f"Revoked CREATE on schema public from PUBLIC (granted it to {me}), as PostgreSQL 15 does by default"
    )


def run_grafana_role(settings, name: str, password_file: str | None) -> str:
    """`python -m dashboard grafana-role`: migrate, then ensure_role; returns what to tell the user."""
    import os
    from pathlib import Path

    from dashboard.db import make_engine, migrate

    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            raise _refuse(f"Cannot read --password-file: {exc}") from None
    else:
        password = os.environ.get("GRAFANA_DB_PASSWORD", "").strip()
    engine = make_engine(settings)
    try:
        if engine.dialect.name == "postgresql":
            migrate(engine)  # the views of migration 0010
        report = ensure_role(engine, name, password, settings.min_aggregate_houses)
    finally:
        engine.dispose()
    done = "Created" if report.created else "Updated"
    return "\n".join([*report.notes,
        f"{done} role {report.name!r}: LOGIN, SELECT on the {len(report.views)} views of schema grafana "
        f"({', '.join(report.views)}) and nothing else; aggregates of fewer than {report.k} houses "
        "(MIN_AGGREGATE_HOUSES) are left out of them. Give Grafana (deploy/grafana/) "
        f"GRAFANA_DB_USER={report.name} and this password in GRAFANA_DB_PASSWORD."])  # fmt: skip


def _close_temp(conn, name: str, me: str, database: str, report: RoleReport) -> None:
    """PostgreSQL lets every role create temporary tables (TEMP to PUBLIC): take it back on this database,
    keeping it for the app's own user (COPY staging uses temporary tables), when this user may."""
    if not conn.scalar(text("SELECT has_database_privilege(:n, current_database(), 'TEMP')"), {"n": name}):
        return
    may = conn.scalar(text(
        "SELECT pg_get_userbyid(d.datdba) = current_user OR (SELECT rolsuper FROM pg_roles "
        "WHERE rolname = current_user) FROM pg_database d WHERE d.datname = current_database()"
    ))  # fmt: skip
    db = _ident(conn, database)
    if not may:
        report.notes.append(
            f"Note: {name} may still create temporary tables (TEMP is granted to PUBLIC); the owner of database "
            f"{database} can stop that: GRANT TEMP ON DATABASE {db} TO {me}; REVOKE TEMP ON DATABASE {db} FROM PUBLIC;"
        )
        return
    conn.execute(text(f"GRANT TEMP ON DATABASE {db} TO {_ident(conn, me)}"))
    conn.execute(text(f"REVOKE TEMP ON DATABASE {db} FROM PUBLIC"))
    report.notes.append(f"Revoked TEMP on database {database} from PUBLIC (granted it to {me})")
